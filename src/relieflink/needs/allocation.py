"""The allocation's rules: open request lines in as arrays, a run's record and reasons out.

The run itself is the flow :func:`relieflink.flows.allocation.run_allocation` (load, solve with
:func:`relieflink.optim.allocation.solve_allocation`, reserve, record). This module holds the
needs side of it: the open lines as arrays under the ration policy (entitlement caps, strict
classes, the explained priority score), the problem those arrays pose given the available stock,
the run's summary (coverage, unmet need, a first-come-first-served comparison), and the rows
that record what was decided. Its SQL is in :mod:`relieflink.needs.repository`.

Running it twice does not double-reserve: a line's ``allocated`` count grows with each run and
only the remainder up to its entitlement is asked for again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from relieflink.catalog import service as catalog
from relieflink.common import crud
from relieflink.common import repository as common
from relieflink.households.vulnerability import any_vulnerable
from relieflink.models import (
    Allocation,
    AllocationRun,
    AllocationState,
    Household,
    ItemCategory,
    KitPurpose,
    LockdownStatus,
    PriorityClass,
    RequestSource,
    User,
    Warehouse,
)
from relieflink.needs import repository as repo
from relieflink.needs.policy import (
    HouseholdFacts,
    Policy,
    default_policy,
    priority_classes,
    priority_score,
    priority_scores,
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
    haversine_matrix,
)
from relieflink.stock.ledger import Reservation
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
    # Each (line, warehouse) piece in words (only when the caller asks for them).
    allocations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def caps(self) -> list[dict[str, Any]]:
        """Stock held back at warehouses whose outbound capacity was reached (see :func:`caps`)."""
        return list(self.summary.get("caps", []))


@dataclass
class Lines:
    """Open request lines as arrays, in priority order (highest score, then earliest, first).

    A line's SKU is one integer: ``kit_id`` for a kit, ``-item_id`` for an item.
    """

    line_id: NDArray[np.int64]
    request_id: NDArray[np.int64]
    household_id: NDArray[np.int64]
    sku: NDArray[np.int64]
    demand: NDArray[np.int64]
    weight: NDArray[np.int64]
    klass: NDArray[np.int8]
    score: NDArray[np.int64]
    location: NDArray[np.int64]
    region: NDArray[np.int64]
    arrival: NDArray[np.int64]
    facts: dict[str, NDArray[Any]]  # household, compound and request facts, for the reasons
    coords: NDArray[np.float64]  # (locations, 2): each community's gate
    regions: list[str]
    # Every open line (served or not): its request, the units it may get in all, and has.
    all_request: NDArray[np.int64]
    all_line: NDArray[np.int64]
    all_target: NDArray[np.int64]
    all_allocated: NDArray[np.int64]
    # Each location's community id (locations are the compounds' gates, in id order).
    communities: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.line_id.shape[0])


def sku_table(session: Session, policy: Policy) -> dict[int, dict[str, Any]]:
    """Per SKU key: class flags, the entitlement rule and the kit size, and weight in grams."""
    table: dict[int, dict[str, Any]] = {}
    rules = {rule.kit: rule.per for rule in policy.entitlements}
    for kit in repo.all_kits(session):
        table[kit.id] = {
            "medical": kit.purpose in _MEDICAL_PURPOSES,
            "infant": kit.purpose in _INFANT_PURPOSES,
            "per": rules.get(kit.sku),
            "person_days": kit.persons * kit.days,
            "grams": catalog.kit_size(kit)[0],
            "sku": kit.sku,
            "food_person_days": kit.persons * kit.days
            if kit.purpose == KitPurpose.family_food
            else 0,
        }
    for item in repo.all_items(session):
        table[-item.id] = {
            "medical": item.category in _MEDICAL_CATEGORIES,
            "infant": item.category in _INFANT_CATEGORIES,
            "per": None,
            "person_days": 1,
            "grams": item.grams_per_unit,
            "sku": item.sku,
            "food_person_days": 0,
        }
    return table


HISTORY_DAYS = 30


def _delivery_history(
    session: Session,
    skus: dict[int, dict[str, Any]],
    today: date,
    household_id: NDArray[np.int64],
    size: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Per line: days since its household's last delivery (-1: none in the last month) and the
    days of food that delivery still covers (family packs' person-days over household size)."""
    since = np.full(household_id.shape[0], -1, dtype=np.int64)
    left = np.zeros(household_id.shape[0], dtype=np.int64)
    rows = repo.delivered_since(
        session, datetime.combine(today - timedelta(days=HISTORY_DAYS), time(), UTC)
    )
    if not rows:
        return since, left
    last: dict[int, date] = {}
    for hh, closed, _, _ in rows:
        assert closed is not None  # delivered allocations are closed
        day = closed.date()
        if day > last.get(hh, date.min):
            last[hh] = day
    food: dict[int, int] = defaultdict(int)
    for hh, closed, kit_id, quantity in rows:
        if closed is not None and closed.date() == last[hh] and kit_id is not None:
            food[hh] += quantity * skus[kit_id]["food_person_days"]
    for i, hh in enumerate(household_id.tolist()):
        if hh in last:
            days = (today - last[hh]).days
            since[i] = days
            left[i] = max(0, food[hh] // max(int(size[i]), 1) - days)
    return since, left


READ_CHUNK = 50_000  # open lines read (and made arrays) at a time


def _line_columns(rows: Sequence[Any], today: date, words: dict[Any, str]) -> list[NDArray[Any]]:
    """One chunk of :func:`repo.open_line_chunks` as one array per column: integers (None
    is 0), coordinates, ``prescription`` (bool), ``waiting`` days for ``created_at``, and the
    lockdown status and district code as shared strings (``words`` keeps one of each)."""
    cols = list(zip(*rows, strict=True))
    out: list[NDArray[Any]] = []
    for i, values in enumerate(cols):
        if i == 7:
            out.append(np.array([s == RequestSource.prescription for s in values], dtype=bool))
        elif i == 10:
            created = np.array([c.date() for c in values], dtype="datetime64[D]")
            out.append((np.datetime64(today, "D") - created).astype(np.int64))
        elif i in (18, 19):
            out.append(np.array(values, dtype=np.float64))
        elif i in (20, 21):
            out.append(np.array([words.setdefault(v, str(v)) for v in values], dtype=object))
        else:
            out.append(
                np.fromiter(
                    (0 if v is None else v for v in values), dtype=np.int64, count=len(rows)
                )
            )
    return out


def _empty_columns() -> list[NDArray[Any]]:
    kinds = {7: bool, 18: np.float64, 19: np.float64, 20: object, 21: object}
    return [np.zeros(0, dtype=kinds.get(i, np.int64)) for i in range(len(repo.OPEN_LINE_COLUMNS))]


def load_lines(
    session: Session,
    policy: Policy,
    skus: dict[int, dict[str, Any]],
    today: date,
    *,
    chunk_rows: int = READ_CHUNK,
) -> Lines:
    """Open lines with their household, compound and district, capped at the entitlement.

    The lines are read ``chunk_rows`` at a time, each chunk made arrays before the next is
    read: memory is the arrays' (a few hundred bytes a line), not millions of Python rows'."""
    words: dict[Any, str] = {}
    parts = [
        _line_columns(rows, today, words) for rows in repo.open_line_chunks(session, chunk_rows)
    ]
    cols = [np.concatenate(c) for c in zip(*parts, strict=True)] if parts else _empty_columns()
    n = int(cols[0].shape[0])
    (line_id, kit_id, item_id, quantity, allocated, request_id, household_id) = cols[:7]
    prescription, urgency, carried, waiting = cols[7], cols[8], cols[9], cols[10]
    size, infants, pregnant, chronic, elderly, disabled, community = cols[11:18]
    lockdown = cols[20]
    sku = np.where(kit_id != 0, kit_id, -item_id)

    keys = np.unique(sku)
    medical = np.isin(sku, [k for k in keys if skus[int(k)]["medical"]]) | prescription
    infant = np.isin(sku, [k for k in keys if skus[int(k)]["infant"]])
    counts = {"person": size, "infant": infants, "pregnant": pregnant, "chronic": chronic}
    count = size.copy()  # the weight of lines no entitlement rule covers: the household's size
    cap = quantity.copy()
    for key in keys:
        rule = skus[int(key)]["per"]
        if rule is None:
            continue
        mask = sku == key
        count[mask] = counts[rule][mask]
        days = policy.period_days
        cap[mask] = -(-count[mask] * days // skus[int(key)]["person_days"])  # ceiling division
    target = np.minimum(quantity, cap)
    vulnerable = any_vulnerable(
        {
            "infants": infants,
            "pregnant": pregnant,
            "chronic": chronic,
            "elderly_80": elderly,
            "disabled": disabled,
        }
    )
    klass = priority_classes(medical=medical, infant_or_maternity=infant, vulnerable=vulnerable)
    since, left = _delivery_history(session, skus, today, household_id, size)
    score = priority_scores(
        policy,
        size=size,
        infants=infants,
        pregnant=pregnant,
        chronic=chronic,
        elderly_80=elderly,
        disabled=disabled,
        sealed=lockdown == LockdownStatus.sealed,
        controlled=lockdown == LockdownStatus.controlled,
        medical_urgency=urgency,
        carried_over=carried,
        days_waiting=waiting,
        days_since_delivery=since,
        supply_days_left=left,
    )
    gates, location = np.unique(community, return_inverse=True)
    first = np.unique(location, return_index=True)[1]
    lat, lon = cols[18], cols[19]
    regions, region = np.unique(cols[21], return_inverse=True)
    demand = target - allocated
    arrival = np.arange(n, dtype=np.int64)
    keep = np.flatnonzero(demand > 0)
    order = keep[np.lexsort((arrival[keep], -score[keep]))]
    facts = {
        "size": size,
        "infants": infants,
        "pregnant": pregnant,
        "chronic": chronic,
        "elderly_80": elderly,
        "disabled": disabled,
        "lockdown": lockdown,
        "urgency": urgency,
        "carried": carried,
        "waiting": waiting,
        "since": since,
        "left": left,
    }
    return Lines(
        line_id=line_id[order],
        request_id=request_id[order],
        household_id=household_id[order],
        sku=sku[order],
        demand=demand[order],
        weight=np.maximum(count[order], 1),
        klass=klass[order],
        score=score[order],
        location=location[order].astype(np.int64),
        region=region[order].astype(np.int64),
        arrival=arrival[order],
        facts={k: v[order] for k, v in facts.items()},
        coords=np.column_stack([lat[first], lon[first]]) if n else np.zeros((0, 2)),
        regions=[str(r) for r in regions],
        all_request=request_id,
        all_line=line_id,
        all_target=target,
        all_allocated=allocated,
        communities=gates.astype(np.int64),
    )


def warehouses(session: Session) -> list[Warehouse]:
    """The warehouses a run ships from, in the order of the problem's rows."""
    return repo.warehouses_by_id(session)


def build_problem(
    lines: Lines,
    skus: dict[int, dict[str, Any]],
    policy: Policy,
    warehouses: list[Warehouse],
    available: dict[str, dict[tuple[int, int], int]],
    *,
    reach: NDArray[np.bool_] | None = None,
) -> tuple[AllocationProblem, NDArray[np.int64]]:
    """The problem the open ``lines`` pose, given the units ``available`` per (warehouse, kit)
    under ``"kit"`` and per (warehouse, item) under ``"item"``; and the SKU key of each of its
    item columns. ``reach[location, warehouse]`` (from the dispatch domain) says which
    warehouses can deliver to each gate: a location no warehouse reaches asks for nothing, and
    the others are sourced from a warehouse they cannot reach only when no reachable one has
    the stock (the plan then releases that parcel for the next wave)."""
    keys, item_index = np.unique(lines.sku, return_inverse=True)
    column = {int(k): j for j, k in enumerate(keys)}
    w_index = {w.id: i for i, w in enumerate(warehouses)}
    matrix = np.zeros((len(warehouses), len(keys)), dtype=np.int64)
    for kind, sign in (("kit", 1), ("item", -1)):
        for (warehouse_id, sku_id), units in available[kind].items():
            j = column.get(sign * sku_id)
            if j is not None and warehouse_id in w_index:
                matrix[w_index[warehouse_id], j] = units
    problem = AllocationProblem(
        demands=Demands(
            item=item_index.astype(np.int32),
            quantity=(
                lines.demand
                if reach is None
                else np.where(np.asarray(reach.any(axis=1))[lines.location], lines.demand, 0)
            ).astype(np.int32),
            priority=lines.klass,
            weight=lines.weight.astype(np.float64),
            location=lines.location.astype(np.int32),
            min_ration=np.full(len(lines), policy.min_ration, dtype=np.int32),
            region=lines.region.astype(np.int32),
            arrival=lines.arrival,
            score=lines.score,
        ),
        warehouses=Warehouses(
            lat=np.array([w.lat for w in warehouses]),
            lon=np.array([w.lon for w in warehouses]),
            capacity=np.array([w.daily_outbound_kg * 1000 for w in warehouses], dtype=np.int64),
        ),
        locations=Locations(lat=lines.coords[:, 0], lon=lines.coords[:, 1]),
        stock=matrix,
        unit_weight=np.array([skus[int(k)]["grams"] for k in keys], dtype=np.int64),
        distance=None if reach is None else _reach_distance(lines, warehouses, reach),
    )
    return problem, keys


def within_reach(
    lines: Lines,
    problem: AllocationProblem,
    reach: NDArray[np.bool_] | None,
    solve: Callable[[AllocationProblem], AllocationResult],
    *,
    rounds: int = 3,
) -> tuple[AllocationProblem, AllocationResult]:
    """Solve, then take back the units a line got from a warehouse its gate cannot be reached
    from and solve again without them (the stock they held goes to lines that can get it);
    what a last round still sources out of reach, the plan releases for the next wave."""
    result = solve(problem)
    if reach is None:
        return problem, result
    for _ in range(rounds):
        line, warehouse, units = result.shipments()
        far = ~reach[lines.location[line], warehouse]
        if not far.any():
            break
        cut = np.bincount(line[far], weights=units[far], minlength=len(lines)).astype(np.int64)
        quantity = np.asarray(problem.demands.quantity, dtype=np.int64) - cut
        problem = replace(
            problem, demands=replace(problem.demands, quantity=quantity.astype(np.int32))
        )
        result = solve(problem)
    return problem, result


UNREACHABLE_M = 1e8  # beyond any road distance: such a warehouse is the last resort


def _reach_distance(
    lines: Lines, warehouses: list[Warehouse], reach: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """Gate × warehouse distances, with those no vehicle can drive pushed behind every other."""
    d = haversine_matrix(
        lines.coords[:, 0],
        lines.coords[:, 1],
        np.array([w.lat for w in warehouses]),
        np.array([w.lon for w in warehouses]),
    )
    return np.where(reach, d, d + UNREACHABLE_M)


def _outcome(
    lines: Lines,
    problem: AllocationProblem,
    result: AllocationResult,
    keys: NDArray[np.int64],
    skus: dict[int, dict[str, Any]],
) -> dict[str, Any]:
    measures = evaluate(problem, result)
    names = [skus[int(k)]["sku"] for k in keys]
    # A class with no lines has no coverage (None, shown as "—"), not 100 %.
    quantity = np.asarray(problem.demands.quantity)
    klass = np.asarray(problem.demands.priority).astype(np.intp)
    asked = np.bincount(klass[quantity > 0], minlength=len(CLASS_NAMES))

    def per_class(values: NDArray[np.float64]) -> dict[str, float | None]:
        return {
            CLASS_NAMES[c]: round(float(v), 4) if asked[c] else None for c, v in enumerate(values)
        }

    return {
        "method": result.method,
        "coverage": per_class(measures.class_coverage),
        "lines_served": per_class(measures.class_lines_served),
        "gini": {
            CLASS_NAMES[c]: (None if np.isnan(v) else round(float(v), 4))
            for c, v in enumerate(measures.gini)
        },
        "unmet_by_item": {names[j]: int(v) for j, v in enumerate(measures.unmet_by_item) if v},
        "unmet_by_district": (
            {lines.regions[r]: int(v) for r, v in enumerate(measures.unmet_by_region) if v}
            if measures.unmet_by_region is not None
            else {}
        ),
        "groups": _group_coverage(lines, result),
        "units_allocated": int(result.allocated.sum()),
        "runtime_s": round(result.runtime_s, 3),
    }


GROUPS = ("infant", "pregnant", "chronic", "elderly", "disabled", "other")
_GROUP_FACT = {
    "infant": "infants",
    "pregnant": "pregnant",
    "chronic": "chronic",
    "elderly": "elderly_80",
    "disabled": "disabled",
}


# The groups a coordinator checks first, in the order the report shows them.
VULNERABLE_GROUPS = ("infant", "pregnant", "chronic", "elderly")


@dataclass(frozen=True)
class GroupCoverage:
    """One vulnerable group's coverage under the policy and under first come, first served
    (None: no household of the group asked for anything)."""

    group: str
    policy: float | None
    fcfs: float | None


def group_report(summary: dict[str, Any]) -> list[GroupCoverage]:
    """Coverage per vulnerable group, policy beside first come, first served, from a run's
    summary (empty for a run without one)."""
    if not summary:
        return []
    policy, fcfs = summary["priority"]["groups"], summary["fcfs"]["groups"]
    return [GroupCoverage(g, policy.get(g), fcfs.get(g)) for g in VULNERABLE_GROUPS]


def latest_group_report(session: Session, *, actor: User) -> tuple[int, list[GroupCoverage]]:
    """The newest allocation run's id and :func:`group_report` (0 and [] before any run)."""
    runs, _ = list_runs(session, actor=actor, limit=1)
    return (runs[0].id, group_report(runs[0].summary)) if runs else (0, [])


def _group_coverage(lines: Lines, result: AllocationResult) -> dict[str, float | None]:
    """Allocated / requested units over the lines of households in each vulnerable group."""
    masks = {g: lines.facts[f] > 0 for g, f in _GROUP_FACT.items()}
    masks["other"] = (
        ~np.logical_or.reduce(list(masks.values())) if len(lines) else np.zeros(0, bool)
    )
    out: dict[str, float | None] = {}
    for group in GROUPS:
        asked = int(lines.demand[masks[group]].sum())
        got = int(result.allocated[masks[group]].sum())
        out[group] = round(got / asked, 4) if asked else None
    return out


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


@dataclass(frozen=True)
class OpenLine:
    """An open request line as the next run sees it: its class and the units it still lacks."""

    request_id: int
    household_id: int
    priority_class: PriorityClass
    units: int


def open_lines(
    session: Session, *, actor: User | None, today: date, policy: Policy | None = None
) -> list[OpenLine]:
    """Open request lines still short of their entitlement, classed by the allocation's own
    rules (for the dashboard's "waiting by priority class"); reads only."""
    if actor is not None:
        access.ensure_role(actor, access.STAFF)
    policy = policy or default_policy()
    lines = load_lines(session, policy, sku_table(session, policy), today)
    return [
        OpenLine(request, household, PriorityClass(klass), units)
        for request, household, klass, units in zip(
            lines.request_id.tolist(),
            lines.household_id.tolist(),
            lines.klass.tolist(),
            lines.demand.tolist(),
            strict=True,
        )
    ]


def caps(
    result: AllocationResult,
    keys: NDArray[np.int64],
    skus: dict[int, dict[str, Any]],
    warehouses: list[Warehouse],
) -> list[dict[str, Any]]:
    """Stock each warehouse held back because its daily outbound capacity was reached: one
    entry per (warehouse, SKU), with the reason in words."""
    out: list[dict[str, Any]] = []
    for w, j in np.argwhere(result.held_back > 0).tolist():
        warehouse = warehouses[w]
        units = int(result.held_back[w, j])
        out.append(
            {
                "warehouse_code": warehouse.code,
                "sku": skus[int(keys[j])]["sku"],
                "held_back_units": units,
                "reason": f"outbound capacity {warehouse.daily_outbound_kg:,} kg/day reached",
            }
        )
    return out


def cap_line(cap: dict[str, Any]) -> str:
    """One cap in words, e.g. "WH-09: 27 × KIT-FAMILY-FOOD held back: outbound capacity 180
    kg/day reached"."""
    return (
        f"{cap['warehouse_code']}: {cap['held_back_units']:,} × {cap['sku']} held back: "
        f"{cap['reason']}"
    )


def summarize(
    lines: Lines,
    problem: AllocationProblem,
    keys: NDArray[np.int64],
    skus: dict[int, dict[str, Any]],
    *,
    policy: Policy,
    method: str,
    result: AllocationResult,
    baseline: AllocationResult,
    warehouses: list[Warehouse],
) -> dict[str, Any]:
    """A run's summary: the policy's outcome beside first come, first served, which applied,
    and the stock the applied one held back at capped warehouses."""
    applied = result if method == "priority" else baseline
    return {
        "policy_version": policy.version,
        "applied": method,
        "priority": _outcome(lines, problem, result, keys, skus),
        "fcfs": _outcome(lines, problem, baseline, keys, skus),
        "caps": caps(applied, keys, skus, warehouses),
    }


def start_run(session: Session, report: RunReport, *, method: str, actor: User | None) -> int:
    """The run's record (its runtime is set at the end, :func:`finish_run`); returns its id."""
    run = AllocationRun(
        created_by_id=actor.id if actor else None,
        policy_version=report.policy_version,
        method=method,
        lines_considered=report.lines,
        units_requested=report.units_requested,
        units_allocated=report.units_allocated,
        runtime_s=0.0,
        summary=report.summary,
    )
    session.add(run)
    session.flush()
    return run.id


def finish_run(session: Session, run_id: int, runtime_s: float) -> None:
    repo.set_run_runtime(session, run_id, runtime_s)


def _reasons(policy: Policy, key: tuple[Any, ...]) -> list[str]:
    """The words behind a score, for one combination of facts (``_FACT_NAMES``' values)."""
    size, infants, pregnant, chronic, elderly, disabled = (int(v) for v in key[:6])
    facts = HouseholdFacts(
        size, infants, pregnant, chronic, elderly, disabled, LockdownStatus(key[6])
    )
    return priority_score(
        policy,
        facts,
        medical_urgency=int(key[7]),
        carried_over=int(key[8]),
        days_waiting=int(key[9]),
        days_since_delivery=None if key[10] < 0 else int(key[10]),
        supply_days_left=int(key[11]),
    )[1]


_FACT_NAMES = (
    "size",
    "infants",
    "pregnant",
    "chronic",
    "elderly_80",
    "disabled",
    "lockdown",
    "urgency",
    "carried",
    "waiting",
    "since",
    "left",
)


@dataclass
class Decided:
    """What a run decided, ready to store: one allocation row and one reservation per (line,
    warehouse) piece, and the units each line gets."""

    rows: list[dict[str, Any]]
    reservations: list[Reservation]
    added: dict[int, int]


def decided(
    run_id: int,
    lines: Lines,
    result: AllocationResult,
    problem: AllocationProblem,
    policy: Policy,
    warehouses: list[Warehouse],
) -> Decided:
    """Each (line, warehouse) piece of ``result`` with its reasons and its stock reference."""
    line_idx, w_idx, units = result.shipments()
    # The shipped lines' values as Python lists, read once (not a NumPy scalar a field a row).
    shipped: dict[str, NDArray[Any]] = {
        "line": lines.line_id[line_idx],
        "sku": lines.sku[line_idx],
        "household": lines.household_id[line_idx],
        "klass": lines.klass[line_idx],
        "score": lines.score[line_idx],
        "got": result.allocated[line_idx],
        "wanted": lines.demand[line_idx],
        "limit": result.limit[line_idx],
        "level": result.group_level[
            lines.klass[line_idx].astype(np.intp), np.asarray(problem.demands.item)[line_idx]
        ],
    }
    values = {name: column.tolist() for name, column in shipped.items()}
    facts = zip(*(lines.facts[name][line_idx].tolist() for name in _FACT_NAMES), strict=True)
    rows: list[dict[str, Any]] = []
    reservations: list[Reservation] = []
    added: dict[int, int] = defaultdict(int)
    # Households share a few hundred combinations of facts (and of shares): each is put into
    # words once per run.
    words: dict[tuple[Any, ...], list[str]] = {}
    texts: dict[tuple[Any, ...], str] = {}
    for n, w, line_id, key, household_id, klass, score, got, wanted, limit, level, fact in zip(
        units.tolist(),
        w_idx.tolist(),
        values["line"],
        values["sku"],
        values["household"],
        values["klass"],
        values["score"],
        values["got"],
        values["wanted"],
        values["limit"],
        values["level"],
        facts,
        strict=True,
    ):
        kit_id, item_id = (key, None) if key > 0 else (None, -key)
        warehouse_id = warehouses[w].id
        reference = f"alloc:{run_id}:{line_id}:{warehouse_id}"
        reservations.append(Reservation(warehouse_id, item_id, kit_id, n, reference))
        said = (klass, fact, got, wanted, level, limit)
        if said not in texts:
            if fact not in words:
                words[fact] = _reasons(policy, fact)
            texts[said] = _reason_text(klass, words[fact], got, wanted, level, limit)
        rows.append(
            {
                "run_id": run_id,
                "line_id": line_id,
                "household_id": household_id,
                "warehouse_id": warehouse_id,
                "kit_id": kit_id,
                "item_id": item_id,
                "quantity": n,
                "priority_class": klass,
                "score": score,
                "reference": reference,
                "state": AllocationState.reserved,
                "closed_at": None,
                "reasons": texts[said],
            }
        )
        added[line_id] += n
    return Decided(rows, reservations, dict(added))


def described(
    session: Session,
    decision: Decided,
    skus: dict[int, dict[str, Any]],
    warehouses: list[Warehouse],
) -> list[dict[str, Any]]:
    """The decided pieces as codes and words (for ``relieflink allocate --json``)."""
    households = common.codes_by_id(session, Household)
    codes = {w.id: w.code for w in warehouses}
    return [
        {
            "household_code": households[row["household_id"]],
            "sku": skus[row["kit_id"] if row["kit_id"] is not None else -row["item_id"]]["sku"],
            "units": row["quantity"],
            "warehouse_code": codes[row["warehouse_id"]],
            "priority_class": CLASS_NAMES[row["priority_class"]],
            "score": row["score"],
            "reasons": row["reasons"],
        }
        for row in decision.rows
    ]


def store_allocations(session: Session, lines: Lines, decision: Decided) -> None:
    """Store the run's allocation rows (their stock reserved already) and add to the lines."""
    repo.insert_allocations(
        session, (tuple(row[c] for c in repo.ALLOCATION_COLUMNS) for row in decision.rows)
    )
    apply_to_lines(session, lines, decision.added)


def apply_to_lines(session: Session, lines: Lines, added: dict[int, int]) -> None:
    """Add to each line's ``allocated``; a request whose lines all reached their entitlement (or
    what was asked, if less) becomes ``allocated``."""
    repo.add_allocated(session, added)
    extra = np.array([added.get(int(line), 0) for line in lines.all_line], dtype=np.int64)
    short = lines.all_allocated + extra < lines.all_target
    served = np.setdiff1d(np.unique(lines.all_request), np.unique(lines.all_request[short]))
    repo.mark_allocated(session, served.tolist())
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
    return repo.runs_page(session, offset=offset, limit=limit)


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
        repo.allocations_of_run(run_id), Allocation.household_id, actor
    )
    if household_id is not None:
        stmt = stmt.where(Allocation.household_id == household_id)
    return repo.allocations_page(session, stmt, offset=offset, limit=limit)
