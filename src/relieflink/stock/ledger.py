"""The stock ledger: reservations, releases, issues and returns (receipts and adjustments are
in :mod:`relieflink.stock.receipts`).

Every change is an append-only :class:`StockMovement` carrying the deltas it applies to one
(warehouse, lot) :class:`StockBalance`, which is updated in the same transaction after the balance
rows are locked (``SELECT ... FOR UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite, see
:func:`relieflink.stock.repository.begin_write`). The rules (first expiry first out, expired lots
never leave, the balance invariants, the errors) are in :mod:`relieflink.stock.rules`. Nothing
here commits.

Reservations carry a free ``reference`` ("allocation:42:line:7"): reserving again with the same
reference does nothing, and release/issue/return act on what that reference holds.

The batch is the only path: :func:`reserve`, :func:`release`, :func:`issue` and
:func:`return_stock` are a batch of one through :func:`reserve_many`, :func:`release_many`,
:func:`issue_many` and :func:`return_many`, which lock the balance rows once for the whole batch
and write the movements in one statement (an allocation run over a city, a vehicle's load).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.errors import Conflict, FieldError, NotFound
from relieflink.models import (
    AdjustmentReason,
    MovementKind,
    StockBalance,
    StockLot,
    StockMovement,
    User,
    Warehouse,
)
from relieflink.stock import repository, rules

# --- receipts ---------------------------------------------------------------------------------


def require_warehouse(session: Session, warehouse_id: int) -> Warehouse:
    warehouse = session.get(Warehouse, warehouse_id)
    if warehouse is None:
        raise NotFound(f"no warehouse with id {warehouse_id}")
    return warehouse


def locked_balance(session: Session, warehouse_id: int, lot: StockLot) -> StockBalance:
    """The (warehouse, lot) balance row, created if new, locked."""
    repository.ensure_balance(session, warehouse_id=warehouse_id, lot=lot)
    (balance,) = repository.lock_balance_pairs(session, [(warehouse_id, lot.id)])
    return balance


# --- reservations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reservation:
    """Reserve ``quantity`` of an item (or kit) in a warehouse under ``reference``."""

    warehouse_id: int
    item_id: int | None
    kit_id: int | None
    quantity: int
    reference: str


@dataclass
class _Written:
    movements: list[StockMovement]  # with ``returning`` only
    rows: int  # movements written
    skipped: set[str]  # references (or reference/delivery keys) done before: nothing written


def reserve_many(
    session: Session,
    reservations: Sequence[Reservation],
    *,
    actor: User | None,
    as_of: date | None = None,
    new_references: bool = False,
) -> int:
    """Reserve all of ``reservations`` or none (``Conflict`` naming the first short one), first
    expiry first, never from expired lots. Returns the number of movements written.

    References reserved before are skipped (a retried run does not reserve twice); a caller
    whose references cannot exist yet (they name a row it has just created) may say so with
    ``new_references`` and save the look-up."""
    return _reserve(
        session, reservations, actor=actor, as_of=as_of, new_references=new_references
    ).rows


def reserve(
    session: Session,
    *,
    warehouse_id: int,
    item_id: int | None = None,
    quantity: int,
    reference: str,
    actor: User | None,
    kit_id: int | None = None,
    as_of: date | None = None,
) -> list[StockMovement]:
    """Reserve ``quantity`` of an item (or kit) in a warehouse for ``reference``: a batch of one
    of :func:`reserve_many`. Reserving again with the same reference returns the first
    reservation (``Conflict`` if it reserved other stock).

    Raises ``Conflict`` (409) when fewer units are available (on hand − reserved, not expired).
    """
    ask = Reservation(warehouse_id, item_id, kit_id, quantity, reference)
    done = _reserve(session, [ask], actor=actor, as_of=as_of, returning=True)
    if done.skipped:
        return _same_reservation(session, ask)
    return done.movements


def _reserve(
    session: Session,
    reservations: Sequence[Reservation],
    *,
    actor: User | None,
    as_of: date | None,
    new_references: bool = False,
    returning: bool = False,
) -> _Written:
    for r in reservations:
        rules.one_of(r.item_id, r.kit_id)
        rules.positive(r.quantity)
        rules.reference(r.reference)
    today = rules.today(as_of)
    repository.begin_write(session)
    # A batch looks its references up first. A single reservation does not: its reserve-once
    # check rides on the conditional UPDATE, read after the row lock was taken, so a concurrent
    # reservation of the same reference is seen (the API's busiest write is three statements).
    single = len(reservations) == 1 and not new_references
    skipped: set[str] = set()
    if not single and not new_references:
        skipped = repository.reserved_references(session, [r.reference for r in reservations])
    groups: dict[tuple[int, int | None, int | None], list[Reservation]] = defaultdict(list)
    for r in reservations:
        if r.reference not in skipped:
            groups[(r.warehouse_id, r.item_id, r.kit_id)].append(r)
    now = clock.now()
    actor_id = actor.id if actor is not None else None
    rows: list[dict[str, Any]] = []
    taken: dict[int, int] = {}  # balance id → units, in lock (FEFO) order
    for warehouse_id, item_id, kit_id in sorted(groups, key=lambda k: (k[0], k[1] or 0, k[2] or 0)):
        # Only the rows that can give units are locked, in FEFO order (one statement).
        free = repository.lock_free_balances(
            session, warehouse_id=warehouse_id, item_id=item_id, kit_id=kit_id, today=today
        )
        left = {balance_id: units for balance_id, _, units in free}
        lot_of = {balance_id: lot_id for balance_id, lot_id, _ in free}
        available = sum(left.values())
        for r in groups[(warehouse_id, item_id, kit_id)]:
            if available < r.quantity:
                if single and repository.has_reservation(session, r.reference):
                    skipped.add(r.reference)  # a retry after the last units
                    continue
                raise Conflict(
                    f"only {available} of {rules.what(item_id, kit_id)} available in warehouse "
                    f"{warehouse_id} for {r.reference!r}; {r.quantity} asked; nothing was "
                    "reserved",
                    [FieldError(("quantity",), f"at most {available} available")],
                )
            available -= r.quantity
            for balance_id, take in rules.pick(left.items(), r.quantity):
                left[balance_id] -= take
                taken[balance_id] = taken.get(balance_id, 0) + take
                rows.append(
                    {
                        "kind": MovementKind.reservation,
                        "warehouse_id": warehouse_id,
                        "lot_id": lot_of[balance_id],
                        "item_id": item_id,
                        "kit_id": kit_id,
                        "d_on_hand": 0,
                        "d_reserved": take,
                        "d_in_transit": 0,
                        "reference": r.reference,
                        "actor_id": actor_id,
                        "created_at": now,
                    }
                )
    # One conditional UPDATE per balance row (units still free); a single reservation's also
    # checks, after the lock, that its reference reserved nothing yet.
    if single:
        guard = reservations[0].reference
        for n, (balance_id, units) in enumerate(taken.items()):
            if not repository.add_reserved(session, balance_id, units, reference=guard):
                if n == 0 and repository.has_reservation(session, guard):
                    return _Written([], 0, {guard})
                # Units gone from a locked row cannot happen; the reference reserved elsewhere
                # in between (another warehouse or item) is a client bug: refuse, the caller
                # rolls back.
                raise Conflict(
                    f"balance row {balance_id} changed, or reference {guard!r} was reserved "
                    "meanwhile; try again"
                )
    elif not repository.add_reserved_many(session, taken):
        raise Conflict("stock changed under a locked reservation; try again")
    movements = repository.insert_movements(session, rows, returning=returning)
    return _Written(movements, len(rows), skipped)


def _same_reservation(session: Session, ask: Reservation) -> list[StockMovement]:
    """The first reservation of ``ask.reference``, if it is the same ask; ``Conflict`` if not."""
    existing = repository.movements_by_reference(session, ask.reference, [MovementKind.reservation])
    same = all(
        m.warehouse_id == ask.warehouse_id and m.item_id == ask.item_id and m.kit_id == ask.kit_id
        for m in existing
    )
    if not same or sum(m.d_reserved for m in existing) != ask.quantity:
        raise Conflict(
            f"reference {ask.reference!r} already reserved other stock; use a new reference"
        )
    return existing


# --- releases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """Release ``quantity`` units (all when None) reserved under ``reference``."""

    reference: str
    quantity: int | None = None


def release_many(
    session: Session,
    releases: Sequence[Release],
    *,
    actor: User | None,
    returning: bool = True,
) -> list[StockMovement]:
    """Release what each reference holds reserved (all of it, or ``quantity`` units; the latest
    expiries first), all or none. A reference that holds nothing releases nothing. Without
    ``returning`` the movements are inserted as fast as the database can and none is given
    back (a plan's left-out parcels, a courier's failed doors: thousands a wave in a city)."""
    for r in releases:
        rules.reference(r.reference)
        if r.quantity is not None:
            rules.positive(r.quantity)
    if not releases:
        return []
    repository.begin_write(session)
    balances, held, _ = _held(session, releases)
    now = clock.now()
    rows: list[dict[str, Any]] = []
    for r in releases:
        mine = {k: v for k, v in held[r.reference].items() if v > 0}
        total = sum(mine.values())
        wanted = total if r.quantity is None else r.quantity
        if wanted > total:
            raise Conflict(
                f"reference {r.reference!r} holds {total} reserved; cannot release {wanted}",
                [FieldError(("quantity",), f"at most {total}")],
            )
        for key, take in _draw(balances, mine, wanted, latest_first=True):
            held[r.reference][key] -= take
            rows.append(
                rules.apply(
                    balances[key],
                    MovementKind.release,
                    actor=actor,
                    now=now,
                    d_reserved=-take,
                    reference=r.reference,
                )
            )
    return repository.insert_movements(session, rows, returning=returning)


def release(
    session: Session, *, reference: str, quantity: int | None = None, actor: User | None
) -> list[StockMovement]:
    """Release what ``reference`` holds reserved: a batch of one of :func:`release_many`."""
    return release_many(session, [Release(reference, quantity)], actor=actor)


def _draw(
    balances: dict[tuple[int, int], StockBalance],
    units: dict[tuple[int, int], int],
    wanted: int,
    *,
    latest_first: bool,
) -> list[tuple[tuple[int, int], int]]:
    """Take ``wanted`` of the ``units`` a reference holds per (warehouse, lot): first expiry
    first (issues), or latest first (what goes back: releases, returns)."""
    order = sorted(units, key=lambda k: rules.fefo_key(balances[k]), reverse=latest_first)
    return rules.pick(((k, units[k]) for k in order), wanted)


def _held(
    session: Session, asks: Sequence[Release | Issue]
) -> tuple[
    dict[tuple[int, int], StockBalance], dict[str, dict[tuple[int, int], int]], set[tuple[str, str]]
]:
    """The balance rows of the references asked about (locked), what each reference holds
    reserved per (warehouse, lot), and the (reference, delivery) issues made already."""
    references = sorted({a.reference for a in asks})
    balances = repository.lock_balances_of_references(session, references)
    held: dict[str, dict[tuple[int, int], int]] = defaultdict(dict)
    issued: set[tuple[str, str]] = set()
    for reference, warehouse_id, lot_id, reserved, delivery_ref in (
        repository.reserved_by_delivery(session, references)  # again, under the lock
    ):
        key = (warehouse_id, lot_id)
        held[reference][key] = held[reference].get(key, 0) + reserved
        if delivery_ref is not None and reserved < 0:
            issued.add((reference, delivery_ref))
    return balances, held, issued


# --- issues -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issue:
    """Issue ``quantity`` units (all it holds when None) reserved under ``reference`` to the
    delivery ``delivery_ref``."""

    reference: str
    quantity: int | None
    delivery_ref: str | None = None


def issue_many(
    session: Session, issues: Sequence[Issue], *, actor: User | None, as_of: date | None = None
) -> int:
    """Issue all of ``issues`` or none, first expiry first, never from expired lots
    (``Conflict`` when the still-good reserved units do not cover the quantity); an issue
    already made under the same ``delivery_ref`` is not made again. The balance rows of every
    reference are locked in one statement (in id order) and the movements inserted in bulk.
    Returns the movements written."""
    return _issue(session, issues, actor=actor, as_of=as_of, returning=False).rows


def issue(
    session: Session,
    *,
    reference: str,
    quantity: int | None = None,
    delivery_ref: str | None = None,
    actor: User | None,
    as_of: date | None = None,
) -> list[StockMovement]:
    """Issue (hand out to a delivery) stock reserved under ``reference``: a batch of one of
    :func:`issue_many`. Issuing again with the same ``delivery_ref`` returns the first issue."""
    done = _issue(
        session, [Issue(reference, quantity, delivery_ref)], actor=actor, as_of=as_of,
        returning=True,
    )  # fmt: skip
    if done.skipped:
        return [
            m
            for m in repository.movements_by_reference(session, reference, [MovementKind.issue])
            if m.delivery_ref == delivery_ref
        ]
    return done.movements


def _issue(
    session: Session,
    issues: Sequence[Issue],
    *,
    actor: User | None,
    as_of: date | None,
    returning: bool,
) -> _Written:
    for i in issues:
        rules.reference(i.reference)
        if i.quantity is not None:
            rules.positive(i.quantity)
        if i.delivery_ref is not None:
            rules.reference(i.delivery_ref, "delivery_ref")
    if not issues:
        return _Written([], 0, set())
    today = rules.today(as_of)
    repository.begin_write(session)
    balances, held, done = _held(session, issues)
    now = clock.now()
    rows: list[dict[str, Any]] = []
    skipped: set[str] = set()
    for i in issues:
        if i.delivery_ref is not None and (i.reference, i.delivery_ref) in done:
            skipped.add(i.reference)
            continue
        mine = {k: v for k, v in held[i.reference].items() if v > 0}
        good = {k: v for k, v in mine.items() if not rules.expired(balances[k].expiry, today)}
        total, usable = sum(mine.values()), sum(good.values())
        wanted = total if i.quantity is None else i.quantity
        if wanted > usable:
            expired = total - usable
            detail = f" ({expired} in expired lots: release and reserve again)" if expired else ""
            raise Conflict(
                f"reference {i.reference!r} holds {usable} issuable units; cannot issue "
                f"{wanted}" + detail,
                [FieldError(("quantity",), f"at most {usable}")],
            )
        for key, take in _draw(balances, good, wanted, latest_first=False):
            held[i.reference][key] -= take
            rows.append(
                rules.apply(
                    balances[key],
                    MovementKind.issue,
                    actor=actor,
                    now=now,
                    d_on_hand=-take,
                    d_reserved=-take,
                    reference=i.reference,
                    delivery_ref=i.delivery_ref,
                )
            )
        if i.delivery_ref is not None:
            done.add((i.reference, i.delivery_ref))
    movements = repository.insert_movements(session, rows, returning=returning)
    return _Written(movements, len(rows), skipped)


# --- at the door ------------------------------------------------------------------------------


def hand_over(session: Session, delivery_refs: Sequence[str], *, actor: User | None) -> int:
    """What was issued to these deliveries reached the door: one ``handover`` movement per
    (reference, warehouse, lot) still out under each delivery. It changes no balance (the stock
    left the warehouse when it was issued, at loading); reports count these units as
    delivered, and what was issued but not handed over as on the way. Handing over twice
    writes nothing. Returns the movements written."""
    for ref in delivery_refs:
        rules.reference(ref, "delivery_ref")
    if not delivery_refs:
        return 0
    return repository.insert_handovers(
        session,
        sorted(set(delivery_refs)),
        actor_id=actor.id if actor is not None else None,
        now=clock.now(),
    )


# --- returns ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Return:
    """Put back ``quantity`` units issued under ``reference`` (to ``delivery_ref``); with
    ``write_off`` (damaged on the way) they are written off at once, noted so."""

    reference: str
    quantity: int
    delivery_ref: str | None = None
    note: str | None = None
    write_off: str | None = None


@dataclass
class Returned:
    written_off: list[int]  # units written off, per return (in the order given)
    still_reserved: set[str]  # references that hold reserved units besides what was issued
    movements: list[StockMovement]  # with ``returning`` only


def return_many(
    session: Session,
    returns: Sequence[Return],
    *,
    actor: User | None,
    returning: bool = False,
) -> Returned:
    """Put back units issued (not delivered) into the lots and warehouses they were issued
    from, latest expiry first (``Conflict`` if more is returned than is out), followed for
    ``write_off`` returns by a damage adjustment. All or nothing, in four statements."""
    for r in returns:
        rules.reference(r.reference)
        rules.positive(r.quantity)
    if not returns:
        return Returned([], set(), [])
    repository.begin_write(session)
    references = sorted({r.reference for r in returns})
    balances = repository.lock_balances_of_references(session, references)
    out: dict[str, dict[tuple[int, int], int]] = defaultdict(dict)
    reserved: dict[str, int] = defaultdict(int)
    for reference, warehouse_id, lot_id, issued, held in repository.issued_and_reserved(
        session, references
    ):
        if issued:
            out[reference][(warehouse_id, lot_id)] = issued
        reserved[reference] += held
    now = clock.now()
    rows: list[dict[str, Any]] = []
    written_off: list[int] = []
    for r in returns:
        mine = {k: v for k, v in out[r.reference].items() if v > 0}
        total = sum(mine.values())
        if r.quantity > total:
            raise Conflict(
                f"reference {r.reference!r} has {total} issued units out; cannot return "
                f"{r.quantity}",
                [FieldError(("quantity",), f"at most {total}")],
            )
        lost = 0
        for key, take in _draw(balances, mine, r.quantity, latest_first=True):
            balance = balances[key]
            out[r.reference][key] -= take
            rows.append(
                rules.apply(
                    balance,
                    MovementKind.return_,
                    actor=actor,
                    now=now,
                    d_on_hand=take,
                    reference=r.reference,
                    delivery_ref=r.delivery_ref,
                    note=r.note,
                )
            )
            if r.write_off is not None:
                lost += take
                rows.append(
                    rules.apply(
                        balance,
                        MovementKind.adjustment,
                        actor=actor,
                        now=now,
                        d_on_hand=-take,
                        reason=AdjustmentReason.damage,
                        note=r.write_off,
                    )
                )
        written_off.append(lost)
    movements = repository.insert_movements(session, rows, returning=returning)
    return Returned(written_off, {ref for ref, n in reserved.items() if n > 0}, movements)


def return_stock(
    session: Session,
    *,
    reference: str,
    quantity: int,
    actor: User | None,
    delivery_ref: str | None = None,
    note: str | None = None,
) -> list[StockMovement]:
    """Put back ``quantity`` units issued under ``reference``: a batch of one of
    :func:`return_many`."""
    ask = Return(reference, quantity, delivery_ref, note)
    return return_many(session, [ask], actor=actor, returning=True).movements
