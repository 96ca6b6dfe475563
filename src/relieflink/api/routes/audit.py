from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from relieflink.api.deps import SessionDep, require_role
from relieflink.audit import service as audit
from relieflink.common.fields import Id, Text
from relieflink.common.schemas import ReadModel
from relieflink.models import Role, User

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditEventRead(ReadModel):
    id: int
    at: datetime
    actor_id: int | None
    action: str
    entity: str
    entity_id: int | None
    detail: dict[str, Any] | None


@router.get("", response_model=list[AuditEventRead])
def list_audit_events(
    session: SessionDep,
    user: Annotated[User, require_role(Role.admin)],
    entity: Text | None = None,
    entity_id: Id | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEventRead]:
    """The newest audit events (administrators only)."""
    events = audit.list_events(session, entity=entity, entity_id=entity_id, limit=limit)
    return [AuditEventRead.model_validate(e) for e in events]
