"""When the free vehicles cannot carry every parcel, the most urgent go first: parcels are
loaded in the order the allocation run ranked their allocations (priority class, then score),
and the rest wait for the next trip, released with the reason."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink.flows import allocation
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import Allocation, Parcel, ParcelStatus, PriorityClass
from tests.dispatch.factories import TODAY, ask, make_city
from tests.factories import make_community, make_household


def test_the_vulnerable_households_parcels_are_loaded_before_the_others(db: Session) -> None:
    city = make_city(db)
    # Two households with an infant in a compound farther out ask after the others.
    far = make_community(db, committee=city.committee, lat=31.26, lon=121.47)
    infants = [make_household(db, far, actor=city.admin, size=3, infants=1) for _ in range(2)]
    for home in infants:
        ask(db, city, home, (city.rice, 2), (city.oil, 1))
    allocation.run_allocation(db, actor=None, today=TODAY)
    # One van of 45 kg today (three parcels of 14.6 kg), no robot.
    city.vans.count, city.vans.capacity_g = 1, 45_000
    city.robots.active = False
    db.commit()
    rows = db.execute(select(Allocation.household_id, Allocation.priority_class))
    klass = dict(rows.all())
    assert {klass[h.id] for h in infants} == {PriorityClass.vulnerable}
    assert {klass[h.id] for h in city.homes["open"]} == {PriorityClass.everyone}

    plan = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.5, seed=1)
    db.commit()
    assert plan.summary["violations"] == []
    planned = {
        p.household_id
        for p in db.scalars(select(Parcel).where(Parcel.status == ParcelStatus.planned))
    }
    assert len(planned) == 3, plan.summary
    assert {h.id for h in infants} <= planned, plan.summary
    released = plan.summary["released"]
    full = [why for why in released.values() if "more urgent parcels went first" in why]
    assert len(full) == 3, released  # the open and controlled compounds' other three
