"""Donation pages: pledges scoped to the donor's organization, the pledge page (lines, history,
the status changes the role may make, the thread with unread counts and discrepancies), and the
donor's trace whose figures add up."""

from __future__ import annotations

import re
from fractions import Fraction

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.donations import service as donations
from relieflink.flows import receipts
from relieflink.models import AdjustmentReason, Message, MessageKind, PledgeStatus
from relieflink.stock import ledger
from relieflink.stock import service as stock
from relieflink.stock.schemas import ReceiveIn
from tests.web.helpers import signed_in
from tests.web.supply_world import SupplyWorld, supply_world

KEY_FIELD = re.compile(r'name="form_key" value="([^"]+)"')


def _form(html: str, form_id: str) -> str:
    """The HTML of one form of a page."""
    match = re.search(rf'<form[^>]*id="{form_id}".*?</form>', html, flags=re.S)
    assert match, f"no form #{form_id}"
    return match.group(0)


def _hidden(form: str) -> dict[str, str]:
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    key = KEY_FIELD.search(form)
    assert csrf and key
    return {"csrf_token": csrf.group(1), "form_key": key.group(1)}


def _messages(db: Session, pledge_id: int, kind: MessageKind | None = None) -> int:
    db.commit()  # end this session's read snapshot: see what the pages committed
    stmt = select(func.count()).select_from(Message).where(Message.pledge_id == pledge_id)
    if kind is not None:
        stmt = stmt.where(Message.kind == kind)
    return db.scalar(stmt) or 0


def _receive(db: Session, w: SupplyWorld, rice: int, oil: int = 0) -> int:
    db.commit()  # a fresh transaction, so the ledger takes SQLite's write lock first
    lots = [{"item_id": w.rice.id, "quantity": rice, "unit_value_fen": 5000}]
    if oil:
        lots.append({"item_id": w.oil.id, "quantity": oil, "unit_value_fen": 12000})
    data = ReceiveIn.model_validate(
        {"warehouse_id": w.warehouse.id, "pledge_id": w.pledge.id, "lots": lots}
    )
    receipt = receipts.receive_against_pledge(db, data, actor=w.warehouse_user).receipt
    db.commit()
    return receipt.id


def test_a_donor_sees_only_their_own_pledges_and_threads(db: Session, client: TestClient) -> None:
    w = supply_world(db)
    signed_in(client, w.donor_user)
    listing = client.get("/donations")
    assert listing.status_code == 200
    assert f'href="/donations/{w.pledge.id}"' in listing.text
    assert f'href="/donations/{w.other_pledge.id}"' not in listing.text
    assert "Showing 1–1 of 1" in listing.text
    # Another organization's pledge, its thread and its actions: the 403 page.
    assert client.get(f"/donations/{w.other_pledge.id}").status_code == 403
    own = client.get(f"/donations/{w.pledge.id}")
    assert own.status_code == 200
    token = _hidden(_form(own.text, "message-form"))
    before = _messages(db, w.other_pledge.id)
    posted = client.post(f"/donations/{w.other_pledge.id}/messages", data=token | {"body": "hello"})
    assert posted.status_code == 403
    assert _messages(db, w.other_pledge.id) == before
    cancelled = client.post(
        f"/donations/{w.other_pledge.id}/status", data=token | {"status": "cancelled"}
    )
    assert cancelled.status_code == 403
    db.expire_all()
    assert donations.require_pledge(db, w.other_pledge.id, actor=None).status == "pledged"
    # A donor may not ask for another donor's trace either.
    assert client.get(f"/donations/trace?donor_org_id={w.other_donor.id}").status_code == 403


def test_the_pledge_page_offers_each_side_its_own_status_changes(
    db: Session, client: TestClient
) -> None:
    w = supply_world(db)
    donor_page = signed_in(client, w.donor_user).get(f"/donations/{w.pledge.id}").text
    status_form = _form(donor_page, "status-form")
    assert re.findall(r'name="status" value="(\w+)"', status_form) == ["cancelled"]
    # Confirming is the recipient's; the donor's forged "confirm" is refused, nothing changes.
    refused = client.post(
        f"/donations/{w.pledge.id}/status",
        data=_hidden(status_form) | {"status": "confirmed"},
    )
    assert refused.status_code == 422
    db.expire_all()
    assert donations.require_pledge(db, w.pledge.id, actor=None).status == "pledged"
    client.cookies.clear()

    page = signed_in(client, w.warehouse_user).get(f"/donations/{w.pledge.id}").text
    form = _form(page, "status-form")
    assert re.findall(r'name="status" value="(\w+)"', form) == ["confirmed", "cancelled"]
    assert "Rice 5 kg" in page and "Cooking oil 1 L" in page
    assert f'href="/warehouse/receive?pledge_id={w.pledge.id}"' in page
    done = client.post(
        f"/donations/{w.pledge.id}/status",
        data=_hidden(form) | {"status": "confirmed", "note": "trucks booked"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/donations/{w.pledge.id}#history"
    after = client.get(f"/donations/{w.pledge.id}").text
    assert 'data-status="confirmed"' in after
    history = after.split('id="history"')[1].split("</section>")[0]
    assert "Pledged" in history and "Confirmed" in history and "trucks booked" in history
    assert "Wang Bo" in history
    # Now the recipient may close or cancel (close only once received: not offered yet).
    assert re.findall(r'name="status" value="(\w+)"', _form(after, "status-form")) == ["cancelled"]


def test_messages_unread_counts_and_a_discrepancy_in_the_thread(
    db: Session, client: TestClient
) -> None:
    w = supply_world(db)
    signed_in(client, w.warehouse_user)
    page = client.get(f"/donations/{w.pledge.id}").text
    form = _hidden(_form(page, "message-form"))
    # An empty message is refused next to its field; nothing is posted.
    before = _messages(db, w.pledge.id)
    empty = client.post(f"/donations/{w.pledge.id}/messages", data=form | {"body": "  "})
    assert empty.status_code == 422
    assert 'id="body-error"' in empty.text and 'aria-invalid="true"' in empty.text
    assert _messages(db, w.pledge.id) == before
    # Sent twice (a double click): posted once.
    for _ in range(2):
        sent = client.post(
            f"/donations/{w.pledge.id}/messages",
            data=form | {"body": "Arriving Tuesday?"},
            follow_redirects=False,
        )
        assert sent.status_code == 303
    assert _messages(db, w.pledge.id) == before + 1
    client.cookies.clear()

    # The donor has two unread messages on the list (the system's "pledge recorded" and the
    # recipient's); opening the pledge shows them as new and marks them read.
    signed_in(client, w.donor_user)
    listing = client.get("/donations").text
    row = re.search(rf'href="/donations/{w.pledge.id}".*?</tr>', listing, flags=re.S)
    assert row and re.findall(r'class="num">(\d+)<', row.group(0))[-1] == "2"
    opened = client.get(f"/donations/{w.pledge.id}").text
    assert "2 new since you last looked" in opened
    new = re.findall(r'<li id="message-\d+" class="([^"]*\bnew\b[^"]*)"', opened)
    assert new == ["msg msg-system new", "msg msg-user new"]
    listing = client.get("/donations").text
    row = re.search(rf'href="/donations/{w.pledge.id}".*?</tr>', listing, flags=re.S)
    assert row and re.findall(r'class="num">(\d+)<', row.group(0))[-1] == "0"

    # Over-receiving oil raises a discrepancy: it shows as such in the thread and its table.
    _receive(db, w, rice=40, oil=25)
    page = client.get(f"/donations/{w.pledge.id}").text
    assert _messages(db, w.pledge.id, MessageKind.discrepancy) == 1
    assert re.search(r'class="msg msg-discrepancy[^"]*" data-kind="discrepancy"', page)
    assert "Discrepancy on Cooking oil 1 L / 食用油1升" in page  # named, not an id
    table = page.split('id="discrepancies"')[1].split("</section>")[0]
    assert "Cooking oil 1 L" in table and ">20<" in table and ">25<" in table
    lines = page.split('id="lines"')[1].split("</table>")[0]
    assert re.search(r"Rice 5 kg.*?>100<.*?>40<.*?>60<", lines, flags=re.S)


def test_the_trace_figures_add_up_and_the_chart_shows_them(db: Session, client: TestClient) -> None:
    w = supply_world(db)
    _receive(db, w, rice=80, oil=20)
    stock.reserve(db, warehouse_id=w.warehouse.id, item_id=w.rice.id, quantity=30,
                  reference="alloc:1:line:1", actor=None)  # fmt: skip
    # 20 reached a door, 5 are loaded on a vehicle: delivered and on the way apart.
    stock.issue(db, reference="alloc:1:line:1", quantity=20, delivery_ref="hh:1", actor=None)
    stock.issue(db, reference="alloc:1:line:1", quantity=5, delivery_ref="hh:2", actor=None)
    ledger.hand_over(db, ["hh:1"], actor=None)
    five_rice = [stock.TransferLine(quantity=5, item_id=w.rice.id)]
    stock.transfer(db, from_warehouse_id=w.warehouse.id, to_warehouse_id=w.abroad.id,
                   lines=five_rice, actor=None)  # fmt: skip
    lots = {b.item_id: b.lot_id for b in stock.warehouse_lots(db, warehouse_id=w.warehouse.id)}
    stock.adjust(db, warehouse_id=w.warehouse.id, lot_id=lots[w.oil.id], delta=-2,
                 reason=AdjustmentReason.damage, actor=None)  # fmt: skip
    db.commit()

    page = signed_in(client, w.donor_user).get("/donations/trace")
    assert page.status_code == 200
    html = page.text
    table = html.split('id="trace-figures"')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], flags=re.S)
    assert len(rows) == 2

    def cells(row: str) -> dict[str, Fraction]:
        found = re.findall(r'data-col="(\w+)">([\d./]+)<', row)
        return {k: Fraction(v) for k, v in found}

    figures = {("Rice" if "Rice" in r else "Oil"): cells(r) for r in rows}
    assert figures["Rice"] == {
        "pledged": 100, "received": 80, "in_stock": 50, "in_transit": 5, "on_the_way": 5,
        "delivered": 20, "written_off": 0,
    }  # fmt: skip
    assert figures["Oil"]["written_off"] == 2 and figures["Oil"]["in_stock"] == 18
    for f in figures.values():
        parts = ("in_stock", "in_transit", "on_the_way", "delivered", "written_off")
        assert f["received"] == sum(f[k] for k in parts)
    assert html.count('data-balanced="yes"') == 2
    # The same figures as the service's report.
    report = {r.item_id: r for r in stock.donor_report(db, donor_org_id=w.donor.id)}
    assert report[w.rice.id].delivered == figures["Rice"]["delivered"]
    # The chart: one bar per item, the rice bar's segments in proportion (scale: 100 pledged).
    chart = html.split('id="trace-chart"')[1].split("</figure>")[0]
    assert chart.count('<svg class="trace-bar"') == 2
    rice_bar = next(b for b in chart.split('<li class="bar-row">') if "Rice" in b)
    widths = dict(re.findall(r'<rect class="(seg-[\w-]+)" x="[\d.]+" y="2" width="([\d.]+)"',
                             rice_bar))  # fmt: skip
    assert widths == {
        "seg-delivered": "200.0", "seg-on-the-way": "50.0", "seg-stock": "500.0",
        "seg-transit": "50.0",
    }  # fmt: skip
    assert 'class="pledged-outline"' in rice_bar
    assert "<script" not in html.split("</head>")[1]  # drawn on the server, no inline script
    assert 'data-total="received">6,400.00<' in html  # 80 × 50.00 + 20 × 120.00


def test_the_trace_per_program_and_for_staff(db: Session, client: TestClient) -> None:
    w = supply_world(db)
    _receive(db, w, rice=10)
    from tests.stock.factories import make_pledge, make_program

    later = make_program(db, w.ngo, name="Autumn 2022")
    make_pledge(db, donor=w.donor, recipient=w.ngo, program=later, lines=[(w.oil, 7, 100)])
    db.commit()
    signed_in(client, w.coordinator)
    choose = client.get("/donations/trace")
    assert "Choose a donor" in choose.text and "Acme Foods" in choose.text
    both = client.get(f"/donations/trace?donor_org_id={w.donor.id}").text
    assert "Shanghai 2022" in both and "Autumn 2022" in both
    only = client.get(f"/donations/trace?donor_org_id={w.donor.id}&program_id={later.id}").text
    table = only.split('id="trace-figures"')[1].split("</table>")[0]
    assert "Cooking oil" in table and "Rice" not in table
    assert re.search(r'data-col="pledged">7<', table)


def test_the_pages_speak_chinese(db: Session, client: TestClient) -> None:
    w = supply_world(db)
    _receive(db, w, rice=10)
    signed_in(client, w.donor_user)
    zh = {"Accept-Language": "zh-CN"}
    assert "<h1>认捐</h1>" in client.get("/donations", headers=zh).text
    page = client.get(f"/donations/{w.pledge.id}", headers=zh).text
    assert f"认捐 #{w.pledge.id}" in page and "状态记录" in page
    assert "大米5公斤" in page and "艾克米食品" in page
    trace = client.get("/donations/trace", headers=zh).text
    assert '<html lang="zh-CN">' in trace and "您捐赠的物资去向" in trace
    assert "大米5公斤" in trace and "核对相符" in trace


def test_the_list_filters_by_status(db: Session, client: TestClient) -> None:
    w = supply_world(db)
    donations.change_status(db, w.pledge.id, PledgeStatus.cancelled, actor=w.donor_user)
    db.commit()
    signed_in(client, w.donor_user)
    cancelled = client.get("/donations?status=cancelled").text
    assert re.findall(r'href="/donations/(\d+)"', cancelled) == [str(w.pledge.id)]
    assert "Cancelled" in cancelled
    assert (
        re.findall(r'href="/donations/(\d+)"', client.get("/donations?status=received").text) == []
    )
