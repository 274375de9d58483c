"""What the Zalo connector keeps in the store (run in threads): the Zalo users (whom they are, whether they follow
the OA, their live conversation, their latest message), the OA's token pair, handled events and ZNS receipts."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigns import attempts
from campaigns.attempts import Outcome
from connectors.events import first_time
from connectors.zalo.events import Delivery, SharedInfo
from conversations.residents import person_with_phone
from models import Conversation, Person, ProviderToken, ZaloUser, utcnow

log = logging.getLogger(__name__)

TOKEN_ROW = "zalo_oa"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_at: datetime


def stored_tokens(sessions: sessionmaker[Session]) -> TokenPair | None:
    with sessions() as session:
        row = session.get(ProviderToken, TOKEN_ROW)
        return TokenPair(row.access_token, row.refresh_token, row.expires_at) if row else None


def store_tokens(sessions: sessionmaker[Session], tokens: TokenPair) -> None:
    with sessions.begin() as session:
        row = session.get(ProviderToken, TOKEN_ROW) or ProviderToken(provider=TOKEN_ROW)
        row.access_token, row.refresh_token, row.expires_at = (
            tokens.access_token,
            tokens.refresh_token,
            tokens.expires_at,
        )
        session.add(row)


def first_event(sessions: sessionmaker[Session], key: str) -> bool:
    """Remember a webhook event; False when it was handled before."""
    with sessions.begin() as session:
        return first_time(session, "zalo", key)


def set_following(sessions: sessionmaker[Session], user_id: str, following: bool) -> None:
    with sessions.begin() as session:
        _zalo_user(session, user_id).following = following


def heard_from(sessions: sessionmaker[Session], user_id: str, at: datetime) -> tuple[int | None, int | None]:
    """Note the message; returns the user's person and live conversation, when they have them."""
    with sessions.begin() as session:
        user = _zalo_user(session, user_id)
        _note_message(user, at)
        return user.person_id, _live_conversation(session, user)


def link_person(
    sessions: sessionmaker[Session], user_id: str, phone: str, info: SharedInfo, at: datetime
) -> tuple[int, int | None]:
    """The person with this phone (added when unknown) is the user's; returns them and their live conversation."""
    with sessions.begin() as session:
        person = session.get(Person, person_with_phone(session, phone))
        _fill_blanks(person, full_name=info.name, **info.place())
        session.flush()
        user = _zalo_user(session, user_id)
        _note_message(user, at)
        if user.person_id != person.id:  # another person's phone now: the old conversation is not theirs
            user.person_id, user.conversation_id = person.id, None
        return person.id, _live_conversation(session, user)


def follow_conversation(sessions: sessionmaker[Session], user_id: str, conversation_id: int) -> None:
    """The user's messages go to this conversation from now on."""
    with sessions.begin() as session:
        _zalo_user(session, user_id).conversation_id = conversation_id


def user_of_conversation(sessions: sessionmaker[Session], conversation_id: int) -> str | None:
    """The Zalo user whose messages go to this conversation."""
    with sessions() as session:
        return session.scalar(select(ZaloUser.user_id).where(ZaloUser.conversation_id == conversation_id).limit(1))


def latest_user_of(sessions: sessionmaker[Session], person_id: int) -> ZaloUser | None:
    """The Zalo user linked to this person who wrote last."""
    with sessions() as session:
        return session.scalars(
            select(ZaloUser)
            .where(ZaloUser.person_id == person_id)
            .order_by(ZaloUser.last_message_at.desc().nulls_last())
            .limit(1)
        ).first()


def in_reply_window(last_message_at: datetime | None, now: datetime, hours: int) -> bool:
    return last_message_at is not None and now - last_message_at < timedelta(hours=hours)


def mark_delivered(sessions: sessionmaker[Session], delivery: Delivery) -> None:
    """A ZNS delivery receipt: its tracking id is the outreach attempt's id (see ZnsChannel)."""
    if not (delivery.tracking_id.isascii() and delivery.tracking_id.isdigit()):
        log.debug("ZNS receipt of a message this platform did not track: %s", delivery.tracking_id)
        return
    with sessions.begin() as session:
        attempts.record_report(session, int(delivery.tracking_id), delivery.msg_id, Outcome.DELIVERED, utcnow())


def _zalo_user(session: Session, user_id: str) -> ZaloUser:
    user = session.get(ZaloUser, user_id)
    if user is None:
        user = ZaloUser(user_id=user_id)
        session.add(user)
    return user


def _live_conversation(session: Session, user: ZaloUser) -> int | None:
    conversation = session.get(Conversation, user.conversation_id) if user.conversation_id else None
    return conversation.id if conversation is not None and conversation.ended_at is None else None


def _note_message(user: ZaloUser, at: datetime) -> None:
    """The reply window runs from the user's latest message; a late retry never moves it back."""
    if user.last_message_at is None or at > user.last_message_at:
        user.last_message_at = at


def _fill_blanks(person: Person, **details: str | None) -> None:
    """What the resident shared fills only what the store lacks: names and addresses from F1 lists are kept."""
    for field, value in details.items():
        if value and not getattr(person, field):
            setattr(person, field, value[: Person.__table__.c[field].type.length])
