"""Benchmarks on this machine, in one run.

    make bench            (or: .venv/bin/python scripts/bench.py --residents 16 --rounds 3 --import-rows 100000)

0. The dialogue's actions run inside the engine (the default) against a separate rasa_sdk action server: two
   engines side by side, the same scripted declarations on each in turn, medians of three runs.
1. Web chat through the platform against the bare engine's turn channel: both sides play the same scripted
   declarations with the same number of concurrent residents against the same engine.
   The platform side goes through the web chat API, so each turn also records the transcript, upserts the
   declaration and assesses alerts in the store (SQLite, the embedded default).
2. F1 list import: a generated CSV (2 % broken rows, some duplicates) through `outreach contacts import`, wall time
   and peak memory of the process.
   Then starting a campaign over that list: the planning of a day of follow-ups for everyone on it.
3. Phone calls in Gather mode through a local Twilio (tests/fakes/twilio.py): calls placed by the dispatcher, then
   answered and answered again, turn after turn; the latency of each turn webhook (request in, TwiML out: engine
   round trip, store writes and prompts included) with a warm prompt cache, one call at a time and several at once.
4. Dispatch: a campaign's calls placed through the local Twilio by the dispatcher ticking every second as a worker
   does (after the planning job rendered the names); the achieved rate (slope of arrivals) against the configured.
"""

import argparse
import asyncio
import csv
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.engine_process import EngineProcess  # noqa: E402
from app.platform import Platform, outbound_channels  # noqa: E402
from app.web import create_app  # noqa: E402
from app.worker import plan_follow_ups  # noqa: E402
from campaigns.dispatch import Dispatcher, contact  # noqa: E402
from campaigns.lifecycle import new_campaign, transition  # noqa: E402
from campaigns.rules import CampaignRules  # noqa: E402
from connectors.call_lines import ahead_of_calls  # noqa: E402
from connectors.twilio_voice import VoiceChannel  # noqa: E402
from ground.private import engine_token
from ground.settings import PROJECT_ROOT, Settings  # noqa: E402
from ground.store import make_engine, make_session_factory  # noqa: E402
from models import ContactList, ContactListMember, OutreachAttempt  # noqa: E402
from tests import factories  # noqa: E402
from tests.fakes.twilio import FakeTwilio  # noqa: E402
from tests.support.declarations import SPOKEN_HEALTH_ANSWERS  # noqa: E402
from tests.support.net import free_port  # noqa: E402

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
SCRIPT = [
    "vâng",
    "được",
    "tôi sốt 38 độ 5 từ hôm qua, ho khan",
    "không",
    "test nhanh âm tính sáng nay",
    "tiêm 2 mũi rồi",
    "có",
    "không cần",
]


async def engine_resident(client: httpx.AsyncClient, url: str, latencies: list[float]) -> None:
    sender = uuid.uuid4().hex
    for text in ['/start_declaration{"name": "An"}', *SCRIPT]:
        started = time.perf_counter()
        response = await client.post(f"{url}/webhooks/turn/webhook", json={"sender": sender, "message": text})
        response.raise_for_status()
        latencies.append(time.perf_counter() - started)


async def platform_resident(client: httpx.AsyncClient, url: str, latencies: list[float], phone: str) -> None:
    started = time.perf_counter()
    response = await client.post(f"{url}/api/v1/webchat/sessions", json={"phone": phone, "name": "An"})
    response.raise_for_status()
    latencies.append(time.perf_counter() - started)
    session = response.json()["session_id"]
    for text in SCRIPT:
        started = time.perf_counter()
        response = await client.post(f"{url}/api/v1/webchat/sessions/{session}/messages", json={"text": text})
        response.raise_for_status()
        latencies.append(time.perf_counter() - started)


async def run(kind: str, url: str, residents: int, rounds: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    token = {"Authorization": f"Bearer {engine_token(Settings())}"}
    async with httpx.AsyncClient(
        timeout=60, limits=httpx.Limits(max_connections=residents * 2), headers=token
    ) as client:
        started = time.perf_counter()
        for round_no in range(rounds):
            if kind == "engine":
                jobs = [engine_resident(client, url, latencies) for _ in range(residents)]
            else:
                jobs = [platform_resident(client, url, latencies, f"09{round_no:02d}{i:06d}") for i in range(residents)]
            await asyncio.gather(*jobs)
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100)[int(share * 100) - 1] * 1000


def platform_env(engine_url: str, port: int, workdir: Path, twilio: FakeTwilio) -> dict[str, str]:
    return {
        "OUTREACH_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
        "OUTREACH_ENGINE_URL": engine_url,
        "OUTREACH_PORT": str(port),
        "OUTREACH_SCHEDULER_ENABLED": "false",
        "OUTREACH_LOG_LEVEL": "warning",
        "OUTREACH_WEBCHAT_MESSAGES_PER_MINUTE": "100000",  # the bench is one address sending as fast as it can
        "OUTREACH_WEBCHAT_REQUESTS_PER_MINUTE_PER_IP": "100000",
        "OUTREACH_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "OUTREACH_TWILIO_ACCOUNT_SID": twilio.account_sid,
        "OUTREACH_TWILIO_AUTH_TOKEN": twilio.auth_token,
        "OUTREACH_TWILIO_FROM_NUMBER": "+15005550006",
        "OUTREACH_TWILIO_API_BASE_URL": twilio.url,
        "OUTREACH_TTS_CACHE_DIR": str(workdir / "prompts"),
        "OUTREACH_TTS_ENGINES": '["espeak-ng"]',  # no internet here; the bench measures the call path, not Google
    }


def start_platform(env: dict[str, str], port: int, log: IO[bytes] | None = None) -> subprocess.Popen:
    """`outreach serve` in a child process, once healthy; its output goes to `log` if given."""
    command = [str(PROJECT_ROOT / ".venv" / "bin" / "outreach"), "serve"]
    process = subprocess.Popen(command, env={**os.environ, **env}, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("the platform did not become healthy")


CALL_SCRIPT = ["vâng đúng rồi", "được", *SPOKEN_HEALTH_ANSWERS, "có", "không cần gì"]


def one_call(twilio: FakeTwilio, platform: Platform, phone: str) -> tuple[float, list[float]]:
    """Place, answer and converse one call; returns the answer's latency and each turn's."""
    with platform.sessions.begin() as session:
        attempt_id = factories.outreach_attempt(session, phone).id
    voice = VoiceChannel(platform.settings, prompts=platform.prompts)
    asyncio.run(contact(platform.sessions, {"voice": voice}, attempt_id, datetime.now(UTC)))
    call = next(c for c in reversed(twilio.calls) if c.param("To") == phone)
    answered = call.answer()
    turns = []
    for text in CALL_SCRIPT:
        if not call.prompt.gather:
            break
        turns.append(call.say(text).latency_s)
    return answered.latency_s, turns


def bench_voice(twilio: FakeTwilio, env: dict[str, str], calls: int, concurrent: int) -> None:
    with patched_environ(env):
        platform = create_app(Settings()).state.platform  # the dispatcher's side, on the same store
    platform.prompts.render_ahead(ahead_of_calls())  # warm cache: what `serve` does at start
    one_call(twilio, platform, "+84389999999")  # warm-up: the engine's and the store's first turn
    print(
        f"\nTwiML turn latency (webhook in, TwiML out; engine, store and prompt cache included), {calls} calls "
        f"of {len(CALL_SCRIPT)} answers"
    )
    print(f"{'':28}{'turns':>8}{'p50 ms':>10}{'p95 ms':>10}{'answer p50 ms':>15}")
    for at_once in sorted({1, concurrent}):
        phones = [f"+8438{at_once}{i:06d}" for i in range(calls)]
        with ThreadPoolExecutor(at_once) as pool:
            results = list(pool.map(lambda phone: one_call(twilio, platform, phone), phones))
        turns = [latency for _, call_turns in results for latency in call_turns]
        answers = [answer for answer, _ in results]
        print(
            f"{f'{at_once} call(s) at a time':28}{len(turns):>8}{percentile(turns, 0.5):>10.0f}"
            f"{percentile(turns, 0.95):>10.0f}{statistics.median(answers) * 1000:>15.0f}"
        )
    print("goal: p95 under 300 ms (one call at a time)")


def bench_dispatch(twilio: FakeTwilio, env: dict[str, str], people: int, rate: float) -> None:
    """Real calls placed through the local Twilio by the dispatcher, ticking every second as a worker does."""
    with patched_environ(env):
        platform = create_app(Settings()).state.platform
    zone = ZoneInfo(factories.zone_at_midday())
    with platform.sessions.begin() as session:
        contacts = ContactList(name="dispatch bench")
        session.add(contacts)
        session.flush()
        for i in range(people):
            person = factories.person(session, f"+8435{i:07d}", name=f"Trần Thị {i}")
            session.add(
                ContactListMember(
                    contact_list_id=contacts.id,
                    person_id=person.id,
                    exposure_date=datetime.now(zone).date() - timedelta(days=1),
                )
            )
        rules = CampaignRules(
            channels=["voice"],
            new_calls_per_second=rate,
            max_concurrent_calls=people,
            timezone=str(zone),
            calling_hours=[{"start": "00:00", "end": "23:59:59"}],
        )
        campaign = new_campaign("dispatch bench", [contacts], rules)
        session.add(campaign)
        session.flush()
        transition(session, campaign, "start", datetime.now(UTC))
    started = time.perf_counter()
    with patched_environ(env):
        plan_follow_ups(env["OUTREACH_DATABASE_URL"])  # the worker's planning job: renders the names ahead
    print(f"\nplanning job rendered {people} personal greetings in {time.perf_counter() - started:.1f} s")
    before = len(twilio.call_times)
    dispatcher = Dispatcher(platform.sessions, outbound_channels(platform), "bench")

    async def work() -> None:
        while len(twilio.call_times) - before < people:
            started = time.monotonic()
            await dispatcher.tick()
            await asyncio.sleep(max(0.0, started + 1 - time.monotonic()))

    asyncio.run(work())
    times = twilio.call_times[before:]
    # The slope of arrival time over call number: one slow first call does not skew it as first-to-last would.
    achieved = 1 / statistics.linear_regression(range(len(times)), times).slope
    print(
        f"\ndispatch: {people} calls placed at {achieved:.2f} calls/s against a configured {rate:g}/s "
        f"({achieved / rate - 1:+.2%}; goal: within 2 %)"
    )


@contextmanager
def patched_environ(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def bench_import(rows: int, workdir: Path) -> None:
    path = workdir / "f1.csv"
    rng = random.Random(2021)
    prefixes = ["091", "098", "097", "090", "093", "088", "086", "032", "035", "039", "070", "079", "083", "056"]
    exposed = (datetime.now(HANOI).date() - timedelta(days=1)).strftime("%d/%m/%Y")  # follow-up day 1 is today
    with path.open("w", encoding="utf-8-sig", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(
            ["STT", "Họ và tên", "Số điện thoại", "Năm sinh", "Địa chỉ", "Phường/Xã", "Tỉnh", "Ngày tiếp xúc"]
        )
        for i in range(rows):
            phone = "không rõ" if i % 50 == 0 else rng.choice(prefixes) + f"{rng.randrange(10**7):07d}"
            writer.writerow(
                [i + 1, f"Nguyễn Văn {i}", phone, 1950 + i % 60, f"{i} Lý Thái Tổ", "Suối Hoa", "Bắc Ninh", exposed]
            )
    env = {**os.environ, "OUTREACH_DATABASE_URL": f"sqlite:///{workdir / 'import.db'}"}
    outreach = str(PROJECT_ROOT / ".venv" / "bin" / "outreach")
    subprocess.run([outreach, "db", "upgrade"], env=env, check=True, capture_output=True)
    started = time.perf_counter()
    result = subprocess.run(
        [outreach, "contacts", "import", str(path), "--list", "bench", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"\nF1 list import of {rows:,} rows: {elapsed:.1f} s, peak memory {peak_mb:.0f} MB "
        f"(goals: under 20 s and 500 MB); {result.stdout.strip()}"
    )
    bench_planning(env["OUTREACH_DATABASE_URL"], json.loads(result.stdout)["list_id"])


def bench_planning(database_url: str, list_id: int) -> None:
    """Starting a campaign over the imported list plans today's follow-up of everyone on it."""
    db = make_engine(database_url)
    with make_session_factory(db).begin() as session:
        campaign = new_campaign("bench", [session.get(ContactList, list_id)], CampaignRules())
        session.add(campaign)
        session.flush()
        started = time.perf_counter()
        transition(session, campaign, "start", datetime.now(UTC))
        elapsed = time.perf_counter() - started
        planned = session.query(OutreachAttempt).filter_by(campaign_id=campaign.id).count()
    db.dispose()
    print(f"planning a day of follow-ups: {planned:,} attempts in {elapsed:.1f} s ({planned / elapsed:,.0f}/s)")


def report_webchat(
    args: argparse.Namespace, bare_rate: float, bare: list[float], ours_rate: float, ours: list[float]
) -> None:
    turns = len(SCRIPT) + 1
    print(f"\nweb chat turns, {args.residents} concurrent residents x {args.rounds} declarations of {turns} turns")
    print(f"{'':24}{'turns/s':>10}{'p50 ms':>10}{'p95 ms':>10}")
    for name, rate, latencies in (("bare engine (turn)", bare_rate, bare), ("platform (web chat)", ours_rate, ours)):
        print(f"{name:24}{rate:>10.1f}{percentile(latencies, 0.5):>10.0f}{percentile(latencies, 0.95):>10.0f}")
    overhead = bare_rate / ours_rate - 1
    print(
        f"platform cost over the bare engine: {overhead:+.1%} per turn (throughput ratio {ours_rate / bare_rate:.3f}); "
        f"p50 {percentile(ours, 0.5) - percentile(bare, 0.5):+.0f} ms; goal: under +10%"
    )


def bench_actions(workdir: Path, residents: int, rounds: int, runs: int) -> None:
    """The dialogue's actions inside the engine (the default) against a separate action server, side by side: two
    engines up at once, the same load on each in turn, `runs` times; medians reported."""
    engines = {}
    for mode in ("in-engine", "server"):
        settings = Settings(
            engine_port=free_port(),
            actions_port=free_port(),
            engine_actions=mode,
            engine_tracker_db=workdir / mode / "trackers.db",
        )
        engines[mode] = EngineProcess(settings, workdir / f"engine-{mode}.log")
    try:
        for engine in engines.values():
            engine.start()
        for engine in engines.values():
            engine.wait_ready(engine.settings.engine_start_timeout_s)
            asyncio.run(run("engine", engine.url, 4, 1))  # warm-up
        measured: dict[str, list[tuple[float, float]]] = {mode: [] for mode in engines}
        for _ in range(runs):
            for mode, engine in engines.items():
                rate, latencies = asyncio.run(run("engine", engine.url, residents, rounds))
                measured[mode].append((rate, percentile(latencies, 0.5)))
    finally:
        for engine in engines.values():
            engine.stop()
    print(f"\ndialogue actions, {residents} concurrent residents x {rounds} declarations, median of {runs} runs")
    print(f"{'':24}{'turns/s':>10}{'p50 ms':>10}")
    medians = {
        mode: (statistics.median(r for r, _ in runs_), statistics.median(p for _, p in runs_))
        for mode, runs_ in measured.items()
    }
    for mode, (rate, p50) in medians.items():
        print(f"{'actions ' + mode:24}{rate:>10.1f}{p50:>10.0f}")
    (in_rate, in_p50), (server_rate, server_p50) = medians["in-engine"], medians["server"]
    print(
        f"in-engine / action server: throughput x{in_rate / server_rate:.3f}, p50 {in_p50 - server_p50:+.0f} ms "
        f"per turn"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=16, help="concurrent residents")
    parser.add_argument("--rounds", type=int, default=3, help="conversations per resident")
    parser.add_argument("--import-rows", type=int, default=100_000, help="rows of the generated F1 list (0: skip)")
    parser.add_argument("--calls", type=int, default=12, help="phone calls per voice measurement (0: skip)")
    parser.add_argument("--concurrent-calls", type=int, default=4, help="calls at once in the loaded measurement")
    parser.add_argument("--dispatch-calls", type=int, default=300, help="calls of the dispatch-rate measurement")
    parser.add_argument("--dispatch-rate", type=float, default=20.0, help="configured new calls per second")
    parser.add_argument("--actions-runs", type=int, default=3, help="runs of the in-engine/action server comparison")
    parser.add_argument("--only-actions", action="store_true", help="the in-engine/action server comparison alone")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="outreach-bench-"))
    if args.actions_runs:
        bench_actions(workdir, min(args.residents, 8), 2, args.actions_runs)
    if args.only_actions:
        return
    if args.import_rows:  # first: the peak memory read is the largest child's so far, and the engine is larger
        bench_import(args.import_rows, workdir)
    settings = Settings(engine_port=free_port(), engine_tracker_db=workdir / "engine" / "trackers.db")
    engine = EngineProcess(settings, workdir / "engine.log")
    engine.start()
    platform = None
    twilio = FakeTwilio()
    try:
        with twilio.running() as twilio.url:
            engine.wait_ready(settings.engine_start_timeout_s)
            platform_port = free_port()
            env = platform_env(engine.url, platform_port, workdir, twilio)
            platform = start_platform(env, platform_port)
            asyncio.run(run("engine", engine.url, 4, 1))  # warm-up: models loaded, caches hot
            bare_rate, bare = asyncio.run(run("engine", engine.url, args.residents, args.rounds))
            ours_rate, ours = asyncio.run(
                run("platform", f"http://127.0.0.1:{platform_port}", args.residents, args.rounds)
            )
            report_webchat(args, bare_rate, bare, ours_rate, ours)
            if args.calls:
                bench_voice(twilio, env, args.calls, args.concurrent_calls)
            if args.dispatch_calls:
                bench_dispatch(twilio, env, args.dispatch_calls, args.dispatch_rate)
    finally:
        if platform:
            platform.terminate()
            platform.wait(10)
        engine.stop()


if __name__ == "__main__":
    main()
