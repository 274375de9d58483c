"""Voice prompts: real espeak-ng renders, gTTS really unreachable, the disk cache with its keyed names, and the
route Twilio fetches."""

import hashlib
import logging
import stat
import threading
import time
import unicodedata
import wave
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from pydantic import SecretStr

from connectors.call_lines import ahead_of_calls, personal
from conversations.engine_project import DOMAIN
from ground.settings import Settings
from ground.store import make_engine
from models.migrate import upgrade
from tests.conftest import run_app
from tests.support.net import free_port
from voice import prompts
from voice.prompts import (
    EXTENSIONS,
    KEY_FILE,
    LANGUAGE,
    PromptCache,
    PromptUnavailable,
    personal_texts,
    prompt_file_name,
    prompt_key,
    prompt_url,
    speakable,
    static_texts,
)

INTRODUCTION = (
    "Xin chào! Đây là tổng đài tự động của Trung tâm Kiểm soát bệnh tật (CDC) tỉnh, liên hệ miễn phí để hỏi thăm "
    "sức khỏe của người đang được theo dõi sau khi tiếp xúc gần với ca bệnh COVID-19."
)
CONSENT = "Anh/chị có thể dành khoảng 2 phút để trả lời vài câu hỏi về sức khỏe không ạ?"
GREETING = "Xin hỏi có phải anh/chị Nguyễn Văn An không ạ?"


def unkeyed_names(text: str) -> list[str]:
    """What someone guessing a resident's greeting can compute: plain hashes of engine, language and text (the
    names of earlier versions, whole or cut to 32 digits)."""
    digests = {e: hashlib.sha256(f"{e}|{LANGUAGE}|{speakable(text)}".encode()).hexdigest() for e in EXTENSIONS}
    return [digest[:size] + EXTENSIONS[e] for e, digest in digests.items() for size in (32, 64)]


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def audio_files(cache: PromptCache) -> list[str]:
    return sorted(path.name for path in cache.cache_dir.iterdir() if path.name != KEY_FILE)


@pytest.fixture
def espeak(tmp_path) -> PromptCache:
    return PromptCache(tmp_path / "prompts", ["espeak-ng"], gtts_timeout_s=5)


@pytest.fixture
def google_unreachable(monkeypatch) -> None:
    """Google cannot be reached, on any machine: its HTTPS goes through a proxy nobody listens on."""
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{free_port()}")


def test_espeak_ng_renders_a_vietnamese_sentence_into_a_wav(espeak):
    path = espeak.audio_file(CONSENT)
    assert path.suffix == ".wav"
    with wave.open(str(path)) as audio:
        seconds = audio.getnframes() / audio.getframerate()
        assert audio.getnchannels() == 1
    assert 1.5 < seconds < 30


def test_without_google_espeak_ng_speaks_and_the_fallback_is_logged_once(tmp_path, google_unreachable, caplog):
    cache = PromptCache(tmp_path, ["gtts", "espeak-ng"], gtts_timeout_s=5)
    caplog.set_level(logging.DEBUG, logger="voice.prompts")
    paths = [cache.audio_file(text) for text in (INTRODUCTION, CONSENT, "Dạ, tôi xin nhắc lại.")]
    assert [path.suffix for path in paths] == [".wav"] * 3
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "espeak-ng" in warnings[0].getMessage() and "gTTSError" in warnings[0].getMessage()


def test_after_google_fails_new_prompts_do_not_wait_on_it_for_a_while(tmp_path, google_unreachable, monkeypatch):
    asked = []
    real_gtts = prompts.gTTS

    def counting_gtts(text, **options):
        asked.append(text)
        return real_gtts(text, **options)

    monkeypatch.setattr(prompts, "gTTS", counting_gtts)
    cache = PromptCache(tmp_path / "resting", ["gtts", "espeak-ng"], gtts_timeout_s=5)
    for text in (INTRODUCTION, CONSENT, "Dạ, tôi xin nhắc lại."):
        assert cache.audio_file(text).suffix == ".wav"
    assert len(asked) == 1, "Google was asked once, then left to rest"
    monkeypatch.setattr(prompts, "ENGINE_REST_S", 0.0)
    restless = PromptCache(tmp_path / "restless", ["gtts", "espeak-ng"], gtts_timeout_s=5)
    for text in (INTRODUCTION, CONSENT):
        restless.audio_file(text)
    assert len(asked) == 3, "without a rest, every new prompt asks Google first"


def test_a_prompt_is_rendered_once_and_then_read_from_the_cache(espeak):
    first = espeak.audio_file(CONSENT)
    rendered_at = first.stat().st_mtime_ns
    assert espeak.audio_file(CONSENT) == first
    assert first.stat().st_mtime_ns == rendered_at
    assert espeak.render_ahead([CONSENT, INTRODUCTION]) == 1  # only the new one


def test_concurrent_lookups_of_one_text_render_it_once(espeak):
    start_together = threading.Barrier(8)

    def look_up() -> int:
        start_together.wait()
        return espeak.render_ahead([INTRODUCTION])

    with ThreadPoolExecutor(8) as pool:
        renders = [future.result() for future in [pool.submit(look_up) for _ in range(8)]]
    assert sum(renders) == 1
    assert audio_files(espeak) == [espeak.file_name(INTRODUCTION)]  # no temp files


def test_files_are_keyed_by_what_is_said_and_by_the_engine(espeak):
    assert espeak.file_name(CONSENT) != espeak.file_name(INTRODUCTION)
    assert espeak.file_name('Anh/chị "có"  *sốt* không?') == espeak.file_name("Anh chị có sốt không?")
    spoken, key = speakable(CONSENT), b"k" * 32
    assert prompt_file_name(key, "gtts", spoken).endswith(".mp3")
    assert prompt_file_name(key, "espeak-ng", spoken).endswith(".wav")
    assert prompt_file_name(key, "gtts", spoken)[:64] != prompt_file_name(key, "espeak-ng", spoken)[:64]


def test_names_are_keyed_and_the_cache_is_private(espeak, tmp_path):
    name = espeak.file_name(GREETING)
    assert name not in unkeyed_names(GREETING)
    assert PromptCache(tmp_path / "other", ["espeak-ng"], gtts_timeout_s=5).file_name(GREETING) != name
    assert mode(espeak.cache_dir) == 0o700
    assert mode(espeak.cache_dir / name) == 0o600 and mode(espeak.cache_dir / KEY_FILE) == 0o600


def test_two_caches_with_the_same_settings_agree_on_names(tmp_path):
    """Processes sharing the folder (API, workers, a restart) share its key, even when they all start at once."""
    settings = Settings(tts_cache_dir=tmp_path / "shared", tts_engines=["espeak-ng"])
    with ThreadPoolExecutor(8) as pool:
        caches = list(pool.map(lambda _: PromptCache.from_settings(settings), range(8)))
    rendered = caches[0].audio_file(GREETING)
    assert {cache.rendered(GREETING) for cache in caches} == {rendered}
    assert PromptCache.from_settings(settings).rendered(GREETING) == rendered, "a restart"

    # Hosts without a shared folder share the setting instead; another secret gives other names.
    def name_on(host: str, key: str) -> str:
        own = settings.model_copy(update={"tts_cache_dir": tmp_path / host, "tts_prompt_key": SecretStr(key)})
        return PromptCache.from_settings(own).file_name(GREETING)

    assert name_on("host-1", "a shared secret") == name_on("host-2", "a shared secret") != name_on("host-3", "other")


def test_a_damaged_key_file_stops_the_cache_rather_than_renaming_everything(tmp_path):
    (tmp_path / KEY_FILE).write_text("not a key")
    with pytest.raises(ValueError, match="not a prompt key"):
        PromptCache(tmp_path, ["espeak-ng"], gtts_timeout_s=5)


def test_files_named_by_earlier_versions_are_removed(tmp_path):
    """They are plain hashes of their text: anyone could tell a greeting is there."""
    unkeyed = tmp_path / unkeyed_names(GREETING)[2]
    unkeyed.write_bytes(b"RIFF rendered by an earlier version")
    PromptCache(tmp_path, ["espeak-ng"], gtts_timeout_s=5)
    assert not unkeyed.exists()


def test_forgetting_personal_lines_leaves_the_fixed_ones(espeak):
    espeak.render_ahead([CONSENT, GREETING])
    assert espeak.forget([GREETING]) == 1
    assert espeak.rendered(GREETING) is None and espeak.rendered(CONSENT) is not None
    assert espeak.forget([GREETING]) == 0


def test_a_cached_rendering_is_used_whichever_engine_made_it_the_preferred_first(tmp_path, google_unreachable):
    google_rendering = tmp_path / prompt_file_name(prompt_key(tmp_path), "gtts", speakable(CONSENT))
    google_rendering.write_bytes(b"ID3 rendered while online")
    offline_first = PromptCache(tmp_path, ["espeak-ng", "gtts"], gtts_timeout_s=5)
    assert offline_first.audio_file(CONSENT) == google_rendering
    espeak_rendering = PromptCache(tmp_path, ["espeak-ng"], gtts_timeout_s=5).audio_file(CONSENT)
    assert offline_first.audio_file(CONSENT) == espeak_rendering
    assert PromptCache(tmp_path, ["gtts", "espeak-ng"], gtts_timeout_s=5).audio_file(CONSENT) == google_rendering


def test_speech_hears_anh_chi_not_a_slash_and_no_markup():
    decomposed = unicodedata.normalize("NFD", "Anh/chị đo  nhiệt độ ngày 20/10 chưa?")
    assert speakable(decomposed) == "Anh chị đo nhiệt độ ngày 20/10 chưa?"
    assert speakable('xin trả lời "không" hoặc *chưa đo*\n') == "xin trả lời không hoặc chưa đo"


def test_render_ahead_stops_when_asked(espeak):
    stop = threading.Event()
    stop.set()
    assert espeak.render_ahead([CONSENT, INTRODUCTION], stop) == 0
    assert audio_files(espeak) == []


def test_unknown_engines_are_refused_when_the_cache_is_built(tmp_path):
    with pytest.raises(ValueError, match="festival"):
        PromptCache(tmp_path, ["gtts", "festival"], gtts_timeout_s=5)
    with pytest.raises(ValueError, match="festival"):
        PromptCache.from_settings(Settings(tts_engines=["festival"]))


def test_static_texts_are_the_domain_replies_without_placeholders():
    texts = static_texts(DOMAIN)
    assert INTRODUCTION in texts and CONSENT in texts
    assert "Anh/chị đo nhiệt độ được bao nhiêu độ ạ?" in texts  # the plain variant of a conditional response
    assert any(text.startswith("Xin lỗi, tôi chưa rõ. Nhiệt độ") for text in texts)  # and the re-ask variant
    assert not [text for text in texts if "{" in text]
    assert len(texts) == len(set(texts))


def test_personal_texts_fill_the_templates_whose_slots_are_given():
    assert personal_texts(DOMAIN, {"name": "Nguyễn Văn An"}) == ["Xin hỏi có phải anh/chị Nguyễn Văn An không ạ?"]
    assert personal_texts(DOMAIN, {"name": None}) == []


def test_prompt_urls_are_absolute_under_the_public_address():
    name = "0" * 64 + ".mp3"
    url = prompt_url("https://cdc.example.vn/outreach/", name)
    assert url == f"https://cdc.example.vn/outreach/voice/prompts/{name}"


@pytest.fixture
def app(tmp_path):
    """The platform over HTTP on a fresh SQLite store, prompts in a temporary cache, rendered by espeak-ng."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(make_engine(store))
    settings = Settings(
        database_url=store,
        engine_url=f"http://127.0.0.1:{free_port()}",
        tts_cache_dir=tmp_path / "prompts",
        tts_engines=["espeak-ng"],
    )
    yield from run_app(settings)


def test_the_app_renders_every_fixed_line_of_a_call_ahead_when_it_starts(app):
    cache = PromptCache.from_settings(app.settings)
    lines = ahead_of_calls()
    assert set(static_texts(DOMAIN)) < set(lines) and "Hoặc bấm phím 1 nếu đúng, phím 2 nếu không phải." in lines
    key = prompt_key(cache.cache_dir)
    expected = {prompt_file_name(key, "espeak-ng", speakable(text)) for text in lines}
    deadline = time.monotonic() + 20
    while {path.name for path in cache.cache_dir.glob("*.wav")} != expected:
        assert time.monotonic() < deadline, "the fixed replies were not rendered ahead"
        time.sleep(0.05)


def test_twilio_fetches_a_rendered_prompt_cacheable_forever(app):
    cache = PromptCache.from_settings(app.settings)
    path = cache.audio_file(CONSENT)
    response = httpx.get(prompt_url(app.url, path.name), timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["etag"]
    assert response.content == path.read_bytes()


def test_only_rendered_prompts_are_served(app):
    cache = PromptCache.from_settings(app.settings)
    rendered = cache.file_name(CONSENT)
    (cache.cache_dir / "notes.wav").write_bytes(b"RIFF")
    for name in (
        "..%2F..%2Fpyproject.toml",
        "..%2Fstore.db",
        "notes.wav",
        rendered.replace(".wav", ".txt"),
        rendered.upper(),
        "0" * 64 + ".wav",
        "0" * 64 + ".mp3",
        KEY_FILE,
    ):
        response = httpx.get(f"{app.url}/voice/prompts/{name}", timeout=10)
        assert response.status_code == 404, name


def test_a_guessed_greeting_is_404_whether_or_not_it_was_rendered(app):
    """Who was called is personal data: the URL of someone's greeting cannot be worked out from their name."""
    cache = PromptCache.from_settings(app.settings)
    called = cache.file_name(GREETING)
    assert httpx.get(prompt_url(app.url, called), timeout=10).status_code == 200
    never_called = "Xin hỏi có phải anh/chị Trần Thị Bình không ạ?"
    for guess in unkeyed_names(GREETING) + unkeyed_names(never_called):
        assert httpx.get(prompt_url(app.url, guess), timeout=10).status_code == 404, guess


class CloudVoice:
    """Stands in for gTTS: what was sent to Google, and an MP3-named file for each."""

    def __init__(self) -> None:
        self.heard: list[str] = []

    def __call__(self, text: str, **_options) -> "CloudVoice":
        self.heard.append(text)
        return self

    def save(self, path: str) -> None:
        with open(path, "wb") as out:
            out.write(b"ID3 rendered in the cloud")


def test_a_residents_name_is_never_sent_to_a_cloud_voice_unless_allowed(tmp_path, monkeypatch):
    google = CloudVoice()
    monkeypatch.setattr(prompts, "gTTS", google)
    cache = PromptCache(tmp_path / "kept", ["gtts", "espeak-ng"], 1.0)
    assert cache.audio_file(GREETING, personal=True).suffix == ".wav", "espeak-ng said the name, on this server"
    assert cache.render_ahead([GREETING.replace("An", "Bình")], personal=True) == 1
    assert cache.audio_file(ahead_of_calls()[0]).suffix == ".mp3", "a line said to everyone may go to the cloud"
    assert google.heard == [speakable(ahead_of_calls()[0])], "and only that one did"

    with pytest.raises(PromptUnavailable, match="OUTREACH_TTS_CLOUD_HEARS_NAMES"):
        PromptCache(tmp_path / "cloud-only", ["gtts"], 1.0).audio_file(GREETING, personal=True)
    allowed = PromptCache(tmp_path / "allowed", ["gtts", "espeak-ng"], 1.0, cloud_hears_names=True)
    assert allowed.audio_file(GREETING, personal=True).suffix == ".mp3"


def test_lines_said_to_everyone_are_not_personal_and_greetings_are():
    assert not any(personal(line) for line in ahead_of_calls())
    assert personal(GREETING) and personal("Chào chị Lê Thị Hoa")
