"""Vaccine doses from the vaccination platform: imported as the national records are, then confirmed in the dialogue
instead of asked, to residents whose phone is proven."""

from datetime import date

import httpx
import pytest
from sqlalchemy import select

from access import auth
from ground.settings import Settings
from models import Declaration, Person, Role, VaccinationRecord
from tests import factories
from tests.conftest import run_app
from tests.test_tracing import write_csv
from tracing.vaccinations import import_vaccinations

HEADER = ["Số điện thoại", "Số mũi", "Ngày tiêm mũi cuối"]  # as a province's spreadsheet heads them


def test_doses_are_imported_once_with_every_rejection_explained(sessions, tmp_path):
    with sessions.begin() as session:
        factories.person(session, "+84987654321", province_code="01")
        manager = auth.add_user(session, "manager-27", Role.MANAGER, "27").user
    rows = [
        ["0912345678", "2", "15/09/2021"],
        ["0912345679", "0", ""],
        ["0912345678", "2", "2021-09-15"],  # the same record again
        ["0912345680", "hai", "15/09/2021"],
        ["0912345681", "2", ""],
        ["0912345682", "0", "01/09/2021"],
        ["0912345683", "11", "01/09/2021"],
        ["0987654321", "1", "01/08/2021"],  # Hà Nội's resident
    ]
    path = write_csv(tmp_path / "tiem-chung.csv", HEADER, rows)
    summary = import_vaccinations(sessions, manager, path)
    assert (summary.imported, summary.duplicates, summary.rejected) == (2, 1, 5)
    reasons = dict(summary.first_rejects)
    assert "doses 'hai' is not a number" in reasons[5]
    assert reasons[6] == "last_dose_date is missing"
    assert reasons[7] == "a last dose date with no dose"
    assert "0 to 10" in reasons[8]
    assert "another province" in reasons[9]
    with sessions() as session:
        kept = session.execute(select(Person.phone, Person.province_code, VaccinationRecord.doses).join(
            VaccinationRecord, VaccinationRecord.person_id == Person.id).order_by(Person.phone)).all()  # fmt: skip
    assert [tuple(row) for row in kept] == [("+84912345678", "27", 2), ("+84912345679", "27", 0)]
    again = import_vaccinations(sessions, manager, path)
    assert (again.imported, again.duplicates) == (0, 3)


def test_the_api_takes_vaccinations_from_managers(api, tmp_path):
    with api.sessions.begin() as session:
        manager = auth.add_user(session, "manager", Role.MANAGER, None).token
        viewer = auth.add_user(session, "viewer", Role.VIEWER, None).token
    body = b"phone,doses,last_dose_date\n0912345678,2,15/09/2021\n0912,1,01/08/2021\n"

    def post(token: str) -> httpx.Response:
        files = {"file": ("doses.csv", body)}
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.post(f"{api.url}/api/v1/vaccinations", files=files, headers=headers, timeout=30)

    assert post(viewer).status_code == 403
    answer = post(manager)
    assert answer.status_code == 200, answer.text
    assert answer.json()["imported"] == 1 and answer.json()["rejects"][0]["row"] == 3


# ---- the dialogue, with the real engine ----------------------------------------------------------------------------


@pytest.fixture
def chat(store_url, engine_url):
    yield from run_app(Settings(database_url=store_url, engine_url=engine_url))


def invited_chat(app, phone: str, doses: int) -> tuple[str, list[dict]]:
    """The web chat of a personal link (sent to the phone, so the phone is proven) of a resident with `doses` on
    record."""
    with app.sessions.begin() as session:
        attempt = factories.outreach_attempt(session, phone)
        session.add(VaccinationRecord(person_id=attempt.person_id, doses=doses, last_dose_date=date(2021, 9, 15)))
        session.flush()
        attempt_id = attempt.id
    link = app.platform.conversations.outreach.new_invite(attempt_id)
    opened = httpx.post(f"{app.url}/api/v1/webchat/sessions", json={"invite": link.split("invite=")[1]}, timeout=30)
    assert opened.status_code == 200, opened.text
    return opened.json()["session_id"], opened.json()["replies"]


def say(app, session_id: str, text: str) -> list[dict]:
    url = f"{app.url}/api/v1/webchat/sessions/{session_id}/messages"
    response = httpx.post(url, json={"text": text}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["replies"]


BEFORE_DOSES = ["Vâng, đúng rồi", "Được", "không có triệu chứng gì", "không tiếp xúc ai", "chưa test"]


def last_declaration(app) -> Declaration:
    with app.sessions() as session:
        return session.scalars(select(Declaration).order_by(Declaration.id.desc())).first()


@pytest.mark.engine
def test_doses_on_record_are_confirmed_not_asked(chat):
    session_id, _ = invited_chat(chat, "+84912345678", doses=2)
    for text in BEFORE_DOSES:
        replies = say(chat, session_id, text)
    asked = replies[-1]
    assert "Hồ sơ ghi anh/chị đã tiêm 2 mũi" in asked["text"], asked
    assert [b["title"] for b in asked["buttons"]] == ["Đúng", "Không đúng"]
    after = say(chat, session_id, "đúng rồi")
    assert "mũi" not in after[-1]["text"], "the doses are not asked again"
    assert last_declaration(chat).vaccine_doses == 2


@pytest.mark.engine
def test_a_no_to_the_record_asks_for_the_number(chat):
    session_id, _ = invited_chat(chat, "+84912345678", doses=2)
    for text in BEFORE_DOSES:
        say(chat, session_id, text)
    asked = say(chat, session_id, "không đúng")[-1]
    assert "Vậy anh/chị đã tiêm mấy mũi" in asked["text"], asked
    say(chat, session_id, "3 mũi")
    assert last_declaration(chat).vaccine_doses == 3


@pytest.mark.engine
def test_a_typed_phone_sees_nothing_on_record(chat):
    with chat.sessions.begin() as session:
        who = factories.person(session, "+84912345678")
        session.add(VaccinationRecord(person_id=who.id, doses=2, last_dose_date=date(2021, 9, 15)))
    opened = httpx.post(f"{chat.url}/api/v1/webchat/sessions", json={"phone": "0912345678", "name": "An"}, timeout=30)
    session_id = opened.json()["session_id"]
    for text in BEFORE_DOSES:
        replies = say(chat, session_id, text)
    assert "Hồ sơ ghi" not in replies[-1]["text"] and "mấy mũi" in replies[-1]["text"], replies[-1]
