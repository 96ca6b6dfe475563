"""Schemathesis over ``/api/v1/openapi.json``, in process, as admin, resident and anonymous, on a
freshly seeded database: no request gets a server error or a response its schema does not
describe (issue #17).

Every phase runs (explicit examples, coverage, generated cases, stateful links) on a small
budget in the normal run and a larger one among the slow tests. ``FUZZ_REPORT=1`` prints the
counts: operations, cases, failures by check.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema
from sqlalchemy.orm import Session

from relieflink.app import create_app
from relieflink.catalog import service as catalog
from relieflink.models import Role
from relieflink.places import service as places
from relieflink.places.schemas import WarehouseCreate
from tests.factories import make_community, make_household, make_org, make_user, sign_in

# What the suite holds at zero. The other checks (e.g. negative_data_rejection) are counted
# and reported, not asserted.
MUST_PASS = ("not_a_server_error", "response_schema_conformance")


@dataclass
class Counts:
    operations: set[str] = field(default_factory=set)
    cases: int = 0
    by_phase: Counter[str] = field(default_factory=Counter)  # cases per phase (stateful too)
    failures: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    examples: dict[str, str] = field(default_factory=dict)  # one failing request per check


def seed(db: Session) -> dict[Role, Any]:
    """A small city: an NGO and a committee, a district and community, a household with its
    resident, a warehouse, the reference catalog; an admin."""
    committee = make_org(db)
    ngo = make_org(db)
    community = make_community(db, committee=committee)
    admin = make_user(db, Role.admin)
    household = make_household(db, community, actor=admin)
    resident = make_user(db, Role.resident, household_id=household.id)
    data = {"code": "W1", "name": "Hub", "name_zh": "仓", "owner_id": ngo.id, "lat": 31.2}
    places.create_warehouse(db, WarehouseCreate.model_validate(data | {"lon": 121.5}), actor=None)
    catalog.seed_catalog(db, actor=admin)
    db.commit()
    return {Role.admin: admin, Role.resident: resident}


def served(app: Any) -> Any:
    """``app`` as a server runs it: an exception after the 500 was sent is logged, and the
    client sees the 500 (the in-process transport would raise it in the test instead)."""

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        except Exception:
            logging.getLogger(__name__).exception("server error")

    return asgi


def fuzz(app: Any, headers: dict[str, str], max_examples: int) -> Counts:
    """Run every schemathesis phase over the app's API and count what it found."""
    config = SchemathesisConfig.from_dict(
        {
            "seed": 17,
            "headers": headers,
            "continue-on-failure": True,  # count every failure, not the first of each operation
            "auth": {"auto-signup": False},
            "generation": {"max-examples": max_examples},
            "phases": {"stateful": {"max-steps": max_examples}},
        }
    )
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", served(app), config=config)
    if headers:  # signing out would revoke the token the rest of the run signs in with
        schema = schema.exclude(path_regex="/auth/sign-out$")
    counts = Counts()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            if event.label:
                counts.operations.add(event.label)
            counts.cases += len(recorder.cases)
            counts.by_phase[event.phase.value] += len(recorder.cases)
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.status in (Status.FAILURE, Status.ERROR):
                        counts.failures[check.name] += 1
                        case = recorder.cases[case_id].value
                        counts.examples.setdefault(
                            check.name, f"{case.method} {case.formatted_path} {case.query}"
                        )
        elif isinstance(event, events.NonFatalError):
            counts.errors.append(f"{event.label}: {event.value!r}")
    if os.environ.get("FUZZ_REPORT"):
        print(
            f"\n{len(counts.operations)} operations, {counts.cases} cases "
            f"{dict(counts.by_phase)}, failures {dict(counts.failures)}, "
            f"errors {len(counts.errors)}"
        )
        for name, example in counts.examples.items():
            print(f"  {name}: {example}")
    return counts


def _run(db: Session, who: str, max_examples: int) -> Counts:
    users = seed(db)
    app = create_app()
    with TestClient(app) as client:
        headers = sign_in(client, users[Role(who)]) if who != "anonymous" else {}
    return fuzz(app, headers, max_examples)


WHO = ["admin", "resident", "anonymous"]


@pytest.mark.parametrize("who", WHO)
def test_fuzzing_finds_no_server_error_and_no_schema_violation(db: Session, who: str) -> None:
    counts = _run(db, who, max_examples=int(os.environ.get("FUZZ_EXAMPLES") or 3))
    assert len(counts.operations) > 100
    assert {name: counts.failures[name] for name in MUST_PASS} == dict.fromkeys(MUST_PASS, 0), (
        counts.examples
    )
    assert counts.errors == []


@pytest.mark.slow
@pytest.mark.parametrize("who", WHO)
def test_fuzzing_on_a_larger_budget(db: Session, who: str) -> None:
    counts = _run(db, who, max_examples=10)
    assert {name: counts.failures[name] for name in MUST_PASS} == dict.fromkeys(MUST_PASS, 0), (
        counts.examples
    )
