from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from relieflink.config import PLACEHOLDER_SECRET, Settings
from relieflink.scenario.figures import VEHICLE_SPECS


def test_default_database_is_a_sqlite_file_in_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("RELIEFLINK_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url == f"sqlite:///{tmp_path / 'relieflink.db'}"
    assert settings.is_sqlite


@pytest.mark.parametrize("secret", [PLACEHOLDER_SECRET, "short"])
def test_production_refuses_a_placeholder_or_short_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="RELIEFLINK_SECRET_KEY"):
        Settings(environment="production", secret_key=secret, _env_file=None)  # type: ignore[call-arg]


def test_production_accepts_a_real_secret() -> None:
    settings = Settings(environment="production", secret_key="x" * 40, _env_file=None)  # type: ignore[call-arg]
    assert settings.environment == "production"


def test_env_example_documents_every_setting() -> None:
    example = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    for name in Settings.model_fields:
        assert f"RELIEFLINK_{name.upper()}" in example, name


def test_dispatch_waves_default_to_three_inside_the_fleets_shifts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first wave when the first shifts start, the last before any shift ends: a wave when
    no vehicle is on shift sends nothing (the scenario's fleet, as the demo runs it)."""
    monkeypatch.delenv("RELIEFLINK_DISPATCH_WAVES", raising=False)
    waves = Settings(_env_file=None).dispatch_waves  # type: ignore[call-arg]
    starts = [int(spec[4][:2]) for spec in VEHICLE_SPECS.values()]
    ends = [int(spec[5][:2]) for spec in VEHICLE_SPECS.values()]
    assert len(waves) == 3
    assert waves[0] == min(starts) and waves[-1] < min(ends)


def test_dispatch_waves_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELIEFLINK_DISPATCH_WAVES", " 8, 14 ,21")
    assert Settings(_env_file=None).dispatch_waves == (8, 14, 21)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("25", "25 is not an hour of the day"),
        ("9,x", "'x' is not a whole hour"),
        ("9,,15", "'' is not a whole hour"),
        ("-1,9", "'-1' is not a whole hour"),
        ("15,9", "in increasing order"),
        ("9,9", "each hour once"),
    ],
)
def test_malformed_dispatch_waves_are_refused_with_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("RELIEFLINK_DISPATCH_WAVES", value)
    with pytest.raises(ValidationError, match="RELIEFLINK_DISPATCH_WAVES") as refused:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert message in str(refused.value)
