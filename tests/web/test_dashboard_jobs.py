"""The coordinator's dashboard: its panels count what the database holds, and the allocation and
dispatch buttons start jobs whose progress fragments poll until they finish."""

from __future__ import annotations

import re
from datetime import datetime, time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.jobs import runner
from relieflink.jobs.allocation import start_allocation_job
from relieflink.models import (
    AllocationRun,
    DispatchPlan,
    ItemCategory,
    Parcel,
    PlanStatus,
    Role,
    Route,
)
from relieflink.stock import service as stock
from tests.dispatch.factories import City, ask, make_city
from tests.factories import make_household, make_user
from tests.stock.factories import make_item, make_kit
from tests.web.helpers import csrf_of, signed_in
from tests.web.operations_kit import today

# Plans made today: the clock at a morning hour, whatever the hour the suite runs at.
pytestmark = pytest.mark.usefixtures("morning")

HTMX = {"HX-Request": "true"}


def _late_requests(db: Session, city: City) -> None:
    """Requests after the city's allocation: one from a household with an infant (food), one
    for infant formula, one from a household without vulnerable members."""
    formula = make_item(db, category=ItemCategory.infant, grams_per_unit=800, ml_per_unit=900)
    infant = make_household(db, city.communities["open"], actor=city.admin, size=3, infants=1)
    plain = make_household(db, city.communities["controlled"], actor=city.admin, size=2)
    ask(db, city, infant, (city.rice, 1), (formula, 2))
    ask(db, city, plain, (city.rice, 1))


def _row(page: str, attribute: str) -> list[str]:
    match = re.search(rf"<tr {attribute}>(.*?)</tr>", page, re.S)
    assert match, attribute
    return re.findall(r'<td class="num[^"]*"[^>]*>([^<]*)</td>', match.group(1))


def test_the_panels_count_need_by_class_and_stock_days_left(
    db: Session, client: TestClient
) -> None:
    city = make_city(db)
    _late_requests(db, city)
    food = make_kit(db, [(city.rice, 1)], sku="KIT-FAMILY-FOOD", persons=3, days=7)
    stock.receive_lot(
        db,
        warehouse_id=city.warehouse.id,
        kit_id=food.id,
        quantity=10,
        donor_org_id=city.donors[0].id,
        actor=None,
    )
    coordinator = make_user(db, Role.coordinator)
    db.commit()
    page = signed_in(client, coordinator).get("/dashboard").text

    # The infant's request counts once, in its most urgent class (formula: infants and mothers).
    assert _row(page, 'data-class="infant_maternity"') == ["1", "3"]
    assert _row(page, 'data-class="vulnerable"') == ["0", "0"]
    assert _row(page, 'data-class="everyone"') == ["1", "1"]
    assert _row(page, 'data-class="medical"') == ["0", "0"]
    assert 'data-stat="requests-open">2<' in page
    assert 'data-stat="requests-allocated">6<' in page
    # The policy's whole packs per household and week (a 3-person pack: one per 3 members,
    # rounded up per household) come to 8 a week for the registered households: 8/7 a day, so
    # 10 packs last 70/8 = 8.75 days (not 23 people / 21 person-days, which ignores the rounding).
    assert _row(page, 'data-sku="KIT-FAMILY-FOOD"') == ["10", "1.1", "8.8"]
    assert 'data-stat="consult-waiting">0<' in page
    assert "No dispatch plan for this day yet." in page

    points = client.get("/dashboard/map.json").json()
    need = {c["code"]: (c["waiting"], c["units"], c["need"]) for c in points["communities"]}
    # One of three registered households waits in each: "under half" (a third).
    assert need[city.communities["open"].code] == (1, 3, 2)
    assert need[city.communities["controlled"].code] == (1, 1, 2)
    assert need[city.communities["sealed"].code] == (0, 0, 0)
    assert points["routes"] == []


def test_allocation_runs_as_a_job_and_its_progress_is_polled(
    db: Session, client: TestClient
) -> None:
    city = make_city(db)
    _late_requests(db, city)
    coordinator = make_user(db, Role.coordinator)
    db.commit()
    runs = db.scalar(select(func.count()).select_from(AllocationRun))
    page = signed_in(client, coordinator).get("/dashboard").text
    token = csrf_of(page)

    started = client.post(
        "/dashboard/allocate", data={"csrf_token": token, "day": str(today())}, headers=HTMX
    )
    assert started.status_code == 200
    job_id = re.search(r'hx-get="/dashboard/jobs\?allocation=(\w+)"', started.text)
    assert job_id, started.text
    # The test client runs the background task before it answers: the job is done.
    done = client.get(f"/dashboard/jobs?allocation={job_id.group(1)}", headers=HTMX)
    assert 'data-status="done"' in done.text and "hx-get" not in done.text
    assert done.headers["HX-Trigger"] == "relieflink-refresh"
    db.rollback()
    assert db.scalar(select(func.count()).select_from(AllocationRun)) == (runs or 0) + 1
    run = db.scalars(select(AllocationRun).order_by(AllocationRun.id.desc())).first()
    assert run is not None and run.units_allocated == 2  # rice for both; no formula in stock
    assert f"Reserved 2 of the {run.units_requested} units asked for" in done.text
    # The panels (reloaded on the refresh event) report the run per vulnerable group first.
    panels = client.get("/dashboard/panels").text
    assert f"Run {run.id}: units reserved" in panels
    assert panels.index('data-group="infant"') < panels.index("Stock days left")
    # The infant's household got its rice but no formula (none in stock): 1 of 3 units.
    assert _row(panels, 'data-group="infant"') == ["33 %", "33 %"]
    assert _row(panels, 'data-group="pregnant"') == ["—", "—"]

    # Without JavaScript: the form posts, and the dashboard shows the job.
    again = client.post(
        "/dashboard/allocate",
        data={"csrf_token": token, "day": str(today())},
        follow_redirects=False,
    )
    assert again.status_code == 303
    assert re.search(r"/dashboard\?day=[\d-]+&allocation=\w+$", again.headers["location"])
    shown = client.get(again.headers["location"]).text
    assert 'id="job-allocation"' in shown and 'data-status="done"' in shown

    # The job refuses a CSRF-less post and other roles.
    assert client.post("/dashboard/allocate", data={"day": str(today())}).status_code == 403


def test_a_second_allocation_is_refused_while_one_runs(db: Session, client: TestClient) -> None:
    coordinator = make_user(db, Role.coordinator)
    db.commit()
    running = start_allocation_job(db, day=today(), actor=coordinator)
    db.commit()
    try:
        token = csrf_of(signed_in(client, coordinator).get("/dashboard").text)
        answer = client.post(
            "/dashboard/allocate", data={"csrf_token": token, "day": str(today())}, headers=HTMX
        )
        assert 'data-status="failed"' in answer.text
        assert "already in progress" in answer.text
    finally:
        runner.Worker().run_one(job_id=running.id)  # let it finish (nothing to allocate)
    db.refresh(running)
    assert running.status == "succeeded"


def test_dispatch_runs_as_a_job_and_the_routes_reach_the_map(
    db: Session, client: TestClient
) -> None:
    make_city(db)
    coordinator = make_user(db, Role.coordinator)
    db.commit()
    token = csrf_of(signed_in(client, coordinator).get("/dashboard").text)
    day = str(today())

    started = client.post(
        "/dashboard/dispatch", data={"csrf_token": token, "day": day}, headers=HTMX
    )
    assert started.status_code == 200
    assert re.search(r'data-status="(queued|running)"', started.text)
    plan_id = re.search(r'hx-get="/dashboard/jobs\?plan=(\d+)"', started.text)
    assert plan_id, started.text
    done = client.get(f"/dashboard/jobs?plan={plan_id.group(1)}", headers=HTMX)
    assert 'data-status="done"' in done.text, done.text
    assert "Routes: 1. Parcels planned: 6 of 6." in done.text
    assert done.headers["HX-Trigger"] == "relieflink-refresh"

    db.rollback()
    plan = db.get(DispatchPlan, int(plan_id.group(1)))
    assert plan is not None and plan.status == PlanStatus.done and str(plan.day) == day
    route = db.scalars(select(Route).where(Route.plan_id == plan.id)).one()

    panels = client.get(f"/dashboard/panels?day={day}").text
    assert _row(panels, f'data-plan="{plan.id}"')[:6] == ["1", "0", "0", "0", "6", "0"]
    assert f'href="/courier/routes/{route.id}"' in panels

    points = client.get(f"/dashboard/map.json?day={day}").json()
    (drawn,) = points["routes"]
    assert drawn["id"] == route.id and drawn["total"] == 6
    assert [s["seq"] for s in drawn["stops"]] == [1, 2, 3]
    assert {s["code"] for s in drawn["stops"]} == {c["code"] for c in points["communities"]}
    parcels = db.scalar(select(func.count()).select_from(Parcel).where(Parcel.plan_id == plan.id))
    assert parcels == 6
    # Another day has none of them.
    assert client.get("/dashboard/map.json?day=2001-01-01").json()["routes"] == []


def test_the_allocation_job_says_what_a_capped_warehouse_held_back(
    db: Session, client: TestClient
) -> None:
    city = make_city(db)
    _late_requests(db, city)
    city.warehouse.daily_outbound_kg = 5  # one 5 kg bag of rice a day
    coordinator = make_user(db, Role.coordinator)
    db.commit()
    token = csrf_of(signed_in(client, coordinator).get("/dashboard").text)
    started = client.post(
        "/dashboard/allocate", data={"csrf_token": token, "day": str(today())}, headers=HTMX
    )
    job_id = re.search(r'hx-get="/dashboard/jobs\?allocation=(\w+)"', started.text)
    assert job_id, started.text
    done = client.get(f"/dashboard/jobs?allocation={job_id.group(1)}", headers=HTMX).text
    # Rice for the infant's household (more vulnerable) ships; the other bag stays in.
    assert "Reserved 1 of the 4 units asked for" in done
    assert (
        f"{city.warehouse.code}: 1 × {city.rice.sku} held back: outbound capacity 5 kg/day reached"
        in done
    )
    # A class with no lines shows "—", not 100 %.
    assert _row(done, 'data-class="medical"') == ["—"]
    assert _row(done, 'data-class="vulnerable"') == ["100 %"]
    assert _row(done, 'data-class="everyone"') == ["0 %"]


def test_the_dashboard_shows_the_dispatch_waves_and_the_next_one(
    db: Session, client: TestClient
) -> None:
    coordinator = make_user(db, Role.coordinator)
    db.commit()
    afternoon = datetime.combine(today(), time(16, 30), clock.zone())
    with clock.frozen(afternoon):  # signed in on the frozen clock: the session is fresh
        page = signed_in(client, coordinator).get("/dashboard").text
    assert "Dispatch waves: 06:00 · 12:00 · 17:00." in page
    assert "Next today at 17:00." in page
    with clock.frozen(afternoon.replace(hour=21)):
        assert "No wave left today." in signed_in(client, coordinator).get("/dashboard").text
