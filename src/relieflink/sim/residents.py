"""Residents: households ask for help through the request service during the day (some twice,
some with malformed messages, and each answer is counted); residents with a chronic illness ask
a doctor online for a refill, whose prescription becomes a medical request."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from relieflink import clock
from relieflink.consult import service as consult
from relieflink.consult.schemas import (
    ConsultationClose,
    ConsultationCreate,
    DoctorShift,
    PrescriptionCreate,
    PrescriptionLineCreate,
)
from relieflink.flows import prescriptions
from relieflink.models import Role, User
from relieflink.needs import service as needs
from relieflink.needs.schemas import MAX_BATCH, RequestCreate
from relieflink.sim.world import MINUTES_PER_DAY, Home, RequestRecord, World
from relieflink.users import service as users
from relieflink.users.schemas import UserCreate

# The questionnaire of a stable patient whose blood-pressure medicine runs out in two days.
REFILL_ANSWERS: dict[str, bool | str] = {
    "unresponsive_or_seizure": False,
    "breathing_difficulty": "none",
    "chest_pain": "none",
    "bleeding": "none",
    "stroke_signs": False,
    "severe_allergic_reaction": False,
    "self_harm_risk": "none",
    "medicine_running_out": "within_2_days",
    "insulin_or_anticoagulant": False,
}


def _groups(h: Home) -> tuple[str, ...]:
    """The priority groups a household's request counts in (for the outcome metrics)."""
    members = (
        ("infant", h.infants),
        ("pregnant", h.pregnant),
        ("chronic", h.chronic),
        ("elderly", h.elderly_80),
    )
    return tuple(g for g, n in members if n) or ("other",)


class Residents:
    """The households' requests, and the online consultations of the chronically ill."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.doctor = users.create_user(
            world.session,
            UserCreate(
                username="sim-doctor",
                full_name="Simulated doctor",
                role=Role.doctor,
                password=world.password,
            ),
            actor=None,
        )
        consult.start_shift(
            world.session,
            DoctorShift(specialties=["general", "internal_medicine"], languages=["zh", "en"]),
            actor=self.doctor,
        )
        self.doctors = simpy.Resource(world.env, capacity=world.a.doctors_on_duty)
        self.accounts: dict[int, User] = {}  # residents' user accounts, by household
        self.consult_asked: dict[int, float] = {}  # consultation id → minute asked
        # Requests asked and not posted yet: the request, its household, minute and packs.
        self.queue: list[tuple[RequestCreate, Home, float, int]] = []

    # --- requests -----------------------------------------------------------------------------

    def requests(self) -> Generator[simpy.Event, Any, None]:
        """Households ask during the day; some twice, some with a malformed message. What they
        ask is collected (as a committee collects its compound's requests) and posted through
        the API's batch path (:func:`needs.create_requests`, ``POST /api/v1/requests:batch``)
        before each wave (:meth:`flush`, called by the dispatch) and at the day's end."""
        w = self.w
        a = w.a
        events: list[tuple[float, Home, str]] = []
        for day in range(w.days):
            start = day * MINUTES_PER_DAY
            for h in w.households:
                rng = w.stream("ask", h.id, day)
                if rng.random() >= a.request_share:
                    continue
                t = start + rng.uniform(a.first_request_hour, a.last_request_hour) * 60
                kind = "ok"
                roll = rng.random()
                if roll < a.malformed_share / 2:
                    kind = "malformed-quantity"
                elif roll < a.malformed_share:
                    kind = "malformed-sku"
                elif roll < a.malformed_share + a.duplicate_share:
                    events.append((t + rng.uniform(60, 180), h, "ok"))
                events.append((t, h, kind))
        events.sort(key=lambda e: (e[0], e[1].id))
        day = 0
        for t, h, kind in events:
            while t >= (day + 1) * MINUTES_PER_DAY - 1:  # the day's last requests go out
                yield w.at((day + 1) * MINUTES_PER_DAY - 1)
                self.flush()
                day += 1
            yield w.env.timeout(t - w.env.now)
            self._ask(h, kind)
        yield w.at(w.days * MINUTES_PER_DAY - 1)
        self.flush()

    def _ask(self, h: Home, kind: str) -> None:
        """A household's message, checked as the API's schema checks it, and queued."""
        w = self.w
        entitled = w.entitled(h)
        lines = [{"kit_sku": sku, "quantity": n} for sku, n in entitled.items()]
        if kind == "malformed-quantity":
            lines = [{"kit_sku": "KIT-FAMILY-FOOD", "quantity": 0}]
        elif kind == "malformed-sku":
            lines = [{"kit_sku": "KIT-RICE-TYPO", "quantity": 1}]
        try:
            data = RequestCreate.model_validate({"household_id": h.id, "lines": lines})
        except ValueError:
            w.log.answers["refused as invalid"] += 1
            return
        self.queue.append((data, h, w.env.now, sum(entitled.values())))

    def flush(self) -> None:
        """Post the queued requests in batches of at most ``MAX_BATCH`` (each answered on its
        own: a refused one does not stop the others) and commit."""
        w = self.w
        queue, self.queue = self.queue, []
        for start in range(0, len(queue), MAX_BATCH):
            chunk = queue[start : start + MAX_BATCH]
            answers = needs.create_requests(
                w.session, [data for data, *_ in chunk], actor=w.coordinator, today=clock.today()
            )
            for (_, h, t, packs), answer in zip(chunk, answers, strict=True):
                self._answered(answer, h, t, packs)
        w.commit()

    def _answered(self, answer: needs.RequestAnswer, h: Home, t: float, packs: int) -> None:
        w = self.w
        if answer.outcome is None:
            w.log.answers["refused as invalid"] += 1
            return
        if answer.outcome.merged:
            w.log.answers["merged with an open request"] += 1
            return
        w.log.answers["accepted"] += 1
        request_id = answer.outcome.request.id
        w.log.requests[request_id] = RequestRecord(
            request_id=request_id,
            household_id=h.id,
            community_id=h.community_id,
            t_request=t,
            groups=_groups(h),
            packs=packs,
        )

    # --- consultations ------------------------------------------------------------------------

    def consultations(self) -> Generator[simpy.Event, Any, None]:
        """Residents with chronic illness ask a doctor online for a refill; the prescription
        becomes a medical request that allocation serves first."""
        w = self.w
        chronic = [h for h in w.households if h.chronic]
        plan: list[tuple[float, Home]] = []
        for day in range(w.days):
            for h in chronic:
                rng = w.stream("consult", h.id, day)
                if rng.random() < w.a.consult_share:
                    hour = rng.uniform(8, 18)
                    plan.append((day * MINUTES_PER_DAY + hour * 60, h))
        plan.sort(key=lambda e: (e[0], e[1].id))
        for t, h in plan:
            yield w.env.timeout(t - w.env.now)
            w.env.process(self._consult(h))

    def _account(self, h: Home) -> User:
        """The resident's user account (created the first time they ask)."""
        resident = self.accounts.get(h.id)
        if resident is None:
            resident = users.create_user(
                self.w.session,
                UserCreate(
                    username=f"sim-resident-{h.id}",
                    full_name="Simulated resident",
                    role=Role.resident,
                    household_id=h.id,
                    password="simulation-only-pw",
                ),
                actor=None,
            )
            self.accounts[h.id] = resident
        return resident

    def _consult(self, h: Home) -> Generator[simpy.Event, Any, None]:
        w = self.w
        consultation, _ = consult.request_consultation(
            w.session,
            ConsultationCreate(
                member_label="self",
                age_band="older_adult",
                sex="unknown",
                reason="my blood pressure medicine is running out",
                symptoms=REFILL_ANSWERS,
            ),
            actor=self._account(h),
        )
        self.consult_asked[consultation.id] = w.env.now
        w.commit()
        with self.doctors.request() as turn:
            yield turn
            yield w.env.timeout(w.a.consult_minutes)
            # The doctor takes the most urgent waiting request, not necessarily this one.
            taken = consult.take_next(w.session, actor=self.doctor)
            if taken is None:
                return
            prescription = PrescriptionCreate(
                lines=[PrescriptionLineCreate(item_id=w.medicine.id, quantity=1)]
            )
            prescriptions.close_consultation(
                w.session,
                taken.id,
                ConsultationClose(
                    notes="stable; 30-day refill", outcome="prescription", prescription=prescription
                ),
                actor=self.doctor,
            )
            written = consult.get_prescription(w.session, taken.id)
            w.commit()
        w.log.answers["consultations closed with a prescription"] += 1
        if written is not None and written.request_id is not None:
            w.log.requests[written.request_id] = RequestRecord(
                request_id=written.request_id,
                household_id=taken.household_id,
                community_id=w.communities_of[taken.household_id],
                t_request=self.consult_asked[taken.id],
                groups=("chronic",),
                packs=1,
                source="prescription",
            )
