"""All SQL of the stock ledger: write locks, balance rows, movements by reference, reports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    Integer,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    cast,
    delete,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.util import identity_key

from relieflink import clock, db
from relieflink.common import repository as common
from relieflink.db.bulk import copy_rows
from relieflink.models import (
    Item,
    Kit,
    LotSource,
    MovementKind,
    Organization,
    Pledge,
    PledgeLine,
    PledgeStatus,
    Program,
    StockBalance,
    StockLot,
    StockMovement,
    StockTransfer,
    Warehouse,
)


def begin_write(session: Session) -> None:
    """Take the database's write lock before the first read of this transaction (SQLite).

    SQLite serialises writers; a read-then-write transaction must start with ``BEGIN IMMEDIATE``
    or a concurrent writer makes it fail. When the caller's transaction is already open it is
    the caller's job to have opened it that way (the stock API routes do). PostgreSQL needs
    nothing here: the balance rows are locked with ``SELECT ... FOR UPDATE``.
    """
    db.begin_write(session)


def _item_or_kit(stmt: Select[Any], model: Any, item_id: int | None, kit_id: int | None) -> Any:
    if item_id is not None:
        return stmt.where(model.item_id == item_id)
    return stmt.where(model.kit_id == kit_id)


def fefo_order(model: Any = StockBalance) -> tuple[Any, ...]:
    """First expiry first out; lots without expiry last; then the oldest lot (in SQL: the
    order of :func:`relieflink.stock.rules.fefo_key`). ``model``: a mapped class or a table's
    columns."""
    return (model.expiry.is_(None), model.expiry, model.lot_id)


def not_expired(model: Any, today: Any) -> Any:
    """The rows whose lot has not expired on ``today`` (in SQL: not
    :func:`relieflink.stock.rules.expired`)."""
    return or_(model.expiry.is_(None), model.expiry >= today)


def lock_balances_of(
    session: Session, *, warehouse_id: int, item_id: int | None, kit_id: int | None
) -> list[StockBalance]:
    """Every balance row of one item (or kit) in one warehouse, locked, in FEFO order."""
    stmt = select(StockBalance).where(StockBalance.warehouse_id == warehouse_id)
    stmt = _item_or_kit(stmt, StockBalance, item_id, kit_id)
    stmt = stmt.order_by(*fefo_order()).with_for_update()
    return list(session.scalars(stmt.execution_options(populate_existing=True)))


# The reservation path runs on every reservation the API takes, so its statements are built once
# (bound parameters, Core on the tables) and run on the session's connection: no per-call
# expression building and no ORM result processing.
_BAL: Table = StockBalance.__table__  # type: ignore[assignment]
_MOV: Table = StockMovement.__table__  # type: ignore[assignment]


def _lock_free(column: Any) -> Select[Any]:
    return (
        select(_BAL.c.id, _BAL.c.lot_id, _BAL.c.on_hand - _BAL.c.reserved)
        .where(
            _BAL.c.warehouse_id == bindparam("warehouse_id"),
            column == bindparam("what_id"),
            not_expired(_BAL.c, bindparam("today")),
            _BAL.c.on_hand > _BAL.c.reserved,
        )
        .order_by(*fefo_order(_BAL.c))
        .with_for_update()
    )


_LOCK_FREE_ITEM = _lock_free(_BAL.c.item_id)
_LOCK_FREE_KIT = _lock_free(_BAL.c.kit_id)
_HAS_RESERVATION = (
    select(_MOV.c.id)
    .where(_MOV.c.reference == bindparam("reference"), _MOV.c.kind == MovementKind.reservation)
    .limit(1)
)
_ADD_RESERVED_UNITS = (
    update(_BAL)
    .where(
        _BAL.c.id == bindparam("balance_id"),
        _BAL.c.on_hand - _BAL.c.reserved >= bindparam("units"),
    )
    .values(reserved=_BAL.c.reserved + bindparam("units"))
)
_ADD_RESERVED = _ADD_RESERVED_UNITS.where(~_HAS_RESERVATION.exists())
_INSERT_MOVEMENT = insert(_MOV).returning(_MOV.c.id, sort_by_parameter_order=True)
_BLANK_MOVEMENT: dict[str, Any] = {c.key: None for c in _MOV.c if c.key != "id"}


def lock_free_balances(
    session: Session, *, warehouse_id: int, item_id: int | None, kit_id: int | None, today: date
) -> list[tuple[int, int, int]]:
    """(balance id, lot id, free units) of the rows of one item (or kit) in one warehouse that
    can be reserved from (not expired, on hand > reserved), locked, in FEFO order.

    On PostgreSQL a row another transaction holds is waited for and then checked again against
    the WHERE clause (so a row filled meanwhile drops out); rows are locked in FEFO order, the
    same order for every reservation of the item, so two reservations cannot deadlock on them.
    """
    session.flush()  # Core statements below do not autoflush pending ORM changes
    stmt, what = (_LOCK_FREE_ITEM, item_id) if item_id is not None else (_LOCK_FREE_KIT, kit_id)
    params = {"warehouse_id": warehouse_id, "what_id": what, "today": today}
    return [(r[0], r[1], r[2]) for r in session.connection().execute(stmt, params)]


def has_reservation(session: Session, reference: str) -> bool:
    """Whether ``reference`` has any reservation movement (an index lookup)."""
    found = session.connection().execute(_HAS_RESERVATION, {"reference": reference}).first()
    return found is not None


def reserved_references(session: Session, references: Sequence[str]) -> set[str]:
    """Which of ``references`` have a reservation movement already."""
    found: set[str] = set()
    for start in range(0, len(references), 5000):
        chunk = list(references[start : start + 5000])
        found.update(
            r
            for r in session.scalars(
                select(StockMovement.reference).where(
                    StockMovement.reference.in_(chunk),
                    StockMovement.kind == MovementKind.reservation,
                )
            )
            if r is not None
        )
    return found


def add_reserved(session: Session, balance_id: int, units: int, *, reference: str | None) -> bool:
    """Reserve ``units`` more on one (locked) balance row, only if that many are free and (when
    ``reference`` is given) ``reference`` has no reservation yet; False if not (the row is left
    as it was: see :func:`has_reservation` for which).

    A single conditional UPDATE. The unit guard repeats in SQL what the caller checked under the
    row lock (the table's CHECK constraints stand behind both). The reference guard is the
    "reserve once" check, read by this statement after the row lock was taken: a concurrent
    reservation of the same reference and rows has committed by then, so it is seen. An ORM
    object of the row already in this session is expired so that it rereads the new figures.
    """
    stmt = _ADD_RESERVED if reference is not None else _ADD_RESERVED_UNITS
    result = session.connection().execute(
        stmt, {"balance_id": balance_id, "units": units, "reference": reference}
    )
    if result.rowcount != 1:
        return False
    stale = session.identity_map.get(identity_key(StockBalance, balance_id))
    if stale is not None:
        session.expire(stale, ["reserved"])
    return True


def add_reserved_many(session: Session, units: dict[int, int]) -> bool:
    """:func:`add_reserved` without the reference guard for many (locked) rows, balance id →
    units, in one ``executemany``; False if a row had too few free units (where the driver
    reports it)."""
    if not units:
        return True
    params = [{"balance_id": b, "units": n, "reference": None} for b, n in units.items()]
    result = session.connection().execute(_ADD_RESERVED_UNITS, params)
    for balance_id in units:
        stale = session.identity_map.get(identity_key(StockBalance, balance_id))
        if stale is not None:
            session.expire(stale, ["reserved"])
    sane = session.get_bind().dialect.supports_sane_multi_rowcount
    return not sane or result.rowcount in (-1, len(params))


def insert_movements(
    session: Session, rows: Sequence[dict[str, Any]], *, returning: bool
) -> list[StockMovement]:
    """Insert movements (after flushing the balance rows they changed): with ``returning``, in
    one INSERT ... RETURNING, given back as persistent objects of ``session`` (built from the
    values given and the ids returned, with no second read); without, as fast as the database
    can (COPY on PostgreSQL, for a city's worth of rows) and nothing is given back."""
    session.flush()  # Core statements below do not autoflush pending ORM changes
    if not rows:
        return []
    if not returning:
        # As given: one COPY (or executemany) needs rows with the same keys, which the
        # ledger's row builders give (every delta and ``created_at`` included).
        columns = list(rows[0])
        copy_rows(session, _MOV, columns, (tuple(row[c] for c in columns) for row in rows))
        return []
    now = clock.now()
    full = [_BLANK_MOVEMENT | {"created_at": now} | row for row in rows]
    for row in full:
        for delta in ("d_on_hand", "d_reserved", "d_in_transit"):
            row[delta] = row[delta] or 0
    conn = session.connection()
    if len(full) == 1:
        ids = [conn.execute(_INSERT_MOVEMENT, full[0]).scalar_one()]
    else:
        ids = list(conn.execute(_INSERT_MOVEMENT, full).scalars())
    out = []
    for id_, row in zip(ids, full, strict=True):
        movement = StockMovement(id=id_, **row)
        make_transient_to_detached(movement)
        session.add(movement)
        out.append(movement)
    return out


def lock_balance_pairs(session: Session, pairs: Iterable[tuple[int, int]]) -> list[StockBalance]:
    """The balance rows of these (warehouse, lot) pairs, locked in a fixed order (by id)."""
    wanted = sorted(set(pairs))
    if not wanted:
        return []
    stmt = (
        select(StockBalance)
        .where(tuple_(StockBalance.warehouse_id, StockBalance.lot_id).in_(wanted))
        .order_by(StockBalance.id)
        .with_for_update()
    )
    return list(session.scalars(stmt.execution_options(populate_existing=True)))


def lock_balances_of_references(
    session: Session, references: Sequence[str]
) -> dict[tuple[int, int], StockBalance]:
    """The balance rows these references ever moved, per (warehouse, lot), locked in a fixed
    order (by id) in one statement, read afresh."""
    where = (
        StockMovement.reference == references[0]
        if len(references) == 1
        else StockMovement.reference.in_(list(references))
    )
    touched = select(StockMovement.warehouse_id, StockMovement.lot_id).where(where).distinct()
    stmt = (
        select(StockBalance)
        .where(tuple_(StockBalance.warehouse_id, StockBalance.lot_id).in_(touched))
        .order_by(StockBalance.id)
        .with_for_update()
    )
    return {
        (b.warehouse_id, b.lot_id): b
        for b in session.scalars(stmt.execution_options(populate_existing=True))
    }


def reserved_by_delivery(
    session: Session, references: Sequence[str]
) -> list[tuple[str, int, int, int, str | None]]:
    """(reference, warehouse, lot, reserved units, delivery) over the movements of
    ``references``, grouped by delivery: issues carry their delivery (reservations and releases
    none, returns no reserved units), so a group with a delivery and units taken is an issue
    made."""
    rows = session.execute(
        select(
            StockMovement.reference,
            StockMovement.warehouse_id,
            StockMovement.lot_id,
            func.sum(StockMovement.d_reserved),
            StockMovement.delivery_ref,
        )
        .where(StockMovement.reference.in_(list(references)))
        .group_by(
            StockMovement.reference,
            StockMovement.warehouse_id,
            StockMovement.lot_id,
            StockMovement.delivery_ref,
        )
        .having(func.sum(StockMovement.d_reserved) != 0)
    )
    return [(str(r), int(w), int(lot), int(q), d) for r, w, lot, q, d in rows]


def _handovers(one_of: common.OneOfParam) -> Any:
    """``insert_handovers``'s statement, built once (it runs for every delivered parcel)."""
    moved = StockMovement.kind.in_([MovementKind.issue, MovementKind.return_])
    out = func.sum(case((moved, -StockMovement.d_on_hand), else_=0))
    handed = func.sum(case((StockMovement.kind == MovementKind.handover, 1), else_=0))
    table = _MOV
    source = (
        select(
            literal(MovementKind.handover.value, String),
            StockMovement.warehouse_id,
            StockMovement.lot_id,
            StockMovement.item_id,
            StockMovement.kit_id,
            literal(0),
            literal(0),
            literal(0),
            StockMovement.reference,
            StockMovement.delivery_ref,
            cast(out, String) + literal(" at the door", String),
            bindparam("actor", type_=Integer),
            bindparam("now", type_=table.c.created_at.type),
        )
        .where(one_of(StockMovement.delivery_ref, "refs"))
        .group_by(
            StockMovement.reference,
            StockMovement.delivery_ref,
            StockMovement.warehouse_id,
            StockMovement.lot_id,
            StockMovement.item_id,
            StockMovement.kit_id,
        )
        .having(out > 0, handed == 0)
    )
    names = ["kind", "warehouse_id", "lot_id", "item_id", "kit_id", "d_on_hand", "d_reserved",
             "d_in_transit", "reference", "delivery_ref", "note", "actor_id",
             "created_at"]  # fmt: skip
    return insert(table).from_select(names, source).returning(table.c.id)


_HANDOVERS = common.Prebuilt(_handovers)


def insert_handovers(
    session: Session, delivery_refs: Sequence[str], *, actor_id: int | None, now: datetime
) -> int:
    """One statement: a ``handover`` movement (no balance change) per (reference, delivery,
    warehouse, lot) of ``delivery_refs`` with units issued and not returned, and no handover
    yet. Returns the movements written."""
    session.flush()  # a Core statement does not autoflush pending ORM changes
    params = {"refs": list(delivery_refs), "actor": actor_id, "now": now}
    return len(session.connection().execute(_HANDOVERS(session), params).all())


def delivered_by_lot(session: Session, lot_ids: Iterable[int] | None) -> dict[int, int]:
    """Per lot: units handed over at the door (issued, not returned, under a (reference,
    delivery) that has a handover). One pass over the lots' movements, grouped by (reference,
    delivery, warehouse, lot), the key a handover is written under (``insert_handovers``): a
    self-join on (reference, delivery, lot) made SQLite walk every movement of the lot for each
    handover, quadratic in the deliveries of a lot (the demo's reconciliation and donor trace,
    two calls a policy: 3 CPU s a call at 10,000 households, about 13 s at 30,000; now 0.02 s)."""
    moved = StockMovement.kind.in_([MovementKind.issue, MovementKind.return_])
    handed = func.max(case((StockMovement.kind == MovementKind.handover, 1), else_=0))
    per_delivery = (
        select(
            StockMovement.lot_id.label("lot_id"),
            func.sum(case((moved, -StockMovement.d_on_hand), else_=0)).label("units"),
        )
        .where(
            StockMovement.kind.in_(
                [MovementKind.issue, MovementKind.return_, MovementKind.handover]
            ),
            StockMovement.reference.is_not(None),
            StockMovement.delivery_ref.is_not(None),
        )
        .group_by(
            StockMovement.reference,
            StockMovement.delivery_ref,
            StockMovement.warehouse_id,
            StockMovement.lot_id,
        )
        .having(handed == 1)
    )
    if lot_ids is not None:
        ids = list(set(lot_ids))
        of_lots = StockMovement.lot_id.in_(ids) if ids else false()
        per_delivery = per_delivery.where(of_lots)
    sub = per_delivery.subquery()
    stmt = select(sub.c.lot_id, func.sum(sub.c.units)).group_by(sub.c.lot_id)
    return {int(lot): int(units or 0) for lot, units in session.execute(stmt)}


def issued_and_reserved(
    session: Session, references: Sequence[str]
) -> list[tuple[str, int, int, int, int]]:
    """(reference, warehouse, lot, units issued and not returned, units still reserved)."""
    moved = StockMovement.kind.in_([MovementKind.issue, MovementKind.return_])
    rows = session.execute(
        select(
            StockMovement.reference,
            StockMovement.warehouse_id,
            StockMovement.lot_id,
            func.sum(case((moved, StockMovement.d_on_hand), else_=0)),
            func.sum(StockMovement.d_reserved),
        )
        .where(StockMovement.reference.in_(list(references)))
        .group_by(StockMovement.reference, StockMovement.warehouse_id, StockMovement.lot_id)
    )
    return [(str(r), int(w), int(lot), -int(o or 0), int(q or 0)) for r, w, lot, o, q in rows]


def ensure_balance(session: Session, *, warehouse_id: int, lot: StockLot) -> None:
    """Create the (warehouse, lot) balance row if it does not exist (safe under concurrency)."""
    values = {
        "warehouse_id": warehouse_id,
        "lot_id": lot.id,
        "item_id": lot.item_id,
        "kit_id": lot.kit_id,
        "expiry": lot.expiry,
        "on_hand": 0,
        "reserved": 0,
        "in_transit": 0,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(StockBalance)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["warehouse_id", "lot_id"])
    )


def movements_by_reference(
    session: Session, reference: str, kinds: Sequence[MovementKind] | None = None
) -> list[StockMovement]:
    stmt = select(StockMovement).where(StockMovement.reference == reference)
    if kinds:
        stmt = stmt.where(StockMovement.kind.in_(list(kinds)))
    return list(session.scalars(stmt.order_by(StockMovement.id)))


def lots_by_id(session: Session, ids: Iterable[int]) -> dict[int, StockLot]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    return {lot.id: lot for lot in session.scalars(select(StockLot).where(StockLot.id.in_(wanted)))}


def sources_of(session: Session, lot_ids: Iterable[int]) -> dict[int, list[LotSource]]:
    wanted = list(set(lot_ids))
    out: dict[int, list[LotSource]] = {i: [] for i in wanted}
    if not wanted:
        return out
    stmt = select(LotSource).where(LotSource.lot_id.in_(wanted)).order_by(LotSource.id)
    for source in session.scalars(stmt):
        out[source.lot_id].append(source)
    return out


def available_rows(
    session: Session,
    *,
    today: date,
    warehouse_id: int | None = None,
    item_id: int | None = None,
    kit_id: int | None = None,
    kits: bool | None = None,
) -> list[tuple[int, int | None, int | None, int]]:
    """(warehouse, item, kit, on hand − reserved) over non-expired lots, summed."""
    stmt = select(
        StockBalance.warehouse_id,
        StockBalance.item_id,
        StockBalance.kit_id,
        func.sum(StockBalance.on_hand - StockBalance.reserved),
    ).where(not_expired(StockBalance, today))
    if warehouse_id is not None:
        stmt = stmt.where(StockBalance.warehouse_id == warehouse_id)
    if item_id is not None:
        stmt = stmt.where(StockBalance.item_id == item_id)
    if kit_id is not None:
        stmt = stmt.where(StockBalance.kit_id == kit_id)
    if kits is True:
        stmt = stmt.where(StockBalance.kit_id.is_not(None))
    elif kits is False:
        stmt = stmt.where(StockBalance.item_id.is_not(None))
    stmt = stmt.group_by(StockBalance.warehouse_id, StockBalance.item_id, StockBalance.kit_id)
    return [(w, i, k, int(q or 0)) for w, i, k, q in session.execute(stmt).all()]


def on_hand_rows(
    session: Session,
    *,
    warehouse_id: int | None,
    item_id: int | None,
    kit_id: int | None,
) -> list[Any]:
    """Stock on hand by warehouse, item/kit and expiry (from the balance table)."""
    stmt = select(
        StockBalance.warehouse_id,
        StockBalance.item_id,
        StockBalance.kit_id,
        StockBalance.expiry,
        func.sum(StockBalance.on_hand).label("on_hand"),
        func.sum(StockBalance.reserved).label("reserved"),
        func.sum(StockBalance.in_transit).label("in_transit"),
    )
    if warehouse_id is not None:
        stmt = stmt.where(StockBalance.warehouse_id == warehouse_id)
    if item_id is not None:
        stmt = stmt.where(StockBalance.item_id == item_id)
    if kit_id is not None:
        stmt = stmt.where(StockBalance.kit_id == kit_id)
    stmt = stmt.group_by(
        StockBalance.warehouse_id, StockBalance.item_id, StockBalance.kit_id, StockBalance.expiry
    ).having(or_(func.sum(StockBalance.on_hand) != 0, func.sum(StockBalance.in_transit) != 0))
    stmt = stmt.order_by(
        StockBalance.warehouse_id, StockBalance.item_id, StockBalance.kit_id, *fefo_order()[:2]
    )
    return list(session.execute(stmt).all())


def expiring_balances(session: Session, *, until: date) -> list[StockBalance]:
    stmt = (
        select(StockBalance)
        .where(StockBalance.expiry.is_not(None), StockBalance.expiry <= until)
        .where(StockBalance.on_hand > 0)
        .order_by(StockBalance.expiry, StockBalance.warehouse_id, StockBalance.lot_id)
    )
    return list(session.scalars(stmt))


def lot_state_totals(session: Session, lot_ids: Iterable[int] | None) -> dict[int, dict[str, int]]:
    """Per lot: on hand, in transit (balances) and the net of each movement kind (ledger)."""
    out: dict[int, dict[str, int]] = {}
    bal = select(
        StockBalance.lot_id, func.sum(StockBalance.on_hand), func.sum(StockBalance.in_transit)
    ).group_by(StockBalance.lot_id)
    mov = select(
        StockMovement.lot_id, StockMovement.kind, func.sum(StockMovement.d_on_hand)
    ).group_by(StockMovement.lot_id, StockMovement.kind)
    if lot_ids is not None:
        ids = list(set(lot_ids))
        bal = bal.where(StockBalance.lot_id.in_(ids)) if ids else bal.where(false())
        mov = mov.where(StockMovement.lot_id.in_(ids)) if ids else mov.where(false())
    for lot_id, on_hand, in_transit in session.execute(bal).all():
        out.setdefault(lot_id, {})
        out[lot_id]["on_hand"] = int(on_hand or 0)
        out[lot_id]["in_transit"] = int(in_transit or 0)
    for lot_id, kind, total in session.execute(mov).all():
        out.setdefault(lot_id, {})[str(kind)] = int(total or 0)
    return out


def all_sources(session: Session, donor_org_id: int | None) -> list[tuple[LotSource, StockLot]]:
    stmt = select(LotSource, StockLot).join(StockLot, StockLot.id == LotSource.lot_id)
    if donor_org_id is not None:
        stmt = stmt.where(LotSource.donor_org_id == donor_org_id)
    return [(s, lot) for s, lot in session.execute(stmt.order_by(LotSource.id)).all()]


def pledged_lines(
    session: Session, donor_org_id: int | None, program_id: int | None = None
) -> list[tuple[int, int | None, int | None, int, int]]:
    """(donor, item, kit, quantity, value) over the lines of pledges not cancelled."""
    stmt = (
        select(
            Pledge.donor_org_id,
            PledgeLine.item_id,
            PledgeLine.kit_id,
            func.sum(PledgeLine.quantity),
            func.sum(PledgeLine.quantity * PledgeLine.unit_value_fen),
        )
        .join(Pledge, Pledge.id == PledgeLine.pledge_id)
        .where(Pledge.status != PledgeStatus.cancelled)
        .group_by(Pledge.donor_org_id, PledgeLine.item_id, PledgeLine.kit_id)
    )
    if donor_org_id is not None:
        stmt = stmt.where(Pledge.donor_org_id == donor_org_id)
    if program_id is not None:
        stmt = stmt.where(Pledge.program_id == program_id)
    return [(d, i, k, int(q or 0), int(v or 0)) for d, i, k, q, v in session.execute(stmt).all()]


def transfer_lines(session: Session, transfer_id: int) -> list[StockMovement]:
    stmt = (
        select(StockMovement)
        .where(
            StockMovement.transfer_id == transfer_id,
            StockMovement.kind == MovementKind.transfer_in_transit,
        )
        .order_by(StockMovement.id)
    )
    return list(session.scalars(stmt))


def lock_transfer(session: Session, transfer_id: int) -> StockTransfer | None:
    stmt = select(StockTransfer).where(StockTransfer.id == transfer_id).with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()


def list_movements(
    session: Session,
    *,
    warehouse_id: int | None,
    lot_id: int | None,
    reference: str | None,
    offset: int,
    limit: int,
) -> tuple[list[StockMovement], int]:
    conds = []
    if warehouse_id is not None:
        conds.append(StockMovement.warehouse_id == warehouse_id)
    if lot_id is not None:
        conds.append(StockMovement.lot_id == lot_id)
    if reference is not None:
        conds.append(StockMovement.reference == reference)
    where = and_(*conds) if conds else None
    count = select(func.count()).select_from(StockMovement)
    stmt = select(StockMovement)
    if where is not None:
        count = count.where(where)
        stmt = stmt.where(where)
    total = session.scalar(count) or 0
    rows = session.scalars(stmt.order_by(StockMovement.id).offset(offset).limit(limit)).all()
    return list(rows), total


def ledger_mismatches(session: Session) -> list[tuple[int, int, int, int, int, int, int, int]]:
    """Balance rows that differ from the sum of their movements (should always be empty)."""
    sums = (
        select(
            StockMovement.warehouse_id.label("w"),
            StockMovement.lot_id.label("lot"),
            func.sum(StockMovement.d_on_hand).label("oh"),
            func.sum(StockMovement.d_reserved).label("rs"),
            func.sum(StockMovement.d_in_transit).label("it"),
        )
        .group_by(StockMovement.warehouse_id, StockMovement.lot_id)
        .subquery()
    )
    stmt = (
        select(
            StockBalance.warehouse_id,
            StockBalance.lot_id,
            StockBalance.on_hand,
            func.coalesce(sums.c.oh, 0),
            StockBalance.reserved,
            func.coalesce(sums.c.rs, 0),
            StockBalance.in_transit,
            func.coalesce(sums.c.it, 0),
        )
        .outerjoin(
            sums,
            and_(sums.c.w == StockBalance.warehouse_id, sums.c.lot == StockBalance.lot_id),
        )
        .where(
            or_(
                StockBalance.on_hand != func.coalesce(sums.c.oh, 0),
                StockBalance.reserved != func.coalesce(sums.c.rs, 0),
                StockBalance.in_transit != func.coalesce(sums.c.it, 0),
            )
        )
    )
    rows = [tuple(int(x) for x in r) for r in session.execute(stmt).all()]
    # Movements whose (warehouse, lot) has no balance row at all.
    orphan = (
        select(sums.c.w, sums.c.lot)
        .outerjoin(
            StockBalance,
            and_(sums.c.w == StockBalance.warehouse_id, sums.c.lot == StockBalance.lot_id),
        )
        .where(StockBalance.id.is_(None))
    )
    rows += [(int(w), int(lot), -1, -1, -1, -1, -1, -1) for w, lot in session.execute(orphan)]
    return rows  # type: ignore[return-value]


def lots_of_receipt(session: Session, receipt_id: int) -> list[StockLot]:
    stmt = select(StockLot).where(StockLot.receipt_id == receipt_id).order_by(StockLot.id)
    return list(session.scalars(stmt))


def sku_ids(session: Session, sku: str) -> tuple[int | None, int | None] | None:
    item_id = session.scalar(select(Item.id).where(Item.sku == sku))
    if item_id is not None:
        return item_id, None
    kit_id = session.scalar(select(Kit.id).where(Kit.sku == sku))
    return (None, kit_id) if kit_id is not None else None


def warehouse_id(session: Session, code: str) -> int | None:
    return session.scalar(select(Warehouse.id).where(Warehouse.code == code))


def org_id(session: Session, code: str) -> int | None:
    return session.scalar(select(Organization.id).where(Organization.code == code))


def sku_names(session: Session) -> dict[tuple[str, int | None], str]:
    out: dict[tuple[str, int | None], str] = {}
    out.update({("item", i): sku for i, sku in session.execute(select(Item.id, Item.sku))})
    out.update({("kit", i): sku for i, sku in session.execute(select(Kit.id, Kit.sku))})
    return out


def warehouse_codes(session: Session) -> dict[int, str]:
    return {int(i): str(c) for i, c in session.execute(select(Warehouse.id, Warehouse.code))}


def org_codes(session: Session) -> dict[int, str]:
    rows = session.execute(select(Organization.id, Organization.code))
    return {int(i): str(c) for i, c in rows}


def rebuild_balances(session: Session) -> int:
    """Recompute every balance row from the movements (one INSERT ... SELECT ... GROUP BY)."""
    session.execute(delete(StockBalance))
    sums = (
        select(
            StockMovement.warehouse_id,
            StockMovement.lot_id,
            StockLot.item_id,
            StockLot.kit_id,
            StockLot.expiry,
            func.sum(StockMovement.d_on_hand),
            func.sum(StockMovement.d_reserved),
            func.sum(StockMovement.d_in_transit),
        )
        .join(StockLot, StockLot.id == StockMovement.lot_id)
        .group_by(
            StockMovement.warehouse_id,
            StockMovement.lot_id,
            StockLot.item_id,
            StockLot.kit_id,
            StockLot.expiry,
        )
    )
    columns = ["warehouse_id", "lot_id", "item_id", "kit_id", "expiry", "on_hand", "reserved",
               "in_transit"]  # fmt: skip
    session.execute(insert(StockBalance).from_select(columns, sums))
    return int(session.scalar(select(func.count()).select_from(StockBalance)) or 0)


# --- for the web pages (transfers list, lots of a warehouse, programs of lots) ------------------


def list_transfers(
    session: Session,
    *,
    warehouse_id: int | None,
    status: str | None,
    offset: int,
    limit: int,
) -> tuple[list[StockTransfer], int]:
    """Shipments leaving or reaching ``warehouse_id`` (any when None), newest first."""
    stmt = select(StockTransfer)
    if warehouse_id is not None:
        stmt = stmt.where(
            or_(
                StockTransfer.from_warehouse_id == warehouse_id,
                StockTransfer.to_warehouse_id == warehouse_id,
            )
        )
    if status is not None:
        stmt = stmt.where(StockTransfer.status == status)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(StockTransfer.id.desc()).offset(offset).limit(limit))
    return list(rows), total


def balances_with_stock(session: Session, *, warehouse_id: int | None) -> list[StockBalance]:
    """Balance rows holding units on hand, per warehouse in FEFO order."""
    stmt = select(StockBalance).where(StockBalance.on_hand > 0)
    if warehouse_id is not None:
        stmt = stmt.where(StockBalance.warehouse_id == warehouse_id)
    return list(session.scalars(stmt.order_by(StockBalance.warehouse_id, *fefo_order())))


def lot_programs(session: Session, lot_ids: Iterable[int]) -> dict[int, int | None]:
    """The program of each lot's pledge (None: received without a pledge)."""
    ids = list(set(lot_ids))
    if not ids:
        return {}
    stmt = (
        select(StockLot.id, Pledge.program_id)
        .outerjoin(Pledge, Pledge.id == StockLot.pledge_id)
        .where(StockLot.id.in_(ids))
    )
    return {int(lot_id): program_id for lot_id, program_id in session.execute(stmt).all()}


# --- for the exports (IATI, HXL) ---------------------------------------------------------------

T = TypeVar("T")


def all_of(session: Session, model: type[T]) -> list[T]:
    """Every row of a small reference table (organizations, items, kits, warehouses) or of the
    lots and their sources, for a whole-ledger export."""
    return list(session.scalars(select(model)))


def receipt_lot_programs(session: Session) -> dict[int, int]:
    """The program of every receipt lot received against a pledge."""
    rows = session.execute(
        select(StockLot.id, Pledge.program_id).join(Pledge, Pledge.id == StockLot.pledge_id)
    ).all()
    return {int(lot_id): int(program_id) for lot_id, program_id in rows}


def _at_door() -> Any:
    """Per (reference, delivery, warehouse, lot) handed over at the door: the units issued to
    it (net of returns) and when the handover was recorded."""
    handover = (
        select(
            StockMovement.reference,
            StockMovement.delivery_ref,
            StockMovement.warehouse_id,
            StockMovement.lot_id,
            func.min(StockMovement.created_at).label("at"),
        )
        .where(StockMovement.kind == MovementKind.handover)
        .group_by(
            StockMovement.reference,
            StockMovement.delivery_ref,
            StockMovement.warehouse_id,
            StockMovement.lot_id,
        )
        .subquery()
    )
    return (
        select(
            handover.c.warehouse_id,
            handover.c.lot_id,
            handover.c.delivery_ref,
            handover.c.at,
            func.sum(-StockMovement.d_on_hand).label("units"),
        )
        .join(
            handover,
            (handover.c.reference == StockMovement.reference)
            & (handover.c.delivery_ref == StockMovement.delivery_ref)
            & (handover.c.warehouse_id == StockMovement.warehouse_id)
            & (handover.c.lot_id == StockMovement.lot_id),
        )
        .where(StockMovement.kind.in_([MovementKind.issue, MovementKind.return_]))
        .group_by(
            handover.c.warehouse_id, handover.c.lot_id, handover.c.delivery_ref, handover.c.at
        )
    )


def handovers_of_lots(session: Session, lot_ids: Sequence[int]) -> list[tuple[int, datetime, int]]:
    """(lot, when, units) of every handover at the door out of these lots."""
    q = _at_door().subquery()
    rows = session.execute(select(q.c.lot_id, q.c.at, q.c.units).where(q.c.lot_id.in_(lot_ids)))
    return [(int(lot), at, int(units or 0)) for lot, at, units in rows]


def program_pledges(session: Session, program_id: int) -> list[Pledge]:
    """The program's pledges that were not cancelled, oldest first."""
    stmt = (
        select(Pledge)
        .where(Pledge.program_id == program_id, Pledge.status != PledgeStatus.cancelled)
        .order_by(Pledge.id)
    )
    return list(session.scalars(stmt))


def balances_by_lot(session: Session) -> list[tuple[int, int, int, int]]:
    """(warehouse, lot, on hand, in transit to the warehouse) of every balance row."""
    rows = session.execute(
        select(
            StockBalance.warehouse_id,
            StockBalance.lot_id,
            StockBalance.on_hand,
            StockBalance.in_transit,
        )
    )
    return [(int(w), int(lot), int(q), int(t)) for w, lot, q, t in rows]


def shipment_programs(session: Session) -> dict[tuple[int, int], int]:
    """The program of the shipments that brought each lot to a warehouse (the latest one wins),
    by (destination warehouse, lot)."""
    rows = session.execute(
        select(StockTransfer.to_warehouse_id, StockMovement.lot_id, StockTransfer.program_id)
        .join(StockTransfer, StockTransfer.id == StockMovement.transfer_id)
        .where(
            StockMovement.kind == MovementKind.transfer_in_transit,
            StockTransfer.program_id.is_not(None),
        )
        .order_by(StockMovement.id)
    )
    return {(int(w), int(lot)): int(p) for w, lot, p in rows if p is not None}


def delivered_by_delivery(session: Session) -> list[tuple[int, int, int, str]]:
    """(warehouse, lot, units handed over at the door, delivery) per delivery."""
    q = _at_door().subquery()
    rows = session.execute(select(q.c.warehouse_id, q.c.lot_id, q.c.units, q.c.delivery_ref))
    return [(int(w), int(lot), int(units or 0), str(ref)) for w, lot, units, ref in rows]


def programs_in_country(session: Session, country: str) -> list[int]:
    """The ids of the programs run in ``country`` (ISO 3166-1 alpha-2)."""
    return list(session.scalars(select(Program.id).where(Program.country == country)))


def program_transfers(session: Session, program_id: int) -> list[StockTransfer]:
    """The program's cross-border shipments, oldest first."""
    stmt = (
        select(StockTransfer)
        .where(StockTransfer.program_id == program_id, StockTransfer.cross_border.is_(True))
        .order_by(StockTransfer.id)
    )
    return list(session.scalars(stmt))
