"""FastAPI dependencies of the API routers: the platform's parts, the store session and the signed-in user."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from access.auth import CAN_HANDLE_ALERTS, CAN_READ_TRANSCRIPTS, user_for_token
from app.platform import Platform
from models import User


def get_platform(request: Request) -> Platform:
    return request.app.state.platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


def get_session(platform: PlatformDep) -> Iterator[Session]:
    """The request's unit of work, committed when the route returns and before the response is sent (an answer means
    the write, and the audit row of a read, is stored); closing it rolls back a failed one. A route may commit earlier
    (an export writes its audit row before any data leaves). A streamed body reads in a session of its own: this one
    is closed by then and holds no connection while a stream is open."""
    with platform.sessions() as session:
        yield session
        session.commit()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="An API token from `outreach user add`.")


def current_user(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "send `Authorization: Bearer <token>`; `outreach user add` makes a token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    user = user_for_token(session, credentials.credentials)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "this token is unknown, revoked or belongs to a disabled user",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


UserDep = Annotated[User, Depends(current_user)]


def transcript_reader(user: UserDep) -> User:
    if user.role not in CAN_READ_TRANSCRIPTS:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"the {user.role.value} role cannot read transcripts")
    return user


TranscriptReaderDep = Annotated[User, Depends(transcript_reader)]


def alert_handler(user: UserDep) -> User:
    if user.role not in CAN_HANDLE_ALERTS:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"the {user.role.value} role cannot read or acknowledge alerts")
    return user


AlertHandlerDep = Annotated[User, Depends(alert_handler)]
