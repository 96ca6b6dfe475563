"""The households list filters by a community's name, never by an id a person cannot know: a
list of the communities in view, or (a whole city) a box matching a community's code or name."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relieflink.models import OrgKind, Role
from relieflink.web.routes import households as household_pages
from tests.factories import make_community, make_household, make_org, make_user, sign_in
from tests.web.helpers import signed_in


def _options(html: str) -> list[str]:
    select = re.search(r'<select id="f-community_id".*?</select>', html, re.S)
    assert select, "no community list on the page"
    return re.findall(r'<option value="\d+"[^>]*>([^<]+)</option>', select.group(0))


def _codes(html: str) -> set[str]:
    return set(re.findall(r'href="/households/\d+">(H\d+)</a>', html))


def test_a_committee_picks_among_its_own_communities_by_name(
    db: Session, client: TestClient
) -> None:
    committee = make_org(db, OrgKind.committee)
    mine = make_community(db, committee=committee, name="Lilac Gardens", name_zh="丁香花园")
    other = make_community(db, name="Pine Court", name_zh="松苑")
    admin = make_user(db, Role.admin)
    home = make_household(db, mine, actor=admin)
    make_household(db, other, actor=admin)
    user = make_user(db, Role.committee, organization_id=committee.id)
    resident = make_user(db, Role.resident, household_id=home.id)
    db.commit()

    signed_in(client, user)
    page = client.get("/households")
    assert _options(page.text) == ["Lilac Gardens"]  # not the community it does not manage
    assert "Community id" not in page.text
    chosen = client.get("/households", params={"community_id": mine.id})
    assert _codes(chosen.text) == {home.code}
    chinese = client.get("/households", headers={"Accept-Language": "zh-CN"})
    assert _options(chinese.text) == ["丁香花园"]
    client.cookies.clear()
    signed_in(client, resident)
    assert _options(client.get("/households").text) == ["Lilac Gardens"]


def test_a_whole_city_gets_a_box_for_a_community_s_code_or_name(
    db: Session, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = make_user(db, Role.admin)
    coordinator = make_user(db, Role.coordinator)
    lilac = make_community(db, name="Lilac Gardens", name_zh="丁香花园")
    pine = make_community(db, name="Pine Court", name_zh="松苑")
    in_lilac = make_household(db, lilac, actor=admin)
    in_pine = make_household(db, pine, actor=admin)
    db.commit()
    monkeypatch.setattr(household_pages, "COMMUNITY_CHOICES", 1)  # two are "a whole city"

    signed_in(client, coordinator)
    page = client.get("/households")
    assert 'id="f-community_id"' not in page.text and 'name="community"' in page.text
    assert _codes(client.get("/households", params={"community": "pine"}).text) == {in_pine.code}
    assert _codes(client.get("/households", params={"community": "丁香"}).text) == {in_lilac.code}
    assert _codes(client.get("/households", params={"community": lilac.code}).text) == {
        in_lilac.code
    }

    # The API takes the same filter.
    headers = sign_in(client, coordinator)
    listed = client.get("/api/v1/households", params={"community": "Pine"}, headers=headers)
    assert [h["code"] for h in listed.json()["items"]] == [in_pine.code]
