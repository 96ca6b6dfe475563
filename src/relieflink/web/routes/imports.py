"""File import (CSV/XLSX upload, with the row-level error report) and export links."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import Form, UploadFile
from fastapi.responses import FileResponse, HTMLResponse
from starlette.background import BackgroundTask

from relieflink.bulk import service as bulk
from relieflink.bulk.formats import FORMATS
from relieflink.common import files
from relieflink.errors import FieldError, Invalid
from relieflink.models import Role
from relieflink.users import access
from relieflink.web.pages import N_, PageRouter, Web, WebDep

router = PageRouter()
EXPORT_FORMATS = ("csv", "xlsx")
KIND_LABELS = {
    "organizations": N_("Organizations"),
    "districts": N_("Districts"),
    "communities": N_("Communities"),
    "warehouses": N_("Warehouses"),
    "households": N_("Households"),
    "items": N_("Items"),
    "programs": N_("Programmes"),
}


def _kinds_for(role: Role) -> list[str]:
    """A committee imports households only (into its own communities); staff import anything."""
    return list(FORMATS) if role in access.STAFF else ["households"]


def _row_errors(errors: list[FieldError]) -> list[dict[str, Any]]:
    """``FieldError(("line", n, column), reason)`` from the import → table rows."""
    rows = []
    for error in errors:
        line = error.loc[1] if len(error.loc) > 1 and error.loc[0] == "line" else ""
        column = error.loc[2] if len(error.loc) > 2 else ""
        rows.append({"line": line, "column": column, "reason": error.msg})
    return rows


def _page(web: Web, status_code: int = 200, **context: Any) -> HTMLResponse:
    role = Role(web.user.role)
    base = {
        "kinds": [(k, KIND_LABELS.get(k, k)) for k in _kinds_for(role)],
        "exports": [(k, KIND_LABELS.get(k, k)) for k in FORMATS] if role in access.STAFF else [],
        "export_formats": EXPORT_FORMATS,
        "selected": "households",
        "report": None,
        "failure": None,
        "errors": [],
    }
    template = "imports/_result.html" if web.is_htmx() else "imports/index.html"
    return web.render(template, base | context, status_code=status_code)


@router.page("/imports", roles=access.HOUSEHOLD_WRITERS, nav=N_("Import and export"), order=80)
def import_form(web: WebDep) -> HTMLResponse:
    return _page(web)


@router.action("/imports", roles=access.HOUSEHOLD_WRITERS)
def import_upload(
    web: WebDep,
    kind: Annotated[str, Form()],
    file: UploadFile,
    skip_invalid: Annotated[bool, Form()] = False,
) -> HTMLResponse:
    """Validate every row; with a bad row nothing is written and each bad cell is listed."""
    bulk.require_format(kind)
    with tempfile.TemporaryDirectory() as tmp:
        path = files.save_upload(file.file, file.filename, Path(tmp))
        try:
            report = bulk.import_file(
                web.session,
                kind,
                path,
                actor=web.user,
                skip_invalid=skip_invalid,
                reject_path=Path(tmp) / "rejects.csv",
            )
        except Invalid as exc:
            web.session.rollback()  # nothing of a refused file is kept
            return _page(
                web,
                422,
                selected=kind,
                failure=exc.message,
                errors=_row_errors(exc.errors),
            )
    errors = [{"line": e.line, "column": e.column or "", "reason": e.reason} for e in report.errors]
    return _page(web, selected=kind, report=report, errors=errors)


@router.page("/exports/{kind}.{fmt}", roles=access.STAFF)
def export_download(kind: str, fmt: str, web: WebDep) -> FileResponse:
    """Every record of ``kind`` as CSV or XLSX, in the columns the import reads."""
    if fmt not in EXPORT_FORMATS:
        raise Invalid(f"unknown format {fmt!r}; choose csv or xlsx")
    tmp = tempfile.TemporaryDirectory()
    path = Path(tmp.name) / f"{kind}.{fmt}"
    try:
        bulk.export_file(web.session, kind, path, actor=web.user)
    except BaseException:
        tmp.cleanup()
        raise
    return FileResponse(path, filename=path.name, background=BackgroundTask(tmp.cleanup))
