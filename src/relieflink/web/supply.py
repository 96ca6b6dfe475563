"""What the donation and warehouse pages share: names of the records they show (in the page's
language, looked up once per page through the services) and the labels of their states."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from relieflink.catalog import service as catalog
from relieflink.catalog.schemas import ItemFilters, KitFilters
from relieflink.donations import service as donations
from relieflink.models import AdjustmentReason, MessageKind, PledgeStatus, TransferStatus
from relieflink.organizations import service as organizations
from relieflink.places import service as places
from relieflink.places.schemas import NameFilters
from relieflink.users import service as users
from relieflink.web.listing import localized
from relieflink.web.pages import N_

# Choices of a select: at most this many items, kits or warehouses (a relief catalog has tens).
CHOICES_LIMIT = 1000

PLEDGE_STATUS_LABELS = {
    PledgeStatus.pledged: N_("Pledged"),
    PledgeStatus.confirmed: N_("Confirmed"),
    PledgeStatus.partly_received: N_("Partly received"),
    PledgeStatus.received: N_("Received"),
    PledgeStatus.closed: N_("Closed"),
    PledgeStatus.cancelled: N_("Cancelled"),
}
# The button that moves a pledge to a status.
STATUS_ACTIONS = {
    PledgeStatus.confirmed: N_("Confirm the pledge"),
    PledgeStatus.closed: N_("Close the pledge"),
    PledgeStatus.cancelled: N_("Cancel the pledge"),
}
MESSAGE_KIND_LABELS = {
    MessageKind.user: N_("Message"),
    MessageKind.system: N_("System"),
    MessageKind.discrepancy: N_("Discrepancy"),
}
TRANSFER_STATUS_LABELS = {
    TransferStatus.in_transit: N_("In transit"),
    TransferStatus.received: N_("Received"),
}
REASON_LABELS = {
    AdjustmentReason.damage: N_("Damaged (write-off)"),
    AdjustmentReason.expiry: N_("Expired (write-off)"),
    AdjustmentReason.count_correction: N_("Count correction"),
}


def sku_value(item_id: int | None, kit_id: int | None) -> str:
    """The form value naming an item or a kit: ``item:3`` or ``kit:5``."""
    return f"item:{item_id}" if item_id is not None else f"kit:{kit_id}"


def parse_sku_value(raw: str) -> tuple[int | None, int | None] | None:
    kind, _, number = raw.partition(":")
    if not number.isdigit() or kind not in {"item", "kit"}:
        return None
    return (int(number), None) if kind == "item" else (None, int(number))


class Names:
    """Names of items, kits, organizations, warehouses, programs and users, each looked up once."""

    def __init__(self, session: Session, lang: str) -> None:
        self.session = session
        self.lang = lang
        self._cache: dict[tuple[str, int], Any] = {}

    def _get(self, kind: str, id_: int, load: Any) -> Any:
        key = (kind, id_)
        if key not in self._cache:
            self._cache[key] = load(self.session, id_)
        return self._cache[key]

    def sku(self, item_id: int | None, kit_id: int | None) -> str:
        """The item's (or kit's) name in the page's language and its SKU."""
        if item_id is not None:
            row = self._get("item", item_id, catalog.require_item)
        elif kit_id is not None:
            row = self._get("kit", kit_id, catalog.require_kit)
        else:
            return "–"
        return f"{localized(row, self.lang)} ({row.sku})"

    def unit(self, item_id: int | None) -> str:
        return str(self._get("item", item_id, catalog.require_item).unit) if item_id else ""

    def org(self, org_id: int | None) -> str:
        if org_id is None:
            return "–"
        row = self._get("org", org_id, organizations.get_organization)
        if row is None:
            return f"#{org_id}"
        return str((self.lang == "zh_CN" and row.name_zh) or row.name)

    def warehouse(self, warehouse_id: int) -> str:
        return localized(self._get("warehouse", warehouse_id, places.require_warehouse), self.lang)

    def program(self, program_id: int) -> str:
        row = self._get("program", program_id, donations.require_program)
        return str((self.lang == "zh_CN" and row.name_zh) or row.name)

    def user(self, user_id: int | None) -> str | None:
        if user_id is None:
            return None
        row = self._get("user", user_id, users.get_user)
        return str(row.full_name) if row is not None else f"#{user_id}"


def sku_choices(session: Session, lang: str) -> list[tuple[str, str]]:
    """Every item, then every kit, as (form value, label) for a select."""
    items, _ = catalog.list_items(session, ItemFilters(), limit=CHOICES_LIMIT)
    kits, _ = catalog.list_kits(session, KitFilters(), limit=CHOICES_LIMIT)
    return [(sku_value(i.id, None), f"{localized(i, lang)} ({i.sku})") for i in items] + [
        (sku_value(None, k.id), f"{localized(k, lang)} ({k.sku})") for k in kits
    ]


def warehouse_choices(session: Session, lang: str) -> list[tuple[int, str]]:
    rows, _ = places.list_warehouses(session, NameFilters(), limit=CHOICES_LIMIT)
    return [(w.id, f"{localized(w, lang)} ({w.code})") for w in rows]
