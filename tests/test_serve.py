"""`outreach serve` end to end: the API, the scheduler and a child engine, stopped together."""

import os
import signal
import subprocess
import time

import httpx
import pytest

from tests.support.net import free_port
from tests.test_cli import OUTREACH, outreach

pytestmark = pytest.mark.engine


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


def test_serve_runs_api_scheduler_and_engine_and_stops_them_all(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'var' / 'outreach.db'}"
    port, engine_port = free_port(), free_port()
    env = {
        **os.environ,
        "OUTREACH_DATABASE_URL": database_url,
        "OUTREACH_PORT": str(port),
        "OUTREACH_ENGINE_PORT": str(engine_port),
        "OUTREACH_ACTIONS_PORT": str(free_port()),
        "OUTREACH_HEARTBEAT_FILE": str(tmp_path / "heartbeat"),
    }
    env.pop("OUTREACH_ENGINE_URL", None)
    process = subprocess.Popen([OUTREACH, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        health = _wait_healthy(url, process)
        assert health.json()["engine"]["ok"] and health.json()["store"]["backend"] == "sqlite"
        token = outreach("user", "add", "lan", "--role", "manager", database_url=database_url).stdout.split()[-1]
        assert httpx.get(f"{url}/api/v1/declarations", headers={"Authorization": f"Bearer {token}"}).json() == []
        heartbeat = outreach("worker", "--check", database_url=database_url,
                             OUTREACH_HEARTBEAT_FILE=str(tmp_path / "heartbeat"))  # fmt: skip
        assert heartbeat.returncode == 0, "the scheduler runs inside serve"
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 0, output
    assert "engine stopped" in output and "action server stopped" in output
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{engine_port}/status", timeout=2)
