"""`outreach serve` end to end: the API, the scheduler and a child engine, stopped together however serve ends;
private files; logs without residents' answers."""

import os
import re
import signal
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.net import free_port
from tests.test_cli import OUTREACH, outreach

pytestmark = pytest.mark.engine
NAME, SECRET_WORD, TEMPERATURE = "Xuyenzqk", "Zqkwv", "38,7"  # nowhere but in what the resident says


def _wait_healthy(url: str, process: subprocess.Popen, timeout_s: float = 240) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "outreach serve exited during start-up"
        try:
            response = httpx.get(f"{url}/healthz", timeout=3)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"no healthy /healthz within {timeout_s} s")


def _serve(tmp_path: Path) -> tuple[subprocess.Popen, str, dict]:
    var = tmp_path / "var"
    env = {
        **os.environ,
        "OUTREACH_DATABASE_URL": f"sqlite:///{var / 'outreach.db'}",
        "OUTREACH_PORT": str(free_port()),
        "OUTREACH_ENGINE_PORT": str(free_port()),
        "OUTREACH_HEARTBEAT_FILE": str(var / "heartbeat"),
        "OUTREACH_LOG_DIR": str(var / "log"),
        "OUTREACH_ENGINE_TRACKER_DB": str(var / "engine" / "trackers.db"),
    }
    env.pop("OUTREACH_ENGINE_URL", None)
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen([OUTREACH, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{env['OUTREACH_PORT']}", env


def _children_of(pid: int) -> list[int]:
    """Children of every thread of `pid` (the kernel lists them per forking thread)."""
    return [
        int(child) for task in Path(f"/proc/{pid}/task").iterdir() for child in (task / "children").read_text().split()
    ]


def _gone(pid: int, timeout_s: float = 20) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return True  # a zombie waiting for a parent that is gone: dead
        except FileNotFoundError:
            return True
        time.sleep(0.2)
    return False


def _converse(url: str) -> None:
    opened = httpx.post(f"{url}/api/v1/webchat/sessions", json={"phone": "0912 345 678", "name": NAME}, timeout=30)
    assert opened.status_code == 200, opened.text
    session = opened.json()["session_id"]
    for text in ("đúng rồi", "được", f"tôi bị ho khan, sốt {TEMPERATURE} độ {SECRET_WORD}"):
        said = httpx.post(f"{url}/api/v1/webchat/sessions/{session}/messages", json={"text": text}, timeout=30)
        assert said.status_code == 200, said.text


def test_serve_runs_everything_keeps_files_private_and_sigterm_stops_it_all(tmp_path):
    process, url, env = _serve(tmp_path)
    try:
        health = _wait_healthy(url, process)
        assert health.json()["engine"]["ok"] and health.json()["store"]["backend"] == "sqlite"
        database_url = env["OUTREACH_DATABASE_URL"]
        token = outreach("user", "add", "lan", "--role", "manager", database_url=database_url).stdout.split()[-1]
        assert httpx.get(f"{url}/api/v1/declarations", headers={"Authorization": f"Bearer {token}"}).json() == []
        heartbeat = outreach(
            "worker", "--check", database_url=database_url, OUTREACH_HEARTBEAT_FILE=env["OUTREACH_HEARTBEAT_FILE"]
        )
        assert heartbeat.returncode == 0, "the scheduler runs inside serve"
        _converse(url)
        children = _children_of(process.pid)
        commands = [Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0") for child in children]
        assert sum(b"rasa" in command for command in commands) == 1, "the engine"
        assert not any(b"rasa_sdk" in command for command in commands), "and no action server beside it"
    finally:
        process.send_signal(signal.SIGTERM)  # what systemd and `docker stop` send
        process.wait(timeout=60)
    output = (tmp_path / "serve.log").read_text()
    assert process.returncode == 0, output
    assert "engine stopped" in output
    assert all(_gone(child, timeout_s=5) for child in children), "no child outlives serve"

    var = tmp_path / "var"
    for path in [var, *var.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path.relative_to(tmp_path)} is readable by others ({oct(mode)})"
    logs = [tmp_path / "serve.log", *(var / "log").rglob("*")]
    for log in logs:
        # without the lines' times: a time's seconds and milliseconds ("07:45:38,737") once read as "38,7"
        text = re.sub(r"\d{2}:\d{2}:\d{2},\d{3}", "", log.read_text(errors="replace"))
        for secret in (NAME, SECRET_WORD, TEMPERATURE):
            assert secret not in text, f"{log.name} holds a resident's words: {secret}"
        assert "Failed to fill utterance template" not in text and "ERROR" not in text, log.name


def test_no_engine_outlives_a_killed_serve(tmp_path):
    process, url, _ = _serve(tmp_path)
    try:
        _wait_healthy(url, process)
        children = _children_of(process.pid)
        assert children
    finally:
        process.kill()  # SIGKILL, as the out-of-memory killer does: serve cleans nothing up
        process.wait(timeout=30)
    assert all(_gone(child) for child in children), "the engine died with serve and frees its port"
