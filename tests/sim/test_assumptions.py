"""A what-if changes named assumptions, given as text, and says clearly what it cannot take."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relieflink.cli import app
from relieflink.sim.assumptions import ASSUMPTIONS, with_changes
from relieflink.sim.world import GROUP_KITS, KITS


def test_named_assumptions_change_by_their_type_and_the_rest_stay() -> None:
    changed = with_changes(
        ASSUMPTIONS,
        {"breakdown_share": "0.02", "loading_minutes": "45", "trip_waves": "false"},
    )
    assert changed.breakdown_share == 0.02 and changed.loading_minutes == 45
    assert changed.trip_waves is False
    assert changed.supply_ratio == ASSUMPTIONS.supply_ratio
    assert with_changes(ASSUMPTIONS, {"group_kit_supply_ratio": "1"}).group_kit_supply_ratio == 1
    assert with_changes(changed, {"group_kit_supply_ratio": "none"}).group_kit_supply_ratio is None


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"breakdown": "0.1"}, "breakdown is not an assumption; one of: supply_ratio"),
        ({"yuan_per_km": "1"}, "yuan_per_km is a table"),
        ({"breakdown_share": "often"}, "breakdown_share='often': expected float"),
        ({"loading_minutes": "1.5"}, "loading_minutes='1.5': expected int"),
        ({"trip_waves": "maybe"}, "trip_waves='maybe': expected bool"),
        ({"supply_ratio": "-0.5"}, "must not be negative"),
        ({"failure_share": "1.5"}, "a share, from 0 to 1"),
    ],
)
def test_a_bad_what_if_names_the_assumption_and_what_it_takes(
    changes: dict[str, str], says: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        with_changes(ASSUMPTIONS, changes)


def test_the_group_kits_are_every_kit_but_the_family_food_kit() -> None:
    assert set(KITS.values()) - {"KIT-FAMILY-FOOD"} == GROUP_KITS


def test_the_demo_refuses_a_bad_what_if_before_writing_anything(tmp_path: Path) -> None:
    out = tmp_path / "report"
    for args, says in (
        (["--assume", "breakdown_share"], "expected NAME=VALUE"),
        (["--assume", "breakdown_share=lots"], "breakdown_share='lots': expected float"),
    ):
        result = CliRunner().invoke(app, ["demo", "--out", str(out), *args])
        assert result.exit_code == 2, result.output
        assert says in result.output
    assert not out.exists()
