"""Languages: the catalogs cover every message in the code and templates; the language comes from
the switch's cookie, else the browser."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relieflink.models import Role
from relieflink.web import i18n
from tests.factories import make_user
from tests.web.helpers import signed_in

WEB = Path(i18n.__file__).resolve().parent
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _ids(path: Path) -> set[str]:
    with path.open("rb") as handle:
        return {m.id for m in read_po(handle) if m.id}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The message ids pybabel finds in the code and templates now."""
    out = tmp_path_factory.mktemp("pot") / "messages.pot"
    subprocess.run(
        [
            sys.executable, "-m", "babel.messages.frontend", "-q", "extract",
            "-F", str(WEB / "babel.cfg"), "-k", "N_", "-o", str(out), str(WEB),
        ],
        check=True,
    )  # fmt: skip
    return _ids(out)


@pytest.mark.parametrize("lang", sorted(i18n.LANGUAGES))
def test_each_catalog_has_every_message_of_the_pages(extracted: set[str], lang: str) -> None:
    in_catalog = _ids(i18n.po_path(lang))
    missing = extracted - in_catalog
    assert not missing, f"run the update step in web/README.md; missing in {lang}: {missing}"
    assert _ids(i18n.LOCALE_DIR / "messages.pot") == extracted, "messages.pot is stale"


def test_the_chinese_catalog_translates_everything_with_the_same_placeholders() -> None:
    with i18n.po_path("zh_CN").open("rb") as handle:
        catalog = read_po(handle)
    for message in catalog:
        if not message.id:
            continue
        assert message.string, f"untranslated: {message.id!r}"
        assert not message.fuzzy, f"fuzzy: {message.id!r}"
        assert set(PLACEHOLDER.findall(message.id)) == set(PLACEHOLDER.findall(message.string))
    assert i18n.translations("zh_CN").gettext("Sign in") == "登录"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
        ("zh", "zh_CN"),
        ("zh-Hans-CN", "zh_CN"),
        ("en-GB,en;q=0.9", "en"),
        ("fr-FR,fr;q=0.9,zh-CN;q=0.5,en;q=0.4", "zh_CN"),
        ("en;q=0.3,zh;q=0.8", "zh_CN"),
        ("zh;q=0, en", "en"),
        ("de", None),
        ("", None),
        ("garbage;q=x", None),
    ],
)
def test_accept_language_is_negotiated(header: str, expected: str | None) -> None:
    assert i18n.negotiate(header) == expected


def test_the_cookie_beats_the_browser_and_a_bad_cookie_is_ignored() -> None:
    assert i18n.choose("en", "zh-CN") == "en"
    assert i18n.choose("zh_CN", "en") == "zh_CN"
    assert i18n.choose("klingon", "zh-CN") == "zh_CN"
    assert i18n.choose(None, None) == "en"


def test_the_switch_sets_the_cookie_and_every_page_follows_it(
    db: Session, client: TestClient
) -> None:
    user = make_user(db, Role.coordinator)
    db.commit()
    signed_in(client, user)
    browser_zh = client.get("/households", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="zh-CN">' in browser_zh.text and "住户" in browser_zh.text
    switched = client.get("/lang/en?next=/households", follow_redirects=False)
    assert switched.headers["location"] == "/households"
    assert i18n.LANG_COOKIE in switched.headers["set-cookie"]
    english = client.get("/households", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="en">' in english.text and "Households" in english.text
    assert english.headers["content-language"] == "en"
    away = client.get("/lang/zh_CN?next=https://evil.example/", follow_redirects=False)
    assert away.headers["location"] == "/"


def test_the_sign_in_page_follows_the_browser(client: TestClient) -> None:
    page = client.get("/sign-in", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "登录" in page.text and "用户名" in page.text and "密码" in page.text
