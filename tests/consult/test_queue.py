"""The doctors' queue: ordering, specialty and language matching, no double assignment."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.consult import service as consult
from relieflink.db import get_sessionmaker
from relieflink.errors import Conflict
from relieflink.models import Consultation, User
from tests.consult.factories import (
    make_consultation,
    make_doctor,
    make_household_with_resident,
)


def take(db: Session, doctor: User) -> Consultation | None:
    db.commit()  # take_next starts its own transaction (SQLite: the write lock comes first)
    taken = consult.take_next(db, actor=doctor)
    db.commit()
    return taken


def test_most_urgent_first_then_most_overdue(db: Session) -> None:
    _, resident = make_household_with_resident(db)
    now = clock.now()
    # Created in an order that is NOT the expected order of taking.
    cough_old = make_consultation(
        db, resident, answers={"cough_or_sore_throat": True}, now=now - timedelta(hours=30)
    )
    cough_new = make_consultation(db, resident, answers={"cough_or_sore_throat": True}, now=now)
    pain = make_consultation(db, resident, answers={"pain": "severe"}, now=now)
    emergency = make_consultation(db, resident, answers={"bleeding": "heavy"}, now=now)
    # Urgent but with a long target elapsed: more overdue than the fresh "urgent" one.
    pain_old = make_consultation(
        db, resident, answers={"pain": "severe"}, now=now - timedelta(hours=3)
    )
    doctor = make_doctor(db, ("general",))
    order = [take(db, doctor) for _ in range(6)]
    assert [c.id if c else None for c in order] == [
        emergency.id,
        pain_old.id,
        pain.id,
        cough_old.id,
        cough_new.id,
        None,
    ]
    assert all(c.doctor_id == doctor.id and c.status == "in_progress" for c in order if c)


def test_waiting_queue_lists_in_taking_order(db: Session) -> None:
    _, resident = make_household_with_resident(db)
    a = make_consultation(db, resident, answers={"cough_or_sore_throat": True})
    b = make_consultation(db, resident, answers={"chest_pain": "mild"}, specialty="general")
    doctor = make_doctor(db, ("general",))
    db.commit()
    assert [c.id for c in consult.waiting_queue(db, actor=doctor)] == [b.id, a.id]


def test_specialty_and_language_matching(db: Session) -> None:
    _, resident = make_household_with_resident(db)
    infant = make_consultation(
        db, resident, age_band="infant", member_label="infant", answers={"fever": "below_38_5"}
    )
    pregnant = make_consultation(db, resident, pregnant=True, member_label="mother")
    english = make_consultation(db, resident, language="en", specialty="general")
    paediatrician = make_doctor(db, ("paediatrics",), ("zh",))
    obstetrician = make_doctor(db, ("obstetrics",), ("zh",))
    gp_zh = make_doctor(db, ("general",), ("zh",))
    gp_en = make_doctor(db, ("general",), ("en",))
    assert infant.specialty == "paediatrics"
    assert pregnant.specialty == "obstetrics"
    assert take(db, gp_zh) is None  # nothing in general for Chinese speakers
    taken = take(db, paediatrician)
    assert taken is not None and taken.id == infant.id
    assert take(db, paediatrician) is None
    taken = take(db, obstetrician)
    assert taken is not None and taken.id == pregnant.id
    taken = take(db, gp_en)
    assert taken is not None and taken.id == english.id


def test_a_doctor_off_shift_cannot_take(db: Session) -> None:
    _, resident = make_household_with_resident(db)
    make_consultation(db, resident)
    doctor = make_doctor(db)
    consult.end_shift(db, actor=doctor)
    db.commit()
    with pytest.raises(Conflict):
        consult.take_next(db, actor=doctor)


@pytest.mark.parametrize(("doctors", "consultations"), [(8, 40), (8, 5)])
def test_concurrent_doctors_never_take_the_same_consultation(
    db: Session, doctors: int, consultations: int
) -> None:
    _, resident = make_household_with_resident(db)
    for i in range(consultations):
        make_consultation(db, resident, answers={"pain": ["none", "moderate", "severe"][i % 3]})
    staff = [make_doctor(db) for _ in range(doctors)]
    db.commit()
    doctor_ids = [d.id for d in staff]
    taken: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(doctors)
    lock = threading.Lock()

    def work(doctor: User) -> None:
        barrier.wait()
        try:
            while True:
                with get_sessionmaker()() as session:
                    got = consult.take_next(session, actor=doctor)
                    session.commit()
                if got is None:
                    return
                with lock:
                    taken.append((got.id, doctor.id))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(d,)) for d in staff]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    counts = Counter(cid for cid, _ in taken)
    assert all(n == 1 for n in counts.values()), counts.most_common(3)
    assert len(counts) == consultations
    # What the database says agrees with what the doctors were told.
    db.expire_all()
    rows = db.execute(select(Consultation.id, Consultation.doctor_id, Consultation.status)).all()
    assert {(cid, did) for cid, did, _ in rows} == set(taken)
    assert {s for _, _, s in rows} == {"in_progress"}
    assert {did for _, did, _ in rows} <= set(doctor_ids)
