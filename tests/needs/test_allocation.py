from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relieflink import clock
from relieflink.catalog import service as catalog
from relieflink.cli import app
from relieflink.flows import allocation, delivery
from relieflink.models import (
    Allocation,
    AllocationRun,
    Household,
    Kit,
    NeedRequest,
    OrgKind,
    RequestLine,
    RequestStatus,
    Role,
    Warehouse,
)
from relieflink.needs import allocation as allocation_rules
from relieflink.needs import service as needs
from relieflink.needs.schemas import RequestCreate
from relieflink.stock import service as stock
from tests.factories import headers_for, make_community, make_household, make_org, make_user
from tests.needs import outcomes

TODAY = date(2026, 11, 30)


def kit(db: Session, sku: str) -> Kit:
    return db.scalars(select(Kit).where(Kit.sku == sku)).one()


@pytest.fixture
def city(db: Session) -> dict[str, object]:
    catalog.seed_catalog(db, actor=None)
    ngo, donor = make_org(db), make_org(db, kind=OrgKind.donor)
    warehouse = Warehouse(
        code="W1",
        name="Hub",
        name_zh="仓",
        owner_id=ngo.id,
        lat=31.2,
        lon=121.5,
        daily_outbound_kg=100_000,
    )
    db.add(warehouse)
    community = make_community(db)
    admin = make_user(db, Role.admin)
    homes = {
        "infant": make_household(db, community, actor=admin, size=3, infants=1),
        "alone80": make_household(db, community, actor=admin, size=1, elderly_80=1),
        "small": make_household(db, community, actor=admin, size=2),
        "large": make_household(db, community, actor=admin, size=5),
    }
    db.flush()
    return {"donor": donor, "warehouse": warehouse, "homes": homes, "admin": admin}


def receive(db: Session, city: dict, sku: str, quantity: int) -> None:
    stock.receive_lot(
        db,
        warehouse_id=city["warehouse"].id,
        kit_id=kit(db, sku).id,
        quantity=quantity,
        donor_org_id=city["donor"].id,
        actor=None,
    )


def ask(db: Session, city: dict, home: str, *lines: tuple[str, int]) -> None:
    data = RequestCreate.model_validate(
        {
            "household_id": city["homes"][home].id,
            "lines": [{"kit_sku": sku, "quantity": q} for sku, q in lines],
        }
    )
    needs.create_request(db, data, actor=city["admin"], today=TODAY)


def given(db: Session, home: Household, sku: str) -> int:
    return (
        db.scalar(
            select(func.coalesce(func.sum(Allocation.quantity), 0))
            .join(Kit, Kit.id == Allocation.kit_id)
            .where(Allocation.household_id == home.id, Kit.sku == sku)
        )
        or 0
    )


def test_scarce_stock_goes_to_the_vulnerable_first_and_fairly(db: Session, city: dict) -> None:
    receive(db, city, "KIT-FAMILY-FOOD", 3)
    receive(db, city, "KIT-INFANT", 1)
    ask(db, city, "infant", ("KIT-INFANT", 1), ("KIT-FAMILY-FOOD", 1))
    ask(db, city, "alone80", ("KIT-FAMILY-FOOD", 1))
    ask(db, city, "small", ("KIT-FAMILY-FOOD", 1))
    ask(db, city, "large", ("KIT-FAMILY-FOOD", 2))
    report = allocation.run_allocation(db, actor=None, today=TODAY)
    homes = city["homes"]
    assert given(db, homes["infant"], "KIT-INFANT") == 1
    assert given(db, homes["infant"], "KIT-FAMILY-FOOD") == 1
    assert given(db, homes["alone80"], "KIT-FAMILY-FOOD") == 1
    # One pack left for two ordinary households: nobody gets a second before both have one,
    # so exactly one of them is served.
    assert (
        given(db, homes["small"], "KIT-FAMILY-FOOD") + given(db, homes["large"], "KIT-FAMILY-FOOD")
        == 1
    )
    assert report.units_allocated == 4
    assert (
        stock.available(db, warehouse_id=city["warehouse"].id, kit_id=kit(db, "KIT-FAMILY-FOOD").id)
        == 0
    )
    reasons = db.scalars(
        select(Allocation.reasons).where(Allocation.household_id == homes["alone80"].id)
    ).one()
    assert "aged 80+ and living alone" in reasons
    assert "priority class: other vulnerable people" in reasons
    run = db.scalars(select(AllocationRun)).one()
    assert run.policy_version == report.policy_version
    assert run.summary["priority"]["coverage"]["other_vulnerable"] == 1.0
    assert "fcfs" in run.summary


def test_scarce_first_packs_go_to_the_higher_score_within_a_class(db: Session, city: dict) -> None:
    # 5 family food kits; 20 people aged 80+ living alone (score 35) ask first, then a
    # household of 3 with an infant and a pregnant woman (score 70): same class (other
    # vulnerable people, for the family kit), and the family must not go without.
    receive(db, city, "KIT-FAMILY-FOOD", 5)
    community = make_community(db)
    for _ in range(20):
        home = make_household(db, community, actor=city["admin"], size=1, elderly_80=1)
        city["homes"]["x"] = home
        ask(db, city, "x", ("KIT-FAMILY-FOOD", 1))
    family = make_household(db, community, actor=city["admin"], size=3, infants=1, pregnant=1)
    city["homes"]["family"] = family
    ask(db, city, "family", ("KIT-FAMILY-FOOD", 1))
    allocation.run_allocation(db, actor=None, today=TODAY)
    assert given(db, family, "KIT-FAMILY-FOOD") == 1
    reasons = db.scalars(select(Allocation.reasons).where(Allocation.household_id == family.id))
    assert "priority class: other vulnerable people" in reasons.one()
    assert db.scalar(select(func.sum(Allocation.quantity))) == 5


def test_running_twice_does_not_double_reserve(db: Session, city: dict) -> None:
    receive(db, city, "KIT-FAMILY-FOOD", 1)
    ask(db, city, "large", ("KIT-FAMILY-FOOD", 2))
    first = allocation.run_allocation(db, actor=None, today=TODAY)
    again = allocation.run_allocation(db, actor=None, today=TODAY)
    assert (first.units_allocated, again.units_allocated) == (1, 0)
    receive(db, city, "KIT-FAMILY-FOOD", 5)
    third = allocation.run_allocation(db, actor=None, today=TODAY)
    assert third.units_allocated == 1  # the second pack it is entitled to, not more
    assert given(db, city["homes"]["large"], "KIT-FAMILY-FOOD") == 2
    request = db.scalars(select(NeedRequest)).one()
    assert request.status == RequestStatus.allocated
    assert (
        stock.available(db, warehouse_id=city["warehouse"].id, kit_id=kit(db, "KIT-FAMILY-FOOD").id)
        == 4
    )


def test_requests_are_capped_at_the_entitlement(db: Session, city: dict) -> None:
    receive(db, city, "KIT-FAMILY-FOOD", 10)
    ask(db, city, "alone80", ("KIT-FAMILY-FOOD", 5))
    report = allocation.run_allocation(db, actor=None, today=TODAY)
    assert report.units_requested == 1  # ceil(1 person × 7 days / (3 persons × 7 days))
    assert given(db, city["homes"]["alone80"], "KIT-FAMILY-FOOD") == 1
    assert db.scalars(select(NeedRequest.status)).one() == RequestStatus.allocated


def test_a_dry_run_reserves_and_stores_nothing(db: Session, city: dict) -> None:
    receive(db, city, "KIT-FAMILY-FOOD", 2)
    ask(db, city, "small", ("KIT-FAMILY-FOOD", 1))
    report = allocation.run_allocation(db, actor=None, today=TODAY, dry_run=True)
    assert report.units_allocated == 1
    assert report.run_id is None
    assert db.scalar(select(func.count()).select_from(Allocation)) == 0
    assert (
        stock.available(db, warehouse_id=city["warehouse"].id, kit_id=kit(db, "KIT-FAMILY-FOOD").id)
        == 2
    )


def test_api_runs_for_staff_and_shows_residents_their_reasons(
    db: Session, client: TestClient, city: dict
) -> None:
    receive(db, city, "KIT-FAMILY-FOOD", 1)
    ask(db, city, "alone80", ("KIT-FAMILY-FOOD", 1))
    resident = headers_for(db, client, Role.resident, household_id=city["homes"]["alone80"].id)
    coordinator = headers_for(db, client, Role.coordinator)
    assert client.post("/api/v1/allocation-runs", json={}, headers=resident).status_code == 403
    run = client.post("/api/v1/allocation-runs", json={}, headers=coordinator)
    assert run.status_code == 200, run.text
    run_id = run.json()["id"]
    mine = client.get(f"/api/v1/allocation-runs/{run_id}/allocations", headers=resident).json()
    assert mine["total"] == 1
    assert "aged 80+ and living alone" in mine["items"][0]["reasons"]
    assert client.get("/api/v1/allocation-runs", headers=resident).status_code == 403


def test_the_run_reports_each_vulnerable_group_against_fcfs(db: Session, city: dict) -> None:
    receive(db, city, "KIT-FAMILY-FOOD", 1)
    ask(db, city, "small", ("KIT-FAMILY-FOOD", 1))  # first come, not vulnerable
    ask(db, city, "alone80", ("KIT-FAMILY-FOOD", 1))
    report = allocation.run_allocation(db, actor=None, today=TODAY, dry_run=True)
    priority, fcfs = report.summary["priority"]["groups"], report.summary["fcfs"]["groups"]
    assert (priority["elderly"], priority["other"]) == (1.0, 0.0)
    assert (fcfs["elderly"], fcfs["other"]) == (0.0, 1.0)
    assert priority["infant"] is None  # nobody in that group asked


def test_delivery_closes_and_failure_carries_over(db: Session, city: dict) -> None:
    from relieflink.models import AllocationState
    from relieflink.stock import service as stock_service

    receive(db, city, "KIT-FAMILY-FOOD", 2)
    ask(db, city, "small", ("KIT-FAMILY-FOOD", 1))
    ask(db, city, "alone80", ("KIT-FAMILY-FOOD", 1))
    allocation.run_allocation(db, actor=None, today=TODAY)
    by_home = {a.household_id: a for a in db.scalars(select(Allocation))}
    delivered = by_home[city["homes"]["small"].id]
    failed = by_home[city["homes"]["alone80"].id]

    request = db.get(RequestLine, delivered.line_id).request_id
    assert outcomes.deliver(db, 1, [delivered]) == [request]
    assert db.get(NeedRequest, request).status == RequestStatus.delivered
    assert db.get(Allocation, delivered.id).state == AllocationState.delivered
    assert outcomes.close(db, 1, [delivered]) == []  # delivered twice: nothing more happens

    (carried,), lost = outcomes.fail(db, 2, [failed])
    assert lost == 0
    carried_request = db.get(NeedRequest, carried)
    assert (carried_request.status, carried_request.carried_over) == (RequestStatus.open, 1)
    assert db.get(Allocation, failed.id).state == AllocationState.returned
    family = kit(db, "KIT-FAMILY-FOOD").id
    # One pack left the ledger with the delivery; the failed one is free to allocate again.
    assert stock.available(db, warehouse_id=city["warehouse"].id, kit_id=family) == 1
    assert stock_service.check_ledger(db) == []
    again = allocation.run_allocation(db, actor=None, today=TODAY)
    assert again.units_allocated == 1
    newest = db.scalars(select(Allocation).order_by(Allocation.id.desc())).first()
    assert "1 failed delivery carried over" in newest.reasons


def test_one_call_closes_a_batch_of_deliveries_each_to_its_parcel(db: Session, city: dict) -> None:
    """Several parcels delivered in one call (a batch of tracking events) close their requests
    in one statement; requests the session holds are read again, not left stale."""
    receive(db, city, "KIT-FAMILY-FOOD", 3)
    for home in ("small", "alone80", "large"):
        ask(db, city, home, ("KIT-FAMILY-FOOD", 1))
    allocation.run_allocation(db, actor=None, today=TODAY)
    by_home = {a.household_id: a for a in db.scalars(select(Allocation))}
    parcels = {
        parcel: by_home[city["homes"][home].id]
        for parcel, home in ((1, "small"), (2, "alone80"), (3, "large"))
    }
    requests = {p: db.get(RequestLine, a.line_id).request_id for p, a in parcels.items()}
    held = {p: db.get(NeedRequest, r) for p, r in requests.items()}  # in the session
    delivery.issue_loaded(
        db,
        [outcomes.Line(p, a.id, a.reference, a.quantity, a.state) for p, a in parcels.items()],
        actor=None,
    )
    closed = delivery.close_delivered(
        db, {p: ([parcels[p].id], [requests[p]]) for p in (1, 2)}, actor=None
    )
    assert closed == {1: [requests[1]], 2: [requests[2]]}
    assert [held[p].status for p in (1, 2)] == [RequestStatus.delivered] * 2
    assert held[3].status == RequestStatus.allocated  # its parcel is still on the way


def test_a_recent_delivery_and_food_left_lower_the_priority(db: Session, city: dict) -> None:
    receive(db, city, "KIT-FAMILY-FOOD", 1)
    ask(db, city, "alone80", ("KIT-FAMILY-FOOD", 1))
    allocation.run_allocation(db, actor=None, today=TODAY)
    first = db.scalars(select(Allocation)).one()
    with clock.frozen(TODAY):
        outcomes.deliver(db, 1, [first])
    # A week later, the household asks again: its reasons now speak of that delivery.
    later = TODAY + timedelta(days=7)
    receive(db, city, "KIT-FAMILY-FOOD", 1)
    data = RequestCreate.model_validate(
        {
            "household_id": city["homes"]["alone80"].id,
            "lines": [{"kit_sku": "KIT-FAMILY-FOOD", "quantity": 1}],
        }
    )
    needs.create_request(db, data, actor=city["admin"], today=later)
    allocation.run_allocation(db, actor=None, today=later)
    newest = db.scalars(select(Allocation).order_by(Allocation.id.desc())).first()
    assert newest is not None and newest.id != first.id
    since = (later - first.closed_at.date()).days
    assert f"{since} days since the last delivery" in newest.reasons


def test_asking_for_more_after_an_allocation_reopens_the_same_request(
    db: Session, city: dict
) -> None:
    receive(db, city, "KIT-FAMILY-FOOD", 1)
    ask(db, city, "infant", ("KIT-FAMILY-FOOD", 1))
    allocation.run_allocation(db, actor=None, today=TODAY)
    request = db.scalars(select(NeedRequest)).one()
    assert request.status == RequestStatus.allocated
    ask(db, city, "infant", ("KIT-INFANT", 1))  # same period: merged, the request reopens
    db.refresh(request)
    assert db.scalar(select(func.count()).select_from(NeedRequest)) == 1
    assert request.status == RequestStatus.open
    assert sorted(line.allocated for line in request.lines) == [0, 1]


def _cap_warehouse(db: Session, city: dict, kits: int) -> int:
    """Lower the warehouse's daily outbound limit to what ``kits`` family kits weigh; its kg."""
    grams = catalog.kit_size(kit(db, "KIT-FAMILY-FOOD"))[0]
    city["warehouse"].daily_outbound_kg = kits * grams // 1000 + 1
    assert (kits * grams // 1000 + 1) * 1000 // grams == kits  # exactly ``kits`` fit
    db.flush()
    return int(city["warehouse"].daily_outbound_kg)


def _ask_five_family_kits(db: Session, city: dict) -> None:
    for home in ("infant", "alone80", "small", "large"):
        ask(db, city, home, ("KIT-FAMILY-FOOD", 1))
    ask(db, city, "large", ("KIT-FAMILY-FOOD", 1))


def test_a_capped_warehouse_says_what_it_held_back_and_why(
    db: Session, client: TestClient, city: dict
) -> None:
    receive(db, city, "KIT-FAMILY-FOOD", 10)
    kg = _cap_warehouse(db, city, 2)
    _ask_five_family_kits(db, city)
    db.commit()
    coordinator = headers_for(db, client, Role.coordinator)
    answer = client.post("/api/v1/allocation-runs", json={}, headers=coordinator)
    assert answer.status_code == 200, answer.text
    run = answer.json()
    assert run["units_allocated"] == 2
    held = run["units_requested"] - run["units_allocated"]
    cap = {
        "warehouse_code": "W1",
        "sku": "KIT-FAMILY-FOOD",
        "held_back_units": held,
        "reason": f"outbound capacity {kg:,} kg/day reached",
    }
    assert run["caps"] == [cap]
    # The run read says the same, and a class with no lines has no coverage (not 100 %).
    read = client.get(f"/api/v1/allocation-runs/{run['id']}", headers=coordinator).json()
    assert read["caps"] == [cap]
    assert read["summary"]["priority"]["coverage"]["medical"] is None
    assert client.get("/api/v1/allocation-runs", headers=coordinator).json()["items"][0][
        "caps"
    ] == [cap]
    assert (
        allocation_rules.cap_line(cap)
        == f"W1: {held} × KIT-FAMILY-FOOD held back: outbound capacity {kg:,} kg/day reached"
    )


def test_stock_short_is_not_reported_as_held_back(db: Session, city: dict) -> None:
    receive(db, city, "KIT-FAMILY-FOOD", 2)
    _ask_five_family_kits(db, city)
    report = allocation.run_allocation(db, actor=None, today=TODAY, dry_run=True)
    assert report.units_allocated == 2
    assert report.caps == []


def test_allocate_json_writes_allocations_and_caps(db: Session, city: dict, tmp_path: Path) -> None:
    receive(db, city, "KIT-FAMILY-FOOD", 10)
    kg = _cap_warehouse(db, city, 2)
    _ask_five_family_kits(db, city)
    db.commit()
    out = tmp_path / "run.json"
    result = CliRunner().invoke(app, ["allocate", "--dry-run", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "held back: outbound capacity" in result.output
    assert "—" in result.output  # the medical class has no lines
    document = json.loads(out.read_text(encoding="utf-8"))
    assert set(document) == {"run_id", "allocations", "caps"}
    assert document["run_id"] is None
    assert sum(a["units"] for a in document["allocations"]) == 2
    first = document["allocations"][0]
    assert set(first) == {
        "household_code",
        "sku",
        "units",
        "warehouse_code",
        "priority_class",
        "score",
        "reasons",
    }
    codes = {h.code for h in city["homes"].values()}
    assert first["household_code"] in codes
    assert (first["sku"], first["warehouse_code"]) == ("KIT-FAMILY-FOOD", "W1")
    assert document["caps"] == [
        {
            "warehouse_code": "W1",
            "sku": "KIT-FAMILY-FOOD",
            "held_back_units": document["caps"][0]["held_back_units"],
            "reason": f"outbound capacity {kg:,} kg/day reached",
        }
    ]
    assert db.scalar(select(func.count()).select_from(Allocation)) == 0  # a dry run
    # A real run writes its id.
    result = CliRunner().invoke(app, ["allocate", "--json", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text(encoding="utf-8"))
    db.rollback()  # end the read transaction: see what the CLI committed
    assert document["run_id"] == db.scalar(select(func.max(AllocationRun.id)))
    assert sum(a["units"] for a in document["allocations"]) == 2


def test_allocate_reports_vulnerable_groups_first_beside_fcfs(db: Session, city: dict) -> None:
    receive(db, city, "KIT-FAMILY-FOOD", 2)
    for home in ("small", "large", "infant", "alone80"):  # the vulnerable ask last
        ask(db, city, home, ("KIT-FAMILY-FOOD", 1))
    db.commit()
    result = CliRunner().invoke(app, ["allocate", "--dry-run"], terminal_width=200)
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.index("coverage per vulnerable group") < out.index("coverage per class")
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:4]]
        for line in out[: out.index("coverage per class")].splitlines()
        if line.count("│") == 4
    }
    # The policy serves the infant's and the 80-year-old's households; first come, first
    # served gives both kits to those who asked first. Nobody pregnant or sick asked: "—".
    assert rows == {
        "infant": ["100.0%", "0.0%"],
        "pregnant": ["—", "—"],
        "chronic": ["—", "—"],
        "elderly": ["100.0%", "0.0%"],
    }


def test_open_lines_read_in_chunks_are_the_lines_read_at_once(db: Session, city: dict) -> None:
    # A city's millions of open lines are read a chunk at a time (issue #16: memory bounded by
    # the chunk, not the day); chunk edges must change nothing, in order, facts or regions.
    policy = allocation_rules.default_policy()
    skus = allocation_rules.sku_table(db, policy)
    assert len(allocation_rules.load_lines(db, policy, skus, TODAY, chunk_rows=2)) == 0
    ask(db, city, "infant", ("KIT-INFANT", 1), ("KIT-FAMILY-FOOD", 1))
    ask(db, city, "alone80", ("KIT-FAMILY-FOOD", 1))
    ask(db, city, "small", ("KIT-FAMILY-FOOD", 1))
    ask(db, city, "large", ("KIT-FAMILY-FOOD", 2))
    whole = allocation_rules.load_lines(db, policy, skus, TODAY)
    assert len(whole) == 5
    for size in (1, 2, 3):
        chunked = allocation_rules.load_lines(db, policy, skus, TODAY, chunk_rows=size)
        for name in ("line_id", "household_id", "sku", "demand", "klass", "score", "location"):
            assert getattr(chunked, name).tolist() == getattr(whole, name).tolist(), name
        assert chunked.regions == whole.regions
        assert chunked.coords.tolist() == whole.coords.tolist()
        for fact, values in whole.facts.items():
            assert chunked.facts[fact].tolist() == values.tolist(), fact
    assert whole.household_id[0] == city["homes"]["infant"].id  # infants' kit: class first
