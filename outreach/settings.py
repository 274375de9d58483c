"""Every setting of the platform, in one place.

Read from the environment (prefix ``OUTREACH_``) and from a ``.env`` file in the working directory.
The README lists them all; ``.env.example`` shows each with its default.
"""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OUTREACH_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/outreach.db",
        description="SQLAlchemy URL of the declaration store (SQLite file or postgresql+psycopg://...).",
    )
    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(default=8000, description="Port the API listens on.")
    timezone: str = Field(default="Asia/Ho_Chi_Minh", description="Time zone for times given without an offset.")
    log_level: str = Field(default="info", description="Log level: debug, info, warning, error.")

    engine_url: str | None = Field(
        default=None,
        description="URL of a running Rasa engine. When unset, `outreach serve` starts one as a child process.",
    )
    engine_port: int = Field(default=5005, description="Port of the engine started by `outreach serve`.")
    actions_port: int = Field(
        default=5055, description="Port of the engine's action server started by `outreach serve`."
    )
    engine_python: Path = Field(
        default=PROJECT_ROOT / ".venv-engine" / "bin" / "python",
        description="Python of the engine environment (Python 3.10 with rasa==3.6.21).",
    )
    engine_models_dir: Path = Field(
        default=PROJECT_ROOT / "var" / "engine-models",
        description="Where trained engine models are written and read (never models/, which is the store).",
    )
    engine_timeout_s: float = Field(default=10.0, description="Seconds to wait for one engine round trip.")
    engine_start_timeout_s: float = Field(
        default=180.0, description="Seconds to wait for a child engine to load its model."
    )

    scheduler_enabled: bool = Field(
        default=True, description="Run the in-process scheduler (APScheduler) inside `outreach serve`."
    )
    heartbeat_file: Path = Field(
        default=PROJECT_ROOT / "var" / "scheduler.heartbeat",
        description="Touched by the running scheduler; `outreach worker --check` reads it.",
    )

    dispatch_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="How often a worker claims due outreach attempts and hands them over."
    )
    dispatch_claim_timeout_s: float = Field(
        default=120.0, gt=0, description="A claim older than this was left by a stopped worker and is recovered."
    )
    alert_watch_temperature_c: float = Field(
        default=37.5, description="A temperature from this up raises a watch alert."
    )
    alert_urgent_temperature_c: float = Field(default=39.0, description="A temperature from this up is urgent.")
    alert_urgent_symptoms: list[str] = Field(
        default=["shortness_of_breath", "chest_pain"], description="Symptoms that make an alert urgent (JSON list)."
    )
    replay_interval_s: float = Field(
        default=10.0, description="How often turns kept while the engine was down are retried."
    )
    import_max_bytes: int = Field(default=50 * 1024 * 1024, description="Largest contact list file the API accepts.")
    webchat_max_chars: int = Field(default=1000, description="Longest web chat message accepted.")
    webchat_messages_per_minute: int = Field(default=30, description="Messages one web chat session may send a minute.")
    webchat_requests_per_minute_per_ip: int = Field(
        default=120, description="Web chat requests (sessions and messages) one address may make a minute."
    )

    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The address Twilio, Zalo and residents reach this platform at (scheme, host, optional path). "
        "Webhook signatures are checked against it, so behind a proxy it is the proxy's public address.",
    )

    twilio_account_sid: str = Field(default="", description="Twilio account SID (AC...); voice and SMS need it.")
    twilio_auth_token: SecretStr = Field(
        default=SecretStr(""), description="Twilio auth token: authenticates API calls and signs webhooks."
    )
    twilio_from_number: str = Field(default="", description="The Twilio number calls and SMS come from (E.164).")
    twilio_api_base_url: str = Field(
        default="https://api.twilio.com", description="Twilio REST API base URL (changed only for tests or a proxy)."
    )
    twilio_ring_timeout_s: int = Field(
        default=25, ge=5, le=600, description="Seconds a call rings before it counts as not answered."
    )
    twilio_machine_detection: bool = Field(
        default=True, description="Ask Twilio to detect answering machines (a machine answer is retried later)."
    )
    voice_gather_timeout_s: int = Field(
        default=6, ge=1, le=60, description="Seconds of silence after a prompt before the caller counts as silent."
    )

    zalo_app_id: str = Field(default="", description="Zalo app id (developers.zalo.me).")
    zalo_oa_secret_key: SecretStr = Field(
        default=SecretStr(""), description="The OA secret key that signs Zalo webhooks (X-ZEvent-Signature)."
    )
    zalo_app_secret_key: SecretStr = Field(
        default=SecretStr(""), description="The Zalo app secret key, sent when refreshing the OA access token."
    )
    zalo_refresh_token: SecretStr = Field(
        default=SecretStr(""),
        description="First OA refresh token; after the first refresh the rotating tokens live in the store.",
    )
    zalo_api_base_url: str = Field(default="https://openapi.zalo.me", description="Zalo OA API base URL.")
    zalo_oauth_base_url: str = Field(default="https://oauth.zaloapp.com", description="Zalo OAuth base URL.")
    zalo_zns_base_url: str = Field(
        default="https://business.openapi.zalo.me", description="Zalo Notification Service (ZNS) base URL."
    )
    zalo_reply_window_hours: int = Field(
        default=48, ge=1, le=168, description="Hours after a resident's last message in which the OA may reply."
    )

    tts_cache_dir: Path = Field(
        default=PROJECT_ROOT / "var" / "prompts", description="Disk cache of rendered voice prompts."
    )
    tts_engines: list[str] = Field(
        default=["gtts", "espeak-ng"],
        description="Speech synthesis engines in order of preference (JSON list); the next takes over when one fails.",
    )
    gtts_timeout_s: float = Field(default=5.0, description="Seconds to wait for Google's speech synthesis.")

    @field_validator("engine_python", "engine_models_dir", "heartbeat_file", "tts_cache_dir")
    @classmethod
    def _relative_to_project(cls, path: Path) -> Path:
        """Relative paths mean the project folder, wherever the command was started from."""
        return path if path.is_absolute() else PROJECT_ROOT / path

    @field_validator("database_url")
    @classmethod
    def _sqlite_file_in_project(cls, value: str) -> str:
        url = make_url(value)
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return value
        if Path(url.database).is_absolute():
            return value
        return url.set(database=str(PROJECT_ROOT / url.database)).render_as_string(hide_password=False)

    @property
    def public_url(self) -> str:
        return self.public_base_url.rstrip("/")

    @property
    def managed_engine_url(self) -> str:
        return f"http://127.0.0.1:{self.engine_port}"

    @property
    def effective_engine_url(self) -> str:
        return (self.engine_url or self.managed_engine_url).rstrip("/")


@lru_cache
def get_settings() -> Settings:
    return Settings()
