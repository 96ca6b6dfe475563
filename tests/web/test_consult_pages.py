"""The doctors' pages: the queue in the service's order, one consultation with its messages
(polled with ``after_id``), closing with a prescription; who may read what (health data)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.models import (
    AuditEvent,
    Consultation,
    NeedRequest,
    Prescription,
    RequestSource,
    Role,
    User,
)
from tests.consult.factories import make_consultation, make_doctor, make_household_with_resident
from tests.factories import make_user
from tests.factories import sign_in as api_sign_in
from tests.stock.factories import make_item
from tests.web.helpers import csrf_of, signed_in

HTMX = {"HX-Request": "true"}
REASON = "Dry cough since Monday"


@pytest.fixture
def other_client(client: TestClient) -> Iterator[TestClient]:
    """A second browser on the same app (its own cookies)."""
    with TestClient(client.app) as second:
        yield second


def _queue_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'data-consultation="(\d+)"', html)]


def _reads(db: Session, user: User, consultation_id: int) -> int:
    db.rollback()  # see what the app committed
    return (
        db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.actor_id == user.id,
                AuditEvent.action == "read",
                AuditEvent.entity == "consultation",
                AuditEvent.entity_id == consultation_id,
            )
        )
        or 0
    )


def _post(
    client: TestClient, page_url: str, url: str, data: dict[str, object], *, follow: bool = True
) -> Response:
    """POST a form of ``page_url`` (its CSRF token) to ``url``."""
    token = csrf_of(client.get(page_url).text)
    return client.post(url, data={"csrf_token": token, **data}, follow_redirects=follow)


def test_the_queue_is_in_the_services_order_and_take_gives_the_first(
    db: Session, client: TestClient
) -> None:
    _, resident = make_household_with_resident(db)
    doctor = make_doctor(db)
    now = clock.now()
    standard_old = make_consultation(db, resident, now=now - timedelta(days=2))
    standard_new = make_consultation(db, resident, now=now - timedelta(minutes=5))
    urgent = make_consultation(db, resident, answers={"breathing_difficulty": "mild"}, now=now)
    elsewhere = make_consultation(db, resident, specialty="psychiatry", now=now)
    db.commit()

    page = signed_in(client, doctor).get("/consultations")
    assert page.status_code == 200
    # Most urgent first, then the longest overdue; other specialties are not shown.
    assert _queue_ids(page.text) == [urgent.id, standard_old.id, standard_new.id]
    assert elsewhere.id not in _queue_ids(page.text)
    assert 'class="overdue"' in page.text  # two days old: past its target

    taken = _post(client, "/consultations", "/consultations/take", {}, follow=False)
    assert taken.status_code == 303
    assert taken.headers["location"] == f"/consultations/{urgent.id}"
    after = client.get("/consultations").text
    assert _queue_ids(after) == [standard_old.id, standard_new.id]
    assert f'href="/consultations/{urgent.id}"' in after.split('id="queue-title"')[0]  # mine


def test_a_doctor_starts_a_shift_and_an_empty_queue_says_so(
    db: Session, client: TestClient
) -> None:
    doctor = make_user(db, Role.doctor)
    db.commit()
    signed_in(client, doctor)
    first = client.get("/consultations").text
    assert "start a shift" in first and "Take the next consultation" not in first
    response = _post(
        client,
        "/consultations",
        "/consultations/shift",
        {"specialty": ["paediatrics", "general"], "language": ["zh"], "duty": "start"},
    )
    assert response.status_code == 200
    assert "You are on duty." in response.text
    assert re.search(
        r'id="sp-paediatrics" name="specialty" value="paediatrics" checked', response.text
    )
    assert not re.search(r'id="lg-en" name="language" value="en" checked', response.text)
    empty = _post(client, "/consultations", "/consultations/take", {})
    assert "Nothing waiting matches your specialties and languages." in empty.text
    ended = _post(client, "/consultations", "/consultations/shift", {"duty": "end"})
    assert "You are not on duty" in ended.text


def test_a_consultation_from_the_form_to_the_prescription_and_the_medical_request(
    db: Session, client: TestClient, other_client: TestClient
) -> None:
    household, resident = make_household_with_resident(db)
    doctor = make_doctor(db)
    medicine = make_item(db, category="medicine", name="Amoxicillin 250 mg", prescription_only=True)
    db.commit()

    # The resident asks through the questionnaire.
    signed_in(client, resident)
    form = client.get("/help/consultation").text
    answers = {
        f"q:{q}": "false"
        for q in ("unresponsive_or_seizure", "stroke_signs", "severe_allergic_reaction")
    } | {
        "q:breathing_difficulty": "none",
        "q:chest_pain": "none",
        "q:bleeding": "none",
        "q:self_harm_risk": "none",
        "q:cough_or_sore_throat": "true",
    }
    asked = client.post(
        "/help/consultation",
        data={
            "csrf_token": csrf_of(form),
            "member_label": "self",
            "age_band": "adult",
            "sex": "female",
            "reason": REASON,
            "language": "en",
            **answers,
        },
        follow_redirects=False,
    )
    assert asked.status_code == 303, asked.text
    cid = int(asked.headers["location"].rsplit("/", 1)[1])
    waiting = client.get(f"/consultations/{cid}").text
    assert REASON in waiting and "Waiting for a doctor" in waiting
    assert 'id="emergency"' not in waiting

    # The doctor takes it and writes; the resident's poll brings the message.
    signed_in(other_client, doctor)
    taken = _post(other_client, "/consultations", "/consultations/take", {})
    assert f"Consultation {cid}" in taken.text and REASON in taken.text
    sent = other_client.post(
        f"/consultations/{cid}/messages",
        data={"csrf_token": csrf_of(taken.text), "body": "How long have you had the cough?"},
        headers=HTMX,
    )
    assert sent.status_code == 200 and sent.headers["HX-Trigger"] == "consult-sent"
    assert 'id="compose"' in sent.text  # a fresh, empty compose box
    fragment = client.get(
        f"/consultations/{cid}/messages?after_id=0&status=waiting", headers=HTMX
    ).text
    assert "How long have you had the cough?" in fragment
    assert 'id="consult-status" hx-swap-oob="true"' in fragment  # waiting → with a doctor
    last = max(int(x) for x in re.findall(r'id="m-(\d+)"', fragment))
    assert f"after_id={last}&amp;status=in_progress" in fragment  # the next poller
    quiet = client.get(
        f"/consultations/{cid}/messages?after_id={last}&status=in_progress", headers=HTMX
    ).text
    assert 'class="message' not in quiet and "hx-trigger" in quiet

    # A half-filled prescription saves nothing and says what is missing.
    page = other_client.get(f"/consultations/{cid}").text
    bad = other_client.post(
        f"/consultations/{cid}/close",
        data={
            "csrf_token": csrf_of(page),
            "notes": "Bacterial infection likely",
            "outcome": "prescription",
            "item_id": [str(medicine.id), "", ""],
            "quantity": ["", "", ""],
            "instructions": ["", "", ""],
        },
    )
    assert bad.status_code == 422
    assert "Nothing was saved." in bad.text and "prescription.lines.0.quantity" in bad.text
    assert "Bacterial infection likely" in bad.text  # what was typed is kept
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Prescription)) == 0

    closed = other_client.post(
        f"/consultations/{cid}/close",
        data={
            "csrf_token": csrf_of(page),
            "notes": "Bacterial infection likely",
            "outcome": "prescription",
            "item_id": [str(medicine.id), "", ""],
            "quantity": ["2", "", ""],
            "instructions": ["one capsule three times a day", "", ""],
        },
        follow_redirects=False,
    )
    assert closed.status_code == 303, closed.text

    db.rollback()
    request = db.scalars(select(NeedRequest).where(NeedRequest.consultation_id == cid)).one()
    assert request.household_id == household.id
    assert request.source == RequestSource.prescription and request.medical_urgency > 0
    assert [(line.item_id, line.quantity) for line in request.lines] == [(medicine.id, 2)]
    assert db.get(Consultation, cid).status == "closed"  # type: ignore[union-attr]

    # The resident's poll notices the end and reloads; the page shows the prescription.
    ended = client.get(
        f"/consultations/{cid}/messages?after_id={last}&status=in_progress", headers=HTMX
    )
    assert ended.headers.get("HX-Refresh") == "true"
    final = client.get(f"/consultations/{cid}").text
    assert "Amoxicillin 250 mg" in final and "one capsule three times a day" in final
    assert f'data-request="{request.id}"' in final
    assert 'id="compose"' not in final  # a closed consultation takes no more messages


def test_a_doctor_of_another_specialty_cannot_open_a_taken_consultation(
    db: Session, client: TestClient, other_client: TestClient
) -> None:
    _, resident = make_household_with_resident(db)
    general = make_doctor(db, ("general",))
    paediatrician = make_doctor(db, ("paediatrics",))
    consultation = make_consultation(db, resident, reason=REASON)
    db.commit()
    signed_in(client, general)
    _post(client, "/consultations", "/consultations/take", {})
    signed_in(other_client, paediatrician)
    token = csrf_of(other_client.get("/consultations").text)
    cid = consultation.id

    for url in (f"/consultations/{cid}", f"/consultations/{cid}/messages"):
        response = other_client.get(url)
        assert response.status_code == 403, url
        assert REASON not in response.text
    posted = other_client.post(
        f"/consultations/{cid}/messages", data={"csrf_token": token, "body": "hello"}
    )
    assert posted.status_code == 403
    closing = other_client.post(
        f"/consultations/{cid}/close",
        data={"csrf_token": token, "notes": "x", "outcome": "advice_given"},
    )
    assert closing.status_code == 403
    # Even a second general doctor: once taken, it is the first doctor's.
    second = make_doctor(db, ("general",))
    db.commit()
    other_client.cookies.clear()
    signed_in(other_client, second)
    assert other_client.get(f"/consultations/{cid}").status_code == 403
    assert client.get(f"/consultations/{cid}").status_code == 200


def test_coordinators_get_403_on_the_content_and_see_counts_only(
    db: Session, client: TestClient
) -> None:
    _, resident = make_household_with_resident(db)
    make_doctor(db)
    consultation = make_consultation(
        db, resident, reason=REASON, member_label="grandmother", answers={"chest_pain": "severe"}
    )
    coordinator = make_user(db, Role.coordinator)
    db.commit()
    signed_in(client, coordinator)
    for url in (
        f"/consultations/{consultation.id}",
        f"/consultations/{consultation.id}/messages",
    ):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "You may not open this page" in response.text
        assert REASON not in response.text
    queue = client.get("/consultations")
    assert queue.status_code == 200
    assert re.search(r'data-stat="waiting">1<', queue.text)
    assert re.search(r'data-stat="on-duty">1<', queue.text)
    assert REASON not in queue.text and "grandmother" not in queue.text
    assert f"/consultations/{consultation.id}" not in queue.text
    token = csrf_of(queue.text)
    take = client.post("/consultations/take", data={"csrf_token": token})
    assert take.status_code == 403


def test_every_page_read_and_poll_is_audited(
    db: Session, client: TestClient, other_client: TestClient
) -> None:
    _, resident = make_household_with_resident(db)
    doctor = make_doctor(db)
    consultation = make_consultation(db, resident)
    db.commit()
    signed_in(client, resident)
    before = _reads(db, resident, consultation.id)
    client.get(f"/consultations/{consultation.id}")
    assert _reads(db, resident, consultation.id) == before + 1
    client.get(f"/consultations/{consultation.id}/messages?after_id=0", headers=HTMX)
    assert _reads(db, resident, consultation.id) == before + 2
    # A doctor may look at a request waiting in their specialty (audited), without its messages.
    signed_in(other_client, doctor)
    page = other_client.get(f"/consultations/{consultation.id}")
    assert page.status_code == 200 and 'id="compose"' not in page.text
    assert "take the next one" in page.text
    assert _reads(db, doctor, consultation.id) == 1
    assert other_client.get(f"/consultations/{consultation.id}/messages").status_code == 403


def test_a_red_flag_shows_the_emergency_numbers_first(db: Session, client: TestClient) -> None:
    _, resident = make_household_with_resident(db)
    consultation = make_consultation(db, resident, answers={"stroke_signs": True})
    db.commit()
    page = signed_in(client, resident).get(f"/consultations/{consultation.id}").text
    emergency = page.index('id="emergency"')
    assert emergency < page.index('class="facts"')  # before anything else
    assert 'href="tel:120"' in page and 'href="tel:999"' in page
    assert "Call emergency services now" in page


def test_messages_need_the_csrf_token_and_a_body(db: Session, client: TestClient) -> None:
    _, resident = make_household_with_resident(db)
    consultation = make_consultation(db, resident)
    db.commit()
    signed_in(client, resident)
    url = f"/consultations/{consultation.id}/messages"
    assert client.post(url, data={"body": "hello"}).status_code == 403
    token = csrf_of(client.get(f"/consultations/{consultation.id}").text)
    empty = client.post(url, data={"csrf_token": token, "body": "  "}, headers=HTMX)
    assert empty.status_code == 422 and 'role="alert"' in empty.text
    ok = client.post(
        url, data={"csrf_token": token, "body": "我咳嗽三天了"}, follow_redirects=False
    )
    assert ok.status_code == 303
    assert "我咳嗽三天了" in client.get(f"/consultations/{consultation.id}").text


def test_a_message_sent_from_the_page_reaches_a_phone_on_the_websocket(
    db: Session, client: TestClient
) -> None:
    _, resident = make_household_with_resident(db)
    doctor = make_doctor(db)
    consultation = make_consultation(db, resident)
    db.commit()
    signed_in(client, doctor)
    _post(client, "/consultations", "/consultations/take", {})
    token = api_sign_in(client, resident)["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect(f"/api/v1/consultations/{consultation.id}/ws") as phone:
        phone.send_json({"type": "auth", "token": token})
        assert phone.receive_json()["type"] == "ready"
        page = client.get(f"/consultations/{consultation.id}").text
        sent = client.post(
            f"/consultations/{consultation.id}/messages",
            data={"csrf_token": csrf_of(page), "body": "请描述一下症状"},
            headers=HTMX,
        )
        assert sent.status_code == 200
        phone.send_json({"type": "ping"})  # answered after anything already queued: no hang
        event = phone.receive_json()
        assert event["type"] == "message" and event["body"] == "请描述一下症状"
        assert event["sender_role"] == "doctor"
