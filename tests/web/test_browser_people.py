"""Browser tests of the people's pages: a resident asks for help in Chinese on a phone and sees
the request's status (and a parcel's pickup code); a resident asks for a consultation, a doctor
takes it, they exchange live messages, and the doctor prescribes.

Screenshots go to ``test-artifacts/screenshots/`` (``help-*``, ``status-*``, ``consult-*``).
Every other host is blocked: the pages work offline (htmx is vendored, the messages are polled).
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink.catalog import service as catalog
from relieflink.dispatch import codes
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import NeedRequest, Parcel, RequestSource, Role, User
from tests.consult.factories import make_doctor, make_household_with_resident
from tests.dispatch.factories import TODAY, make_city
from tests.factories import PASSWORD, make_community, make_household, make_user
from tests.stock.factories import make_item
from tests.web.browser_kit import BROWSER_MARKS, PHONE, WIDE, fits, new_context, shot, sync_api

pytestmark = BROWSER_MARKS
POLL_WAIT_MS = 15_000  # the pages poll every 3 s; a busy machine is slow


def sign_in_to(page: object, user: User, landing: str) -> None:
    """Sign in through the form and wait for the role's first page (residents and doctors do
    not land on the dashboard)."""
    page.goto("/sign-in")  # type: ignore[attr-defined]
    page.fill("#username", user.username)  # type: ignore[attr-defined]
    page.fill("#password", PASSWORD)  # type: ignore[attr-defined]
    page.click("form.stack button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(re.escape(landing) + "$"))  # type: ignore[attr-defined]


def watch(page: object) -> list[str]:
    """Script errors and CSP refusals of a page, to assert there were none."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))  # type: ignore[attr-defined]
    page.on(  # type: ignore[attr-defined]
        "console",
        lambda msg: (
            problems.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    return problems


def test_a_resident_asks_for_help_in_chinese_on_a_phone(
    db: Session, server: str, browser: object
) -> None:
    catalog.seed_catalog(db, actor=None)
    admin = make_user(db, Role.admin)
    home = make_household(db, make_community(db), actor=admin, infants=1)
    resident = make_user(db, Role.resident, household_id=home.id, full_name="王芳")
    db.commit()

    context = new_context(browser, server, locale="zh-CN", viewport=PHONE)
    page = context.new_page()  # type: ignore[attr-defined]
    problems = watch(page)
    sign_in_to(page, resident, "/help")
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert page.inner_text("h1") == "申请援助"
    fits(page, PHONE["width"])
    shot(page, "help-360-zh")

    # Keyboard: the family kit's quantity, then the note, then send with Enter on the button.
    page.focus("#kit-KIT-FAMILY-FOOD")
    page.keyboard.press("Control+A")
    page.keyboard.type("1")
    page.fill("#note", "家里有一个婴儿")
    page.focus("form.help-form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_selector("#outcome[data-merged=false]")
    assert "已登记" in page.inner_text("#outcome")
    request_id = page.get_attribute("#outcome", "data-request")
    shot(page, "help-sent-360-zh")

    # Asking again in the same period: merged, and the page says so.
    page.fill("#kit-KIT-INFANT", "1")
    page.click("form.help-form button[type=submit]")
    page.wait_for_selector("#outcome[data-merged=true]")
    assert f"已并入申请 {request_id}" in page.inner_text("#outcome")
    fits(page, PHONE["width"])
    shot(page, "help-merged-360-zh")

    page.click("#outcome >> text=查看您的申请状态")
    page.wait_for_url(re.compile(r"/help/status$"))
    card = page.locator(f"[data-request='{request_id}']")
    assert card.get_attribute("data-status") == "open"
    assert "等待物资" in card.inner_text()
    assert page.locator("[data-request]").count() == 1
    fits(page, PHONE["width"])
    shot(page, "status-360-zh")
    assert not problems, problems
    context.close()  # type: ignore[attr-defined]


def test_a_resident_sees_the_pickup_code_of_their_parcel(
    db: Session, server: str, browser: object
) -> None:
    city = make_city(db, per_community=1)
    dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.5)
    db.commit()
    parcel, *others = db.scalars(select(Parcel).order_by(Parcel.id)).all()
    resident = city.residents[parcel.household_id]

    context = new_context(browser, server, locale="zh-CN", viewport=PHONE)
    page = context.new_page()  # type: ignore[attr-defined]
    problems = watch(page)
    sign_in_to(page, resident, "/help")
    page.click("nav.main-nav >> text=申请与配送")
    page.wait_for_url(re.compile(r"/help/status$"))
    assert page.inner_text(".pickup-code") == codes.derive(parcel.code_nonce)
    body = page.inner_text("main")
    assert all(codes.derive(p.code_nonce) not in body for p in others)
    fits(page, PHONE["width"])
    shot(page, "status-code-360-zh")
    assert not problems, problems
    context.close()  # type: ignore[attr-defined]


def test_a_consultation_with_live_messages_and_a_prescription(
    db: Session, server: str, browser: object
) -> None:
    household, resident = make_household_with_resident(db)
    doctor = make_doctor(db)
    medicine = make_item(
        db, category="medicine", name="Amoxicillin 250 mg", name_zh="阿莫西林 250毫克",
        unit="box", prescription_only=True,
    )  # fmt: skip
    db.commit()

    # The resident, on a phone in Chinese, answers the questionnaire.
    resident_context = new_context(browser, server, locale="zh-CN", viewport=PHONE)
    mine = resident_context.new_page()  # type: ignore[attr-defined]
    resident_problems = watch(mine)
    sign_in_to(mine, resident, "/help")
    mine.click("nav.main-nav >> text=看医生")
    mine.wait_for_url(re.compile(r"/help/consultation$"))
    mine.fill("#member_label", "我")
    mine.select_option("#age_band", "adult")
    mine.check("input[name=sex][value=female]")
    mine.fill("#reason", "咳嗽三天")
    for question in ("unresponsive_or_seizure", "stroke_signs", "severe_allergic_reaction"):
        mine.check(f"input[name='q:{question}'][value=false]")
    for question in ("breathing_difficulty", "chest_pain", "bleeding", "self_harm_risk"):
        mine.check(f"input[name='q:{question}'][value=none]")
    mine.click("details[data-group=optional] > summary")  # folded on a phone
    mine.check("input[name='q:cough_or_sore_throat'][value=true]")
    fits(mine, PHONE["width"])
    shot(mine, "consult-form-360-zh")
    mine.click("form.consult-form button[type=submit]")
    mine.wait_for_url(re.compile(r"/consultations/\d+$"))
    cid = int(mine.url.rsplit("/", 1)[1])
    assert mine.inner_text("#consult-status") == "等待医生接诊"
    assert mine.locator("#emergency").count() == 0

    # The doctor, on a wide screen in English, takes the next one: it is this one.
    doctor_context = new_context(browser, server, locale="en-GB", viewport=WIDE)
    desk = doctor_context.new_page()  # type: ignore[attr-defined]
    doctor_problems = watch(desk)
    sign_in_to(desk, doctor, "/consultations")
    assert desk.locator(f"#queue tr[data-consultation='{cid}']").count() == 1
    shot(desk, "consult-queue-1280-en")
    desk.click("form.take button")
    desk.wait_for_url(re.compile(rf"/consultations/{cid}$"))
    assert "咳嗽三天" in desk.inner_text("dl.facts")

    # Live messages both ways, without reloading either page.
    desk.fill("#message-body", "How long have you had the cough?")
    desk.click("#compose button[type=submit]")
    desk.wait_for_selector("#message-list .message.mine >> text=How long have you had the cough?")
    assert desk.input_value("#message-body") == ""  # a fresh compose box
    mine.wait_for_selector(
        "#message-list .message >> text=How long have you had the cough?", timeout=POLL_WAIT_MS
    )
    sync_api.expect(mine.locator("#consult-status")).to_have_text("医生接诊中")
    mine.fill("#message-body", "三天了，没有发烧")
    mine.click("#compose button[type=submit]")
    desk.wait_for_selector("#message-list .message >> text=三天了，没有发烧", timeout=POLL_WAIT_MS)
    fits(mine, PHONE["width"])
    shot(mine, "consult-chat-360-zh")

    # The doctor prescribes and closes: the service creates the household's medical request.
    desk.fill("#notes", "Bacterial bronchitis likely; antibiotics for five days.")
    desk.select_option("#outcome", "prescription")
    desk.select_option("#item-0", str(medicine.id))
    desk.fill("#quantity-0", "2")
    desk.fill("#instructions-0", "One capsule three times a day")
    shot(desk, "consult-prescribe-1280-en")
    desk.click("#close button[type=submit]")
    desk.wait_for_selector("#prescription [data-request]")
    assert "Amoxicillin 250 mg" in desk.inner_text("#prescription")
    shot(desk, "consult-closed-1280-en")

    # The resident's page notices the end by itself and shows the prescription.
    mine.wait_for_selector("#prescription", timeout=POLL_WAIT_MS)
    assert "阿莫西林 250毫克" in mine.inner_text("#prescription")
    assert mine.inner_text("#consult-status") == "已结束"
    fits(mine, PHONE["width"])
    shot(mine, "consult-prescription-360-zh")

    db.expire_all()
    request = db.scalars(select(NeedRequest).where(NeedRequest.consultation_id == cid)).one()
    assert request.household_id == household.id
    assert request.source == RequestSource.prescription
    assert [(line.item_id, line.quantity) for line in request.lines] == [(medicine.id, 2)]
    assert mine.get_attribute("#prescription [data-request]", "data-request") == str(request.id)
    assert not resident_problems, resident_problems
    assert not doctor_problems, doctor_problems
    resident_context.close()  # type: ignore[attr-defined]
    doctor_context.close()  # type: ignore[attr-defined]
