"""``relieflink scenario generate`` (the Typer sub-app the lead mounts)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from relieflink.cli.scenario import app

runner = CliRunner()


def test_generate_writes_files_and_prints_summary(tmp_path: Path) -> None:
    out = tmp_path / "city"
    result = runner.invoke(
        app,
        ["generate", "--city", "shanghai", "--scale", "0.001", "--seed", "7", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert (out / "households.csv").is_file()
    assert (out / "communities.csv").is_file()
    assert "households.csv" in result.output
    assert "communities sealed" in result.output


def test_generate_refuses_bad_scale_with_a_clear_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["generate", "--scale", "1.5", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "scale: must be in (0, 1.0]" in result.output
    assert not (tmp_path / "x" / "households.csv").exists()


def test_generate_requires_out() -> None:
    result = runner.invoke(app, ["generate", "--scale", "0.001"])
    assert result.exit_code != 0
