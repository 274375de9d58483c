"""docker-compose.yml is valid and describes the whole stack (no Docker engine runs here: config only)."""

import subprocess

import pytest
import yaml

from outreach.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def compose() -> dict:
    result = subprocess.run(["docker-compose", "config"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_every_service_is_there_with_a_health_check(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "rasa", "actions", "api", "worker"}
    assert all("healthcheck" in service for service in services.values())


def test_the_engine_serves_our_model_with_sql_trackers_and_redis_locks(compose):
    rasa = compose["services"]["rasa"]
    assert rasa["image"] == "rasa/rasa:3.6.21-full"
    assert {"postgres", "redis", "actions"} <= set(rasa["depends_on"])
    assert rasa["environment"]["ACTION_SERVER_URL"] == "http://actions:5055/webhook"
    assert compose["services"]["actions"]["command"][-3:] == ["bot.actions", "--port", "5055"]
    command = rasa["command"]
    endpoints_in_container = command[command.index("--endpoints") + 1]
    endpoints_file = endpoints_in_container.replace("/app/", "")
    endpoints = yaml.safe_load((PROJECT_ROOT / endpoints_file).read_text())
    assert endpoints["tracker_store"]["type"] == "SQL" and endpoints["tracker_store"]["dialect"] == "postgresql"
    assert endpoints["lock_store"]["type"] == "redis"
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
