"""Partner carriers' fleets: vehicle groups, robots, and who can work on a given day."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from relieflink import clock, columns
from relieflink.audit import service as audit
from relieflink.dispatch import reach
from relieflink.dispatch import repository as repo
from relieflink.dispatch.reach import FleetGroup, GateTeam
from relieflink.errors import FieldError, Invalid, NotFound
from relieflink.models import (
    FleetKind,
    RouteStatus,
    User,
    Vehicle,
    VehicleAvailability,
)
from relieflink.teams import service as teams

FLEET_COLUMNS = columns.VEHICLES


def _clock(text: str) -> int:
    hours, minutes = text.strip().split(":")
    h, m = int(hours), int(minutes)
    if not (0 <= h <= 24 and 0 <= m < 60):
        raise ValueError(text)
    return h * 3600 + m * 60


def import_fleet(session: Session, path: Path, *, actor: User | None) -> tuple[int, int]:
    """Load ``vehicles.csv`` (the scenario generator's format): all rows valid, or nothing.
    Rows are matched by ``code``: new codes are created, known ones updated.
    Returns (created, updated)."""
    carriers = repo.carriers_by_code(session)
    depots = repo.warehouse_ids_by_code(session)
    errors: list[FieldError] = []
    rows: list[dict[str, object]] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in FLEET_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise Invalid(
                f"{path.name}: missing columns {', '.join(missing)}",
                [FieldError(("line", 1, c), "missing column") for c in missing],
            )
        seen: set[str] = set()
        for number, raw in enumerate(reader, start=2):
            row_errors: list[FieldError] = []

            def bad(
                column: str, msg: str, n: int = number, errs: list[FieldError] = row_errors
            ) -> None:
                errs.append(FieldError(("line", n, column), msg))

            code = (raw.get("code") or "").strip()
            if not code:
                bad("code", "required")
            elif code in seen:
                bad("code", f"duplicate code {code!r}")
            seen.add(code)
            carrier = carriers.get((raw.get("carrier_code") or "").strip())
            if carrier is None:
                bad("carrier_code", f"no carrier organization {raw.get('carrier_code')!r}")
            depot = depots.get((raw.get("depot_code") or "").strip())
            if depot is None:
                bad("depot_code", f"no warehouse {raw.get('depot_code')!r}")
            try:
                kind = FleetKind((raw.get("kind") or "").strip())
            except ValueError:
                bad("kind", "one of " + ", ".join(k.value for k in FleetKind))
                kind = FleetKind.van
            numbers: dict[str, int] = {}
            for column in ("count", "capacity_kg", "capacity_m3", "speed_kmh", "range_km"):
                try:
                    numbers[column] = int((raw.get(column) or "").strip())
                    if numbers[column] < 0 or (column == "speed_kmh" and numbers[column] == 0):
                        raise ValueError
                except ValueError:
                    bad(column, "a whole number >= 0 (speed > 0)")
            try:
                start = _clock(raw.get("shift_start") or "")
                end = _clock(raw.get("shift_end") or "")
                if end <= start:
                    bad("shift_end", "must be after shift_start")
            except ValueError:
                bad("shift_start", "HH:MM")
                start, end = 0, 1
            if row_errors:
                errors.extend(row_errors)
                continue
            assert carrier is not None and depot is not None
            rows.append(
                {
                    "code": code,
                    "carrier_id": carrier.id,
                    "kind": kind,
                    "depot_id": depot,
                    "count": numbers["count"],
                    "capacity_g": numbers["capacity_kg"] * 1000,
                    "capacity_ml": numbers["capacity_m3"] * 1_000_000,
                    "speed_kmh": numbers["speed_kmh"],
                    "range_m": numbers["range_km"] * 1000 or None,
                    "shift_start_s": start,
                    "shift_end_s": end,
                    "fixed_cost_fen": {"truck": 30000, "van": 15000, "ebike": 3000}.get(kind, 1000),
                    "cost_per_km_fen": {"truck": 400, "van": 200, "ebike": 30}.get(kind, 20),
                }
            )
    if errors:
        raise Invalid(f"{path.name}: {len(errors)} errors; nothing was imported", errors)
    known = repo.vehicles_by_code(session)
    created = updated = 0
    for row in rows:
        vehicle = known.get(str(row["code"]))
        if vehicle is None:
            session.add(Vehicle(**row))
            created += 1
        else:
            for key, value in row.items():
                setattr(vehicle, key, value)
            updated += 1
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="import",
        entity="fleet",
        detail={"file": path.name, "created": created, "updated": updated},
    )
    return created, updated


def list_vehicles(session: Session, *, carrier_id: int | None = None) -> Sequence[Vehicle]:
    return repo.vehicles(session, carrier_id=carrier_id)


def require_vehicle(session: Session, vehicle_id: int) -> Vehicle:
    vehicle = session.get(Vehicle, vehicle_id)
    if vehicle is None:
        raise NotFound(f"no vehicle group with id {vehicle_id}")
    return vehicle


def set_availability(
    session: Session,
    *,
    vehicle_id: int,
    day: date,
    available: int,
    note: str | None,
    actor: User | None,
) -> VehicleAvailability:
    """How many of a vehicle group work on ``day`` (0 = the courier is ill or locked in)."""
    vehicle = require_vehicle(session, vehicle_id)
    if not 0 <= available <= vehicle.count:
        raise Invalid(
            f"available must be between 0 and the group's {vehicle.count} vehicles",
            [FieldError(("available",), f"0..{vehicle.count}")],
        )
    row = repo.availability(session, vehicle_id, day)
    if row is None:
        row = VehicleAvailability(vehicle_id=vehicle_id, day=day, available=available, note=note)
        session.add(row)
    else:
        row.available, row.note = available, note
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="availability",
        entity="fleet_vehicle",
        entity_id=vehicle_id,
        detail={"day": day.isoformat(), "available": available, "note": note},
    )
    return row


# A route that is already replaced by a re-plan or finished cannot break down (again).
_OVER = {RouteStatus.cancelled, RouteStatus.completed}


def record_breakdowns(
    session: Session, *, day: date, route_ids: Iterable[int], actor: User | None
) -> dict[int, int]:
    """The vehicles of ``route_ids`` broke down: each lowers its group's available count for
    ``day`` by one, so that every later plan and re-plan of the day leaves it out (the day's
    availability is the one record of it). Returns the new count per group touched.

    A route already cancelled or completed is not counted again; an unknown route is refused
    and nothing is written."""
    ids = list(dict.fromkeys(route_ids))
    status = {route_id: repo.route_status(session, route_id) for route_id in ids}
    unknown = [(i, r) for i, r in enumerate(ids) if status[r] is None]
    if unknown:
        raise Invalid(
            "no route " + ", ".join(str(r) for _, r in unknown),
            [FieldError(("failed_route_ids", i), f"no route {r}") for i, r in unknown],
        )
    live = [r for r in ids if status[r] not in _OVER]
    broken = Counter(repo.vehicles_of_routes(session, live))
    counts = available_counts(session, day)
    out: dict[int, int] = {}
    for vehicle_id, n in sorted(broken.items()):
        out[vehicle_id] = max(counts.get(vehicle_id, 0) - n, 0)
        set_availability(
            session,
            vehicle_id=vehicle_id,
            day=day,
            available=out[vehicle_id],
            note=f"{n} broke down",
            actor=actor,
        )
    return out


def available_counts(session: Session, day: date) -> dict[int, int]:
    """Vehicles of each active group that can work on ``day``: the group's count, or less where
    the day's availability says so (couriers locked in, vehicles broken down)."""
    counts = {v.id: v.count for v in repo.active_vehicles(session)}
    for row in repo.availabilities(session, day):
        if row.vehicle_id in counts:
            counts[row.vehicle_id] = min(counts[row.vehicle_id], row.available)
    return counts


def shift_from_s(day: date) -> int:
    """Seconds into ``day`` from which its shifts can still be worked: now (:mod:`relieflink.clock`,
    local time) when ``day`` is today, as a plan made at 20:00 cannot use the morning; else
    the day's start."""
    now = clock.local(clock.now())
    if now.date() != day:
        return 0
    return now.hour * 3600 + now.minute * 60 + now.second


def _hhmm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}"


def vehicles_at(
    session: Session, day: date, free: Mapping[int, int], homes: Mapping[int, int]
) -> dict[int, dict[int, tuple[int, int]]]:
    """Where and from when the ``free`` vehicles of each group wait when a plan for ``day`` is
    made: group → {warehouse: (vehicles, back at, seconds into the day)}. A route ends where it
    started (the routing's end depot is its start depot, the stock warehouse), so a vehicle
    whose route of the day from warehouse w is completed is at w, not at its home depot
    (``homes``), from the route's planned return on (a route is completed when its last doors
    are posted, before the drive back): the next plan must not add the drive from home to w
    again (it cost the truck based at W01, stocked at W05, 1.4 h on every trip: two trips a
    day instead of three). Routes record the group, not which of its vehicles drove, so the
    count is bounded: at w wait at most as many as the group's completed routes from w in one
    plan (those ran at once: different vehicles), warehouses taken latest plan first (a
    vehicle is where its last route ended) and never more than the group's free vehicles; the
    rest are at home, from the shift's start. A new day starts at home (the driver goes home
    for the night)."""
    seen: dict[int, dict[int, tuple[int, int]]] = {}
    for vehicle_id, _plan, w, n, end_s in repo.completed_trips(session, day):  # latest first
        at = seen.setdefault(vehicle_id, {})
        most, back = at.get(w, (0, 0))
        at[w] = (max(most, n), max(back, end_s))
    out: dict[int, dict[int, tuple[int, int]]] = {}
    for vehicle_id, n in free.items():
        home = homes[vehicle_id]
        where: dict[int, tuple[int, int]] = {}
        left = n
        for w, (k, back) in seen.get(vehicle_id, {}).items():
            take = min(k, left)
            if take > 0:
                where[w] = (take, back)
                left -= take
        if left > 0:
            # The rest never left home today: free from the shift's start (with any back from a
            # route from home, one vehicle type: the one that stayed takes the first trip).
            where[home] = (where.get(home, (0, 0))[0] + left, 0)
        out[vehicle_id] = where
    return out


def groups_of_day(session: Session, day: date, *, from_now: bool = True) -> list[FleetGroup]:
    """The vehicle groups free to plan on ``day``: active groups × the day's availability
    (breakdowns lowered it when they were recorded: :func:`record_breakdowns`), minus vehicles
    out on a loaded or departed route; on today, each from now on (:func:`shift_from_s`), and
    none whose shift is over (:func:`shifts_over` says which). A group whose vehicles wait at
    more than one warehouse (:func:`vehicles_at`) is one entry per warehouse, each from when
    its vehicles are back there. ``from_now=False`` gives the day's whole shifts: what the
    fleet can reach at all, whatever the hour (stock reserved tonight goes out on the next
    wave)."""
    counts = available_counts(session, day)
    busy = repo.busy_vehicles(session, day)
    from_s = shift_from_s(day) if from_now else 0
    vehicles = repo.active_vehicles(session)
    free = {
        v.id: n
        for v in vehicles
        if (n := counts.get(v.id, 0) - busy.get(v.id, 0)) > 0
        and max(v.shift_start_s, from_s) < v.shift_end_s
    }
    where = vehicles_at(session, day, free, {v.id: v.depot_id for v in vehicles})
    groups = []
    for v in vehicles:
        at_home_first = sorted(where.get(v.id, {}).items(), key=lambda x: x[0] != v.depot_id)
        for at, (n, back) in at_home_first:
            start = max(v.shift_start_s, from_s, back)
            if start >= v.shift_end_s:
                continue
            groups.append(
                FleetGroup(
                    v.id,
                    v.carrier_id,
                    FleetKind(v.kind),
                    at,
                    n,
                    v.capacity_g,
                    v.capacity_ml,
                    v.speed_kmh,
                    v.range_m,
                    start,
                    v.shift_end_s,
                    v.fixed_cost_fen,
                    v.cost_per_km_fen,
                    v.depot_id,
                )
            )
    return groups


def shifts_over(session: Session, day: date) -> dict[str, str]:
    """The vehicle groups working on ``day`` whose shift is over at this hour (they get no
    route from a plan made now), by code, the reason in words."""
    from_s = shift_from_s(day)
    counts = available_counts(session, day)
    return {
        v.code: f"{v.kind} shift ended at {_hhmm(v.shift_end_s)}; planned at {_hhmm(from_s)}"
        for v in repo.active_vehicles(session)
        if counts.get(v.id, 0) > 0 and v.shift_end_s <= from_s
    }


def vehicles_out(session: Session, day: date) -> int:
    """How many vehicles are out on a loaded or departed route of ``day``."""
    return sum(repo.busy_vehicles(session, day).values())


def waiting_weight_g(session: Session) -> int:
    """The weight of the parcels waiting for a route, in grams."""
    return sum(row[4] for row in repo.pending_parcels(session, []))


def gate_teams(session: Session, day: date, community_ids: Iterable[int]) -> dict[int, GateTeam]:
    """Each compound's volunteer team on ``day`` (members at work), by community id."""
    return dict(teams.team_days(session, day=day, community_ids=sorted(set(community_ids))))


def reach_matrix(
    session: Session,
    *,
    day: date,
    community_ids: Sequence[int],
    warehouse_ids: Sequence[int],
    teams: Mapping[int, GateTeam] | None = None,
) -> NDArray[np.bool_] | None:
    """``out[c, w]``: the day's fleet (and the compound's team inside) can bring stock from
    warehouse ``warehouse_ids[w]`` to the door of compound ``community_ids[c]`` (the rule is
    :func:`relieflink.dispatch.reach.reachable`). None when no fleet is registered at all
    (allocation without dispatch: nothing to restrict by). The fleet's whole shifts count,
    not the hours left: an allocation run after the last shift still reserves what the next
    wave can bring."""
    if not repo.active_vehicles(session):
        return None
    places = repo.warehouse_places(session)
    gates = repo.community_access(session, community_ids)
    if teams is None:
        teams = gate_teams(session, day, community_ids)
    return reach.reachable(
        [gates[c] for c in community_ids],
        [teams.get(c) for c in community_ids],
        [places[w] for w in warehouse_ids],
        places,
        groups_of_day(session, day, from_now=False),
    )
