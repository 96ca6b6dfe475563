"""Residents' and committees' pages: ask for help (merged when asked twice in a period), a
building's list (all rows or none), status and pickup codes (each resident only their own), and
the consultation questionnaire."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.catalog import service as catalog
from relieflink.catalog.schemas import ItemFilters
from relieflink.dispatch import codes
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import Consultation, Household, NeedRequest, Parcel, Role, User
from tests.dispatch.factories import TODAY, make_city
from tests.factories import make_community, make_household, make_org, make_user
from tests.web.helpers import csrf_of, signed_in

ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


class Block:
    """A committee's compound with two households (one with a resident), and one elsewhere."""

    def __init__(self, db: Session) -> None:
        catalog.seed_catalog(db, actor=None)
        self.org = make_org(db)
        community = make_community(db, committee=self.org)
        admin = make_user(db, Role.admin)
        self.home = make_household(db, community, actor=admin, code="B1-101", infants=1)
        self.neighbour = make_household(db, community, actor=admin, code="B1-102")
        self.outside = make_household(db, make_community(db), actor=admin, code="X-1")
        self.resident = make_user(db, Role.resident, household_id=self.home.id)
        self.committee = make_user(db, Role.committee, organization_id=self.org.id)
        db.commit()


@pytest.fixture
def block(db: Session) -> Block:
    return Block(db)


@pytest.fixture
def other_client(client: TestClient) -> Iterator[TestClient]:
    with TestClient(client.app) as second:
        yield second


def _requests(db: Session, household: Household) -> list[NeedRequest]:
    db.rollback()  # see what the app committed
    return list(db.scalars(select(NeedRequest).where(NeedRequest.household_id == household.id)))


def _ask(client: TestClient, **fields: str) -> str:
    token = csrf_of(client.get("/help").text)
    response = client.post("/help", data={"csrf_token": token, **fields})
    return response.text


def test_a_resident_asks_for_help_and_a_second_ask_is_merged(
    db: Session, client: TestClient, block: Block
) -> None:
    signed_in(client, block.resident)
    form = client.get("/help").text
    assert 'name="kit:KIT-FAMILY-FOOD"' in form and 'name="household_code"' not in form
    first = _ask(client, **{"kit:KIT-FAMILY-FOOD": "1", "note": "two adults, one baby"})
    assert "is registered." in first and 'data-merged="false"' in first
    (request,) = _requests(db, block.home)

    again = _ask(client, **{"kit:KIT-FAMILY-FOOD": "2", "kit:KIT-INFANT": "1"})
    assert 'data-merged="true"' in again
    assert f"so we added this to request {request.id}" in again
    assert "does not double" in again
    (merged,) = _requests(db, block.home)
    assert merged.id == request.id
    assert sorted(line.quantity for line in merged.lines) == [1, 2]  # the larger, not the sum

    status = client.get("/help/status").text
    assert f'data-request="{request.id}" data-status="open"' in status
    assert "Waiting for stock" in status


def test_prescription_only_items_are_not_offered_and_nothing_chosen_is_an_error(
    db: Session, client: TestClient, block: Block
) -> None:
    signed_in(client, block.resident)
    form = client.get("/help").text
    offered = set(re.findall(r'name="item:([^"]+)"', form))
    items, _ = catalog.list_items(db, ItemFilters(), limit=500)
    assert offered == {i.sku for i in items if not i.prescription_only}
    assert any(i.prescription_only for i in items)  # the test means something
    response = client.post("/help", data={"csrf_token": csrf_of(form), "kit:KIT-INFANT": "0"})
    assert response.status_code == 422
    assert "Nothing was sent." in response.text and "choose at least one" in response.text
    assert _requests(db, block.home) == []


def test_a_committee_asks_for_a_household_it_manages_only(
    db: Session, client: TestClient, block: Block
) -> None:
    signed_in(client, block.committee)
    ok = _ask(client, household_code="B1-102", **{"kit:KIT-FAMILY-FOOD": "1"})
    assert "is registered." in ok
    assert len(_requests(db, block.neighbour)) == 1
    token = csrf_of(client.get("/help").text)
    refused = client.post(
        "/help",
        data={"csrf_token": token, "household_code": "X-1", "kit:KIT-FAMILY-FOOD": "1"},
    )
    assert refused.status_code == 403
    assert _requests(db, block.outside) == []
    unknown = client.post(
        "/help",
        data={"csrf_token": token, "household_code": "NOPE", "kit:KIT-FAMILY-FOOD": "1"},
    )
    assert unknown.status_code == 422 and "no household with code" in unknown.text
    # The committee's status page lists its households' requests, with no pickup codes.
    status = client.get("/help/status").text
    assert "Household B1-102" in status and "Pickup code" not in status


def test_a_building_list_is_all_rows_or_none_with_the_bad_rows_listed(
    db: Session, client: TestClient, block: Block
) -> None:
    signed_in(client, block.committee)
    page = client.get("/help/building").text
    assert "household_code,kit_sku,item_sku,quantity,note" in page
    token = csrf_of(page)
    bad = (
        "household_code,kit_sku,item_sku,quantity,note\n"
        "B1-101,KIT-FAMILY-FOOD,,1,\n"
        "B1-102,KIT-NOPE,,1,\n"
        "X-1,KIT-FAMILY-FOOD,,1,\n"
    )
    response = client.post(
        "/help/building",
        data={"csrf_token": token},
        files={"file": ("building.csv", bad.encode(), "text/csv")},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    assert "Nothing was imported." in response.text
    rows = re.findall(r'<td class="num">(\d+)</td><td><code>([^<]*)</code>', response.text)
    assert rows == [("3", "kit_sku"), ("4", "household_code")]
    db.rollback()
    assert db.scalar(select(func.count()).select_from(NeedRequest)) == 0

    good = (
        "household_code,kit_sku,item_sku,quantity,note\n"
        "B1-101,KIT-FAMILY-FOOD,,1,\n"
        "B1-101,KIT-INFANT,,1,baby of 6 months\n"
        "B1-102,KIT-FAMILY-FOOD,,2,\n"
        "B1-101,KIT-FAMILY-FOOD,,1,\n"  # again: merged into line 2
    )
    done = client.post(
        "/help/building",
        data={"csrf_token": token},
        files={"file": ("building.csv", good.encode(), "text/csv")},
    )
    assert done.status_code == 200, done.text
    assert "4 rows: 2 new requests, 0 added" in done.text
    assert "<li>line 5 → line 2</li>" in done.text
    assert len(_requests(db, block.home)) == len(_requests(db, block.neighbour)) == 1


def _resident_of(db: Session, household_id: int) -> User:
    return db.scalars(select(User).where(User.household_id == household_id)).one()


def test_a_resident_sees_only_their_own_pickup_codes(db: Session, client: TestClient) -> None:
    city = make_city(db, per_community=1)
    dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.5)
    db.commit()
    parcels = db.scalars(select(Parcel).order_by(Parcel.id)).all()
    assert len(parcels) == 3
    mine, *others = parcels
    page = signed_in(client, _resident_of(db, mine.household_id)).get("/help/status").text
    shown = re.findall(r"<span class=\"pickup-code\" data-code>(\d{6})</span>", page)
    assert shown == [codes.derive(mine.code_nonce)]
    for parcel in others:
        assert codes.derive(parcel.code_nonce) not in page
        assert f'data-parcel="{parcel.id}"' not in page
    assert city.residents  # every household has its resident
    # Only residents see codes: a committee's status page has none, and the page is audited.
    db.rollback()  # end the read snapshot before writing
    committee = make_user(db, Role.committee, organization_id=city.committee.id)
    db.commit()
    client.cookies.clear()
    other = signed_in(client, committee).get("/help/status").text
    assert not any(codes.derive(p.code_nonce) in other for p in parcels)
    assert "pickup-code" not in other


def test_the_questionnaire_refuses_missing_answers_and_keeps_what_was_typed(
    db: Session, client: TestClient, block: Block
) -> None:
    signed_in(client, block.resident)
    form = client.get("/help/consultation").text
    assert 'href="tel:120"' in form  # the emergency numbers are on the form too
    for qid in ("breathing_difficulty", "chest_pain", "stroke_signs", "child_convulsions"):
        assert f'name="q:{qid}"' in form
    response = client.post(
        "/help/consultation",
        data={
            "csrf_token": csrf_of(form),
            "member_label": "my son",
            "age_band": "child",
            "sex": "male",
            "reason": "fever",
            "q:breathing_difficulty": "none",
        },
    )
    assert response.status_code == 422
    assert "symptoms.chest_pain" in response.text
    assert "symptoms.child_convulsions" in response.text  # under 5: the child's danger signs
    assert 'value="my son"' in response.text
    assert 'name="q:breathing_difficulty" value="none" required checked' in response.text
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Consultation)) == 0


def test_a_red_flag_answer_leads_to_the_emergency_numbers(
    db: Session, client: TestClient, block: Block
) -> None:
    signed_in(client, block.resident)
    form = client.get("/help/consultation", headers=ZH).text
    assert "<h1>看医生</h1>" in form  # in Chinese
    answers = {
        "q:unresponsive_or_seizure": "false",
        "q:breathing_difficulty": "severe",
        "q:chest_pain": "none",
        "q:bleeding": "none",
        "q:stroke_signs": "false",
        "q:severe_allergic_reaction": "false",
        "q:self_harm_risk": "none",
    }
    response = client.post(
        "/help/consultation",
        data={
            "csrf_token": csrf_of(form),
            "member_label": "我",
            "age_band": "older_adult",
            "sex": "female",
            "reason": "喘不上气",
            **answers,
        },
        headers=ZH,
    )
    assert response.status_code == 200
    assert str(response.url).rsplit("/", 2)[-2] == "consultations"
    page = response.text
    assert page.index('id="emergency"') < page.index('class="facts"')
    assert 'href="tel:120"' in page and "中国大陆 急救" in page
    db.rollback()
    (consultation,) = db.scalars(select(Consultation)).all()
    assert consultation.triage_outcome == "call_emergency_services"
    assert consultation.language == "zh"  # the page's language by default


def test_the_pages_are_for_their_roles(db: Session, client: TestClient, block: Block) -> None:
    signed_in(client, block.resident)
    assert client.get("/help/building").status_code == 403
    client.cookies.clear()
    signed_in(client, block.committee)
    assert client.get("/help/consultation").status_code == 403
    assert client.get("/help").status_code == 200
