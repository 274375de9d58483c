"""Voice prompts: the bot's Vietnamese lines rendered to audio once, kept on disk, played to callers by Twilio.

Twilio fetches each prompt by URL (`<Play>`), so every line is rendered before anyone waits for it: the dialogue's
fixed replies when the app starts and when a campaign starts, a resident's personal lines (their name) before
their call is placed. Rendering is synchronous (it runs in threads); async callers use `asyncio.to_thread`.

Engines are tried in the order of `OUTREACH_TTS_ENGINES`: gTTS (Google's voice, needs the internet) and espeak-ng
(offline, robotic, always there). A file is named by an HMAC of engine, language and text under a secret key, so a
name never changes meaning (Twilio and any proxy may cache it forever) and nobody can work out the name of a
greeting from a guessed name: which residents were called stays unknown, over HTTP and in a listing of the folder.
The key comes from `OUTREACH_TTS_PROMPT_KEY`, or else from a private file the first process writes into the cache
folder, so every process sharing the folder names files alike. Personal lines are removed once their call is over.

A personal line (a resident's name in it) is never sent to a cloud engine unless `OUTREACH_TTS_CLOUD_HEARS_NAMES`
allows it: the offline engines render it on this server.
"""

import hashlib
import hmac
import logging
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml
from gtts import gTTS, gTTSError

from bot.vntext import nfc
from ground.locks import KeyedLocks
from ground.private import secret_in_file
from ground.settings import Settings

log = logging.getLogger(__name__)

LANGUAGE = "vi"
ROUTE = "/voice/prompts"  # where the platform serves the cache (outreach/routers/prompts.py)
EXTENSIONS = {"gtts": ".mp3", "espeak-ng": ".wav"}  # every engine this module can drive
CLOUD_ENGINES = frozenset({"gtts"})  # engines that send the text to someone else's servers
MEDIA_TYPES = {".mp3": "audio/mpeg", ".wav": "audio/wav"}
FILE_NAME = re.compile(r"[0-9a-f]{64}\.(?:mp3|wav)")  # what file_name() gives; nothing else is ever served
# Names from before keyed names: a plain hash of the text, which anyone can compute. Removed, never served.
UNKEYED_NAME = re.compile(r"[0-9a-f]{32}\.(?:mp3|wav)")
KEY_FILE = ".prompt-key"  # in the cache folder; FILE_NAME never matches it, so it is never served
MIN_KEY_CHARS = 32  # a made key has 43 (256 random bits); anything shorter is a damaged file
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


def prompt_file_name(key: bytes, engine: str, spoken: str) -> str:
    """The cache file of a speakable text rendered by an engine: unguessable without the key."""
    digest = hmac.new(key, f"{engine}|{LANGUAGE}|{spoken}".encode(), hashlib.sha256).hexdigest()
    return digest + EXTENSIONS[engine]


def prompt_key(cache_dir: Path) -> bytes:
    """The folder's naming key, made (0600) by the first process that needs it and read by all the others."""
    path = Path(cache_dir) / KEY_FILE
    key = secret_in_file(path)
    if len(key) < MIN_KEY_CHARS:
        raise ValueError(f"{path} is not a prompt key (too short): remove it and a new one is made")
    return key.encode()


def _private_folder(folder: Path) -> None:
    """The cache folder, readable by this user only, without the guessable names of earlier versions."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    for path in folder.iterdir():
        if UNKEYED_NAME.fullmatch(path.name):
            path.unlink(missing_ok=True)


def prompt_url(public_base_url: str, file_name: str) -> str:
    """The absolute URL Twilio fetches a rendered prompt from."""
    return f"{public_base_url.rstrip('/')}{ROUTE}/{file_name}"


class PromptCache:
    """Rendered prompts on disk: each text rendered once, by the first engine that works; safe across threads."""

    def __init__(
        self,
        cache_dir: Path,
        engines: Iterable[str],
        gtts_timeout_s: float,
        key: str = "",
        cloud_hears_names: bool = False,
    ) -> None:
        """`key` names the files; empty: the key file in the folder, made by the first cache that needs one."""
        self.cache_dir = Path(cache_dir)
        self.engines = list(engines)
        self.cloud_hears_names = cloud_hears_names
        self.gtts_timeout_s = gtts_timeout_s
        if not self.engines:
            raise ValueError("no speech synthesis engine given; known: " + ", ".join(EXTENSIONS))
        if unknown := [name for name in self.engines if name not in EXTENSIONS]:
            raise ValueError(f"unknown speech synthesis engine(s) {unknown}; known: " + ", ".join(EXTENSIONS))
        _private_folder(self.cache_dir)
        self._key = key.encode() if key else prompt_key(self.cache_dir)
        self._lock = KeyedLocks[str, threading.Lock](threading.Lock)  # one render per text at a time
        self._guard = threading.Lock()  # over _fallback_reported
        self._fallback_reported = False
        self._rest_until: dict[str, float] = {}  # engine -> when to try it again after a failure

    @classmethod
    def from_settings(cls, settings: Settings) -> "PromptCache":
        key = settings.tts_prompt_key.get_secret_value()
        return cls(
            settings.tts_cache_dir, settings.tts_engines, settings.gtts_timeout_s, key, settings.tts_cloud_hears_names
        )

    def audio_file(self, text: str, personal: bool = False) -> Path:
        """The rendered prompt of `text`, rendered now if no engine has rendered it yet. `personal`: the text holds a
        resident's name (only engines allowed to hear names render it)."""
        return self._ensure(text, personal)[0]

    def file_name(self, text: str, personal: bool = False) -> str:
        """The public name of the rendered prompt of `text` (for `prompt_url`), rendered now if need be."""
        return self.audio_file(text, personal).name

    def render_ahead(self, texts: Iterable[str], stop: threading.Event | None = None, personal: bool = False) -> int:
        """Render every text not cached yet; returns how many were rendered now. Setting `stop` ends it early."""
        rendered = 0
        for text in texts:
            if stop is not None and stop.is_set():
                break
            rendered += self._ensure(text, personal)[1]
        return rendered

    def rendered(self, text: str, personal: bool = False) -> Path | None:
        """The rendered prompt of `text` if an engine allowed for it has rendered it, without rendering it."""
        return self._cached(speakable(text), self._engines_for(personal))

    def _engines_for(self, personal: bool) -> list[str]:
        """The engines that may render a text: for a personal one, none that sends it to a cloud unless allowed."""
        if not personal or self.cloud_hears_names:
            return self.engines
        offline = [engine for engine in self.engines if engine not in CLOUD_ENGINES]
        if not offline:
            raise PromptUnavailable(
                "a resident's name may not go to a cloud speech service: add espeak-ng to OUTREACH_TTS_ENGINES, or "
                "allow it with OUTREACH_TTS_CLOUD_HEARS_NAMES=true"
            )
        return offline

    def forget(self, texts: Iterable[str]) -> int:
        """Remove the renderings of `texts` (personal lines after their call); returns how many files went."""
        paths = [self.cache_dir / self._name(engine, speakable(text)) for text in texts for engine in self.engines]
        removed = [path for path in paths if path.is_file()]
        for path in removed:
            path.unlink(missing_ok=True)
        return len(removed)

    def cached_file(self, file_name: str) -> Path | None:
        """The rendered prompt of a public name, or None for any other name (a path, a file not rendered here)."""
        if not FILE_NAME.fullmatch(file_name):
            return None
        path = self.cache_dir / file_name
        return path if path.is_file() else None

    def _ensure(self, text: str, personal: bool) -> tuple[Path, bool]:
        """The prompt's file, and whether it was rendered by this call."""
        spoken, engines = speakable(text), self._engines_for(personal)
        if not spoken:
            raise ValueError(f"nothing to say in the prompt {text!r}")
        if cached := self._cached(spoken, engines):  # a cached name is always a whole file (renamed into place)
            return cached, False
        with self._lock(spoken):
            if cached := self._cached(spoken, engines):  # rendered by whoever held the lock before us
                return cached, False
            return self._render(spoken, engines), True

    def _cached(self, spoken: str, engines: list[str]) -> Path | None:
        """Any rendering already on disk, the preferred engine's first."""
        paths = (self.cache_dir / self._name(engine, spoken) for engine in engines)
        return next((path for path in paths if path.is_file()), None)

    def _name(self, engine: str, spoken: str) -> str:
        return prompt_file_name(self._key, engine, spoken)

    def _render(self, spoken: str, engines: list[str]) -> Path:
        failures: list[str] = []
        for engine in engines:
            if engine != engines[-1] and self._resting(engine):
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
        path = self.cache_dir / self._name(engine, spoken)
        self.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # removed since: a new one, as private
        handle, temporary = tempfile.mkstemp(dir=self.cache_dir, prefix=".rendering-", suffix=path.suffix)
        os.close(handle)
        try:
            self._synthesise(engine, spoken, Path(temporary))
            os.chmod(temporary, 0o600)  # an engine may have replaced the private file mkstemp made
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
        log.log(
            level,
            "voice prompts fall back to %s (%s); later fallbacks are logged at debug level",
            engine,
            "; ".join(failures),
        )


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
