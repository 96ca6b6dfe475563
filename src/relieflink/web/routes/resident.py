"""Residents' and committees' pages: ask for help, a building's list, the status of requests and
deliveries (with the pickup codes, for the household's residents only), and a consultation.

Phone first: one column at 360 px, every input labelled, plain forms that work without scripts
(htmx only makes the building upload answer in place).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from relieflink import clock
from relieflink.catalog import service as catalog
from relieflink.catalog.schemas import ItemFilters, KitFilters
from relieflink.common import files
from relieflink.common.schemas import validate_as
from relieflink.consult import service as consult
from relieflink.consult import triage
from relieflink.consult.schemas import ConsultationCreate, ConsultationFilters
from relieflink.dispatch import tracking
from relieflink.errors import FieldError, Invalid
from relieflink.households import service as households
from relieflink.models import Item, Kit, NeedRequest, RequestStatus, Role
from relieflink.needs import service as needs
from relieflink.needs.schemas import RequestCreate, RequestFilters, RequestOutcome
from relieflink.users import access
from relieflink.web import formats
from relieflink.web.listing import localized
from relieflink.web.operations import REQUEST_LABELS
from relieflink.web.pages import N_, PageRouter, Web, WebDep
from relieflink.web.routes.consult import (
    AGE_BAND_LABELS,
    AGE_BANDS,
    LANGUAGE_LABELS,
    LANGUAGES,
    SEX_LABELS,
    SEXES,
    STATUS_LABELS,
    URGENCY_LABELS,
    FormDep,
    answer_text,
    consultation_rows,
    form_text,
    question_text,
)

router = PageRouter()
ASKERS = frozenset({Role.resident, Role.committee})
RESIDENTS = access.CONSULT_REQUESTERS
COMMITTEES = frozenset({Role.committee})
MAX_QUANTITY = 100
PAGE = 50

PARCEL_STATUS_LABELS = {
    "pending": N_("Being prepared"),
    "planned": N_("Planned"),
    "loaded": N_("Loaded"),
    "departed": N_("On its way"),
    "at_gate": N_("At the gate"),
    "handed_off": N_("With the volunteers at the gate"),
    "delivered": N_("Delivered"),
    "failed": N_("Not delivered"),
}
SOURCE_LABELS = {
    "household": N_("Your household"),
    "committee": N_("Community committee"),
    "ngo": N_("Relief team"),
    "prescription": N_("Prescription"),
}
QUESTION_GROUPS = [
    ("always", N_("Danger signs"), N_("Answer every question.")),
    ("pregnant", N_("If pregnant"), N_("Answer these if the person is pregnant.")),
    ("under_5", N_("A child under 5"), N_("Answer these for a baby or a child under 5.")),
    (None, N_("Other symptoms"), N_("Optional: answer what applies.")),
]


# --- ask for help ----------------------------------------------------------------------------


def _catalog(web: Web) -> tuple[list[Kit], list[Item]]:
    """What a household may ask for: the kits, and the items that need no prescription."""
    kits, _ = catalog.list_kits(web.session, KitFilters(), limit=200)
    items, _ = catalog.list_items(web.session, ItemFilters(), limit=500)
    return list(kits), [i for i in items if not i.prescription_only]


def _line_names(web: Web, request: Any) -> list[dict[str, Any]]:
    """A request's lines with their names (``request``: an ORM request or its read model)."""
    out = []
    for line in request.lines:
        if line.kit_id is not None:
            name = localized(catalog.require_kit(web.session, line.kit_id), web.lang)
        else:
            name = localized(catalog.require_item(web.session, line.item_id), web.lang)
        out.append({"name": name, "quantity": line.quantity, "allocated": line.allocated})
    return out


def _help_page(
    web: Web,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    error: Invalid | None = None,
    outcome: RequestOutcome | None = None,
) -> HTMLResponse:
    kits, items = _catalog(web)
    context: dict[str, Any] = {
        "is_committee": web.user.role == Role.committee,
        "has_household": web.user.household_id is not None,
        "kits": [
            {"sku": k.sku, "name": localized(k, web.lang), "persons": k.persons, "days": k.days}
            for k in kits
        ],
        "items": [{"sku": i.sku, "name": localized(i, web.lang), "unit": i.unit} for i in items],
        "values": values or {},
        "error": error,
        "outcome": outcome,
        "outcome_lines": _line_names(web, outcome.request) if outcome else [],
        "max_quantity": MAX_QUANTITY,
    }
    return web.render("resident/help.html", context, status_code=status_code)


@router.page("/help", roles=ASKERS, nav=N_("Ask for help"), order=12)
def help_form(web: WebDep) -> HTMLResponse:
    """Choose kits and items for the household (a committee: for a household it manages)."""
    return _help_page(web)


def _household_id(web: Web, form: FormData) -> int:
    if web.user.role == Role.resident:
        if web.user.household_id is None:
            raise Invalid(
                "your account is not linked to a household",
                [FieldError(("household_code",), "ask your committee to link your account")],
            )
        return web.user.household_id
    code = form_text(form, "household_code")
    found = households.ids_by_code(web.session, {code}) if code else {}
    if code not in found:
        raise Invalid(
            "no such household",
            [
                FieldError(
                    ("household_code",), f"no household with code {code!r}" if code else "required"
                )
            ],
        )
    return found[code]


def _chosen_lines(form: FormData) -> list[dict[str, Any]]:
    """``kit:SKU`` and ``item:SKU`` fields with a quantity above zero, as request lines."""
    lines: list[dict[str, Any]] = []
    errors: list[FieldError] = []
    for name, raw in form.multi_items():
        kind, _, sku = name.partition(":")
        if kind not in ("kit", "item") or not sku or not isinstance(raw, str) or not raw.strip():
            continue
        try:
            quantity = int(raw)
        except ValueError:
            errors.append(FieldError((name,), "must be a whole number"))
            continue
        if quantity < 0 or quantity > MAX_QUANTITY:
            errors.append(FieldError((name,), f"must be between 0 and {MAX_QUANTITY}"))
        elif quantity:
            lines.append({f"{kind}_sku": sku, "quantity": quantity})
    if errors:
        raise Invalid("some quantities are not valid", errors)
    if not lines:
        raise Invalid(
            "choose at least one kit or item", [FieldError(("lines",), "nothing was chosen")]
        )
    return lines


@router.action("/help", roles=ASKERS)
def ask_for_help(web: WebDep, form: FormDep) -> HTMLResponse:
    """Store the request; a second one in the same ration period is merged into the first and
    the page says so."""
    values = {k: v for k, v in form.multi_items() if isinstance(v, str) and k != "csrf_token"}
    try:
        data = validate_as(
            RequestCreate,
            {
                "household_id": _household_id(web, form),
                "lines": _chosen_lines(form),
                "note": form_text(form, "note") or None,
            },
        )
        outcome = needs.create_request(web.session, data, actor=web.user, today=clock.today())
    except Invalid as exc:
        return _help_page(web, status_code=422, values=values, error=exc)
    return _help_page(web, outcome=outcome)


# --- a building's list (committees) --------------------------------------------------------------


def _row_errors(errors: list[FieldError]) -> list[dict[str, Any]]:
    """``FieldError(("line", n, column...), reason)`` of the import → table rows."""
    rows = []
    for error in errors:
        line = error.loc[1] if len(error.loc) > 1 and error.loc[0] == "line" else ""
        column = ".".join(str(p) for p in error.loc[2:])
        rows.append({"line": line, "column": column, "reason": error.msg})
    return rows


def _building_page(web: Web, status_code: int = 200, **context: Any) -> HTMLResponse:
    base = {"columns": needs.BULK_COLUMNS, "report": None, "failure": None, "errors": []}
    template = "resident/_building_result.html" if web.is_htmx() else "resident/building.html"
    return web.render(template, base | context, status_code=status_code)


@router.page("/help/building", roles=COMMITTEES, nav=N_("Building list"), order=13)
def building_form(web: WebDep) -> HTMLResponse:
    return _building_page(web)


@router.action("/help/building", roles=COMMITTEES)
def building_upload(web: WebDep, file: UploadFile) -> HTMLResponse:
    """Requests for many households from one file: every row is checked first; one bad row and
    nothing is stored (each problem listed with its line and column)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = files.save_upload(file.file, file.filename, Path(tmp))
        try:
            report = needs.import_requests(web.session, path, actor=web.user, today=clock.today())
        except Invalid as exc:
            web.session.rollback()  # all rows or none
            return _building_page(web, 422, failure=exc.message, errors=_row_errors(exc.errors))
    return _building_page(web, report=report)


# --- status and pickup codes -------------------------------------------------------------------


def _eta(seconds: int | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def _request_row(web: Web, r: NeedRequest, codes: dict[int, str]) -> dict[str, Any]:
    return {
        "id": r.id,
        "status": str(r.status),
        "status_label": REQUEST_LABELS[RequestStatus(r.status)],
        "source": SOURCE_LABELS.get(str(r.source), str(r.source)),
        "created_at": formats.moment(r.created_at, web.lang),
        "period_start": formats.day(r.period_start, web.lang),
        "medical": r.medical_urgency > 0,
        "household": codes.get(r.household_id, ""),
        "lines": _line_names(web, r),
    }


@router.page("/help/status", roles=ASKERS, nav=N_("Requests and deliveries"), order=14)
def status(web: WebDep) -> HTMLResponse:
    """Requests (newest first) and, for a household's resident, its deliveries with the pickup
    codes (the code is shown only here, to the household's own residents)."""
    filters = RequestFilters()
    total = needs.list_requests(web.session, filters, actor=web.user, limit=0)[1]
    # Newest first across pages: the service pages by id, so start from the end.
    end = total
    raw_end = web.request.query_params.get("before", "")
    if raw_end.isdigit():
        end = min(int(raw_end), total)
    start = max(0, end - PAGE)
    rows, _ = needs.list_requests(
        web.session, filters, actor=web.user, offset=start, limit=end - start
    )
    codes: dict[int, str] = {}
    if web.user.role == Role.committee:
        for household_id in {r.household_id for r in rows}:
            codes[household_id] = households.require_visible(
                web.session, household_id, actor=web.user
            ).code
    deliveries = []
    if web.user.role == Role.resident and web.user.household_id is not None:
        for parcel, code, eta in tracking.my_deliveries(web.session, actor=web.user):
            deliveries.append(
                {
                    "id": parcel.id,
                    "status": str(parcel.status),
                    "status_label": PARCEL_STATUS_LABELS.get(
                        str(parcel.status), str(parcel.status)
                    ),
                    "packs": parcel.packs,
                    "eta": _eta(eta),
                    "code": code,
                    "delivered_at": formats.moment(parcel.delivered_at, web.lang),
                }
            )
    context = {
        "is_resident": web.user.role == Role.resident,
        "requests": [_request_row(web, r, codes) for r in reversed(rows)],
        "total": total,
        "older": start if start > 0 else None,
        "newer": min(total, end + PAGE) if end < total else None,
        "deliveries": deliveries,
    }
    return web.render("resident/status.html", context)


# --- a consultation ---------------------------------------------------------------------------


def _question_groups(
    web: Web, values: dict[str, str], error: Invalid | None
) -> list[dict[str, Any]]:
    """The questions by when they apply. The danger signs are always shown; the other groups
    fold away on a phone, and open by themselves when answered or named by an error."""
    rules = triage.default_rules()
    named = {str(e.loc[1]) for e in (error.errors if error else []) if len(e.loc) > 1}
    groups = []
    for required, title, hint in QUESTION_GROUPS:
        questions = [
            {
                "id": q.id,
                "text": question_text(web, q),
                "required": required == "always",
                "choices": [
                    (
                        "true" if c is True else "false" if c is False else str(c),
                        answer_text(web, c),
                    )
                    for c in (q.choices if q.kind == "choice" else (True, False))
                ],
            }
            for q in rules.questions.values()
            if q.required == required
        ]
        ids = {q["id"] for q in questions}
        touched = any(values.get(f"q:{qid}") for qid in ids) or bool(ids & named)
        groups.append(
            {
                "key": required or "optional",
                "title": title,
                "hint": hint,
                "questions": questions,
                "folded": required != "always",
                "open": touched,
            }
        )
    return groups


def _consult_page(
    web: Web,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    error: Invalid | None = None,
) -> HTMLResponse:
    mine, _ = consult.list_consultations(
        web.session, ConsultationFilters(), actor=web.user, limit=20
    )
    rules = triage.default_rules()
    default_language = "zh" if web.lang == "zh_CN" else "en"
    context = {
        "has_household": web.user.household_id is not None,
        "mine": consultation_rows(web, sorted(mine, key=lambda c: c.id, reverse=True)),
        "status_labels": STATUS_LABELS,
        "urgency_labels": URGENCY_LABELS,
        "numbers": rules.emergency_numbers,
        "age_bands": [(a, AGE_BAND_LABELS[a]) for a in AGE_BANDS],
        "sexes": [(s, SEX_LABELS[s]) for s in SEXES],
        "language_options": [(code, LANGUAGE_LABELS[code]) for code in LANGUAGES],
        "groups": _question_groups(web, values or {}, error),
        "values": {"language": default_language, "member_label": ""} | (values or {}),
        "error": error,
    }
    return web.render("resident/consult.html", context, status_code=status_code)


@router.page("/help/consultation", roles=RESIDENTS, nav=N_("See a doctor"), order=16)
def consultation_form(web: WebDep) -> HTMLResponse:
    """The symptom questionnaire (from the triage rules) and the household's consultations."""
    return _consult_page(web)


def _answers(form: FormData) -> dict[str, bool | str]:
    """The questionnaire's answers: ``q:<id>`` fields; yes/no questions become booleans (an
    unanswered question is left out: the service says which ones must be answered)."""
    rules = triage.default_rules()
    answers: dict[str, bool | str] = {}
    for question in rules.questions.values():
        raw = form_text(form, f"q:{question.id}")
        if not raw:
            continue
        if question.kind == "bool" and raw in ("true", "false"):
            answers[question.id] = raw == "true"
        else:
            answers[question.id] = raw
    return answers


@router.action("/help/consultation", roles=RESIDENTS)
def request_consultation(web: WebDep, form: FormDep) -> Response:
    """Triage at once and join the queue; the consultation page then shows the result (with the
    emergency numbers first when a danger sign was answered)."""
    values = {k: v for k, v in form.multi_items() if isinstance(v, str) and k != "csrf_token"}
    try:
        data = validate_as(
            ConsultationCreate,
            {
                "member_label": form_text(form, "member_label"),
                "age_band": form_text(form, "age_band"),
                "sex": form_text(form, "sex"),
                "pregnant": form_text(form, "pregnant") == "true",
                "reason": form_text(form, "reason"),
                "symptoms": _answers(form),
                "free_text": form_text(form, "free_text") or None,
                "language": form_text(form, "language") or "zh",
            },
        )
        created, _ = consult.request_consultation(web.session, data, actor=web.user)
    except Invalid as exc:
        return _consult_page(web, status_code=422, values=values, error=exc)
    return RedirectResponse(f"/consultations/{created.id}", status_code=303)
