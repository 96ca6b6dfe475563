"""Doctors' pages: the queue (coordinators see its counts only), one consultation with its live
messages, and closing it with a prescription (which the service turns into a medical request).

Consultations are health data: only doctors (scoped by the service to those assigned to them and
those waiting in their specialties) and the household's residents open one, and every read goes
through the consult service, which audits it. Coordinators get the counts of the queue, never
the content.

Live messages are polled, not pushed: the page's message list ends with an htmx element that asks
``GET /consultations/{id}/messages?after_id=N`` every few seconds and is replaced by the new
messages and a new poller. Why not the API's WebSocket: it authenticates with the bearer token in
its first message, and a page cannot read the HttpOnly session cookie (it must not: a token in
the page is one script injection away from leaking). Polling needs no token in the page (the
cookie and the CSRF header authenticate), no script of our own, works under ``script-src
'self'`` and ``connect-src 'self'``, through proxies that drop WebSocket upgrades, and offline
(htmx is vendored). The cost: up to ``POLL_SECONDS`` of delay, and one audited read per poll (the
service audits every read of a consultation, and we keep it so). Messages sent here are stored by
the same service and also published through the message hub (to every server process), so a
phone on the WebSocket sees them at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, get_args

from fastapi import BackgroundTasks, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from relieflink import clock
from relieflink.catalog import service as catalog
from relieflink.catalog.schemas import ItemFilters
from relieflink.common.schemas import validate_as
from relieflink.consult import service as consult
from relieflink.consult import triage
from relieflink.consult.realtime import hub_for
from relieflink.consult.schemas import (
    AgeBand,
    CloseOutcome,
    ConsultationClose,
    ConsultationFilters,
    ConsultationRead,
    DoctorShift,
    Language,
    MessageCreate,
    MessageRead,
    Sex,
    Specialty,
)
from relieflink.errors import Conflict, Forbidden, Invalid
from relieflink.flows import prescriptions
from relieflink.models import Consultation, ConsultMessage, Item, RequestStatus, Role
from relieflink.users import access
from relieflink.web import formats
from relieflink.web.listing import localized
from relieflink.web.operations import REQUEST_LABELS
from relieflink.web.pages import N_, PageRouter, Web, WebDep

router = PageRouter()
DOCTORS = frozenset({Role.doctor})
POLL_SECONDS = 3
OPEN = ("waiting", "in_progress")
PRESCRIPTION_ROWS = 3  # empty rows of the prescription form (blank ones are ignored)

# Names shown to people (message ids, translated where shown).
URGENCY_LABELS = {
    "immediate": N_("Immediate"),
    "very_urgent": N_("Very urgent"),
    "urgent": N_("Urgent"),
    "standard": N_("Standard"),
    "non_urgent": N_("Not urgent"),
}
STATUS_LABELS = {
    "waiting": N_("Waiting for a doctor"),
    "in_progress": N_("With a doctor"),
    "closed": N_("Closed"),
    "cancelled": N_("Cancelled"),
}
SPECIALTY_LABELS = {
    "general": N_("General practice"),
    "paediatrics": N_("Paediatrics"),
    "obstetrics": N_("Obstetrics"),
    "internal_medicine": N_("Internal medicine"),
    "psychiatry": N_("Psychiatry"),
}
LANGUAGE_LABELS = {"zh": N_("Chinese"), "en": N_("English")}
AGE_BAND_LABELS = {
    "newborn": N_("Newborn (under 28 days)"),
    "infant": N_("Infant (1 to 11 months)"),
    "child": N_("Child (1 to 4 years)"),
    "adolescent": N_("5 to 17 years"),
    "adult": N_("Adult (18 to 64)"),
    "older_adult": N_("65 or older"),
}
SEX_LABELS = {
    "female": N_("Female"),
    "male": N_("Male"),
    "other": N_("Other"),
    "unknown": N_("Prefer not to say"),
}
TRIAGE_OUTCOME_LABELS = {
    "call_emergency_services": N_("Call emergency services now"),
    "doctor_now": N_("See a doctor now"),
    "doctor_today": N_("See a doctor today"),
    "medicine_refill": N_("Medicine refill"),
    "self_care": N_("Self-care advice"),
}
CLOSE_OUTCOME_LABELS = {
    "advice_given": N_("Advice given"),
    "prescription": N_("Prescription"),
    "referred_emergency": N_("Referred to emergency services"),
    "referred_in_person": N_("Referred to an in-person visit"),
    "no_answer": N_("The patient did not answer"),
}
SENDER_LABELS = {"doctor": N_("Doctor"), "resident": N_("Resident")}
# The questionnaire's wording where the rules file has none in a language (the rules give an
# English and a Chinese text for the always-asked questions only).
QUESTION_LABELS = {
    "fever": N_("Fever?"),
    "fever_days": N_("For how long has the fever lasted?"),
    "cough_or_sore_throat": N_("Cough or sore throat?"),
    "vomiting_diarrhoea": N_("Vomiting or diarrhoea?"),
    "pain": N_("Pain elsewhere?"),
    "mental_distress": N_("Feeling anxious, low or unable to cope?"),
    "medicine_running_out": N_("Is a regular medicine running out?"),
    "insulin_or_anticoagulant": N_(
        "Is the medicine insulin, an anticoagulant, an anti-epileptic or a transplant drug?"
    ),
    "pregnancy_bleeding": N_("Any bleeding from the vagina?"),
    "pregnancy_severe_headache_or_vision": N_("Severe headache or blurred vision?"),
    "pregnancy_severe_abdominal_pain": N_("Severe pain in the belly?"),
    "pregnancy_waters_broken": N_("Have the waters broken?"),
    "pregnancy_reduced_fetal_movement": N_("Is the baby moving less than usual?"),
    "pregnancy_regular_contractions": N_("Regular contractions?"),
    "child_unable_to_feed": N_("Is the child unable to drink or breastfeed?"),
    "child_vomits_everything": N_("Does the child vomit everything?"),
    "child_convulsions": N_("Has the child had fits (convulsions)?"),
    "child_lethargic": N_("Is the child unusually sleepy or hard to wake?"),
    "child_chest_indrawing_or_fast_breathing": N_(
        "Is the child breathing fast, or does the chest pull in when breathing?"
    ),
}
CHOICE_LABELS = {
    "none": N_("No"),
    "mild": N_("Mild"),
    "severe": N_("Severe"),
    "minor": N_("A little"),
    "heavy": N_("Heavy"),
    "thoughts": N_("Thoughts"),
    "plan_or_attempt": N_("A plan, the means, or an attempt"),
    "below_38_5": N_("Below 38.5 °C"),
    "from_38_5": N_("38.5 to 39.9 °C"),
    "from_40": N_("40 °C or more"),
    "under_3": N_("Less than 3 days"),
    "from_3": N_("3 days or more"),
    "some": N_("Some"),
    "cannot_keep_fluids": N_("Cannot keep fluids down"),
    "moderate": N_("Moderate"),
    "within_7_days": N_("Runs out within 7 days"),
    "within_2_days": N_("Runs out within 2 days"),
    "run_out": N_("Has run out"),
}
YES, NO = N_("Yes"), N_("No")

SPECIALTIES: tuple[str, ...] = get_args(Specialty)
LANGUAGES: tuple[str, ...] = get_args(Language)
AGE_BANDS: tuple[str, ...] = get_args(AgeBand)
SEXES: tuple[str, ...] = get_args(Sex)
CLOSE_OUTCOMES: tuple[str, ...] = get_args(CloseOutcome)


# --- helpers shared with the residents' pages ------------------------------------------------


def minutes_since(value: datetime, now: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return max(0, int((now - value).total_seconds() // 60))


def question_text(web: Web, question: triage.Question) -> str:
    """The question in the page's language (the rules' own text where it has one)."""
    own = question.text_zh if web.lang == "zh_CN" else question.text
    if own:
        return own
    label = QUESTION_LABELS.get(question.id)
    return web.gettext(label) if label else (question.text or question.id)


def answer_text(web: Web, value: object) -> str:
    if value is True:
        return web.gettext(YES)
    if value is False:
        return web.gettext(NO)
    label = CHOICE_LABELS.get(str(value))
    return web.gettext(label) if label else str(value)


async def form_data(request: Request) -> FormData:
    """The posted form (already parsed by the CSRF check; starlette caches it)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(form_data)]


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def form_list(form: FormData, name: str) -> list[str]:
    return [v.strip() for v in form.getlist(name) if isinstance(v, str)]


# --- the queue --------------------------------------------------------------------------------


def _row(c: Consultation, now: datetime) -> dict[str, Any]:
    due = c.due_at if c.due_at.tzinfo else c.due_at.replace(tzinfo=UTC)
    return {
        "id": c.id,
        "urgency": c.urgency,
        "urgency_label": URGENCY_LABELS.get(c.urgency, c.urgency),
        "specialty": SPECIALTY_LABELS.get(c.specialty, c.specialty),
        "age_band": AGE_BAND_LABELS.get(c.age_band, c.age_band),
        "language": LANGUAGE_LABELS.get(c.language, c.language),
        "status": STATUS_LABELS.get(c.status, c.status),
        "waiting_minutes": minutes_since(c.created_at, now),
        "overdue": c.status == "waiting" and now > due,
        "emergency": c.triage_outcome == triage.EMERGENCY,
    }


@router.page(
    "/consultations", roles=access.CONSULT_QUEUE_VIEWERS, nav=N_("Consultations"), order=15
)
def queue(web: WebDep) -> HTMLResponse:
    """Doctors: their shift, their open consultations and the queue in the order it is taken.
    Coordinators: the counts only."""
    now = clock.now()
    context: dict[str, Any] = {
        "empty": web.request.query_params.get("empty") == "1",
        "specialty_labels": SPECIALTY_LABELS,
        "language_labels": LANGUAGE_LABELS,
        "urgency_labels": URGENCY_LABELS,
        "specialties": SPECIALTIES,
        "language_codes": LANGUAGES,
    }
    if web.user.role != Role.doctor:
        context["summary"] = consult.queue_summary(web.session, actor=web.user, now=now)
        return web.render("consult/queue.html", context)
    profile = consult.get_profile(web.session, web.user.id)
    mine, _ = consult.list_consultations(
        web.session,
        ConsultationFilters(status="in_progress", mine=True),
        actor=web.user,
        limit=100,
    )
    waiting = consult.waiting_queue(web.session, actor=web.user)
    context |= {
        "summary": None,
        "profile": profile,
        "on_duty": bool(profile and profile.on_duty),
        "chosen_specialties": set(profile.specialties) if profile else {"general"},
        "chosen_languages": set(profile.languages) if profile else {"zh", "en"},
        "mine": [_row(c, now) for c in mine],
        "waiting": [_row(c, now) for c in waiting],
    }
    return web.render("consult/queue.html", context)


@router.action("/consultations/shift", roles=DOCTORS)
def shift(web: WebDep, form: FormDep) -> Response:
    """Start (or change) a shift with specialties and languages, or end it."""
    if form_text(form, "duty") == "end":
        consult.end_shift(web.session, actor=web.user)
    else:
        data = validate_as(
            DoctorShift,
            {"specialties": form_list(form, "specialty"), "languages": form_list(form, "language")},
        )
        consult.start_shift(web.session, data, actor=web.user)
    return RedirectResponse("/consultations", status_code=303)


@router.action("/consultations/take", roles=DOCTORS)
def take(web: WebDep) -> Response:
    """Take the next consultation of the queue (most urgent, then most overdue)."""
    # The request's transaction took SQLite's write lock first (request_session), as the queue
    # needs; on PostgreSQL the service skips rows other doctors hold.
    taken = consult.take_next(web.session, actor=web.user)
    if taken is None:
        return RedirectResponse("/consultations?empty=1", status_code=303)
    return RedirectResponse(f"/consultations/{taken.id}", status_code=303)


# --- one consultation ---------------------------------------------------------------------------


def _message(m: ConsultMessage, web: Web) -> dict[str, Any]:
    return {
        "id": m.id,
        "mine": m.sender_id == web.user.id,
        "who": SENDER_LABELS.get(m.sender_role, m.sender_role),
        "at": formats.moment(m.sent_at, web.lang),
        "body": m.body,
    }


def _symptoms(web: Web, read: ConsultationRead) -> list[dict[str, Any]]:
    """Every answered question, worrying answers first marked."""
    rules = triage.default_rules()
    rows = []
    for qid, value in read.symptoms.items():
        question = rules.questions.get(qid)
        rows.append(
            {
                "question": question_text(web, question) if question else qid,
                "answer": answer_text(web, value),
                "flag": question is not None and value != question.negative,
            }
        )
    return rows


def _items(web: Web) -> list[Item]:
    rows, _ = catalog.list_items(web.session, ItemFilters(), limit=500)
    # Medicines first: a prescription is mostly medicine.
    return sorted(rows, key=lambda i: (i.category != "medicine", localized(i, web.lang)))


def _prescription(web: Web, read: ConsultationRead) -> dict[str, Any] | None:
    p = read.prescription
    if p is None:
        return None
    lines = []
    for line in p.lines:
        item = catalog.require_item(web.session, line.item_id)
        lines.append(
            {
                "name": localized(item, web.lang),
                "unit": item.unit,
                "quantity": line.quantity,
                "instructions": line.instructions,
            }
        )
    delivery = p.delivery
    return {
        "lines": lines,
        "request_id": p.request_id,
        "request_status": (
            REQUEST_LABELS[RequestStatus(delivery.request_status)] if delivery else None
        ),
        "units_delivered": delivery.units_delivered if delivery else 0,
        "delivered_at": formats.moment(delivery.delivered_at, web.lang) if delivery else "–",
    }


def _consultation_page(
    web: Web,
    consultation_id: int,
    *,
    status_code: int = 200,
    close_error: Invalid | None = None,
    close_values: dict[str, Any] | None = None,
) -> HTMLResponse:
    consultation, messages = consult.view_consultation(web.session, consultation_id, actor=web.user)
    read = consult.to_read(web.session, consultation)
    is_doctor = web.user.role == Role.doctor
    assigned = is_doctor and consultation.doctor_id == web.user.id
    rules = triage.default_rules()
    fired = [r for r in rules.rules if r.id in set(read.fired_rules)]
    context: dict[str, Any] = {
        "c": read,
        "status_label": STATUS_LABELS.get(read.status, read.status),
        "urgency_label": URGENCY_LABELS.get(read.urgency, read.urgency),
        "specialty_label": SPECIALTY_LABELS.get(read.specialty, read.specialty),
        "age_band_label": AGE_BAND_LABELS.get(read.age_band, read.age_band),
        "sex_label": SEX_LABELS.get(read.sex, read.sex),
        "language_label": LANGUAGE_LABELS.get(read.language, read.language),
        "triage_label": TRIAGE_OUTCOME_LABELS.get(read.triage_outcome, read.triage_outcome),
        "outcome_label": CLOSE_OUTCOME_LABELS.get(read.outcome or "", read.outcome),
        "emergency": read.triage_outcome == triage.EMERGENCY,
        "numbers": read.emergency_numbers or [],
        "created_at": formats.moment(read.created_at, web.lang),
        "due_at": formats.moment(read.due_at, web.lang),
        "closed_at": formats.moment(read.closed_at, web.lang),
        "is_doctor": is_doctor,
        "assigned": assigned,
        "participant": messages is not None,
        "is_open": read.status in OPEN,
        "messages": [_message(m, web) for m in messages or ()],
        "last_id": max((m.id for m in messages or ()), default=0),
        # What the messages fragment (included in the page) needs: the poller's state.
        "cid": read.id,
        "polling": messages is not None and read.status in OPEN,
        "poll_seconds": POLL_SECONDS,
        "status": read.status,
        "status_changed": False,
        "error": None,  # of the compose box
        "symptoms": _symptoms(web, read),
        "fired": fired if is_doctor else [],
        "prescription": _prescription(web, read),
        "may_close": assigned and read.status == "in_progress",
        "close_error": close_error,
        "close_values": close_values or {"notes": "", "outcome": "advice_given", "lines": []},
    }
    if context["may_close"]:
        context |= {
            "outcomes": [(o, CLOSE_OUTCOME_LABELS[o]) for o in CLOSE_OUTCOMES],
            "items": [(i.id, localized(i, web.lang), i.unit) for i in _items(web)],
            "rows": range(PRESCRIPTION_ROWS),
        }
    return web.render("consult/detail.html", context, status_code=status_code)


@router.page("/consultations/{consultation_id}", roles=access.CONSULT_READERS)
def consultation(consultation_id: int, web: WebDep) -> HTMLResponse:
    """One consultation (an audited read): triage, answers, messages, prescription."""
    return _consultation_page(web, consultation_id)


@router.page("/consultations/{consultation_id}/messages", roles=access.CONSULT_READERS)
def messages(
    consultation_id: int,
    web: WebDep,
    after_id: Annotated[int, Query(ge=0)] = 0,
    status: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The messages after ``after_id`` and the next poller (participants only; audited).

    ``status`` is what the page shows: when the consultation closed since, the page reloads (to
    show the outcome and prescription); when a doctor took it, the status line is updated."""
    consultation, rows = consult.view_consultation(
        web.session, consultation_id, actor=web.user, after_id=after_id
    )
    if rows is None:  # a doctor looking at a request waiting in their specialty
        raise Forbidden("only the assigned doctor and the household take part in the messages")
    if status and consultation.status != status and consultation.status not in OPEN:
        return Response(status_code=204, headers={"HX-Refresh": "true"})
    context = {
        "cid": consultation.id,
        "messages": [_message(m, web) for m in rows],
        "last_id": max((m.id for m in rows), default=after_id),
        "polling": consultation.status in OPEN,
        "poll_seconds": POLL_SECONDS,
        "status": consultation.status,
        "status_changed": bool(status) and consultation.status != status,
        "status_label": STATUS_LABELS.get(consultation.status, consultation.status),
    }
    return web.render("consult/_messages.html", context)


@router.action("/consultations/{consultation_id}/messages", roles=access.CONSULT_READERS)
def send(consultation_id: int, web: WebDep, form: FormDep, background: BackgroundTasks) -> Response:
    """Store a message (participants of an open consultation); htmx gets a fresh compose box
    and the poller is told to fetch at once."""
    try:
        data = validate_as(MessageCreate, {"body": form_text(form, "body")})
        message = consult.post_message(web.session, consultation_id, data.body, actor=web.user)
    except Invalid as exc:
        if not web.is_htmx():
            raise
        return web.render(
            "consult/_compose.html",
            {"cid": consultation_id, "error": exc.errors[0].msg if exc.errors else exc.message},
            status_code=422,
        )
    except Conflict:
        if not web.is_htmx():
            raise
        return Response(status_code=204, headers={"HX-Refresh": "true"})
    event = {"type": "message", **MessageRead.model_validate(message).model_dump(mode="json")}
    background.add_task(hub_for(web.request.app).announce, consultation_id, event)
    if web.is_htmx():
        response = web.render("consult/_compose.html", {"cid": consultation_id, "error": None})
        response.headers["HX-Trigger"] = "consult-sent"
        return response
    return RedirectResponse(f"/consultations/{consultation_id}#messages", status_code=303)


def _form_rows(form: FormData) -> list[dict[str, str]]:
    """The rows of the prescription form as typed (the three fields come in row order)."""
    items = form_list(form, "item_id")
    quantities = form_list(form, "quantity")
    notes = form_list(form, "instructions")
    n = max(len(items), len(quantities), len(notes))

    def at(values: list[str], i: int) -> str:
        return values[i] if i < len(values) else ""

    return [
        {"item_id": at(items, i), "quantity": at(quantities, i), "instructions": at(notes, i)}
        for i in range(n)
    ]


def _prescription_lines(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The filled rows (one with neither item nor quantity is skipped; a half-filled one is
    kept so that validation names what is missing)."""
    return [
        {
            "item_id": row["item_id"] or None,
            "quantity": row["quantity"] or None,
            "instructions": row["instructions"] or None,
        }
        for row in rows
        if row["item_id"] or row["quantity"]
    ]


@router.action("/consultations/{consultation_id}/close", roles=DOCTORS)
def close(
    consultation_id: int, web: WebDep, form: FormDep, background: BackgroundTasks
) -> Response:
    """End the consultation with notes and an outcome; with prescription lines, the service
    writes the prescription and creates the household's medical request."""
    rows = _form_rows(form)
    lines = _prescription_lines(rows)
    try:
        data = validate_as(
            ConsultationClose,
            {
                "notes": form_text(form, "notes"),
                "outcome": form_text(form, "outcome"),
                "prescription": (
                    {"lines": lines, "reason": form_text(form, "reason") or None} if lines else None
                ),
            },
        )
        prescriptions.close_consultation(web.session, consultation_id, data, actor=web.user)
    except Invalid as exc:
        web.session.rollback()  # nothing of a refused prescription is kept
        consult.begin_write(web.session)  # the page below reads, then audits the read
        typed = {"notes": form_text(form, "notes"), "outcome": form_text(form, "outcome")}
        return _consultation_page(
            web,
            consultation_id,
            status_code=422,
            close_error=exc,
            close_values=typed | {"lines": rows},
        )
    event = {"type": "status", "consultation_id": consultation_id, "status": "closed"}
    background.add_task(hub_for(web.request.app).announce, consultation_id, event)
    return RedirectResponse(f"/consultations/{consultation_id}", status_code=303)


def consultation_rows(web: Web, rows: Sequence[Consultation]) -> list[dict[str, Any]]:
    """Rows for a list of consultations (the residents' page shows theirs)."""
    now = clock.now()
    return [_row(c, now) | {"created_at": formats.moment(c.created_at, web.lang)} for c in rows]
