"""Whose turn it is on a call: the voice-activity detector that hears a resident start and stop speaking.

WebRTC's detector (`webrtcvad`, a few microseconds per 20 ms frame) judges each frame voiced or not. A turn starts
after a few voiced frames in a row (a click or a breath is not speech) and ends after `end_of_speech_ms` without
voice. The frames just before the start are kept (`preroll`): the detector is sure of speech only after its first
syllable began, and the recogniser must hear that syllable too.
"""

from collections import deque
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import webrtcvad

from voice.telephony import FRAME_MS, RATE

START_MS = 60  # voiced frames in a row before a turn starts
PREROLL_MS = 300
LONGEST_TURN_MS = 20_000  # an answer this long ends anyway: the line may be open on a noisy room
AGGRESSIVENESS = 2  # webrtcvad 0 (lenient) to 3 (strict): 2 does not clip soft speech
# Quieter than this (RMS of 16-bit samples, about -50 dBFS) is never speech: webrtcvad alone takes line hiss for
# voice, and speech on a telephone line is 20 dB louder.
QUIETEST_SPEECH_RMS = 100


class TurnEvent(StrEnum):
    STARTED = "started"  # the resident began to speak (barge-in if the bot is speaking)
    ENDED = "ended"  # their turn is over: time to recognise and answer


@dataclass
class Frame:
    pcm: bytes  # 16-bit samples of 20 ms at the line's rate
    voiced: bool


class TurnDetector:
    """Frames in, turn events out; `speaking` tells whether a turn is under way."""

    def __init__(self, end_of_speech_ms: int, aggressiveness: int = AGGRESSIVENESS) -> None:
        self._vad = webrtcvad.Vad(aggressiveness)
        self._start_frames = START_MS // FRAME_MS
        self._end_frames = end_of_speech_ms // FRAME_MS
        self._longest = LONGEST_TURN_MS // FRAME_MS
        self._recent: deque[Frame] = deque(maxlen=PREROLL_MS // FRAME_MS)
        self.speaking = False
        self._voiced_run = 0
        self._quiet_run = 0
        self._length = 0

    def feed(self, pcm: bytes) -> tuple[TurnEvent | None, list[bytes]]:
        """One 20 ms frame: what happened, and the audio the recogniser should hear now (the pre-roll with the
        frame that started the turn, each frame of a turn, nothing between turns)."""
        frame = Frame(pcm, _loud_enough(pcm) and self._vad.is_speech(pcm, RATE))
        if not self.speaking:
            self._recent.append(frame)
            self._voiced_run = self._voiced_run + 1 if frame.voiced else 0
            if self._voiced_run < self._start_frames:
                return None, []
            self.speaking, self._quiet_run, self._length = True, 0, len(self._recent)
            preroll = [f.pcm for f in self._recent]
            self._recent.clear()
            return TurnEvent.STARTED, preroll
        self._length += 1
        self._quiet_run = 0 if frame.voiced else self._quiet_run + 1
        if self._quiet_run >= self._end_frames or self._length >= self._longest:
            self.speaking, self._voiced_run = False, 0
            return TurnEvent.ENDED, [pcm]
        return None, [pcm]


def _loud_enough(pcm: bytes) -> bool:
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    return float(np.sqrt(np.mean(samples**2))) >= QUIETEST_SPEECH_RMS
