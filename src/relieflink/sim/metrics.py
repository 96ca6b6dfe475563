"""Outcome metrics of a simulated operation, and the ledger check that backs them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from relieflink.db import Session
from relieflink.models import ParcelStatus
from relieflink.reports import service as reads
from relieflink.sim.world import MINUTES_PER_DAY, SimLog
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


def outcome(log: SimLog, *, days: int) -> dict[str, Any]:
    """The figures ``summary.json`` holds for one policy."""
    records = list(log.requests.values())
    delivered_packs = sum(packs for _, packs, _, _ in log.deliveries)
    asked_packs = sum(r.packs for r in records)
    groups: dict[str, dict[str, float | None]] = {}
    for group in GROUPS:
        members = [r for r in records if group in r.groups]
        # Requests not delivered by the end count as later than any delivered one (censored),
        # so a policy that serves fewer people cannot look faster by who it happened to serve;
        # a median or p95 that falls among them was not reached in the simulated days.
        hours = np.array(
            [
                (r.t_delivered - r.t_request) / 60 if r.t_delivered is not None else np.inf
                for r in members
            ]
        )
        within = [
            r
            for r in members
            if r.t_delivered is not None and r.t_delivered - r.t_request <= 24 * 60
        ]
        groups[group] = {
            "requests": len(members),
            "median_hours_to_delivery": _quantile(hours, 0.5),
            "p95_hours_to_delivery": _quantile(hours, 0.95),
            "served_within_24h": round(len(within) / len(members), 4) if members else None,
            "served_within_48h": round(
                sum(
                    1
                    for r in members
                    if r.t_delivered is not None and r.t_delivered - r.t_request <= 48 * 60
                )
                / len(members),
                4,
            )
            if members
            else None,
        }
    robot = sum(packs for _, packs, _, is_robot in log.deliveries if is_robot)
    cost_fen = log.cost_fen  # the driven dispatch routes, as the plan priced them
    return {
        "requests": len(records),
        "answers": dict(log.answers),
        "delivered_packs": delivered_packs,
        "unmet_packs": max(asked_packs - delivered_packs, 0),
        "failed_deliveries": len(log.failures),
        "van_breakdowns": len(log.breakdowns),
        "robot_share_of_last_metre": round(robot / delivered_packs, 4) if delivered_packs else None,
        "cost_per_delivered_pack_fen": round(cost_fen / delivered_packs)
        if delivered_packs
        else None,
        "route_km": round(log.distance_km, 1),
        "routes_driven": log.routes_driven,
        "routes_by_kind": dict(sorted(log.routes_by_kind.items())),
        "dispatch_plans": len(log.plans),
        "replans": log.replans,
        "vehicle_days_off": log.vehicles_off,
        "parcels_left_pending": dict(log.unrouted),
        "on_board_packs_at_end": log.on_board_packs,
        "groups": groups,
        "days": days,
        "minutes": days * MINUTES_PER_DAY,
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
