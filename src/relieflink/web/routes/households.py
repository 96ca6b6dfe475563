"""Households: scoped to what the role may see; no phone in lists; masked in the single view.

The full number is shown only to roles that may call the household (``access.PHONE_READERS``),
on request (a POST, so that it is never in a page by default, cached or prefetched), and each
reveal is audited by ``households.reveal_phone``.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import HTMLResponse

from relieflink.households import service as households
from relieflink.households.schemas import HouseholdFilters
from relieflink.models import Household
from relieflink.places import service as places
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

router = PageRouter()

VULNERABILITY = [
    ("infants", N_("Infants")),
    ("pregnant", N_("Pregnant")),
    ("chronic", N_("Chronic illness")),
    ("elderly_80", N_("Aged 80+")),
    ("disabled", N_("Disabled")),
]


def _community_names(web: Web, rows: list[Household]) -> dict[int, str]:
    names = {}
    for community_id in {h.community_id for h in rows}:
        community = places.get_community(web.session, community_id)
        names[community_id] = localized(community, web.lang) if community else "?"
    return names


# Up to this many communities in view, the community filter is a list of their names; more (a
# coordinator's whole city), a box matching a community's code or name.
COMMUNITY_CHOICES = 300


def _community_filter(web: Web) -> Filter:
    communities = households.communities_in_view(
        web.session, actor=web.user, limit=COMMUNITY_CHOICES + 1
    )
    if len(communities) > COMMUNITY_CHOICES:
        return Filter("community", N_("Community code or name"))
    options = [(str(c.id), localized(c, web.lang)) for c in communities]
    return Filter("community_id", N_("Community"), options, translate=False)


def _count_column(name: str, label: str) -> Column:
    return Column(label, lambda h, _l: getattr(h, name), numeric=True)


@router.page("/households", roles=access.HOUSEHOLD_READERS, nav=N_("Households"), order=30)
def household_list(web: WebDep) -> HTMLResponse:
    """Households the user may see; search by code, filter by community and vulnerability."""
    query = web.request.query_params
    params = clean_params(query, ["q", "community_id", "community", "vulnerable"])
    offset = parse_offset(query.get("offset"))
    filters = parse_filters(HouseholdFilters, params)
    rows, total = households.list_households(
        web.session, filters, actor=web.user, offset=offset, limit=PAGE_SIZE
    )
    names = _community_names(web, list(rows))
    columns = [
        Column(N_("Code"), lambda h, _l: h.code, link=lambda h: f"/households/{h.id}"),
        Column(N_("Community"), lambda h, _l: names[h.community_id]),
        Column(N_("Building / unit"), lambda h, _l: " / ".join(filter(None, [h.building, h.unit]))),
        Column(N_("People"), lambda h, _l: h.size, numeric=True),
        *(_count_column(name, label) for name, label in VULNERABILITY),
    ]
    listing = Listing(
        title=N_("Households"),
        columns=columns,
        rows=rows,
        total=total,
        offset=offset,
        params=params,
        filters=[
            Filter("q", N_("Search code")),
            _community_filter(web),
            Filter(
                "vulnerable",
                N_("Vulnerable members"),
                [("true", N_("any")), ("false", N_("none"))],
            ),
        ],
    )
    return web.render("list.html", {"listing": listing})


def _detail(web: Web, household_id: int, *, phone: str | None) -> HTMLResponse:
    household = households.require_household(web.session, household_id, actor=web.user)
    community = places.require_community(web.session, household.community_id)
    context: dict[str, Any] = {
        "household": household,
        "community_name": localized(community, web.lang),
        "vulnerability": [(label, getattr(household, name)) for name, label in VULNERABILITY],
        "phone_masked": access.mask_phone(household.phone),
        "phone": phone,
        "may_reveal": web.user.role in access.PHONE_READERS and bool(household.phone),
    }
    return web.render("households/detail.html", context)


@router.page("/households/{household_id}", roles=access.HOUSEHOLD_READERS)
def household_detail(household_id: int, web: WebDep) -> HTMLResponse:
    """One household (the read is audited); the phone masked to its last four digits."""
    return _detail(web, household_id, phone=None)


@router.action("/households/{household_id}/phone", roles=access.PHONE_READERS)
def reveal_phone(household_id: int, web: WebDep) -> HTMLResponse:
    """The full phone number (audited): a fragment for htmx, else the page with it shown."""
    household = households.reveal_phone(web.session, household_id, actor=web.user)
    if web.is_htmx():
        return web.render("households/_phone.html", {"phone": household.phone})
    return _detail(web, household_id, phone=household.phone)
