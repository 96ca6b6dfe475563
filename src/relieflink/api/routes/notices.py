"""A resident's notice preferences: the language notices come in, an e-mail address, opt-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from relieflink.api.deps import SessionDep, require_role
from relieflink.errors import Conflict
from relieflink.models import Role, User
from relieflink.notices import service as notices
from relieflink.notices.schemas import PreferenceRead, PreferenceUpdate

router = APIRouter(prefix="/notices", tags=["notices"])
Resident = Annotated[User, require_role({Role.resident})]


def _household(user: User) -> int:
    if user.household_id is None:
        raise Conflict("your account is not linked to a household")
    return user.household_id


def _read(session: SessionDep, household_id: int) -> PreferenceRead:
    language, email, opted_out = notices.preference_of(session, household_id)
    return PreferenceRead(
        language=language, email=email, opted_out=opted_out, channels=notices.channels_on()
    )


@router.get("/preferences", response_model=PreferenceRead)
def read_preferences(session: SessionDep, user: Resident) -> PreferenceRead:
    """How your household hears from the operation."""
    return _read(session, _household(user))


@router.put("/preferences", response_model=PreferenceRead)
def update_preferences(
    data: PreferenceUpdate, session: SessionDep, user: Resident
) -> PreferenceRead:
    """Change the language, the e-mail address, or stop (and restart) notices."""
    household_id = _household(user)
    notices.set_preference(
        session, household_id, language=data.language, email=data.email, opted_out=data.opted_out
    )
    return _read(session, household_id)
