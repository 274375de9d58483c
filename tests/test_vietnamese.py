"""Vietnamese as residents type and speak it: normalisation, numbers, days, symptoms (pure helpers in bot/)."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.vnparse import find_all, find_doses, find_symptoms, find_temperatures, find_test_results, find_times
from bot.vnscope import Speaker
from bot.vntext import canonical, canonical_tones, fold, leading_yes_no, words, yes_no

NOW = datetime(2021, 6, 3, 10, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))  # a Thursday


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("hoà", "hòa"),
        ("khoẻ", "khỏe"),
        ("thuỷ", "thủy"),
        ("quý", "quý"),
        ("người", "người"),
        ("HOÀ", "hòa"),
        ("Ðược", "được"),
    ],
)
def test_both_tone_placements_and_lookalikes_become_one_form(typed, expected):
    assert canonical_tones(typed.lower()) == expected or canonical(typed) == expected


def test_decomposed_unicode_reads_like_composed():
    decomposed = "kho\u0302ng co\u0301"
    assert canonical(decomposed) == canonical("không có") == "không có"


def test_teencode_expands_per_whole_word_only():
    assert canonical("ko dc j dau") == "không được gì dau"
    assert canonical("50k") == "50k" and canonical("50 k")[-1] == "k", "k after a number is a thousand"


def test_words_keep_offsets_into_the_typed_text():
    text = "Tôi sốt 38,5 độ"
    assert [(w.text, text[w.start : w.end]) for w in words(text)] == [
        ("Tôi", "Tôi"),
        ("sốt", "sốt"),
        ("38,5", "38,5"),
        ("độ", "độ"),
    ]
    assert fold("Đồng Nai, khỏe") == "Dong Nai, khoe"


@pytest.mark.parametrize(
    ("text", "meaning"),
    [
        ("dạ vâng", True),
        ("có ạ", True),
        ("ừ", True),
        ("ok", True),
        ("dung roi", True),
        ("uh", True),
        ("không ạ", False),
        ("hổng có", False),
        ("dạ không", False),
        ("khong co", False),
        ("chưa", False),
        ("ko", False),
        ("xét nghiệm ở đâu", None),
    ],
)
def test_northern_and_southern_yes_and_no(text, meaning):
    assert yes_no(text) is meaning


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("38,5", 38.5),
        ("38.5 độ", 38.5),
        ("38 độ 5", 38.5),
        ("38 do 5", 38.5),
        ("ba mươi tám độ rưỡi", 38.5),
        ("ba tám phẩy năm", 38.5),
        ("ba tam phay nam", 38.5),
        ("39 độ", 39.0),
        ("ba chín độ hai", 39.2),
        ("sốt 39", 39.0),
        ("nhiệt độ 37 độ 8", 37.8),
    ],
)
def test_temperatures_in_digits_and_words(text, value):
    assert [f.value for f in find_temperatures(text)] == [value]


def test_a_bare_number_is_a_temperature_only_when_one_was_asked():
    assert find_temperatures("35 tuổi") == [] and find_temperatures("38") == []
    assert [f.value for f in find_temperatures("38", expected=True)] == [38.0]


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("hôm qua", date(2021, 6, 2)),
        ("hom kia", date(2021, 6, 1)),
        ("sáng nay", date(2021, 6, 3)),
        ("từ thứ hai", date(2021, 5, 31)),
        ("3 ngày nay", date(2021, 5, 31)),
        ("ngày 20", date(2021, 5, 20)),
        ("20/5", date(2021, 5, 20)),
        ("tuần trước", date(2021, 5, 27)),
        ("cách đây 2 ngày", date(2021, 6, 1)),
        ("hqua", date(2021, 6, 2)),
        ("chủ nhật", date(2021, 5, 30)),
    ],
)
def test_days_look_back_from_today(text, day):
    (_, when), *_ = find_times(text)
    assert when.as_date(NOW.date()) == day


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("5 giờ chiều", (3, 17, 0)),
        ("5h chiều", (3, 17, 0)),
        ("17h30", (3, 17, 30)),
        ("tối nay", (3, 19, 0)),
        ("sáng mai", (4, 9, 0)),
        ("mai", (4, 9, 0)),
        ("30 phút nữa", (3, 10, 30)),
        ("bận xíu, 10p nữa gọi lại", (3, 10, 10)),
        ("nửa tiếng nữa gọi lại", (3, 10, 30)),
        ("dang chay xe, mot tieng nua goi lai", (3, 11, 0)),  # một, not mốt (the day after tomorrow)
        ("e dang ban, toi nay goi lai", (3, 19, 0)),  # đang bận, not a friend (bạn) whose evening it is
        ("8 giờ sáng mai", (4, 8, 0)),
        ("5 giờ", (3, 17, 0)),
    ],
)
def test_callback_times_look_ahead(text, moment):
    (_, when), *_ = find_times(text)
    at = when.as_moment(NOW)
    assert (at.day, at.hour, at.minute) == moment


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("tôi sốt và ho khan", ["fever", "cough"]),
        ("khó thở quá", ["shortness_of_breath"]),
        ("không sốt nhưng ho", ["cough"]),
        ("ko sot ko ho", []),
        ("hết sốt rồi nhưng còn mệt", ["fatigue"]),
        ("họ bảo tôi ở nhà", []),
        ("mat vi giac, so mui", ["loss_of_taste_or_smell", "runny_nose"]),
        ("đau đầu với tiêu chảy", ["headache", "diarrhea"]),
        ("tức ngực", ["chest_pain"]),
        ("sốt với ho thì không, chỉ tiêu chảy", ["diarrhea"]),  # the denial said after both
        ("gọi hoài mệt quá, sao hỏi nhiều vậy", []),  # tired of the calls
        ("dau co", []),  # "đâu có" typed bare: not at all
        ("đau rát cổ họng, nuốt nước bọt cũng đau", ["sore_throat"]),
    ],
)
def test_symptoms_had_not_symptoms_denied(text, codes):
    assert [f.value for f in find_symptoms(text)] == codes


def test_test_results_and_doses():
    assert [f.value for f in find_test_results("test nhanh âm tính")] == ["negative"]
    assert [f.value for f in find_test_results("kq xn duong tinh")] == ["positive"]
    assert [f.value for f in find_test_results("đang chờ kết quả")] == ["pending"]
    assert [f.value for f in find_doses("tiêm 2 mũi rồi")] == [2]
    assert [f.value for f in find_doses("e tiem hai mui r")] == [2]
    assert [f.value for f in find_doses("chưa tiêm mũi 3, mới 2 mũi")] == [2]


def test_one_utterance_many_answers_with_spans():
    text = "tôi sốt 38 độ 5 từ hôm qua, ho khan"
    assert [(f.entity, text[f.start : f.end]) for f in find_all(text)] == [
        ("symptom", "sốt"),
        ("temperature", "38 độ 5"),
        ("time", "hôm qua"),
        ("symptom", "ho khan"),
    ]


def test_a_day_then_an_hour_is_one_moment():
    (_, when), *_ = find_times("tối nay 8 giờ")
    assert when.as_moment(NOW).hour == 20
    (_, when), *_ = find_times("mai lúc 9h")
    assert (when.as_moment(NOW).day, when.as_moment(NOW).hour) == (4, 9)


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("chong mat qua", []),  # chóng mặt typed bare: dizziness, not "chồng" (a husband) then nothing
        ("leo cầu thang là thấy hụt hơi", ["shortness_of_breath"]),  # cầu thang, not "thằng"
        ("chồng tôi là F0, tôi sổ mũi từ hôm kia", ["runny_nose"]),  # the comma ends "chồng tôi"
        ("dau dau, a noi nham, dau hong a", ["sore_throat"]),  # "a noi" is anh nói, not a grandparent
        ("hk ho nhg nhức đầu", ["headache"]),  # "nhg" is nhưng: the denial ends there
        ("mọi người trong nhà đều khỏe mạnh", []),  # not "mỏi người"
        ("tui vẫn ở nhà nè, có đi đâu đâu", []),  # not "đau đầu"
        ("đi đổ rác có được không", []),  # not "rát cổ"
        ("lộn người rồi", []),
        ("nha toi can ho tro luong thuc", []),  # hỗ trợ typed bare is not a cough
        ("người hâm hấp từ chiều qua", ["fever"]),
        ("cô bị đi cầu hoài với nhức đầu", ["diarrhea", "headache"]),
        ("bị lost sense of smell, ăn gì cũng không thấy mùi", ["loss_of_taste_or_smell"]),
    ],
)
def test_symptoms_as_typed_without_look_alikes(text, codes):
    assert [f.value for f in find_symptoms(text)] == codes


def test_the_nlu_marks_every_mention_the_dialogue_counts_once():
    text = "mất vị giác với mất khứu giác luôn"
    assert [f.value for f in find_all(text)] == ["loss_of_taste_or_smell"] * 2
    assert [f.value for f in find_symptoms(text)] == ["loss_of_taste_or_smell"]
    doses = "dạ 2 mũi Astra với 1 mũi Pfizer"
    assert [doses[f.start : f.end] for f in find_all(doses)] == ["2 mũi", "1 mũi"]
    assert [f.value for f in find_doses(doses)] == [3]


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("không, tôi không gặp ai dương tính cả", []),  # anyone else's
        ("không ạ, nhà em chưa ai dương tính cả", []),
        ("em ở Dĩ An, Bình Dương cũ, giờ là TP Hồ Chí Minh", []),  # a province, not a result
        ("test nhanh sáng nay ra positive", ["positive"]),
        ("có, mạ tui dương tính, ở chung nhà", []),  # mạ: a Central mother
        ("có, anh Hai tui dương tính, ảnh ở chung nhà", []),  # a relative by name
    ],
)
def test_test_results_are_the_residents_own(text, result):
    assert [f.value for f in find_test_results(text)] == result


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("lấy mẫu hôm qua mà chưa nghe báo gì", "pending"),
        ("xét nghiệm rồi, bên phường nói hổng có sao", "negative"),
        ("phường test cho cả xóm hôm qua, phường bảo ổn", "negative"),  # "cho" typed is not "chờ"
        ("đang waiting kết quả", "pending"),
        ("họ chọc mũi xong bảo âm tính", "negative"),  # the testers tell the resident's result
        ("lay mau hom kia ma ho chua tra, dang cho ket qua", "pending"),  # mà họ (but they), not má (mother)
    ],
)
def test_results_told_as_what_someone_said(text, result):
    assert [f.value for f in find_test_results(text, expected=True)] == [result]


@pytest.mark.parametrize(
    ("text", "doses"),
    [
        ("ông tiêm Astra mũi đầu hồi tháng 8, rồi Pfizer tháng 11, đầu năm nay tiêm thêm mũi nhắc Moderna", 3),
        ("mũi đầu em tiêm tháng 7 năm ngoái, mũi sau cách đó một tháng, còn mũi nhắc thì em chưa đi", 2),
        ("tiêm Vero hai mũi, sau đó nhắc thêm Pfizer", 3),
        ("Sinopharm ngày 5/9 với 3/10, Pfizer ngày 20/1", 3),
        ("hai mũi cộng mũi nhắc là ba", 3),
        ("3 mũi, mũi 3 là booster Moderna", 3),
        ("tiêm 2 mũi, đang chờ mũi nhắc", 2),
        ("e tiem 1 mui a k 2 mui r", 2),  # "à không" corrects, it does not deny
        ("one dose thôi ạ", 1),
        ("tôi tiêm 2 mũi pfizer", 2),
    ],
)
def test_doses_told_as_a_story(text, doses):
    assert [f.value for f in find_doses(text, expected=True, speaker=Speaker(proxy=True))] == [doses]


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("tui test nhanh hồi sáng, âm", date(2021, 6, 3)),
        ("anh ấy mới test nhanh lúc trưa", date(2021, 6, 3)),
        ("mũi 2 tiêm thứ sáu tuần trước", date(2021, 5, 28)),
        ("từ thứ hai tuần này", date(2021, 5, 31)),
        ("khoảng 2 days ago", date(2021, 6, 1)),
    ],
)
def test_days_as_people_say_them(text, day):
    assert [when.as_date(NOW.date()) for _, when in find_times(text)] == [day]


def test_spoken_temperatures_beside_days_and_tens():
    assert [f.value for f in find_temperatures("bị sốt từ thứ ba ba tám độ đó")] == [38.0]  # Tuesday, then 38
    assert find_temperatures("ba tôi sốt 39 độ") == []  # a father's
    assert [when.delta.seconds for _, when in find_times("hai chục phút nữa gọi lại")] == [1200]


@pytest.mark.parametrize("text", ["phãi ạ", "dạ fải", "đượcj em", "correct", "dạ right", "sure"])
def test_yes_as_typed_in_a_hurry(text):
    assert leading_yes_no(text) is True


def test_a_word_whose_only_mark_is_d_bar_keeps_it():
    """'đau' once lost its đ to the Telex reader ("đau" read as bare "dau", which is also "đầu"): "sổ mũi, đau đầu"
    became a first dose (mũi đầu)."""
    assert [w.canonical for w in words("đau đi đo ddungs")] == ["đau", "đi", "đo", "dung"]
    assert find_doses("sổ mũi, đau đầu") == []


@pytest.mark.parametrize(
    ("text", "proxy", "codes"),
    [
        ("nó sốt", True, ["fever"]),  # a grandmother answering: "nó" is the child
        ("anh ấy sốt từ tối qua", True, ["fever"]),  # a wife answering for her husband
        ("cháu nó khỏe, mẹ cháu thì ho", True, []),  # the child's mother is someone else
        ("con tôi ho", True, ["cough"]),  # a mother answering for her child
        ("con tôi ho", False, []),  # the resident's child
    ],
)
def test_whose_symptoms_when_a_relative_answers(text, proxy, codes):
    assert [f.value for f in find_symptoms(text, speaker=Speaker(proxy=proxy))] == codes


def test_someone_elses_result_even_when_a_relative_answers():
    assert find_test_results("bố nó dương tính", speaker=Speaker(proxy=True)) == []
    assert find_test_results("có, thằng cháu ở cùng dương tính") == []  # the nephew, not the resident
    assert find_test_results("tôi chưa xét nghiệm, bố tôi thì đang chờ kết quả", expected=True) == []
    assert [f.value for f in find_test_results("lấy mẫu rồi mà họ chưa trả kết quả", expected=True)] == ["pending"]


def test_tu_and_sau_before_a_day_are_words_not_decimals():
    assert [f.value for f in find_temperatures("sot cao 39 do tu hom kia")] == [39.0]  # từ hôm kia, not 39.4
    assert [f.value for f in find_temperatures("em sot 38 do tu chieu qua")] == [38.0]
    assert [f.value for f in find_temperatures("ba tám độ tư")] == [38.4]


def test_the_nlu_marks_whole_misspelt_phrases_and_only_the_corrected_day():
    assert [("ho khang từ hôm wa"[f.start : f.end], f.entity) for f in find_all("ho khang từ hôm wa")] == [
        ("ho khang", "symptom"),
        ("hôm wa", "time"),
    ]
    text = "tu hom qua, a khong, tu hom kia co"
    assert [text[f.start : f.end] for f in find_all(text)] == ["hom kia"]
    assert [f.entity for f in find_all("chào buổi sáng")] == []


def test_a_number_and_its_unit_are_in_one_clause():
    text = "không, em về nhà mẹ đẻ ở Hội An, Quảng Nam, giờ nhập vào Đà Nẵng rồi"
    assert find_all(text) == []  # "Nam, giờ" is no five o'clock
    assert [f.value for f in find_all("năm giờ chiều gọi lại")] == ["năm giờ chiều"]


@pytest.mark.parametrize(
    ("text", "marked"),
    [
        ("ngày mấy thì tôi hết cách ly", []),  # asks which day: not "ngày mai" misspelt
        ("test nhanh bao nhieu tien mot lan", []),  # một lần, not mốt
        ("hôm nay là ngày mấy âm lịch", ["hôm nay"]),  # the lunar calendar is no negative result
        ("hôm qua khai rồi sao hỏi nữa", []),  # the day of the last call, not of a symptom or a test
        ("chồng em test dương tính hôm qua", []),  # the husband's day
        ("tiếp xúc với F0 hôm kia", ["hôm kia"]),  # the day the resident met a case
        ("test pcr ngày 2/7 dương tính", ["ngày 2/7", "dương tính"]),
        ("ho khan hổm rày nè", ["ho khan", "hổm rày"]),
        ("test nhanh ra một vạch ạ", []),  # a rapid test's lines are read by the dialogue, not marked
        ("xot 38 do 5", ["xot", "38 do 5"]),  # typed without accents and misspelt
        ("dau hog tu hom qa", ["dau hog", "hom qa"]),  # a dropped n of -ng
        ("dươg tính rồi", ["dươg tính"]),
        ("dong nghiep cung phong toi duong tinh", []),  # "cùng phòng tôi": still the colleague's result
        ("người mệt rã rời, họng thì rát", ["mệt rã rời", "họng thì rát"]),  # the body part first
        ("ban đầu đau họng", ["đau họng"]),  # not "đầu đau", a headache
    ],
)
def test_the_nlu_marks_what_the_annotation_guide_marks(text, marked):
    assert [text[f.start : f.end] for f in find_all(text)] == marked


@pytest.mark.parametrize(
    ("text", "value"),
    [("38C", 38.0), ("đo được 38,5°C", 38.5), ("hôm qua 38oC", 38.0), ("38 oC", 38.0), ("sốt 38.5c", 38.5)],
)
def test_degrees_celsius_typed_with_the_number(text, value):
    assert [f.value for f in find_temperatures(text)] == [value]
    assert find_temperatures("có 2 c ở nhà") == [] and find_temperatures("test 12C") == []  # "c" is chị; 12 no fever


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("dạaaa đúngg", "dạ đúng"), ("khônggg sốtttt", "không sốt"), ("hôm quaaa", "hôm qua"), ("nhé", "nhé")],
)
def test_a_last_letter_held_down_is_read_once(typed, meant):
    assert canonical(typed) == meant


def test_telex_doubles_are_still_read_as_telex():
    assert yes_no("khoongg") is False and canonical("đượcccc") == "được"
