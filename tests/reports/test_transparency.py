"""The public transparency page and feed: open without sign-in, the same programme and donor
figures as the signed-in donor trace, no household count from 1 to 9 and none recoverable from the
totals, no personal data anywhere, the open-data files, and the cache."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.dispatch import codes
from relieflink.donations import service as donations
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import (
    DispatchPlan,
    InnerMode,
    Parcel,
    ParcelStatus,
    PlanStatus,
    Role,
    Route,
    RouteStop,
)
from relieflink.reports import transparency
from relieflink.reports.suppression import THRESHOLD, recoverable
from relieflink.stock import service as stock
from tests.dispatch.factories import City, make_city
from tests.factories import make_community, make_district, make_household, make_user, sign_in

# Plans made today: the clock at a morning hour, whatever the hour the suite runs at.
pytestmark = pytest.mark.usefixtures("morning")

BATCH = "/api/v1/dispatch/events:batch"
PHONE = "+86 139 8765 4321"
BUILDING, UNIT = "Peony-Tower-77", "Flat-4471"


@dataclass
class World:
    city: City
    delivered: list[Parcel]
    history: dict[tuple[str, int], int]  # (district code, weeks ago) → households


def _event(**body: Any) -> dict[str, Any]:
    return {"client_event_id": f"evt-{uuid.uuid4()}", **body}


def _history(db: Session, city: City, weeks: dict[int, int]) -> str:
    """Households of a second district served in past weeks (``weeks ago → households``): the
    parcels as the delivery flow left them (delivered at the door, at that time)."""
    district = make_district(db, name="Harbour District", name_zh="港区")
    community = make_community(db, district)
    plan = DispatchPlan(day=clock.today(), status=PlanStatus.done, progress=100, summary={})
    db.add(plan)
    db.flush()
    for ago, n in weeks.items():
        for _ in range(n):
            home = make_household(
                db, community, actor=city.admin, phone=PHONE, building=BUILDING, unit=UNIT
            )
            db.add(
                Parcel(
                    household_id=home.id,
                    community_id=community.id,
                    warehouse_id=city.warehouse.id,
                    plan_id=plan.id,
                    status=ParcelStatus.delivered,
                    packs=1,
                    weight_g=1000,
                    volume_ml=1000,
                    code_nonce=uuid.uuid4().hex,
                    code_hash="-",
                    delivered_at=clock.now() - timedelta(weeks=ago),
                )
            )
    db.commit()
    return district.code


@pytest.fixture
def world(db: Session, client: TestClient, morning: datetime) -> World:
    """The dispatch tests' city: planned, driven and its door parcels delivered through the API
    (the ledger's handovers are real); and a past of another district. Planned today at a
    morning hour (``morning``), also for the tests of other modules that use this fixture."""
    city = make_city(db, per_community=6)
    courier = make_user(db, Role.courier, organization_id=city.carrier.id)
    db.commit()
    dispatch_flow.plan_dispatch(db, day=clock.today(), actor=None, time_limit=0.5, seed=1)
    db.commit()
    headers = sign_in(client, courier)
    routes = db.scalars(select(Route).where(Route.carrier_id == city.carrier.id)).all()
    door = db.scalars(
        select(Parcel)
        .join(RouteStop, RouteStop.id == Parcel.stop_id)
        .where(
            RouteStop.inner_mode == InnerMode.courier, Parcel.route_id.in_([r.id for r in routes])
        )
    ).all()
    events = [_event(kind=k, route_id=r.id) for r in routes for k in ("loaded", "departed")]
    events += [
        _event(kind="delivered", parcel_id=p.id, code=codes.derive(p.code_nonce)) for p in door
    ]
    db.rollback()
    answer = client.post(BATCH, json={"events": events}, headers=headers)
    assert answer.status_code == 200 and answer.json()["refused"] == 0, answer.text
    assert door, "no parcel to deliver at a door"
    history = {1: 12, 2: 3, 3: 25}
    code = _history(db, city, history)
    transparency._cached.clear()
    return World(city, list(door), {(code, a): n for a, n in history.items()})


def _trace_lines(figures: list[stock.DonorFigures]) -> dict[str, dict[str, str]]:
    """What the signed-in trace shows, per SKU (over donors), as the feed writes it."""
    out: dict[str, dict[str, Fraction]] = defaultdict(lambda: defaultdict(Fraction))
    for f in figures:
        sku = f"item:{f.item_id}" if f.item_id is not None else f"kit:{f.kit_id}"
        for attr in transparency.FIGURES:
            out[sku][attr] += getattr(f, attr)
    return {sku: {a: stock.exact(v) for a, v in row.items()} for sku, row in out.items()}


def _feed_lines(party: dict[str, Any], skus: dict[str, str]) -> dict[str, dict[str, str]]:
    return {
        skus[line["sku"]]: {a: line[a] for a in transparency.FIGURES} for line in party["lines"]
    }


def test_the_feed_equals_the_signed_in_donor_trace(
    world: World, db: Session, client: TestClient
) -> None:
    feed = client.get("/transparency.json")
    assert feed.status_code == 200
    body = feed.json()
    skus = {
        world.city.rice.sku: f"item:{world.city.rice.id}",
        world.city.oil.sku: f"item:{world.city.oil.id}",
    }
    donors = {d["code"]: d for d in body["donors"]}
    assert set(donors) == {d.code for d in world.city.donors}
    delivered = Fraction(0)
    for donor in world.city.donors:
        trace = stock.donor_report(db, donor_org_id=donor.id)  # what the donor's trace page shows
        assert _feed_lines(donors[donor.code], skus) == _trace_lines(trace)
        delivered += sum((f.delivered for f in trace), Fraction(0))
    assert delivered > 0  # the deliveries at the door are in it
    for program in body["programs"]:
        (row,) = [p for p in donations.list_programs(db) if p.code == program["code"]]
        per_donor = [
            f
            for d in world.city.donors
            for f in stock.donor_report(db, donor_org_id=d.id, program_id=row.id)
        ]
        assert _feed_lines(program, skus) == _trace_lines(per_donor)
    # Programme and donor totals agree (every receipt here belongs to a programme).
    for attr in transparency.FIGURES:
        by_program = sum(Fraction(line[attr]) for p in body["programs"] for line in p["lines"])
        by_donor = sum(Fraction(line[attr]) for d in body["donors"] for line in d["lines"])
        assert by_program == by_donor, attr


def _shown_counts(html: str) -> list[int]:
    return [int(v) for v in re.findall(r'data-households="(\d*)"', html) if v]


def test_no_small_number_and_nothing_personal(
    world: World, db: Session, client: TestClient
) -> None:
    pages = {
        lang: client.get("/transparency", headers={"Accept-Language": lang}).text
        for lang in ("en", "zh-CN")
    }
    body = client.get("/transparency.json").json()
    reach = body["households_reached"]
    # The past district: 3 households two weeks ago are hidden, and so is a second value of its
    # row and column, so that 3 cannot be worked out from the totals.
    harbour = next(d for d in reach["districts"] if d["name"] == "Harbour District")
    weeks = reach["weeks"]
    two_weeks_ago = transparency.week_of(clock.now() - timedelta(weeks=2)).isoformat()
    assert harbour["weeks"][weeks.index(two_weeks_ago)] is None
    assert sum(v is None for v in harbour["weeks"] + [harbour["total"]]) >= 2
    shown = [v for d in reach["districts"] for v in [*d["weeks"], d["total"]] if v is not None]
    shown += [v for v in [*reach["week_totals"], reach["total"]] if v is not None]
    assert shown and all(v == 0 or v >= THRESHOLD for v in shown)
    for html in pages.values():
        counts = _shown_counts(html)
        assert counts and all(v == 0 or v >= THRESHOLD for v in counts)
        assert len(re.findall(r'data-households=""', html)) >= 2
    # Nothing hidden can be worked out: the published table against the true counts.
    true = [[0] * len(weeks) for _ in reach["districts"]]
    for (code, ago), n in world.history.items():
        row = next(i for i, d in enumerate(reach["districts"]) if d["code"] == code)
        true[row][
            weeks.index(transparency.week_of(clock.now() - timedelta(weeks=ago)).isoformat())
        ] += n
    for i, d in enumerate(reach["districts"]):
        for j, v in enumerate(d["weeks"]):
            if v is not None and d["code"] != harbour["code"]:
                true[i][j] = v
    hidden = {
        (i, j)
        for i, d in enumerate(reach["districts"])
        for j, v in enumerate([*d["weeks"], d["total"]])
        if v is None
    } | {(len(true), j) for j, v in enumerate([*reach["week_totals"], reach["total"]]) if v is None}
    assert recoverable(true, hidden) == set()

    # No household's phone, address, code or resident's name on any public answer.
    texts = [*pages.values(), str(body), client.get("/transparency/hxl.csv").text]
    texts += [client.get(f["url"]).text for f in body["files"]["iati"]]
    digits = re.sub(r"\D", "", PHONE)
    for home in [h for homes in world.city.homes.values() for h in homes]:
        for text in texts:
            assert home.code not in re.findall(r"\bH\d+\b", text)
    for text in texts:
        assert digits not in re.sub(r"\D", "", text)
        assert BUILDING not in text and UNIT not in text
        for resident in world.city.residents.values():
            assert resident.full_name not in text


def test_open_without_sign_in_cached_and_in_both_languages(
    world: World, db: Session, client: TestClient
) -> None:
    en = client.get("/transparency", headers={"Accept-Language": "en"})
    zh = client.get("/transparency", headers={"Accept-Language": "zh-CN"})
    assert en.status_code == zh.status_code == 200
    assert "Where the gifts went" in en.text and "捐赠物资去向" in zh.text
    assert en.headers["cache-control"] == f"public, max-age={transparency.CACHE_SECONDS}"
    assert 'href="/transparency/hxl.csv"' in en.text and "/transparency/iati/" in en.text
    hxl = client.get("/transparency/hxl.csv")
    assert hxl.status_code == 200 and "#reached" not in hxl.text  # no household counts
    # One computation per ledger state: the same figures until something moves.
    first = transparency.public_figures(db)
    assert transparency.public_figures(db) is first
    _history(db, world.city, {0: 1})  # one more delivery at a door
    assert transparency.public_figures(db) is not first
