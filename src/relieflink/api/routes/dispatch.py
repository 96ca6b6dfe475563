"""Dispatch planning (a background job with progress), routes, manifests, tracking events,
pickup codes for residents, hand-off discrepancies and the trace of a delivered pack."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Response, status
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import ValidationError

from relieflink import clock
from relieflink.api import problems
from relieflink.api.deps import CurrentUser, SessionDep, require_role
from relieflink.common.fields import Id
from relieflink.common.schemas import ListQuery, Page, ProblemRead
from relieflink.db import KeepAndRefuse, run_in_transaction
from relieflink.dispatch import fleet, manifests, tracking
from relieflink.dispatch.schemas import (
    AvailabilityUpdate,
    CourierAssign,
    DiscrepancyRead,
    EventAnswerRead,
    EventBatchIn,
    EventBatchRead,
    EventIn,
    EventRead,
    MyDelivery,
    PlanCreate,
    PlanRead,
    ReplanCreate,
    RouteRead,
    StopRead,
    TraceRead,
    TrackingEventRead,
    VehicleRead,
)
from relieflink.dispatch.tracking_rules import CodeRefused
from relieflink.errors import NotFound
from relieflink.flows import delivery
from relieflink.jobs import runner
from relieflink.jobs.dispatch import start_plan_job
from relieflink.models import DispatchPlan, User
from relieflink.reports import service as reports
from relieflink.reports.schemas import FieldDay
from relieflink.users import access

router = APIRouter(prefix="/dispatch", tags=["dispatch"])
# The couriers' tracking events, the busiest path of all: a router of their own, matched first
# (FastAPI tries a request against every route before it in order, twice per router level: at
# the end of the list a tracking event was checked against some 75 routes, 15 % of its CPU).
events_router = APIRouter(prefix="/dispatch", tags=["dispatch"])
Planner = Annotated[User, require_role(access.DISPATCH_PLANNERS)]
RouteReader = Annotated[User, require_role(access.ROUTE_READERS)]
DeliveryActor = Annotated[User, require_role(access.DELIVERY_ACTORS)]
FieldWorker = Annotated[User, require_role(access.FIELD_WORKERS)]


@events_router.post("/events", response_model=EventRead)
def post_event(data: EventIn, session: SessionDep, user: DeliveryActor) -> Response:
    """A tracking event from a driver's or robot's app; safe to retry with the same
    ``client_event_id``."""
    try:
        outcome = delivery.record_event(session, data, actor=user)
    except CodeRefused as exc:  # the failed attempt is kept: it counts towards a lock
        raise KeepAndRefuse(exc) from exc
    event = EventRead.model_validate(outcome.__dict__ | {"id": outcome.event_id})
    # Built and checked here: sent as is (FastAPI would validate it a second time).
    return Response(event.model_dump_json(), media_type="application/json")


@events_router.post("/events:batch", response_model=EventBatchRead)
def post_events(data: EventBatchIn, session: SessionDep, user: DeliveryActor) -> Response:
    """Events a driver's or robot's app buffered on a flaky network, in order: each is applied
    all or nothing and answered on its own (``results[i].status``: 200, or the status the single
    endpoint would give), a refused event does not stop the others, and the whole batch is safe
    to resend. The items are validated one by one against ``EventIn`` (as strictly as the single
    endpoint's body): a malformed item is answered 422 in its place. The answer is 200 unless
    the batch itself is refused (then nothing is applied)."""
    results: list[EventAnswerRead | None] = [None] * len(data.events)
    valid: list[tuple[int, EventIn]] = []
    for index, raw in enumerate(data.events):
        try:
            valid.append((index, EventIn.model_validate_json(json.dumps(raw), strict=True)))
        except ValidationError as exc:
            cid = raw.get("client_event_id")
            errors = problems.validation_errors(exc.errors(include_url=False), ["events", index])
            results[index] = EventAnswerRead(
                index=index,
                client_event_id=cid if isinstance(cid, str) else None,
                status=422,
                problem=ProblemRead.model_validate(
                    problems.problem_document(
                        422, "Invalid input", "the event does not match the schema", errors
                    )
                ),
            )
    # A deadlock with another batch (PostgreSQL chose this one): nothing of it stays, and the
    # same batch applied again, as a whole, gives the same answers.
    answers = run_in_transaction(
        session, lambda: delivery.record_events(session, [e for _, e in valid], actor=user)
    )
    for (index, _), answer in zip(valid, answers, strict=True):
        if answer.outcome is not None:
            outcome = answer.outcome
            results[index] = EventAnswerRead(
                index=index,
                client_event_id=answer.client_event_id,
                status=200,
                event=EventRead.model_validate(outcome.__dict__ | {"id": outcome.event_id}),
            )
        else:
            assert answer.error is not None
            error = answer.error
            results[index] = EventAnswerRead(
                index=index,
                client_event_id=answer.client_event_id,
                status=error.status_code,
                problem=ProblemRead.model_validate(problems.error_document(error)),
            )
    done = [r for r in results if r is not None]
    body = EventBatchRead(
        applied=sum(1 for r in done if r.event is not None and not r.event.replayed),
        replayed=sum(1 for r in done if r.event is not None and r.event.replayed),
        refused=sum(1 for r in done if r.event is None),
        results=done,
    )
    # Built and checked above already: sent as is (FastAPI would validate it a second time).
    return Response(body.model_dump_json(), media_type="application/json")


@router.get("/vehicles", response_model=list[VehicleRead])
def list_vehicles(session: SessionDep, user: RouteReader) -> list[VehicleRead]:
    """The partner carriers' vehicle groups and robots (a courier sees its carrier's)."""
    carrier = None if user.role in access.STAFF else (user.organization_id or -1)
    return [VehicleRead.model_validate(v) for v in fleet.list_vehicles(session, carrier_id=carrier)]


@router.put("/vehicles/{vehicle_id}/availability", response_model=VehicleRead)
def set_availability(
    vehicle_id: Id, data: AvailabilityUpdate, session: SessionDep, user: Planner
) -> VehicleRead:
    """How many of a group work on a day (a courier ill or locked in: fewer)."""
    fleet.set_availability(
        session,
        vehicle_id=vehicle_id,
        day=data.day,
        available=data.available,
        note=data.note,
        actor=user,
    )
    return VehicleRead.model_validate(fleet.require_vehicle(session, vehicle_id))


@router.post("/plans", response_model=PlanRead, status_code=status.HTTP_202_ACCEPTED)
def create_plan(
    data: PlanCreate, background: BackgroundTasks, session: SessionDep, user: Planner
) -> PlanRead:
    """Start planning the day's dispatch (a job on the runner, queued with the plan); poll
    ``GET /dispatch/plans/{id}`` for progress."""
    plan, job = start_plan_job(
        session, day=data.day, actor=user, time_limit=data.time_limit, seed=data.seed
    )
    background.add_task(runner.run_in_process, job.id)
    return PlanRead.model_validate(plan)


@router.post("/plans/{plan_id}/replan", response_model=PlanRead, status_code=202)
def replan(
    plan_id: Id,
    data: ReplanCreate,
    background: BackgroundTasks,
    session: SessionDep,
    user: Planner,
) -> PlanRead:
    """Mid-day re-plan of the undelivered remainder (parcels on board are left alone)."""
    plan, job = start_plan_job(
        session,
        day=None,
        actor=user,
        replan_of_id=plan_id,
        time_limit=data.time_limit,
        seed=data.seed,
        failed_route_ids=data.failed_route_ids,
    )
    background.add_task(runner.run_in_process, job.id)
    return PlanRead.model_validate(plan)


@router.get("/plans/{plan_id}", response_model=PlanRead)
def read_plan(plan_id: Id, session: SessionDep, user: Planner) -> PlanRead:
    """A plan and its job state (queued, running with progress, done or failed)."""
    plan = session.get(DispatchPlan, plan_id)
    if plan is None:
        raise NotFound(f"no dispatch plan {plan_id}")
    return PlanRead.model_validate(plan)


@router.get("/routes", response_model=Page[RouteRead])
def list_routes(
    session: SessionDep,
    user: RouteReader,
    query: Annotated[ListQuery, Query()],
    plan_id: Id | None = None,
) -> Page[RouteRead]:
    """Routes the caller may see (a courier only its own)."""
    rows, total = tracking.list_routes(
        session, actor=user, plan_id=plan_id, offset=query.offset, limit=query.limit
    )
    return Page(
        items=[RouteRead.model_validate(r) for r in rows],
        total=total,
        offset=query.offset,
        limit=query.limit,
    )


@router.get("/routes/{route_id}", response_model=RouteRead)
def read_route(route_id: Id, session: SessionDep, user: RouteReader) -> RouteRead:
    return RouteRead.model_validate(tracking.require_route(session, route_id, actor=user))


@router.get("/routes/{route_id}/stops", response_model=list[StopRead])
def route_stops(route_id: Id, session: SessionDep, user: RouteReader) -> list[StopRead]:
    """The stops in order, with ETAs (seconds after midnight of the plan's day)."""
    return [StopRead.model_validate(s) for s in tracking.route_stops(session, route_id, actor=user)]


@router.put("/routes/{route_id}/courier", response_model=RouteRead)
def assign_courier(
    route_id: Id, data: CourierAssign, session: SessionDep, user: Planner
) -> RouteRead:
    return RouteRead.model_validate(
        tracking.assign_courier(session, route_id, data.courier_id, actor=user)
    )


@router.get("/routes/{route_id}/manifest.csv", response_class=PlainTextResponse)
def manifest_csv(route_id: Id, session: SessionDep, user: RouteReader) -> Response:
    text = manifests.manifest_csv(session, route_id, actor=user)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="route-{route_id}.csv"'},
    )


@router.get("/routes/{route_id}/manifest.html", response_class=HTMLResponse)
def manifest_html(route_id: Id, session: SessionDep, user: RouteReader) -> HTMLResponse:
    return HTMLResponse(manifests.manifest_html(session, route_id, actor=user))


@router.get("/parcels/{parcel_id}/events", response_model=list[TrackingEventRead])
def parcel_events(parcel_id: Id, session: SessionDep, user: CurrentUser) -> list[TrackingEventRead]:
    return [
        TrackingEventRead.model_validate(e)
        for e in tracking.parcel_events(session, parcel_id, actor=user)
    ]


@router.get("/parcels/{parcel_id}/trace", response_model=TraceRead)
def trace(parcel_id: Id, session: SessionDep, user: CurrentUser) -> TraceRead:
    """The donors behind a household's pack, and the route and courier that brought it."""
    return TraceRead.model_validate(tracking.trace_parcel(session, parcel_id, actor=user).__dict__)


@router.get("/my-deliveries", response_model=list[MyDelivery])
def my_deliveries(session: SessionDep, user: CurrentUser) -> list[MyDelivery]:
    """A resident's own deliveries, with the pickup code to give the courier."""
    return [
        MyDelivery(parcel_id=p.id, status=str(p.status), packs=p.packs, eta_s=eta, pickup_code=code)
        for p, code, eta in tracking.my_deliveries(session, actor=user)
    ]


@router.get("/my-day", response_model=FieldDay)
def my_day(session: SessionDep, user: FieldWorker, day: date | None = None) -> FieldDay:
    """The offline field app's day: a courier's own routes with their stops and parcels, or a
    volunteer leader's own team's gate; which events may be recorded next is a hint (the
    tracking rules decide when the events arrive)."""
    return reports.field_day(session, day=day or clock.today(), actor=user)


@router.get("/discrepancies", response_model=list[DiscrepancyRead])
def discrepancies(session: SessionDep, user: Planner) -> list[DiscrepancyRead]:
    return [
        DiscrepancyRead.model_validate(d) for d in tracking.list_discrepancies(session, actor=user)
    ]
