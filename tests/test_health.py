"""/healthz: 200 when the store and the engine answer, 503 naming what is down."""

from collections.abc import Iterator

import pytest

from ground.settings import Settings
from tests.conftest import RunningApp, run_app
from tests.support.net import free_port


@pytest.fixture
def app_with_engine(store_url, engine_url) -> Iterator[RunningApp]:
    yield from run_app(Settings(database_url=store_url, engine_url=engine_url))


@pytest.mark.engine
def test_healthy_when_store_and_engine_answer(app_with_engine):
    response = app_with_engine.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["down"] == []
    assert body["engine"]["model"].startswith("outreach-")


def test_names_the_engine_when_it_is_down(api):
    response = api.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["engine"]
    assert body["store"]["ok"] is True
    assert "unreachable" in body["engine"]["error"]


def test_names_the_store_when_it_is_down(engine_url):
    dead_store = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/outreach"
    for running in run_app(Settings(database_url=dead_store, engine_url=engine_url)):
        response = running.get("/healthz")
    assert response.status_code == 503
    assert response.json()["down"] == ["store"]
    assert response.json()["engine"]["ok"] is True
