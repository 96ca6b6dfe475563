"""Allocation runs: open request lines and available stock in, reservations and reasons out.

The decision itself is :func:`relieflink.optim.allocation.solve_allocation` (pure numpy); this
module turns the database into its arrays, applies the ration policy (entitlement caps, strict
classes, the explained priority score), reserves what was decided in the stock ledger, and keeps
a record of the run with its coverage, unmet need and a first-come-first-served comparison.

Running it twice does not double-reserve: a line's ``allocated`` count grows with each run and
only the remainder up to its entitlement is asked for again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from time import perf_counter
from typing import Any, Literal, cast

import numpy as np
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from relieflink.audit import service as audit
from relieflink.common import crud
from relieflink.common import repository as common
from relieflink.models import (
    Allocation,
    AllocationRun,
    Community,
    District,
    Household,
    Item,
    ItemCategory,
    Kit,
    KitPurpose,
    NeedRequest,
    RequestLine,
    RequestSource,
    RequestStatus,
    User,
    Warehouse,
)
from relieflink.needs.policy import (
    HouseholdFacts,
    Policy,
    default_policy,
    entitled_packs,
    priority_class,
    priority_score,
)
from relieflink.optim.allocation import (
    CLASS_NAMES,
    LIMIT_CAPACITY,
    LIMIT_STOCK,
    AllocationProblem,
    AllocationResult,
    Demands,
    Locations,
    Warehouses,
    evaluate,
    solve_allocation,
    solve_fcfs,
)
from relieflink.stock import service as stock
from relieflink.users import access

Progress = Callable[[str], None]
_MEDICAL_PURPOSES = {KitPurpose.chronic_medication}
_INFANT_PURPOSES = {KitPurpose.infant, KitPurpose.maternity}
_MEDICAL_CATEGORIES = {ItemCategory.medicine}
_INFANT_CATEGORIES = {ItemCategory.infant, ItemCategory.maternity}
_CLASS_WORDS = {
    "medical": "medical",
    "infant_maternity": "infants and mothers",
    "other_vulnerable": "other vulnerable people",
    "everyone": "everyone",
}
_PER_COUNT = {"person": "size", "infant": "infants", "pregnant": "pregnant", "chronic": "chronic"}


@dataclass
class RunReport:
    """What a run decided (or, for a dry run, would decide)."""

    run_id: int | None
    dry_run: bool
    policy_version: str
    lines: int
    units_requested: int
    units_allocated: int
    runtime_s: float
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Lines:
    """Open request lines as parallel lists, in priority order (highest score first)."""

    line_id: list[int] = field(default_factory=list)
    request_id: list[int] = field(default_factory=list)
    household_id: list[int] = field(default_factory=list)
    sku: list[tuple[int | None, int | None]] = field(default_factory=list)
    demand: list[int] = field(default_factory=list)
    weight: list[int] = field(default_factory=list)
    klass: list[int] = field(default_factory=list)
    score: list[int] = field(default_factory=list)
    reasons: list[list[str]] = field(default_factory=list)
    location: list[int] = field(default_factory=list)
    region: list[int] = field(default_factory=list)
    arrival: list[int] = field(default_factory=list)
    groups: list[tuple[str, ...]] = field(default_factory=list)
    # Every open line of every open request: (line id, units it may get in all, units it has).
    targets: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)


def _load_lines(
    session: Session, policy: Policy, today: date
) -> tuple[_Lines, list[tuple[float, float]], list[str]]:
    """Open lines with their household, compound and district, capped at the entitlement."""
    kits = {k.id: k for k in session.scalars(select(Kit))}
    items = {i.id: i for i in session.scalars(select(Item))}
    per_kit = {
        kit.id: rule.per
        for rule in policy.entitlements
        for kit in kits.values()
        if kit.sku == rule.kit
    }
    stmt = (
        select(
            RequestLine.id,
            RequestLine.kit_id,
            RequestLine.item_id,
            RequestLine.quantity,
            RequestLine.allocated,
            NeedRequest.id,
            NeedRequest.household_id,
            NeedRequest.source,
            NeedRequest.medical_urgency,
            NeedRequest.carried_over,
            NeedRequest.created_at,
            Household.size,
            Household.infants,
            Household.pregnant,
            Household.chronic,
            Household.elderly_80,
            Household.disabled,
            Community.id,
            Community.lat,
            Community.lon,
            Community.lockdown_status,
            District.code,
        )
        .join(NeedRequest, NeedRequest.id == RequestLine.request_id)
        .join(Household, Household.id == NeedRequest.household_id)
        .join(Community, Community.id == Household.community_id)
        .join(District, District.id == Community.district_id)
        .where(NeedRequest.status == RequestStatus.open)
        .order_by(NeedRequest.created_at, RequestLine.id)
    )
    rows: list[tuple[Any, ...]] = []
    locations: dict[int, int] = {}
    coords: list[tuple[float, float]] = []
    regions: dict[str, int] = {}
    facts_cache: dict[int, tuple[HouseholdFacts, int, list[str]]] = {}
    targets: dict[int, list[tuple[int, int, int]]] = {}
    for arrival, r in enumerate(session.execute(stmt)):
        (
            line_id,
            kit_id,
            item_id,
            quantity,
            allocated,
            request_id,
            household_id,
            source,
            urgency,
            carried,
            created_at,
            size,
            infants,
            pregnant,
            chronic,
            elderly,
            disabled,
            community_id,
            lat,
            lon,
            lockdown,
            district,
        ) = r
        facts = HouseholdFacts(size, infants, pregnant, chronic, elderly, disabled, lockdown)
        kit = kits[kit_id] if kit_id is not None else None
        item = items[item_id] if item_id is not None else None
        per = per_kit.get(kit.id) if kit is not None else None
        if kit is not None and per is not None:
            cap = entitled_packs(policy, facts, per=per, persons=kit.persons, days=kit.days)
            weight = getattr(facts, _PER_COUNT[per])
        else:
            cap, weight = quantity, size
        target = min(quantity, cap)
        targets.setdefault(request_id, []).append((line_id, target, allocated))
        demand = target - allocated
        if demand <= 0:
            continue
        if kit is not None:
            medical = kit.purpose in _MEDICAL_PURPOSES
            infant = kit.purpose in _INFANT_PURPOSES
        else:
            assert item is not None  # a line names a kit or an item (database constraint)
            medical = item.category in _MEDICAL_CATEGORIES
            infant = item.category in _INFANT_CATEGORIES
        medical = medical or source == RequestSource.prescription
        klass = priority_class(medical=medical, infant_or_maternity=infant, facts=facts)
        key = request_id
        if key not in facts_cache:
            waiting = (today - created_at.date()).days
            score, reasons = priority_score(
                policy, facts, medical_urgency=urgency, carried_over=carried, days_waiting=waiting
            )
            facts_cache[key] = (facts, score, reasons)
        _, score, reasons = facts_cache[key]
        location = locations.setdefault(community_id, len(locations))
        if location == len(coords):
            coords.append((lat, lon))
        region = regions.setdefault(district, len(regions))
        groups = tuple(
            name
            for name, count in (
                ("infant", infants),
                ("pregnant", pregnant),
                ("chronic", chronic),
                ("elderly", elderly),
                ("disabled", disabled),
            )
            if count
        ) or ("other",)
        rows.append(
            (
                -score,
                arrival,
                line_id,
                request_id,
                household_id,
                (kit_id, item_id),
                demand,
                max(weight, 1),
                int(klass),
                score,
                reasons,
                location,
                region,
                groups,
            )
        )
    rows.sort(key=lambda row: (row[0], row[1]))
    lines = _Lines(targets=targets)
    for (
        _,
        arrival,
        line_id,
        request_id,
        household_id,
        sku,
        demand,
        weight,
        klass,
        score,
        reasons,
        location,
        region,
        groups,
    ) in rows:
        lines.line_id.append(line_id)
        lines.request_id.append(request_id)
        lines.household_id.append(household_id)
        lines.sku.append(sku)
        lines.demand.append(demand)
        lines.weight.append(weight)
        lines.klass.append(klass)
        lines.score.append(score)
        lines.reasons.append(reasons)
        lines.location.append(location)
        lines.region.append(region)
        lines.arrival.append(arrival)
        lines.groups.append(groups)
    return lines, coords, list(regions)


def _sku_grams(session: Session, skus: list[tuple[int | None, int | None]]) -> list[int]:
    kits = {k.id: k for k in session.scalars(select(Kit))}
    items = {i.id: i.grams_per_unit for i in session.scalars(select(Item))}
    return [
        sum(line.item.grams_per_unit * line.quantity for line in kits[kit_id].lines)
        if kit_id is not None
        else items[item_id or 0]
        for kit_id, item_id in skus
    ]


def _problem(
    session: Session, lines: _Lines, coords: list[tuple[float, float]], today: date
) -> tuple[AllocationProblem, list[Warehouse], list[tuple[int | None, int | None]]]:
    skus = sorted(set(lines.sku), key=lambda s: (s[0] or 0, s[1] or 0))
    sku_index = {sku: j for j, sku in enumerate(skus)}
    warehouses = list(session.scalars(select(Warehouse).order_by(Warehouse.id)))
    w_index = {w.id: i for i, w in enumerate(warehouses)}
    matrix = np.zeros((len(warehouses), len(skus)), dtype=np.int64)
    for kind in ("kit", "item"):
        for (warehouse_id, sku_id), units in stock.stock_matrix(
            session, kind=kind, as_of=today
        ).items():
            key = (sku_id, None) if kind == "kit" else (None, sku_id)
            j = sku_index.get(key)
            if j is not None and warehouse_id in w_index:
                matrix[w_index[warehouse_id], j] = units
    capacity = np.array([w.daily_outbound_kg * 1000 for w in warehouses], dtype=np.int64)
    problem = AllocationProblem(
        demands=Demands(
            item=np.array([sku_index[s] for s in lines.sku], dtype=np.int32),
            quantity=np.array(lines.demand, dtype=np.int32),
            priority=np.array(lines.klass, dtype=np.int8),
            weight=np.array(lines.weight, dtype=np.float64),
            location=np.array(lines.location, dtype=np.int32),
            min_ration=np.ones(len(lines.demand), dtype=np.int32),
            region=np.array(lines.region, dtype=np.int32),
            arrival=np.array(lines.arrival, dtype=np.int64),
        ),
        warehouses=Warehouses(
            lat=np.array([w.lat for w in warehouses]),
            lon=np.array([w.lon for w in warehouses]),
            capacity=capacity,
        ),
        locations=Locations(
            lat=np.array([c[0] for c in coords]), lon=np.array([c[1] for c in coords])
        ),
        stock=matrix,
        unit_weight=np.array(_sku_grams(session, skus), dtype=np.int64),
    )
    return problem, warehouses, skus


def _outcome(
    lines: _Lines,
    problem: AllocationProblem,
    result: AllocationResult,
    regions: list[str],
    skus: list[tuple[int | None, int | None]],
    names: dict[tuple[int | None, int | None], str],
) -> dict[str, Any]:
    measures = evaluate(problem, result)
    return {
        "method": result.method,
        "coverage": {
            CLASS_NAMES[c]: round(float(v), 4) for c, v in enumerate(measures.class_coverage)
        },
        "lines_served": {
            CLASS_NAMES[c]: round(float(v), 4) for c, v in enumerate(measures.class_lines_served)
        },
        "gini": {
            CLASS_NAMES[c]: (None if np.isnan(v) else round(float(v), 4))
            for c, v in enumerate(measures.gini)
        },
        "unmet_by_item": {
            names[s]: int(v) for s, v in zip(skus, measures.unmet_by_item, strict=True) if v
        },
        "unmet_by_district": (
            {regions[r]: int(v) for r, v in enumerate(measures.unmet_by_region) if v}
            if measures.unmet_by_region is not None
            else {}
        ),
        "groups": _group_coverage(lines, result),
        "units_allocated": int(result.allocated.sum()),
        "runtime_s": round(result.runtime_s, 3),
    }


GROUPS = ("infant", "pregnant", "chronic", "elderly", "disabled", "other")


def _group_coverage(lines: _Lines, result: AllocationResult) -> dict[str, float | None]:
    """Allocated / requested units over the lines of households in each vulnerable group."""
    asked = dict.fromkeys(GROUPS, 0)
    got = dict.fromkeys(GROUPS, 0)
    for groups, demand, allocated in zip(
        lines.groups, lines.demand, result.allocated.tolist(), strict=True
    ):
        for group in groups:
            asked[group] += demand
            got[group] += allocated
    return {g: (round(got[g] / asked[g], 4) if asked[g] else None) for g in GROUPS}


def _reason_text(
    klass: int, reasons: list[str], got: int, wanted: int, level: float, limit: int
) -> str:
    parts = [f"priority class: {_CLASS_WORDS.get(CLASS_NAMES[klass], CLASS_NAMES[klass])}"]
    if reasons:
        parts.append("; ".join(reasons))
    share = f"{got} of {wanted}"
    if got < wanted:
        why = {
            LIMIT_STOCK: "stock ran short",
            LIMIT_CAPACITY: "warehouse outbound capacity ran short",
        }.get(limit, "")
        share += f" (everyone in this class reached {level:.2f} packs per person; {why})"
    parts.append(share)
    return " — ".join(parts)


def run_allocation(
    session: Session,
    *,
    actor: User | None,
    today: date,
    dry_run: bool = False,
    policy: Policy | None = None,
    progress: Progress | None = None,
    method: Literal["priority", "fcfs"] = "priority",
) -> RunReport:
    """Allocate available stock to open requests; reserve it unless ``dry_run``.

    ``method="fcfs"`` applies the first-come-first-served baseline instead of the policy (for
    side-by-side simulations); both outcomes are always in the run's summary.
    """
    if actor is not None:
        access.ensure_role(actor, access.STAFF)
    step = progress or (lambda _m: None)
    policy = policy or default_policy()
    started = perf_counter()
    step("reading open requests")
    lines, coords, regions = _load_lines(session, policy, today)
    report = RunReport(
        run_id=None,
        dry_run=dry_run,
        policy_version=policy.version,
        lines=len(lines.line_id),
        units_requested=sum(lines.demand),
        units_allocated=0,
        runtime_s=0.0,
    )
    if not lines.line_id:
        if not dry_run:
            _apply_to_lines(session, lines, {})  # lines already at their entitlement
        report.runtime_s = round(perf_counter() - started, 3)
        return report
    step("reading available stock")
    problem, warehouses, skus = _problem(session, lines, coords, today)
    names = _sku_names(session, skus)
    step("allocating")
    result = solve_allocation(problem)
    baseline = solve_fcfs(problem)
    applied = result if method == "priority" else baseline
    report.units_allocated = int(applied.allocated.sum())
    report.summary = {
        "policy_version": policy.version,
        "applied": method,
        "priority": _outcome(lines, problem, result, regions, skus, names),
        "fcfs": _outcome(lines, problem, baseline, regions, skus, names),
    }
    if not dry_run:
        step("reserving stock")
        run = AllocationRun(
            created_by_id=actor.id if actor else None,
            policy_version=policy.version,
            method=applied.method,
            lines_considered=report.lines,
            units_requested=report.units_requested,
            units_allocated=report.units_allocated,
            runtime_s=0.0,
            summary=report.summary,
        )
        session.add(run)
        session.flush()
        _record(session, run, lines, applied, problem, warehouses, skus, today)
        report.run_id = run.id
        audit.record(
            session,
            actor=actor,
            action="allocate",
            entity="allocation_run",
            entity_id=run.id,
            detail={"units": report.units_allocated, "policy": policy.version},
        )
    report.runtime_s = round(perf_counter() - started, 3)
    if report.run_id is not None:
        session.execute(
            update(AllocationRun)
            .where(AllocationRun.id == report.run_id)
            .values(runtime_s=report.runtime_s)
        )
    return report


def _sku_names(
    session: Session, skus: list[tuple[int | None, int | None]]
) -> dict[tuple[int | None, int | None], str]:
    kits = dict(session.execute(select(Kit.id, Kit.sku)).all())
    items = dict(session.execute(select(Item.id, Item.sku)).all())
    return {(k, i): kits[k] if k is not None else items[i or 0] for k, i in skus}


def _record(
    session: Session,
    run: AllocationRun,
    lines: _Lines,
    result: AllocationResult,
    problem: AllocationProblem,
    warehouses: list[Warehouse],
    skus: list[tuple[int | None, int | None]],
    today: date,
) -> None:
    """Reserve each (line, warehouse) piece and store it with its reasons, in bulk."""
    line_idx, w_idx, units = result.shipments()
    level = result.group_level
    rows: list[dict[str, Any]] = []
    added: dict[int, int] = defaultdict(int)
    for i, w, n in zip(line_idx.tolist(), w_idx.tolist(), units.tolist(), strict=True):
        kit_id, item_id = lines.sku[i]
        reference = f"alloc:{run.id}:{lines.line_id[i]}:{warehouses[w].id}"
        stock.reserve(
            session,
            warehouse_id=warehouses[w].id,
            kit_id=kit_id,
            item_id=item_id,
            quantity=n,
            reference=reference,
            actor=None,
            as_of=today,
        )
        klass = lines.klass[i]
        item = int(problem.demands.item[i])
        rows.append(
            {
                "run_id": run.id,
                "line_id": lines.line_id[i],
                "household_id": lines.household_id[i],
                "warehouse_id": warehouses[w].id,
                "kit_id": kit_id,
                "item_id": item_id,
                "quantity": n,
                "priority_class": klass,
                "score": lines.score[i],
                "reference": reference,
                "reasons": _reason_text(
                    klass,
                    lines.reasons[i],
                    int(result.allocated[i]),
                    lines.demand[i],
                    float(level[klass, item]),
                    int(result.limit[i]),
                ),
            }
        )
        added[lines.line_id[i]] += n
    for start in range(0, len(rows), 10_000):
        session.execute(insert(Allocation), rows[start : start + 10_000])
    _apply_to_lines(session, lines, added)


def _apply_to_lines(session: Session, lines: _Lines, added: dict[int, int]) -> None:
    """Add to each line's ``allocated``; a request whose lines all reached their entitlement (or
    what was asked, if less) becomes ``allocated``."""
    if added:
        table = cast(Table, RequestLine.__table__)  # Core: one executemany, no ORM bookkeeping
        session.execute(
            update(table)
            .where(table.c.id == bindparam("line"))
            .values(allocated=table.c.allocated + bindparam("units")),
            [{"line": line, "units": units} for line, units in added.items()],
        )
    served = [
        request_id
        for request_id, entries in lines.targets.items()
        if all(allocated + added.get(line, 0) >= target for line, target, allocated in entries)
    ]
    for start in range(0, len(served), 5000):
        session.execute(
            update(NeedRequest)
            .where(NeedRequest.id.in_(served[start : start + 5000]))
            .values(status=RequestStatus.allocated)
        )
    session.expire_all()  # bulk updates bypass the identity map: reload what callers hold


def require_run(session: Session, run_id: int, *, actor: User) -> AllocationRun:
    """One allocation run (staff only)."""
    access.ensure_role(actor, access.STAFF)
    return crud.require(session, AllocationRun, run_id, label="allocation run")


def list_runs(
    session: Session, *, actor: User, offset: int = 0, limit: int = 50
) -> tuple[Sequence[AllocationRun], int]:
    """The newest allocation runs first (staff only)."""
    access.ensure_role(actor, access.STAFF)
    return common.page(
        session, select(AllocationRun), offset=offset, limit=limit, order_by=AllocationRun.id.desc()
    )


def list_allocations(
    session: Session,
    run_id: int,
    *,
    actor: User,
    household_id: int | None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[Sequence[Allocation], int]:
    """What one run gave to whom and why; a household's own allocations for its residents."""
    stmt = access.scope_by_household(
        select(Allocation).where(Allocation.run_id == run_id), Allocation.household_id, actor
    )
    if household_id is not None:
        stmt = stmt.where(Allocation.household_id == household_id)
    return common.page(session, stmt, offset=offset, limit=limit, order_by=Allocation.id)
