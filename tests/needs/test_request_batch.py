"""Requests in batches (``needs.create_requests``, ``POST /requests:batch``): the same rows as
one at a time, each item answered on its own."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.catalog import service as catalog
from relieflink.errors import Forbidden, Invalid, NotFound, RelieflinkError
from relieflink.models import AuditEvent, NeedRequest, RequestLine, RequestStatus, Role, User
from relieflink.needs import service as needs
from relieflink.needs.schemas import MAX_BATCH, RequestCreate
from tests.factories import headers_for, make_community, make_household, make_org, make_user

MONDAY = date(2026, 11, 30)
URL = "/api/v1/requests:batch"


@pytest.fixture
def city(db: Session) -> dict[str, Any]:
    """Four households of a committee's community, one elsewhere. Two already asked this week:
    ``stored`` (food 2) and ``served`` (food 1, all of it allocated)."""
    catalog.seed_catalog(db, actor=None)
    committee = make_org(db)
    community = make_community(db, committee=committee)
    admin = make_user(db, Role.admin)
    homes = [make_household(db, community, actor=admin) for _ in range(4)]
    elsewhere = make_household(db, make_community(db), actor=admin)
    needs.create_request(db, ask(homes[0].id, ("KIT-FAMILY-FOOD", 2)), actor=admin, today=MONDAY)
    served = needs.create_request(
        db, ask(homes[1].id, ("KIT-FAMILY-FOOD", 1)), actor=admin, today=MONDAY
    )
    request = db.get(NeedRequest, served.request.id)
    assert request is not None
    request.status = RequestStatus.allocated
    request.lines[0].allocated = 1
    db.commit()
    return {"committee": committee, "admin": admin, "homes": homes, "elsewhere": elsewhere}


def ask(household_id: int, *lines: tuple[str, int], note: str | None = None) -> RequestCreate:
    return RequestCreate.model_validate(
        {
            "household_id": household_id,
            "lines": [
                {"kit_sku" if sku.startswith("KIT-") else "item_sku": sku, "quantity": q}
                for sku, q in lines
            ],
            "note": note,
        }
    )


def mixed(homes: list[Any]) -> list[RequestCreate]:
    """Merges into stored requests and within the batch, a reopening, refusals."""
    h1, h2, h3, h4 = (h.id for h in homes)
    return [
        ask(h1, ("KIT-FAMILY-FOOD", 1)),  # merged, keeps 2
        ask(h2, ("KIT-FAMILY-FOOD", 1)),  # merged, nothing more asked: stays allocated
        ask(h3, ("KIT-FAMILY-FOOD", 1), note="third floor"),  # created
        ask(h3, ("KIT-FAMILY-FOOD", 3), ("KIT-INFANT", 1)),  # merged into the one just made
        ask(h2, ("KIT-INFANT", 1)),  # merged, reopened
        ask(h4, ("KIT-FAMILY-FOOD", 1), ("NO-SUCH-ITEM", 1)),  # refused
        ask(999_999, ("KIT-FAMILY-FOOD", 1)),  # refused
        ask(h1, ("KIT-FAMILY-FOOD", 5)),  # merged, raises the stored line
        ask(h4, ("KIT-MATERNITY", 1), ("TEST-KIT-20", 2)),  # created
    ]


def snapshot(db: Session, since: int) -> list[Any]:
    """The requests and their audit events, request ids replaced by their order (a sequence does
    not roll back on PostgreSQL)."""
    requests = db.scalars(
        select(NeedRequest).order_by(NeedRequest.id).execution_options(populate_existing=True)
    ).all()
    rank = {r.id: n for n, r in enumerate(requests)}
    rows: list[Any] = [
        (
            r.household_id,
            r.source,
            r.status,
            r.period_start,
            r.note,
            r.medical_urgency,
            r.created_by_id,
            sorted((li.kit_id or 0, li.item_id or 0, li.quantity, li.allocated) for li in r.lines),
        )
        for r in requests
    ]
    events = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.entity == "request", AuditEvent.id > since)
        .order_by(AuditEvent.id)
    )
    rows += [(e.action, rank[e.entity_id or 0], e.actor_id, e.detail) for e in events]
    return rows


def one_at_a_time(
    db: Session, items: list[RequestCreate], actor: User
) -> list[tuple[int, bool] | type[RelieflinkError]]:
    out: list[tuple[int, bool] | type[RelieflinkError]] = []
    for item in items:
        savepoint = db.begin_nested()
        try:
            outcome = needs.create_request(db, item, actor=actor, today=MONDAY)
        except RelieflinkError as exc:
            savepoint.rollback()
            out.append(type(exc))
            continue
        savepoint.commit()
        out.append((outcome.request.id, outcome.merged))
    return out


def test_a_batch_stores_what_one_at_a_time_stores(db: Session, city: dict[str, Any]) -> None:
    admin, items = city["admin"], mixed(city["homes"])
    since = db.scalar(select(func.max(AuditEvent.id))) or 0
    savepoint = db.begin_nested()
    single = one_at_a_time(db, items, admin)
    expected = snapshot(db, since)
    savepoint.rollback()
    db.expire_all()

    answers = needs.create_requests(db, items, actor=admin, today=MONDAY)
    batch = [
        (a.outcome.request.id, a.outcome.merged) if a.outcome else type(a.error) for a in answers
    ]
    assert snapshot(db, since) == expected
    # Same answers, request ids aside (the rolled-back run used others on PostgreSQL).
    assert [a if isinstance(a, type) else a[1] for a in batch] == [
        a if isinstance(a, type) else a[1] for a in single
    ]
    assert [type(a) for a in batch] == [type(a) for a in single]
    assert batch[5] is Invalid and batch[6] is NotFound
    assert batch[3][0] == batch[2][0]  # type: ignore[index]  # merged into the one just made
    made = answers[3].outcome
    assert made is not None and made.merged and "merged into request" in made.message
    assert sorted(line.quantity for line in made.request.lines) == [1, 3]
    bad = answers[5].error
    assert isinstance(bad, Invalid)
    assert [e.loc for e in bad.errors] == [("requests", 5, "lines", 1, "item_sku")]
    assert isinstance(answers[6].error, NotFound)
    statuses = db.execute(
        select(NeedRequest.household_id, NeedRequest.status).order_by(NeedRequest.id)
    ).all()
    h1, h2, h3, h4 = (h.id for h in city["homes"])
    assert statuses == [
        (h1, RequestStatus.open),
        (h2, RequestStatus.open),  # reopened by the infant kit
        (h3, RequestStatus.open),
        (h4, RequestStatus.open),
    ]


def test_a_merge_that_asks_nothing_more_leaves_an_allocated_request_alone(
    db: Session, city: dict[str, Any]
) -> None:
    h2 = city["homes"][1].id
    (answer,) = needs.create_requests(
        db, [ask(h2, ("KIT-FAMILY-FOOD", 1))], actor=city["admin"], today=MONDAY
    )
    assert answer.outcome is not None and answer.outcome.merged
    assert answer.outcome.request.status == RequestStatus.allocated


def test_a_committee_asks_only_for_its_communities(db: Session, city: dict[str, Any]) -> None:
    committee = make_user(db, Role.committee, organization_id=city["committee"].id)
    home, elsewhere = city["homes"][2], city["elsewhere"]
    answers = needs.create_requests(
        db,
        [ask(elsewhere.id, ("KIT-FAMILY-FOOD", 1)), ask(home.id, ("KIT-FAMILY-FOOD", 1))],
        actor=committee,
        today=MONDAY,
    )
    assert isinstance(answers[0].error, Forbidden)
    assert answers[1].outcome is not None
    assert answers[1].outcome.request.source == "committee"
    households = db.scalars(select(NeedRequest.household_id)).all()
    assert elsewhere.id not in households
    resident = make_user(db, Role.resident, household_id=home.id)
    mine, theirs = needs.create_requests(
        db,
        [ask(home.id, ("KIT-INFANT", 1)), ask(city["homes"][3].id, ("KIT-INFANT", 1))],
        actor=resident,
        today=MONDAY,
    )
    assert mine.outcome is not None and mine.outcome.merged
    assert isinstance(theirs.error, Forbidden)
    courier = make_user(db, Role.courier)
    with pytest.raises(Forbidden):
        needs.create_requests(db, [ask(home.id, ("KIT-INFANT", 1))], actor=courier, today=MONDAY)


def test_the_batch_is_capped(db: Session, city: dict[str, Any], client: TestClient) -> None:
    home = city["homes"][2].id
    with pytest.raises(Invalid) as caught:
        needs.create_requests(
            db,
            [ask(home, ("KIT-FAMILY-FOOD", 1))] * (MAX_BATCH + 1),
            actor=city["admin"],
            today=MONDAY,
        )
    assert caught.value.errors[0].loc == ("requests",)
    headers = headers_for(db, client, Role.admin)
    item = ask(home, ("KIT-FAMILY-FOOD", 1)).model_dump()
    too_many = client.post(URL, json={"requests": [item] * (MAX_BATCH + 1)}, headers=headers)
    assert too_many.status_code == 422
    assert db.scalar(select(func.count()).select_from(NeedRequest)) == 2


def test_the_endpoint_answers_each_request_and_is_safe_to_resend(
    db: Session, city: dict[str, Any], client: TestClient
) -> None:
    h3, h4 = city["homes"][2].id, city["homes"][3].id
    headers = headers_for(db, client, Role.admin) | {"Idempotency-Key": "batch-1"}
    body = {
        "requests": [
            ask(h3, ("KIT-FAMILY-FOOD", 1)).model_dump(),
            {"household_id": h3, "lines": [{"kit_sku": "KIT-INFANT", "quantity": 0}]},
            ask(h4, ("KIT-SPACESHIP", 1)).model_dump(),
            ask(h3, ("KIT-INFANT", 1)).model_dump(),
        ]
    }
    answer = client.post(URL, json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert [r["status"] for r in data["results"]] == [201, 422, 422, 200]
    assert (data["created"], data["merged"], data["refused"]) == (1, 1, 2)
    assert data["results"][1]["problem"]["errors"][0]["loc"] == [
        "requests",
        1,
        "lines",
        0,
        "quantity",
    ]
    assert data["results"][2]["problem"]["errors"][0]["loc"] == [
        "requests",
        2,
        "lines",
        0,
        "kit_sku",
    ]
    made = data["results"][0]["outcome"]["request"]["id"]
    assert data["results"][3]["outcome"]["request"]["id"] == made
    lines = db.scalar(select(func.count()).select_from(RequestLine))
    again = client.post(URL, json=body, headers=headers)
    assert again.json() == data
    assert db.scalar(select(func.count()).select_from(RequestLine)) == lines
