"""Each role sees only its pages (others answer a translated 403 page) and only its rows; no page
shows a full phone number to a role that may not see it."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relieflink.consult import service as consult
from relieflink.consult.schemas import DoctorShift
from relieflink.models import Household, OrgKind, Role, User
from relieflink.users import access
from relieflink.web import nav
from tests.consult.factories import make_consultation
from tests.factories import make_community, make_household, make_org, make_user
from tests.web.helpers import csrf_of, signed_in
from tests.web.operations_kit import make_route
from tests.web.supply_world import supply_ids

ALL = frozenset(Role)
# Who may open each page: written out here (not read from the code) so that widening a page's
# roles by mistake fails a test.
EXPECTED = {
    "/home": ALL,
    "/dashboard": {Role.admin, Role.coordinator},
    "/dashboard/map.json": {Role.admin, Role.coordinator},
    "/registry/communities": ALL,
    "/registry/districts": ALL,
    "/registry/organizations": ALL,
    "/registry/items": ALL,
    "/registry/kits": ALL,
    "/registry/warehouses": {Role.admin, Role.coordinator, Role.warehouse, Role.courier},
    "/registry/teams": {
        Role.admin,
        Role.coordinator,
        Role.warehouse,
        Role.courier,
        Role.committee,
        Role.volunteer,
    },
    "/households": {Role.admin, Role.coordinator, Role.committee, Role.resident},
    "/households/{household_id}": {Role.admin, Role.coordinator, Role.committee, Role.resident},
    "/households/{household_id}/phone": {Role.admin, Role.coordinator, Role.committee},
    "/imports": {Role.admin, Role.coordinator, Role.committee},
    "/exports/{kind}.{fmt}": {Role.admin, Role.coordinator},
    # Consultations: the queue (coordinators: counts only); the content for doctors and residents.
    "/consultations": {Role.admin, Role.coordinator, Role.doctor},
    "/consultations/shift": {Role.doctor},
    "/consultations/take": {Role.doctor},
    "/consultations/{consultation_id}": {Role.doctor, Role.resident},
    "/consultations/{consultation_id}/messages": {Role.doctor, Role.resident},
    "/consultations/{consultation_id}/close": {Role.doctor},
    "/help": {Role.resident, Role.committee},
    "/help/building": {Role.committee},
    "/help/status": {Role.resident, Role.committee},
    "/help/consultation": {Role.resident},
    # Donations: both sides of a pledge (scoped to their organization) and staff; the warehouse.
    "/donations": {Role.admin, Role.coordinator, Role.donor, Role.warehouse},
    "/donations/trace": {Role.admin, Role.coordinator, Role.donor, Role.warehouse},
    "/donations/{pledge_id}": {Role.admin, Role.coordinator, Role.donor, Role.warehouse},
    "/donations/{pledge_id}/messages": {Role.admin, Role.coordinator, Role.donor, Role.warehouse},
    "/donations/{pledge_id}/status": {Role.admin, Role.coordinator, Role.donor, Role.warehouse},
    "/warehouse": {Role.admin, Role.coordinator, Role.warehouse},
    "/warehouse/receive": {Role.admin, Role.coordinator, Role.warehouse},
    "/warehouse/receipts/{receipt_id}": {Role.admin, Role.coordinator, Role.warehouse},
    "/warehouse/transfers": {Role.admin, Role.coordinator, Role.warehouse},
    "/warehouse/transfers/{transfer_id}/receive": {Role.admin, Role.coordinator, Role.warehouse},
    "/warehouse/transfers/{transfer_id}/declaration": {
        Role.admin,
        Role.coordinator,
        Role.warehouse,
    },
    "/warehouse/transfers/{transfer_id}/declaration.pdf": {
        Role.admin,
        Role.coordinator,
        Role.warehouse,
    },
    "/warehouse/adjustments": {Role.admin, Role.coordinator, Role.warehouse},
    # Operations: the dashboard's panels and jobs for staff; a courier's routes (staff see any).
    "/dashboard/panels": {Role.admin, Role.coordinator},
    "/dashboard/jobs": {Role.admin, Role.coordinator},
    "/dashboard/allocate": {Role.admin, Role.coordinator},
    "/dashboard/dispatch": {Role.admin, Role.coordinator},
    "/courier": {Role.courier},
    "/courier/routes/{route_id}": {Role.admin, Role.coordinator, Role.courier},
    "/courier/routes/{route_id}/events": {Role.admin, Role.coordinator, Role.courier},
    # A volunteer team's leader: the parcels at its compound's gate.
    "/gate": {Role.volunteer},
    "/gate/events": {Role.volunteer},
}
PHONE = "+86 170 1234 5678"
OTHER_PHONE = "+86 171 8765 4321"


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _concrete(path: str, household: Household, ids: dict[str, int] | None = None) -> str:
    return path.format(household_id=household.id, kind="households", fmt="csv", **(ids or {}))


def test_every_page_declares_the_expected_roles() -> None:
    declared = {(s.path, s.method): s.roles for s in nav.all_pages()}
    for path, roles in EXPECTED.items():
        method = "GET" if (path, "GET") in declared else "POST"
        assert declared[(path, method)] == roles, path
    # A new page must be added to EXPECTED (and so to these tests).
    assert {p for p, _ in declared} <= set(EXPECTED), "a page is missing from EXPECTED"


class World:
    """A committee managing one community with one household; a resident of that household."""

    def __init__(self, db: Session) -> None:
        self.committee_org = make_org(db)
        community = make_community(db, committee=self.committee_org)
        elsewhere = make_community(db)
        admin = make_user(db, Role.admin)
        self.household = make_household(db, community, actor=admin, phone=PHONE, infants=1)
        self.other = make_household(db, elsewhere, actor=admin, phone=OTHER_PHONE)
        self.users: dict[Role, User] = {}
        donor_org, ngo = make_org(db, OrgKind.donor), make_org(db)  # a pledge's two sides
        for role in Role:
            links: dict[str, object] = {}
            if role in (Role.donor, Role.warehouse):
                links["organization_id"] = (donor_org if role == Role.donor else ngo).id
            if role == Role.committee:
                links["organization_id"] = self.committee_org.id
            if role == Role.resident:
                links["household_id"] = self.household.id
            self.users[role] = make_user(db, role, **links)
        # A consultation of the household, taken by the doctor: both may read it.
        doctor = self.users[Role.doctor]
        shift = DoctorShift(specialties=["general"], languages=["zh", "en"])
        consult.start_shift(db, shift, actor=doctor)
        consultation = make_consultation(db, self.users[Role.resident])
        consult.take_next(db, actor=doctor)
        self.ids = {"consultation_id": consultation.id}
        self.ids |= supply_ids(db, donor=donor_org, ngo=ngo)
        self.ids["route_id"] = make_route(db, courier=self.users[Role.courier]).id
        db.commit()


@pytest.fixture
def world(db: Session) -> World:
    return World(db)


@pytest.mark.parametrize("role", list(Role))
def test_each_role_opens_its_pages_and_gets_a_403_page_for_the_others(
    world: World, client: TestClient, role: Role
) -> None:
    signed_in(client, world.users[role])
    for spec in nav.all_pages():
        if spec.method != "GET":
            continue
        response = client.get(
            _concrete(spec.path, world.household, world.ids), follow_redirects=False
        )
        if role in spec.roles:
            assert response.status_code == 200, (spec.path, response.text[:300])
        else:
            assert response.status_code == 403, spec.path
            assert response.headers["content-type"].startswith("text/html")
            assert "You may not open this page" in response.text
    # The header links are exactly the role's pages.
    home = client.get("/home").text
    linked = set(re.findall(r'<li><a href="(/[^"]*)"', home.split("<main")[0]))
    assert linked == {s.path for s in nav.for_role(role)}
    for spec in nav.all_pages():
        if spec.nav and role not in spec.roles:
            assert f'href="{spec.path}"' not in home


def test_the_403_page_is_translated(world: World, client: TestClient) -> None:
    signed_in(client, world.users[Role.courier])
    response = client.get("/dashboard", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert response.status_code == 403
    assert "您无权打开此页面" in response.text
    assert '<html lang="zh-CN">' in response.text


@pytest.mark.parametrize("role", list(Role))
def test_no_page_shows_a_full_phone_number_to_a_role_that_may_not_see_it(
    world: World, client: TestClient, role: Role
) -> None:
    signed_in(client, world.users[role])
    pages = [
        _concrete(s.path, world.household, world.ids)
        for s in nav.all_pages()
        if s.method == "GET" and not s.path.startswith("/exports")
    ]
    pages += [f"/households/{world.other.id}", "/households?vulnerable=true"]
    for page in pages:
        text = _digits(client.get(page).text)
        # Not even the staff's pages carry a full number until it is asked for.
        assert _digits(PHONE) not in text, page
        assert _digits(OTHER_PHONE) not in text, page

    detail = client.get(f"/households/{world.household.id}")
    reveal_url = f"/households/{world.household.id}/phone"
    if detail.status_code == 200:
        assert "*******5678" in detail.text
        token = csrf_of(detail.text)
    else:
        token = csrf_of(client.get("/home").text)
    revealed = client.post(reveal_url, data={"csrf_token": token}, headers={"HX-Request": "true"})
    if role in access.PHONE_READERS:
        assert revealed.status_code == 200
        assert PHONE in revealed.text
    else:
        assert revealed.status_code == 403
        assert _digits(PHONE) not in _digits(revealed.text)
    assert (
        ('hx-post="' + reveal_url) in detail.text
        if role in access.PHONE_READERS
        else (reveal_url not in detail.text)
    )


def test_the_reveal_needs_the_csrf_token(world: World, client: TestClient) -> None:
    signed_in(client, world.users[Role.coordinator])
    response = client.post(f"/households/{world.household.id}/phone", data={})
    assert response.status_code == 403
    assert _digits(PHONE) not in _digits(response.text)


@pytest.mark.parametrize(
    ("role", "sees_own", "sees_other"),
    [
        (Role.coordinator, True, True),
        (Role.committee, True, False),
        (Role.resident, True, False),
    ],
)
def test_household_rows_are_scoped_to_the_role(
    world: World, client: TestClient, role: Role, sees_own: bool, sees_other: bool
) -> None:
    signed_in(client, world.users[role])
    listing = client.get("/households").text
    assert (world.household.code in listing) is sees_own
    assert (f">{world.other.code}<" in listing) is sees_other
    other = client.get(f"/households/{world.other.id}")
    assert other.status_code == (200 if sees_other else 403)
