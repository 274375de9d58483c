"""The dialogue engine as a managed child: train its model when stale, start it, watch it, stop it."""

import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from conversations import engine_project
from ground.private import engine_token
from ground.settings import PROJECT_ROOT, Settings

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
    path = engine_project.model_path(settings.engine_models_dir)
    if path.exists():
        return path
    _require_engine_env(settings)
    settings.engine_models_dir.mkdir(parents=True, exist_ok=True)
    log.info("training the engine model %s (bot/ or config.yml changed)", path.name)
    command = [
        str(settings.engine_python),
        "-m",
        "rasa",
        "train",
        "--config",
        str(engine_project.CONFIG),
        "--domain",
        str(engine_project.DOMAIN),
        "--data",
        str(engine_project.DATA_DIR),
        "--out",
        str(settings.engine_models_dir),
        "--fixed-model-name",
        engine_project.model_name(),
        "--force",  # Rasa's cache keys on data and settings, not on bot/ code: a changed tokenizer must not reuse it
    ]
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
    # Rasa reports usage and crashes to Rasa's servers (Segment, Sentry) unless told not to: residents' health
    # conversations stay on this machine (and a closed network logs failed lookups at every crash).
    env["RASA_TELEMETRY_ENABLED"] = "false"
    return env


_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
# The kernel's parent-death signal follows the *thread* that forked the child: every child is forked by this one
# thread, which lives as long as the process, so a child restarted from a scheduler job is not killed with that job.
_launcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="child-launcher")


def _die_with(parent: int) -> Callable[[], None]:
    def in_child_before_exec() -> None:
        """The kernel sends the child SIGKILL when `outreach serve` dies, however it dies (SIGKILL, the out-of-memory
        killer), so no engine outlives the platform and holds its port."""
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the line above: nobody would have told us
            os._exit(1)

    return in_child_before_exec


class Child:
    """One child process in its own process group (a Ctrl-C reaches `outreach serve` first, which stops it)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_file: Path) -> None:
        self.name, self.command, self.env, self.log_file = name, command, env, log_file
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_file.open("ab") as sink:
            self.process = _launcher.submit(
                subprocess.Popen,
                self.command,
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with(os.getpid()),
            ).result()
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
    """The engine (`rasa run`, on loopback, no HTTP API) as a child of `outreach serve`; the dialogue's actions run
    inside it, or in a rasa_sdk action server on loopback when `engine_actions` is `server`."""

    def __init__(self, settings: Settings, log_file: Path) -> None:
        self.settings = settings
        self.log_file = log_file
        log_file.parent.mkdir(parents=True, exist_ok=True)
        settings.engine_tracker_db.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        python = str(settings.engine_python)
        env = {
            **_engine_environ(),
            "OUTREACH_ENGINE_TOKEN": engine_token(settings),
            "ENGINE_TRACKER_DB": str(settings.engine_tracker_db),
        }
        self.children: list[tuple[Child, str]] = []
        if settings.engine_actions == "server":
            actions_url = f"http://127.0.0.1:{settings.actions_port}"
            actions = Child(
                "action server",
                [python, "-m", "rasa_sdk", "--actions", "bot.actions", "--port", str(settings.actions_port)],
                {**env, "SANIC_HOST": "127.0.0.1"},
                log_file.with_name("actions.log"),
            )
            self.children.append((actions, f"{actions_url}/health"))
            env["ACTION_SERVER_URL"] = f"{actions_url}/webhook"
        else:
            env["ACTION_SERVER_URL"] = f"{self.url}/webhooks/turn/actions"
        self.engine = Child("engine", [], env, log_file)
        self.children.append((self.engine, f"{self.url}/webhooks/turn/"))

    @property
    def url(self) -> str:
        return self.settings.managed_engine_url

    def start(self) -> None:
        model = ensure_model(self.settings)
        self.engine.command = [
            str(self.settings.engine_python),
            "-m",
            "rasa",
            "run",
            "--model",
            str(model),
            "--credentials",
            str(engine_project.BOT_DIR / "credentials.yml"),
            "--endpoints",
            str(engine_project.BOT_DIR / "endpoints.yml"),
            "--interface",
            "127.0.0.1",
            "--port",
            str(self.settings.engine_port),
        ]
        for child, _ in self.children:
            child.start()

    def running(self) -> bool:
        return all(child.running() for child, _ in self.children)

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for child, health_url in self.children:
            while not _answers(health_url):
                if not child.running():
                    raise EngineUnavailable(f"the {child.name} exited during start-up; see {child.log_file}")
                if time.monotonic() > deadline:
                    raise EngineUnavailable(f"the {child.name} was not ready after {timeout_s:.0f} s")
                time.sleep(0.5)

    def restart_if_dead(self) -> None:
        """Bring back a child that died (out of memory, a crash): residents would get no replies."""
        for child, _ in self.children:
            if child.died():
                log.error("the %s exited with code %s; restarting it", child.name, child.process.returncode)
                child.start()

    def stop(self, grace_s: float = 15.0) -> None:
        for child, _ in reversed(self.children):
            child.stop(grace_s)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
