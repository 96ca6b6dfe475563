"""Per-vehicle manifests: printable HTML and CSV, in stop order.

The pickup codes are never printed: the courier checks the code the resident tells or shows
(the manifest names the parcel and household to check it against).
"""

from __future__ import annotations

import csv
import html
import io

from sqlalchemy.orm import Session

from relieflink.common import files
from relieflink.dispatch import repository as repo
from relieflink.dispatch.tracking import require_route
from relieflink.models import Kit, ParcelLine, User, Warehouse

COLUMNS = (
    "stop",
    "eta",
    "community",
    "community_zh",
    "last_100m",
    "household",
    "building",
    "unit",
    "parcel",
    "packs",
    "contents",
    "weight_kg",
    "check",
    "status",
)


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def manifest(
    session: Session, route_id: int, *, actor: User
) -> tuple[dict[str, object], list[dict[str, object]]]:
    """The route's header and one row per parcel, in stop order."""
    route = require_route(session, route_id, actor=actor)
    rows = repo.manifest_rows(session, route_id)
    parcel_ids = [r[9] for r in rows]
    lines = repo.lines_of(session, parcel_ids) if parcel_ids else {}
    kits = {k.id: k.sku for k in session.query(Kit).all()}

    def contents(parcel_lines: list[ParcelLine]) -> str:
        parts = []
        for line in parcel_lines:
            sku = kits.get(line.kit_id or -1) if line.kit_id else f"item {line.item_id}"
            parts.append(f"{line.quantity} × {sku}")
        return "; ".join(parts)

    out = []
    for (
        seq,
        eta,
        mode,
        ccode,
        cname,
        cname_zh,
        hcode,
        building,
        unit,
        pid,
        packs,
        grams,
        status,
    ) in rows:
        out.append(
            {
                "stop": seq,
                "eta": _clock(eta),
                "community": f"{ccode} {cname}",
                "community_zh": cname_zh,
                "last_100m": str(mode),
                "household": hcode,
                "building": building or "",
                "unit": unit or "",
                "parcel": f"P{pid}",
                "packs": packs,
                "contents": contents(lines.get(pid, [])),
                "weight_kg": round(grams / 1000, 1),
                "check": f"pickup code of {hcode} (resident's app) for P{pid}",
                "status": str(status),
            }
        )
    depot = session.get(Warehouse, route.depot_id)
    header: dict[str, object] = {
        "route": route.id,
        "plan": route.plan_id,
        "vehicle": route.vehicle_id,
        "vehicle_index": route.vehicle_index,
        "kind": str(route.kind),
        "carrier": route.carrier_id,
        "depot": f"{depot.code} {depot.name}" if depot else route.depot_id,
        "start": _clock(route.start_s),
        "end": _clock(route.end_s),
        "distance_km": round(route.distance_m / 1000, 1),
        "stops": len({r["stop"] for r in out}),
        "parcels": len(out),
    }
    return header, out


def manifest_csv(session: Session, route_id: int, *, actor: User) -> str:
    _header, rows = manifest(session, route_id, actor=actor)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: files.neutralise(v) for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def manifest_html(session: Session, route_id: int, *, actor: User) -> str:
    header, rows = manifest(session, route_id, actor=actor)
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{e(str(r[c]))}</td>" for c in COLUMNS) + "</tr>" for r in rows
    )
    facts = " · ".join(f"{e(str(k))}: {e(str(v))}" for k, v in header.items())
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Manifest route {header['route']} 运单</title>"
        "<style>body{font-family:sans-serif;font-size:11pt}table{border-collapse:collapse;"
        "width:100%}td,th{border:1px solid #999;padding:3px 5px;text-align:left}"
        "@media print{.noprint{display:none}}</style></head><body>"
        f"<h1>Manifest 运单 — route {header['route']}</h1><p>{facts}</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        "<p>Hand over only against the resident's pickup code (or a supervisor override).</p>"
        "</body></html>"
    )
