"""Residents declaring their health through the web chat API, with the real engine and action server.

Each script is a whole conversation in one style; the declaration the store ends with is checked field by field.
"""

import unicodedata
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from ground.phones import normalize_phone
from ground.settings import Settings
from models import Alert, AuditLog, Conversation, Declaration, Person, Turn
from tests import factories
from tests.conftest import run_app
from tests.support.declarations import HANOI, TYPED_ANSWERS, columns, today, typed_declaration

pytestmark = pytest.mark.engine


@pytest.fixture
def chat(store_url, engine_url, tmp_path):
    yield from run_app(Settings(database_url=store_url, engine_url=engine_url, replay_interval_s=0.5))


class Resident:
    """A resident at the web chat. `on_list`: on a province's F1 list already (so the chat does not ask where they
    are staying); else a phone nobody follows yet."""

    def __init__(self, app, phone: str, name: str | None = "An", on_list: bool = True):
        self.app = app
        if on_list:
            with app.sessions.begin() as session:
                factories.person(session, normalize_phone(phone))
        response = httpx.post(f"{app.url}/api/v1/webchat/sessions", json={"phone": phone, "name": name}, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        self.session_id, self.replies, self.ended = body["session_id"], body["replies"], body["ended"]

    def say(self, text: str, payload: str | None = None) -> list[dict]:
        message = {"text": text, **({"payload": payload} if payload else {})}
        response = httpx.post(
            f"{self.app.url}/api/v1/webchat/sessions/{self.session_id}/messages", json=message, timeout=30
        )
        assert response.status_code == 200, response.text
        body = response.json()
        self.replies, self.ended = body["replies"], body["ended"]
        return self.replies

    def converse(self, *lines: str) -> None:
        for text in lines:
            assert not self.ended, f"the conversation ended before '{text}'"
            self.say(text)

    def declaration(self) -> Declaration:
        with self.app.sessions() as session:
            return session.scalars(select(Declaration).order_by(Declaration.id.desc())).first()

    def texts(self) -> str:
        return " ".join(r["text"] for r in self.replies)


def expect(declaration: Declaration, **fields) -> None:
    assert columns(declaration, fields) == fields


def test_the_bot_opens_with_who_it_is_and_the_residents_name(chat):
    resident = Resident(chat, "0912 345 678", "Nguyễn Văn An")
    assert "Trung tâm Kiểm soát bệnh tật" in resident.replies[0]["text"]
    assert "Nguyễn Văn An" in resident.replies[-1]["text"]
    assert [b["title"] for b in resident.replies[-1]["buttons"]] == ["Đúng", "Không phải"]
    assert resident.ended is False


def test_accented_full_declaration(chat):
    resident = Resident(chat, "0912345678")
    resident.converse(*TYPED_ANSWERS)
    assert resident.ended
    expect(resident.declaration(), **typed_declaration())


def test_unaccented_declaration_with_no_symptoms(chat):
    resident = Resident(chat, "84987654321")
    resident.converse(
        "dung roi", "duoc", "khong co trieu chung gi", "khong", "chua xet nghiem", "tiem 3 mui", "co", "khong can"
    )
    assert resident.ended
    expect(
        resident.declaration(),
        status="complete",
        symptoms_asked=True,
        symptoms=[],
        temperature_c=None,
        symptom_onset=None,
        contact_with_case="no",
        test_result="not_tested",
        test_date=None,
        vaccine_doses=3,
        at_registered_address=True,
    )


def test_teencode_declaration(chat):
    resident = Resident(chat, "0323456789")
    resident.converse("uh dg r", "ok", "e bi ho vs dau hong", "hqua", "k", "chx test", "tiem 2 mui r", "uh", "ko can j")
    assert resident.ended
    expect(
        resident.declaration(),
        status="complete",
        symptoms=["cough", "sore_throat"],
        symptom_onset=today() - timedelta(days=1),
        contact_with_case="no",
        test_result="not_tested",
        vaccine_doses=2,
        at_registered_address=True,
    )


def test_voice_like_text_with_numbers_in_words(chat):
    resident = Resident(chat, "0901234567")
    resident.converse(
        "vâng đúng rồi",
        "được",
        "tôi bị sốt",
        "ba mươi tám độ rưỡi",
        "ba ngày nay",
        "có",
        "dương tính",
        "hôm qua",
        "hai mũi",
        "có",
        "cần thuốc hạ sốt",
    )
    assert resident.ended
    expect(
        resident.declaration(),
        status="complete",
        symptoms=["fever"],
        temperature_c=38.5,
        symptom_onset=today() - timedelta(days=3),
        contact_with_case="yes",
        test_result="positive",
        test_date=today() - timedelta(days=1),
        vaccine_doses=2,
        needs="cần thuốc hạ sốt",
        alert_level="urgent",
    )


def test_answers_volunteered_early_skip_their_questions(chat):
    resident = Resident(chat, "0912000111")
    resident.converse("vâng", "ok", "tôi sốt 38 độ 5 từ hôm qua, ho khan")
    assert "tiếp xúc gần" in resident.texts(), "temperature and onset were given: the next question is contact"
    resident.converse("không", "test nhanh âm tính sáng nay")
    assert "mũi" in resident.texts(), "the test date was given with the result"
    resident.converse("2 mũi", "có", "không")
    expect(
        resident.declaration(),
        status="complete",
        symptoms=["fever", "cough"],
        temperature_c=38.5,
        symptom_onset=today() - timedelta(days=1),
        test_result="negative",
        test_date=today(),
        vaccine_doses=2,
    )


def test_busy_with_a_time_requests_a_callback(chat):
    resident = Resident(chat, "0912000222")
    resident.converse("vâng", "tôi đang bận, 5 giờ chiều gọi lại nhé")
    assert resident.ended and "17:00" in resident.texts()
    declaration = resident.declaration()
    assert declaration.status == "callback_requested"
    assert declaration.callback_at.astimezone(HANOI).hour == 17


def test_busy_without_a_time_asks_when(chat):
    resident = Resident(chat, "0912000333")
    resident.converse("vâng", "đang bận lắm")
    assert not resident.ended and "lúc nào" in resident.texts()
    resident.converse("sáng mai")
    assert resident.ended
    callback = resident.declaration().callback_at.astimezone(HANOI)
    assert (callback.date(), callback.hour) == (today() + timedelta(days=1), 9)


def test_refusal(chat):
    resident = Resident(chat, "0912000444")
    resident.converse("đúng", "tôi không muốn khai báo")
    assert resident.ended
    assert resident.declaration().status == "refused"


def test_wrong_person(chat):
    resident = Resident(chat, "0912000555")
    resident.converse("nhầm số rồi")
    assert resident.ended
    expect(resident.declaration(), status="wrong_person", identity_confirmed=False)


def test_emergency_raises_an_urgent_alert_at_once_and_goes_on_if_wanted(chat):
    resident = Resident(chat, "0912000666")
    resident.converse("vâng", "được")
    resident.say("khó thở quá")
    assert "115" in resident.texts()
    with chat.sessions() as session:
        alert = session.scalars(select(Alert)).one()
    assert alert.level == "urgent" and alert.acknowledged_at is None
    resident.say("Tiếp tục", payload="/affirm")
    assert not resident.ended
    resident.converse("từ sáng nay", "không", "chưa test", "1 mũi", "có", "không")
    assert resident.ended
    expect(
        resident.declaration(),
        status="complete",
        alert_level="urgent",
        symptoms=["shortness_of_breath"],
        symptom_onset=today(),
    )


def test_a_question_is_answered_then_the_form_goes_on(chat):
    resident = Resident(chat, "0912000777")
    resident.converse("vâng", "được")
    resident.say("tôi có phải cách ly không?")
    assert "cách ly" in resident.texts() and "triệu chứng" in resident.replies[-1]["text"]
    resident.say("không có triệu chứng gì")
    assert "tiếp xúc" in resident.texts()


def test_not_understood_twice_moves_on(chat):
    resident = Resident(chat, "0912000888")
    resident.converse("vâng", "được", "bình thường", "không")
    resident.say("ờm để xem")
    assert "Xin lỗi" in resident.replies[0]["text"] and resident.replies[0]["buttons"], "re-asked, simpler"
    resident.say("ờm để xem")
    assert "tiêm" in resident.texts(), "the second miss moves on"
    assert resident.declaration().test_result is None


def test_buttons_send_their_payload_and_store_their_title(chat):
    resident = Resident(chat, "0912000999")
    resident.say("Đúng", payload="/affirm")
    resident.say("Đồng ý", payload="/affirm")
    resident.say("Không có triệu chứng", payload="/feel_fine")
    expect(resident.declaration(), identity_confirmed=True, symptoms_asked=True, symptoms=[])
    with chat.sessions() as session:
        texts = session.scalars(select(Turn.text).where(Turn.speaker == "resident").order_by(Turn.id)).all()
    assert texts == ["Đúng", "Đồng ý", "Không có triệu chứng"]


def test_every_answer_is_stored_as_it_is_given(chat):
    resident = Resident(chat, "0913000111")
    resident.converse("vâng", "ok", "ho")
    declaration = resident.declaration()
    expect(declaration, status="in_progress", symptoms=["cough"], alert_level="watch", test_result=None)
    history = httpx.get(f"{chat.url}/api/v1/webchat/sessions/{resident.session_id}").json()
    assert [line["speaker"] for line in history["lines"]][:3] == ["bot", "bot", "resident"]
    assert history["ended"] is False


def test_decomposed_unicode_from_phones_is_stored_composed_and_understood(chat):
    resident = Resident(chat, "0913000222")
    resident.say(unicodedata.normalize("NFD", "Vâng, đúng rồi"))
    expect(resident.declaration(), identity_confirmed=True)
    with chat.sessions() as session:
        stored = session.scalars(select(Turn.text).where(Turn.speaker == "resident")).one()
    assert stored == unicodedata.normalize("NFC", "Vâng, đúng rồi")


def _person(app, phone: str) -> Person:
    with app.sessions() as session:
        return session.scalar(select(Person).where(Person.phone == phone))


def test_a_resident_nobody_follows_is_asked_where_they_stay_and_their_province_follows(chat):
    resident = Resident(chat, "0914000111", on_list=False)
    resident.converse("vâng", "được", "không có triệu chứng gì", "không", "chưa test", "2 mũi", "có")
    assert "phường/xã nào, tỉnh/thành phố nào" in resident.texts()
    resident.converse("em ở phường Dĩ An, Bình Dương cũ ạ", "không cần")
    assert resident.ended and resident.declaration().status == "complete"
    person = _person(chat, "+84914000111")
    assert (person.province_code, person.province, person.ward) == ("79", "Hồ Chí Minh", "Phường Dĩ An")
    with chat.sessions() as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "person.province_claimed")).one()
    assert audit.object_ids == [person.id] and audit.user_id is None and audit.detail["by"] == "resident"


def test_a_place_told_with_the_address_answer_is_not_asked_again(chat):
    resident = Resident(chat, "0914000222", on_list=False)
    resident.converse("vâng", "được", "khỏe", "không", "chưa test", "2 mũi")
    resident.say("không, tôi về quê ở Thái Bình rồi")
    assert "cần hỗ trợ" in resident.texts(), "the place was told: the next question is the last one"
    resident.say("không cần")
    assert resident.ended and resident.declaration().at_registered_address is False
    assert _person(chat, "+84914000222").province_code == "33", "Thái Bình is part of Hưng Yên since 2025"


def test_a_place_not_understood_twice_is_left_unknown_and_the_chat_ends(chat):
    resident = Resident(chat, "0914000333", on_list=False)
    resident.converse("vâng", "được", "khỏe", "không", "chưa test", "2 mũi", "có", "ở nhà chứ đâu", "ở chỗ cũ")
    assert "cần hỗ trợ" in resident.texts()
    resident.say("không")
    assert resident.ended and resident.declaration().status == "complete"
    assert _person(chat, "+84914000333").province_code is None


def test_residents_on_a_list_are_not_asked_where_they_stay(chat):
    resident = Resident(chat, "0914000444")
    resident.converse("vâng", "được", "khỏe", "không", "chưa test", "2 mũi", "có", "không cần")
    assert resident.ended and "phường/xã nào" not in " ".join(t.text for t in resident_turns(chat, "+84914000444"))
    assert _person(chat, "+84914000444").province_code == "27"


def resident_turns(app, phone: str) -> list[Turn]:
    with app.sessions() as session:
        return list(session.scalars(select(Turn).join(Conversation).join(Person).where(Person.phone == phone)))
