"""Alerts: thresholds, escalation, the API with scope and acknowledgement."""

from typing import get_args

import httpx
import pytest
from sqlalchemy import select

from access import auth
from app.schemas import Symptom
from bot.vnparse import SYMPTOM_PHRASES
from conversations.alerts import SYMPTOM_NAMES, assess, raise_alert
from ground.settings import Settings
from models import Alert, AuditLog, Channel, Role, utcnow
from tests import factories


@pytest.mark.parametrize(
    ("answers", "level"),
    [
        ({"symptoms": []}, "none"),
        ({"symptoms": ["cough"]}, "watch"),
        ({"temperature_c": 37.5}, "watch"),
        ({"temperature_c": 37.4}, "none"),
        ({"temperature_c": 39.0}, "urgent"),
        ({"symptoms": ["shortness_of_breath"]}, "urgent"),
        ({"symptoms": ["chest_pain"]}, "urgent"),
        ({"test_result": "positive"}, "urgent"),
        ({"test_result": "negative", "symptoms": ["fatigue"]}, "watch"),
    ],
)
def test_levels_follow_the_thresholds(sessions, answers, level):
    with sessions.begin() as session:
        declaration = factories.empty_declaration(session, factories.person(session, "+84912345678"), **answers)
        assert assess(declaration, False, Settings()).level == level


def test_thresholds_are_settings(sessions):
    with sessions.begin() as session:
        declaration = factories.empty_declaration(
            session, factories.person(session, "+84912345678"), temperature_c=38.0
        )
        assert assess(declaration, False, Settings(alert_urgent_temperature_c=38.0)).level == "urgent"


def test_one_open_alert_escalates_and_a_new_one_follows_an_acknowledged_one(sessions):
    settings = Settings()
    with sessions.begin() as session:
        declaration = factories.empty_declaration(session, factories.person(session, "+84912345678"))
        declaration.symptoms = ["cough"]
        first = raise_alert(session, declaration, assess(declaration, False, settings))
        declaration.symptoms = ["cough", "chest_pain"]
        same = raise_alert(session, declaration, assess(declaration, False, settings))
        assert same is first and first.level == "urgent" and "chest pain" in first.reasons
        first.acknowledged_at = utcnow()
        assert raise_alert(session, declaration, assess(declaration, False, settings)) is first, "nothing new"
        declaration.temperature_c = 39.5
        newer = raise_alert(session, declaration, assess(declaration, False, settings))
        assert newer is not first and "temperature 39.5 °C" in newer.reasons


@pytest.fixture
def alerts(api):
    with api.sessions.begin() as session:
        bac_ninh = factories.complete_declaration(
            session, factories.person(session, "+84912345678"), temperature_c=39.5
        )
        hanoi = factories.complete_declaration(session, factories.person(session, "+84901234567", province_code="01"))
        for declaration in (bac_ninh, hanoi):
            raise_alert(session, declaration, assess(declaration, False, api.settings))
        tokens = {
            "tracer": auth.add_user(session, "t27", Role.TRACER, "27").token,
            "viewer": auth.add_user(session, "v27", Role.VIEWER, "27").token,
            "admin": auth.add_user(session, "admin", Role.ADMIN, None).token,
        }
    return tokens


def test_alert_list_filters_and_scope(api, alerts):
    everything = api.get("/api/v1/alerts", alerts["admin"]).json()
    assert [a["level"] for a in everything] == ["urgent", "watch"], "urgent first"
    assert [a["person"]["phone"] for a in api.get("/api/v1/alerts", alerts["tracer"]).json()] == ["+84912345678"]
    assert len(api.get("/api/v1/alerts", alerts["admin"], province="01").json()) == 1
    assert len(api.get("/api/v1/alerts", alerts["admin"], level="watch").json()) == 1
    assert api.get("/api/v1/alerts", alerts["admin"], level="red").status_code == 422
    assert api.get("/api/v1/alerts").status_code == 401


def test_acknowledging_an_alert(api, alerts):
    (alert,) = api.get("/api/v1/alerts", alerts["tracer"]).json()
    headers = lambda who: {"Authorization": f"Bearer {alerts[who]}"}  # noqa: E731
    assert httpx.post(f"{api.url}/api/v1/alerts/{alert['id']}/ack", headers=headers("viewer")).status_code == 403
    acked = httpx.post(f"{api.url}/api/v1/alerts/{alert['id']}/ack", headers=headers("tracer"))
    assert acked.status_code == 200 and acked.json()["acknowledged_at"]
    assert api.get("/api/v1/alerts", alerts["tracer"], acknowledged="false").json() == []
    assert len(api.get("/api/v1/alerts", alerts["tracer"], acknowledged="true").json()) == 1
    hanoi = [a for a in api.get("/api/v1/alerts", alerts["admin"]).json() if a["person"]["phone"] == "+84901234567"]
    assert httpx.post(f"{api.url}/api/v1/alerts/{hanoi[0]['id']}/ack", headers=headers("tracer")).status_code == 404
    with api.sessions() as session:
        assert session.scalar(select(AuditLog).where(AuditLog.action == "alert.ack")).object_ids == [alert["id"]]
        assert session.get(Alert, alert["id"]).acknowledged_by_id is not None


def test_an_alert_from_a_typed_phone_says_the_phone_is_unproven(api, alerts):
    """A stranger may have typed the number: the tracer sees it before acting on an urgent alert."""
    with api.sessions.begin() as session:
        who = factories.person(session, "+84987654321")
        conversation = factories.conversation(session, who, channel=Channel.WEBCHAT)
        conversation.phone_verified = False
        declaration = factories.complete_declaration(
            session, who, conversation_id=conversation.id, symptoms=["chest_pain"]
        )
        raise_alert(session, declaration, assess(declaration, False, api.settings))
    listed = {a["person"]["phone"]: a["phone_verified"] for a in api.get("/api/v1/alerts", alerts["tracer"]).json()}
    assert listed == {"+84987654321": False, "+84912345678": True}


def test_the_symptom_codes_agree_wherever_they_are_spelled(declaration_schema):
    """The engine's lexicon (bot/vnparse.py), the alert names and the API's schema each list the codes for their own
    reader; a code added to one and not the others would be silently dropped or unnamed."""
    lexicon, named, api = set(SYMPTOM_PHRASES), set(SYMPTOM_NAMES), set(get_args(Symptom))
    assert lexicon == named == api
    assert api == set(declaration_schema["properties"]["symptoms"]["items"]["enum"])
