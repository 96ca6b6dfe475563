"""A Hypothesis state machine drives random ledger operations through the HTTP API (with
Idempotency-Key retries) and compares every step with a small in-memory model of the ledger.

After every step: balances equal the sum of movements, on hand is never negative, reserved never
exceeds on hand, and every (warehouse, lot) balance equals the model's. The model implements the
documented policy independently: FEFO over unexpired lots for reservations, issues and transfers;
releases and returns take the latest expiry first.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink.db import get_sessionmaker
from relieflink.models import OrgKind, Role, StockBalance
from relieflink.stock import service as stock
from tests.factories import make_org, make_user, sign_in
from tests.stock.factories import make_item, make_warehouse

_keys = itertools.count(1)
_refs = itertools.count(1)


@dataclass
class Lot:
    id: int
    expiry: date | None


@dataclass
class Model:
    today: date
    lots: dict[int, Lot] = field(default_factory=dict)
    # (warehouse, lot) → [on hand, reserved, in transit]
    bal: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    # reference → (warehouse, lot) → reserved outstanding / issued outstanding
    held: dict[str, dict[tuple[int, int], int]] = field(default_factory=dict)
    issued: dict[str, dict[tuple[int, int], int]] = field(default_factory=dict)
    reserved_qty: dict[str, int] = field(default_factory=dict)
    transfers: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)

    def fefo(self, key: tuple[int, int]) -> tuple[bool, date, int]:
        expiry = self.lots[key[1]].expiry
        return (expiry is None, expiry or date.max, key[1])

    def expired(self, key: tuple[int, int]) -> bool:
        expiry = self.lots[key[1]].expiry
        return expiry is not None and expiry < self.today

    def b(self, key: tuple[int, int]) -> list[int]:
        return self.bal.setdefault(key, [0, 0, 0])

    def free_keys(self, warehouse: int) -> list[tuple[int, int]]:
        keys = [
            k
            for k, (oh, rs, _) in self.bal.items()
            if k[0] == warehouse and not self.expired(k) and oh > rs
        ]
        return sorted(keys, key=self.fefo)

    def available(self, warehouse: int) -> int:
        return sum(self.bal[k][0] - self.bal[k][1] for k in self.free_keys(warehouse))


class LedgerMachine(RuleBasedStateMachine):
    client: TestClient
    headers: dict[str, str]
    donor_id: int
    db: Session

    refs = Bundle("refs")
    transfers = Bundle("transfers")

    def __init__(self) -> None:
        super().__init__()
        self.model = Model(today=stock.today())
        self.last: tuple[str, dict[str, Any], str, int, Any] | None = None

    @initialize()
    def setup(self) -> None:
        db = self.db
        self.wh = [make_warehouse(db).id, make_warehouse(db).id]
        self.item = make_item(db).id
        db.commit()

    # --- plumbing -----------------------------------------------------------------------

    def post(self, path: str, body: dict[str, Any], *, key: str | None = None) -> Any:
        key = key or f"k-{next(_keys)}"
        response = self.client.post(
            f"/api/v1/stock/{path}", json=body, headers=self.headers | {"Idempotency-Key": key}
        )
        assert response.status_code < 500, response.text
        if response.status_code in (409, 422):
            assert response.json()["detail"], response.text  # a clear problem document
        self.last = (path, body, key, response.status_code, response.json())
        return response

    # --- rules --------------------------------------------------------------------------

    @rule(
        w=st.integers(0, 1),
        quantity=st.integers(1, 40),
        expiry=st.sampled_from([None, -1, 2, 10, 30]),
    )
    def receive(self, w: int, quantity: int, expiry: int | None) -> None:
        exp = None if expiry is None else self.model.today + timedelta(days=expiry)
        lot = {"item_id": self.item, "quantity": quantity}
        if exp is not None:
            lot["expiry"] = exp.isoformat()
        r = self.post(
            "receipts",
            {"warehouse_id": self.wh[w], "donor_org_id": self.donor_id, "lots": [lot]},
        )
        assert r.status_code == 201, r.text
        lot_id = r.json()["lots"][0]["id"]
        self.model.lots[lot_id] = Lot(lot_id, exp)
        self.model.b((self.wh[w], lot_id))[0] += quantity

    @rule(target=refs, w=st.integers(0, 1), quantity=st.integers(1, 30))
    def reserve(self, w: int, quantity: int) -> Any:
        ref = f"ref-{next(_refs)}"
        wh = self.wh[w]
        expected_ok = self.model.available(wh) >= quantity
        r = self.post(
            "reservations",
            {"warehouse_id": wh, "item_id": self.item, "quantity": quantity, "reference": ref},
        )
        if not expected_ok:
            assert r.status_code == 409, r.text
            return multiple()
        assert r.status_code == 201, r.text
        expected = []
        left = quantity
        for key in self.model.free_keys(wh):
            oh, rs, _ = self.model.bal[key]
            take = min(left, oh - rs)
            expected.append((key[1], take))
            self.model.bal[key][1] += take
            self.model.held.setdefault(ref, {})[key] = take
            left -= take
            if left == 0:
                break
        assert [(m["lot_id"], m["d_reserved"]) for m in r.json()] == expected
        self.model.reserved_qty[ref] = quantity
        return ref

    @rule(ref=refs)
    def reserve_again_with_same_reference(self, ref: str) -> None:
        movements = [m for m in self._ledger(ref) if m["kind"] == "reservation"]
        (wh,) = {m["warehouse_id"] for m in movements}
        r = self.post(
            "reservations",
            {
                "warehouse_id": wh,
                "item_id": self.item,
                "quantity": self.model.reserved_qty[ref],
                "reference": ref,
            },
        )
        assert r.status_code == 201, r.text
        assert [m["id"] for m in r.json()] == [m["id"] for m in movements]

    @rule()
    def retry_last_request_with_same_key(self) -> None:
        if self.last is None:
            return
        path, body, key, status, first = self.last
        r = self.client.post(
            f"/api/v1/stock/{path}", json=body, headers=self.headers | {"Idempotency-Key": key}
        )
        assert r.status_code == status and r.json() == first
        assert r.headers.get("Idempotent-Replayed") == "true"

    @rule()
    def reuse_key_with_other_payload(self) -> None:
        if self.last is None:
            return
        path, body, key, _, _ = self.last
        r = self.client.post(
            f"/api/v1/stock/{path}",
            json=body | {"__other": 1},
            headers=self.headers | {"Idempotency-Key": key},
        )
        assert r.status_code == 422
        assert "Idempotency-Key" in r.json()["detail"]  # refused by the key, not the schema

    @rule(ref=refs, quantity=st.none() | st.integers(1, 30))
    def release(self, ref: str, quantity: int | None) -> None:
        held = self.model.held.get(ref, {})
        total = sum(held.values())
        r = self.post("releases", {"reference": ref, "quantity": quantity})
        if quantity is not None and quantity > total:
            assert r.status_code == 409, r.text
            return
        assert r.status_code == 200, r.text
        left = total if quantity is None else quantity
        expected = []
        for key in sorted((k for k, v in held.items() if v > 0), key=self.model.fefo, reverse=True):
            if left == 0:
                break
            take = min(left, held[key])
            expected.append((key[1], -take))
            held[key] -= take
            self.model.bal[key][1] -= take
            left -= take
        assert [(m["lot_id"], m["d_reserved"]) for m in r.json()] == expected

    @rule(ref=refs, quantity=st.none() | st.integers(1, 30))
    def issue(self, ref: str, quantity: int | None) -> None:
        held = self.model.held.get(ref, {})
        good = {k: v for k, v in held.items() if v > 0 and not self.model.expired(k)}
        wanted = sum(v for v in held.values()) if quantity is None else quantity
        r = self.post(
            "issues",
            {"reference": ref, "quantity": quantity, "delivery_ref": f"d-{next(_refs)}"},
        )
        if wanted > sum(good.values()):
            assert r.status_code == 409, r.text
            return
        assert r.status_code == 201, r.text
        left, expected = wanted, []
        for key in sorted(good, key=self.model.fefo):
            if left == 0:
                break
            take = min(left, good[key])
            expected.append((key[1], -take))
            held[key] -= take
            self.model.bal[key][0] -= take
            self.model.bal[key][1] -= take
            issued = self.model.issued.setdefault(ref, {})
            issued[key] = issued.get(key, 0) + take
            left -= take
        assert [(m["lot_id"], m["d_on_hand"]) for m in r.json()] == expected

    @rule(ref=refs, quantity=st.integers(1, 20))
    def return_stock(self, ref: str, quantity: int) -> None:
        out = {k: v for k, v in self.model.issued.get(ref, {}).items() if v > 0}
        r = self.post("returns", {"reference": ref, "quantity": quantity})
        if quantity > sum(out.values()):
            assert r.status_code == 409, r.text
            return
        assert r.status_code == 201, r.text
        left = quantity
        for key in sorted(out, key=self.model.fefo, reverse=True):
            if left == 0:
                break
            take = min(left, out[key])
            self.model.issued[ref][key] -= take
            self.model.bal[key][0] += take
            left -= take

    @rule(
        data=st.data(),
        delta=st.integers(-15, 10).filter(bool),
        reason=st.sampled_from(["damage", "expiry", "count_correction"]),
    )
    def adjust(self, data: st.DataObject, delta: int, reason: str) -> None:
        if not self.model.bal:
            return
        key = data.draw(st.sampled_from(sorted(self.model.bal)))
        oh, rs, _ = self.model.bal[key]
        r = self.post(
            "adjustments",
            {"warehouse_id": key[0], "lot_id": key[1], "delta": delta, "reason": reason},
        )
        if reason != "count_correction" and delta > 0:
            assert r.status_code == 422, r.text
        elif oh + delta < rs or oh + delta < 0:
            assert r.status_code == 409, r.text
        else:
            assert r.status_code == 201, r.text
            self.model.bal[key][0] += delta

    @rule(target=transfers, src=st.integers(0, 1), quantity=st.integers(1, 30))
    def ship(self, src: int, quantity: int) -> Any:
        a, b = self.wh[src], self.wh[1 - src]
        expected_ok = self.model.available(a) >= quantity
        r = self.post(
            "transfers",
            {
                "from_warehouse_id": a,
                "to_warehouse_id": b,
                "lines": [{"item_id": self.item, "quantity": quantity}],
            },
        )
        if not expected_ok:
            assert r.status_code == 409, r.text
            return multiple()
        assert r.status_code == 201, r.text
        lines, left = [], quantity
        for key in self.model.free_keys(a):
            oh, rs, _ = self.model.bal[key]
            take = min(left, oh - rs)
            self.model.bal[key][0] -= take
            self.model.b((b, key[1]))[2] += take
            lines.append((b, key[1], take))
            left -= take
            if left == 0:
                break
        self.model.transfers[r.json()["id"]] = lines
        return r.json()["id"]

    @rule(transfer_id=consumes(transfers))
    def receive_shipment(self, transfer_id: int) -> None:
        r = self.post(f"transfers/{transfer_id}/receive", {})
        assert r.status_code == 200, r.text
        for wh, lot, q in self.model.transfers.pop(transfer_id):
            self.model.bal[(wh, lot)][2] -= q
            self.model.bal[(wh, lot)][0] += q

    # --- invariants ---------------------------------------------------------------------

    def _ledger(self, ref: str) -> list[dict[str, Any]]:
        r = self.client.get(
            "/api/v1/stock/movements", params={"reference": ref, "limit": 500}, headers=self.headers
        )
        return list(r.json()["items"])

    @invariant()
    def ledger_matches_model(self) -> None:
        if not hasattr(self, "wh"):
            return
        with get_sessionmaker()() as session:
            assert stock.check_ledger(session) == []
            rows = session.scalars(
                select(StockBalance).where(StockBalance.warehouse_id.in_(self.wh))
            ).all()
            actual = {
                (b.warehouse_id, b.lot_id): [b.on_hand, b.reserved, b.in_transit] for b in rows
            }
            for on_hand, reserved, in_transit in actual.values():
                assert 0 <= reserved <= on_hand and in_transit >= 0
            model = {k: v for k, v in self.model.bal.items() if any(v) or k in actual}
            assert {k: v for k, v in actual.items() if any(v) or k in model} == model
            for w in self.wh:
                got = stock.available(session, warehouse_id=w, item_id=self.item)
                assert got == self.model.available(w)


def test_ledger_state_machine(db: Session, client: TestClient) -> None:
    donor = make_org(db, OrgKind.donor)
    user = make_user(db, Role.warehouse)
    db.commit()
    LedgerMachine.client = client
    LedgerMachine.headers = sign_in(client, user)
    LedgerMachine.donor_id = donor.id
    LedgerMachine.db = db
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=12,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=False,
        ),
    )
