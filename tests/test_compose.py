"""docker-compose.yml is valid and describes the whole stack (no Docker engine runs here: config only)."""

import os
import subprocess

import pytest
import yaml

from ground.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def compose() -> dict:
    environment = {**os.environ, "OUTREACH_ENGINE_TOKEN": "a-long-random-secret"}
    result = subprocess.run(
        ["docker-compose", "config"], cwd=PROJECT_ROOT, capture_output=True, text=True, env=environment
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_the_stack_does_not_start_without_an_engine_token():
    environment = {k: v for k, v in os.environ.items() if k != "OUTREACH_ENGINE_TOKEN"}
    result = subprocess.run(
        ["docker-compose", "config"], cwd=PROJECT_ROOT, capture_output=True, text=True, env=environment
    )
    assert result.returncode != 0 and "OUTREACH_ENGINE_TOKEN" in result.stderr


def test_every_service_is_there_with_a_health_check(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "rasa", "api", "worker"}
    assert all("healthcheck" in service for service in services.values())


def test_the_engine_is_closed_no_port_no_api_and_a_token(compose):
    rasa = compose["services"]["rasa"]
    assert "ports" not in rasa  # only the platform reaches it, over the compose network
    assert "--enable-api" not in rasa["command"]
    assert rasa["environment"]["OUTREACH_ENGINE_TOKEN"] == "a-long-random-secret"
    for name in ("api", "worker"):
        assert compose["services"][name]["environment"]["OUTREACH_ENGINE_TOKEN"] == "a-long-random-secret"


def test_the_engine_serves_our_model_with_sql_trackers_and_redis_locks(compose):
    rasa = compose["services"]["rasa"]
    assert rasa["image"] == "rasa/rasa:3.6.21-full"
    assert {"postgres", "redis"} <= set(rasa["depends_on"])
    command = rasa["command"]
    endpoints_in_container = command[command.index("--endpoints") + 1]
    endpoints_file = endpoints_in_container.replace("/app/", "")
    endpoints = yaml.safe_load((PROJECT_ROOT / endpoints_file).read_text())
    assert endpoints["tracker_store"]["type"] == "SQL" and endpoints["tracker_store"]["dialect"] == "postgresql"
    assert endpoints["lock_store"]["type"] == "redis"
    assert endpoints["action_endpoint"]["url"] == "http://localhost:5005/webhooks/turn/actions"  # in the engine
    assert command[command.index("--credentials") + 1] == "/app/bot/credentials.yml"
    mounted = {volume.split(":")[1] if isinstance(volume, str) else volume["target"] for volume in rasa["volumes"]}
    assert command[command.index("--model") + 1] in mounted


def test_platform_services_use_postgres_and_the_engine_service(compose):
    for name in ("api", "worker"):
        environment = compose["services"][name]["environment"]
        assert environment["OUTREACH_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert environment["OUTREACH_ENGINE_URL"] == "http://rasa:5005"
    assert compose["services"]["api"]["environment"]["OUTREACH_SCHEDULER_ENABLED"] == "false"
    assert compose["services"]["worker"]["command"] == ["outreach", "worker"]


def test_api_and_worker_share_the_folders_that_must_outlive_them(compose):
    """The worker renders greetings before calls and the API serves them: one folder, so one naming key. Recorded
    answers (written by the API, expired by the worker) and imported check-ins outlive a container's replacement."""
    shared = {"prompts:/app/var/prompts:rw", "recordings:/app/var/recordings:rw", "checkins:/app/var/checkins:rw"}
    mounts = [set(compose["services"][name]["volumes"]) for name in ("api", "worker")]
    assert mounts == [shared] * 2
