"""Twilio voice in stream mode: the call's audio over a WebSocket (Media Streams), heard and answered here.

The answer webhook of a campaign in stream mode returns `<Connect><Stream url="wss://.../voice/stream">` with two
custom parameters, the attempt and a token signed with the auth token for this call only (it expires in
`voice_stream_token_s`). Twilio then opens the WebSocket; its upgrade request carries `X-Twilio-Signature` over the
stream's URL. A forged upgrade is refused before it is accepted, a forged or stale token before any audio is read.

On the socket (twilio.com/docs/voice/media-streams/websocket-messages): `connected`, `start`, then `media` (20 ms of
mu-law 8 kHz each), `dtmf` for keys pressed, `mark` when audio we queued has played, `stop`. We send `media` (the
bot's prompts, transcoded once and cached), a `mark` after each line (Twilio echoes it when the line has been heard)
and `clear` when the resident speaks over the bot (barge-in: the rest of the line is dropped and we listen).

Each resident turn goes through the conversation service as on every channel. Closed questions snap what was heard
to the answers offered; an unsure recogniser that matched nothing asks once more with the keypad choices; silence
is asked again once, then the call is ended politely to be retried. When the dialogue ends, the last line plays,
then the socket closes and Twilio runs the `<Hangup/>` after `<Connect>`.
"""

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field

from fastapi import WebSocket, WebSocketDisconnect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from twilio.twiml.voice_response import Connect, VoiceResponse

from connectors.call_lines import (
    APOLOGY,
    CALL_BACK_LATER,
    NOT_CLEAR,
    NOT_HEARD,
    SILENCES_BEFORE_HANGING_UP,
    personal,
    spoken_lines,
)
from connectors.twilio_auth import signature_holds
from conversations.engine import BotMessage
from conversations.service import ConversationService, EngineDown
from ground.settings import Settings
from models import Campaign, Conversation
from voice.answers import snap, unsure
from voice.hearing import Hearing, Utterance
from voice.prompts import PromptCache, PromptUnavailable
from voice.recognition import Recognizer
from voice.recordings import Recordings
from voice.telephony import frames, prompt_on_the_line
from voice.turns import TurnEvent

log = logging.getLogger(__name__)

STREAM_PATH = "/webhooks/twilio/voice/stream"
# The platform's only WebSocket is this one, whose messages are a few hundred bytes: uvicorn closes a connection
# sending a larger frame (1009) before reading it whole (its default would take 16 MiB).
WS_MAX_BYTES = 65_536
MAX_MESSAGE_CHARS = 16_384  # Twilio's messages are a few hundred characters; a media one about 300
MAX_MEDIA_BYTES = 8000  # one second of audio in one message, at most
KEYS = frozenset("0123456789*#")
LAST_MARK = "bye"  # the mark after the last line of a call: when Twilio echoes it, the socket closes
POLICY_VIOLATION = 1008  # WebSocket close code: what a forged upgrade or token gets


def stream_url(settings: Settings) -> str:
    base = settings.public_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    return f"{base}{STREAM_PATH}"


def _token_mac(settings: Settings, call_sid: str, attempt: str, expires: int) -> str:
    key = settings.twilio_auth_token.get_secret_value().encode()
    return hmac.new(key, f"stream|{call_sid}|{attempt}|{expires}".encode(), hashlib.sha256).hexdigest()


def stream_token(settings: Settings, call_sid: str, attempt: str, now: float) -> str:
    """A token for this call's stream only, valid for `voice_stream_token_s`."""
    expires = int(now) + settings.voice_stream_token_s
    return f"{expires}.{_token_mac(settings, call_sid, attempt, expires)}"


def token_holds(settings: Settings, token: str, call_sid: str, attempt: str, now: float) -> bool:
    expires, _, mac = token.partition(".")
    if not expires.isascii() or not expires.isdigit() or int(expires) < now:
        return False
    return hmac.compare_digest(mac, _token_mac(settings, call_sid, attempt, int(expires)))


def connect_stream(settings: Settings, call_sid: str, attempt: str) -> VoiceResponse:
    """The TwiML that hands the call's audio to our WebSocket; when it closes, the call hangs up."""
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=stream_url(settings))
    stream.parameter(name="attempt", value=attempt)
    stream.parameter(name="token", value=stream_token(settings, call_sid, attempt, time.time()))
    response.append(connect)
    response.hangup()
    return response


@dataclass
class Latencies:
    """From the end of a resident's turn (as the detector judged it) to the first byte of the bot's answer, in
    seconds: kept for `make bench` and the logs."""

    seconds: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.seconds.append(value)
        del self.seconds[:-10_000]


class StreamedCalls:
    """What the stream endpoint does for every call."""

    def __init__(
        self,
        conversations: ConversationService,
        sessions: sessionmaker[Session],
        prompts: PromptCache,
        recordings: Recordings,
        settings: Settings,
        recognizer: Callable[[], Recognizer],
    ) -> None:
        self.conversations = conversations
        self.sessions = sessions
        self.prompts = prompts
        self.recordings = recordings
        self.settings = settings
        self._recognizer = recognizer
        self.latencies = Latencies()
        self._live: set[str] = set()  # CallSids with a stream open here

    def records_voice(self, conversation_id: int) -> bool:
        """Whether the campaign of a call keeps its residents' answers as audio (`record_voice`)."""
        with self.sessions() as session:
            rules = session.scalar(
                select(Campaign.rules)
                .join(Conversation, Conversation.campaign_id == Campaign.id)
                .where(Conversation.id == conversation_id)
            )
        return bool(rules and rules.get("record_voice"))

    async def serve(self, websocket: WebSocket) -> None:
        signature = websocket.headers.get("X-Twilio-Signature", "")
        if not signature_holds(self.settings, stream_url(self.settings), {}, signature):
            await websocket.close(code=POLICY_VIOLATION)  # before accept: the upgrade is answered 403
            return
        await websocket.accept()
        call_sid = ""
        try:
            start = await _start_message(websocket)
            call = await self._call(websocket, start)
            if call is None:
                await websocket.close(code=POLICY_VIOLATION)
                return
            call_sid = call.call_sid
            await call.run()
        except ProtocolViolation as violation:
            log.warning("a media stream broke the protocol and was closed: %s", violation)
            with suppress(RuntimeError):  # closed already from the other side
                await websocket.close(code=POLICY_VIOLATION)
        except WebSocketDisconnect:
            pass
        finally:
            self._live.discard(call_sid)

    async def _call(self, websocket: WebSocket, start: dict) -> "StreamedCall | None":
        details = start.get("start") or {}
        call_sid, stream_sid = str(details.get("callSid", "")), str(start.get("streamSid", ""))
        parameters = details.get("customParameters")
        parameters = parameters if isinstance(parameters, dict) else {}
        attempt, token = str(parameters.get("attempt", "")), str(parameters.get("token", ""))
        if not call_sid or not stream_sid or not token_holds(self.settings, token, call_sid, attempt, time.time()):
            log.warning("a media stream with a forged or stale token was refused (call %s)", call_sid[:64] or "?")
            return None
        conversation_id = await asyncio.to_thread(self.conversations.conversation_for_ref, call_sid)
        if conversation_id is None:
            return None
        recognizer = await asyncio.to_thread(self._recognizer)
        recording = await asyncio.to_thread(self.records_voice, conversation_id)
        if call_sid in self._live:  # a replayed upgrade: one stream per call, the first one's (no await since)
            log.warning("a second media stream for call %s was refused", call_sid)
            return None
        self._live.add(call_sid)
        hearing = Hearing(recognizer, self.settings.voice_end_of_speech_ms)
        call = StreamedCall(self, websocket, stream_sid, call_sid, conversation_id, hearing)
        call.recording = recording
        return call


class ProtocolViolation(ValueError):
    """A message Twilio would never send: the stream is closed (1008), what was said before it stays stored."""


async def _message(websocket: WebSocket) -> dict:
    """The next message: a JSON object in a text frame of a sane size."""
    frame = await websocket.receive()
    if frame["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(frame.get("code", 1000))
    text = frame.get("text")
    if text is None:
        raise ProtocolViolation("a binary frame (Twilio sends JSON text)")
    if len(text) > MAX_MESSAGE_CHARS:
        raise ProtocolViolation(f"a message of {len(text)} characters")
    try:
        message = json.loads(text)
    except ValueError:
        raise ProtocolViolation("a message that is not JSON") from None
    if not isinstance(message, dict):
        raise ProtocolViolation("a JSON message that is not an object")
    return message


async def _start_message(websocket: WebSocket) -> dict:
    """The `start` message (after `connected`); anything else first is a protocol error."""
    while True:
        message = await _message(websocket)
        if message.get("event") == "start" and isinstance(message.get("start"), dict):
            return message
        if message.get("event") != "connected":
            raise ProtocolViolation(f"{str(message.get('event'))[:40]!r} before the stream started")


class StreamedCall:
    """One call on one socket: a small state machine driven by Twilio's messages."""

    def __init__(
        self,
        calls: StreamedCalls,
        websocket: WebSocket,
        stream_sid: str,
        call_sid: str,
        conversation_id: int,
        hearing: Hearing,
    ) -> None:
        self.calls, self.websocket, self.hearing = calls, websocket, hearing
        self.stream_sid, self.call_sid, self.conversation_id = stream_sid, call_sid, conversation_id
        self.settings = calls.settings
        self.question: BotMessage | None = None  # what the resident's next turn answers
        self.unheard_marks: list[str] = []  # lines queued on the line that the resident has not heard to the end
        self.turns = 0
        self.silences = 0
        self.asked_with_keys = False  # the question was asked again with keypad choices once already
        self.ending = False
        self.closed = False
        self.recording = False  # the campaign keeps residents' answers as audio
        self._marks = 0
        self._silence_deadline: float | None = None  # when the resident counts as silent (monotonic)

    async def run(self) -> None:
        try:
            opening = await asyncio.to_thread(self.calls.conversations.stored_reply, self.conversation_id)
            await self._say(opening.replies, opening.ended)
            while not self.closed and await self._next_message():
                pass
        finally:
            self.hearing.close()

    async def _next_message(self) -> bool:
        """Handle Twilio's next message, or the resident's silence while waiting for it; False when the call is
        over. One message at a time: the bot never speaks two things at once."""
        waiting = self._silence_deadline is not None
        timeout = max(0.0, self._silence_deadline - time.monotonic()) if waiting else None
        try:
            message = await asyncio.wait_for(_message(self.websocket), timeout)
        except TimeoutError:
            self._silence_deadline = None
            await self._silent()
            return True
        event = message.get("event")
        if event == "media":
            for heard in await self.hearing.hear(_payload(message)):
                await self._heard(heard)
        elif event == "dtmf":
            await self._pressed(_field(message, "dtmf", "digit"))
        elif event == "mark":
            return await self._played(_field(message, "mark", "name"))
        return event != "stop"

    async def _heard(self, heard: TurnEvent | Utterance) -> None:
        if heard is TurnEvent.STARTED:
            self._stop_waiting()
            if self.unheard_marks and not self.ending:  # barge-in: the resident speaks over the bot
                await self._send({"event": "clear", "streamSid": self.stream_sid})
            return
        if self.ending:
            return
        if not heard.heard.text:  # a noise, a cough: as if nothing was said
            await self._silent()
            return
        await self._answer_words(heard)

    async def _answer_words(self, utterance: Utterance) -> None:
        heard, buttons = utterance.heard, self.question.buttons if self.question else ()
        chosen = snap(heard.text, [b.title for b in buttons])
        if chosen is None and buttons and unsure(heard.confidence) and not self.asked_with_keys:
            self.asked_with_keys = True
            await self._say([BotMessage(NOT_CLEAR), self.question], ended=False, since=utterance.ended_at)
            return
        payload = buttons[chosen].payload if chosen is not None else None
        audio = await asyncio.to_thread(self.calls.recordings.keep, utterance.pcm) if self.recording else None
        await self._answer(heard.text, payload, heard.confidence, since=utterance.ended_at, audio=audio)

    async def _pressed(self, digit: str) -> None:
        self._stop_waiting()
        if self.ending or digit not in KEYS:
            return
        if self.unheard_marks:  # a key pressed over the bot is an answer too: stop talking
            await self._send({"event": "clear", "streamSid": self.stream_sid})
        buttons = self.question.buttons if self.question else ()
        if digit.isdigit() and 1 <= int(digit) <= len(buttons):
            chosen = buttons[int(digit) - 1]
            await self._answer(chosen.title, chosen.payload, None, since=time.monotonic())
        else:
            await self._answer(digit, None, None, since=time.monotonic())

    async def _answer(
        self, text: str, payload: str | None, confidence: float | None, since: float, audio: str | None = None
    ) -> None:
        self.turns += 1
        self.silences = 0
        try:
            result = await self.calls.conversations.handle(
                self.conversation_id,
                text,
                engine_text=payload,
                external_id=f"{self.call_sid}:s{self.turns}",
                asr_confidence=confidence,
                audio_ref=audio,
            )
        except EngineDown:  # the answer is kept and replayed later; this call cannot wait for it
            await self._say([BotMessage(APOLOGY)], ended=True, since=since)
            return
        self.asked_with_keys = False
        await self._say(result.replies, result.ended, since=since)

    async def _silent(self) -> None:
        """Nothing said after the question was heard (or only noise): ask again once, then end to call back."""
        if self.ending:
            return
        self.silences += 1
        if self.silences >= SILENCES_BEFORE_HANGING_UP:
            await self._say([BotMessage(CALL_BACK_LATER)], ended=True)
            return
        await self._say([BotMessage(NOT_HEARD), *([self.question] if self.question else [])], ended=False)

    async def _say(self, messages: list[BotMessage], ended: bool, since: float | None = None) -> None:
        """The bot's lines on the line, each followed by a mark; the last line's mark ends the call if `ended`."""
        if messages and not ended:
            self.question = messages[-1]
        lines = [line for message in messages for line in spoken_lines(message)]
        for number, line in enumerate(lines, 1):
            audio = await self._line_audio(line)
            for frame in frames(audio):
                await self._send({"event": "media", "streamSid": self.stream_sid, "media": {"payload": _b64(frame)}})
                if since is not None:
                    self._answered_after(time.monotonic() - since)
                    since = None
            self._marks += 1
            name = LAST_MARK if ended and number == len(lines) else f"line-{self._marks}"
            self.unheard_marks.append(name)
            await self._send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})
        if ended:
            self.ending = True
            if not lines:  # nothing to hear to the end: hang up now
                await self.websocket.close()
                self.closed = True

    def _answered_after(self, seconds: float) -> None:
        self.calls.latencies.add(seconds)
        log.info(
            "call %s: the bot's answer began %.0f ms after the resident's turn ended", self.call_sid, seconds * 1000
        )

    async def _line_audio(self, text: str) -> bytes:
        """The line on the telephone, or nothing if no engine can render it (the line is skipped, the call goes on:
        Twilio's own voice cannot stand in on a stream as it does in Gather mode)."""
        try:
            path = await asyncio.to_thread(self.calls.prompts.audio_file, text, personal(text))
            return await asyncio.to_thread(prompt_on_the_line, path)
        except (PromptUnavailable, ValueError):
            log.exception("call %s: a line could not be rendered and was skipped", self.call_sid)
            return b""

    async def _played(self, name: str) -> bool:
        """Twilio played a line to the end (or dropped it after a `clear`). False when the call is over."""
        if name in self.unheard_marks:
            del self.unheard_marks[: self.unheard_marks.index(name) + 1]
        if name == LAST_MARK:
            await self.websocket.close()
            return False
        if not self.unheard_marks and not self.hearing.speaking and not self.ending:
            self._silence_deadline = time.monotonic() + self.settings.voice_gather_timeout_s
        return True

    def _stop_waiting(self) -> None:
        self._silence_deadline = None

    async def _send(self, message: dict) -> None:
        await self.websocket.send_text(json.dumps(message))


def _field(message: dict, part: str, name: str) -> str:
    """`message[part][name]` as text, whatever shape a damaged message has."""
    inner = message.get(part)
    return str(inner.get(name, ""))[:100] if isinstance(inner, dict) else ""


def _payload(message: dict) -> bytes:
    media = message.get("media")
    payload = media.get("payload") if isinstance(media, dict) else None
    if not isinstance(payload, str):
        return b""
    try:
        audio = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return b""  # a damaged frame is a moment of silence, not the end of the call
    if len(audio) > MAX_MEDIA_BYTES:
        raise ProtocolViolation(f"{len(audio)} bytes of audio in one message (Twilio sends 20 ms, 160 bytes)")
    return audio


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
