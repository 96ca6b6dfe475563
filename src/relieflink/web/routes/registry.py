"""Registry pages: organizations, districts, communities, warehouses, volunteer teams, items and
kits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.responses import HTMLResponse

from relieflink.catalog import service as catalog
from relieflink.catalog.schemas import ItemFilters, KitFilters
from relieflink.models import (
    Community,
    ItemCategory,
    KitPurpose,
    OrgKind,
    VolunteerTeam,
)
from relieflink.organizations import service as organizations
from relieflink.organizations.schemas import OrganizationFilters
from relieflink.places import service as places
from relieflink.places.schemas import CommunityFilters, NameFilters
from relieflink.teams import service as teams
from relieflink.teams.schemas import TeamFilters
from relieflink.users import access
from relieflink.web.listing import (
    PAGE_SIZE,
    Column,
    Filter,
    Listing,
    clean_params,
    localized,
    parse_filters,
    parse_offset,
)
from relieflink.web.pages import N_, PageRouter, Web, WebDep
from relieflink.web.rendering import LOCKDOWN_LABELS

router = PageRouter()

CATEGORY_LABELS = {
    ItemCategory.food: N_("Food"),
    ItemCategory.infant: N_("Infant"),
    ItemCategory.maternity: N_("Maternity"),
    ItemCategory.medicine: N_("Medicine"),
    ItemCategory.hygiene: N_("Hygiene"),
    ItemCategory.protection: N_("Protection"),
}
PURPOSE_LABELS = {
    KitPurpose.family_food: N_("Family food"),
    KitPurpose.infant: N_("Infant"),
    KitPurpose.maternity: N_("Maternity"),
    KitPurpose.chronic_medication: N_("Chronic medication"),
    KitPurpose.protection: N_("Protection"),
}
ORG_KIND_LABELS = {
    OrgKind.donor: N_("Donor"),
    OrgKind.ngo: N_("NGO"),
    OrgKind.carrier: N_("Carrier"),
    OrgKind.health_provider: N_("Health provider"),
    OrgKind.government: N_("Government"),
    OrgKind.committee: N_("Community committee"),
}
SEARCH = Filter("q", N_("Search code or name"))


def flag(label: str, attr: str) -> Column:
    """A yes/no column."""
    return Column(label, lambda r, _l: N_("yes") if getattr(r, attr) else N_("no"), translate=True)


def name_column() -> Column:
    return Column(N_("Name"), localized)


def code_column(attr: str = "code") -> Column:
    return Column(N_("Code"), lambda r, _l: getattr(r, attr))


def render_listing(
    web: Web,
    *,
    title: str,
    schema: type[Any],
    list_fn: Callable[..., tuple[Sequence[Any], int]],
    columns: Sequence[Column],
    filters: Sequence[Filter],
    convert: Callable[[Any], Any] | None = None,
) -> HTMLResponse:
    """The common list page: parse the filters, fetch one page, render ``list.html``."""
    query = web.request.query_params
    params = clean_params(query, [f.name for f in filters])
    offset = parse_offset(query.get("offset"))
    rows, total = list_fn(
        web.session, parse_filters(schema, params), offset=offset, limit=PAGE_SIZE
    )
    listing = Listing(
        title=title,
        columns=columns,
        rows=[convert(r) for r in rows] if convert else rows,
        total=total,
        offset=offset,
        params=params,
        filters=filters,
    )
    return web.render("list.html", {"listing": listing})


def _options(labels: dict[Any, str]) -> list[tuple[str, str]]:
    return [(str(k), v) for k, v in labels.items()]


@router.page("/registry/organizations", roles=access.EVERYONE, nav=N_("Organizations"), order=60)
def organization_list(web: WebDep) -> HTMLResponse:
    return render_listing(
        web,
        title=N_("Organizations"),
        schema=OrganizationFilters,
        list_fn=organizations.list_organizations,
        columns=[
            code_column(),
            Column(N_("Name"), lambda r, lang: (lang == "zh_CN" and r.name_zh) or r.name),
            Column(N_("Kind"), lambda r, _l: ORG_KIND_LABELS[r.kind], translate=True),
            Column(N_("Country"), lambda r, _l: r.country),
        ],
        filters=[SEARCH, Filter("kind", N_("Kind"), _options(ORG_KIND_LABELS))],
    )


@router.page("/registry/districts", roles=access.EVERYONE)
def district_list(web: WebDep) -> HTMLResponse:
    return render_listing(
        web,
        title=N_("Districts"),
        schema=NameFilters,
        list_fn=places.list_districts,
        columns=[
            code_column(),
            name_column(),
            Column(N_("Population"), lambda r, _l: r.population, numeric=True),
            Column(N_("Area (km²)"), lambda r, _l: f"{r.area_km2:.1f}", numeric=True),
            Column(
                N_("Communities"),
                lambda _r, _l: N_("show"),
                translate=True,
                link=lambda r: f"/registry/communities?district_id={r.id}",
            ),
        ],
        filters=[SEARCH],
    )


def _community_households_link(web: Web) -> Column | None:
    if web.user.role not in access.HOUSEHOLD_READERS:
        return None
    return Column(
        N_("Registered households"),
        lambda _r, _l: N_("show"),
        translate=True,
        link=lambda r: f"/households?community_id={r.id}",
    )


@router.page("/registry/communities", roles=access.EVERYONE, nav=N_("Communities"), order=20)
def community_list(web: WebDep) -> HTMLResponse:
    columns = [
        code_column(),
        name_column(),
        Column(N_("Lockdown"), lambda r, _l: LOCKDOWN_LABELS[r.lockdown_status], translate=True),
        Column(N_("Households"), lambda r, _l: r.households, numeric=True),
        Column(N_("Residents"), lambda r, _l: r.residents, numeric=True),
        flag(N_("Vehicles allowed"), "vehicles_allowed"),
    ]
    link = _community_households_link(web)
    if link is not None:
        columns.append(link)
    return render_listing(
        web,
        title=N_("Communities"),
        schema=CommunityFilters,
        list_fn=places.list_communities,
        columns=columns,
        filters=[
            SEARCH,
            Filter("lockdown_status", N_("Lockdown"), _options(LOCKDOWN_LABELS)),
            Filter("district_id", N_("District id")),
        ],
    )


@router.page("/registry/warehouses", roles=access.LOGISTICS, nav=N_("Warehouses"), order=40)
def warehouse_list(web: WebDep) -> HTMLResponse:
    return render_listing(
        web,
        title=N_("Warehouses"),
        schema=NameFilters,
        list_fn=places.list_warehouses,
        columns=[
            code_column(),
            name_column(),
            Column(N_("Capacity (kg)"), lambda r, _l: r.capacity_kg, numeric=True),
            Column(N_("Capacity (m³)"), lambda r, _l: r.capacity_m3, numeric=True),
            Column(N_("Outbound per day (kg)"), lambda r, _l: r.daily_outbound_kg, numeric=True),
            flag(N_("Temporary"), "temporary"),
        ],
        filters=[SEARCH],
    )


@dataclass(frozen=True)
class _TeamRow:
    code: str
    community: Community | None
    headcount: int
    trolley_capacity_kg: int
    shift: str
    active: bool


def _hhmm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


@router.page("/registry/teams", roles=access.TEAM_READERS, nav=N_("Volunteer teams"), order=25)
def team_list(web: WebDep) -> HTMLResponse:
    """Each compound's volunteer team: its size, trolley capacity and working hours."""

    def row(team: VolunteerTeam) -> _TeamRow:
        return _TeamRow(
            team.code,
            places.get_community(web.session, team.community_id),
            team.headcount,
            team.trolley_capacity_kg,
            f"{_hhmm(team.shift_start_s)}–{_hhmm(team.shift_end_s)}",
            team.active,
        )

    return render_listing(
        web,
        title=N_("Volunteer teams"),
        schema=TeamFilters,
        list_fn=teams.list_teams,
        columns=[
            code_column(),
            Column(
                N_("Community"), lambda r, lang: localized(r.community, lang) if r.community else ""
            ),
            Column(N_("Volunteers"), lambda r, _l: r.headcount, numeric=True),
            Column(N_("Trolley (kg)"), lambda r, _l: r.trolley_capacity_kg, numeric=True),
            Column(N_("Shift"), lambda r, _l: r.shift),
            flag(N_("Active"), "active"),
        ],
        filters=[SEARCH],
        convert=row,
    )


@router.page("/registry/items", roles=access.EVERYONE, nav=N_("Items"), order=50)
def item_list(web: WebDep) -> HTMLResponse:
    return render_listing(
        web,
        title=N_("Items"),
        schema=ItemFilters,
        list_fn=catalog.list_items,
        columns=[
            code_column("sku"),
            name_column(),
            Column(N_("Category"), lambda r, _l: CATEGORY_LABELS[r.category], translate=True),
            Column(N_("Unit"), lambda r, _l: r.unit),
            Column(N_("Grams per unit"), lambda r, _l: r.grams_per_unit, numeric=True),
            Column(N_("kcal per unit"), lambda r, _l: r.kcal_per_unit, numeric=True),
            Column(N_("Shelf life (days)"), lambda r, _l: r.shelf_life_days or "", numeric=True),
            flag(N_("Cold chain"), "cold_chain"),
            flag(N_("Prescription"), "prescription_only"),
        ],
        filters=[SEARCH, Filter("category", N_("Category"), _options(CATEGORY_LABELS))],
    )


@router.page("/registry/kits", roles=access.EVERYONE, nav=N_("Kits"), order=55)
def kit_list(web: WebDep) -> HTMLResponse:
    def contents(kit: Any, lang: str) -> str:
        return ", ".join(
            f"{(line.item_name_zh if lang == 'zh_CN' else line.item_name)} × {line.quantity}"
            for line in kit.lines
        )

    return render_listing(
        web,
        title=N_("Kits"),
        schema=KitFilters,
        list_fn=catalog.list_kits,
        convert=catalog.kit_to_read,
        columns=[
            code_column("sku"),
            name_column(),
            Column(N_("Purpose"), lambda r, _l: PURPOSE_LABELS[r.purpose], translate=True),
            Column(N_("Persons"), lambda r, _l: r.persons, numeric=True),
            Column(N_("Days"), lambda r, _l: r.days, numeric=True),
            Column(N_("Weight (kg)"), lambda r, _l: f"{r.grams / 1000:.1f}", numeric=True),
            Column(N_("Contents"), contents),
        ],
        filters=[SEARCH, Filter("purpose", N_("Purpose"), _options(PURPOSE_LABELS))],
    )
