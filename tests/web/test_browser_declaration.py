"""Browser test of the gift declaration: the page in English and Chinese, at 1280 px and 360 px,
fits the screen (tables scroll inside their box), and its PDF link serves the printable PDF.
Screenshots go to ``test-artifacts/screenshots/`` (``declaration-*``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from relieflink.organizations import service as organizations
from relieflink.organizations.schemas import OrganizationUpdate
from relieflink.stock import service as stock
from tests.stock.factories import make_lot
from tests.web.browser_kit import BROWSER_MARKS, PHONE, WIDE, fits, new_context, shot
from tests.web.supply_world import supply_world
from tests.web.test_browser_supply import _sign_in

pytestmark = BROWSER_MARKS


def test_the_gift_declaration_page_fits_in_both_languages(
    db: Session, server: str, browser: object
) -> None:
    w = supply_world(db)
    organizations.update_organization(
        db, w.ngo.id, OrganizationUpdate(address="88 Relief Road, Xuhui, Shanghai"), actor=None
    )
    make_lot(db, w.warehouse, w.rice, 20, donor=w.donor, unit_value_fen=5000)
    shipment = stock.transfer(
        db,
        from_warehouse_id=w.warehouse.id,
        to_warehouse_id=w.abroad.id,
        lines=[stock.TransferLine(quantity=6, item_id=w.rice.id)],
        actor=w.warehouse_user,
    )
    db.commit()
    url = f"/warehouse/transfers/{shipment.id}/declaration"
    for locale, lang, viewport in (("en-GB", "en", WIDE), ("zh-CN", "zh", PHONE)):
        context = new_context(browser, server, locale=locale, viewport=viewport)
        page = context.new_page()  # type: ignore[attr-defined]
        _sign_in(page, w.warehouse_user)
        page.goto(url)
        assert "88 Relief Road, Xuhui, Shanghai" in page.inner_text("main")
        assert "Wang Bo" in page.inner_text("#signatory")
        fits(page, viewport["width"])
        shot(page, f"declaration-{viewport['width']}-{lang}")
        pdf = context.request.get(f"{url}.pdf")  # type: ignore[attr-defined]
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.body().startswith(b"%PDF-")
        context.close()  # type: ignore[attr-defined]
