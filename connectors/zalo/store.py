"""What the Zalo connector keeps in the store (run in threads): the Zalo users (whom they are, whether they follow
the OA, their live conversation, their latest message), the OA's token pair, handled events and ZNS receipts."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from access.errors import InvalidValue
from campaigns import attempts, teams
from campaigns.attempts import Outcome
from connectors.events import first_time
from connectors.zalo.events import Delivery, Message, SharedInfo
from conversations.residents import person_with_phone
from models import BroadcastDelivery, Conversation, Person, ProviderToken, ZaloUser, utcnow

log = logging.getLogger(__name__)

TOKEN_ROW = "zalo_oa"
TRACKING_PREFIX = "b"  # ZNS tracking ids of broadcasts: "b" + the delivery's id (attempts' are bare numbers)


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


def mark_delivered(sessions: sessionmaker[Session], delivery: Delivery, recipient: str, at: datetime) -> None:
    """A delivery receipt. A ZNS tracking id is an outreach attempt's id (ZnsChannel) or "b" and a broadcast
    delivery's (BroadcastSender); an OA message is known by its msg_id."""
    tracking_id = delivery.tracking_id
    with sessions.begin() as session:
        if tracking_id is None:
            teams.mark_received(session, at, ref=delivery.msg_id, user_id=recipient)
        elif _number(tracking_id):
            attempts.record_report(session, int(tracking_id), delivery.msg_id, Outcome.DELIVERED, utcnow())
        elif tracking_id.startswith(TRACKING_PREFIX) and _number(tracking_id.removeprefix(TRACKING_PREFIX)):
            teams.mark_received(session, at, delivery_id=int(tracking_id.removeprefix(TRACKING_PREFIX)))
        else:
            log.debug("ZNS receipt of a message this platform did not track: %s", tracking_id)


def mark_seen(sessions: sessionmaker[Session], user_id: str, msg_ids: list[str], at: datetime) -> None:
    with sessions.begin() as session:
        teams.mark_read(session, user_id, msg_ids, at)


def answer_broadcast(
    sessions: sessionmaker[Session], user_id: str, message: Message, at: datetime, hours: int, *, quoted_only: bool
) -> str | None:
    """Keep the message as the user's answer to a broadcast, when it is one (it quotes a broadcast, or, unless
    `quoted_only`, it is the first message since a broadcast reached them by OA message within the reply window);
    returns the team's name. One the broadcast cannot keep (too long, too many) goes the usual way."""
    since = at - timedelta(hours=hours)
    with sessions.begin() as session:
        delivery_id = teams.awaiting_reply(session, user_id, since, message.quote_msg_id, quoted_only=quoted_only)
        if delivery_id is None:
            return None
        try:
            teams.record_reply(session, delivery_id, message.text, "zalo", at, external_id=message.msg_id)
        except InvalidValue:
            return None
        return session.get(BroadcastDelivery, delivery_id).broadcast.team.name


def _number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) < 19


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
