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


class EngineProcess:
    """`rasa run` as a child process of `outreach serve`, stopped with it."""

    def __init__(self, settings: Settings, log_file: Path) -> None:
        self.settings = settings
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.settings.managed_engine_url

    def start(self) -> None:
        model = ensure_model(self.settings)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        command = [
            str(self.settings.engine_python), "-m", "rasa", "run", "--enable-api",
            "--model", str(model),
            "--credentials", str(training.BOT_DIR / "credentials.yml"),
            "--endpoints", str(training.BOT_DIR / "endpoints.yml"),
            "--interface", "127.0.0.1", "--port", str(self.settings.engine_port),
        ]  # fmt: skip
        with self.log_file.open("ab") as sink:
            self.process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env=_engine_environ(), stdout=sink, stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C on the terminal reaches us first; we stop the engine
            )  # fmt: skip
        log.info("engine starting (pid %s, log %s)", self.process.pid, self.log_file)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running():
                raise EngineUnavailable(f"the engine exited during start-up; see {self.log_file}")
            try:
                if httpx.get(f"{self.url}/status", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise EngineUnavailable(f"the engine was not ready after {timeout_s:.0f} s; see {self.log_file}")

    def restart_if_dead(self) -> None:
        """Bring the engine back if it died (out of memory, a crash): residents would get no replies."""
        if self.process is None or self.running():
            return
        log.error("the engine exited with code %s; restarting it", self.process.returncode)
        self.start()

    def stop(self, grace_s: float = 15.0) -> None:
        if self.process is None or not self.running():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        log.info("engine stopped")
