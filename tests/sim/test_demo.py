from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from relieflink.sim import demo
from relieflink.sim.demo import run_demo
from relieflink.sim.metrics import median_over, spread_over, wait_ratio_to_fcfs
from relieflink.sim.world import MINUTES_PER_DAY

GROUP_KEYS = {
    "requests",
    "eligible_24h",
    "served_within_24h",
    "median_hours_to_delivery",
    "p95_hours_to_delivery",
    "allocated_in_full",
    "median_hours_at_least",
    "served_within_24h_of_allocated",
}
FLEET_KEYS = {"robots", "volunteers", "vans", "trucks", "ebikes"}


def test_the_demo_writes_the_summary_and_an_offline_report(tmp_path: Path) -> None:
    result = run_demo(
        out=tmp_path,
        seed=5,
        scale=0.0001,
        days=1,
        supply=0.9,
        assume={"group_kit_supply_ratio": "1", "breakdown_share": "0.1", "extra_trucks": "2"},
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary == json.loads(json.dumps(result.summary))
    assert summary["seed"] == 5 and summary["seeds"] == [5]
    assert summary["supply_ratio"] == 0.9
    # A what-if lists what it changed (breakdown_share=0.1 is the default: not a change).
    assert summary["assumptions_changed"] == {
        "extra_trucks": 2,
        "group_kit_supply_ratio": 1.0,
        "supply_ratio": 0.9,
    }
    # Two more trucks in each of the scenario's truck groups, and nothing else changed.
    with (tmp_path / "city" / "vehicles.csv").open() as handle:
        scenario = list(csv.DictReader(handle))
    groups = [int(r["count"]) for r in scenario if r["kind"] == "truck"]
    assert groups and summary["priority"]["fleet"]["trucks"] == sum(groups) + 2 * len(groups)
    vans = sum(int(r["count"]) for r in scenario if r["kind"] == "van")
    assert summary["priority"]["fleet"]["vans"] == vans
    assert summary["households"] == summary["city"]["households"] > 0
    for policy in ("priority", "fifo"):
        figures = summary[policy]
        assert {"requests", "delivered_packs", "unmet_packs"} <= figures.keys()
        assert set(figures["groups"]) == {"infant", "pregnant", "chronic", "elderly", "other"}
        for group in figures["groups"].values():
            assert group.keys() >= GROUP_KEYS
        assert figures["reconciliation"]["ok"] is True
        # Routes come from the dispatch service's plans and were driven by its couriers.
        assert figures["dispatch_plans"] >= 1 and figures["routes_driven"] >= 1
        assert figures["route_km"] > 0 and figures["cost_per_delivered_pack_fen"] > 0
        assert figures["cost_per_delivered_pack_yuan"] > 0
        assert set(figures["fleet"]) == FLEET_KEYS and figures["fleet"]["vans"] > 0
        assert isinstance(figures["parcels_pending_at_end"], dict)
        assert len(result.logs[policy].routes) == figures["routes_driven"]
    assert summary["ledger_reconciled"] is True
    page = (tmp_path / "index.html").read_text()
    assert "<svg" in page
    assert "What-if:</b> this run changed <code>extra_trucks = 2</code>, " in page
    assert "<code>group_kit_supply_ratio = 1.0</code>" in page
    assert re.search(r'(src|href)="https?://', page) is None  # nothing fetched from a network


def test_both_policies_see_the_same_absences_breakdowns_and_doors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each vehicle and household draws from its own stream: the couriers locked in are the
    same, a vehicle that will not start on a day fails in both policies if both load it, and
    a household's n-th door has the same outcome under both. (A small city at real density has
    a handful of vehicles: the shares are raised so that each kind of event happens.)"""
    frequent = replace(
        demo.ASSUMPTIONS, courier_absence_share=0.3, breakdown_share=0.3, failure_share=0.3
    )
    monkeypatch.setattr(demo, "ASSUMPTIONS", frequent)
    logs = run_demo(out=tmp_path, seed=11, scale=0.0001, days=1).logs
    priority, fifo = logs["priority"], logs["fifo"]
    assert priority.absences and priority.absences == fifo.absences
    broke = [
        {(int(t // MINUTES_PER_DAY), v) for t, _, v in log.breakdowns} for log in (priority, fifo)
    ]
    assert broke[0] and broke[0] & broke[1]
    doors = [{(h, n): outcome for h, n, outcome in log.doors} for log in (priority, fifo)]
    both = doors[0].keys() & doors[1].keys()
    assert any(doors[0][k] != "delivered" for k in both)  # failures among the shared doors
    assert all(doors[0][k] == doors[1][k] for k in both)


def test_figures_over_seeds_are_medians_with_their_range() -> None:
    runs = [
        {"served": 0.5, "hours": None, "pending": {"out of range": 2}, "ok": True, "name": "a"},
        {"served": 0.9, "hours": 3.0, "pending": {}, "ok": True, "name": "b"},
        {"served": 0.7, "hours": 5.0, "pending": {"out of range": 1}, "ok": False, "name": "c"},
    ]
    # Not reached (None) counts as later than any wait; a reason missing from a seed is 0.
    assert median_over(runs) == {
        "served": 0.7,
        "hours": 5.0,
        "pending": {"out of range": 1},
        "ok": False,
        "name": "a",
    }
    assert spread_over(runs) == {
        "served": [0.5, 0.9],
        "hours": [3.0, None],
        "pending": {"out of range": [0, 2]},
    }


def test_the_wait_ratio_to_fcfs_is_exact_where_both_are_known_else_a_lower_bound() -> None:
    mine = {
        "infant": {"median_hours_to_delivery": 6.0},
        "pregnant": {"median_hours_to_delivery": 4.0},
        "other": {"median_hours_to_delivery": None, "median_hours_at_least": 30.0},
    }
    fcfs = {
        "infant": {"median_hours_to_delivery": 30.0, "median_hours_at_least": 30.0},
        # Fewer than half delivered by the end: FCFS's median is beyond its floor (each
        # undelivered request waited at least until the end), a lower bound, not a figure.
        "pregnant": {"median_hours_to_delivery": None, "median_hours_at_least": 36.0},
        "other": {"median_hours_to_delivery": 20.0, "median_hours_at_least": 20.0},
    }
    wait_ratio_to_fcfs(mine, fcfs)
    assert mine["infant"]["fcfs_median_wait_ratio_at_least"] == 5.0
    assert mine["pregnant"]["fcfs_median_wait_ratio_at_least"] == 9.0
    assert mine["other"]["fcfs_median_wait_ratio_at_least"] is None  # ours not reached


def test_a_vehicle_that_will_not_start_is_replaced_from_the_reserve_and_drives_that_day(
    tmp_path: Path,
) -> None:
    """With ``replacement_hours``, the carrier's reserve gives the group its vehicle back later
    the same day, and the coordinator plans for it: more routes are driven than without."""
    often = {"breakdown_share": "0.5"}
    runs = {
        hours: run_demo(
            out=tmp_path / str(hours),
            seed=11,
            scale=0.0001,
            days=1,
            assume=often | ({} if hours is None else {"replacement_hours": str(hours)}),
        ).summary["priority"]
        for hours in (None, 1)
    }
    assert runs[None]["vehicles_replaced_same_day"] == 0
    broke = sum(runs[1]["breakdowns_by_kind"].values())
    assert 0 < runs[1]["vehicles_replaced_same_day"] <= broke
    assert runs[1]["routes_driven"] > runs[None]["routes_driven"]
    assert runs[1]["reconciliation"]["ok"] is True
