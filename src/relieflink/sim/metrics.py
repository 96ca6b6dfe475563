"""Outcome metrics of a simulated operation, and the ledger check that backs them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from relieflink.sim.assumptions import ASSUMPTIONS
from relieflink.sim.simulation import MINUTES_PER_DAY, SimLog
from relieflink.stock import service as stock

GROUPS = ("infant", "pregnant", "chronic", "elderly", "other")


@dataclass
class Reconciliation:
    ok: bool
    ledger_problems: list[str]
    donors_checked: int
    donors_unbalanced: list[str]
    delivered_by_ledger: int
    delivered_by_simulation: int


def reconcile(session: Session, log: SimLog) -> Reconciliation:
    """Every balance equals its movements; every donor's received = in stock + in transit +
    delivered + written off; and what the ledger says was delivered is what the simulation saw."""
    problems = stock.check_ledger(session)
    figures = stock.donor_report(session)
    unbalanced = [
        f"donor {f.donor_org_id} kit {f.kit_id} item {f.item_id}" for f in figures if not f.balanced
    ]
    delivered_ledger = sum(f.delivered for f in figures)
    delivered_sim = sum(packs for _, packs, _, _ in log.deliveries)
    ok = not problems and not unbalanced and delivered_ledger == delivered_sim and bool(figures)
    return Reconciliation(
        ok=ok,
        ledger_problems=problems[:20],
        donors_checked=len({f.donor_org_id for f in figures}),
        donors_unbalanced=unbalanced[:20],
        delivered_by_ledger=int(delivered_ledger),
        delivered_by_simulation=delivered_sim,
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
    a = ASSUMPTIONS
    cost_fen = log.distance_km * a.van_cost_per_km_fen + log.vans_used * a.van_fixed_cost_fen
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
