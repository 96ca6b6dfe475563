"""Outcome metrics of a simulated operation, and the ledger check that backs them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from relieflink.db import Session
from relieflink.models import ParcelStatus
from relieflink.reports import service as reads
from relieflink.sim.world import RequestRecord, SimLog
from relieflink.stock import service as stock

ON_BOARD = (
    ParcelStatus.loaded,
    ParcelStatus.departed,
    ParcelStatus.at_gate,
    ParcelStatus.handed_off,
)
GROUPS = ("infant", "pregnant", "chronic", "elderly", "other")


@dataclass
class Reconciliation:
    ok: bool
    ledger_problems: list[str]
    donors_checked: int
    donors_unbalanced: list[str]
    delivered_by_ledger: int  # handed over at the door
    on_the_way_by_ledger: int  # issued at loading, net of returns, not at a door yet
    delivered_by_simulation: int
    on_board_by_simulation: int
    delivered_by_dispatch: int  # packs of parcels the dispatch service holds as delivered
    on_board_by_dispatch: int


def reconcile(session: Session, log: SimLog) -> Reconciliation:
    """Every balance equals its movements; every donor's received = in stock + in transit +
    on the way + delivered + written off; the ledger's delivered (handed over at the door) and
    on the way (issued at loading, not at a door yet) are exactly the packs the simulation saw
    delivered and those still on board; and the parcels the dispatch service holds as
    delivered (and on board) are exactly those."""
    problems = stock.check_ledger(session)
    figures = stock.donor_report(session)
    unbalanced = [
        f"donor {f.donor_org_id} kit {f.kit_id} item {f.item_id}" for f in figures if not f.balanced
    ]
    delivered_ledger = sum(f.delivered for f in figures)
    on_the_way_ledger = sum(f.on_the_way for f in figures)
    delivered_sim = sum(packs for _, packs, _, _ in log.deliveries)
    by_status = reads.packs_by_parcel_status(session)
    delivered_dispatch = by_status.get(ParcelStatus.delivered, 0)
    on_board_dispatch = sum(by_status.get(s, 0) for s in ON_BOARD)
    ok = (
        not problems
        and not unbalanced
        and bool(figures)
        and delivered_ledger == delivered_sim
        and on_the_way_ledger == log.on_board_packs
        and delivered_dispatch == delivered_sim
        and on_board_dispatch == log.on_board_packs
    )
    return Reconciliation(
        ok=ok,
        ledger_problems=problems[:20],
        donors_checked=len({f.donor_org_id for f in figures}),
        donors_unbalanced=unbalanced[:20],
        delivered_by_ledger=int(delivered_ledger),
        on_the_way_by_ledger=int(on_the_way_ledger),
        delivered_by_simulation=delivered_sim,
        on_board_by_simulation=log.on_board_packs,
        delivered_by_dispatch=delivered_dispatch,
        on_board_by_dispatch=on_board_dispatch,
    )


def _quantile(hours: NDArray[np.float64], q: float) -> float | None:
    """The empirical quantile (the hours by which that share was delivered); None if that share
    was not delivered within the simulated days."""
    if not hours.size:
        return None
    value = float(np.quantile(hours, q, method="inverted_cdf"))
    return round(value, 2) if np.isfinite(value) else None


def _waits(records: list[RequestRecord]) -> NDArray[np.float64]:
    """Hours from asking to delivery; requests not delivered by the end count as later than
    any delivered one (censored), so a policy that serves fewer people cannot look faster by
    who it happened to serve."""
    return np.array(
        [
            (r.t_delivered - r.t_request) / 60 if r.t_delivered is not None else np.inf
            for r in records
        ]
    )


def _censored(records: list[RequestRecord], end: float) -> NDArray[np.float64]:
    """Hours from asking to delivery, or to ``end`` (minutes) for requests not delivered."""
    return np.array(
        [
            ((r.t_delivered if r.t_delivered is not None else end) - r.t_request) / 60
            for r in records
        ]
    )


def _share(waits: NDArray[np.float64], hours: float) -> float | None:
    return round(float(np.mean(waits <= hours)), 4) if waits.size else None


def outcome(log: SimLog, *, days: int, fleet: dict[str, int] | None = None) -> dict[str, Any]:
    """The figures ``summary.json`` holds for one policy. Shares within 24 h (48 h) are over
    the requests that had 24 h (48 h) to be served before the simulation stopped; waits are
    over the same requests as the 24-hour share."""
    records = list(log.requests.values())
    delivered_packs = sum(packs for _, packs, _, _ in log.deliveries)
    asked_packs = sum(r.packs for r in records)
    groups: dict[str, dict[str, float | None]] = {}
    for group in GROUPS:
        members = [r for r in records if group in r.groups]
        eligible = [r for r in members if r.t_request <= log.end - 24 * 60]
        waits = _waits(eligible)
        allocated = [r for r in eligible if r.request_id in log.allocated_in_full]
        groups[group] = {
            "requests": len(members),
            "eligible_24h": len(eligible),
            "served_within_24h": _share(waits, 24),
            # The eligible requests whose every line got its stock reserved by the end (bounded
            # by the stock, and by what the free vehicles could carry at each wave: the
            # coordinator reserves only that), and of those the share served within 24 h.
            "allocated_in_full": round(len(allocated) / len(eligible), 4) if eligible else None,
            "served_within_24h_of_allocated": _share(_waits(allocated), 24),
            "median_hours_to_delivery": _quantile(waits, 0.5),
            # A floor for the median where it was not reached: a request not delivered by the
            # end waited at least until the end, so the median of those waits (the delivered
            # ones' own) is at most the true median.
            "median_hours_at_least": _quantile(_censored(eligible, log.end), 0.5),
            "p95_hours_to_delivery": _quantile(waits, 0.95),
            "served_within_48h": _share(
                _waits([r for r in members if r.t_request <= log.end - 48 * 60]), 48
            ),
        }
    robot = sum(packs for _, packs, _, is_robot in log.deliveries if is_robot)
    breakdowns = Counter(kind for _, kind, _ in log.breakdowns)
    cost_yuan = sum(log.cost_yuan.values())
    return {
        "requests": len(records),
        "requests_by_source": dict(Counter(r.source for r in records)),
        "answers": dict(log.answers),
        "delivered_packs": delivered_packs,
        "unmet_packs": max(asked_packs - delivered_packs, 0),
        "failed_deliveries": len(log.failures),
        "van_breakdowns": breakdowns["van"],
        "breakdowns_by_kind": dict(sorted(breakdowns.items())),
        "vehicles_replaced_same_day": log.replacements,
        "robot_share_of_last_metre": round(robot / delivered_packs, 4) if delivered_packs else None,
        # The routing cost as the dispatch plans priced the driven routes (the fleet's fixed
        # and per-km costs, no labour); the yuan figure below is the full one.
        "cost_per_delivered_pack_fen": round(log.cost_fen / delivered_packs)
        if delivered_packs
        else None,
        "cost_per_delivered_pack_yuan": round(cost_yuan / delivered_packs, 2)
        if delivered_packs
        else None,
        "cost_yuan": {k: round(v, 2) for k, v in sorted(log.cost_yuan.items())},
        "route_km": round(log.distance_km, 1),
        "routes_driven": log.routes_driven,
        "routes_by_kind": dict(sorted(log.routes_by_kind.items())),
        "vehicle_hours_by_kind": {k: round(v, 1) for k, v in sorted(log.hours_by_kind.items())},
        "dispatch_plans": len(log.plans),
        "replans": log.replans,
        "waves": log.waves,
        "vehicle_days_off": len(log.absences),
        "fleet": {
            plural: (fleet or {}).get(kind, 0)
            for plural, kind in (
                ("robots", "robot"),
                ("volunteers", "volunteers"),
                ("vans", "van"),
                ("trucks", "truck"),
                ("ebikes", "ebike"),
            )
        },
        "parcels_pending_at_end": dict(sorted(log.pending_at_end.items())),
        # Per kit, units asked, allocated and received: a kit only one group asks for
        # (maternity, chronic medicine) received at a supply ratio R below 1 serves at most
        # about R of that group's requests, whatever the policy.
        "kits": {
            sku: t
            | {"received_per_asked": round(t["received"] / t["asked"], 4) if t["asked"] else None}
            for sku, t in log.kits.items()
        },
        "parcels_left_pending": dict(sorted(log.pending_at_end.items())),
        # Not parcels: each plan's left-outs summed over plans (one parcel left out of 9 plans
        # counts 9), kept to show which reason recurs.
        "parcel_plans_unrouted": dict(sorted(log.unrouted.items())),
        "on_board_packs_at_end": log.on_board_packs,
        # What bounds the figures: doors are served one after another from the gate.
        "stock_held_back_at_last_allocation": dict(sorted(log.held_back.items())),
        "gate_hours_to_last_door": {
            "median": _quantile(np.array(log.gate_minutes) / 60, 0.5),
            "p95": _quantile(np.array(log.gate_minutes) / 60, 0.95),
            "max": round(max(log.gate_minutes, default=0) / 60, 2),
        },
        "groups": groups,
        "days": days,
        "minutes": int(log.end),
    }


def donor_trace(session: Session, log: SimLog) -> list[dict[str, Any]]:
    """Per donor: packs pledged, received, in stock and delivered (from the ledger)."""
    totals: dict[int, dict[str, Any]] = {}
    for f in stock.donor_report(session):
        row = totals.setdefault(
            f.donor_org_id,
            {
                "donor": log.donor_names.get(f.donor_org_id, str(f.donor_org_id)),
                "pledged": 0,
                "received": 0,
                "in_stock": 0,
                "delivered": 0,
                "written_off": 0,
            },
        )
        row["pledged"] += f.pledged
        row["received"] += f.received
        row["in_stock"] += int(f.in_stock)
        row["delivered"] += int(f.delivered)
        row["written_off"] += int(f.written_off)
    return [totals[k] for k in sorted(totals)]


# --- over seeds -------------------------------------------------------------------------------


def _numbers(values: list[Any]) -> list[float] | None:
    """The values as numbers (None, "not reached", as later than any), or None if they are not
    all numbers or None (text, lists, flags)."""
    if any(isinstance(v, bool) or not isinstance(v, int | float | None) for v in values):
        return None
    return sorted(np.inf if v is None else float(v) for v in values)


def _number(value: float, ints: bool) -> int | float | None:
    if not np.isfinite(value):
        return None
    return int(value) if ints and value == int(value) else round(value, 4)


def _keys(runs: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for run in runs for k in run))


def wait_ratio_to_fcfs(groups: dict[str, Any], fcfs: dict[str, Any]) -> None:
    """Add to each of the priority policy's ``groups`` how many times shorter its median wait
    is than first-come-first-served's: ``fcfs_median_wait_ratio_at_least``. Where FCFS
    delivered fewer than half of a group's eligible requests within the simulated days its
    median is not reached: its floor (``median_hours_at_least``, each undelivered request
    counted as waiting until the end) stands in for it and the ratio is a lower bound (exact
    where both medians were reached)."""
    for group, figures in groups.items():
        mine = figures.get("median_hours_to_delivery")
        theirs = fcfs.get(group, {})
        floor = theirs.get("median_hours_to_delivery") or theirs.get("median_hours_at_least")
        if mine is None or floor is None:
            figures["fcfs_median_wait_ratio_at_least"] = None
            continue
        figures["fcfs_median_wait_ratio_at_least"] = round(floor / max(mine, 0.01), 2)


def median_over(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The runs' figures (one policy's, one run per seed) with each number the median over the
    runs (a count missing from a run is 0); flags hold if they hold in every run; anything
    else (text, lists) is the first run's."""
    out: dict[str, Any] = {}
    for key in _keys(runs):
        values = [run.get(key, 0) for run in runs]
        if all(isinstance(v, dict) for v in values):
            out[key] = median_over(values)
        elif all(isinstance(v, bool) for v in values):
            out[key] = all(values)
        elif (numbers := _numbers(values)) is not None:
            ints = all(isinstance(v, int) for v in values)
            out[key] = _number(float(np.median(numbers)), ints)
        else:
            out[key] = values[0]
    return out


def spread_over(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """``[lowest, highest]`` over the runs of each number in the runs' figures (None: not
    reached in some run)."""
    out: dict[str, Any] = {}
    for key in _keys(runs):
        values = [run.get(key, 0) for run in runs]
        if all(isinstance(v, dict) for v in values):
            if inner := spread_over(values):
                out[key] = inner
        elif (numbers := _numbers(values)) is not None:
            ints = all(isinstance(v, int) for v in values)
            out[key] = [_number(numbers[0], ints), _number(numbers[-1], ints)]
    return out
