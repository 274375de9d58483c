"""The dialogue engine as a managed child: train its model when stale, start it, watch it, stop it."""

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from bot import training
from outreach.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)


class EngineUnavailable(RuntimeError):
    """The engine environment or its model is missing, or the engine did not come up."""


def _require_engine_env(settings: Settings) -> None:
    if not settings.engine_python.exists():
        raise EngineUnavailable(
            f"no engine environment at {settings.engine_python}: run `make engine` "
            "(it needs Python 3.10; set RASA_PYTHON to its interpreter if it is not found)"
        )


def ensure_model(settings: Settings) -> Path:
    """Path of the model for the current bot/ and config.yml, training it first if it is missing."""
    path = training.model_path(settings.engine_models_dir)
    if path.exists():
        return path
    _require_engine_env(settings)
    settings.engine_models_dir.mkdir(parents=True, exist_ok=True)
    log.info("training the engine model %s (bot/ or config.yml changed)", path.name)
    command = [
        str(settings.engine_python), "-m", "rasa", "train",
        "--config", str(training.CONFIG), "--domain", str(training.DOMAIN), "--data", str(training.DATA_DIR),
        "--out", str(settings.engine_models_dir), "--fixed-model-name", training.model_name(),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=_engine_environ())
    if result.returncode != 0 or not path.exists():
        raise EngineUnavailable(f"`rasa train` failed (exit {result.returncode}); see its output above")
    for stale in settings.engine_models_dir.glob("outreach-*.tar.gz"):
        if stale != path:
            stale.unlink()
    return path


def _engine_environ() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT_ROOT)  # so `bot.channel` and custom components import
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    return env


class Child:
    """One child process in its own process group (a Ctrl-C reaches `outreach serve` first, which stops it)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_file: Path) -> None:
        self.name, self.command, self.env, self.log_file = name, command, env, log_file
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_file.open("ab") as sink:
            self.process = subprocess.Popen(
                self.command, cwd=PROJECT_ROOT, env=self.env, stdout=sink, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        log.info("%s starting (pid %s, log %s)", self.name, self.process.pid, self.log_file)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def died(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def stop(self, grace_s: float) -> None:
        if self.process is None or not self.running():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        log.info("%s stopped", self.name)


class EngineProcess:
    """The engine (`rasa run`) and its action server (`rasa_sdk`) as children of `outreach serve`."""

    def __init__(self, settings: Settings, log_file: Path) -> None:
        self.settings = settings
        self.log_file = log_file
        log_file.parent.mkdir(parents=True, exist_ok=True)
        python = str(settings.engine_python)
        actions_url = f"http://127.0.0.1:{settings.actions_port}"
        self.actions = Child(
            "action server",
            [python, "-m", "rasa_sdk", "--actions", "bot.actions", "--port", str(settings.actions_port)],
            _engine_environ(), log_file.with_name("actions.log"),
        )  # fmt: skip
        self.actions_health_url = f"{actions_url}/health"
        self.engine = Child(
            "engine", [], {**_engine_environ(), "ACTION_SERVER_URL": f"{actions_url}/webhook"}, log_file
        )

    @property
    def url(self) -> str:
        return self.settings.managed_engine_url

    def start(self) -> None:
        model = ensure_model(self.settings)
        self.engine.command = [
            str(self.settings.engine_python), "-m", "rasa", "run", "--enable-api",
            "--model", str(model),
            "--credentials", str(training.BOT_DIR / "credentials.yml"),
            "--endpoints", str(training.BOT_DIR / "endpoints.yml"),
            "--interface", "127.0.0.1", "--port", str(self.settings.engine_port),
        ]  # fmt: skip
        self.actions.start()
        self.engine.start()

    def running(self) -> bool:
        return self.engine.running() and self.actions.running()

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for url, child in ((self.actions_health_url, self.actions), (f"{self.url}/status", self.engine)):
            while not _answers(url):
                if not child.running():
                    raise EngineUnavailable(f"the {child.name} exited during start-up; see {child.log_file}")
                if time.monotonic() > deadline:
                    raise EngineUnavailable(f"the {child.name} was not ready after {timeout_s:.0f} s")
                time.sleep(0.5)

    def restart_if_dead(self) -> None:
        """Bring back a child that died (out of memory, a crash): residents would get no replies."""
        for child in (self.actions, self.engine):
            if child.died():
                log.error("the %s exited with code %s; restarting it", child.name, child.process.returncode)
                child.start()

    def stop(self, grace_s: float = 15.0) -> None:
        self.engine.stop(grace_s)
        self.actions.stop(grace_s)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
