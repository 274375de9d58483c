"""Voice prompts: the bot's Vietnamese lines rendered to audio once, kept on disk, played to callers by Twilio.

Twilio fetches each prompt by URL (`<Play>`), so every line is rendered before anyone waits for it: the dialogue's
fixed replies when the app starts and when a campaign starts, a resident's personal lines (their name) before
their call is placed. Rendering is synchronous (it runs in threads); async callers use `asyncio.to_thread`.

Engines are tried in the order of `OUTREACH_TTS_ENGINES`: gTTS (Google's voice, needs the internet) and espeak-ng
(offline, robotic, always there). A file is named by a hash of engine, language and text, so a name never changes
meaning: Twilio and any proxy may cache it forever.
"""

import hashlib
import logging
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from weakref import WeakValueDictionary

import yaml
from gtts import gTTS, gTTSError

from bot.vntext import nfc
from outreach.settings import Settings

log = logging.getLogger(__name__)

LANGUAGE = "vi"
ROUTE = "/voice/prompts"  # where the platform serves the cache (outreach/routers/prompts.py)
EXTENSIONS = {"gtts": ".mp3", "espeak-ng": ".wav"}  # every engine this module can drive
MEDIA_TYPES = {".mp3": "audio/mpeg", ".wav": "audio/wav"}
FILE_NAME = re.compile(r"[0-9a-f]{32}\.(?:mp3|wav)")  # what file_name() gives; nothing else is ever served
ENGINE_REST_S = 300.0  # after a failure (Google unreachable), the next engine renders alone for this long
ESPEAK_TIMEOUT_S = 30.0  # a long reply takes well under a second; this only ends a hung process
# What a failing engine raises: gTTS wraps network errors in gTTSError; espeak-ng missing, failing or hung.
_ENGINE_FAILURES = (gTTSError, OSError, subprocess.SubprocessError)

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_SLASH_BETWEEN_WORDS = re.compile(r"(?<=[^\W\d_])/(?=[^\W\d_])")  # "anh/chị", not a date such as 20/10
_READ_OUT_BADLY = re.compile(r"[\"'“”‘’*_#`~^|<>\[\]]")


class PromptUnavailable(RuntimeError):
    """No engine could render a prompt."""


def speakable(text: str) -> str:
    """The text as an engine should hear it: "anh/chị" said "anh chị", no quotes or asterisks read out."""
    text = _SLASH_BETWEEN_WORDS.sub(" ", nfc(text))
    return " ".join(_READ_OUT_BADLY.sub("", text).split())


def prompt_file_name(engine: str, spoken: str) -> str:
    """The cache file of a speakable text rendered by an engine."""
    digest = hashlib.sha256(f"{engine}|{LANGUAGE}|{spoken}".encode()).hexdigest()
    return digest[:32] + EXTENSIONS[engine]


def prompt_url(public_base_url: str, file_name: str) -> str:
    """The absolute URL Twilio fetches a rendered prompt from."""
    return f"{public_base_url.rstrip('/')}{ROUTE}/{file_name}"


class PromptCache:
    """Rendered prompts on disk: each text rendered once, by the first engine that works; safe across threads."""

    def __init__(self, cache_dir: Path, engines: Iterable[str], gtts_timeout_s: float) -> None:
        self.cache_dir = Path(cache_dir)
        self.engines = list(engines)
        self.gtts_timeout_s = gtts_timeout_s
        if not self.engines:
            raise ValueError("no speech synthesis engine given; known: " + ", ".join(EXTENSIONS))
        if unknown := [name for name in self.engines if name not in EXTENSIONS]:
            raise ValueError(f"unknown speech synthesis engine(s) {unknown}; known: " + ", ".join(EXTENSIONS))
        # One render per text at a time; a lock lives only while someone holds or waits for it.
        self._locks: WeakValueDictionary[str, threading.Lock] = WeakValueDictionary()
        self._guard = threading.Lock()  # over _locks and _fallback_reported
        self._fallback_reported = False
        self._rest_until: dict[str, float] = {}  # engine -> when to try it again after a failure

    @classmethod
    def from_settings(cls, settings: Settings) -> "PromptCache":
        return cls(settings.tts_cache_dir, settings.tts_engines, settings.gtts_timeout_s)

    def audio_file(self, text: str) -> Path:
        """The rendered prompt of `text`, rendered now if no engine has rendered it yet."""
        return self._ensure(text)[0]

    def file_name(self, text: str) -> str:
        """The public name of the rendered prompt of `text` (for `prompt_url`), rendered now if need be."""
        return self.audio_file(text).name

    def render_ahead(self, texts: Iterable[str], stop: threading.Event | None = None) -> int:
        """Render every text not cached yet; returns how many were rendered now. Setting `stop` ends it early."""
        rendered = 0
        for text in texts:
            if stop is not None and stop.is_set():
                break
            rendered += self._ensure(text)[1]
        return rendered

    def cached_file(self, file_name: str) -> Path | None:
        """The rendered prompt of a public name, or None for any other name (a path, a file not rendered here)."""
        if not FILE_NAME.fullmatch(file_name):
            return None
        path = self.cache_dir / file_name
        return path if path.is_file() else None

    def _ensure(self, text: str) -> tuple[Path, bool]:
        """The prompt's file, and whether it was rendered by this call."""
        spoken = speakable(text)
        if not spoken:
            raise ValueError(f"nothing to say in the prompt {text!r}")
        if cached := self._cached(spoken):  # a cached name is always a whole file (renamed into place)
            return cached, False
        with self._lock(spoken):
            if cached := self._cached(spoken):  # rendered by whoever held the lock before us
                return cached, False
            return self._render(spoken), True

    def _cached(self, spoken: str) -> Path | None:
        """Any rendering already on disk, the preferred engine's first."""
        paths = (self.cache_dir / prompt_file_name(engine, spoken) for engine in self.engines)
        return next((path for path in paths if path.is_file()), None)

    def _lock(self, spoken: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(spoken)
            if lock is None:
                lock = self._locks[spoken] = threading.Lock()
            return lock

    def _render(self, spoken: str) -> Path:
        failures: list[str] = []
        for engine in self.engines:
            if engine != self.engines[-1] and self._resting(engine):
                continue  # it failed a moment ago: do not make every new prompt wait on it again
            try:
                path = self._render_with(engine, spoken)
            except _ENGINE_FAILURES as error:
                failures.append(f"{engine}: {_describe(error)}")
                self._rest_until[engine] = time.monotonic() + ENGINE_REST_S
                continue
            if failures:
                self._report_fallback(engine, failures)
            return path
        raise PromptUnavailable(f"no speech synthesis engine could render {spoken[:60]!r}: " + "; ".join(failures))

    def _resting(self, engine: str) -> bool:
        return time.monotonic() < self._rest_until.get(engine, 0.0)

    def _render_with(self, engine: str, spoken: str) -> Path:
        """Render into a temporary file beside the cache entry, then rename it: readers never see half a file."""
        path = self.cache_dir / prompt_file_name(engine, spoken)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.cache_dir, prefix=".rendering-", suffix=path.suffix)
        os.close(handle)
        try:
            self._synthesise(engine, spoken, Path(temporary))
            os.replace(temporary, path)
        finally:
            Path(temporary).unlink(missing_ok=True)  # only left when synthesis failed
        return path

    def _synthesise(self, engine: str, spoken: str, out: Path) -> None:
        if engine == "gtts":
            gTTS(spoken, lang=LANGUAGE, timeout=self.gtts_timeout_s).save(str(out))
        else:  # "--": a text starting with "-" is not an option
            command = ["espeak-ng", "-v", LANGUAGE, "-w", str(out), "--", spoken]
            subprocess.run(command, check=True, capture_output=True, timeout=ESPEAK_TIMEOUT_S)

    def _report_fallback(self, engine: str, failures: list[str]) -> None:
        """Warn once: offline, every prompt falls back, and one line says it (the platform has one cache)."""
        with self._guard:
            first = not self._fallback_reported
            self._fallback_reported = True
        level = logging.WARNING if first else logging.DEBUG
        log.log(level, "voice prompts fall back to %s (%s); later fallbacks are logged at debug level", engine,
                "; ".join(failures))  # fmt: skip


def _describe(error: BaseException) -> str:
    """The error and what caused it: gTTS says "Failed to connect" for a timeout, a refusal and a DNS failure alike."""
    cause = error.__cause__ or error.__context__
    described = f"{error.__class__.__name__}: {error}"
    return f"{described} (from {cause.__class__.__name__})" if cause else described


def _response_variants(domain_path: Path) -> list[dict]:
    """Every variant of every response of a Rasa domain (conditional variants included), in order."""
    domain = yaml.safe_load(Path(domain_path).read_text(encoding="utf-8"))
    return [variant for response in domain.get("responses", {}).values() for variant in response]


def _response_texts(domain_path: Path) -> list[str]:
    return list(dict.fromkeys(variant["text"] for variant in _response_variants(domain_path) if "text" in variant))


def button_titles(domain_path: Path) -> list[tuple[str, ...]]:
    """The quick answers of every question that offers some, once each (e.g. ("Đúng", "Không phải"))."""
    offered = (tuple(b["title"] for b in v["buttons"]) for v in _response_variants(domain_path) if v.get("buttons"))
    return list(dict.fromkeys(offered))


def static_texts(domain_path: Path) -> list[str]:
    """The replies everyone hears the same (no `{slot}` in them): rendered once for all calls."""
    return [text for text in _response_texts(domain_path) if not _PLACEHOLDER.search(text)]


def personal_texts(domain_path: Path, slots: Mapping[str, object]) -> list[str]:
    """The replies with placeholders, filled from `slots` (e.g. the resident's name); only those fully given."""
    given = {name: str(value) for name, value in slots.items() if value not in (None, "")}
    templates = [text for text in _response_texts(domain_path) if _PLACEHOLDER.search(text)]
    return [
        _PLACEHOLDER.sub(lambda match: given[match.group(1)], template)
        for template in templates
        if set(_PLACEHOLDER.findall(template)) <= given.keys()
    ]
