"""Registry pages, the dashboard, import and export, through the web pages."""

from __future__ import annotations

import csv
import io
import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.catalog import service as catalog
from relieflink.catalog.schemas import ItemCreate
from relieflink.models import Household, LockdownStatus, Role
from relieflink.web.listing import PAGE_SIZE
from tests.factories import make_community, make_district, make_household, make_org, make_user
from tests.web.helpers import csrf_of, signed_in

HEADER = "code,community_code,building,unit,size,infants,pregnant,chronic,elderly_80,disabled,phone"


def _rows(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)


def _households(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Household)) or 0


def test_dashboard_counts_what_the_registry_holds(db: Session, client: TestClient) -> None:
    coordinator = make_user(db, Role.coordinator)
    district = make_district(db)
    statuses = [LockdownStatus.open, LockdownStatus.sealed, LockdownStatus.sealed]
    communities = [make_community(db, district, lockdown_status=s) for s in statuses]
    make_household(db, communities[0], actor=coordinator, infants=1)
    make_household(db, communities[1], actor=coordinator)
    catalog.create_item(
        db,
        ItemCreate(sku="RICE5", name="Rice 5 kg", name_zh="大米", category="food", unit="bag"),
        actor=None,
    )
    db.commit()
    page = signed_in(client, coordinator).get("/dashboard").text

    def stat(name: str) -> int:
        match = re.search(rf'data-stat="{name}">(\d+)<', page)
        assert match, name
        return int(match.group(1))

    assert stat("communities") == len(statuses)
    for status in LockdownStatus:
        assert stat(f"lockdown-{status}") == statuses.count(status)
    assert (stat("households"), stat("vulnerable")) == (2, 1)
    assert (stat("warehouses"), stat("items"), stat("kits")) == (0, 1, 0)
    assert 'id="map"' in page and "/static/vendor/leaflet-1.9.4/leaflet.js" in page

    points = client.get("/dashboard/map.json").json()
    assert sorted(c["status"] for c in points["communities"]) == sorted(statuses)
    assert {c["code"] for c in points["communities"]} == {c.code for c in communities}


def test_the_vendored_scripts_are_served(client: TestClient) -> None:
    for path in (
        "/static/vendor/leaflet-1.9.4/leaflet.js",
        "/static/vendor/leaflet-1.9.4/leaflet.css",
        "/static/vendor/htmx-2.0.11/htmx.min.js",
        "/static/app.js",
        "/static/app.css",
    ):
        assert client.get(path).status_code == 200, path


def test_lists_search_and_page(db: Session, client: TestClient) -> None:
    coordinator = make_user(db, Role.coordinator)
    district = make_district(db)
    for n in range(PAGE_SIZE + 5):
        make_community(db, district, code=f"PG{n:03d}", name=f"Paged {n}")
    make_community(db, district, code="LONE1", name="Lonely Gate")
    db.commit()
    signed_in(client, coordinator)

    first = client.get("/registry/communities?q=PG")
    assert len(_rows(first.text)) == PAGE_SIZE
    assert f"of {PAGE_SIZE + 5}" in first.text
    assert 'href="?q=PG&amp;offset=50" rel="next"' in first.text
    second = client.get("/registry/communities?q=PG&offset=50")
    assert len(_rows(second.text)) == 5 and 'rel="prev"' in second.text

    found = client.get("/registry/communities?q=lonely")
    assert [r for r in _rows(found.text) if "LONE1" in r] and len(_rows(found.text)) == 1

    bad = client.get("/registry/communities?lockdown_status=melted")
    assert bad.status_code == 422 and "lockdown_status" in bad.text


def test_names_follow_the_language(db: Session, client: TestClient) -> None:
    coordinator = make_user(db, Role.coordinator)
    make_community(db, name="Sunny Garden", name_zh="阳光花园")
    db.commit()
    signed_in(client, coordinator)
    english = client.get("/registry/communities").text
    assert "Sunny Garden" in english and "阳光花园" not in english
    client.get("/lang/zh_CN?next=/registry/communities")
    chinese = client.get("/registry/communities").text
    assert "阳光花园" in chinese and "小区" in chinese


def test_an_upload_with_a_bad_row_shows_each_error_and_imports_nothing(
    db: Session, client: TestClient
) -> None:
    coordinator = make_user(db, Role.coordinator)
    community = make_community(db, code="C00001")
    db.commit()
    signed_in(client, coordinator)
    page = client.get("/imports")
    content = "\n".join(
        [
            HEADER,
            f"H1,{community.code},1,101,3,1,0,0,0,0,+86 170 0000 0001",
            f"H2,{community.code},1,102,2,5,0,0,0,0,+86 170 0000 0002",  # 5 infants in 2 people
            "H3,NOWHERE,1,103,2,0,0,0,0,0,",
        ]
    )
    response = client.post(
        "/imports",
        data={"kind": "households", "csrf_token": csrf_of(page.text)},
        files={"file": ("households.csv", content.encode(), "text/csv")},
    )
    assert response.status_code == 422
    assert "Nothing was imported." in response.text
    table = response.text.split('<table class="errors">', 1)[1]
    rows = re.findall(r'<td class="num">(\d+)</td><td><code>([^<]*)</code></td>', table)
    # Line 3 breaks a rule of the whole row; line 4 names an unknown community.
    assert rows == [("3", ""), ("4", "community_code")]
    assert "infants (5) is more than the household size (2)" in table
    assert _households(db) == 0


def test_skip_invalid_imports_the_good_rows_and_lists_the_skipped(
    db: Session, client: TestClient
) -> None:
    coordinator = make_user(db, Role.coordinator)
    community = make_community(db)
    db.commit()
    signed_in(client, coordinator)
    page = client.get("/imports")
    content = f"{HEADER}\nH1,{community.code},,,3,0,0,0,0,0,\nH2,{community.code},,,0,0,0,0,0,0,\n"
    response = client.post(
        "/imports",
        data={"kind": "households", "skip_invalid": "true", "csrf_token": csrf_of(page.text)},
        files={"file": ("h.csv", content.encode(), "text/csv")},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="import-result"')  # htmx: the fragment
    assert "1 created" in response.text and "1 skipped" in response.text
    assert '<td class="num">3</td>' in response.text  # the skipped row's line
    assert _households(db) == 1


def test_a_committee_imports_only_into_its_communities(db: Session, client: TestClient) -> None:
    org = make_org(db)
    mine = make_community(db, committee=org)
    theirs = make_community(db)
    committee = make_user(db, Role.committee, organization_id=org.id)
    db.commit()
    signed_in(client, committee)
    page = client.get("/imports")
    assert 'value="communities"' not in page.text  # households only
    assert "/exports/" not in page.text  # exports are for staff
    content = f"{HEADER}\nH1,{mine.code},,,2,0,0,0,0,0,\nH2,{theirs.code},,,2,0,0,0,0,0,\n"
    response = client.post(
        "/imports",
        data={"kind": "households", "csrf_token": csrf_of(page.text)},
        files={"file": ("h.csv", content.encode(), "text/csv")},
    )
    assert response.status_code == 422
    assert "not managed by your committee" in response.text
    assert _households(db) == 0


def test_export_links_download_what_the_import_reads(db: Session, client: TestClient) -> None:
    coordinator = make_user(db, Role.coordinator)
    community = make_community(db)
    make_household(db, community, actor=coordinator, code="HX1")
    db.commit()
    signed_in(client, coordinator)
    assert 'href="/exports/households.csv"' in client.get("/imports").text
    response = client.get("/exports/households.csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["code"] for r in rows] == ["HX1"]
    assert rows[0]["community_code"] == community.code
    assert client.get("/exports/households.pdf").status_code == 422


def test_pages_send_security_headers_and_no_inline_script(db: Session, client: TestClient) -> None:
    coordinator = make_user(db, Role.coordinator)
    db.commit()
    signed_in(client, coordinator)
    for path in ("/dashboard", "/households", "/imports", "/registry/items"):
        response = client.get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        scripts = re.findall(r"<script\b[^>]*>", response.text)
        assert scripts and all(" src=" in tag for tag in scripts), path
