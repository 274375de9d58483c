"""The resident's side of a streamed call: mu-law frames in; "they started speaking" and "they said ..." out.

Frames go through the turn detector; a turn's audio is fed to the recogniser while the resident speaks, on a thread
of the call's own (recognition is native code that holds no lock the event loop needs), a tenth of a second at a
time. When the turn ends only the last tenth is left to recognise, so the words are there almost at once.
"""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from voice.recognition import Heard, Listening, Recognizer
from voice.telephony import FRAME_SAMPLES, RATE, ulaw_decode
from voice.turns import TurnDetector, TurnEvent

FEED_FRAMES = 5  # 100 ms of audio per hand-over to the recogniser


@dataclass(frozen=True)
class Utterance:
    heard: Heard
    pcm: bytes  # the turn's audio, 16-bit at the line's rate (for a recording)
    ended_at: float  # time.monotonic() when the detector judged the turn over


class Hearing:
    """One call's listener. `hear` takes each media payload as it comes; `close` when the call ends."""

    def __init__(self, recognizer: Recognizer, end_of_speech_ms: int) -> None:
        self._recognizer = recognizer
        self._detector = TurnDetector(end_of_speech_ms)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hearing")
        self._listening: Listening | None = None
        self._turn: list[bytes] = []  # the turn's frames so far
        self._unfed: list[bytes] = []  # frames not yet handed to the recogniser
        self._rest = b""  # mu-law bytes short of a whole frame

    @property
    def speaking(self) -> bool:
        return self._detector.speaking

    async def hear(self, ulaw: bytes) -> list[TurnEvent | Utterance]:
        """What this audio brings: the start of a turn, a finished utterance, or nothing yet."""
        data, events = self._rest + ulaw, []
        whole = len(data) - len(data) % FRAME_SAMPLES
        self._rest = data[whole:]
        for start in range(0, whole, FRAME_SAMPLES):
            event, audio = self._detector.feed(ulaw_decode(data[start : start + FRAME_SAMPLES]).tobytes())
            if event is TurnEvent.STARTED:
                self._listening = self._recognizer.listen(RATE)
                events.append(TurnEvent.STARTED)
            self._turn += audio
            self._unfed += audio
            if len(self._unfed) >= FEED_FRAMES or event is TurnEvent.ENDED:
                self._feed()
            if event is TurnEvent.ENDED:
                events.append(await self._utterance())
        return events

    def _feed(self) -> None:
        if self._listening is not None and self._unfed:
            self._worker.submit(self._listening.accept, b"".join(self._unfed))  # in order: one worker thread
        self._unfed = []

    async def _utterance(self) -> Utterance:
        ended_at, listening, pcm = time.monotonic(), self._listening, b"".join(self._turn)
        self._listening, self._turn = None, []
        heard = await asyncio.get_running_loop().run_in_executor(self._worker, listening.finish)
        return Utterance(heard, pcm, ended_at)

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
