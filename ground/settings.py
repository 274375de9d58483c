"""Every setting of the platform, in one place.

Read from the environment (prefix ``OUTREACH_``) and from a ``.env`` file in the working directory.
The README lists them all; ``.env.example`` shows each with its default.
"""

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

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
        default=5055,
        description="Port of the engine's action server, when `engine_actions` is `server` (loopback only).",
    )
    engine_actions: Literal["in-engine", "server"] = Field(
        default="in-engine",
        description="Where the dialogue's custom actions run for the engine `outreach serve` starts: inside the engine "
        "(no action server; the default) or in a separate rasa_sdk action server on loopback.",
    )
    engine_token: SecretStr = Field(
        default=SecretStr(""),
        description="Shared secret the platform presents to the engine's turn channel (and the engine to its actions). "
        "Required for an engine of your own (OUTREACH_ENGINE_URL); when empty, `outreach serve` and the platform use "
        "a random one kept in `engine_token_file`.",
    )
    engine_token_file: Path = Field(
        default=PROJECT_ROOT / "var" / "engine.token",
        description="Where the generated engine token is kept (mode 0600), shared by serve, workers and the CLI.",
    )
    log_dir: Path = Field(
        default=PROJECT_ROOT / "var" / "log", description="Where the engine `outreach serve` starts writes its log."
    )
    engine_tracker_db: Path = Field(
        default=PROJECT_ROOT / "var" / "engine" / "trackers.db",
        description="SQLite tracker store of the engine `outreach serve` starts: conversations survive its restart.",
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
    alert_escalation_minutes: int = Field(
        default=10,
        ge=1,
        le=24 * 60,
        description="An urgent alert nobody acknowledged this long after the roster was told is told to the next "
        "on-duty person.",
    )
    alert_notify_interval_s: float = Field(
        default=10.0, gt=0, le=60, description="How often a worker looks for urgent alerts to tell the roster of."
    )
    replay_interval_s: float = Field(
        default=10.0, description="How often turns kept while the engine was down are retried."
    )
    import_max_bytes: int = Field(default=50 * 1024 * 1024, description="Largest contact list file the API accepts.")
    import_max_rows: int = Field(default=200_000, ge=1, description="Most data rows one list may hold (more: refused).")
    import_max_cell_chars: int = Field(default=1_000, ge=1, description="Longest cell of a list (longer: refused).")
    import_max_unpacked_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1, description="Largest uncompressed size of an XLSX list (larger: refused)."
    )
    import_max_compression_ratio: int = Field(
        default=100, ge=1, description="Highest compression ratio of a part of an XLSX list (a zip bomb beyond)."
    )
    import_workers: int = Field(
        default=2, ge=1, le=32, description="Imports the API runs at once, each in its own process; others wait."
    )
    import_worker_memory_mb: int = Field(
        default=2048, ge=256, description="Address space an import process may use (beyond: refused as too big)."
    )
    import_timeout_s: float = Field(default=900.0, gt=0, description="Longest an import may run (beyond: refused).")
    webchat_max_chars: int = Field(default=1000, description="Longest web chat message accepted.")
    webchat_messages_per_minute: int = Field(default=30, description="Messages one web chat session may send a minute.")
    webchat_requests_per_minute_per_ip: int = Field(
        default=2000,
        ge=1,
        description="Web chat requests one address may make a minute: a flood guard only, since in Vietnam a whole "
        "district may reach the platform through one carrier-NAT address.",
    )
    webchat_sessions_per_phone_per_day: int = Field(
        default=5, ge=1, description="Web chats one typed phone number may open a day (local midnight to midnight)."
    )
    rate_limit_storage_uri: str = Field(
        default="memory://",
        description="Where rate limit counters live (a `limits` storage URI): memory:// counts per process; "
        "redis://host:6379 shares them between API replicas.",
    )
    trusted_proxies: list[str] = Field(
        default=[],
        description='Addresses or networks (JSON list, e.g. ["10.0.0.0/8"]) of the reverse proxies in front of the '
        "API: only their X-Forwarded-For is believed. None by default: the peer's address is the client's.",
    )

    console_idle_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="A console session ends after this many minutes without a request."
    )
    console_login_failures_per_name: int = Field(
        default=5, ge=1, description="Wrong passwords one user name may get in 15 minutes before logins wait."
    )
    console_login_failures_per_address: int = Field(
        default=50,
        ge=1,
        description="Wrong passwords from one address in 15 minutes before its logins wait (a whole office may share "
        "one address, so this is higher than the per-name limit).",
    )

    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The address Twilio, Zalo and residents reach this platform at (scheme, host, optional path). "
        "Webhook signatures are checked against it, so behind a proxy it is the proxy's public address.",
    )
    docs_enabled: bool = Field(
        default=True,
        description="Serve the API docs at /docs (Swagger UI from the platform itself, no CDN) and /openapi.json.",
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
    asr_engine: Literal["viet-asr", "vosk"] | None = Field(
        default=None,
        description="Speech recognition of calls in stream mode: viet-asr (offline, model inside the wheel) or vosk "
        "(the model in `vosk_model_dir`). Unset: viet-asr when installed, else vosk.",
    )
    vosk_model_dir: Path | None = Field(
        default=None, description="Folder of the Vosk model (the Vietnamese one in production: see the README)."
    )
    voice_end_of_speech_ms: int = Field(
        default=600,
        ge=200,
        le=3000,
        description="Stream mode: the silence that ends a resident's answer (a shorter one cuts slow speakers off).",
    )
    voice_inbound_mode: Literal["gather", "stream"] = Field(
        default="gather",
        description="How calls to the platform's number (the hotline) hear residents: gather or stream.",
    )
    recordings_dir: Path = Field(
        default=PROJECT_ROOT / "var" / "recordings",
        description="Private folder of residents' recorded answers (campaigns with `record_voice` only).",
    )
    checkins_dir: Path = Field(
        default=PROJECT_ROOT / "var" / "checkins",
        description="Where imported QR check-ins are kept, one Parquet file per imported file (never rewritten).",
    )
    checkins_max_upload_bytes: int = Field(
        default=500 * 1024 * 1024, ge=1, description="Largest check-ins file the API accepts (the CLI takes any size)."
    )
    analytics_memory_mb: int = Field(
        default=1536, ge=256, description="Memory the analytical engine (DuckDB) may use for check-ins and F1 lists."
    )
    analytics_threads: int = Field(default=2, ge=1, le=256, description="Threads the analytical engine may use.")
    recording_retention_days: int = Field(
        default=30, ge=1, le=3650, description="Days a recorded answer is kept; then the worker removes it."
    )
    voice_stream_token_s: int = Field(
        default=120, ge=10, le=3600, description="Stream mode: how long the signed stream token of a call stays valid."
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
    zalo_broadcast_template_id: str = Field(
        default="",
        description="The approved ZNS template that tells a team member of a broadcast outside the reply window "
        "(empty: those members are marked failed, and the report says why).",
    )
    zalo_broadcast_template_data: dict[str, str] = Field(
        default={"name": "{name}", "team": "{team}", "link": "{link}"},
        description="The broadcast template's parameters (JSON): each value may use {name}, {team} and {link} "
        "(the member's personal page with the whole message and a reply box).",
    )
    zalo_event_max_age_s: int = Field(
        default=900,
        ge=60,
        le=86400,
        description="Zalo events stamped further than this from now (past or future) are ignored, however signed.",
    )

    tts_cache_dir: Path = Field(
        default=PROJECT_ROOT / "var" / "prompts", description="Disk cache of rendered voice prompts."
    )
    tts_engines: list[str] = Field(
        default=["gtts", "espeak-ng"],
        description="Speech synthesis engines in order of preference (JSON list); the next takes over when one fails.",
    )
    gtts_timeout_s: float = Field(default=5.0, description="Seconds to wait for Google's speech synthesis.")
    tts_cloud_hears_names: bool = Field(
        default=False,
        description="Let a cloud speech service (gTTS) render lines with a resident's name. Off: the offline engines "
        "(espeak-ng) render them on this server, and the fixed lines alone go to the cloud.",
    )
    tts_prompt_key: SecretStr = Field(
        default=SecretStr(""),
        description="Secret that names voice prompt files (HMAC), so no one can guess a greeting's URL. Empty: a "
        "random key kept in the cache folder. Hosts that do not share that folder must share this setting.",
    )

    @field_validator("asr_engine", "vosk_model_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """`OUTREACH_ASR_ENGINE=` in a .env file means the default, not an engine named ''."""
        return None if value == "" else value

    @field_validator(
        "engine_python",
        "engine_models_dir",
        "heartbeat_file",
        "tts_cache_dir",
        "recordings_dir",
        "engine_token_file",
        "engine_tracker_db",
        "log_dir",
    )
    @classmethod
    def _relative_to_project(cls, path: Path) -> Path:
        """Relative paths mean the project folder, wherever the command was started from."""
        return path if path.is_absolute() else PROJECT_ROOT / path

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, proxies: list[str]) -> list[str]:
        """A typo must stop the start: the proxy server would otherwise treat it as a name and never match it."""
        for proxy in proxies:
            ipaddress.ip_network(proxy)
        return proxies

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
