"""From a resident's turn to declaration answers (pure Python; the dialogue's actions run it).

`apply(slots, requested, turn)` returns the slots after one turn: the answer to the pending question, whatever
else was volunteered, and the acts that end or pause the conversation. `next_question(slots)` says what to ask
next, skipping questions that do not apply (temperature without fever, onset without symptoms, test date without
a test).
"""

import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from bot import places, vnparse
from bot.vnscope import Speaker, about_someone_else, called_in, corrections, others_spans
from bot.vntext import (
    denied_before,
    leading_yes_no,
    matches,
    phrase_at,
    phrase_sounds_at,
    says,
    split_phrase,
    words,
    yes_no,
)

UNKNOWN = "unknown"  # asked twice and still not understood: the form moves on, the store keeps null
FEVER_FROM_C = 37.5  # a measured temperature this high is a fever even when the word "sốt" was not said
URGENT_SYMPTOMS = {"shortness_of_breath", "chest_pain"}

QUESTIONS = [
    "identity_confirmed",
    "consent",
    "symptoms",
    "temperature",
    "symptom_onset",
    "contact_with_case",
    "test_result",
    "test_date",
    "vaccine_doses",
    "at_registered_address",
    "staying_at",
    "needs",
]
DIALOGUE_SLOTS = [
    *QUESTIONS,
    *("callback_at", "outcome", "emergency", "reask_count", "asked", "answered_by", "resident_called", "ask_where"),
    *("recorded_doses", "dose_check"),
]
MAX_ASKS = 2  # a question is asked at most twice (the second time with buttons), then recorded as unknown
ENDING_OUTCOMES = {"wrong_person", "refused", "ended_early", "complete"}
CLOSING_RESPONSES = {
    "complete": "utter_thanks_complete",
    "wrong_person": "utter_close_wrong_person",
    "refused": "utter_close_refused",
    "ended_early": "utter_close_early",
}
DEFAULT_CALLBACK_DELAY = timedelta(hours=2)
_YES_NO_QUESTIONS = {"contact_with_case", "at_registered_address"}
_UNKNOWABLE = {
    *("temperature", "symptom_onset", "contact_with_case", "test_date", "test_result", "vaccine_doses", "staying_at"),
    "at_registered_address",
}
_PLACE_TOLD = {"at_registered_address", "staying_at", "needs"}  # answers where residents say where they are

_AT_HOME = [
    split_phrase(p)
    for p in (
        *("ở nhà", "vẫn ở", "ở đây", "ở chỗ cũ", "đang cách ly", "ở phòng", "at home", "home", "không đi đâu"),
        *("không ra khỏi nhà", "còn ở", "ra khỏi cửa đâu", "ra khỏi nhà đâu", "có đi đâu", "chỗ cũ", "ở trọ"),
        *("bước chân ra", "ra khỏi cổng", "ở tại nhà", "theo địa chỉ", "đúng địa chỉ", "nhà riêng"),
    )
]
# "hàng xóm F0, mà em không có qua lại": someone else is a case, and the resident says they did not meet.
# "ngày đi làm, tối về nhà ngủ": where they sleep is where they stay.
_SLEEPS_AT_HOME = [
    split_phrase(p) for p in ("về nhà ngủ", "về ngủ", "ngủ ở nhà", "ngủ nhà", "tối về nhà", "tối vẫn về", "tối về")
]
# "mới về lại nhà hôm qua", "hôm bữa có lên Cần Thơ, mà chiều qua dìa lại nhà rồi": back home, whatever trip before.
_RETURNED = [
    split_phrase(p) for p in ("về lại nhà", "dìa lại nhà", "về nhà rồi", "dìa nhà rồi", "đã về nhà", "đã dìa nhà")
]
# "chắc cuối tháng mới dìa", "tết mới về": back only later, so away now.
_LATER = ("tháng", "tuần", "mai", "mốt", "tết", "nữa", "sau", "tới", "hè")
# "chừ tui vô Sài Gòn", "ra Hà Nội ở với con": gone to a place by its name.
_MOVES = ("vô", "vào", "ra", "lên", "xuống", "về", "đi", "sang", "qua")
# "chưa dìa quê, còn ở trọ", "không đi đâu": a no to moving is a yes to staying.
_MOVING = (*_MOVES, "dìa", "dọn", "chuyển", "bước")
_NO_CONTACT = [
    split_phrase(p)
    for p in (
        *("không tiếp xúc", "không có tiếp xúc", "không gặp", "chưa gặp", "không qua lại", "không có qua lại"),
        *("không ở chung", "không đi chung", "không có gặp", "không gần", "hổng có gặp", "no contact"),
        *("có mình tui", "có mình tôi", "có một mình", "ở một mình"),  # "trên rẫy có mình tui": alone
        *("ai mà gặp", "gặp ai mà", "gặp ai đâu", "gặp ai mô", "ai mà tiếp xúc"),  # "ai mà gặp F0?": nobody
    )
]
_AWAY = [
    split_phrase(p)
    for p in (
        *("về quê", "đi làm", "không ở", "chuyển đi", "ra ngoài", "đi vắng", "ở quê", "đi công tác", "chuyển chỗ"),
        *("dọn qua", "dọn sang", "dọn đi", "dọn về", "chuyển qua", "chuyển sang", "chuyển về", "qua nhà", "sang nhà"),
        *("cách ly tập trung", "khu cách ly", "bệnh viện", "nhập viện", "nhà ngoại", "nhà nội", "nhà bạn"),
        *("nhà người quen", "nhà bà con", "nhà họ hàng", "nhà người thân", "nằm viện", "viện dã chiến"),
        *("sang ở", "qua ở", "đi du lịch", "đi chơi xa", "đi trip", "đi phượt", "đi nghỉ mát"),
        *("đi biển", "ra khơi", "ngoài khơi", "ngoài biển", "trên tàu", "trên ghe", "đi tàu", "đánh cá", "đi ghe"),
        *("dọn vô", "dọn vào", "dọn ra", "trả phòng", "nhà con gái", "nhà con trai"),  # a dorm may be the address
        *("quarantine hotel", "khách sạn cách ly", "bị chuyển vào", "bị chuyển đi", "chuyển vào khu"),  # not self-
    )
]
_NO_NEEDS = [
    split_phrase(p)
    for p in (
        "không cần",
        "chưa cần",
        "không có gì",
        "không cần gì",
        "đủ rồi",
        "ổn rồi",
        "không phải hỗ trợ",
        "tự lo được",
        "no need",
        "no thanks",
        "nothing",
        "khỏi",  # "khỏi, cảm ơn": no need
    )
]
_NEEDS = [split_phrase(p) for p in ("cần", "xin", "thiếu", "hết", "mua giúp", "gửi", "nhờ", "need")]
_NEEDS += [split_phrase(p) for p in ("muốn hỏi", "muốn biết", "cho hỏi", "hỏi giúp", "chỉ giúp", "hướng dẫn")]
_WRONG_PERSON = [
    split_phrase(p)
    for p in (
        "nhầm số",
        "sai số",
        "nhầm người",
        "sai người",
        "không phải tôi",
        "không phải người",
        "nhầm máy",
        "không có ai tên",
        *("lộn số", "lộn người", "đổi chủ", "đổi số", "qua đời", "mất rồi", "không quen", "không biết ai"),
    )
]
_HEALTHY = [
    split_phrase(p)
    for p in (
        *("không sao", "bình thường", "khỏe", "không có gì", "không bị gì", "ổn", "không triệu chứng", "fine"),
        "không có triệu chứng",
        *("không có dấu hiệu", "không có biểu hiện", "chẳng bị làm sao", "không bị làm sao"),
        *("không thấy gì", "chẳng thấy gì", "không thấy khác lạ", "không có gì lạ"),  # "... gì khác lạ": nothing
        *("gì đâu", "chi mô", "gì mô"),  # "ho hen gì đâu": asked where, nothing
        *("không có bệnh", "không có bịnh", "hổng có bịnh", "không bệnh gì", "không có symptom"),
    )
]
# Said with a yes to the questions, these answer the symptom question too ("ok fine" and "không sao" only say go on).
_SYMPTOM_FREE = [
    split_phrase(p) for p in ("không có triệu chứng", "không triệu chứng", "không bị gì", "khỏe", "bình thường")
]
# A relative answering for the resident: "tôi là mẹ cháu, tôi trả lời giúp", "cháu là cháu nội ông, cháu nhắn giúp",
# "tôi là bố nó đây": who they are to the resident, or answering on their behalf.
_ON_BEHALF = ("giúp", "giùm", "dùm", "hộ", "thay")
_ANSWERING = ("trả lời", "khai", "nhắn", "nhắn tin", "nghe máy", "nghe", "bắt máy", "nói")
_SPEAKING = ("tôi", "em", "mình", "tui", "cháu", "con", "bà", "ông", "mẹ", "bố", "ba", "má")  # "bà là bà nội nó"
# Kin words only: "tôi là chị Lan", "cháu là cháu Minh đây" are the resident giving a title and a name.
_RELATION = ("mẹ", "bố", "ba", "má", "cha", "vợ", "chồng", "con", "người nhà", "cháu nội", "cháu ngoại", "cháu gái")
_RELATION += ("cháu trai", "em gái", "em trai", "anh trai", "chị gái", "ông nội", "bà nội", "ông ngoại", "bà ngoại")
_FOR_THE_RESIDENT = [
    split_phrase(p)
    for p in (
        *(f"{verb} {helper}" for verb in _ANSWERING for helper in _ON_BEHALF),
        *(f"{verb} cho" for verb in ("trả lời", "khai")),
        *(f"{me} là {relation}" for me in _SPEAKING for relation in _RELATION),
        *("mẹ nó đây", "bố nó đây", "ba nó đây", "má nó đây", "bà nội nó", "ông nội nó", "bà ngoại nó"),
        *("ông ngoại nó", "mẹ cháu đây", "bố cháu đây", "bà nó đây", "ông nó đây", "cháu trả lời", "con trả lời"),
        *("nên bà trả lời", "nên ông trả lời", "nên mẹ trả lời", "nên bố trả lời", "nên tôi trả lời"),
    )
]
# Words of calling back; beside an answer they still ask for a call ("đang họp, 30 phút nữa nhé").
_CALL_BACK = [
    split_phrase(p)
    for p in (
        *("bận", "gọi lại", "gọi sau", "lúc khác", "để sau", "không rảnh", "đang họp", "đang lái", "đang ngủ"),
        *("đang ăn", "chút nữa", "tí nữa", "lát", "busy", "call lại", "sau nhé"),
    )
]
# ...and what keeps someone busy, which beside an answer says where they are ("đang đi Đà Lạt, tuần sau mới về").
_BUSY = [*_CALL_BACK, *(split_phrase(p) for p in ("đang làm", "đang chạy", "đang đi"))]
_NOT_MEASURED = [split_phrase(p) for p in ("chưa đo", "không đo", "không có nhiệt kế", "chưa kiểm tra")]
_NOT_VACCINATED = [
    split_phrase(p)
    for p in (
        *("chưa tiêm", "không tiêm", "chưa được tiêm", "chưa chích", "không mũi nào", "chưa mũi nào", "zero"),
        *("chưa tiêm mũi nào", "không chích"),
    )
]


@dataclass(frozen=True)
class Turn:
    """What the resident just said, as the engine understood it."""

    text: str
    intent: str
    entities: list[dict[str, Any]] = field(default_factory=list)
    now: datetime | None = None
    proxy: bool = False  # a relative answers for the resident: their "nó", "cháu" is the resident
    called: str | None = None  # the words the resident is called by ("bà" after "bà đây"): `vnscope.called_in`
    greeted: str | None = None  # the name the opening asked for ("Đặng Văn Sơn")

    @property
    def speaker(self) -> Speaker:
        return Speaker(self.proxy, tuple((self.called or "").split()))

    def entity_values(self, name: str) -> list[Any]:
        return [e.get("value") for e in self.entities if e.get("entity") == name]


def _chosen(turn: Turn, name: str) -> list[Any]:
    """Entity values of a button's payload ('/inform{"doses": "2"}'): chosen, not read from words. Typed words are
    read by `bot.vnparse` here, the same rules the engine's entity extractor runs, with their context (whose fact,
    which value after a correction) that a flat entity list has lost."""
    return turn.entity_values(name) if turn.text.startswith("/") else []


def symptoms_in(turn: Turn) -> list[str]:
    codes = [v for v in _chosen(turn, "symptom") if v in vnparse.SYMPTOM_PHRASES]
    codes += [f.value for f in vnparse.find_symptoms(turn.text, turn.speaker)]
    return list(dict.fromkeys(codes))


def merge_symptoms(current: Any, new: list[str]) -> list[str]:
    known = current if isinstance(current, list) else []
    return list(dict.fromkeys([*known, *new]))


def _temperature(turn: Turn, expected: bool) -> float | None:
    found = vnparse.find_temperatures(turn.text, expected=expected, speaker=turn.speaker)
    return found[0].value if found else None


def _test_result(turn: Turn, expected: bool = False) -> str | None:
    values = [v for v in _chosen(turn, "test_result") if v in ("positive", "negative", "pending")]
    values += [f.value for f in vnparse.find_test_results(turn.text, turn.speaker, expected)]
    if values:
        return values[0]
    return "not_tested" if vnparse.says_not_tested(turn.text) else None


def _doses(turn: Turn, expected: bool) -> int | None:
    chosen = [int(value) for value in _chosen(turn, "doses") if str(value).isdecimal()]
    found = vnparse.find_doses(turn.text, expected=expected, speaker=turn.speaker)
    if chosen or found:
        return chosen[0] if chosen else found[0].value
    return 0 if says(turn.text, _NOT_VACCINATED) else None


def _place(turn: Turn) -> dict[str, Any] | None:
    """Where the resident says they are staying, as the 2025 units ('phường Dĩ An, Bình Dương cũ' -> Hồ Chí Minh)."""
    place = places.find_place(turn.text)
    return asdict(place) if place else None


def _day(turn: Turn) -> str | None:
    """The first day said that is not in the future: onsets and tests have happened ("họ hẹn mai trả" is when the
    result comes)."""
    if turn.now is None:
        return None
    days = [when.as_date(turn.now.date()) for _, when in vnparse.find_times(turn.text)]
    return next((day.isoformat() for day in days if day <= turn.now.date()), None)


def _callback(turn: Turn) -> str | None:
    found = vnparse.find_times(turn.text)
    return found[0][1].as_moment(turn.now).isoformat() if found and turn.now else None


def _is_payload(turn: Turn, intent: str) -> bool:
    """A button's payload ("/affirm"): the intent was chosen, not guessed."""
    return turn.text.startswith(f"/{intent}")


# A yes or a no needs the words to say it (or a button): the classifier is confident even on gibberish.
# ...and a yes or no said first outweighs the classifier ("no" is not an "ok").
def _is_no(turn: Turn) -> bool:
    said = yes_no(turn.text) is False and (turn.intent != "affirm" or leading_yes_no(turn.text) is False)
    return _is_payload(turn, "deny") or said


def _is_yes(turn: Turn) -> bool:
    said = yes_no(turn.text) is True and (turn.intent != "deny" or leading_yes_no(turn.text) is True)
    return _is_payload(turn, "affirm") or said


def specific_answer(question: str, turn: Turn, leading_yes_no_counts: bool = True) -> Any:
    """An answer that stands on its own words (a day, a number, a result, "không biết"), whatever the intent:
    'hom qua' is the onset even if the classifier heard a question about quarantine."""
    if vnparse.is_unknown_answer(turn.text) and question in _UNKNOWABLE:
        return "unknown" if question == "contact_with_case" else UNKNOWN
    if leading_yes_no_counts and (said := _leading_answer(question, turn)) is not None:
        return ("yes" if said else "no") if question == "contact_with_case" else said
    if question == "contact_with_case" and says(turn.text, _NO_CONTACT):
        return "no"
    if question == "contact_with_case" and _a_case_told(turn):
        return "yes"  # "ông nội tôi là F0 đó", whatever the classifier heard
    if question == "symptoms":  # "không có ho hen gì hết", "không bị gì": an answer, whatever the classifier heard
        return symptoms_in(turn) or ([] if _denies_symptoms(turn) or says(turn.text, _HEALTHY) else None)
    if question == "temperature":
        return _temperature(turn, expected=True)
    if question in ("symptom_onset", "test_date"):
        return _day(turn)
    if question == "test_result":
        return _test_result(turn, expected=True)
    if question == "vaccine_doses":
        return _doses(turn, expected=False)
    if question == "at_registered_address":
        return _staying(turn)
    if question == "identity_confirmed" and (answers_for_the_resident(turn) or _names_themself(turn)):
        return True  # "tôi là con gái bà Ánh, bà nghe không rõ nên tôi trả lời giúp", "Sơn đây": not a "say again"
    if question in ("identity_confirmed", "consent") and _plain_yes(question, turn):
        return True  # "dc e, hõi lẹ đj" (ok, ask away) is a yes, not a "say again"
    if question == "staying_at":
        return _place(turn)
    if question == "needs":  # the last question: a goodbye to it needs nothing ("thôi chào em nhé")
        if leading_yes_no(turn.text) is False or says(turn.text, _NO_NEEDS) or turn.intent == "goodbye":
            return ""
        return turn.text.strip() if says(turn.text, _NEEDS) and "?" not in turn.text else None
    return None


_HERE = [split_phrase(p) for p in ("đây", "nè", "nghe", "đang nghe", "đó", "ạ")]
_ME = ("tôi", "tui", "em", "mình", "tớ", "con", "cháu")


def _here_at(ws: list[Any], i: int) -> bool:
    return any(phrase_at(ws, i, here) for here in _HERE)


def _names_themself(turn: Turn) -> bool:
    """The resident says the name asked for, as who is speaking: "Sơn đây", "toan day", "Bình đây, bác nghe", "em
    là Sơn". A no anywhere ("không phải Sơn đây") leaves it to the other readers."""
    if yes_no(turn.text) is False:
        return False
    ws = words(turn.text)
    start = next((k for k, w in enumerate(ws) if not any(matches(w, p) for p in ("dạ", "vâng", "ừ", "phải"))), 0)
    if start < len(ws) and any(matches(ws[start], me) for me in _ME) and _here_at(ws, start + 1):
        return True  # "tui nè", "dạ em đây"
    given = words(turn.greeted or "")[-1:]
    for i, word in enumerate(ws):
        if not given or word.folded != given[0].folded or (word.accented and word.canonical != given[0].canonical):
            continue
        introduced = i > 0 and matches(ws[i - 1], "là")
        alone = i + 1 == len(ws) and i <= 1  # "Sơn", "dạ Sơn" (not "gọi lại mai" to Mai)
        if introduced or alone or _here_at(ws, i + 1):
            return True
    return False


def _leading_answer(question: str, turn: Turn) -> bool | None:
    """Yes or no said first to a yes-no question; "có đi đâu được đâu" (I go nowhere) is no "no" to staying home, and
    a place elsewhere outweighs a polite "dạ" ("dạ em đang nằm ở khu cách ly tập trung")."""
    if question not in _YES_NO_QUESTIONS:
        return None
    staying = _staying(turn) if question == "at_registered_address" else None
    if staying is False or (staying and _no_to_moving(turn)):
        return staying
    return leading_yes_no(turn.text, rhetorical=question != "at_registered_address")


def _no_to_moving(turn: Turn) -> bool:
    """The first no is said to moving: "chưa dìa quê, còn ở trọ", "hổng có đi đâu", "từ hôm ấy chưa bước chân ra
    khỏi cổng"."""
    ws = [w for w in words(turn.text) if not any(matches(w, p) for p in ("dạ", "vâng", "ừ", "có", "hề"))]
    first_no = next((k for k, w in enumerate(ws) if yes_no(w.text) is False), None)
    return first_no is not None and first_no + 1 < len(ws) and any(matches(ws[first_no + 1], m) for m in _MOVING)


def _after_correction(turn: Turn) -> Turn | None:
    """The part of the turn after a self-correction ("không... à mà có"), as a turn of its own, or None."""
    for _, end in reversed(corrections(turn.text)):  # "có, à không, không có, em nhầm": the "nhầm" ends it
        if rest := turn.text[end:].strip(" ,.;!?…"):
            return replace(turn, text=rest, entities=[])
    return None


def answer_to(question: str, turn: Turn, slots: dict[str, Any]) -> Any:
    """The answer `turn` gives to `question`, or None when it gives none. A yes or no corrected in the same breath
    ("có, à lộn, hổng có") is the corrected one."""
    if question not in ("identity_confirmed", "consent", "symptoms", "needs") and (rest := _after_correction(turn)):
        corrected = _answer_to(question, rest, slots)
        if corrected is not None:
            return corrected
    return _answer_to(question, turn, slots)


def _answer_to(question: str, turn: Turn, slots: dict[str, Any]) -> Any:
    leading = _leading_answer(question, turn)
    if leading is not None and not vnparse.is_unknown_answer(turn.text, at_start=True):
        return ("yes" if leading else "no") if question == "contact_with_case" else leading  # "không, ... chưa biết"
    if question == "test_result" and vnparse.says_not_tested(turn.text):
        return "not_tested"  # "muốn đi test mà hổng biết test ở đâu": not tested, whatever else is unknown
    if question in _UNKNOWABLE and vnparse.is_unknown_answer(turn.text):
        return "unknown" if question == "contact_with_case" else UNKNOWN  # "không nhớ" is not a no
    if question == "identity_confirmed":
        if answers_for_the_resident(turn) or _names_themself(turn):
            return True
        if _plain_yes(question, turn):
            return True
        if turn.intent == "wrong_person" or _is_no(turn):
            return False
        return True if _is_yes(turn) else None
    if question == "consent":
        answers_next = bool(symptoms_in(turn)) or _denies_symptoms(turn) or says(turn.text, _HEALTHY)
        if (first := leading_yes_no(turn.text)) is not None and not _is_payload(turn, "deny"):
            return first or answers_next  # "được, em không sốt không ho gì": a yes, then answers; "dạ không sốt"
        if answers_next:
            return True  # answering the next question is a yes: "cháu khỏe, không sốt không ho"
        if _is_no(turn):
            return False
        return True if _is_yes(turn) or turn.intent == "feel_fine" or _plain_yes(question, turn) else None
    if question == "symptoms":
        found = symptoms_in(turn)
        if found:
            return found
        healthy = turn.intent == "feel_fine" or _is_payload(turn, "feel_fine") or says(turn.text, _HEALTHY)
        return [] if healthy or _is_no(turn) else None
    if question == "temperature":
        value = _temperature(turn, expected=True)
        if value is None and (says(turn.text, _NOT_MEASURED) or vnparse.is_unknown_answer(turn.text) or _is_no(turn)):
            return UNKNOWN
        return value
    if question in ("symptom_onset", "test_date"):
        day = _day(turn)
        return day if day else (UNKNOWN if vnparse.is_unknown_answer(turn.text) else None)
    if question == "contact_with_case":
        if says(turn.text, _NO_CONTACT):
            return "no"
        if _a_case_told(turn):
            return "yes"  # "vợ tôi dương tính hôm kia": living with a case
        return "no" if _is_no(turn) else ("yes" if _is_yes(turn) else None)
    if question == "test_result":
        result = _test_result(turn, expected=True)
        return result if result else ("not_tested" if _is_no(turn) else None)
    if question == "vaccine_doses":
        doses = _doses(turn, expected=True)
        if slots.get("dose_check") == "confirm":  # "Hồ sơ ghi ... 2 mũi, đúng không?": a no asks for the number
            return doses if doses is not None else (int(slots["recorded_doses"]) if _is_yes(turn) else None)
        return doses if doses is not None else (0 if _is_no(turn) else None)
    if question == "at_registered_address":
        if (staying := _staying(turn)) is not None:
            return staying  # "vẫn ở nhà ko đi đâu": its "không" is not a no
        return False if _is_no(turn) else (True if _is_yes(turn) else None)
    if question == "staying_at":
        return _place(turn)
    if question == "needs":
        if turn.intent in ("deny", "feel_fine", "goodbye") or says(turn.text, _NO_NEEDS):
            return ""
        if says(turn.text, _NEEDS) and "?" not in turn.text:
            return turn.text.strip()  # "em cần được xét nghiệm": its "được" is not a yes
        return turn.text.strip() if turn.intent == "inform" or (turn.text and not _is_yes(turn)) else None
    raise ValueError(f"unknown question {question}")


def _volunteered(slots: dict[str, Any], requested: str | None, turn: Turn) -> dict[str, Any]:
    """Answers given before they were asked: 'tôi sốt 38 độ 5 từ hôm qua, ho khan, test âm tính sáng nay'."""
    found: dict[str, Any] = {}
    symptoms = symptoms_in(turn)
    if symptoms:
        found["symptoms"] = merge_symptoms(slots.get("symptoms"), symptoms)
    if (temperature := _temperature(turn, expected=False)) is not None:
        found["temperature"] = temperature
    result = _test_result(turn, expected=requested == "test_result")
    if result is not None and not (result == "positive" and requested == "contact_with_case"):
        found["test_result"] = result  # asked about contact with a case, a positive told is the case's
    if (doses := _doses(turn, expected=False)) is not None:
        found["vaccine_doses"] = doses
    if vnparse.others_tested_positive(turn.text, turn.speaker) and not says(turn.text, _NO_CONTACT):
        found["contact_with_case"] = "yes"
    if slots.get("ask_where") and requested in _PLACE_TOLD and (place := _place(turn)):
        found["staying_at"] = place
    healthy = requested == "consent" and says(turn.text, _SYMPTOM_FREE) and not symptoms
    if requested in ("identity_confirmed", "consent") and (_denies_symptoms(turn) or healthy):
        found["symptoms"] = []  # "được, em không sốt không ho gì", "dạ được, không có triệu chứng gì"
    day = _day(turn)
    if day and "test_result" in found and found["test_result"] != "not_tested":
        found["test_date"] = day
    elif day and (symptoms or "temperature" in found) and requested not in ("test_date", "temperature"):
        found["symptom_onset"] = day
    return found


def _stays_elsewhere(turn: Turn) -> bool:
    """'về quê rồi', 'em đang ở nhà mẹ đẻ bên Gia Lâm', 'vô Sài Gòn rồi': a home, but someone else's, or a place
    gone to; not 'đâu có dọn đi đâu' (denied)."""
    ws, others = words(turn.text), others_spans(turn.text, turn.speaker)
    if any(
        (any(phrase_sounds_at(ws, i, p) for p in _AWAY) or _moved_to_a_place(ws, i) or _back_only_later(ws, i))
        and not about_someone_else(ws[i].start, others)
        and not denied_before(ws, i)
        for i in range(len(ws))
    ):
        return True  # "anh ấy ở bệnh viện, còn tôi vẫn ở nhà": his hospital
    starts = {start for start, _ in others}
    return any(matches(w, "nhà") and i + 1 < len(ws) and ws[i + 1].start in starts for i, w in enumerate(ws))


def _moved_to_a_place(ws: list[Any], i: int) -> bool:
    after = ws[i + 1] if i + 1 < len(ws) else None
    named = after is not None and not after.after_mark and after.text[:1].isupper() and after.text[1:2].islower()
    merged = i > 0 and matches(ws[i - 1], "nhập")  # "Tam Kỳ giờ nhập về Đà Nẵng": the 2025 merger, not a move
    meant = i > 0 and any(matches(ws[i - 1], w) for w in _MEANT)  # "định về Thái Bình mà phường không cho đi"
    return named and not merged and not meant and any(matches(ws[i], m) for m in _MOVES)


_MEANT = ("định", "tính", "muốn", "sắp", "sẽ")


def _back_only_later(ws: list[Any], i: int) -> bool:
    later = i > 0 and any(matches(ws[i - 1], w) for w in _LATER)
    return later and matches(ws[i], "mới") and i + 1 < len(ws) and any(matches(ws[i + 1], w) for w in ("về", "dìa"))


# "tuần trước có đi Hải Phòng mấy hôm nhưng giờ về nhà rồi": what is true now is said last...
_NOW_AGAIN = re.compile(r"(?i)\b(?:nhưng|mà giờ|giờ thì|bây giờ|hiện giờ|hiện tại|giờ đã)\b")
# ...or first, before what came earlier: "mới về lại nhà hôm qua, trước đó vô Sài Gòn thăm con cả tháng".
_EARLIER = re.compile(r"(?i)\b(?:trước đó|hồi trước|lúc trước|trước đấy)\b")


def _staying(turn: Turn) -> bool | None:
    parts = _NOW_AGAIN.split(turn.text)
    if len(parts) > 1 and (now := _staying(replace(turn, text=parts[-1]))) is not None:
        return now
    parts = _EARLIER.split(turn.text)
    if len(parts) > 1 and (now := _staying(replace(turn, text=parts[0]))) is not None:
        return now
    if says(turn.text, _SLEEPS_AT_HOME) or says(turn.text, _RETURNED):
        return True
    return False if _stays_elsewhere(turn) else (True if says(turn.text, _AT_HOME) else None)


def answers_for_the_resident(turn: Turn) -> bool:
    """A relative answers for the resident (a parent for a child): not the wrong person, not a refusal."""
    return says(turn.text, _FOR_THE_RESIDENT)


def _a_case_told(turn: Turn) -> bool:
    """Asked about contact with a case, the resident tells of one: "vợ tôi dương tính", "chị ngồi cùng phòng em dương
    tính tuần trước" (a positive told, not asked, not denied: "trong nhà chưa ai dương hết" is no case)."""
    return vnparse.others_tested_positive(turn.text, turn.speaker) or vnparse.positive_told(turn.text)


def _denies_symptoms(turn: Turn) -> bool:
    mentions = vnparse.symptom_mentions(turn.text)
    return bool(mentions) and all(denied for _, denied in mentions)


# A resident who asks why, or says they answered already, has not refused: "sao hỏi hoài vậy?", "hôm trước khai rồi
# mà?". Only these words refuse: they are what a refusal says and a complaint does not.
_REFUSING = [
    split_phrase(p)
    for p in (
        "không muốn",
        "không khai",
        "không trả lời",
        "đừng gọi",
        "không cần gọi",
        "không hợp tác",
        "thôi khỏi",
        "khỏi hỏi",
        "không nói",
        *("xin miễn", "miễn đi", "miễn nha", "miễn nhé", "miễn hỏi", "miễn khai", "miễn trả lời"),  # not "miễn là"
        "cúp máy",
        *("dừng lại", "dừng đi", "dừng ngay"),  # a bare "dừng" sounds like "đừng" (don't)
        "stop",
    )
]
# A refusal says so, with a no or words of refusing: the classifier alone heard refusals in "rứa thì khai" (then I
# will answer) and "muốn hỏi chỗ chích cho ba má" (a question for the centre).
_REFUSAL_WORDS = [
    split_phrase(p)
    for p in (
        *("thôi", "khỏi", "phiền", "kệ", "lừa đảo", "đủ rồi", "không liên quan", "chặn", "block", "mệt", "bực"),
        *("từ chối", "xóa số", "cấm", "công an", "tự lo", "riêng tư", "bí mật", "quyền"),
    )
]


def _refuses(turn: Turn) -> bool:
    return says(turn.text, _REFUSING) or says(turn.text, _REFUSAL_WORDS) or yes_no(turn.text) is False


_ASKING_WHY = [
    split_phrase(p)
    for p in (
        *("sao hỏi", "sao phải", "tại sao", "vì sao", "làm gì", "để làm gì", "hỏi hoài", "hỏi mãi", "hỏi lắm"),
        *("rồi mà", "nói rồi", "khai rồi", "lại gọi", "gọi hoài", "gọi mãi", "gọi nữa", "hỏi nữa", "why", "lại hỏi"),
        *("nữa à", "nữa hả", "hoài vậy", "mãi thế", "mấy lần rồi", "bao nhiêu lần", "ngày nào cũng hỏi"),
    )
]


_QUESTION_WORDS = [
    split_phrase(p)
    for p in (
        *("sao", "gì", "nào", "đâu", "bao giờ", "bao lâu", "bao nhiêu", "mấy", "ai", "hả", "không ạ", "chưa ạ"),
        *("có phải", "là sao", "thế nào", "như nào", "ra sao", "được không", "có cần", "có mất", "ở đâu", "khi nào"),
        *("răng", "chi", "mô", "hông", "hem", "why", "what", "how", "where", "who", "cho hỏi", "muốn hỏi"),
    )
]


def reads_as_a_question(text: str) -> bool:
    """A question mark or a question's words ("xét nghiệm ở đâu", "ai gọi đấy", "cách ly mấy ngày")."""
    return "?" in text or says(text, _QUESTION_WORDS)


_QUESTION_CLAUSE = re.compile(r"[^,.;!?\n]*\?+")
_YES_NO_ASKED = [split_phrase(p) for p in ("không", "chưa", "hả", "à", "chứ")]  # "có phải cách ly không?"


# "ai mà gặp F0?", "có đi đâu đâu mà test?": a question that answers by asking back (a no), not a question asked.
_RHETORICAL = [split_phrase(p) for p in ("ai mà", "đâu mà", "mô mà", "gì đâu", "chi mô", "làm gì có", "răng mà")]


def _asked(clause: str) -> bool:
    if says(clause, _RHETORICAL):
        return False
    return says(clause, _QUESTION_WORDS) or says(clause, _YES_NO_ASKED)


def _without_questions(turn: Turn) -> Turn:
    """The turn without the questions it asks (clauses ending in "?" with a question's words), or the turn itself.
    "38 độ?" is an answer said doubtfully, and stays."""
    if "?" not in turn.text:
        return turn
    told = _QUESTION_CLAUSE.sub(lambda clause: "" if _asked(clause.group()) else clause.group(), turn.text)
    return turn if told == turn.text else replace(turn, text=told)


_CLAUSE = re.compile(r"[^,.;!?\n]+[,.;!?\n]*")


def _complains(clause: str) -> bool:
    return says(clause, _ASKING_WHY) or (clause.rstrip().endswith("?") and _asked(clause))


def after_a_complaint(question: str, turn: Turn) -> Turn | None:
    """What a message says beside its complaints, as a turn of its own, when it answers the question asked: "lại khai
    nữa à? khai bao nhiêu lần rồi còn khai. thôi được, hỏi đi", "hỏi chi dzậy? mà thôi hông có sốt", "tiêm 2 mũi rồi,
    hỏi làm gì nữa?". "sao hỏi hoài? hôm qua khai rồi mà" is all complaint: its "hôm qua" is no onset."""
    clauses = [(clause.group(), _complains(clause.group())) for clause in _CLAUSE.finditer(turn.text)]
    if not any(complaint for _, complaint in clauses):
        return None
    rest = "".join(clause for clause, complaint in clauses if not complaint).strip(" ,.;!?…")
    if not words(rest):
        return None
    told = replace(turn, text=rest, entities=[])
    return told if specific_answer(question, told) is not None else None


def told_with_a_complaint(question: str, turn: Turn) -> Turn | None:
    """The answer a complaint also gives, to read after explaining, or None: then the question is asked again. "trời
    ơi ngày nào cũng hỏi, không có sốt ho gì hết" answers; "sao hỏi hoài vậy?" does not."""
    if (rest := after_a_complaint(question, turn)) is not None:
        return rest
    answered = "?" not in turn.text and turn.intent != "emergency" and specific_answer(question, turn) is not None
    return turn if answered else None


def _asks_back(turn: Turn) -> bool:
    return "?" in turn.text and leading_yes_no(turn.text) is None


def is_complaint(turn: Turn) -> bool:
    """A question or complaint about being asked ("sao hỏi hoài vậy?", "hôm trước khai rồi mà"), which the classifier
    may take for a refusal: explain, and ask again."""
    if says(turn.text, _REFUSING):
        return False
    if turn.intent in ("refuse", "goodbye", "ask_identity") and "?" in turn.text:
        return True
    return says(turn.text, _ASKING_WHY) and ("?" in turn.text or turn.intent in ("refuse", "goodbye", "ask_identity"))


_CONSENTING = [split_phrase(p) for p in ("thì khai", "khai đi", "hỏi đi", "hỏi lẹ", "trả lời được", "cứ hỏi")]
_CONSENTING += [split_phrase(p) for p in ("hỏi nhanh", "thì hỏi", "thôi được", "thôi cũng được", "được thôi")]
_BYE = [split_phrase(p) for p in ("bye", "tạm biệt", "chào nhé", "cúp máy", "thôi nhé")]


def _plain_yes(requested: str | None, turn: Turn) -> bool:
    """A yes to who they are or to going on, whatever the classifier heard: "phải tui" (no "không" in it), "ừ thôi
    được, tôi không bị gì cả" (a yes first, then the answers)."""
    if says(turn.text, _WRONG_PERSON) or says(turn.text, _REFUSING) or says(turn.text, _BYE):
        return False
    if requested == "identity_confirmed":
        return leading_yes_no(turn.text) is True and yes_no(turn.text) is True
    consenting = says(turn.text, _CONSENTING) and yes_no(turn.text) is not False  # "rứa thì khai"
    return requested == "consent" and (leading_yes_no(turn.text) is True or consenting)


def _asks_a_call_back(turn: Turn, answered: bool) -> bool:
    """A time and words of calling back ("bận, chiều nay gọi lại") beside an answer to the question asked; busy words
    or a time when it got none. "hmm để xem" is thinking, "trưa nay" asked when the test was is the day, "đang đi Đà
    Lạt, tuần sau mới về" and "đang nằm viện dã chiến" say where they stay."""
    timed = bool(vnparse.find_times(turn.text))
    if answered:
        return timed and says(turn.text, _CALL_BACK)
    return timed or says(turn.text, _BUSY)


def _end_or_pause(requested: str | None, turn: Turn) -> dict[str, Any] | None:
    """The acts that stop the questions, whatever was asked. Words that answer the question asked are an answer,
    whatever the classifier heard: "không biết" or "ba ngày nay" is not a goodbye."""
    if answers_for_the_resident(turn):
        return None  # "tôi là bố nó": a relative answers, nobody refuses
    answered = requested in QUESTIONS and specific_answer(requested, turn, False) is not None
    if turn.intent == "busy" and not _asks_a_call_back(turn, answered):
        return None
    stopping = turn.intent in ("goodbye", "refuse", "wrong_person")
    # ...but a leading "không" is how refusals start: it does not count here.
    if stopping and requested in QUESTIONS and specific_answer(requested, turn, False) is not None:
        return None
    if stopping and _plain_yes(requested, turn):
        return None
    if vnparse.is_unknown_answer(turn.text) and turn.intent == "busy":
        return None
    if turn.intent == "wrong_person" and (requested == "identity_confirmed" or says(turn.text, _WRONG_PERSON)):
        return {"identity_confirmed": False, "outcome": "wrong_person"}
    if turn.intent == "refuse" and (_refuses(turn) or requested not in QUESTIONS):
        return {"outcome": "refused"}
    if turn.intent == "goodbye":
        return {"outcome": "ended_early"}
    if turn.intent == "busy":
        return {"outcome": "callback_requested", "callback_at": _callback(turn)}
    return None


def apply(slots: dict[str, Any], requested: str | None, turn: Turn) -> dict[str, Any]:
    """The slots after this turn."""
    updated = dict(slots)
    if (stop := _end_or_pause(requested, turn)) and requested is not None:
        updated.update(stop)
        return updated
    if requested == "callback_at":
        updated["callback_at"] = _callback(turn) or (turn.now + DEFAULT_CALLBACK_DELAY).isoformat()
        return updated
    if requested in QUESTIONS and (told := _without_questions(turn)) is not turn:
        if not words(told.text):
            return updated  # "có phải đi cách ly tập trung không ạ?": a question back, nothing told
        turn = told  # "em vẫn ở nhà, có phải cách ly không?": what is told, not what is asked
    if requested in QUESTIONS and _asks_back(turn) and specific_answer(requested, turn) is None:
        return updated  # "F0 là sao? ý là người bị dương tính hả?": a question back, not an answer
    if requested == "identity_confirmed":
        proxy = answers_for_the_resident(turn)
        updated["answered_by"] = "relative" if proxy else "resident"
        updated["resident_called"] = called_in(turn.text, proxy)
    for name, value in _volunteered(slots, requested, turn).items():
        if name == "symptoms" and requested == "vaccine_doses":
            continue  # "đến mũi hai thì bị sốt nên hoãn": a reaction to a dose told, not today's health
        if (name == "symptoms" and value) or updated.get(name) is None:
            updated[name] = value
    if requested in QUESTIONS:
        answer = answer_to(requested, turn, slots)
        if answer is not None:
            updated[requested] = merge_symptoms(slots.get("symptoms"), answer) if requested == "symptoms" else answer
    _imply_fever(updated)
    if updated.get("identity_confirmed") is False:
        updated["outcome"] = "wrong_person"
    elif updated.get("consent") is False:
        updated["outcome"] = "refused"
    return updated


def _imply_fever(slots: dict[str, Any]) -> None:
    temperature, symptoms = slots.get("temperature"), slots.get("symptoms")
    fever = isinstance(temperature, float) and temperature >= FEVER_FROM_C
    if fever and isinstance(symptoms, list) and "fever" not in symptoms:
        slots["symptoms"] = ["fever", *symptoms]


def _applies(question: str, slots: dict[str, Any]) -> bool:
    symptoms = slots.get("symptoms")
    if question == "temperature":
        return isinstance(symptoms, list) and "fever" in symptoms
    if question == "symptom_onset":
        return isinstance(symptoms, list) and bool(symptoms)
    if question == "test_date":
        return slots.get("test_result") in ("positive", "negative", "pending")
    if question == "staying_at":
        return bool(slots.get("ask_where"))
    return True


def next_question(slots: dict[str, Any]) -> str | None:
    """The next question to ask, or None when the conversation is over."""
    outcome = slots.get("outcome")
    if outcome in ENDING_OUTCOMES:
        return None
    if outcome == "callback_requested":
        return "callback_at" if slots.get("callback_at") is None else None
    return next((q for q in QUESTIONS if slots.get(q) is None and _applies(q, slots)), None)


def ask_next(slots: dict[str, Any]) -> dict[str, Any]:
    """The slots with the next question chosen (`requested_slot`) and counted. A question already asked twice is not
    asked a third time: it is recorded as unknown and the next one is asked. The second asking offers buttons
    (`reask_count` 1 selects those responses)."""
    updated = dict(slots)
    asked = dict(slots.get("asked") or {})
    while (question := next_question(updated)) is not None and asked.get(question, 0) >= MAX_ASKS:
        updated[question] = UNKNOWN
    if question is not None:
        asked[question] = asked.get(question, 0) + 1
    updated.update(asked=asked, reask_count=1 if question and asked[question] > 1 else None, requested_slot=question)
    if question == "vaccine_doses" and updated.get("recorded_doses") is not None:
        # On record: confirmed first, then counted (with buttons). Only one variation may match: the engine picks at
        # random among matching ones, and "Xin lỗi, tôi chưa rõ" does not answer a clear "không đúng".
        updated["dose_check"] = "confirm" if asked[question] == 1 else "count"
        updated["reask_count"] = None
    if question is None and updated.get("outcome") is None:
        updated["outcome"] = "complete"
    return updated


def new_urgent_symptoms(before: Any, turn: Turn) -> set[str]:
    """Urgent symptoms this turn names that were not known yet: they call for the emergency advice again."""
    known = set(before) if isinstance(before, list) else set()
    return (URGENT_SYMPTOMS & set(symptoms_in(turn))) - known


def needs_emergency_advice(before: dict[str, Any], after: dict[str, Any]) -> bool:
    symptoms = after.get("symptoms")
    urgent = isinstance(symptoms, list) and bool(URGENT_SYMPTOMS & set(symptoms))
    return urgent and not before.get("emergency")
