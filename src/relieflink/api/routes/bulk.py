"""File import (CSV/XLSX upload) and export."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, UploadFile
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from relieflink.api.deps import SessionDep, require_role
from relieflink.bulk import service as bulk
from relieflink.bulk.schemas import ImportReport
from relieflink.common import files
from relieflink.common.fields import Text
from relieflink.models import User
from relieflink.users import access

router = APIRouter(tags=["import and export"])


@router.post("/imports/{kind}", response_model=ImportReport)
def import_file(
    kind: Text,
    file: UploadFile,
    session: SessionDep,
    user: Annotated[User, require_role(access.HOUSEHOLD_WRITERS)],
    skip_invalid: Annotated[bool, Query()] = False,
) -> ImportReport:
    """Import a CSV or XLSX file; with any bad row nothing is written (unless ``skip_invalid``)."""
    bulk.require_format(kind)
    with tempfile.TemporaryDirectory() as tmp:
        path = files.save_upload(file.file, file.filename, Path(tmp))
        report = bulk.import_file(
            session,
            kind,
            path,
            actor=user,
            skip_invalid=skip_invalid,
            reject_path=Path(tmp) / "rejects.csv",
        )
        return report.model_copy(update={"reject_file": None})


@router.get("/exports/{kind}.{fmt}")
def export_file(
    kind: Text, fmt: Text, session: SessionDep, user: Annotated[User, require_role(access.STAFF)]
) -> FileResponse:
    """Download every record of ``kind`` as CSV or XLSX, in the columns the import reads."""
    tmp = tempfile.TemporaryDirectory()
    path = Path(tmp.name) / f"{kind}.{fmt}"
    bulk.export_file(session, kind, path, actor=user)
    return FileResponse(path, filename=path.name, background=BackgroundTask(tmp.cleanup))
