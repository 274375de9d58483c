"""The platform's client against the real Rasa engine and its trained model."""

import asyncio
import uuid
from contextlib import aclosing

import pytest

from bot import training
from bot.client import EngineClient, EngineError
from tests.support.net import free_port

pytestmark = pytest.mark.engine


def call(engine_url, operation, timeout_s=10.0):
    async def go():
        async with aclosing(EngineClient(engine_url, timeout_s=timeout_s)) as client:
            return await operation(client)

    return asyncio.run(go())


def test_serves_the_model_of_the_current_project(engine_url):
    status = call(engine_url, lambda client: client.status())
    assert status["model_file"] == f"{training.model_name()}.tar.gz"


@pytest.mark.parametrize("greeting", ["xin chào", "xin chao", "alo", "chào bạn"])
def test_one_round_trip_returns_replies_and_slots(engine_url, greeting):
    reply = call(engine_url, lambda client: client.turn(f"test-{uuid.uuid4()}", greeting))
    assert len(reply.messages) == 1
    assert "Trung tâm Kiểm soát bệnh tật" in reply.messages[0].text
    assert reply.slots["name"] is None and reply.slots["outcome"] is None


def test_an_outbound_start_introduces_the_cdc_and_asks_for_the_resident_by_name(engine_url):
    sender = f"test-{uuid.uuid4()}"
    reply = call(engine_url, lambda client: client.turn(sender, '/start_declaration{"name": "chị Lan"}'))
    assert "Trung tâm Kiểm soát bệnh tật" in reply.messages[0].text
    assert "chị Lan" in reply.messages[1].text
    assert [b.payload for b in reply.messages[1].buttons] == ["/affirm", "/wrong_person"]
    assert reply.slots["name"] == "chị Lan" and reply.slots["requested_slot"] == "identity_confirmed"
    answer = call(engine_url, lambda client: client.turn(sender, "vâng đúng rồi"))
    assert answer.slots["identity_confirmed"] is True, "the action server took the answer"
    assert answer.slots["name"] == "chị Lan", "the engine keeps the conversation's state between turns"


def test_an_engine_that_is_not_there_is_a_clear_error():
    with pytest.raises(EngineError, match="engine turn failed"):
        call(f"http://127.0.0.1:{free_port()}", lambda client: client.turn("someone", "alo"), timeout_s=2)
