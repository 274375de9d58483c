"""Shared fixtures: a fresh store on SQLite and on a real PostgreSQL, the real engine, the app over HTTP."""

import inspect
import itertools
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser
from sqlalchemy.orm import Session, sessionmaker

from app.engine_process import EngineProcess
from app.platform import Platform
from app.web import create_app
from ground.settings import PROJECT_ROOT, Settings
from ground.store import make_engine, make_session_factory
from models.migrate import upgrade
from tests.fakes.twilio import FakeTwilio
from tests.support.browser import chromium
from tests.support.net import free_port, serving
from tests.support.postgres import ThrowawayPostgres

SCHEMA_PATH = PROJECT_ROOT.parent / "shared" / "declaration.schema.json"
QUALITY_REPORT: list[str] = []  # language-quality scores, printed after the run


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A worker of a parallel run (pytest-xdist) hands its scores to the process that prints the summary."""
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["quality_report"] = list(QUALITY_REPORT)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    QUALITY_REPORT.extend(getattr(node, "workeroutput", {}).get("quality_report", []))


def pytest_terminal_summary(terminalreporter) -> None:
    if QUALITY_REPORT:
        terminalreporter.section("language quality (held-out data)")
        for line in QUALITY_REPORT:
            terminalreporter.write_line(line)


# The layers of the suite are named by the parts a test needs, read off the fixtures it asks for and the names its
# code (and its fixtures' code) calls, so a new test lands in the right layer without anyone marking it.
# `make test-fast` leaves out every test marked here: what remains is pure code and SQLite, in this process.
MARKS_BY_FIXTURE = {"managed_engine": "engine", "engine_url": "engine", "postgres": "postgres", "browser": "browser"}
MARKS_BY_CALLED_NAME = {
    "outreach": "processes",  # the CLI runner of tests/test_cli.py
    "subprocess": "processes",
    "run_app": "served",
    "serving": "served",
}


def _names_called(item: pytest.Item) -> set[str]:
    """Global names used by the test, its fixtures and the test helpers they call (followed through tests/)."""
    pending = [getattr(item, "function", None)]
    fixture_info = getattr(item, "_fixtureinfo", None)
    for definitions in fixture_info.name2fixturedefs.values() if fixture_info else ():
        pending += [definition.func for definition in definitions]
    seen: set[object] = set()
    names: set[str] = set()
    while pending:
        function = pending.pop()
        if not inspect.isfunction(function) or function in seen:
            continue
        seen.add(function)
        codes = [function.__code__]
        while codes:  # the function's own code and the code of the lambdas and functions defined in it
            code = codes.pop()
            names |= set(code.co_names)
            codes += [const for const in code.co_consts if inspect.iscode(const)]
        helpers = (function.__globals__.get(name) for name in names)
        pending += [h for h in helpers if inspect.isfunction(h) and h.__module__.startswith("tests")]
    return names


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        called = _names_called(item)
        marks = {MARKS_BY_FIXTURE[name] for name in MARKS_BY_FIXTURE.keys() & fixtures}
        marks |= {MARKS_BY_CALLED_NAME[name] for name in MARKS_BY_CALLED_NAME.keys() & called}
        for mark in sorted(marks):
            item.add_marker(mark)


_database_numbers = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def offline_prompts(tmp_path_factory) -> Iterator[None]:
    """Every app under test speaks with espeak-ng into one cache for the run: each prompt is rendered once, no test
    reaches for Google, and nothing is written into the project's var/prompts."""
    saved = {name: os.environ.get(name) for name in ("OUTREACH_TTS_CACHE_DIR", "OUTREACH_TTS_ENGINES")}
    os.environ["OUTREACH_TTS_CACHE_DIR"] = str(tmp_path_factory.mktemp("prompts"))
    os.environ["OUTREACH_TTS_ENGINES"] = '["espeak-ng"]'
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Chromium for one test: Playwright's sync API keeps an event loop running in this thread while it is open, and
    later tests that call `asyncio.run` must not find one (a session-long browser broke 100 of them)."""
    with chromium() as running:
        yield running


@pytest.fixture(scope="session")
def declaration_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


@pytest.fixture(scope="session")
def postgres() -> Iterator[ThrowawayPostgres]:
    cluster = ThrowawayPostgres()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """A SQLite store brought to the newest migration once; each test gets a copy (migrating takes half a second)."""
    path = tmp_path_factory.mktemp("template") / "store.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection closing folds the write-ahead log into the file
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request, tmp_path: Path) -> Iterator[str]:
    """A new, migrated store on each backend the platform supports."""
    if request.param == "sqlite":
        path = tmp_path / "store.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
        yield f"sqlite:///{path}"
        return
    cluster: ThrowawayPostgres = request.getfixturevalue("postgres")
    name = f"test_{next(_database_numbers)}"
    url = cluster.create_database(name)
    engine = make_engine(url)
    upgrade(engine)
    yield url
    engine.dispose()
    cluster.drop_database(name)


@pytest.fixture
def sessions(store_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(store_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def managed_engine(tmp_path_factory) -> Iterator[EngineProcess]:
    """The real Rasa engine with the trained model, started once for the session (its trackers in a file of its
    own; the token is the installation's, so apps built with default settings reach it)."""
    folder = tmp_path_factory.mktemp("engine")
    settings = Settings(engine_port=free_port(), actions_port=free_port(), engine_tracker_db=folder / "trackers.db")
    engine = EngineProcess(settings, folder / "engine.log")
    engine.start()
    try:
        engine.wait_ready(settings.engine_start_timeout_s)
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def engine_url(managed_engine: EngineProcess) -> str:
    return managed_engine.url


@dataclass
class RunningApp:
    url: str
    sessions: sessionmaker[Session]
    settings: Settings
    platform: Platform

    def get(self, path: str, token: str | None = None, **params) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(f"{self.url}{path}", params=params, headers=headers, timeout=10)


def run_app(settings: Settings, port: int | None = None) -> Iterator[RunningApp]:
    app = create_app(settings)
    with serving(app, port) as url:
        yield RunningApp(url, app.state.platform.sessions, settings, app.state.platform)


def run_public_app(store_url: str, engine_url: str, **settings: Any) -> Iterator[RunningApp]:
    """The platform on a port chosen ahead, so that its public base URL (the webhooks it gives providers) is its own."""
    port = free_port()
    settings["public_base_url"] = f"http://127.0.0.1:{port}"
    yield from run_app(Settings(database_url=store_url, engine_url=engine_url, **settings), port)


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    """A local Twilio (tests/fakes/twilio.py) for the platform to call, served while the test runs."""
    fake = FakeTwilio()
    with fake.running():
        yield fake


@pytest.fixture
def api(store_url: str, tmp_path: Path) -> Iterator[RunningApp]:
    """The platform over real HTTP on a fresh store; the engine URL points nowhere (API tests need no engine)."""
    yield from run_app(Settings(database_url=store_url, engine_url=f"http://127.0.0.1:{free_port()}"))
