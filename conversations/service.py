"""The conversation service: one resident turn, the same road for every channel.

1. record the resident's turn (committed before anything else: nothing said is lost);
2. one round trip to the engine, which returns the bot's replies and every slot value;
3. upsert the declaration from the slots, answer by answer, and raise alerts;
4. record the bot's turns.

When the engine is down, step 1 has happened: the turn stays unprocessed and `replay_pending` hands it to the
engine, in order, once it is back.
"""

import asyncio
import json
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from itertools import takewhile
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session, sessionmaker

from access.auth import hash_token
from bot.vntext import nfc
from campaigns import attempts
from campaigns.attempts import Outcome
from campaigns.rules import CampaignRules
from conversations.alerts import SYMPTOM_NAMES, assess, raise_alert
from conversations.engine import BotMessage, Button, EngineClient, EngineError, EngineReply
from conversations.history import record_answers
from conversations.outreach import Outreach, OutreachStore
from conversations.residents import claim_province, person_with_phone, recorded_doses
from ground.locks import KeyedLocks
from ground.settings import Settings
from models import (
    AttemptStatus,
    Channel,
    Conversation,
    Declaration,
    DeclarationStatus,
    OutreachAttempt,
    Person,
    Speaker,
    Turn,
    utcnow,
)

log = logging.getLogger(__name__)

STATUS_OF_OUTCOME = {
    "complete": DeclarationStatus.COMPLETE,
    "refused": DeclarationStatus.REFUSED,
    "wrong_person": DeclarationStatus.WRONG_PERSON,
    "callback_requested": DeclarationStatus.CALLBACK_REQUESTED,
}


WITH_A_PERSON = object()  # _record's answer for a conversation a tracer has taken over


class EngineDown(RuntimeError):
    """The engine did not answer; the resident's turn is stored and will be replayed."""


@dataclass(frozen=True)
class Pending:
    """A resident turn the engine has yet to answer, with what the store knows of the conversation so far."""

    turn_id: int
    sender: str
    text: str
    engine_state: dict[str, Any] | None


@dataclass(frozen=True)
class TurnResult:
    conversation_id: int
    replies: list[BotMessage]
    ended: bool


@dataclass(frozen=True)
class Line:
    speaker: Speaker
    text: str
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class Transcript:
    lines: list[Line]
    ended: bool
    seq: int  # the number of its latest line (0: none): a chat page asks for the lines after it
    with_a_person: bool  # a tracer has taken the conversation over


def _opening_message(name: str | None, ask_where: bool = False, doses: int | None = None) -> str:
    """The engine's opening: the name to greet; `ask_where` when nobody knows the resident's province yet (the
    dialogue then asks where they are staying, so that their alerts reach a provincial team); the vaccine `doses` on
    record, which the dialogue confirms instead of asking."""
    entities = ({"name": name} if name else {}) | ({"ask_where": True} if ask_where else {})
    entities |= {"recorded_doses": doses} if doses else {}
    return "/start_declaration" + json.dumps(entities, ensure_ascii=False)


class ConversationService:
    def __init__(self, sessions: sessionmaker[Session], engine: EngineClient, settings: Settings) -> None:
        self.sessions = sessions
        self.engine = engine
        self.settings = settings
        self.outreach = OutreachStore(sessions, settings.public_url)
        self._lock = KeyedLocks[int, asyncio.Lock](asyncio.Lock)  # one turn at a time per conversation

    async def start(
        self,
        person_id: int,
        channel: Channel,
        *,
        outreach: Outreach | None = None,
        external_ref: str | None = None,
        token: str | None = None,
        phone_verified: bool = True,
        claimed_name: str | None = None,
    ) -> tuple[TurnResult, str]:
        """Open a conversation (and its declaration) and let the bot speak first.

        Returns the bot's opening and the resident's secret token for this conversation (shown once): a new one,
        or `token` when the resident already holds one (the personal link of an SMS invitation).

        `phone_verified=False` (a phone only typed into a page): the opening reveals nothing stored about the
        person; it greets with `claimed_name`, the name the resident gave, if any.

        `outreach`: the campaign's attempt this conversation answers (an attempt for `person_id`), if any.
        """
        token = token or secrets.token_urlsafe(24)
        conversation = Conversation(
            person_id=person_id,
            campaign_id=outreach.campaign_id if outreach else None,
            outreach_id=outreach.attempt_id if outreach else None,
            channel=channel,
            engine_sender_id=uuid.uuid4().hex,
            resident_token_hash=hash_token(token),
            external_ref=external_ref,
            phone_verified=phone_verified,
        )
        opening = await asyncio.to_thread(self._opening, person_id, channel, phone_verified, claimed_name)
        try:
            reply = await self.engine.turn(conversation.engine_sender_id, opening)
        except EngineError as error:
            raise EngineDown(str(error)) from error  # nothing stored: the resident just tries again
        follow_up_day = outreach.follow_up_day if outreach else None
        conversation_id = await asyncio.to_thread(self._open, conversation, follow_up_day)
        result, _ = await asyncio.to_thread(self._apply, conversation_id, None, reply)
        return result, token

    def _opening(self, person_id: int, channel: Channel, phone_verified: bool, claimed_name: str | None) -> str:
        """Greet by the name on file, or only by the name typed when the phone is unproven (nothing stored shows)."""
        with self.sessions() as session:
            person = session.get(Person, person_id)
            # A web chat or a call to the hotline from someone no province follows: ask where they are staying.
            ask_where = channel in (Channel.WEBCHAT, Channel.VOICE) and person.province_code is None
            if not phone_verified:  # a typed phone proves nothing: nothing on record is shown to whoever typed it
                return _opening_message(claimed_name, ask_where)
            return _opening_message(person.full_name, ask_where, recorded_doses(session, person_id))

    def _open(self, conversation: Conversation, follow_up_day: int | None) -> int:
        with self.sessions.begin() as session:
            session.add(conversation)
            session.flush()
            session.add(
                Declaration(
                    person_id=conversation.person_id,
                    conversation_id=conversation.id,
                    campaign_id=conversation.campaign_id,
                    channel=conversation.channel,
                    follow_up_day=follow_up_day,
                )
            )
            return conversation.id

    def conversation_for_token(self, token: str) -> int | None:
        with self.sessions() as session:
            return session.scalar(select(Conversation.id).where(Conversation.resident_token_hash == hash_token(token)))

    def conversation_for_ref(self, external_ref: str) -> int | None:
        """The conversation a provider's id opened (a call's CallSid)."""
        with self.sessions() as session:
            return session.scalar(select(Conversation.id).where(Conversation.external_ref == external_ref))

    def person_for_typed_phone(self, phone: str, since: datetime) -> tuple[int, int]:
        """The person of a phone typed into a page (added when new), and the unverified chats opened by typing it
        since `since`. Personal-link chats do not count: a stranger must not learn, from a cap, that a link was sent."""
        with self.sessions.begin() as session:
            person_id = person_with_phone(session, phone)
            opened = session.scalar(
                select(func.count())
                .select_from(Conversation)
                .where(
                    Conversation.person_id == person_id,
                    Conversation.channel == Channel.WEBCHAT,
                    Conversation.phone_verified.is_(False),
                    Conversation.started_at >= since,
                )
            )
        return person_id, opened

    def transcript(self, conversation_id: int, after: int = 0) -> Transcript:
        """The conversation's lines after line number `after` (all of them by default)."""
        with self.sessions() as session:
            turns = session.execute(
                select(Turn.speaker, Turn.text, Turn.buttons)
                .where(Turn.conversation_id == conversation_id, Turn.seq > after)
                .order_by(Turn.seq)
            ).all()
            lines = [Line(speaker, text, bot_message(text, buttons).buttons) for speaker, text, buttons in turns]
            conversation = session.get(Conversation, conversation_id)
            seq = self._next_seq(session, conversation_id) - 1
            return Transcript(lines, conversation.ended_at is not None, seq, conversation.taken_over_by_id is not None)

    def last_seq(self, conversation_id: int) -> int:
        """The number of the conversation's latest line."""
        with self.sessions() as session:
            return self._next_seq(session, conversation_id) - 1

    def question_being_answered(self, conversation_id: int) -> BotMessage | None:
        """The bot's last line (with the buttons it offers): what the resident's next turn answers."""
        with self.sessions() as session:
            last = session.execute(
                select(Turn.text, Turn.buttons)
                .where(Turn.conversation_id == conversation_id, Turn.speaker == Speaker.BOT)
                .order_by(Turn.seq.desc())
                .limit(1)
            ).first()
        return bot_message(*last) if last else None

    def stored_reply(self, conversation_id: int, external_id: str | None = None) -> TurnResult:
        """The bot's reply to the resident turn a provider numbered `external_id` as the store has it, or the
        conversation's opening when None: what a retried webhook is answered with again."""
        with self.sessions() as session:
            after = 0
            if external_id is not None:
                after = session.scalar(
                    select(Turn.seq).where(Turn.conversation_id == conversation_id, Turn.external_id == external_id)
                )
            later = session.execute(
                select(Turn.speaker, Turn.text, Turn.buttons)
                .where(Turn.conversation_id == conversation_id, Turn.seq > after)
                .order_by(Turn.seq)
            ).all()  # a conversation is a few dozen lines
            replies = [bot_message(text, buttons) for _, text, buttons in takewhile(_said_by_bot, later)]
            return TurnResult(conversation_id, replies, self._is_ended(conversation_id, session))

    async def handle(
        self,
        conversation_id: int,
        text: str,
        *,
        engine_text: str | None = None,
        external_id: str | None = None,
        asr_confidence: float | None = None,
        audio_ref: str | None = None,
    ) -> TurnResult:
        """One resident turn. Raises EngineDown (the turn kept for replay) when the engine does not answer.

        `text` is what the resident said or the title of the button they chose; `engine_text` the button's payload.
        """
        text = nfc(text)  # one Unicode form at ingress: what is stored, matched and counted is the same text
        turn = Turn(
            conversation_id=conversation_id,
            speaker=Speaker.RESIDENT,
            text=text,
            engine_text=engine_text,
            asr_confidence=asr_confidence,
            audio_ref=audio_ref,
            external_id=external_id,
        )
        async with self._lock(conversation_id):
            pending = await asyncio.to_thread(self._record, turn, engine_text)
            if pending is WITH_A_PERSON:  # a tracer took the conversation over: they answer, not the bot
                return TurnResult(conversation_id, [], False)
            if pending is None:  # a retried turn, answered already: answered again the same
                return await asyncio.to_thread(self.stored_reply, conversation_id, external_id)
            return await self._process_pending(conversation_id, pending)

    async def replay_pending(self) -> int:
        """Hand turns kept while the engine was down to it, oldest first. Returns the conversations caught up."""
        waiting = await asyncio.to_thread(self._conversations_waiting)
        for caught_up, conversation_id in enumerate(waiting):
            async with self._lock(conversation_id):
                try:
                    await self._process_pending(conversation_id)
                except EngineDown:
                    return caught_up
        return len(waiting)

    def _conversations_waiting(self) -> list[int]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(Turn.conversation_id)
                    .where(Turn.speaker == Speaker.RESIDENT, Turn.processed_at.is_(None))
                    .group_by(Turn.conversation_id)
                    .order_by(func.min(Turn.id))
                )
            )

    def _record(self, turn: Turn, payload: str | None) -> Pending | object | None:
        """Store the resident's turn (committed at once); return the oldest turn the engine has yet to answer, or
        WITH_A_PERSON when a tracer has taken the conversation over (the turn is theirs to answer, not the
        engine's)."""
        with self.sessions.begin() as session:
            retried = turn.external_id and session.scalar(
                select(Turn.id).where(
                    Turn.conversation_id == turn.conversation_id, Turn.external_id == turn.external_id
                )
            )
            if not retried:  # a retried webhook's turn is stored already
                conversation = session.get(Conversation, turn.conversation_id)
                turn.engine_text = engine_text_for(turn.text, payload, _offered_payloads(session, conversation.id))
                turn.seq, turn.channel = self._next_seq(session, conversation.id), conversation.channel
                session.add(turn)
                conversation.last_activity_at = utcnow()
                if conversation.taken_over_by_id is not None:
                    turn.processed_at = utcnow()
                    return WITH_A_PERSON
                session.flush()
            return self._oldest_pending(turn.conversation_id, session)

    async def _process_pending(self, conversation_id: int, pending: Pending | None = None) -> TurnResult:
        """Send every unprocessed resident turn of the conversation to the engine, in order."""
        replies: list[BotMessage] = []
        ended = False
        if pending is None:
            pending = await asyncio.to_thread(self._oldest_pending, conversation_id)
        while pending:
            try:
                reply = await self.engine.turn(
                    pending.sender, pending.text, message_id=f"turn-{pending.turn_id}", restore=pending.engine_state
                )
            except EngineError as error:
                raise EngineDown(str(error)) from error
            if reply.restored:
                log.warning("the engine had lost conversation %s; restored it from the store", conversation_id)
            result, pending = await asyncio.to_thread(self._apply, conversation_id, pending.turn_id, reply)
            replies += result.replies
            ended = result.ended
        if not replies:
            ended = await asyncio.to_thread(self._is_ended, conversation_id)
        return TurnResult(conversation_id, replies, ended)

    def _oldest_pending(self, conversation_id: int, session: Session | None = None) -> Pending | None:
        if session is None:
            with self.sessions() as own:
                return self._oldest_pending(conversation_id, own)
        row = session.execute(
            select(
                Turn.id,
                Conversation.engine_sender_id,
                func.coalesce(Turn.engine_text, Turn.text),
                Conversation.engine_state,
            )
            .join(Turn.conversation)
            .where(
                Turn.conversation_id == conversation_id, Turn.speaker == Speaker.RESIDENT, Turn.processed_at.is_(None)
            )
            .order_by(Turn.seq)
            .limit(1)
        ).first()
        return Pending(*row) if row else None

    def _is_ended(self, conversation_id: int, session: Session | None = None) -> bool:
        if session is None:
            with self.sessions() as own:
                return self._is_ended(conversation_id, own)
        return session.get(Conversation, conversation_id).ended_at is not None

    def _apply(
        self, conversation_id: int, turn_id: int | None, reply: EngineReply
    ) -> tuple[TurnResult, Pending | None]:
        """Steps 3 and 4, in one transaction: the declaration, alerts, the bot's turns. Also returns the next turn
        still waiting for the engine, if any."""
        with self.sessions.begin() as session:
            conversation = session.get(Conversation, conversation_id)
            if turn_id is not None:
                answered = session.get(Turn, turn_id)
                answered.processed_at, answered.intent = utcnow(), reply.intent
            declaration = session.scalar(select(Declaration).where(Declaration.conversation_id == conversation_id))
            record_answers(session, declaration, answers_in(reply.slots), turn_id)
            claim_province(session, declaration.person_id, reply.slots.get("staying_at"), conversation_id)
            session.flush()
            raise_alert(session, declaration, assess(declaration, bool(reply.slots.get("emergency")), self.settings))
            seq = self._next_seq(session, conversation_id)
            for offset, message in enumerate(reply.messages):
                buttons = [{"title": b.title, "payload": b.payload} for b in message.buttons] or None
                session.add(
                    Turn(
                        conversation_id=conversation_id,
                        seq=seq + offset,
                        speaker=Speaker.BOT,
                        text=message.text,
                        buttons=buttons,
                        channel=conversation.channel,
                        processed_at=utcnow(),
                    )
                )
            conversation.engine_state = reply.state
            ended = bool(reply.slots.get("conversation_closed"))
            if ended and conversation.ended_at is None:
                conversation.ended_at = utcnow()
            if conversation.outreach_id is not None:
                _settle_outreach(
                    session, conversation.outreach_id, declaration, answered=turn_id is not None, ended=ended
                )
            conversation.last_activity_at = utcnow()
            session.flush()
            pending = self._oldest_pending(conversation_id, session)
        return TurnResult(conversation_id, reply.messages, ended), pending

    @staticmethod
    def _next_seq(session: Session, conversation_id: int) -> int:
        return (session.scalar(select(func.max(Turn.seq)).where(Turn.conversation_id == conversation_id)) or 0) + 1


def bot_message(text: str, buttons: list[dict[str, str]] | None) -> BotMessage:
    """A bot's turn as the store keeps it, as the engine gave it."""
    return BotMessage(text, tuple(Button(b["title"], b["payload"]) for b in buttons or []))


def _said_by_bot(turn: Row) -> bool:
    return turn.speaker == Speaker.BOT


def _offered_payloads(session: Session, conversation_id: int) -> set[str]:
    """The payloads of the buttons in the bot's last reply: the only commands a resident may send.

    Walks the transcript back from its end: resident turns still waiting for the engine, then the bot's last reply
    (its turns up to the resident turn it answered)."""
    turns = session.execute(
        select(Turn.speaker, Turn.buttons).where(Turn.conversation_id == conversation_id).order_by(Turn.seq.desc())
    ).all()  # a conversation is a few dozen lines
    offered: set[str] = set()
    in_reply = False
    for speaker, buttons in turns:
        if speaker == Speaker.BOT:
            in_reply = True
            offered.update(button["payload"] for button in buttons or [])
        elif in_reply:
            break
    return offered


def engine_text_for(text: str, payload: str | None, offered: set[str]) -> str | None:
    """What the engine is given instead of the resident's words, if anything.

    Residents send text, not commands: a payload counts only if it was offered as a button in the bot's last
    turn, and typed text that looks like a command (`/restart`, `/inform{...}`) reaches the engine as plain words.
    """
    if payload is not None and payload in offered:
        return payload
    if text.lstrip().startswith("/"):
        return _COMMAND_PUNCTUATION.sub(" ", text).strip() or "?"
    return None


_COMMAND_PUNCTUATION = re.compile(r'[/{}\[\]":_]+')


def _settle_outreach(
    session: Session, outreach_id: int, declaration: Declaration, *, answered: bool, ended: bool
) -> None:
    """The campaign's attempt follows its conversation: answered on the first reply, settled at the end."""
    attempt = session.get(OutreachAttempt, outreach_id)
    if attempt is None or not (answered or ended):
        return
    rules = CampaignRules.model_validate(attempt.campaign.rules)
    if not ended:
        if attempt.status != AttemptStatus.IN_PROGRESS:
            attempts.record(attempt, rules, Outcome.ANSWERED, utcnow())
    elif declaration.status == DeclarationStatus.CALLBACK_REQUESTED and declaration.callback_at:
        attempts.record(attempt, rules, Outcome.CALLBACK, utcnow(), callback_at=declaration.callback_at)
    else:
        attempts.record(attempt, rules, Outcome.COMPLETED, utcnow())


def _known(value: Any) -> Any:
    return None if value in (None, "unknown", "") else value


def _iso(kind: type[date] | type[datetime], value: Any) -> date | datetime | None:
    """An ISO date or moment from a slot, or None when the slot holds none (or something else)."""
    try:
        return kind.fromisoformat(value) if _known(value) else None
    except (TypeError, ValueError):
        return None


def _yes_or_no(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _one_of(value: Any, choices: tuple[Any, ...]) -> Any:
    return value if value in choices else None


def answers_in(slots: dict[str, Any]) -> dict[str, Any]:
    """The declaration fields the engine's slots answer; a slot that is empty or unknown answers nothing.

    The store is the truth and the engine's memory a cache: a slot that is empty (an engine that restarted, lost
    the conversation or was reset) never clears a stored answer; a new answer replaces the old one."""
    symptoms, temperature, doses = (
        slots.get("symptoms"),
        _known(slots.get("temperature")),
        _known(slots.get("vaccine_doses")),
    )
    answers = {
        "identity_confirmed": _yes_or_no(slots.get("identity_confirmed")),
        "temperature_c": float(temperature)
        if isinstance(temperature, int | float) and 34 <= temperature <= 43
        else None,
        "symptom_onset": _iso(date, slots.get("symptom_onset")),
        "contact_with_case": _one_of(slots.get("contact_with_case"), ("yes", "no", "unknown")),
        "test_result": _one_of(slots.get("test_result"), ("positive", "negative", "pending", "not_tested")),
        "test_date": _iso(date, slots.get("test_date")),
        "vaccine_doses": int(doses) if isinstance(doses, int | float) and 0 <= doses <= 6 else None,
        "at_registered_address": _yes_or_no(slots.get("at_registered_address")),
        "needs": _known(slots.get("needs")),
        "callback_at": _iso(datetime, slots.get("callback_at")),
        "status": STATUS_OF_OUTCOME.get(slots.get("outcome")),
        "answered_by": _one_of(slots.get("answered_by"), ("resident", "relative")),
    }
    if isinstance(symptoms, list):
        answers |= {"symptoms_asked": True, "symptoms": [s for s in symptoms if s in SYMPTOM_NAMES]}
    return {name: value for name, value in answers.items() if value is not None}
