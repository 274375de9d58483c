"""The dialogue's answer logic without the engine: what one turn does to the declaration's slots."""

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot import answers, places
from bot.answers import UNKNOWN, Turn, apply, ask_next, next_question
from bot.vnparse import find_all

NOW = datetime(2021, 6, 3, 10, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
START = {name: None for name in answers.DIALOGUE_SLOTS} | {"identity_confirmed": True, "consent": True}


def turn(text: str, intent: str = "inform", entities=None) -> Turn:
    return Turn(text=text, intent=intent, entities=entities or [], now=NOW)


def test_one_utterance_fills_several_questions_and_they_are_skipped():
    slots = apply(START, "symptoms", turn("tôi sốt 38 độ 5 từ hôm qua, ho khan"))
    assert (slots["symptoms"], slots["temperature"], slots["symptom_onset"]) == (["fever", "cough"], 38.5, "2021-06-02")
    assert next_question(slots) == "contact_with_case"


def test_questions_that_do_not_apply_are_skipped():
    no_symptoms = apply(START, "symptoms", turn("không có triệu chứng gì", "feel_fine"))
    assert no_symptoms["symptoms"] == [] and next_question(no_symptoms) == "contact_with_case"
    cough_only = apply(START, "symptoms", turn("ho"))
    assert next_question(cough_only) == "symptom_onset", "no fever: no temperature question"
    untested = apply(START | {"symptoms": [], "contact_with_case": "no"}, "test_result", turn("chưa test"))
    assert untested["test_result"] == "not_tested" and next_question(untested) == "vaccine_doses"


def test_a_measured_fever_is_a_fever():
    slots = apply(START | {"symptoms": ["cough"]}, "temperature", turn("38"))
    assert slots["temperature"] == 38.0  # asked for, a bare number is the temperature
    fever = apply(START, "symptoms", turn("ho, đo được 38 độ 2"))
    assert fever["symptoms"] == ["fever", "cough"]


def test_not_understood_twice_moves_on_as_unknown():
    first = ask_next(START)
    assert first["requested_slot"] == "symptoms" and first["reask_count"] is None
    once = ask_next(apply(first, "symptoms", turn("ờm", "nlu_fallback")))
    assert once["symptoms"] is None and once["requested_slot"] == "symptoms" and once["reask_count"] == 1
    twice = ask_next(apply(once, "symptoms", turn("ờm", "nlu_fallback")))
    assert twice["symptoms"] == UNKNOWN and twice["reask_count"] is None
    assert twice["requested_slot"] == "contact_with_case"


def test_a_question_is_never_asked_a_third_time_whatever_came_between():
    slots = ask_next(START)
    for _ in range(2):  # asked, then the resident asks for a repeat: the question comes back once, with buttons
        assert slots["requested_slot"] == "symptoms"
        slots = ask_next(slots)
    assert slots["symptoms"] == UNKNOWN and slots["requested_slot"] == "contact_with_case"


def test_the_last_answer_completes_the_declaration():
    slots = START | {q: "unknown" for q in answers.QUESTIONS[2:-1]}
    done = ask_next(apply(ask_next(slots), "needs", turn("không cần gì", "deny")))
    assert done["requested_slot"] is None and done["outcome"] == "complete"


def test_yes_and_no_need_words_or_a_button():
    assert (
        apply(START | {"identity_confirmed": None}, "identity_confirmed", turn("asdfgh", "affirm"))[
            "identity_confirmed"
        ]
        is None
    ), "a confident classifier alone is not a yes"
    assert (
        apply(START | {"identity_confirmed": None}, "identity_confirmed", turn("/affirm", "affirm"))[
            "identity_confirmed"
        ]
        is True
    )
    contact = apply(START | {"symptoms": []}, "contact_with_case", turn("có, vợ tôi là F0", "ask_identity"))
    assert contact["contact_with_case"] == "yes"


def test_acts_that_end_or_pause_the_conversation():
    assert apply(START, "symptoms", turn("tôi không muốn khai", "refuse"))["outcome"] == "refused"
    wrong = apply(START | {"identity_confirmed": None}, "identity_confirmed", turn("nhầm số rồi", "wrong_person"))
    assert (wrong["outcome"], next_question(wrong)) == ("wrong_person", None)
    busy = apply(START, "symptoms", turn("bận, 5 giờ chiều gọi lại", "busy"))
    assert (busy["outcome"], busy["callback_at"]) == ("callback_requested", "2021-06-03T17:00:00+07:00")
    assert next_question(busy) is None
    asks_when = apply(START, "symptoms", turn("đang bận", "busy"))
    assert next_question(asks_when) == "callback_at"
    assert apply(asks_when, "callback_at", turn("ờ"))["callback_at"] == "2021-06-03T12:00:00+07:00", "default: +2 h"


def test_answers_are_not_taken_for_goodbyes_or_wrong_numbers():
    onset = apply(START | {"symptoms": ["cough"]}, "symptom_onset", turn("ba ngày nay", "wrong_person"))
    assert onset["symptom_onset"] == "2021-05-31" and onset["outcome"] is None
    needs = apply(START, "needs", turn("cần người đưa đi viện", "wrong_person"))
    assert needs["needs"] == "cần người đưa đi viện" and needs["outcome"] is None
    unknown = apply(START | {"symptoms": []}, "contact_with_case", turn("ko biết", "goodbye"))
    assert unknown["contact_with_case"] == "unknown" and unknown["outcome"] is None


def test_medicines_asked_for_are_not_symptoms_had():
    slots = apply(START | {"symptoms": []}, "needs", turn("tôi cần thuốc hạ sốt với thuốc ho"))
    assert slots["symptoms"] == [] and slots["needs"] == "tôi cần thuốc hạ sốt với thuốc ho"


def test_danger_signs_call_for_emergency_advice_once():
    slots = apply(START, "symptoms", turn("tôi bị tức ngực"))
    assert answers.needs_emergency_advice(START, slots)
    assert not answers.needs_emergency_advice(slots | {"emergency": True}, slots)


def test_a_long_hostile_message_is_read_quickly():
    """The engine reads each turn on its event loop: a 1,000-character message (the web chat's limit) of words that
    start many phrases once took 6 s of CPU, stalling every other conversation. Each pattern gets its own text so
    nothing read before helps. This thread's CPU time, not wall time: another process, or another thread of a test
    worker (a server left from an earlier test), is not this test's cost."""
    places.load()  # the engine loads the administrative units at start
    hostile = ["a ", "1 ", "vợ tôi bị ho ", "à nhầm 3 ", "phường 1 quận 3 ", "hôm qua ", "anh ấy ở bệnh viện "]
    for n, pattern in enumerate(hostile):
        text = (pattern * 1000)[:999] + str(n)
        slowest = 0.0
        for question in ["identity_confirmed", "symptoms", "vaccine_doses", "staying_at", None]:
            started = time.thread_time()
            apply(START, question, turn(text))
            slowest = max(slowest, time.thread_time() - started)
        started = time.thread_time()
        find_all(text)  # the engine's NLU marks the same text's entities
        slowest = max(slowest, time.thread_time() - started)
        # An idle machine reads the worst of these in 0.3 to 0.8 s; two test workers sharing its two cores make that
        # up to 1.1 s. The blow-up this guards against took 6 s.
        assert slowest < 2.0, f"{pattern!r} x 1000 characters took {slowest:.2f} s"


def test_a_plain_yes_is_a_yes_whatever_the_classifier_heard():
    assert apply({}, "identity_confirmed", turn("phải tui", "wrong_person"))["identity_confirmed"] is True
    assert apply({}, "identity_confirmed", turn("dạ không phải", "wrong_person"))["outcome"] == "wrong_person"
    assert apply({}, "identity_confirmed", turn("ừ, sai người rồi", "wrong_person"))["outcome"] == "wrong_person"
    consent = apply({}, "consent", turn("ừ thôi được, tôi không bị gì cả", "goodbye"))
    assert consent["consent"] is True and "outcome" not in consent
    assert apply({}, "consent", turn("ok bye", "goodbye"))["outcome"] == "ended_early"
    assert apply({}, "consent", turn("Dạ thôi, em không muốn khai đâu", "refuse"))["outcome"] == "refused"


def test_at_home_said_with_a_no_in_it():
    assert apply(START, "at_registered_address", turn("vẫn ở nhà ko đi đâu", "deny"))["at_registered_address"] is True
    assert apply(START, "at_registered_address", turn("không, em về quê rồi", "deny"))["at_registered_address"] is False
    assert apply(START, "at_registered_address", turn("không có ở nhà", "deny"))["at_registered_address"] is False


def test_no_dose_at_all():
    assert apply(START, "vaccine_doses", turn("không mũi nào, chị bị bệnh nền nên không tiêm"))["vaccine_doses"] == 0
    assert apply(START, "vaccine_doses", turn("zero, em chưa tiêm mũi nào vì allergy"))["vaccine_doses"] == 0


def test_a_day_asked_for_is_an_answer_not_a_call_back():
    slots = apply(START, "test_date", turn("trưa nay", "busy"))
    assert slots["test_date"] == "2021-06-03" and slots["outcome"] is None
    assert apply(START, "test_date", turn("bận, chiều nay gọi lại", "busy"))["outcome"] == "callback_requested"
    pending = apply(START, "test_result", turn("mẫu gửi đi rồi, họ hẹn mai trả"))
    assert pending["test_result"] == "pending" and pending["test_date"] is None  # tomorrow is not when it was taken


def test_a_leading_no_is_the_answer_even_when_something_else_is_unknown():
    said = "không, chỉ có ông hàng xóm bị sốt thôi, chưa biết có covid không"
    assert apply(START, "contact_with_case", turn(said, "deny"))["contact_with_case"] == "no"
    assert apply(START, "contact_with_case", turn("không biết", "deny"))["contact_with_case"] == "unknown"
    assert apply(START, "at_registered_address", turn("lúc ở lúc không", "deny"))["at_registered_address"] == UNKNOWN


@pytest.mark.parametrize(
    ("question", "text", "intent", "expected"),
    [
        # found by an adversarial review of the parser: each was wrong once
        ("test_result", "vo duong tinh, toi am tinh", "inform", "negative"),  # a wife typed bare is still a wife
        ("test_result", "không gặp ai hết, mà test nhanh dương tính", "inform", "positive"),  # anyone ends at the comma
        ("test_result", "Chị Hoa đây, chị test dương tính rồi", "inform", "positive"),  # she introduces herself
        ("test_result", "Kết quả: Dương", "inform", "positive"),
        ("test_result", "em đang ở Bình Dương, tính tuần sau mới về", "inform", None),  # a province
        ("temperature", "39 do, y toi la 38 do", "inform", 38.0),  # "ý tôi là" typed bare corrects
        ("contact_with_case", "dạ không ạ", "deny", "no"),  # "dạ" is politeness, the "không" answers
        ("contact_with_case", "dạ thưa không ạ", "deny", "no"),
        ("test_result", "em chưa có làm xét nghiệm", "ask_testing", "not_tested"),
        ("test_result", "xét nghiệm ở đâu? có mất tiền không?", "ask_testing", None),  # a question, not a "không"
        ("contact_with_case", "có thể có, em không chắc nữa", "inform", "unknown"),
        ("contact_with_case", "trưa qua có ngồi ăn với ông hàng xóm bị F0", "inform", "yes"),  # "trưa" is not "chưa"
        ("identity_confirmed", "Dạ, lộn số rồi anh ơi", "wrong_person", False),
        ("symptoms", "tui hông có đau chỗ nào đâu, ngực cũng không tức", "deny", []),  # "đâu, ngực" is no chest pain
        ("symptoms", "không biết vì sao dạo này hay mệt", "inform", ["fatigue"]),
        ("vaccine_doses", "mũi 1 tháng 7, mũi 2 tháng 9, chưa tiêm mũi 3", "inform", 2),
        ("vaccine_doses", "tiêm 1 mũi Sinopharm Vero Cell", "inform", 1),
        ("vaccine_doses", "tiêm 1 mũi hồi 20/7, còn test thì ngày 3/3 âm tính", "inform", 1),
    ],
)
def test_review_findings(question, text, intent, expected):
    assert apply(START, question, turn(text, intent))[question] == expected


@pytest.mark.parametrize(
    ("text", "staying"),
    [
        ("em qua nhà chị gái ở quận 7 mấy hôm nay rồi", False),  # someone else's home
        ("vẫn ở nhà, à không, em đang ở nhà mẹ đẻ bên Gia Lâm", False),
        ("tui dọn qua nhà ba má ở Biên Hòa rồi, giờ là Đồng Nai đó", False),
        ("tôi đang ở khu cách ly tập trung ở ký túc xá khu B", False),
        ("dạ em ở nhà với mẹ", True),  # at home, with her mother
        ("ở nhà mình thôi", True),
    ],
)
def test_a_home_that_is_someone_elses_is_not_the_registered_address(text, staying):
    assert apply(START, "at_registered_address", turn(text))["at_registered_address"] is staying


@pytest.mark.parametrize(
    "text",
    [
        "tôi là con gái bà Ánh, bà nghe không rõ nên tôi trả lời giúp",  # the classifier hears "say again"
        "cháu là cháu nội ông, ông không biết dùng điện thoại nên cháu nhắn giúp",
        "tôi là bố cháu, tôi trả lời giúp cháu nhé",
    ],
)
def test_a_relative_says_who_they_are_to_the_resident(text):
    slots = apply({**START, "identity_confirmed": None}, "identity_confirmed", turn(text, "repeat"))
    assert slots["identity_confirmed"] is True and slots["answered_by"] == "relative"
    assert answers.specific_answer("identity_confirmed", turn(text, "repeat")) is True  # the form does not step aside


def test_a_title_and_a_name_are_the_resident_not_a_relative():
    slots = apply({**START, "identity_confirmed": None}, "identity_confirmed", turn("dạ tôi là chị Lan đây", "affirm"))
    assert slots["answered_by"] == "resident"


def test_a_correction_said_last_does_not_undo_the_one_before_it():
    assert (
        apply(START, "contact_with_case", turn("có, à không, không có, em nhầm", "deny"))["contact_with_case"] == "no"
    )
    assert apply(START, "contact_with_case", turn("không, à nhầm, có", "affirm"))["contact_with_case"] == "yes"


def test_results_in_a_labs_words_and_in_the_testers_mouths():
    assert apply(START, "test_result", turn("giấy kết quả ghi là không phát hiện", "ask_testing"))["test_result"] == (
        "negative"
    )
    assert apply(START, "test_result", turn("họ gọi báo là âm tính"))["test_result"] == "negative"
    said = "có, bạn cùng công ty dương tính"  # a colleague's result: contact with a case, not the resident's
    slots = apply(START, "contact_with_case", turn(said))
    assert slots["contact_with_case"] == "yes" and slots["test_result"] is None


@pytest.mark.parametrize(
    ("question", "text", "intent", "expected"),
    [
        # found on the fourth development set (written blind): each was wrong once
        ("identity_confirmed", "dạ fải, chang đây", "wrong_person", True),  # "Trang đây" typed "chang": not "chẳng"
        ("consent", "dc e, hõi lẹ đj", "repeat", True),  # ok, ask away: not "say again"
        ("needs", "em cần được xét nghiệm", "ask_testing", "em cần được xét nghiệm"),  # its "được" is no yes
        ("needs", "dạ cho em xin ít kit test nhanh", "ask_testing", "dạ cho em xin ít kit test nhanh"),
        ("contact_with_case", "F0 là sao? ý là người bị dương tính hả?", "inform", None),  # asked, not told
        ("vaccine_doses", "tiêm lần một, lần hai ở bệnh viện, thêm lần nhắc nữa là đủ", "inform", 3),
        ("symptom_onset", "ba ngày nây", "inform", "2021-05-31"),
        ("symptoms", "em bị hồ với mệt mỏi", "inform", ["cough", "fatigue"]),  # "bị hồ": a cough, not a lake
        ("symptoms", "rát cổ, mũi thì chảy nước suốt", "inform", ["sore_throat", "runny_nose"]),
        # ...and on the fifth
        ("contact_with_case", "anh tổ trưởng ở xưởng dương tính, hôm trước ăn cơm chung", "inform", "yes"),
        ("test_result", "cháu nội tôi test dương tính hôm kia", "inform", None),  # the grandchild's result
        ("at_registered_address", "anh ấy ở bệnh viện, còn tôi vẫn ở nhà", "wrong_person", True),  # his hospital
        (
            "at_registered_address",
            "vẫn ở nhà, à quên, từ hôm qua em sang ở với mẹ đẻ bên kia sông rồi",
            "inform",
            False,
        ),
        ("at_registered_address", "đang nằm viện dã chiến số 2 rồi", "busy", False),
        ("symptoms", "tui ho với nhức cái đầu, từ hôm qua tới chừ", "inform", ["cough", "headache"]),
        ("test_result", "chưa có result, lấy mẫu sáng nay", "inform", "pending"),
        ("identity_confirmed", "bà là bà nội của cháu Thìn, bố mẹ nó đi làm cả nên bà trả lời", "refuse", True),
    ],
)
def test_development_set_findings(question, text, intent, expected):
    assert apply({**START, question: None}, question, turn(text, intent))[question] == expected


@pytest.mark.parametrize(
    ("question", "text", "intent", "expected"),
    [
        # classes of failure found on the sixth to eighth development sets (written blind), each with new words
        ("contact_with_case", "có gặp ai đâu", "affirm", "no"),  # "có ... đâu" asks "where?": a no
        ("contact_with_case", "mô có, tui ở nhà suốt", "affirm", "no"),  # Central "mô có": not at all
        ("contact_with_case", "dạ bà không gặp ai hết", "affirm", "no"),  # politeness, then a no
        ("contact_with_case", "anh ngồi cạnh em ở công ty dương tính hôm thứ hai", "inform", "yes"),  # he, not I
        ("contact_with_case", "không, trong xóm chưa ai dương hết", "inform", "no"),
        ("at_registered_address", "vẫn ở đó, có chuyển đi đâu", "inform", True),  # "có ... đâu": did not move
        ("at_registered_address", "sáng đi làm, tối về nhà ngủ", "inform", True),  # where they sleep
        ("at_registered_address", "tuần trước tui ra Hà Nội ở với con trai rồi", "inform", False),
        ("at_registered_address", "thế em có phải đi khu cách ly không ạ?", "ask_quarantine", None),  # asked
        ("at_registered_address", "em vẫn ở nhà, có phải đi cách ly không?", "ask_quarantine", True),
        ("symptoms", "trời ơi ngày nào cũng hỏi, không có sốt ho gì hết", "goodbye", []),  # a complaint, answered
        ("symptoms", "dạ không có dấu hiệu gì", "repeat", []),
        ("symptoms", "no cough, no headache, khỏe", "inform", []),  # English "no" denies
        ("symptoms", "hổng sốt, chỉ ho sơ sơ à", "inform", ["cough"]),  # "ho sơ sơ": slight cough, not "hồ sơ"
        ("symptoms", "ông xã chị sổ mũi, còn chị thì đau đầu", "inform", ["headache"]),  # "còn chị": the speaker
        ("symptoms", "em hơi mệt, thằng cu nhà em thì đau bụng đi ngoài", "inform", ["fatigue"]),
        ("symptoms", "mỏi hết cả người", "inform", ["body_ache"]),
        ("symptom_onset", "từ trưa", "inform", "2021-06-03"),
        ("test_result", "từ hồi dịch tới giờ chưa ai chọc mũi tui", "inform", "not_tested"),
        ("vaccine_doses", "tiêm đủ rồi, đợt 1 hồi tháng 7, xong đợt 2 tháng 10", "inform", 2),
        ("vaccine_doses", "tiêm3mũi", "inform", 3),  # a number glued to the words
        ("consent", "hỏi thì hỏi", "refuse", True),  # granted by saying it twice
        ("needs", "khỏi, cảm ơn em", "goodbye", ""),  # the last question: a goodbye needs nothing
        ("identity_confirmed", "d9u1ng ro62i", "nlu_fallback", True),  # VNI keys left in: "đúng rồi"
        ("consent", "vậy thì khai", "refuse", True),
        ("at_registered_address", "có đi đâu được đâu, ở nhà suốt", "inform", True),  # going nowhere: at home
        ("at_registered_address", "đang đi du lịch Phú Quốc, tuần sau mới về", "busy", False),
        ("needs", "muốn hỏi chỗ tiêm cho bố mẹ", "refuse", "muốn hỏi chỗ tiêm cho bố mẹ"),  # a need, not a refusal
    ],
)
def test_sixth_to_eighth_development_set_findings(question, text, intent, expected):
    assert apply({**START, question: None}, question, turn(text, intent))[question] == expected


@pytest.mark.parametrize(
    ("question", "text", "intent", "expected"),
    [
        # classes of failure found on the ninth to eleventh development sets (written blind), each with new words
        ("test_date", "lấy mẫu bữa 28", "inform", "2021-05-28"),  # "hôm/bữa" and digits: a day of the month
        ("symptom_onset", "dạ từ mùng hai ạ", "inform", "2021-06-02"),
        ("test_result", "chiều nay họ mới gọi báo", "ask_testing", "pending"),  # not yet told
        ("test_result", "ra trạm họ test cho tôi sáng nay, âm tính", "inform", "negative"),  # the testers' clause ends
        ("test_result", "anh tôi dương tính còn tôi thì âm tính", "inform", "negative"),
        ("vaccine_doses", "tiêm một mũi rồi nghỉ đẻ, xong mới tiêm nốt mũi hai", "inform", 2),  # the dose reached
        ("vaccine_doses", "tiêm hai lần với nhau, lần thứ ba thì hoãn vì huyết áp cao", "inform", 2),
        ("at_registered_address", "hồi tuần trước có về quê nhưng giờ lên lại rồi, ở nhà", "inform", True),
        ("at_registered_address", "dạ em đang ở khu cách ly tập trung, hổng có ở nhà", "inform", False),
        ("symptoms", "họng tui hơi rát", "inform", ["sore_throat"]),  # the body part, the resident's, then how
        ("symptoms", "nhức trốc quá", "inform", ["headache"]),  # Nghệ Tĩnh "trốc": the head
        ("symptoms", "mấy người cùng phòng ho quá trời, tôi thì vẫn khỏe", "inform", []),
        ("contact_with_case", "nỏ có ai", "affirm", "no"),  # Nghệ Tĩnh "nỏ": không
        # ...and what the first of those changes broke on the older sets, mended
        ("symptoms", "em ho khan, ông xã em thì sốt", "inform", ["cough"]),  # "em ho" is no "em họ" (a cousin)
        ("symptoms", "khôn ho chi cả, mà ăn khôn thấy mùi chi hết", "inform", ["loss_of_taste_or_smell"]),
        ("at_registered_address", "vẫn ở Tam Kỳ, giờ nhập về Đà Nẵng rồi", "inform", True),  # merged, not moved
        ("vaccine_doses", "tiêm tháng 7 năm 2021, rồi tháng 3 năm sau", "inform", None),  # years are no doses
    ],
)
def test_ninth_to_eleventh_development_set_findings(question, text, intent, expected):
    assert apply({**START, question: None}, question, turn(text, intent))[question] == expected


def test_a_day_told_with_the_temperature_is_when_it_was_measured_not_the_onset():
    slots = apply({**START, "symptoms": ["fever"]}, "temperature", turn("đo hồi sáng 38 độ 1"))
    assert slots["temperature"] == 38.1 and slots["symptom_onset"] is None and next_question(slots) == "symptom_onset"


def test_a_positive_told_of_the_case_is_not_the_residents_result():
    slots = apply(START, "contact_with_case", turn("có, em dâu tôi dương tính tuần trước"))
    assert slots["contact_with_case"] == "yes" and slots["test_result"] is None
    told_unasked = apply(START, "symptoms", turn("không sao, nhưng vợ tôi dương tính"))
    assert told_unasked["test_result"] is None and told_unasked["contact_with_case"] == "yes"


def test_consent_with_a_healthy_answer_skips_the_symptom_question():
    slots = apply({**START, "consent": None}, "consent", turn("dạ được, không có triệu chứng gì", "feel_fine"))
    assert slots["consent"] is True and slots["symptoms"] == [] and next_question(slots) == "contact_with_case"
    go_on = apply({**START, "consent": None}, "consent", turn("ok fine", "feel_fine"))  # only "go on"
    assert go_on["consent"] is True and go_on["symptoms"] is None and next_question(go_on) == "symptoms"


def test_a_refusal_needs_words_of_refusing_not_only_the_classifiers_guess():
    misheard = apply(START, "test_result", turn("dương tín", "refuse"))
    assert misheard["outcome"] is None and misheard["test_result"] == "positive"
    for said in ("tôi từ chối trả lời", "thôi khỏi hỏi", "không khai đâu", "gọi nữa tôi báo công an"):
        assert apply(START, "symptoms", turn(said, "refuse"))["outcome"] == "refused", said
    unanswered = apply(START, "symptoms", turn("ờ thì để coi", "refuse"))
    assert unanswered["outcome"] is None and unanswered["symptoms"] is None  # asked again, with buttons


def test_a_trip_told_with_its_return_day_is_an_answer_not_a_call_back():
    slots = apply(START, "at_registered_address", turn("em đang đi Đà Lạt, tuần sau mới về", "busy"))
    assert slots["at_registered_address"] is False and slots["outcome"] is None
    busy = apply(START, "symptoms", turn("không sao, đang họp, 30 phút nữa gọi lại nhé", "busy"))
    assert busy["outcome"] == "callback_requested"


def test_only_is_not_her_when_a_relative_answers():
    slots = apply({**START, "answered_by": "relative"}, "symptoms", Turn("bà chỉ ho khan thôi", "inform", proxy=True))
    assert slots["symptoms"] == ["cough"]  # "chỉ" is "only" here, not Southern "she"


@pytest.mark.parametrize("text", ["thứ ²", "5 giờ ²", "39 độ ²", "٣٨ độ", "\u200b", "🙂🙂", "...", ""])
def test_odd_digits_and_marks_never_crash(text):
    for question in [*answers.QUESTIONS, None]:
        apply(START, question, turn(text))


def test_doses_on_record_are_confirmed_and_a_no_asks_for_the_number():
    before = START | {"symptoms": [], "contact_with_case": "no", "test_result": "not_tested", "recorded_doses": 2}
    asked = ask_next(before)
    assert (asked["requested_slot"], asked["dose_check"], asked["reask_count"]) == ("vaccine_doses", "confirm", None)
    assert apply(asked, "vaccine_doses", turn("đúng rồi em", "affirm"))["vaccine_doses"] == 2
    assert apply(asked, "vaccine_doses", turn("/affirm", "affirm"))["vaccine_doses"] == 2, "the button"
    assert apply(asked, "vaccine_doses", turn("không, tiêm 3 mũi rồi", "deny"))["vaccine_doses"] == 3
    denied = apply(asked, "vaccine_doses", turn("không đúng", "deny"))
    assert denied["vaccine_doses"] is None, "a no to the record is not zero doses"
    again = ask_next(denied)
    assert (again["requested_slot"], again["dose_check"]) == ("vaccine_doses", "count")
    assert again["reask_count"] is None, "one variation only: 'không đúng' was understood, no 'xin lỗi'"
    assert again["asked"]["vaccine_doses"] == 2
    assert ask_next(again)["vaccine_doses"] == UNKNOWN, "never a third time"
    assert apply(again, "vaccine_doses", turn("không", "deny"))["vaccine_doses"] == 0, "asked the number: none"
    nothing_on_record = ask_next(before | {"recorded_doses": None})
    assert nothing_on_record["dose_check"] is None


@pytest.mark.parametrize(
    ("question", "text", "intent", "expected"),
    [
        ("consent", "lại khai nữa à? khai bao nhiêu lần rồi còn khai. thôi được, hỏi đi", "refuse", True),
        ("symptoms", "hỏi chi dzậy? mà thôi hông có sốt", "ask_identity", []),
        ("symptoms", "khai mấy lần rồi? ừ thì ho khan", "refuse", ["cough"]),
        ("vaccine_doses", "sao cứ phải hỏi mãi thế? hai mũi", "refuse", 2),
        ("vaccine_doses", "ba mũi rồi, hỏi làm gì nữa?", "refuse", 3),  # the answer first, then the complaint
        ("symptoms", "vẫn khỏe, mà sao tuần nào cũng gọi vậy?", "refuse", []),
        ("consent", "sao lại gọi nữa, hôm kia khai rồi. thôi cũng được", "refuse", True),
    ],
)
def test_a_complaint_then_the_answer_is_explained_and_the_answer_taken(question, text, intent, expected):
    told = answers.told_with_a_complaint(question, turn(text, intent))
    assert answers.is_complaint(turn(text, intent)) and told is not None
    assert apply({**START, question: None}, question, told)[question] == expected


@pytest.mark.parametrize(
    ("question", "text"),
    [
        ("symptom_onset", "sao hỏi hoài? hôm qua khai rồi mà"),  # all complaint: "hôm qua" is when they answered
        ("symptoms", "sao hỏi hoài vậy?"),
        ("consent", "lại gọi nữa à? ngày nào cũng hỏi"),
    ],
)
def test_a_complaint_alone_is_asked_again(question, text):
    assert answers.is_complaint(turn(text, "refuse")) and answers.told_with_a_complaint(question, turn(text)) is None


@pytest.mark.parametrize(
    ("question", "text", "intent", "expected"),
    [
        # classes of failure found on the twelfth to fourteenth development sets (written blind), each with new words
        ("test_result", "trạm lấy mẫu rồi, họ báo là không có chi", "inform", "negative"),  # told nothing was found
        ("test_result", "phường test cho em, họ nói em không dính", "inform", "negative"),
        ("test_result", "quẹt mũi hồi trưa, tối mới có", "inform", "pending"),  # the result comes later
        ("test_result", "lấy mẫu bữa qua mà trạm chưa nhắn", "inform", "pending"),
        ("test_result", "self test sáng nay, 1 line thôi", "inform", "negative"),
        ("test_result", "not tested", "inform", "not_tested"),
        ("symptom_onset", "since Monday", "inform", "2021-05-31"),  # NOW is Thursday 3 June 2021
        ("vaccine_doses", "Pfizer hai lần, rồi Moderna một lần", "inform", 3),  # counts in a story add up
        ("vaccine_doses", "tiêm một mũi ở phường, về quê tiêm thêm một", "inform", 2),
        ("vaccine_doses", "mũi thứ ba hẹn tháng sau", "inform", 2),  # the dose awaited is not given yet
        ("vaccine_doses", "vợ tiêm 3, tôi mới được 1", "inform", 1),  # a bare count of someone else's is theirs
        ("at_registered_address", "đang ra khơi, mốt mới vô bờ", "inform", False),  # at sea
        ("at_registered_address", "em dọn vào ký túc xá trường rồi", "inform", False),
        ("at_registered_address", "em vẫn ở ký túc xá như khai ạ", "inform", True),  # the dorm is the address
        ("at_registered_address", "chưa về quê đâu, vẫn ở trọ", "inform", True),  # a no to moving is staying
        ("at_registered_address", "hôm qua về lại nhà rồi, trước đó ra Hà Nội chơi", "inform", True),  # now, then
        ("symptoms", "cổ rát quá", "inform", ["sore_throat"]),
        ("symptoms", "người mệt, đầu nhức", "inform", ["fatigue", "headache"]),
        ("symptoms", "lúc đầu nhức mỏi chút thôi", "inform", ["body_ache"]),  # "lúc đầu": at first, not the head
        ("symptoms", "tui thì khỏe, bọ tui thì ho", "inform", []),  # Central "bọ": father
        ("consent", "ok, miễn đừng hỏi mật khẩu là được", "refuse", True),  # "miễn ... là được": as long as
        ("symptoms", "không thấy gì khác lạ", "refuse", []),  # nothing unusual: no symptoms, no refusal
        ("at_registered_address", "ở nhà chứ, tính ra Huế mà chưa được đi", "inform", True),  # a move only meant
        ("at_registered_address", "cả tuần nay chưa bước chân ra khỏi cổng", "inform", True),
        ("vaccine_doses", "tiêm hai mũi rồi, định đi mũi ba thì bị ốm phải dời lại", "inform", 2),
        ("contact_with_case", "ngoài đồng có một mình, gặp ai đâu", "inform", "no"),
        # questions that answer by asking back: the class "a question is not a refusal", seen from the other side
        ("symptoms", "ho đâu mà ho", "inform", []),
        ("symptoms", "hơi xốt, đâu họng", "inform", ["fever", "sore_throat"]),  # misspelt "đau" after a comma
        ("symptoms", "mệt mỏi gì đâu", "inform", []),
        ("contact_with_case", "ai mà tiếp xúc F0?", "ask_quarantine", "no"),
        ("test_result", "có ra khỏi nhà đâu mà xét nghiệm?", "inform", "not_tested"),
        ("consent", "hỏi gì thì hỏi nhanh lên", "refuse", True),
        # ...and from the fifteenth to seventeenth sets, after they were scored on arrival
        ("consent", "ừa", "affirm", True),  # Southern yes
        ("symptoms", "hổng có bịnh gì, chỉ sốt ruột chuyện làm ăn", "ask_quarantine", []),
        ("symptoms", "nuốt nước bọt thấy rát trong cổ", "inform", ["sore_throat"]),
        ("contact_with_case", "đi chợ đông thế, ai ốm ai không tôi đâu có biết", "inform", "unknown"),
        ("contact_with_case", "không... à khoan, có, anh ngồi cạnh tôi báo F0 rồi", "inform", "yes"),
        ("test_result", "muốn đi xét nghiệm mà chưa biết đi đâu", "inform", "not_tested"),
        ("vaccine_doses", "2 mũi Astra cộng mũi nhắc là 3", "inform", 3),  # the total the resident made
        ("vaccine_doses", "tiêm 2 mũi, vợ là 3", "inform", 2),
        ("vaccine_doses", "một mũi, đến lịch mũi hai thì đi công tác nên lỡ", "inform", 1),
        ("at_registered_address", "bị chuyển vào khách sạn cách ly từ tối qua", "inform", False),
        ("at_registered_address", "tuần trước ra Hải Phòng ăn cưới, mà hôm qua về lại nhà rồi", "inform", True),
        ("at_registered_address", "tôi vẫn ở tại nhà riêng như đã đăng ký", "inform", True),
        # ...and what those changes broke on the older sets, mended
        ("at_registered_address", "vẫn ở nhà, đang self-quarantine", "inform", True),  # quarantined at home
        ("symptoms", "hoi dau hong voi so mui", "inform", ["sore_throat", "runny_nose"]),  # "hoi dau": no "hồi đầu"
        ("symptoms", "met moi, dau nhuc ng", "inform", ["fatigue", "body_ache"]),  # "dau" after a comma is đau
        ("test_result", "nó test ra dương tính, còn em âm tính", "inform", "negative"),  # "nó test": no "no test"
        ("consent", "đcc", "nlu_fallback", True),  # "đc" with its last letter held down
    ],
)
def test_twelfth_to_fourteenth_development_set_findings(question, text, intent, expected):
    assert apply({**START, question: None}, question, turn(text, intent))[question] == expected


@pytest.mark.parametrize(
    ("text", "name"),
    [("Hà đây", "Nguyễn Thị Hà"), ("dạ, Hà nghe", "Nguyễn Thị Hà"), ("em là Hà", "Nguyễn Thị Hà"), ("ha day", "Lê Hà")],
)
def test_the_resident_saying_their_own_name_is_who_was_asked_for(text, name):
    slots = apply({**START, "identity_confirmed": None}, "identity_confirmed", Turn(text, "greet", greeted=name))
    assert slots["identity_confirmed"] is True


def test_a_name_in_a_no_or_a_call_back_is_not_a_yes():
    no = Turn("không phải Hà đây", "deny", greeted="Nguyễn Thị Hà")
    assert apply({**START, "identity_confirmed": None}, "identity_confirmed", no)["identity_confirmed"] is False
    later = Turn("gọi lại mai nhé", "busy", greeted="Trần Thị Mai")  # "mai": tomorrow
    assert apply({**START, "identity_confirmed": None}, "identity_confirmed", later)["identity_confirmed"] is None
    assert answers.specific_answer("identity_confirmed", Turn("tui nè", "affirm")) is True


def _conversation(*turns: tuple[str, str]) -> dict:
    slots = {name: None for name in answers.DIALOGUE_SLOTS}
    for question, text in turns:
        speaker = {"proxy": slots.get("answered_by") == "relative", "called": slots.get("resident_called")}
        slots = apply(slots, question, Turn(text, "inform", now=NOW, **speaker))
    return slots


def test_the_word_a_relative_calls_the_resident_by_tells_them_from_other_relatives():
    slots = _conversation(
        ("identity_confirmed", "bố đi làm đồng rồi, tôi là con gái, tôi trả lời giúp bố"),
        ("consent", "vâng"),
        ("symptoms", "bố không ho. mẹ thì ho"),
    )
    assert (slots["answered_by"], slots["resident_called"], slots["symptoms"]) == ("relative", "bố", [])
    grandmother = _conversation(
        ("identity_confirmed", "đúng số mẹ tôi, tôi là con trai, mẹ tôi đang ngủ, tôi khai hộ"),
        ("consent", "ừ"),
        ("symptoms", "bà bị ho từ tối qua"),  # the son calls his mother "bà", as his children do
    )
    assert grandmother["symptoms"] == ["cough"]


def test_a_relative_setting_themself_or_another_apart_is_not_the_resident():
    slots = _conversation(
        ("identity_confirmed", "tôi là chồng chị ấy, chị ấy đi chợ, tôi nghe giúp"),
        ("consent", "được"),
        ("symptoms", "chị ấy hơi đau đầu, còn tôi thì ho"),
    )
    assert slots["symptoms"] == ["headache"]
    by_a_wife = _conversation(
        ("identity_confirmed", "tui là vợ ảnh, ảnh đi làm, tui trả lời giùm"),
        ("consent", "ừ"),
        ("symptoms", "ảnh hơi mệt, còn con gái tui thì sốt"),
    )
    assert by_a_wife["symptoms"] == ["fatigue"]


def test_the_word_the_resident_calls_themself_is_the_resident():
    slots = _conversation(
        ("identity_confirmed", "ừ ông đây"),
        ("consent", "được"),
        ("at_registered_address", "ông đang ở nhà con trai dưới Sài Gòn"),
    )
    assert (slots["resident_called"], slots["at_registered_address"]) == ("ông", False)
    husband = _conversation(("identity_confirmed", "bà đây"), ("consent", "ừ"), ("symptoms", "bà khỏe, ông nhà bà ho"))
    assert husband["symptoms"] == []
