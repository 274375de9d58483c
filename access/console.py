"""Console sign-in: passwords (argon2id), browser sessions that end at logout or after idle time, and the CSRF token
of each session's forms. API tokens (`access.auth`) stay for machines."""

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from access.auth import AuthError, hash_token
from models import ConsoleSession, User, utcnow

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 200  # argon2 takes any length; a megabyte of "password" is a way to burn the server's CPU
_hasher = PasswordHasher()  # argon2id with the library's current parameters (RFC 9106 low-memory profile)
# Verified when the user name is unknown, so that a wrong name takes as long as a wrong password: timing tells an
# attacker nothing about who has an account.
_UNKNOWN_USER_HASH = _hasher.hash(secrets.token_urlsafe(16))


def set_password(user: User, password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AuthError(f"a console password has at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AuthError(f"a console password has at most {MAX_PASSWORD_CHARS} characters")
    user.password_hash = _hasher.hash(password)


def check_password(session: Session, name: str, password: str) -> User | None:
    """The user whose name and password these are, or None. Disabled users and users without a console password
    are refused like a wrong password."""
    user = session.scalar(select(User).where(User.name == name.strip())) if len(name) <= 100 else None
    if len(password) > MAX_PASSWORD_CHARS:
        return None
    stored = user.password_hash if user is not None and user.password_hash else _UNKNOWN_USER_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.password_hash or user.disabled:
        return None
    if _hasher.check_needs_rehash(stored):  # parameters raised since it was set: upgrade while we know the password
        user.password_hash = _hasher.hash(password)
    return user


def open_session(session: Session, user: User, client_ip: str | None) -> str:
    """A new browser session for `user`; returns the cookie value (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    session.add(ConsoleSession(user_id=user.id, token_hash=hash_token(token), client_ip=client_ip))
    session.flush()
    return token


def signed_in(session: Session, token: str, idle: timedelta, now: datetime | None = None) -> User | None:
    """The user of a live browser session, which this use keeps alive; None when unknown, ended, idle too long or the
    user is disabled."""
    now = now or utcnow()
    console_session = session.scalar(
        select(ConsoleSession).where(ConsoleSession.token_hash == hash_token(token), ConsoleSession.ended_at.is_(None))
    )
    if console_session is None or console_session.user.disabled:
        return None
    if now - console_session.last_seen_at > idle:
        console_session.ended_at = console_session.last_seen_at + idle
        return None
    console_session.last_seen_at = now
    return console_session.user


def end_session(session: Session, token: str) -> None:
    console_session = session.scalar(select(ConsoleSession).where(ConsoleSession.token_hash == hash_token(token)))
    if console_session is not None and console_session.ended_at is None:
        console_session.ended_at = utcnow()


def end_sessions_of(session: Session, user: User) -> int:
    """Sign a user out everywhere (a new password, a lost phone)."""
    live = session.scalars(
        select(ConsoleSession).where(ConsoleSession.user_id == user.id, ConsoleSession.ended_at.is_(None))
    ).all()
    for console_session in live:
        console_session.ended_at = utcnow()
    return len(live)


def csrf_token(session_token: str) -> str:
    """The token every form of this browser session carries: derived from the session's secret cookie, which another
    site can neither read nor guess, so a forged cross-site POST cannot carry it."""
    return hmac.new(session_token.encode(), b"console-csrf", hashlib.sha256).hexdigest()


def csrf_valid(session_token: str, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(csrf_token(session_token), submitted)
