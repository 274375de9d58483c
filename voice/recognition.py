"""Speech recognition behind one streaming interface, two offline engines.

A call feeds a `Listening` stream the resident's audio while they speak (16-bit samples at the line's rate) and
asks for the final words when the voice-activity detector says they stopped: most of the work is done by then, so
the bot can answer quickly.

- `viet-asr` (PyPI, optional extra): offline Vietnamese with its model inside the wheel; the default when installed.
  It gives no confidence.
- `vosk` (Kaldi): the design's engine, a model folder from settings (the Vietnamese Vosk model in production). Its
  words carry a confidence; the utterance's is their mean.

Models load once per process (a few seconds, hundreds of MB) and are shared by every call; each call gets its own
stream.
"""

import atexit
import importlib.util
import json
import logging
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

import numpy as np

from ground.settings import Settings

log = logging.getLogger(__name__)

ENGINES = ("viet-asr", "vosk")


class RecognitionUnavailable(RuntimeError):
    """The chosen engine is not installed, or its model cannot be loaded."""


@dataclass(frozen=True)
class Heard:
    """What the recogniser made of one utterance."""

    text: str
    confidence: float | None  # 0..1; None when the engine gives none


class Listening(Protocol):
    """One utterance being recognised."""

    def accept(self, pcm: bytes) -> None:
        """More of the utterance: 16-bit little-endian samples at the stream's rate."""

    def partial(self) -> str:
        """The words so far (they may still change)."""

    def finish(self) -> Heard:
        """The final words; the stream is spent."""


class Recognizer(Protocol):
    name: str

    def listen(self, sample_rate: int) -> Listening:
        """A new stream for one utterance."""


def viet_asr_installed() -> bool:
    return importlib.util.find_spec("vietasr") is not None


def default_engine() -> str:
    return "viet-asr" if viet_asr_installed() else "vosk"


class VietAsr:
    name = "viet-asr"

    def __init__(self) -> None:
        if not viet_asr_installed():
            raise RecognitionUnavailable("viet-asr is not installed (pip install 'outreach-platform[viet-asr]')")
        from vietasr import Pipeline  # an optional extra: imported only when chosen

        self._pipeline = Pipeline.preset("transcribe")
        atexit.register(self._pipeline.close)  # before the interpreter tears down the native library it needs
        self._lock = threading.Lock()  # the native pipeline is shared: streams are made one at a time

    def listen(self, sample_rate: int) -> Listening:
        with self._lock:
            return _VietAsrListening(self._pipeline.stream(float(sample_rate)))


class _VietAsrListening:
    def __init__(self, session) -> None:
        self._session = session

    def accept(self, pcm: bytes) -> None:
        self._session.accept(pcm)

    def partial(self) -> str:
        return self._session.partial().text.strip()

    def finish(self) -> Heard:
        try:
            return Heard(self._session.final().text.strip(), None)
        finally:
            self._session.close()


class Vosk:
    name = "vosk"

    def __init__(self, model_dir: Path) -> None:
        import vosk

        vosk.SetLogLevel(-1)  # Kaldi logs every model file it reads
        model_dir = Path(model_dir)
        if not (model_dir / "am").is_dir() and not (model_dir / "final.mdl").is_file():
            raise RecognitionUnavailable(f"{model_dir} is not a Vosk model folder (no am/ in it): see the README")
        try:
            self._model = vosk.Model(model_path=str(model_dir))
        except Exception as error:  # vosk raises a bare Exception when Kaldi cannot read the model
            raise RecognitionUnavailable(f"Vosk could not load the model in {model_dir}: {error}") from error
        self._kaldi = vosk.KaldiRecognizer

    def listen(self, sample_rate: int) -> Listening:
        recognizer = self._kaldi(self._model, float(sample_rate))  # Kaldi resamples to the model's own rate
        recognizer.SetWords(True)
        return _VoskListening(recognizer)


class _VoskListening:
    def __init__(self, recognizer) -> None:
        self._recognizer = recognizer
        self._done: list[dict] = []  # results of segments Kaldi closed on its own (pauses inside an utterance)

    def accept(self, pcm: bytes) -> None:
        if self._recognizer.AcceptWaveform(pcm):
            self._done.append(json.loads(self._recognizer.Result()))

    def partial(self) -> str:
        pending = json.loads(self._recognizer.PartialResult()).get("partial", "")
        return " ".join([*(r.get("text", "") for r in self._done), pending]).strip()

    def finish(self) -> Heard:
        results = [*self._done, json.loads(self._recognizer.FinalResult())]
        words = [word for result in results for word in result.get("result", [])]
        text = " ".join(r.get("text", "") for r in results if r.get("text")).strip()
        confidence = float(np.mean([w["conf"] for w in words])) if words else None
        return Heard(text, confidence)


@cache
def _loaded(engine: str, model_dir: Path | None) -> Recognizer:
    if engine == "viet-asr":
        return VietAsr()
    if model_dir is None:
        raise RecognitionUnavailable("the vosk engine needs a model folder: set OUTREACH_VOSK_MODEL_DIR")
    return Vosk(model_dir)


def recognizer(engine: str | None, model_dir: Path | None) -> Recognizer:
    """The process's recogniser of an engine (loaded once); None: viet-asr when installed, else Vosk."""
    engine = engine or default_engine()
    if engine not in ENGINES:
        raise RecognitionUnavailable(f"unknown speech recognition engine {engine!r}; known: {', '.join(ENGINES)}")
    return _loaded(engine, Path(model_dir) if model_dir else None)


def from_settings(settings: Settings) -> Recognizer:
    return recognizer(settings.asr_engine, settings.vosk_model_dir)


def transcribe(engine: Recognizer, pcm: np.ndarray, sample_rate: int) -> Heard:
    """A whole recording's words, fed as a call feeds them (a tenth of a second at a time)."""
    listening = engine.listen(sample_rate)
    samples = np.asarray(pcm, dtype=np.int16)
    step = max(1, sample_rate // 10)
    for start in range(0, len(samples), step):
        listening.accept(samples[start : start + step].tobytes())
    return listening.finish()
