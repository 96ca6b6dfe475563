from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relieflink.models import Role
from tests.factories import make_community, make_user
from tests.teams.factories import make_team
from tests.web.helpers import signed_in


def test_the_registry_lists_teams_with_their_compound(db: Session, client: TestClient) -> None:
    compound = make_community(db, name="Qibao Garden", name_zh="七宝花园")
    make_team(db, compound, code="T-QIBAO", headcount=40, shift_start_s=7 * 3600)
    viewer = make_user(db, Role.courier)
    db.commit()
    signed_in(client, viewer)
    page = client.get("/registry/teams")
    assert page.status_code == 200
    assert "T-QIBAO" in page.text and "Qibao Garden" in page.text
    assert "07:00–20:00" in page.text
    zh = client.get("/registry/teams", headers={"Accept-Language": "zh-CN"})
    assert "七宝花园" in zh.text and "志愿者团队" in zh.text
