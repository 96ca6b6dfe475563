"""Shared set-up for the consultation benchmarks: a fresh database with residents, doctors,
consultations (triaged by the real service) and session tokens."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.consult import service as consult
from relieflink.consult.schemas import ConsultationCreate, DoctorShift
from relieflink.db.engine import build_engine
from relieflink.db.migrations import upgrade
from relieflink.models import AuthSession, Community, District, Household, Role, User
from relieflink.users import security

RESULTS = Path(__file__).resolve().parents[1] / "results"
ADULT_NEGATIVE = {
    "unresponsive_or_seizure": False,
    "breathing_difficulty": "none",
    "chest_pain": "none",
    "bleeding": "none",
    "stroke_signs": False,
    "severe_allergic_reaction": False,
    "self_harm_risk": "none",
}


def fresh_database(kind: str, workdir: Path, name: str) -> str:
    """A new, migrated database: a SQLite file in ``workdir`` or a PostgreSQL database."""
    if kind == "sqlite":
        path = workdir / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        admin = os.environ.get(
            "BENCH_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        )
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {name}"))
        engine.dispose()
        url = admin.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    return url


@dataclass
class Pair:
    consultation_id: int
    resident_token: str
    doctor_token: str


def _token(session: Session, user: User) -> str:
    token = security.new_token()
    now = clock.now()
    session.add(
        AuthSession(
            token_hash=security.token_digest(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=12),
        )
    )
    return token


def populate(
    url: str,
    *,
    consultations: int,
    doctors: int,
    take: bool,
    specialty: str = "general",
) -> list[Pair]:
    """Households with a resident each, ``consultations`` requests (one per household, triaged by
    the service), ``doctors`` doctors on shift; if ``take``, the doctors take every request."""
    engine = build_engine(url)
    password_hash = security.hash_password("bench-password-not-secret")  # hashed once
    with Session(engine, expire_on_commit=False) as session:
        district = District(code="BD", name="Bench", name_zh="测试区", lat=31.2, lon=121.4)
        session.add(district)
        session.flush()
        community = Community(
            code="BC",
            name="Bench",
            name_zh="测试小区",
            district_id=district.id,
            lat=31.2,
            lon=121.4,
            lockdown_status="sealed",
        )
        session.add(community)
        session.flush()
        households = [
            Household(code=f"BH{i}", community_id=community.id, size=3)
            for i in range(consultations)
        ]
        session.add_all(households)
        session.flush()
        residents = [
            User(
                username=f"resident{i}",
                full_name=f"Resident {i}",
                role=Role.resident,
                household_id=h.id,
                password_hash=password_hash,
            )
            for i, h in enumerate(households)
        ]
        staff = [
            User(
                username=f"doctor{i}",
                full_name=f"Doctor {i}",
                role=Role.doctor,
                password_hash=password_hash,
            )
            for i in range(doctors)
        ]
        session.add_all(residents + staff)
        session.flush()
        for doctor in staff:
            consult.start_shift(
                session,
                DoctorShift(specialties=[specialty], languages=["zh", "en"]),  # type: ignore[list-item]
                actor=doctor,
            )
        ids = []
        pains = ["none", "moderate", "severe"]
        for i, resident in enumerate(residents):
            data = ConsultationCreate.model_validate(
                {
                    "member_label": "self",
                    "age_band": "adult",
                    "sex": "female",
                    "reason": "benchmark",
                    "symptoms": ADULT_NEGATIVE | {"pain": pains[i % 3]},
                    "specialty": specialty,
                }
            )
            c, _ = consult.request_consultation(session, data, actor=resident)
            ids.append(c.id)
        session.commit()
        doctor_of: dict[int, User] = {}
        if take:
            i = 0
            while len(doctor_of) < len(ids):
                doctor = staff[i % len(staff)]
                got = consult.take_next(session, actor=doctor)
                session.commit()
                if got is None:
                    break
                doctor_of[got.id] = doctor
                i += 1
        resident_of = dict(zip(ids, residents, strict=True))
        pairs = [
            Pair(cid, _token(session, resident_of[cid]), _token(session, doctor_of[cid]))
            for cid in ids
            if cid in doctor_of
        ]
        session.commit()
        if engine.dialect.name == "postgresql":  # what autovacuum would do after a bulk load
            session.execute(text("ANALYZE"))
            session.commit()
    engine.dispose()
    return pairs


def staff_token(url: str) -> str:
    """A coordinator's session token (for the operators' endpoints)."""
    engine = build_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        user = User(
            username="bench-coordinator",
            full_name="Bench coordinator",
            role=Role.coordinator,
            password_hash=security.hash_password("bench-password-not-secret"),
        )
        session.add(user)
        session.flush()
        token = _token(session, user)
        session.commit()
    engine.dispose()
    return token


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]
