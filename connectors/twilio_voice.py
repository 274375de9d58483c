"""Twilio voice: the bot calls (or a resident calls the hotline), speaks pre-rendered prompts, and hears speech or
keypad digits. In Gather mode (here) Twilio's recogniser hears the resident; in stream mode (`twilio_stream.py`) the
answer is `<Connect><Stream>` and the platform hears them itself.

POST /webhooks/twilio/voice/answer?attempt=ID&mode=M  the call connected: open the conversation, speak its opening
POST /webhooks/twilio/voice/incoming             a resident called the platform's number (the hotline)
POST /webhooks/twilio/voice/turn?n=N&silences=S  what the resident said (SpeechResult, Confidence) or pressed (Digits)
POST /webhooks/twilio/voice/status?attempt=ID   call progress: completed, busy, no-answer, failed, canceled; once
                                                a call is over, its personal prompts (the name) leave the disk
POST /webhooks/twilio/voice/fallback             Twilio could not get TwiML from us: apologise and hang up
WS   /webhooks/twilio/voice/stream               the media stream of a call in stream mode

Every webhook is signed (X-Twilio-Signature) and idempotent: Twilio retries, and a retried turn (CallSid + the
turn's number) gets the same TwiML back without reaching the engine twice.
"""

import asyncio
import logging
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response, WebSocket
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from twilio.rest import Client
from twilio.rest.api.v2010.account.call import CallInstance, CallList
from twilio.twiml.voice_response import Gather, VoiceResponse

from campaigns import attempts
from campaigns.attempts import Outcome
from campaigns.channels import Contact, Placed
from campaigns.dispatch import DUE
from connectors.call_lines import (
    APOLOGY,
    CALL_BACK_LATER,
    NOT_HEARD,
    NUMBER_HIDDEN,
    SILENCES_BEFORE_HANGING_UP,
    personal,
    spoken_lines,
)
from connectors.events import first_time
from connectors.twilio_auth import UNCALLABLE_NUMBER_CODES, TwilioChannel, TwilioSignature, twilio_client
from connectors.twilio_stream import STREAM_PATH, StreamedCalls, connect_stream
from conversations.engine import BotMessage
from conversations.engine_project import DOMAIN
from conversations.service import ConversationService, EngineDown, TurnResult
from ground.phones import InvalidPhone, normalize_phone
from ground.settings import Settings
from models import AttemptStatus, Campaign, CampaignStatus, Channel, Conversation, OutreachAttempt, Person, utcnow
from voice.prompts import PromptCache, personal_texts, prompt_url

log = logging.getLogger(__name__)
PREFIX = "/webhooks/twilio/voice"

INBOUND = "inbound"  # the stream parameter `attempt` of a call residents made
FALLBACK_VOICE = "Google.vi-VN-Standard-A"  # Twilio's own Vietnamese voice, for when our prompts cannot be served
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


@dataclass(frozen=True)
class VoiceChannel(TwilioChannel):
    """Places the call of an outreach attempt."""

    prompts: PromptCache
    name: str = Channel.VOICE
    unreachable_codes = UNCALLABLE_NUMBER_CODES

    async def reach(self, contact: Contact) -> Placed:
        # Personal lines (the resident's name) are rendered before the phone rings: no caller waits on synthesis.
        if contact.name:
            lines = personal_texts(DOMAIN, {"name": contact.name})
            await asyncio.to_thread(self.prompts.render_ahead, lines, None, True)
        return await self._hand_over(partial(self._place_call, contact))

    def _sent(self, client: Client) -> CallList:
        return client.calls

    def _place_call(self, contact: Contact) -> CallInstance:
        settings = self.settings
        base = f"{settings.public_url}{PREFIX}"
        return self._sent(twilio_client(settings)).create(
            to=contact.phone,
            from_=settings.twilio_from_number,
            url=f"{base}/answer?attempt={contact.attempt_id}&mode={contact.rules.voice_mode}",
            method="POST",
            fallback_url=f"{base}/fallback",
            fallback_method="POST",
            status_callback=f"{base}/status?attempt={contact.attempt_id}",
            status_callback_method="POST",
            status_callback_event=["initiated", "ringing", "answered", "completed"],
            timeout=settings.twilio_ring_timeout_s,
            machine_detection="Enable" if settings.twilio_machine_detection else None,
        )


def router(
    conversations: ConversationService,
    sessions: sessionmaker[Session],
    prompts: PromptCache,
    settings: Settings,
    streamed: StreamedCalls,
) -> APIRouter:
    """The call webhooks, each signed by Twilio, and the media stream of calls in stream mode."""
    calls = VoiceCalls(conversations, sessions, prompts, settings)
    signed_form = Annotated[dict[str, str], Depends(TwilioSignature(settings))]
    routes = APIRouter(prefix=PREFIX, tags=["Twilio voice (webhooks)"], include_in_schema=False)

    @routes.post("/answer")
    async def answer(attempt: int, form: signed_form, mode: Literal["gather", "stream"] = "gather") -> Response:
        return _twiml(await calls.answer(attempt, form, stream=mode == "stream"))

    @routes.websocket(STREAM_PATH.removeprefix(PREFIX))
    async def stream(websocket: WebSocket) -> None:
        await streamed.serve(websocket)

    @routes.post("/incoming")
    async def incoming(form: signed_form) -> Response:
        return _twiml(await calls.incoming(form))

    @routes.post("/turn")
    async def turn(n: int, form: signed_form, silences: int = 0) -> Response:
        return _twiml(await calls.turn(n, form, silences))

    @routes.post("/status")
    def status(form: signed_form, attempt: int | None = None) -> Response:
        calls.status(attempt, form)
        return Response(status_code=204)

    @routes.post("/fallback")
    def fallback(form: signed_form) -> Response:
        return _twiml(apology(form))

    return routes


def _twiml(body: VoiceResponse) -> Response:
    return Response(str(body), media_type="application/xml")


class VoiceCalls:
    """What a call's webhooks do: each answer of the resident goes through the conversation service, and the bot's
    replies come back as pre-rendered prompts."""

    def __init__(
        self,
        conversations: ConversationService,
        sessions: sessionmaker[Session],
        prompts: PromptCache,
        settings: Settings,
    ) -> None:
        self.conversations = conversations
        self.sessions = sessions
        self.prompts = prompts
        self.settings = settings

    async def answer(self, attempt_id: int, form: dict[str, str], stream: bool = False) -> VoiceResponse:
        """The resident picked up (or a machine did): open the conversation and speak the bot's opening (in stream
        mode the stream speaks it)."""
        call_sid = form.get("CallSid", "")
        if form.get("AnsweredBy", "").startswith(("machine", "fax")):
            await asyncio.to_thread(self._settle_call, attempt_id, call_sid, Outcome.MACHINE)
            hang_up = VoiceResponse()
            hang_up.hangup()
            return hang_up
        streamed_as = str(attempt_id) if stream else None
        conversation_id = await asyncio.to_thread(self.conversations.conversation_for_ref, call_sid)
        if conversation_id is not None:  # Twilio retried
            return await self._open_again(conversation_id, call_sid, streamed_as)
        outreach = await asyncio.to_thread(self.conversations.outreach.placed, attempt_id, call_sid)
        if outreach is None:  # a call we did not place
            return await self._goodbye(APOLOGY)
        try:
            result, _ = await self.conversations.start(
                outreach.person_id, Channel.VOICE, outreach=outreach, external_ref=call_sid
            )
        except EngineDown:
            return await self._goodbye(APOLOGY)
        await asyncio.to_thread(self._settle_call, attempt_id, call_sid, Outcome.ANSWERED)
        return await self._open(result, call_sid, streamed_as)

    async def incoming(self, form: dict[str, str]) -> VoiceResponse:
        """A resident called the platform's number: the same dialogue, in the hotline's voice mode. A known caller
        answers their open follow-up; someone new is asked who and where they are; a hidden number cannot be kept."""
        call_sid = form.get("CallSid", "")
        streamed_as = INBOUND if self.settings.voice_inbound_mode == "stream" else None
        conversation_id = await asyncio.to_thread(self.conversations.conversation_for_ref, call_sid)
        if conversation_id is not None:  # Twilio retried
            return await self._open_again(conversation_id, call_sid, streamed_as)
        try:
            phone = normalize_phone(form.get("From", ""))
        except InvalidPhone:  # "anonymous", a SIP address: nobody to keep a declaration for
            return await self._goodbye(NUMBER_HIDDEN)
        person_id, outreach = await asyncio.to_thread(self.conversations.outreach.called_in, phone, call_sid)
        try:
            result, _ = await self.conversations.start(
                person_id, Channel.VOICE, outreach=outreach, external_ref=call_sid
            )
        except EngineDown:
            return await self._goodbye(APOLOGY)
        return await self._open(result, call_sid, streamed_as)

    async def _open(self, opening: TurnResult, call_sid: str, streamed_as: str | None) -> VoiceResponse:
        """A call's first TwiML: its media stream (`streamed_as` names the attempt; the stream speaks the opening), or
        the opening spoken in Gather mode."""
        if streamed_as is not None:
            return connect_stream(self.settings, call_sid, streamed_as)
        return await self._speak_and_listen(opening.replies, opening.ended, turn_number=1)

    async def _open_again(self, conversation_id: int, call_sid: str, streamed_as: str | None) -> VoiceResponse:
        """Twilio retried a call's first webhook: the same first TwiML again, without reaching the engine."""
        if streamed_as is not None:
            return connect_stream(self.settings, call_sid, streamed_as)
        opening = await asyncio.to_thread(self.conversations.stored_reply, conversation_id)
        return await self._open(opening, call_sid, None)

    async def turn(self, n: int, form: dict[str, str], silences: int) -> VoiceResponse:
        """One answer: speech (with the recogniser's confidence) or a keypad digit; silence is asked again once."""
        call_sid = form.get("CallSid", "")
        conversation_id = await asyncio.to_thread(self.conversations.conversation_for_ref, call_sid)
        if conversation_id is None:
            return await self._goodbye(APOLOGY)
        speech, digits = form.get("SpeechResult", "").strip(), form.get("Digits", "").strip()
        if not speech and not digits:
            return await self._silence(conversation_id, n, silences + 1)
        text, engine_text, confidence = speech, None, _confidence(form.get("Confidence"))
        if digits:  # a key pressed, not words heard: no recogniser's confidence
            question = await asyncio.to_thread(self.conversations.question_being_answered, conversation_id)
            (text, engine_text), confidence = _keypad_choice(question, digits), None
        try:
            result = await self.conversations.handle(
                conversation_id, text, engine_text=engine_text, external_id=f"{call_sid}:{n}", asr_confidence=confidence
            )
        except EngineDown:  # the answer is kept and replayed later; this call cannot wait for it
            return await self._goodbye(APOLOGY)
        return await self._speak_and_listen(result.replies, result.ended, turn_number=n + 1)

    def status(self, attempt_id: int | None, form: dict[str, str]) -> None:
        """Call progress. A final status settles the attempt so the campaign can retry; each is handled once. The
        call's personal prompts are removed then: a file with a resident's name stays on disk only while it may be
        played. Without `attempt` (the hotline number's own status callback), the attempt the call answered, if
        any, is found by its CallSid."""
        call_sid, call_status = form.get("CallSid", ""), form.get("CallStatus", "")
        if call_status != "completed" and call_status not in FAILED_CALL_STATUSES:
            return  # queued, initiated, ringing, in-progress: nothing to settle
        with self.sessions.begin() as session:
            if not first_time(session, "twilio-call", f"{call_sid}:{call_status}"):
                return
            outcome = FAILED_CALL_STATUSES.get(call_status) or _completed_call_outcome(session, call_sid, form)
            if attempt_id is None:
                attempt_id = session.scalar(select(OutreachAttempt.id).where(OutreachAttempt.provider_ref == call_sid))
            if attempt_id is None:  # a caller no follow-up waited for: their conversation is closed, nothing else
                return
            sip = f" (SIP {form['SipResponseCode']})" if "SipResponseCode" in form else ""
            detail = f"Twilio call {call_status}{sip}"
            attempts.record_report(session, attempt_id, call_sid, outcome, utcnow(), detail=detail)
            done_with = _personal_lines_done_with(session, attempt_id, call_sid)
        self.prompts.forget(done_with)

    async def _silence(self, conversation_id: int, turn_number: int, silences: int) -> VoiceResponse:
        if silences >= SILENCES_BEFORE_HANGING_UP:
            return await self._goodbye(CALL_BACK_LATER)  # the status callback then schedules the retry
        question = await asyncio.to_thread(self.conversations.question_being_answered, conversation_id)
        messages = [BotMessage(NOT_HEARD), *([question] if question else [])]
        return await self._speak_and_listen(messages, False, turn_number, silences)

    def _settle_call(self, attempt_id: int, call_sid: str, outcome: Outcome) -> None:
        with self.sessions.begin() as session:
            attempts.record_report(session, attempt_id, call_sid, outcome, utcnow())

    async def _play(self, target: VoiceResponse | Gather, text: str) -> None:
        """A pre-rendered prompt; if no speech engine can render it, Twilio's own Vietnamese voice says it."""
        try:
            path = await asyncio.to_thread(self.prompts.audio_file, text, personal(text))
        except Exception:  # a prompt we cannot render must not cost the call: Twilio can still speak it
            log.exception("could not render a prompt; Twilio will say it instead")
            target.say(text, language="vi-VN", voice=FALLBACK_VOICE)
            return
        target.play(prompt_url(self.settings.public_url, path.name))

    async def _speak_and_listen(
        self, messages: list[BotMessage], ended: bool, turn_number: int, silences: int = 0
    ) -> VoiceResponse:
        """The bot's replies as prompts; then hang up at the end, else listen for speech or a digit."""
        response = VoiceResponse()
        if ended or not messages:
            for message in messages:
                await self._play(response, message.text)
            response.hangup()
            return response
        buttons = messages[-1].buttons
        gather = Gather(
            input="speech dtmf",
            language="vi-VN",
            method="POST",
            action=f"{self.settings.public_url}{PREFIX}/turn?n={turn_number}&silences={silences}",
            timeout=self.settings.voice_gather_timeout_s,
            speech_timeout="auto",
            action_on_empty_result=True,
            hints=", ".join(dict.fromkeys([b.title.lower() for b in buttons] + list(ANSWER_HINTS))),
            **({"num_digits": 1} if buttons else {}),
        )
        for message in messages:
            for line in spoken_lines(message):
                await self._play(gather, line)
        response.append(gather)
        return response

    async def _goodbye(self, text: str) -> VoiceResponse:
        response = VoiceResponse()
        await self._play(response, text)
        response.hangup()
        return response


def apology(form: dict[str, str]) -> VoiceResponse:
    """Twilio could not get TwiML from the answer or turn URL: apologise in Twilio's own voice and hang up."""
    response = VoiceResponse()
    response.say(APOLOGY, language="vi-VN", voice=FALLBACK_VOICE)
    response.hangup()
    log.warning("Twilio used the fallback URL for call %s (error %s)", form.get("CallSid"), form.get("ErrorCode"))
    return response


def _confidence(raw: str | None) -> float | None:
    try:
        return max(0.0, min(1.0, float(raw))) if raw else None
    except ValueError:
        return None


def _keypad_choice(question: BotMessage | None, digits: str) -> tuple[str, str | None]:
    """Key N chooses the Nth quick answer of the question being answered; any other key is passed on as said."""
    buttons = question.buttons if question else ()
    if digits.isdigit() and 1 <= int(digits) <= len(buttons):
        chosen = buttons[int(digits) - 1]
        return chosen.title, chosen.payload
    return digits, None


# ---- The store side of a call's report (run in the status webhook's transaction) ---------------------------------


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
