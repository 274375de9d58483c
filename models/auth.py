"""Console users, their API tokens and the audit log of what they read."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, enum_column, utcnow


class Role(StrEnum):
    ADMIN = "admin"  # everything, users included
    MANAGER = "manager"  # lists and campaigns of their province, declarations, transcripts
    TRACER = "tracer"  # declarations, transcripts and alerts of their province
    VIEWER = "viewer"  # declarations only (no transcripts)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[Role] = mapped_column(enum_column(Role))
    province_code: Mapped[str | None] = mapped_column(String(8), comment="NULL = every province")
    disabled: Mapped[bool] = mapped_column(default=False)
    password_hash: Mapped[str | None] = mapped_column(
        String(200), comment="argon2id hash of the console password; NULL = no console login (API tokens only)"
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tokens: Mapped[list["ApiToken"]] = relationship(back_populates="user")


class ApiToken(Base):
    """A bearer token. Only its SHA-256 is kept: the token itself is shown once, when made."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), comment="first characters, to tell tokens apart in lists")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")


class ConsoleSession(Base):
    """A signed-in browser. Only the SHA-256 of its cookie is kept; it ends at logout or after idle time."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    client_ip: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship()


class AuditLog(Base):
    """Who read or changed what, and when: health data is sensitive (Decree 13/2023)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    action: Mapped[str] = mapped_column(String(64), comment="e.g. declaration.read, transcript.read")
    object_type: Mapped[str] = mapped_column(String(32))
    object_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    client_ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
