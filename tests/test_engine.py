"""The platform's client against the real Rasa engine and its trained model."""

import asyncio
import os
import uuid
from contextlib import aclosing
from pathlib import Path

import httpx
import pytest

from conversations import engine_project
from conversations.engine import EngineClient, EngineError
from ground.private import engine_token
from ground.settings import Settings
from tests.support.net import free_port

pytestmark = pytest.mark.engine


def call(engine_url, operation, timeout_s=10.0, token=None):
    token = token or engine_token(Settings())

    async def go():
        async with aclosing(EngineClient(engine_url, token, timeout_s=timeout_s)) as client:
            return await operation(client)

    return asyncio.run(go())


def test_serves_the_model_of_the_current_project(engine_url):
    status = call(engine_url, lambda client: client.status())
    assert status["model_file"] == f"{engine_project.model_name()}.tar.gz"


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


def _tcp_listeners_of(pid: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp* writes them) of the sockets `pid` listens on."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                addresses.append(fields[1].split(":")[0])
    return addresses


LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1


def test_the_engine_listens_on_loopback_only_and_runs_no_action_server(managed_engine):
    listeners = _tcp_listeners_of(managed_engine.engine.process.pid)
    assert listeners and set(listeners) <= LOOPBACK
    assert [child.name for child, _ in managed_engine.children] == ["engine"]


def test_the_engine_http_api_is_off(engine_url):
    for path in ("/status", "/conversations/someone/tracker", "/model"):
        assert httpx.get(f"{engine_url}{path}", timeout=5).status_code == 404, path
    assert httpx.put(f"{engine_url}/model", json={}, timeout=5).status_code in (404, 405)


def test_turns_and_actions_need_the_engine_token(engine_url):
    body = {"sender": f"test-{uuid.uuid4()}", "message": "alo"}
    assert httpx.post(f"{engine_url}/webhooks/turn/webhook", json=body, timeout=10).status_code == 401
    assert httpx.post(f"{engine_url}/webhooks/turn/actions", json={}, timeout=10).status_code == 401
    with pytest.raises(EngineError):
        call(engine_url, lambda client: client.turn(body["sender"], "alo"), token="not-the-token")
    assert httpx.get(f"{engine_url}/webhooks/turn/", timeout=5).json()["ready"] is True  # health needs none


def test_an_engine_that_forgot_takes_the_conversation_back_from_the_store(engine_url):
    sender = f"test-{uuid.uuid4()}"
    call(engine_url, lambda client: client.turn(sender, '/start_declaration{"name": "Lan"}'))
    call(engine_url, lambda client: client.turn(sender, "đúng rồi"))
    before = call(engine_url, lambda client: client.turn(sender, "được"))
    assert before.slots["requested_slot"] == "symptoms" and before.active_loop == "declaration_form"

    forgotten = f"test-{uuid.uuid4()}"  # a sender the engine has never seen: what it holds after losing its trackers
    after = call(engine_url, lambda client: client.turn(forgotten, "tôi bị ho, sốt 38 độ 5", restore=before.state))
    assert after.restored
    assert after.slots["name"] == "Lan" and after.slots["identity_confirmed"] is True
    assert after.slots["consent"] is True
    assert after.slots["symptoms"] == ["cough", "fever"] and after.slots["temperature"] == 38.5
    assert after.slots["requested_slot"] == "symptom_onset", "the form goes on from where the resident was"
    again = call(engine_url, lambda client: client.turn(forgotten, "từ hôm qua", restore=before.state))
    assert not again.restored, "a conversation the engine holds is never overwritten by the store's copy"
    assert again.slots["symptom_onset"] is not None


def test_a_retried_turn_is_answered_not_handled_twice(engine_url):
    """The engine answered, but the answer never reached the platform (timeout, crash): the replay of the same turn
    must not answer the next question too."""
    sender = f"test-{uuid.uuid4()}"
    call(engine_url, lambda client: client.turn(sender, '/start_declaration{"name": "Lan"}'))
    first = call(engine_url, lambda client: client.turn(sender, "đúng rồi", message_id="turn-1"))
    again = call(engine_url, lambda client: client.turn(sender, "đúng rồi", message_id="turn-1"))
    assert first.slots["requested_slot"] == "consent" and first.slots["consent"] is None
    assert again.messages == first.messages and again.slots == first.slots
