"""Twilio voice in Gather mode: the bot calls, speaks pre-rendered prompts, and hears speech or keypad digits.

POST /webhooks/twilio/voice/answer?attempt=ID   the call connected: open the conversation, speak its opening
POST /webhooks/twilio/voice/turn?n=N&silences=S  what the resident said (SpeechResult, Confidence) or pressed (Digits)
POST /webhooks/twilio/voice/status?attempt=ID   call progress: completed, busy, no-answer, failed, canceled; once
                                                a call is over, its personal prompts (the name) leave the disk
POST /webhooks/twilio/voice/fallback             Twilio could not get TwiML from us: apologise and hang up

Every webhook is signed (X-Twilio-Signature) and idempotent: Twilio retries, and a retried turn (CallSid + the
turn's number) gets the same TwiML back without reaching the engine twice.
"""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioRestException
from twilio.twiml.voice_response import Gather, VoiceResponse

from app.deps import Platform, PlatformDep
from campaigns import attempts
from campaigns.attempts import Outcome
from campaigns.channels import Contact, Placed
from campaigns.dispatch import DUE
from connectors.events import first_time
from connectors.twilio_auth import UNCALLABLE_NUMBER_CODES, SignedForm, channel_error, sent_since, twilio_client
from conversations.engine import BotMessage, Button
from conversations.engine_project import DOMAIN
from conversations.service import EngineDown
from models import (
    AttemptStatus,
    Campaign,
    CampaignStatus,
    Channel,
    Conversation,
    OutreachAttempt,
    Person,
    Speaker,
    Turn,
    utcnow,
)
from voice.prompts import button_titles, personal_texts, prompt_url, static_texts

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks/twilio/voice", tags=["Twilio voice (webhooks)"], include_in_schema=False)

SILENCES_BEFORE_HANGING_UP = 2
FALLBACK_VOICE = "Google.vi-VN-Standard-A"  # Twilio's own Vietnamese voice, for when our prompts cannot be served
NOT_HEARD = "Xin lỗi, tôi chưa nghe thấy anh/chị trả lời."
CALL_BACK_LATER = "Có vẻ đường truyền không tốt. Chúng tôi sẽ gọi lại cho anh/chị sau. Xin cảm ơn và chào anh/chị."
APOLOGY = "Xin lỗi, hệ thống đang gặp sự cố. Chúng tôi sẽ gọi lại cho anh/chị sau. Xin cảm ơn."
# Words the declaration's answers are made of: they help Twilio's recogniser on every question.
ANSWER_HINTS = (
    "có",
    "không",
    "đúng",
    "không phải",
    "vâng",
    "dạ",
    "sốt",
    "ho",
    "khó thở",
    "đau họng",
    "mệt mỏi",
    "mất vị giác",
    "mất khứu giác",
    "đau ngực",
    "tiêu chảy",
    "độ",
    "ba mươi bảy độ",
    "ba mươi tám độ",
    "hôm qua",
    "hôm nay",
    "hôm kia",
    "ngày",
    "âm tính",
    "dương tính",
    "chưa xét nghiệm",
    "chờ kết quả",
    "mũi",
    "một mũi",
    "hai mũi",
    "ba mũi",
    "chưa tiêm",
    "ở nhà",
    "cần hỗ trợ",
    "để lúc khác",
    "gọi lại sau",
)
FAILED_CALL_STATUSES = {
    "busy": Outcome.BUSY,
    "no-answer": Outcome.NO_ANSWER,
    "failed": Outcome.FAILED,
    "canceled": Outcome.FAILED,
}


def keypad_hint(titles: Sequence[str]) -> str:
    """'Hoặc bấm phím 1 nếu đúng, phím 2 nếu không phải.' — a question with buttons also takes keypad digits."""
    choices = ", phím ".join(f"{number} nếu {title.lower()}" for number, title in enumerate(titles, 1))
    return f"Hoặc bấm phím {choices}."


def ahead_of_calls() -> list[str]:
    """Every line a call may play that is the same for everyone: rendered at start and when a campaign starts."""
    hints = [keypad_hint(titles) for titles in button_titles(DOMAIN)]
    return [*static_texts(DOMAIN), *hints, NOT_HEARD, CALL_BACK_LATER, APOLOGY]


def personal_lines_due(session: Session) -> list[str]:
    """The personal lines (greetings with a name) of everyone running campaigns have still to reach."""
    names = session.scalars(
        select(Person.full_name)
        .distinct()
        .join(OutreachAttempt, OutreachAttempt.person_id == Person.id)
        .join(Campaign)
        .where(
            Campaign.status == CampaignStatus.RUNNING, OutreachAttempt.status.in_(DUE), Person.full_name.is_not(None)
        )
    )
    return [line for name in names for line in personal_texts(DOMAIN, {"name": name})]


def spoken_lines(message: BotMessage) -> list[str]:
    return [message.text, keypad_hint([b.title for b in message.buttons])] if message.buttons else [message.text]


@dataclass(frozen=True)
class VoiceChannel:
    """Places the call of an outreach attempt (campaigns.channels.OutboundChannel)."""

    platform: Platform
    name: str = "voice"

    async def reach(self, contact: Contact) -> Placed:
        # Personal lines (the resident's name) are rendered before the phone rings: no caller waits on synthesis.
        if contact.name:
            lines = personal_texts(DOMAIN, {"name": contact.name})
            await asyncio.to_thread(self.platform.prompts.render_ahead, lines)
        try:
            call = await asyncio.to_thread(self._place_call, contact)
        except TwilioRestException as error:
            raise channel_error(error, UNCALLABLE_NUMBER_CODES) from error
        return Placed(call.sid)

    async def reached_since(self, contact: Contact, since: datetime) -> Placed | None:
        """The call placed to this person since `since`, if any (a worker died before recording it)."""
        calls = await asyncio.to_thread(twilio_client(self.platform.settings).calls.list, to=contact.phone, limit=20)
        return sent_since(calls, since)

    def _place_call(self, contact: Contact):  # noqa: ANN202 (the SDK's CallInstance)
        settings = self.platform.settings
        base = f"{settings.public_url}{router.prefix}"
        return twilio_client(settings).calls.create(
            to=contact.phone,
            from_=settings.twilio_from_number,
            url=f"{base}/answer?attempt={contact.attempt_id}",
            method="POST",
            fallback_url=f"{base}/fallback",
            fallback_method="POST",
            status_callback=f"{base}/status?attempt={contact.attempt_id}",
            status_callback_method="POST",
            status_callback_event=["initiated", "ringing", "answered", "completed"],
            timeout=settings.twilio_ring_timeout_s,
            machine_detection="Enable" if settings.twilio_machine_detection else None,
        )


def _twiml(body: VoiceResponse) -> Response:
    return Response(str(body), media_type="application/xml")


async def _play(platform: Platform, target: VoiceResponse | Gather, text: str) -> None:
    """A pre-rendered prompt; if no speech engine can render it, Twilio's own Vietnamese voice says it."""
    try:
        path = await asyncio.to_thread(platform.prompts.audio_file, text)
    except Exception:  # a prompt we cannot render must not cost the call: Twilio can still speak it
        log.exception("could not render a prompt; Twilio will say it instead")
        target.say(text, language="vi-VN", voice=FALLBACK_VOICE)
        return
    target.play(prompt_url(platform.settings.public_url, path.name))


async def _speak_and_listen(
    platform: Platform, messages: list[BotMessage], ended: bool, turn_number: int, silences: int = 0
) -> VoiceResponse:
    """The bot's replies as prompts; then hang up at the end, else listen for speech or a digit."""
    response = VoiceResponse()
    if ended or not messages:
        for message in messages:
            await _play(platform, response, message.text)
        response.hangup()
        return response
    buttons = messages[-1].buttons
    gather = Gather(
        input="speech dtmf",
        language="vi-VN",
        method="POST",
        action=f"{platform.settings.public_url}{router.prefix}/turn?n={turn_number}&silences={silences}",
        timeout=platform.settings.voice_gather_timeout_s,
        speech_timeout="auto",
        action_on_empty_result=True,
        hints=", ".join(dict.fromkeys([b.title.lower() for b in buttons] + list(ANSWER_HINTS))),
        **({"num_digits": 1} if buttons else {}),
    )
    for message in messages:
        for line in spoken_lines(message):
            await _play(platform, gather, line)
    response.append(gather)
    return response


async def _goodbye(platform: Platform, text: str) -> Response:
    response = VoiceResponse()
    await _play(platform, response, text)
    response.hangup()
    return _twiml(response)


@router.post("/answer")
async def answer(attempt: int, form: SignedForm, platform: PlatformDep) -> Response:
    """The resident picked up (or a machine did): open the conversation and speak the bot's opening."""
    call_sid = form.get("CallSid", "")
    if form.get("AnsweredBy", "").startswith(("machine", "fax")):
        await asyncio.to_thread(_settle_call, platform, attempt, call_sid, Outcome.MACHINE)
        hang_up = VoiceResponse()
        hang_up.hangup()
        return _twiml(hang_up)
    conversation_id = await asyncio.to_thread(_conversation_of_call, platform, call_sid)
    if conversation_id is None:
        target = await asyncio.to_thread(_attempt_target, platform, attempt, call_sid)
        if target is None:
            return await _goodbye(platform, APOLOGY)
        try:
            result, _ = await platform.conversations.start(**target, channel=Channel.VOICE, external_ref=call_sid)
        except EngineDown:
            return await _goodbye(platform, APOLOGY)
        conversation_id = result.conversation_id
        await asyncio.to_thread(_settle_call, platform, attempt, call_sid, Outcome.ANSWERED)
    messages, ended = await asyncio.to_thread(_bot_lines_after, platform, conversation_id, 0)
    return _twiml(await _speak_and_listen(platform, messages, ended, turn_number=1))


@router.post("/turn")
async def turn(n: int, form: SignedForm, platform: PlatformDep, silences: int = 0) -> Response:
    """One answer: speech (with the recogniser's confidence) or a keypad digit; silence is asked again once."""
    conversation_id = await asyncio.to_thread(_conversation_of_call, platform, form.get("CallSid", ""))
    if conversation_id is None:
        return await _goodbye(platform, APOLOGY)
    speech, digits = form.get("SpeechResult", "").strip(), form.get("Digits", "").strip()
    if not speech and not digits:
        return await _silence(platform, conversation_id, n, silences + 1)
    external_id = f"{form['CallSid']}:{n}"
    text, engine_text, confidence = speech, None, _confidence(form.get("Confidence"))
    if digits:
        text, engine_text, confidence = await asyncio.to_thread(_keypad_choice, platform, conversation_id, digits)
    try:
        await platform.conversations.handle(
            conversation_id, text, engine_text=engine_text, external_id=external_id, asr_confidence=confidence
        )
    except EngineDown:  # the answer is kept and replayed later; this call cannot wait for it
        return await _goodbye(platform, APOLOGY)
    seq = await asyncio.to_thread(_seq_of_turn, platform, conversation_id, external_id)
    messages, ended = await asyncio.to_thread(_bot_lines_after, platform, conversation_id, seq)
    return _twiml(await _speak_and_listen(platform, messages, ended, turn_number=n + 1))


async def _silence(platform: Platform, conversation_id: int, turn_number: int, silences: int) -> Response:
    if silences >= SILENCES_BEFORE_HANGING_UP:
        return await _goodbye(platform, CALL_BACK_LATER)  # the status callback then schedules the retry
    question = await asyncio.to_thread(_last_question, platform, conversation_id)
    messages = [BotMessage(NOT_HEARD), *([question] if question else [])]
    return _twiml(await _speak_and_listen(platform, messages, False, turn_number, silences))


@router.post("/status")
def status(attempt: int, form: SignedForm, platform: PlatformDep) -> Response:
    """Call progress. A final status settles the attempt so the campaign can retry; each is handled once. The call's
    personal prompts are removed then: a file with a resident's name stays on disk only while it may be played."""
    call_sid, call_status = form.get("CallSid", ""), form.get("CallStatus", "")
    if call_status != "completed" and call_status not in FAILED_CALL_STATUSES:
        return Response(status_code=204)  # queued, initiated, ringing, in-progress: nothing to settle
    with platform.sessions.begin() as session:
        if not first_time(session, "twilio-call", f"{call_sid}:{call_status}"):
            return Response(status_code=204)
        outcome = FAILED_CALL_STATUSES.get(call_status) or _completed_call_outcome(session, call_sid, form)
        sip = f" (SIP {form['SipResponseCode']})" if "SipResponseCode" in form else ""
        attempts.record_report(session, attempt, call_sid, outcome, utcnow(), detail=f"Twilio call {call_status}{sip}")
        done_with = _personal_lines_done_with(session, attempt, call_sid)
    platform.prompts.forget(done_with)
    return Response(status_code=204)


@router.post("/fallback")
def fallback(form: SignedForm) -> Response:
    """Twilio could not get TwiML from the answer or turn URL: apologise in Twilio's own voice and hang up."""
    response = VoiceResponse()
    response.say(APOLOGY, language="vi-VN", voice=FALLBACK_VOICE)
    response.hangup()
    log.warning("Twilio used the fallback URL for call %s (error %s)", form.get("CallSid"), form.get("ErrorCode"))
    return _twiml(response)


def _confidence(raw: str | None) -> float | None:
    try:
        return max(0.0, min(1.0, float(raw))) if raw else None
    except ValueError:
        return None


def _completed_call_outcome(session: Session, call_sid: str, form: dict[str, str]) -> Outcome:
    """A call that ended: finished by the dialogue, cut short (hang-up, silences), or taken by a machine."""
    conversation = session.scalar(select(Conversation).where(Conversation.external_ref == call_sid))
    if conversation is None:
        return Outcome.MACHINE if form.get("AnsweredBy", "").startswith(("machine", "fax")) else Outcome.DROPPED
    if conversation.ended_at is not None:
        return Outcome.COMPLETED  # the conversation service settled it when the dialogue ended
    conversation.ended_at = utcnow()  # the line is closed, whatever the dialogue had still to ask
    return Outcome.DROPPED


def _personal_lines_done_with(session: Session, attempt_id: int, call_sid: str) -> list[str]:
    """The personal lines of the call that ended, unless a namesake's call under way may still play the same ones
    (namesakes are common: the file is one per text). A later call of this person renders them again."""
    name = session.scalar(select(Person.full_name).join(OutreachAttempt).where(OutreachAttempt.id == attempt_id))
    if not name:
        return []
    namesake_on_the_line = (
        select(OutreachAttempt.id)
        .join(Person)
        .where(
            Person.full_name == name,
            OutreachAttempt.channel == Channel.VOICE.value,
            OutreachAttempt.status.in_((AttemptStatus.CONTACTING, AttemptStatus.IN_PROGRESS)),
            OutreachAttempt.provider_ref != call_sid,
        )
    )
    if session.scalar(namesake_on_the_line.limit(1)) is not None:
        return []
    return personal_texts(DOMAIN, {"name": name})


def _settle_call(platform: Platform, attempt_id: int, call_sid: str, outcome: Outcome) -> None:
    with platform.sessions.begin() as session:
        attempts.record_report(session, attempt_id, call_sid, outcome, utcnow())


def _attempt_target(platform: Platform, attempt_id: int, call_sid: str) -> dict | None:
    """Whom this call is for, as ConversationService.start wants it; None for a call we did not place."""
    with platform.sessions() as session:
        attempt = session.get(OutreachAttempt, attempt_id)
        if attempt is None or attempt.provider_ref != call_sid:
            return None
        return {
            "person_id": attempt.person_id,
            "campaign_id": attempt.campaign_id,
            "outreach_id": attempt.id,
            "follow_up_day": attempt.follow_up_day,
        }


def _conversation_of_call(platform: Platform, call_sid: str) -> int | None:
    with platform.sessions() as session:
        return session.scalar(select(Conversation.id).where(Conversation.external_ref == call_sid))


def _seq_of_turn(platform: Platform, conversation_id: int, external_id: str) -> int:
    with platform.sessions() as session:
        return session.scalar(
            select(Turn.seq).where(Turn.conversation_id == conversation_id, Turn.external_id == external_id)
        )


def _message(turn: Turn) -> BotMessage:
    return BotMessage(turn.text, tuple(Button(b["title"], b["payload"]) for b in turn.buttons or []))


def _bot_lines_after(platform: Platform, conversation_id: int, seq: int) -> tuple[list[BotMessage], bool]:
    """The bot's replies stored after a resident turn (the same TwiML for a retried webhook), and whether the
    dialogue has ended."""
    with platform.sessions() as session:
        later = select(Turn).where(Turn.conversation_id == conversation_id, Turn.seq > seq)
        turns = session.scalars(later.order_by(Turn.seq)).all()
        replies = [_message(t) for t in turns if t.speaker == Speaker.BOT]
        return replies, session.get(Conversation, conversation_id).ended_at is not None


def _last_question(platform: Platform, conversation_id: int) -> BotMessage | None:
    with platform.sessions() as session:
        last = session.scalar(
            select(Turn)
            .where(Turn.conversation_id == conversation_id, Turn.speaker == Speaker.BOT)
            .order_by(Turn.seq.desc())
            .limit(1)
        )
        return _message(last) if last else None


def _keypad_choice(platform: Platform, conversation_id: int, digits: str) -> tuple[str, str | None, None]:
    """Key N chooses the Nth quick answer of the last question; any other key is passed on as said."""
    question = _last_question(platform, conversation_id)
    buttons = question.buttons if question else ()
    if digits.isdigit() and 1 <= int(digits) <= len(buttons):
        chosen = buttons[int(digits) - 1]
        return chosen.title, chosen.payload, None
    return digits, None, None
