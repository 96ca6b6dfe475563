"""Warehouse pages: receiving against a pledge moves the ledger (and settles the pledge, posting
discrepancies to its thread); a bad row writes nothing and is shown next to its field; a double
submit does the work once; stock by item and expiry; transfers with their in-transit state and
gift declaration; adjustments need a reason."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.donations import service as donations
from relieflink.models import (
    IdempotencyRecord,
    Message,
    MessageKind,
    PledgeStatus,
    Receipt,
    StockLot,
    StockMovement,
    StockTransfer,
)
from relieflink.stock import service as stock
from tests.web.helpers import signed_in
from tests.web.supply_world import SupplyWorld, supply_world


def _count(db: Session, model: type) -> int:
    db.commit()  # end this session's read snapshot: see what the pages committed
    return db.scalar(select(func.count()).select_from(model)) or 0


def _ledger(db: Session) -> tuple[int, ...]:
    return tuple(
        _count(db, m) for m in (Receipt, StockLot, StockMovement, StockTransfer, IdempotencyRecord)
    )


def _hidden(html: str, form_id: str) -> dict[str, str]:
    form = re.search(rf'<form[^>]*id="{form_id}".*?</form>', html, flags=re.S)
    assert form, form_id
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.group(0))
    key = re.search(r'name="form_key" value="([^"]+)"', form.group(0))
    assert csrf and key
    return {"csrf_token": csrf.group(1), "form_key": key.group(1)}


def _rows(w: SupplyWorld, *rows: tuple[str, str, str, str]) -> dict[str, list[str]]:
    """Receipt form lines as the browser sends them: each field once per line, in order."""
    return {
        "sku": [r[0] for r in rows],
        "quantity": [r[1] for r in rows],
        "expiry": [r[2] for r in rows],
        "unit_value": [r[3] for r in rows],
    }


@pytest.fixture
def w(db: Session) -> SupplyWorld:
    return supply_world(db)


def test_the_receipt_form_starts_with_what_is_still_to_come(
    w: SupplyWorld, client: TestClient
) -> None:
    signed_in(client, w.warehouse_user)
    choose = client.get("/warehouse/receive").text
    # Both pledges to the warehouse's NGO wait for goods.
    assert f"/warehouse/receive?pledge_id={w.pledge.id}" in choose
    assert f"/warehouse/receive?pledge_id={w.other_pledge.id}" in choose
    form = client.get(f"/warehouse/receive?pledge_id={w.pledge.id}").text
    selected = re.findall(r'<option value="(item:\d+)" selected>', form)
    assert selected == [f"item:{w.rice.id}", f"item:{w.oil.id}"]
    assert re.findall(r'name="quantity" value="(\d*)"', form) == ["100", "20", "", "", ""]
    assert 'name="unit_value" value="50.00"' in form
    for i in range(5):  # every field has its label
        for field in ("sku", "quantity", "expiry", "unit_value"):
            assert f'<label for="lots-{i}-{field}">' in form


def test_a_receipt_through_the_page_moves_the_ledger_and_settles_the_pledge(
    db: Session, w: SupplyWorld, client: TestClient
) -> None:
    signed_in(client, w.warehouse_user)
    form = client.get(f"/warehouse/receive?pledge_id={w.pledge.id}").text
    data = (
        _hidden(form, "receive-form")
        | {"pledge_id": str(w.pledge.id), "warehouse_id": str(w.warehouse.id), "note": "truck 7"}
        | _rows(
            w,
            (f"item:{w.rice.id}", "60", "2027-03-01", "50.00"),
            (f"item:{w.rice.id}", "40", "2027-06-01", "50"),
            (f"item:{w.oil.id}", "25", "", "120.00"),  # 5 more than pledged
            ("", "", "", ""),
        )
    )
    before = _ledger(db)
    first = client.post("/warehouse/receive", data=data, follow_redirects=False)
    assert first.status_code == 303, first.text
    location = first.headers["location"]
    assert re.fullmatch(r"/warehouse/receipts/\d+", location)
    # The same form again (a double click, a retry): the same receipt, nothing written twice.
    again = client.post("/warehouse/receive", data=data, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == location
    after = _ledger(db)
    assert after[0] == before[0] + 1  # one receipt
    assert after[1] == before[1] + 3  # three lots
    assert after[2] == before[2] + 3  # three receipt movements

    on_hand = {
        (r.item_id, r.expiry.isoformat() if r.expiry else None): r.on_hand
        for r in stock.stock_on_hand(db, warehouse_id=w.warehouse.id)
    }
    assert on_hand == {
        (w.rice.id, "2027-03-01"): 60,
        (w.rice.id, "2027-06-01"): 40,
        (w.oil.id, None): 25,
    }
    receipt = client.get(location).text
    assert "truck 7" in receipt and "Rice 5 kg" in receipt
    assert "1 discrepancy(ies) were posted" in receipt
    # The pledge: received in full (rice 100, oil 25 ≥ 20), the over-receipt in its thread.
    pledge = client.get(f"/donations/{w.pledge.id}").text
    assert 'data-status="received"' in pledge
    db.commit()
    thread = db.scalars(
        select(Message).where(
            Message.pledge_id == w.pledge.id, Message.kind == MessageKind.discrepancy
        )
    ).all()
    assert [m.body for m in thread] == [
        "Discrepancy on Cooking oil 1 L / 食用油1升 "
        f"({w.oil.sku}): pledged 20, received 25 (more than pledged)."
    ]
    # The stock page shows it by item and expiry.
    stock_page = client.get(f"/warehouse?warehouse_id={w.warehouse.id}").text
    assert stock_page.count("<tr") == 1 + 3
    assert "1 Mar 2027" in stock_page and 'data-col="on_hand">60<' in stock_page


def test_a_bad_row_writes_nothing_and_is_shown_next_to_its_field(
    db: Session, w: SupplyWorld, client: TestClient
) -> None:
    signed_in(client, w.warehouse_user)
    form = client.get(f"/warehouse/receive?pledge_id={w.pledge.id}").text
    hidden = _hidden(form, "receive-form")
    good = (f"item:{w.rice.id}", "60", "2027-03-01", "50.00")
    data = (
        hidden
        | {"pledge_id": str(w.pledge.id), "warehouse_id": str(w.warehouse.id)}
        | _rows(w, good, (f"item:{w.oil.id}", "ten", "2027-13-40", "1.234"), ("", "5", "", ""))
    )
    before = _ledger(db)
    refused = client.post("/warehouse/receive", data=data)
    assert refused.status_code == 422
    assert _ledger(db) == before  # no receipt, lot, movement, or kept form key
    page = refused.text
    assert "Nothing was saved." in page
    for name in ("lots-1-quantity", "lots-1-expiry", "lots-1-unit_value", "lots-2-sku"):
        assert f'id="{name}-error"' in page, name
        assert re.search(rf'id="{name}"[^>]*aria-invalid="true"', page), name
    assert 'id="lots-0-quantity-error"' not in page
    # What was typed comes back, so it can be corrected.
    assert 'name="quantity" value="ten"' in page
    assert f'<option value="{w.warehouse.id}" selected>' in page
    # The corrected form, with the same key, goes through once.
    fixed = (
        hidden
        | {"pledge_id": str(w.pledge.id), "warehouse_id": str(w.warehouse.id)}
        | _rows(w, good, (f"item:{w.oil.id}", "10", "2027-12-31", "1.20"))
    )
    done = client.post("/warehouse/receive", data=fixed, follow_redirects=False)
    assert done.status_code == 303
    assert _ledger(db)[:3] == (before[0] + 1, before[1] + 2, before[2] + 2)


def test_a_receipt_the_ledger_refuses_writes_nothing(
    db: Session, w: SupplyWorld, client: TestClient
) -> None:
    """What only the services can tell: an item that is not (or no longer) in the catalog — the
    receipt row was already flushed when the line was refused — and a pledge cancelled while
    the form was open."""
    signed_in(client, w.warehouse_user)
    form = client.get(f"/warehouse/receive?pledge_id={w.pledge.id}").text
    hidden = _hidden(form, "receive-form") | {
        "pledge_id": str(w.pledge.id),
        "warehouse_id": str(w.warehouse.id),
    }
    before = _ledger(db)
    unknown = client.post(
        "/warehouse/receive",
        data=hidden | _rows(w, (f"item:{w.rice.id}", "5", "", ""), ("item:999999", "1", "", "")),
    )
    assert unknown.status_code == 422
    assert 'id="lots-1-sku-error"' in unknown.text and "does not exist" in unknown.text
    assert _ledger(db) == before

    donations.change_status(db, w.pledge.id, PledgeStatus.cancelled, actor=None)
    db.commit()
    late = client.post(
        "/warehouse/receive", data=hidden | _rows(w, (f"item:{w.rice.id}", "5", "", ""))
    )
    assert late.status_code == 409 and "a cancelled pledge takes no more receipts" in late.text
    assert _ledger(db) == before


def test_only_the_recipient_side_receives_against_a_pledge(
    db: Session, w: SupplyWorld, client: TestClient
) -> None:
    from relieflink.models import Role
    from tests.factories import make_org, make_user

    outsider = make_user(db, Role.warehouse, organization_id=make_org(db).id)
    db.commit()
    signed_in(client, outsider)
    assert client.get(f"/warehouse/receive?pledge_id={w.pledge.id}").status_code == 403
    assert f"pledge_id={w.pledge.id}" not in client.get("/warehouse/receive").text
    token = _hidden(client.get("/warehouse/transfers").text, "transfer-form")
    before = _ledger(db)
    posted = client.post(
        "/warehouse/receive",
        data=token
        | {"pledge_id": str(w.pledge.id), "warehouse_id": str(w.warehouse.id)}
        | _rows(w, (f"item:{w.rice.id}", "1", "", "")),
    )
    assert posted.status_code == 403
    assert _ledger(db) == before
    client.cookies.clear()
    signed_in(client, w.donor_user)
    assert client.get("/warehouse").status_code == 403


def test_transfers_are_in_transit_until_received_with_a_gift_declaration_abroad(
    db: Session, w: SupplyWorld, client: TestClient
) -> None:
    db.commit()
    stock.receive_lot(db, warehouse_id=w.warehouse.id, item_id=w.rice.id, quantity=50,
                      donor_org_id=w.donor.id, unit_value_fen=5000, actor=None)  # fmt: skip
    db.commit()
    signed_in(client, w.warehouse_user)
    page = client.get("/warehouse/transfers").text
    hidden = _hidden(page, "transfer-form")
    base = hidden | {
        "from_warehouse_id": str(w.warehouse.id),
        "to_warehouse_id": str(w.abroad.id),
        "note": "for the harbour",
    }
    # More than there is: refused by the ledger, shown on the line, nothing written.
    before = _ledger(db)
    too_much = client.post(
        "/warehouse/transfers",
        data=base | {"sku": [f"item:{w.rice.id}", ""], "quantity": ["80", ""]},
    )
    assert too_much.status_code == 409
    assert 'id="lines-0-quantity-error"' in too_much.text and "only 50 available" in too_much.text
    assert _ledger(db) == before
    # The same warehouse at both ends: refused on the field.
    same = client.post(
        "/warehouse/transfers",
        data=base | {"to_warehouse_id": str(w.warehouse.id), "sku": [f"item:{w.rice.id}"],
                     "quantity": ["5"]},
    )  # fmt: skip
    assert same.status_code == 422 and 'id="to_warehouse_id-error"' in same.text

    shipped = client.post(
        "/warehouse/transfers",
        data=base | {"sku": [f"item:{w.rice.id}", ""], "quantity": ["30", ""]},
        follow_redirects=False,
    )
    assert shipped.status_code == 303
    listing = client.get("/warehouse/transfers").text
    row = re.search(r'<tr id="transfer-(\d+)" data-status="in_transit">.*?</tr>', listing, re.S)
    assert row, listing
    transfer_id = int(row.group(1))
    assert f"/warehouse/transfers/{transfer_id}/declaration" in row.group(0)  # HK: cross-border
    db.commit()
    on_hand = {r.warehouse_id: r for r in stock.stock_on_hand(db, item_id=w.rice.id)}
    assert (on_hand[w.warehouse.id].on_hand, on_hand[w.abroad.id].in_transit) == (20, 30)
    assert on_hand[w.abroad.id].on_hand == 0

    declaration = client.get(f"/warehouse/transfers/{transfer_id}/declaration")
    assert declaration.status_code == 200
    assert "Humanitarian gift" in declaration.text and "1,500.00" in declaration.text

    receive = re.search(r'<form[^>]*action="/warehouse/transfers/\d+/receive".*?</form>',
                        listing, re.S)  # fmt: skip
    assert receive
    token = re.search(r'name="csrf_token" value="([^"]+)"', receive.group(0))
    assert token
    for _ in range(2):  # receiving twice changes nothing the second time
        got = client.post(
            f"/warehouse/transfers/{transfer_id}/receive",
            data={"csrf_token": token.group(1)},
            follow_redirects=False,
        )
        assert got.status_code == 303
    db.commit()
    on_hand = {r.warehouse_id: r for r in stock.stock_on_hand(db, item_id=w.rice.id)}
    assert (on_hand[w.abroad.id].on_hand, on_hand[w.abroad.id].in_transit) == (30, 0)
    assert 'data-status="received"' in client.get("/warehouse/transfers").text
    assert stock.check_ledger(db) == []


def test_an_adjustment_needs_a_reason_and_writes_nothing_without_one(
    db: Session, w: SupplyWorld, client: TestClient
) -> None:
    db.commit()
    lot = stock.receive_lot(db, warehouse_id=w.warehouse.id, item_id=w.oil.id, quantity=12,
                            donor_org_id=w.donor.id, actor=None)  # fmt: skip
    db.commit()
    signed_in(client, w.warehouse_user)
    page = client.get(f"/warehouse/adjustments?warehouse_id={w.warehouse.id}").text
    value = f"{w.warehouse.id}:{lot.id}"
    assert f'<option value="{value}">' in page
    hidden = _hidden(page, "adjust-form")
    before = _ledger(db)
    no_reason = client.post(
        "/warehouse/adjustments", data=hidden | {"lot": value, "delta": "-3", "reason": ""}
    )
    assert no_reason.status_code == 422 and 'id="reason-error"' in no_reason.text
    assert _ledger(db) == before
    # A write-off adds nothing: a positive damage is refused on the field.
    positive = client.post(
        "/warehouse/adjustments", data=hidden | {"lot": value, "delta": "3", "reason": "damage"}
    )
    assert positive.status_code == 422 and 'id="delta-error"' in positive.text
    assert _ledger(db) == before
    # More than on hand: refused by the ledger.
    too_many = client.post(
        "/warehouse/adjustments", data=hidden | {"lot": value, "delta": "-13", "reason": "damage"}
    )
    assert too_many.status_code == 409 and "would leave on hand -1" in too_many.text
    assert _ledger(db) == before
    data = hidden | {"lot": value, "delta": "-3", "reason": "damage", "note": "crushed"}
    for _ in range(2):
        done = client.post("/warehouse/adjustments", data=data, follow_redirects=False)
        assert done.status_code == 303
    assert "recorded=1" in done.headers["location"]
    after = _ledger(db)
    assert after[2] == before[2] + 1  # one adjustment movement, not two
    db.commit()
    assert stock.stock_on_hand(db, warehouse_id=w.warehouse.id)[0].on_hand == 9
    shown = client.get(done.headers["location"]).text
    assert "The adjustment was recorded." in shown and 'data-col="on_hand">9<' in shown


def test_two_submits_of_one_form_at_once_do_the_work_once(db: Session, w: SupplyWorld) -> None:
    """The second submit waits for the first (PostgreSQL: on the key's unique index; SQLite: on
    the write lock) and then gets its answer instead of claiming the key again."""
    import threading

    from relieflink.db import begin_write, get_sessionmaker
    from relieflink.idempotency import service as idempotency

    user_id = w.warehouse_user.id
    key, path = "web-form:concurrent-key-0001", "/warehouse/receive"
    first = get_sessionmaker()()
    begin_write(first)
    assert (
        idempotency.recall_or_claim(first, user_id=user_id, key=key, method="POST", path=path)
        is None
    )
    seen: list[object] = []

    def second_submit() -> None:
        with get_sessionmaker()() as second:
            begin_write(second)
            seen.append(
                idempotency.recall_or_claim(
                    second, user_id=user_id, key=key, method="POST", path=path
                )
            )
            second.commit()

    thread = threading.Thread(target=second_submit)
    thread.start()
    thread.join(timeout=0.5)
    assert thread.is_alive() and not seen  # waiting for the first submit's transaction
    idempotency.answer(
        first, user_id=user_id, key=key, status=303, body={"location": "/warehouse/receipts/1"}
    )
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert len(seen) == 1
    replay = seen[0]
    assert isinstance(replay, idempotency.Replay)
    assert replay.body == {"location": "/warehouse/receipts/1"}
    assert _count(db, IdempotencyRecord) == 1
