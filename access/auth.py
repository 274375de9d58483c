"""Users, roles, province scope and API tokens."""

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from access.errors import Forbidden, NotFound
from models import ApiToken, AuditLog, Person, Role, User, utcnow

T = TypeVar("T")
TOKEN_PREFIX = "otk_"
PROVINCE_CODE = re.compile(r"^\d{2}$")

# What each role may read. Transcripts hold everything a resident said: viewers get declarations only.
CAN_READ_TRANSCRIPTS = {Role.ADMIN, Role.MANAGER, Role.TRACER}
# Alerts are the work queue of the people who act on them (read and acknowledge). A viewer's dashboards have each
# declaration's alert level and reasons already; the queue, who took what and when, is not theirs.
CAN_HANDLE_ALERTS = {Role.ADMIN, Role.MANAGER, Role.TRACER}
# Who imports contact lists and runs campaigns over them.
CAN_MANAGE_LISTS = {Role.ADMIN, Role.MANAGER}


class AuthError(ValueError):
    pass


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is safe here (no dictionary to attack) and lookups are cheap.
    return hashlib.sha256(token.encode()).hexdigest()


def check_manages_lists(user: User) -> None:
    """Importing contact lists and running campaigns over them is for admins and managers."""
    if user.role not in CAN_MANAGE_LISTS:
        raise Forbidden(f"the {user.role.value} role cannot import contact lists")


def check_moves_people(user: User) -> None:
    """Moving a person between provinces is a national action: a national admin or manager's."""
    if user.province_code is not None or user.role not in CAN_MANAGE_LISTS:
        raise Forbidden("only a national admin or manager moves people between provinces")


def check_imports_national_data(user: User) -> None:
    """Check-ins, test results and vaccination records are the national platforms' data: a national admin or manager
    imports them (each province then works on what they bring to its lists)."""
    if user.province_code is not None or user.role not in CAN_MANAGE_LISTS:
        raise Forbidden("only a national admin or manager imports the national platforms' data")


def validate_province_code(code: str | None) -> str | None:
    if code is None:
        return None
    if not PROVINCE_CODE.match(code):
        raise AuthError(f"province code '{code}' must be the two-digit GSO code, e.g. 01 (Hà Nội), 79 (TP.HCM)")
    return code


@dataclass(frozen=True)
class NewToken:
    user: User
    token: str


def add_user(session: Session, name: str, role: Role, province_code: str | None) -> NewToken:
    name = name.strip()
    if not name:
        raise AuthError("the user name is empty")
    if session.scalar(select(User).where(User.name == name)):
        raise AuthError(f"a user named '{name}' exists already; use `outreach user token {name}` for a new token")
    user = User(name=name, role=role, province_code=validate_province_code(province_code))
    session.add(user)
    session.flush()
    return NewToken(user, issue_token(session, user))


def issue_token(session: Session, user: User) -> str:
    """Make a token for `user`; only its hash is stored, so this is the one time it can be shown."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), prefix=token[:10]))
    session.flush()
    return token


def revoke_tokens(session: Session, user: User) -> int:
    live = [token for token in user.tokens if token.revoked_at is None]
    for token in live:
        token.revoked_at = utcnow()
    return len(live)


def user_for_token(session: Session, token: str) -> User | None:
    api_token = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
    )
    if api_token is None or api_token.user.disabled:
        return None
    api_token.last_used_at = utcnow()
    return api_token.user


def operator() -> User:
    """Who the command line acts as. Whoever runs it holds the store itself: a national admin, with no user row (the
    audit log records its actions without a user). Never added to a session."""
    return User(name="operator", role=Role.ADMIN, province_code=None)


def audit(
    session: Session,
    user: User,
    action: str,
    object_type: str,
    object_ids: list[int],
    client_ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditLog(
            user_id=user.id,
            action=action,
            object_type=object_type,
            object_ids=object_ids,
            client_ip=client_ip,
            detail=detail or {},
        )
    )


def get_in_scope(session: Session, user: User, model: type[T], row_id: int, noun: str) -> T:
    """A row with its own `province_code` (contact list, campaign). NotFound when absent or another province's."""
    row = session.get(model, row_id)
    if row is None or (user.province_code and row.province_code != user.province_code):
        raise NotFound.in_scope(noun, row_id)
    return row


def in_scope(stmt: Select, user: User) -> Select:
    """Limit a query joined to Person to the user's province.

    People with no known province are visible to national users only: a scoped user fails closed.
    """
    return stmt if user.province_code is None else stmt.where(Person.province_code == user.province_code)
