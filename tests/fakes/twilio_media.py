"""A local Twilio Media Stream: the phone network's side of `<Connect><Stream>`, over a real WebSocket.

It follows twilio.com/docs/voice/media-streams/websocket-messages: the upgrade request is signed
(`X-Twilio-Signature`, HMAC-SHA1 of the stream's URL with no parameters), then `connected`, `start` (with the
`<Parameter>`s of the TwiML as `customParameters`), a `media` message of 20 ms of mu-law 8 kHz every 20 ms for as
long as the call lasts (speech when the resident speaks, line silence otherwise), `dtmf` for keys, and `stop`.
What the platform sends is played out as a phone would, in real time: its `media` is buffered and heard frame by
frame, each `mark` is echoed when the audio queued before it has played, and `clear` drops the buffered audio and
echoes the marks it held at once.

`speed` runs the clock faster than real time (tests at 4x; the bench at 1x).
"""

import base64
import itertools
import json
import threading
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field

from twilio.request_validator import RequestValidator
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from voice.telephony import FRAME_MS, FRAME_SAMPLES, SILENCE, frames


@dataclass
class Line:
    """One line the platform spoke (the audio before one of its marks)."""

    mark: str
    audio: bytearray = field(default_factory=bytearray)  # what reached the buffer
    played: int = 0  # bytes the resident heard before it ended or was cleared
    cut: bool = False  # dropped by a `clear` before it was heard to the end


class MediaStream:
    """One bidirectional stream of a call; a context manager (opens the socket, sends `stop` and closes)."""

    def __init__(self, url: str, parameters: dict[str, str], auth_token: str, call_sid: str, speed: float = 4.0):
        self.url, self.parameters, self.call_sid = url, parameters, call_sid
        self.stream_sid = "MZ" + call_sid[2:]
        self.auth_token, self.speed = auth_token, speed
        self.lines: list[Line] = []
        self.latencies: list[float] = []  # end of speech sent -> first byte of the bot's audio received, seconds
        self.closed_by_platform = threading.Event()
        self._sequence = itertools.count(1)
        self._chunk = itertools.count(1)
        self._outbound: deque[bytes] = deque()  # the resident's frames still to send
        self._playback: deque[tuple[str, Line | str]] = deque()  # ("audio", the line a frame is of) or ("mark", name)
        self._lock = threading.Lock()
        self._speech_sent_at: float | None = None
        self._last_media_at = 0.0
        self._running = threading.Event()
        self._socket: ClientConnection | None = None
        self._threads: list[threading.Thread] = []
        self._exit = ExitStack()

    # ---- the call ------------------------------------------------------------------------------------------------

    def signature(self) -> str:
        return RequestValidator(self.auth_token).compute_signature(self.url, {})

    def __enter__(self) -> "MediaStream":
        self._socket = self._exit.enter_context(
            connect(self.url, additional_headers={"X-Twilio-Signature": self.signature()})
        )
        self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        start = {
            "accountSid": "AC" + "0" * 32,
            "streamSid": self.stream_sid,
            "callSid": self.call_sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": self.parameters,
        }
        self._send({"event": "start", "sequenceNumber": str(next(self._sequence)), "start": start})
        self._running.set()
        self._threads = [threading.Thread(target=self._clock, daemon=True), threading.Thread(target=self._listen)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.hang_up()

    def hang_up(self) -> None:
        if self._running.is_set():
            self._running.clear()
            stop = {"accountSid": "AC" + "0" * 32, "callSid": self.call_sid}
            self._send({"event": "stop", "sequenceNumber": str(next(self._sequence)), "stop": stop})
        self._exit.close()
        for thread in self._threads:
            thread.join(timeout=10)

    def say(self, ulaw: bytes) -> None:
        """The resident speaks (mu-law 8 kHz); returns once the speech has gone down the line."""
        with self._lock:
            self._outbound.extend(frames(ulaw))
        while self._outbound and self._running.is_set() and not self.closed_by_platform.is_set():
            time.sleep(0.005)

    def press(self, digit: str) -> None:
        self._send({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": digit}})

    def wait_for_the_bot(self, timeout: float = 60.0, quiet_s: float = 0.6) -> list[Line]:
        """Wait until the bot has said something new and everything it said has played (or the call ended); returns
        the new lines."""
        before = len(self.lines)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                idle = not self._playback and time.monotonic() - self._last_media_at > quiet_s / self.speed
                new = len(self.lines) > before and self.lines[-1].mark
            if (new and idle) or self.closed_by_platform.is_set():
                return self.lines[before:]
            time.sleep(0.01)
        raise TimeoutError(f"the bot said nothing new in {timeout} s")

    def wait_until_closed(self, timeout: float = 30.0) -> bool:
        return self.closed_by_platform.wait(timeout)

    # ---- the wire ------------------------------------------------------------------------------------------------

    def _send(self, message: dict) -> None:
        message.setdefault("streamSid", self.stream_sid)
        try:
            self._socket.send(json.dumps(message))
        except ConnectionClosed:
            self.closed_by_platform.set()

    def _clock(self) -> None:
        """Every 20 ms (of the fake's clock): one frame of the resident's line goes out, one of the bot's is heard."""
        tick = FRAME_MS / 1000 / self.speed
        next_tick = time.monotonic()
        timestamp = 0
        while self._running.is_set() and not self.closed_by_platform.is_set():
            with self._lock:
                frame = self._outbound.popleft() if self._outbound else SILENCE * FRAME_SAMPLES
                if not self._outbound and frame != SILENCE * FRAME_SAMPLES:
                    self._speech_sent_at = time.monotonic()
                echoes = self._play_one_frame()
            media = {"track": "inbound", "chunk": str(next(self._chunk)), "timestamp": str(timestamp)}
            media["payload"] = base64.b64encode(frame).decode()
            self._send({"event": "media", "sequenceNumber": str(next(self._sequence)), "media": media})
            for name in echoes:
                self._send({"event": "mark", "sequenceNumber": str(next(self._sequence)), "mark": {"name": name}})
            timestamp += FRAME_MS
            next_tick += tick
            time.sleep(max(0.0, next_tick - time.monotonic()))

    def _play_one_frame(self) -> list[str]:
        """Hear the next frame of the bot's buffered audio; the marks reached are echoed."""
        echoes = self._marks_reached()
        if self._playback:
            _, line = self._playback.popleft()
            line.played += FRAME_SAMPLES
            echoes += self._marks_reached()
        return echoes

    def _marks_reached(self) -> list[str]:
        reached = []
        while self._playback and self._playback[0][0] == "mark":
            reached.append(self._playback.popleft()[1])
        return reached

    def _open_line(self) -> Line:
        """The line the platform's audio now belongs to: the last one, until a mark closes it."""
        if not self.lines or self.lines[-1].mark:
            self.lines.append(Line(mark=""))
        return self.lines[-1]

    def _listen(self) -> None:
        try:
            for raw in self._socket:
                self._received(json.loads(raw))
        except ConnectionClosed:
            pass
        self.closed_by_platform.set()

    def _received(self, message: dict) -> None:
        assert message.get("streamSid") == self.stream_sid, message
        event = message["event"]
        with self._lock:
            if event == "media":
                audio = base64.b64decode(message["media"]["payload"])
                now = time.monotonic()
                if self._speech_sent_at is not None:
                    self.latencies.append(now - self._speech_sent_at)
                    self._speech_sent_at = None
                self._last_media_at = now
                line = self._open_line()
                line.audio += audio
                self._playback.extend(("audio", line) for _ in range(len(audio) // FRAME_SAMPLES))
            elif event == "mark":
                name = message["mark"]["name"]
                self._open_line().mark = name
                self._playback.append(("mark", name))
            elif event == "clear":
                cleared = [name for kind, name in self._playback if kind == "mark"]
                for line in {id(item): item for kind, item in self._playback if kind == "audio"}.values():
                    line.cut = True
                self._playback.clear()
                echoes = cleared
            else:
                raise AssertionError(f"Twilio does not know the event {event!r}")
        if event == "clear":
            for name in echoes:
                self._send({"event": "mark", "sequenceNumber": str(next(self._sequence)), "mark": {"name": name}})
