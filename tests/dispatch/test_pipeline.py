"""One pipeline for every kind of tracking event: a route's whole day (loading, departure,
arrivals, hand-offs, deliveries, a failure) goes through in one batch, each event seeing what
the ones before it did, written set-based; a single event is a batch of one."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from relieflink.dispatch import codes
from relieflink.dispatch.schemas import EventIn
from relieflink.flows import delivery
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import (
    HandoffDiscrepancy,
    NeedRequest,
    Parcel,
    ParcelStatus,
    RequestStatus,
    Route,
    RouteStatus,
    RouteStop,
    StockMovement,
    User,
)
from relieflink.stock import service as stock
from tests.dispatch.factories import TODAY, make_city


def _day(db: Session, route: Route, *, miscount: bool = False) -> list[EventIn]:
    """Every event of ``route``'s day, in order: the first parcel fails, the others arrive."""
    stops = db.scalars(
        select(RouteStop).where(RouteStop.route_id == route.id).order_by(RouteStop.seq)
    ).all()
    raw: list[dict[str, Any]] = [
        {"kind": "loaded", "route_id": route.id},
        {"kind": "departed", "route_id": route.id},
    ]
    first = True
    for stop in stops:
        parcels = db.scalars(
            select(Parcel).where(Parcel.stop_id == stop.id).order_by(Parcel.id)
        ).all()
        raw.append({"kind": "arrived", "stop_id": stop.id})
        counted = len(parcels) - 1 if miscount and first else len(parcels)
        raw.append({"kind": "handed_off", "stop_id": stop.id, "counted": counted})
        for parcel in parcels:
            if first:
                raw.append({"kind": "failed", "parcel_id": parcel.id, "reason": "not_home"})
                first = False
            else:
                code = codes.derive(parcel.code_nonce)
                raw.append({"kind": "delivered", "parcel_id": parcel.id, "code": code})
    return [EventIn.model_validate(r | {"client_event_id": f"evt-{uuid.uuid4()}"}) for r in raw]


def _record(db: Session, events: list[EventIn], actor: User) -> int:
    """Record a batch; returns the statements it cost."""
    seen: list[str] = []

    def count(_c: object, _cur: object, statement: str, *_: object) -> None:
        seen.append(statement)

    assert actor.id  # read before counting (the commit before expired it)
    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        answers = delivery.record_events(db, events, actor=actor)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    db.commit()
    assert [a.error for a in answers] == [None] * len(events)
    assert not any(a.outcome and a.outcome.replayed for a in answers)
    return len(seen)


def test_a_routes_whole_day_goes_through_in_one_batch(db: Session) -> None:
    city = make_city(db, per_community=3)
    dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.3)
    db.commit()
    route = db.scalars(select(Route).order_by(Route.id)).first()
    assert route is not None
    issued_before = db.scalars(select(StockMovement)).all()
    events = _day(db, route, miscount=True)
    _record(db, events, city.admin)
    db.refresh(route)
    assert route.status == RouteStatus.completed
    parcels = db.scalars(select(Parcel).where(Parcel.route_id == route.id).order_by(Parcel.id))
    statuses = [p.status for p in parcels]
    assert statuses.count(ParcelStatus.failed) == 1
    assert set(statuses) == {ParcelStatus.failed, ParcelStatus.delivered}
    assert db.scalars(select(HandoffDiscrepancy)).one().counted >= 0
    assert stock.check_ledger(db) == []
    assert len(db.scalars(select(StockMovement)).all()) > len(issued_before)
    requests = db.scalars(select(NeedRequest)).all()
    assert any(r.carried_over == 1 and r.status == RequestStatus.open for r in requests)
    # The same batch sent again is answered from the first: nothing moves twice.
    answers = delivery.record_events(db, events, actor=city.admin)
    assert all(a.outcome is not None and a.outcome.replayed for a in answers)


def test_a_routes_day_costs_the_same_statements_whatever_its_size(db: Session) -> None:
    """Route and stop events are set-based too: a route with more stops and parcels costs
    the statements a smaller one costs (not a timing, a shape)."""
    city = make_city(db, per_community=4)
    for group in (city.vans, city.robots):  # several routes, not all of the same size
        group.capacity_g, group.count = 50_000, 6
    dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.3)
    db.commit()
    sizes: dict[int, tuple[int, int]] = {}
    for route in db.scalars(select(Route)):
        parcels = db.scalars(select(Parcel).where(Parcel.route_id == route.id)).all()
        sizes[route.id] = (len(parcels), len({p.stop_id for p in parcels}))
    small, large = min(sizes, key=sizes.__getitem__), max(sizes, key=sizes.__getitem__)
    assert sizes[large] > sizes[small], sizes
    counts = [_record(db, _day(db, db.get(Route, r)), city.admin) for r in (small, large)]  # type: ignore[arg-type]
    assert counts[0] == counts[1], (counts, sizes)
