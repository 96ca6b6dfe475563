from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from relieflink.api.deps import CurrentUser, SessionDep, client_address, request_token
from relieflink.db import KeepAndRefuse
from relieflink.errors import Unauthorized
from relieflink.users import service as users
from relieflink.users.schemas import SessionToken, SignIn, UserRead

router = APIRouter(prefix="/auth", tags=["auth"])
WRONG_CREDENTIALS = "wrong username or password"


@router.post("/sign-in", response_model=SessionToken)
def sign_in(data: SignIn, request: Request, session: SessionDep) -> SessionToken:
    """Exchange a username and password for a bearer token."""
    signed = users.sign_in(session, data.username, data.password, address=client_address(request))
    if signed is None:  # the failed attempt is kept: it counts towards the rate limit
        raise KeepAndRefuse(Unauthorized(WRONG_CREDENTIALS))
    return SessionToken(
        access_token=signed.token,
        expires_at=signed.expires_at,
        user=UserRead.model_validate(signed.user),
    )


@router.post("/sign-out", status_code=status.HTTP_204_NO_CONTENT)
def sign_out(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))
    ],
) -> None:
    """Revoke the token this request was made with."""
    token = request_token(request, credentials)
    if token:
        users.sign_out(session, token)


@router.get("/me", response_model=UserRead)
def me(user: CurrentUser) -> UserRead:
    """The signed-in user."""
    return UserRead.model_validate(user)
