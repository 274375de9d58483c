"""The `outreach` command as an operator runs it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from access import console
from ground.settings import Settings
from ground.store import make_engine, make_session_factory
from tests.conftest import run_app
from tests.support.net import free_port
from tests.support.speech import SAMPLES, transcript, word_error_rate

OUTREACH = str(Path(sys.executable).parent / "outreach")


def outreach(*args: str, database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "OUTREACH_DATABASE_URL": database_url, **env}
    return subprocess.run([OUTREACH, *args], env=environ, capture_output=True, text=True, timeout=60)


def test_db_upgrade_creates_the_store_on_first_use(tmp_path):
    url = f"sqlite:///{tmp_path / 'new' / 'outreach.db'}"
    result = outreach("db", "upgrade", database_url=url)
    assert result.returncode == 0, result.stderr
    tables = set(inspect(make_engine(url)).get_table_names())
    assert {"people", "declarations", "turns", "users", "api_tokens", "audit_log", "alembic_version"} <= tables


def test_user_add_prints_a_token_that_opens_the_api(store_url):
    result = outreach("user", "add", "lan", "--role", "tracer", "--province", "27", database_url=store_url)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("otk_") and " " not in token
    for running in run_app(Settings(database_url=store_url, engine_url=f"http://127.0.0.1:{free_port()}")):
        assert running.get("/api/v1/declarations", token).status_code == 200
        assert running.get("/api/v1/declarations", token).json() == []
        assert running.get("/api/v1/declarations").status_code == 401


def test_a_revoked_token_no_longer_opens_the_api(store_url):
    token = outreach("user", "add", "an", "--role", "tracer", database_url=store_url).stdout.split()[-1]
    revoked = outreach("user", "revoke", "an", database_url=store_url)
    assert revoked.returncode == 0 and "revoked 1 token" in revoked.stderr
    fresh = outreach("user", "token", "an", database_url=store_url).stdout.strip()
    for running in run_app(Settings(database_url=store_url, engine_url=f"http://127.0.0.1:{free_port()}")):
        assert running.get("/api/v1/declarations", token).status_code == 401
        assert running.get("/api/v1/declarations", fresh).status_code == 200


def test_the_token_itself_is_never_stored(store_url):
    token = outreach("user", "add", "an", "--role", "admin", database_url=store_url).stdout.strip().splitlines()[-1]
    engine = make_engine(store_url)
    with engine.connect() as connection:
        stored = [tuple(row) for row in connection.exec_driver_sql("SELECT token_hash, prefix FROM api_tokens")]
    engine.dispose()
    assert len(stored) == 1
    assert token not in stored[0][0] and len(stored[0][1]) < len(token) // 3


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--role", "boss"], "boss"), (["--role", "tracer", "--province", "Bac Ninh"], "two-digit")],
)
def test_user_add_refuses_bad_input_clearly(tmp_path, args, message):
    result = outreach("user", "add", "binh", *args, database_url=f"sqlite:///{tmp_path / 'o.db'}")
    assert result.returncode != 0
    assert result.stdout == ""
    assert message in result.stderr


def test_a_second_user_of_the_same_name_is_refused_and_the_first_kept(tmp_path):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    first = outreach("user", "add", "binh", "--role", "viewer", database_url=url)
    second = outreach("user", "add", "binh", "--role", "admin", database_url=url)
    assert second.returncode == 1 and "exists already" in second.stderr
    listing = outreach("user", "list", database_url=url, COLUMNS="200").stdout
    assert "viewer" in listing and "admin" not in listing
    assert first.returncode == 0


def test_worker_check_fails_without_a_running_scheduler(tmp_path):
    result = outreach(
        "worker",
        "--check",
        database_url=f"sqlite:///{tmp_path / 'o.db'}",
        OUTREACH_HEARTBEAT_FILE=str(tmp_path / "heartbeat"),
    )
    assert result.returncode == 1
    assert "no scheduler heartbeat" in result.stderr


@pytest.mark.parametrize(("typed", "works"), [("mật-khẩu-đủ-dài-2021", True), ("ngắn", False)])
def test_a_console_password_is_read_from_the_first_line_of_a_pipe(tmp_path, typed, works):
    url = f"sqlite:///{tmp_path / 'outreach.db'}"
    added = outreach("user", "add", "tracer-bn", "--role", "tracer", "--province", "27", database_url=url)
    assert added.returncode == 0, added.stderr
    environ = {**os.environ, "OUTREACH_DATABASE_URL": url}
    done = subprocess.run(
        [OUTREACH, "user", "password", "tracer-bn"],
        input=f"{typed}\nthe second line is not read\n",
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode == 0) is works, done.stderr
    with make_session_factory(make_engine(url))() as session:
        assert (console.check_password(session, "tracer-bn", "mật-khẩu-đủ-dài-2021") is not None) is works
        assert console.check_password(session, "tracer-bn", "the second line is not read") is None


def test_voice_transcribe_prints_what_a_recogniser_hears_in_a_recording_of_any_rate(tmp_path):
    speaker = "Tuyên (nam miền Bắc)"  # 24 kHz in the wheel
    wav = tmp_path / "loi-khai.wav"
    shutil.copy(SAMPLES / f"{speaker}.wav", wav)
    for line in ([], ["--line"]):  # as recorded, and as a call would carry it (mu-law 8 kHz)
        heard = outreach("voice", "transcribe", str(wav), *line, "--engine", "viet-asr", database_url="sqlite://")
        assert heard.returncode == 0, heard.stderr
        assert word_error_rate(transcript(speaker), heard.stdout.strip().splitlines()[-1]) <= 0.2


def test_voice_transcribe_explains_what_it_cannot_use(tmp_path):
    (tmp_path / "not-sound.wav").write_text("declarations")
    refused = outreach("voice", "transcribe", str(tmp_path / "not-sound.wav"), database_url="sqlite://")
    assert refused.returncode == 1 and "not-sound.wav is not a sound file" in refused.stderr
    speaker_wav = str(SAMPLES / "Ly (nữ miền Bắc).wav")
    no_model = outreach("voice", "transcribe", speaker_wav, "--engine", "vosk", database_url="sqlite://")
    assert no_model.returncode == 1 and "OUTREACH_VOSK_MODEL_DIR" in no_model.stderr
    unknown = outreach("voice", "transcribe", speaker_wav, "--engine", "whisper", database_url="sqlite://")
    assert unknown.returncode == 1 and "unknown speech recognition engine 'whisper'" in unknown.stderr
