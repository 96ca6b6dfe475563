"""Requests for help and allocation runs."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Response, UploadFile, status
from pydantic import ValidationError

from relieflink import clock
from relieflink.api import problems
from relieflink.api.deps import CurrentUser, SessionDep, require_role
from relieflink.common import files
from relieflink.common.fields import Id
from relieflink.common.schemas import ListQuery, Page, ProblemRead
from relieflink.db import run_in_transaction
from relieflink.flows import allocation as allocation_flow
from relieflink.models import AllocationRun, Role, User
from relieflink.needs import allocation
from relieflink.needs import service as needs
from relieflink.needs.schemas import (
    AllocationFilters,
    AllocationRead,
    AllocationRunCreate,
    AllocationRunRead,
    BulkRequestReport,
    RequestAnswerRead,
    RequestBatchIn,
    RequestBatchRead,
    RequestCreate,
    RequestFilters,
    RequestOutcome,
    RequestRead,
    UrgencyUpdate,
)
from relieflink.users import access

router = APIRouter(prefix="/requests", tags=["needs"])
Requester = Annotated[User, require_role(Role.resident, Role.committee, access.STAFF)]
Staff = Annotated[User, require_role(access.STAFF)]


@router.post("", response_model=RequestOutcome, status_code=status.HTTP_201_CREATED)
def create_request(
    data: RequestCreate, response: Response, session: SessionDep, user: Requester
) -> RequestOutcome:
    """Ask for help for a household. A repeat within the ration period is merged (200, says so)."""
    outcome = needs.create_request(session, data, actor=user, today=clock.today())
    if outcome.merged:
        response.status_code = status.HTTP_200_OK
    return outcome


@router.post(":batch", response_model=RequestBatchRead)
def create_requests(data: RequestBatchIn, session: SessionDep, user: Requester) -> Response:
    """Requests for many households at once, applied as ``POST /requests`` would one at a time in
    this order (a second one for a household merges into the first) but together: each answered
    on its own (``results[i].status``: 201 created, 200 merged, or the status the single endpoint
    would give), a refused one does not stop the others; safe to resend with an Idempotency-Key.
    The answer is 200 unless the batch itself is refused (then nothing is applied)."""
    results: dict[int, RequestAnswerRead] = {}
    valid: list[tuple[int, RequestCreate]] = []
    for index, raw in enumerate(data.requests):
        try:
            valid.append((index, RequestCreate.model_validate(raw)))
        except ValidationError as exc:
            errors = problems.validation_errors(exc.errors(include_url=False), ["requests", index])
            document = problems.problem_document(
                422, "Invalid input", "the request does not match the schema", errors
            )
            results[index] = RequestAnswerRead(
                index=index, status=422, problem=ProblemRead.model_validate(document)
            )
    answers = run_in_transaction(
        session,
        lambda: needs.create_requests(
            session,
            [item for _, item in valid],
            actor=user,
            today=clock.today(),
            indexes=[index for index, _ in valid],
        ),
    )
    for (index, _), answer in zip(valid, answers, strict=True):
        if answer.outcome is not None:
            code = status.HTTP_200_OK if answer.outcome.merged else status.HTTP_201_CREATED
            results[index] = RequestAnswerRead(index=index, status=code, outcome=answer.outcome)
        else:
            assert answer.error is not None
            document = problems.error_document(answer.error)
            results[index] = RequestAnswerRead(
                index=index,
                status=answer.error.status_code,
                problem=ProblemRead.model_validate(document),
            )
    done = [results[index] for index in sorted(results)]
    merged = sum(1 for r in done if r.outcome is not None and r.outcome.merged)
    body = RequestBatchRead(
        created=sum(1 for r in done if r.outcome is not None) - merged,
        merged=merged,
        refused=sum(1 for r in done if r.outcome is None),
        results=done,
    )
    # Built and checked above already: sent as is (FastAPI would validate it a second time).
    return Response(body.model_dump_json(), media_type="application/json")


@router.get("", response_model=Page[RequestRead])
def list_requests(
    session: SessionDep, user: CurrentUser, query: Annotated[RequestFilters, Query()]
) -> Page[RequestRead]:
    """Requests of the households the caller may see."""
    rows, total = needs.list_requests(
        session, query, actor=user, offset=query.offset, limit=query.limit
    )
    return Page(
        items=[RequestRead.model_validate(r) for r in rows],
        total=total,
        offset=query.offset,
        limit=query.limit,
    )


@router.get("/{request_id}", response_model=RequestRead)
def read_request(request_id: Id, session: SessionDep, user: CurrentUser) -> RequestRead:
    """One request."""
    return RequestRead.model_validate(needs.require_request(session, request_id, actor=user))


@router.post("/{request_id}/cancel", response_model=RequestRead)
def cancel_request(request_id: Id, session: SessionDep, user: CurrentUser) -> RequestRead:
    """Withdraw a request that has no stock reserved yet."""
    return RequestRead.model_validate(needs.cancel_request(session, request_id, actor=user))


@router.put("/{request_id}/urgency", response_model=RequestRead)
def set_urgency(
    request_id: Id,
    data: UrgencyUpdate,
    session: SessionDep,
    user: Annotated[User, require_role(Role.doctor, access.STAFF)],
) -> RequestRead:
    """A doctor sets how urgent a request is medically (0-3)."""
    request = needs.set_medical_urgency(session, request_id, data.medical_urgency, actor=user)
    return RequestRead.model_validate(request)


@router.post("/import", response_model=BulkRequestReport)
def import_requests(
    file: UploadFile,
    session: SessionDep,
    user: Annotated[User, require_role(Role.committee, access.STAFF)],
) -> BulkRequestReport:
    """A committee's list of requests for many households (CSV or XLSX): all rows valid, or none."""
    with tempfile.TemporaryDirectory() as tmp:
        path = files.save_upload(file.file, file.filename, Path(tmp))
        return needs.import_requests(session, path, actor=user, today=clock.today())


runs_router = APIRouter(prefix="/allocation-runs", tags=["needs"])


@runs_router.post("", response_model=AllocationRunRead)
def run_allocation(
    data: AllocationRunCreate, session: SessionDep, user: Staff
) -> AllocationRunRead:
    """Allocate available stock to open requests and reserve it (``dry_run``: only show)."""
    report = allocation_flow.run_allocation(
        session, actor=user, today=clock.today(), dry_run=data.dry_run
    )
    if data.dry_run:
        session.rollback()
    return AllocationRunRead.model_validate(
        {**report.__dict__, "id": report.run_id, "caps": report.caps}
    )


@runs_router.get("", response_model=Page[AllocationRunRead])
def list_runs(
    session: SessionDep, user: Staff, query: Annotated[ListQuery, Query()]
) -> Page[AllocationRunRead]:
    """Allocation runs, newest first."""
    rows, total = allocation.list_runs(session, actor=user, offset=query.offset, limit=query.limit)
    items = [_run_read(r) for r in rows]
    return Page(items=items, total=total, offset=query.offset, limit=query.limit)


@runs_router.get("/{run_id}", response_model=AllocationRunRead)
def read_run(run_id: Id, session: SessionDep, user: Staff) -> AllocationRunRead:
    """One allocation run: what it allocated, its summary and the stock capped warehouses held
    back."""
    return _run_read(allocation.require_run(session, run_id, actor=user))


def _run_read(r: AllocationRun) -> AllocationRunRead:
    return AllocationRunRead(
        id=r.id,
        policy_version=r.policy_version,
        lines=r.lines_considered,
        units_requested=r.units_requested,
        units_allocated=r.units_allocated,
        runtime_s=r.runtime_s,
        summary=r.summary,
        caps=r.summary.get("caps", []),
    )


@runs_router.get("/{run_id}/allocations", response_model=Page[AllocationRead])
def list_allocations(
    run_id: Id,
    session: SessionDep,
    user: CurrentUser,
    query: Annotated[AllocationFilters, Query()],
) -> Page[AllocationRead]:
    """What a run gave to whom, and why (residents and committees see their own households)."""
    rows, total = allocation.list_allocations(
        session,
        run_id,
        actor=user,
        household_id=query.household_id,
        offset=query.offset,
        limit=query.limit,
    )
    return Page(
        items=[AllocationRead.model_validate(a) for a in rows],
        total=total,
        offset=query.offset,
        limit=query.limit,
    )
