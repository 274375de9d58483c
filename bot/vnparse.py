"""What a resident's words say: symptoms, temperatures, days and times, test results, vaccine doses.

Pure Python on top of `bot.vntext`. Every finder returns `Found` items with offsets into the (NFC) text, so the
engine's entity extractor and the dialogue's answer parsing use the very same rules.
"""

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from bot.vnscope import ALONE, Speaker, about_someone_else, corrected, last_correction, only_corrected, others_spans
from bot.vntext import Word, fold, matches, phrase_at, phrase_sounds_at, says, split_phrase, words


@dataclass(frozen=True)
class Found:
    entity: str
    start: int
    end: int
    value: Any


# ---------------------------------------------------------------------------------------------- numbers

_DIGIT_WORDS = {
    "một": 1,
    "mốt": 1,
    "hai": 2,
    "ba": 3,
    "bốn": 4,
    "tư": 4,
    "năm": 5,
    "lăm": 5,
    "sáu": 6,
    "bảy": 7,
    "bẩy": 7,
    "tám": 8,
    "chín": 9,
}
_TENS_CONTRACTED = ("băm",)  # "băm tám" = ba mươi tám (38), as speech contracts it
# Typed without accents these are everyday words first ("tu" = từ, "sau" = after, "nam" = south, "tam" = tạm):
# they count as numbers only beside another number word ("ba tam phay nam").
_AMBIGUOUS_UNACCENTED = {"tu", "nam", "sau", "bay", "tam", "lam", "mot"}
_NUMBER_NEIGHBOURS = [split_phrase(p) for p in ("mươi", "mười", "phẩy", "chấm", "độ", "rưỡi", "mũi", "giờ")]


def _digit(word: Word) -> int | None:
    if word.text.isdecimal() and len(word.text) == 1:
        return int(word.text)
    return next((value for spoken, value in _DIGIT_WORDS.items() if matches(word, spoken)), None)


_WHEN_WORDS = ("hôm", "chiều", "sáng", "tối", "trưa", "qua", "khi", "ngày", "bữa", "lúc", "đêm", "tuần", "đó", "nay")


def _a_preposition(ws: list[Word], i: int) -> bool:
    """'tu' (từ) or 'sau' typed bare before a day or time word: 'từ hôm kia', 'sau khi uống thuốc'."""
    bare = not ws[i].accented and ws[i].folded in ("tu", "sau")
    return bare and i + 1 < len(ws) and any(matches(ws[i + 1], w) for w in _WHEN_WORDS)


def _is_number_word(ws: list[Word], i: int) -> bool:
    """A digit word that really is a number here (an ambiguous unaccented one needs a numeric neighbour)."""
    if i >= len(ws) or ws[i].text.isdecimal() or _digit(ws[i]) is None:
        return False
    if ws[i].accented or ws[i].folded not in _AMBIGUOUS_UNACCENTED:
        return True
    # A neighbour in the same clause: "Quảng Nam, giờ ..." is a province, then "now".
    neighbours = [k for k in (i - 1, i + 1) if 0 <= k < len(ws) and not ws[max(i, k)].after_mark]
    return any(
        (not ws[k].text.isdecimal() and _digit(ws[k]) is not None)
        or any(phrase_at(ws, k, n) for n in _NUMBER_NEIGHBOURS)
        for k in neighbours
    )


def _single_digit(ws: list[Word], i: int) -> int | None:
    """One digit, typed or spoken: the second half of '3 8', 'ba 8', 'ba tám'."""
    if i >= len(ws):
        return None
    if ws[i].text.isdecimal() and len(ws[i].text) == 1:
        return int(ws[i].text)
    return _digit(ws[i]) if _is_number_word(ws, i) else None


def spoken_number(ws: list[Word], i: int) -> tuple[int, int] | None:
    """A whole number spoken in words from index i: (value, words used). 'ba mươi tám' -> 38, 'hai chục' -> 20,
    'ba tám' -> 38, 'băm tám' -> 38, 'ba 8' -> 38 (a speech recogniser's mix)."""
    if i < len(ws) and any(matches(ws[i], t) for t in _TENS_CONTRACTED) and (unit := _single_digit(ws, i + 1)):
        return 30 + unit, 2
    if i < len(ws) and matches(ws[i], "mười"):
        unit = _digit(ws[i + 1]) if _is_number_word(ws, i + 1) else None
        return (10 + unit, 2) if unit is not None else (10, 1)
    if not _is_number_word(ws, i):
        return None
    first = _digit(ws[i])
    if i + 1 < len(ws) and (matches(ws[i + 1], "mươi") or matches(ws[i + 1], "chục")):  # "hai chục" = 20
        unit = _digit(ws[i + 2]) if _is_number_word(ws, i + 2) else None
        return (first * 10 + unit, 3) if unit is not None else (first * 10, 2)
    if (second := _single_digit(ws, i + 1)) is not None:  # digits read one by one: "ba tám" = 38
        return first * 10 + second, 2
    return first, 1


def number_at(ws: list[Word], i: int) -> tuple[float, int] | None:
    """A number written in digits ('38', '38,5') or spoken in words, from index i: (value, words used)."""
    if i >= len(ws):
        return None
    text = ws[i].text
    if len(text) == 1 and text.isdecimal() and (second := _single_digit(ws, i + 1)) is not None:
        return float(int(text) * 10 + second), 2  # "3 8 độ 5": a recogniser's digits one by one
    if re.fullmatch(r"\d+([.,]\d+)?", text):
        return float(text.replace(",", ".")), 1
    spoken = spoken_number(ws, i)
    return (float(spoken[0]), spoken[1]) if spoken else None


# ---------------------------------------------------------------------------------------------- temperature

_DEGREE = ("độ",)
_DECIMAL_MARKS = [split_phrase(p) for p in ("phẩy", "chấm", "độ", "lẻ")]


def _mark_at(ws: list[Word], i: int, mark: tuple[str, ...]) -> bool:
    """A unit or decimal mark after a number, however its accents were typed: '38 đọ 5', '39 dộ 5' say 'độ'."""
    return phrase_sounds_at(ws, i, mark) or (len(mark) == 1 and i < len(ws) and fold(ws[i].canonical) == fold(mark[0]))


_HALF = ("rưỡi",)
_FEVER_CONTEXT = [split_phrase(p) for p in ("sốt", "nhiệt độ", "nhiệt", "đo", "đo được", "nóng")]
TEMPERATURE_RANGE = (34.0, 43.0)


def _fraction_after(ws: list[Word], i: int) -> tuple[float, int] | None:
    """The decimals spoken after a whole number: 'độ 5', 'phẩy năm', 'độ rưỡi', 'rưỡi'."""
    if i < len(ws) and matches(ws[i], "rưỡi"):
        return 0.5, 1
    for mark in _DECIMAL_MARKS:
        if _mark_at(ws, i, mark):
            j = i + len(mark)
            if j < len(ws) and matches(ws[j], "rưỡi"):
                return 0.5, len(mark) + 1
            if j < len(ws) and ws[j].text.isdecimal() and len(ws[j].text) <= 2:
                return float(f"0.{ws[j].text}"), len(mark) + 1
            digit = 0 if j < len(ws) and matches(ws[j], "không") else (_digit(ws[j]) if j < len(ws) else None)
            if digit is not None and _a_preposition(ws, j):
                digit = None  # "sot 38 do tu hom kia": 38 degrees since (từ) the day before yesterday
            if digit is not None:
                return digit / 10, len(mark) + 1
            if mark == _DEGREE:
                return 0.0, 1  # "39 độ": the degree word belongs to the temperature
    return None


# Degrees Celsius typed with the number ("38C", "38oC", "38.5°C"), or after it ("38 độ C", "38,5 oC").
_CELSIUS_GLUED = re.compile(r"(\d{2}(?:[.,]\d{1,2})?)(?:o|°|độ|do)?c", re.IGNORECASE)
_CELSIUS = ("c", "oc", "°c")


def _temperature_at(ws: list[Word], i: int, anywhere: bool) -> Found | None:
    if i < len(ws) and (glued := _CELSIUS_GLUED.fullmatch(ws[i].text)):
        value = float(glued.group(1).replace(",", "."))
        in_range = TEMPERATURE_RANGE[0] <= value <= TEMPERATURE_RANGE[1]
        return Found("temperature", ws[i].start, ws[i].end, round(value, 1)) if in_range else None
    number = number_at(ws, i)
    if number is None:
        return None
    whole, used = number
    decimals_typed = "," in ws[i].text or "." in ws[i].text
    fraction = None if decimals_typed else _fraction_after(ws, i + used)
    value = whole + (fraction[0] if fraction else 0.0)
    used += fraction[1] if fraction else 0
    if i + used < len(ws) and _mark_at(ws, i + used, _DEGREE) and not _mark_at(ws, i + used - 1, _DEGREE):
        used += 1  # "38,5 độ", but "38 độ đó" ends at độ
    # a "C" after it says a temperature; the span stays the number and its "độ" (bot/ANNOTATION.md)
    celsius = i + used < len(ws) and ws[i + used].text.lower() in _CELSIUS and not ws[i + used].after_mark
    near_fever = any(phrase_at(ws, k, ctx) for k in range(max(0, i - 3), i) for ctx in _FEVER_CONTEXT)
    if not (anywhere or fraction or decimals_typed or near_fever or celsius):
        return None
    if not TEMPERATURE_RANGE[0] <= value <= TEMPERATURE_RANGE[1]:
        return None
    return Found("temperature", ws[i].start, ws[i + used - 1].end, round(value, 1))


def find_temperatures(text: str, expected: bool = False, speaker: Speaker = ALONE) -> list[Found]:
    """The resident's body temperatures, a corrected one first ('39 độ, à nhầm, 38 độ 4'); someone else's left out.
    `expected` (the question was about temperature) also accepts a bare '38'."""
    others = others_spans(text, speaker)
    found = [f for f in _temperature_mentions(text, expected) if not about_someone_else(f.start, others)]
    return corrected(found, text)


def _temperature_mentions(text: str, expected: bool) -> list[Found]:
    ws, found, i = words(text), [], 0
    while i < len(ws):
        item = _temperature_at(ws, i, anywhere=expected)
        if item:
            found.append(item)
            i = next(k for k in range(i, len(ws)) if ws[k].end >= item.end) + 1
        else:
            i += 1
    return found


# ---------------------------------------------------------------------------------------------- symptoms

SYMPTOM_PHRASES = {
    "fever": [
        "sốt",
        "sốt cao",
        "sốt nhẹ",
        "nóng sốt",
        "phát sốt",
        "người nóng",
        "nóng người",
        "ớn lạnh",
        "sốt sốt",
        "fever",
        "sốt nóng",
        "hâm hấp sốt",
        "gai sốt",
        "hâm hấp",
        "người hâm hấp",
    ],
    "cough": [
        "ho",
        "ho khan",
        "ho có đờm",
        "ho đờm",
        "ho sù sụ",
        "ho húng hắng",
        "ho khù khụ",
        "cough",
        "ho hắng",
        "ho sặc sụa",
    ],
    "shortness_of_breath": [
        "khó thở",
        "thở dốc",
        "hụt hơi",
        "thở không nổi",
        "thở không được",
        "khó hít thở",
        "thở gấp",
        "ngộp thở",
        "tức thở",
        "thở không ra hơi",
        "không thở nổi",
        "không thở được",
        "shortness of breath",
        "short of breath",
        "thở khò khè",
    ],
    "sore_throat": [
        *("cổ đau rát", "cổ rát", "rát cổ", "đau rát cổ", "rát trong cổ"),  # "cổ" alone: the throat, when it burns
        *("nuốt thấy rát", "nuốt thấy đau", "nuốt đau", "nuốt nước miếng thấy rát", "nuốt nước bọt cũng đau"),
        "đau họng",
        "rát họng",
        "viêm họng",
        "ngứa họng",
        "đau rát họng",
        "đau rát cổ họng",
        "rát cổ họng",
        "khô họng",
        "vướng họng",
        "sore throat",
        "đau cổ họng",
        "rát cổ",
    ],
    "fatigue": [
        *("rã rời", "bã người"),  # "người rã rời"
        "mệt",
        "mệt mỏi",
        "uể oải",
        "mệt lả",
        "đuối sức",
        "mỏi mệt",
        "kiệt sức",
        "mệt người",
        "tired",
        "oải",
        "mệt rã rời",
        "mệt xỉu",
        "đuối",
    ],
    "loss_of_taste_or_smell": [
        *("chẳng thấy mùi", "không thấy mùi vị", "nhạt thếch", "ăn gì cũng nhạt"),  # not "không thấy mùi hôi"
        "mất vị giác",
        "mất khứu giác",
        "không ngửi được mùi",
        "không ngửi thấy mùi",
        "không ngửi được",
        "mất mùi",
        "mất vị",
        "ăn không thấy vị",
        "ăn không có vị",
        "không cảm nhận được mùi vị",
        "mất vị giác và khứu giác",
        "không nếm được",
        "không thấy mùi vị",
        "ăn không thấy mùi vị",
        "không ngửi thấy gì",
        "mất mùi vị",
        *("không biết mùi", "không thấy mùi", "không ngửi thấy", "lost sense of smell", "loss of smell"),
        *("loss of taste", "lost smell", "lost taste", "không nếm được vị"),
    ],
    "runny_nose": [
        "sổ mũi",
        "chảy nước mũi",
        "nghẹt mũi",
        "ngạt mũi",
        "chảy mũi",
        "sụt sịt",
        "tắc mũi",
        "runny nose",
        "stuffy nose",
        "xổ mũi",
    ],
    "body_ache": [
        "đau nhức người",
        "đau người",
        "nhức mỏi",
        "đau mỏi người",
        "đau nhức",
        "đau cơ",
        "nhức người",
        "mỏi người",
        "đau mình mẩy",
        *("mỏi cả người", "mỏi hết người", "mỏi hết cả người", "đau cả người", "đau hết cả người", "nhức cả người"),
        "ê ẩm",
        "đau khớp",
        "nhức mỏi người",
        "đau mỏi",
        "body ache",
        "đau mình",
        "nhức mình",
        *("nhức mỏi toàn thân", "đau nhức toàn thân", "mỏi toàn thân", "ê ẩm người", "ê ẩm toàn thân"),
    ],
    "headache": [
        *("đau đầu", "nhức đầu", "nặng đầu", "đau nửa đầu", "choáng đầu", "váng đầu", "headache", "đau cái đầu"),
        "đầu nhức",  # "người nóng ran, đầu nhức" ("đầu đau" is left out: "ban đầu đau họng")
        *("đau trốc", "nhức trốc"),  # Nghệ Tĩnh: the head
        "nhức cái đầu",
    ],
    "diarrhea": [
        "tiêu chảy",
        "đi ngoài",
        "đau bụng đi ngoài",
        "đi ngoài nhiều lần",
        "tào tháo đuổi",
        "đi cầu nhiều",
        "diarrhea",
        "đi tả",
        "tào tháo",
        "đi cầu lỏng",
        "đi cầu hoài",
        "đi cầu liên tục",
    ],
    "chest_pain": [
        *("đau ngực", "tức ngực", "nặng ngực", "đau tức ngực", "thắt ngực", "nhói ngực", "chest pain", "đau thắt ngực"),
    ],
}
# Longest phrases first, so "ho khan" wins over "ho" and "đau tức ngực" over "đau".
# The body part first, then how it feels: "họng thì rát", "ngực hơi tức", "đầu cứ nhức" (a bare "đầu đau" is left out:
# "ban đầu đau họng" is a sore throat at first).
_TOPIC_FIRST = {
    "sore_throat": (("họng", "cổ họng"), ("đau", "rát", "ngứa", "khô"), ("", "thì", "hơi", "bị", "cứ", "thấy")),
    "headache": (("đầu", "trốc"), ("đau", "nhức"), ("thì", "hơi", "bị", "cứ")),
    "chest_pain": (("ngực",), ("đau", "tức"), ("", "thì", "hơi", "bị", "cứ", "thấy")),
    "runny_nose": (("mũi",), ("nghẹt", "ngạt", "tắc", "chảy", "chảy nước"), ("thì", "hơi", "bị", "cứ")),
}
_SYMPTOM_PATTERNS = sorted(
    [
        *((split_phrase(p), code) for code, phrases in SYMPTOM_PHRASES.items() for p in phrases),
        *(
            (split_phrase(f"{part} {filler} {feeling}"), code)
            for code, (parts, feelings, fillers) in _TOPIC_FIRST.items()
            for part in parts
            for feeling in feelings
            for filler in fillers
        ),
    ],
    key=lambda item: -len(item[0]),
)
# A symptom after one of these, in the same clause, is one the resident does not have.
_NEGATORS = [
    split_phrase(p)
    for p in ("không", "chưa", "chẳng", "chả", "hết", "đỡ", "không còn", "không có", "không bị", "hổng", "khỏi", "no")
]
_CORRECTING = ("à", "ơ", "ấy")  # "à không": a correction, not a negation
_CLAUSE_BREAKS = [split_phrase(p) for p in ("nhưng", "mà", "còn", "với", "và", "thì", "chỉ", "riêng")]


_DENIED_AFTER = [split_phrase(p) for p in ("thì không", "thì chưa", "thì hết", "thì đỡ rồi", "thì không có", "hết rồi")]
_DENIED_AFTER += [split_phrase(p) for p in ("đâu", "gì đâu", "siếc gì đâu", "mô", "chi mô")]  # "sốt đâu mà sốt"


def _denied_after(ws: list[Word], end: int) -> bool:
    """'đau đầu thì không', 'sốt thì hết rồi', 'sốt đâu mà sốt': the symptom named, then denied in its clause ('hơi
    xốt, đâu họng' is a misspelt 'đau họng' after a comma)."""
    if end >= len(ws) or ws[end].after_mark:
        return False
    said = next((p for p in _DENIED_AFTER if phrase_at(ws, end, p)), None)
    if said is None or said[-1] not in ("đâu", "mô"):
        return said is not None
    after = end + len(said)
    return after >= len(ws) or ws[after].after_mark or any(matches(ws[after], w) for w in _AFTER_A_WHERE)


_AFTER_A_WHERE = ("mà", "có", "hết", "cả", "nha", "ạ", "nè", "luôn")  # "sốt đâu mà sốt", "ho gì đâu hết"


def _negated(ws: list[Word], i: int, text: str) -> bool:
    """Is word i inside the scope of a negation: 'không (bị) sốt', but not 'không sốt, ho' or '... nhưng ho'?"""
    if i >= 2 and any(phrase_at(ws, i - 2, (where, "mà")) for where in ("đâu", "mô")):
        return True  # "sốt đâu mà sốt": asked where, denied
    for back in range(i - 1, max(-1, i - 4), -1):
        if re.search(r"[,.;!?]", text[ws[back].end : ws[back + 1].start]):
            return False  # a punctuation mark ends the clause
        if any(phrase_at(ws, back, n) for n in _NEGATORS):
            corrects = back > 0 and any(matches(ws[back - 1], w) for w in _CORRECTING)
            return not (corrects and number_at(ws, i) is not None)  # "1 mũi à không 2 mũi", but "à không ho đâu"
        if any(phrase_at(ws, back, b) for b in _CLAUSE_BREAKS):
            return False
    return False


_MEDICINE = [split_phrase(p) for p in ("thuốc", "thuốc hạ", "hạ", "thuốc chống", "thuốc trị", "thuốc chữa")]


def _names_a_medicine(ws: list[Word], i: int) -> bool:
    """'thuốc hạ sốt', 'thuốc ho': a medicine asked for, not a symptom had."""
    return any(phrase_at(ws, i - len(m), m) for m in _MEDICINE if i - len(m) >= 0)


# Words that start like a symptom when typed without accents: "ho tro" is hỗ trợ (help), not a cough.
_NOT_SYMPTOMS = [
    split_phrase(p)
    for p in (
        *("hỗ trợ", "hồ sơ", "hồ chí minh", "họ tên", "hộ khẩu", "hộ gia đình", "họ hàng", "sốt ruột", "hộ tôi"),
        *("mọi người", "lộn người"),  # not "mỏi người", "nóng người": everyone, the wrong person
        *("họ bảo", "họ nói", "họ báo", "họ hẹn", "họ kêu", "họ chưa trả", "họ trả", "họ lấy mẫu"),  # they (the lab)
        "đâu có",  # "dau co" typed bare is "đâu có" (not at all), not "đau cổ"
        *("đi ngoài chợ", "đi ngoài đường", "đi ngoài phố", "đi ngoài sân", "đi ngoài kia", "đi ngoài quán"),  # out
    )
]


def _typed_alike(said: list[Word], phrase: tuple[str, ...]) -> bool:
    """Typed as the phrase is written, or all of it without accents: who types "sơ" with its accent would have typed
    "hồ sơ" with both ("ho sơ sơ" is a slight cough)."""
    return all(w.canonical == p for w, p in zip(said, phrase, strict=True)) or not any(w.accented for w in said)


_BEFORE_A_START = ("ban", "lúc", "từ", "hồi", "mũi", "lần", "đợt", "thoạt")


def _symptom_at(ws: list[Word], i: int) -> tuple[tuple[str, ...], str] | None:
    """The symptom phrase said from word i: as written first, then as a misspelling would write it ('xốt',
    'sổ mủi', 'trảy nước mũi'); the longest phrase wins ('ho khan' over 'ho')."""
    if any(phrase_at(ws, i, p) and _typed_alike(ws[i : i + len(p)], p) for p in _NOT_SYMPTOMS):
        return None
    if ws[i].canonical == "đầu" and i > 0 and ws[i - 1].canonical in _BEFORE_A_START:  # typed bare: "hoi dau hong"
        return None  # "ban đầu nhức mỏi": at first, not the head
    exact = next(((p, code) for p, code in _SYMPTOM_PATTERNS if phrase_at(ws, i, p)), None)
    heard = next(((p, code) for p, code in _SYMPTOM_PATTERNS if phrase_sounds_at(ws, i, p)), None)
    if exact and heard and heard[1] == exact[1] and len(heard[0]) > len(exact[0]):
        return heard  # "ho khang", "mệt mõi": the misspelt longer phrase says the same symptom, all of it
    return exact or heard or _after_suffering(ws, i) or _body_part_of_mine(ws, i)


_MINE = ("em", "tôi", "tui", "mình")
# The body part, then how it feels, with the resident's word between: "mũi em hơi chảy nước", "họng tui rát".
_MINE_PATTERNS = sorted(
    (
        (split_phrase(f"{part} {filler} {feeling}"), code)
        for code, (parts, feelings, _) in _TOPIC_FIRST.items()
        for part in parts
        for feeling in feelings
        for filler in ("", "hơi", "bị")
    ),
    key=lambda item: -len(item[0]),
)
_BODY_PARTS = {phrase[0] for phrase, _ in _MINE_PATTERNS}


def _body_part_of_mine(ws: list[Word], i: int) -> tuple[tuple[str, ...], str] | None:
    """A body part said with the resident's word after it, read without that word and counted with it (only where
    one is said: the hot path does not try these patterns on every word)."""
    if i + 2 >= len(ws) or ws[i].canonical not in _BODY_PARTS or ws[i + 1].canonical not in _MINE:
        return None
    without = [*ws[: i + 1], *ws[i + 2 :]]
    found = next(((p, code) for p, code in _MINE_PATTERNS if phrase_at(without, i, p)), None)
    return ((found[0][0], ws[i + 1].canonical, *found[0][1:]), found[1]) if found else None


_SUFFERING = ("bị", "hơi", "còn", "vẫn", "chỉ")  # "hổng sốt, chỉ ho sơ sơ à"
_ONE_WORD_SYMPTOMS = {"ho": "cough", "sốt": "fever", "mệt": "fatigue"}


def _after_suffering(ws: list[Word], i: int) -> tuple[tuple[str, ...], str] | None:
    """After "bị" a symptom is expected: a wrong tone is still the symptom ("em bị hồ" is a cough, not a lake)."""
    if i == 0 or ws[i].after_mark or not any(matches(ws[i - 1], w) for w in _SUFFERING):
        return None
    word = next((w for w in _ONE_WORD_SYMPTOMS if ws[i].folded == fold(w)), None)
    return ((word,), _ONE_WORD_SYMPTOMS[word]) if word else None


def symptom_mentions(text: str) -> list[tuple[Found, bool]]:
    """Every symptom named, with whether it is denied ('không ho'); medicines ('thuốc hạ sốt') left out."""
    return list(_symptom_mentions(text))


@lru_cache(maxsize=256)  # one turn is read for symptoms by many rules (each question, the stops, the volunteered)
def _symptom_mentions(text: str) -> tuple[tuple[Found, bool], ...]:
    ws, found, i = words(text), [], 0
    while i < len(ws):
        hit = _symptom_at(ws, i)
        if hit is None:
            i += 1
            continue
        phrase, code = hit
        fed_up = code == "fatigue" and says(text, _TIRED_OF_THE_CALLS)
        if not _names_a_medicine(ws, i) and not fed_up:
            mention = Found("symptom", ws[i].start, ws[i + len(phrase) - 1].end, code)
            found.append((mention, _negated(ws, i, text) or _denied_after(ws, i + len(phrase))))
        i += len(phrase)
    return tuple(_denied_together(found, ws))


# "gọi hoài mệt quá", "mệt lắm không khai nữa": tired of the calls, not a symptom.
_TIRED_OF_THE_CALLS = [
    split_phrase(p) for p in ("gọi hoài", "gọi mãi", "hỏi hoài", "hỏi mãi", "hỏi nhiều", "khai nữa", "không khai")
]
_AND = ("với", "và", "hay", "hoặc", "hoặc là", "cả")


def _denied_together(found: list[tuple[Found, bool]], ws: list[Word]) -> list[tuple[Found, bool]]:
    """'sốt với ho thì không, chỉ tiêu chảy': symptoms joined by "với" share the denial said after the last."""
    for k in range(len(found) - 2, -1, -1):
        (mention, denied), (after, after_denied) = found[k], found[k + 1]
        between = [w for w in ws if mention.end <= w.start < after.start]
        joined = len(between) == 1 and not between[0].after_mark and any(matches(between[0], a) for a in _AND)
        if joined and after_denied and not denied and _denied_after(ws, _index_after(ws, after.end)):
            found[k] = (mention, True)
    return found


def _index_after(ws: list[Word], end: int) -> int:
    return next((k for k, w in enumerate(ws) if w.start >= end), len(ws))


def own_symptom_mentions(text: str, speaker: Speaker = ALONE) -> list[Found]:
    """Every mention of the resident's own symptoms still standing at the end of the text, in text order (the NLU
    marks each: "mất vị giác với mất khứu giác")."""
    others = others_spans(text, speaker)
    own = [(f, denied) for f, denied in symptom_mentions(text) if not about_someone_else(f.start, others)]
    retraction = last_correction(text, retractions_only=True)
    if retraction and any(not denied and f.start >= retraction[1] for f, denied in own):
        own = [(f, denied) for f, denied in own if f.start >= retraction[0]]
    had: list[Found] = []
    for mention, denied in own:  # in the order said: a symptom denied after it was named is taken back
        had = [f for f in had if f.value != mention.value] if denied else [*had, mention]
    return had


def find_symptoms(text: str, speaker: Speaker = ALONE) -> list[Found]:
    """The resident's own symptoms, each once, where first named: 'không sốt nhưng ho khan' -> cough; 'con tôi ho'
    -> none; 'ho khan, sổ mũi, à không sổ mũi đâu, chỉ ho thôi' -> cough (taken back); 'mất vị giác, à không phải,
    chỉ sổ mũi' -> runny nose. `speaker`: a relative answers for the resident ("cháu nó khỏe"), so nobody's facts
    are left out."""
    first: dict[str, Found] = {}
    for mention in own_symptom_mentions(text, speaker):
        first.setdefault(mention.value, mention)
    return list(first.values())


# ---------------------------------------------------------------------------------------------- test results

TEST_RESULT_PHRASES = {
    # A rapid test shows one line (vạch) when negative and two when positive; English words come with the tests.
    "negative": [
        *("âm tính", "âm", "âm tin", "negative", "neg", "1 vạch", "một vạch", "vạch t không lên", "t không lên"),
        *("mỗi vạch c", "vạch c thôi", "lên mỗi vạch", "chỉ lên vạch c"),  # only the control line
    ],
    "positive": ["dương tính", "dương", "dương tin", "positive", "pos", "2 vạch", "hai vạch", "hai dạch", "2 lines"],
    "pending": [
        *("chưa có kết quả", "đang chờ kết quả", "chờ kết quả", "chưa có kết quả xét nghiệm", "đợi kết quả"),
        *("chưa trả kết quả", "chưa báo kết quả", "chưa biết kết quả", "chưa ra kết quả", "pending"),
        *("chưa có result", "waiting result", "chờ result"),
    ],
}
_TEST_PATTERNS = sorted(
    ((split_phrase(p), code) for code, phrases in TEST_RESULT_PHRASES.items() for p in phrases),
    key=lambda item: -len(item[0]),
)
_TEST_CONTEXT = [
    split_phrase(p)
    for p in ("test", "xét nghiệm", "kết quả", "pcr", "nhanh", "tính", "vạch", "là", "lấy mẫu", "mẫu", "que", "result")
]


def find_test_results(text: str, speaker: Speaker = ALONE, expected: bool = False) -> list[Found]:
    """The resident's own test results, a corrected one first: 'vợ tôi dương tính' and 'bố tôi thì đang chờ kết
    quả' are not the resident's; a result pending with the testers ('họ chưa trả kết quả') is."""
    spans = others_spans(text, speaker)
    testers = [(start, end) for start, end in spans if _THE_TESTERS.match(text, start)]
    others = [span for span in spans if span not in testers]
    testers = [(start, _clause_end(text, start, end)) for start, end in testers]  # "họ test cho em hôm qua, âm tính"
    own = [
        f
        for f in _test_result_mentions(text, expected, others)
        if not about_someone_else(f.start, others)
        and (f.value == "pending" or not about_someone_else(f.start, testers) or _reported(text, testers, f.start))
    ]
    return corrected(own, text)


def _clause_end(text: str, start: int, end: int) -> int:
    mark = re.compile(r"[,.;!?\n]").search(text, start, end)
    return mark.start() if mark else end


_THE_TESTERS = re.compile(r"(?i)(họ|người ta)\b")  # "họ chưa trả kết quả": the lab, not a contact
_REPORTING = re.compile(r"(?i)\b(bảo|nói|báo|kêu|trả|cho biết|thông báo|nhắn|gửi)\b")


def _reported(text: str, testers: list[tuple[int, int]], start: int) -> bool:
    """The testers telling the resident's result: "họ chọc mũi xong bảo âm tính" (not "họ dương tính", their own)."""
    return any(s <= start < e and _REPORTING.search(text, s, start) for s, e in testers)


_A_CASE = [split_phrase(p) for p in ("f0", "nhiễm", "bị covid", "mắc covid", "dính covid", "ca bệnh", "vì covid")]


def others_tested_positive(text: str, speaker: Speaker = ALONE) -> bool:
    """Someone else is a case: 'vợ tôi dương tính', 'ổng dương tính bữa thứ năm', 'ông nội tôi là F0' (contact with
    a case)."""
    others = others_spans(text, speaker)
    told = [f for f in _test_result_mentions(text) if not _asked(text, f.end)]
    if any(f.value == "positive" and about_someone_else(f.start, others) for f in told):
        return True
    ws = words(text)
    return any(
        about_someone_else(ws[i].start, others) and any(phrase_at(ws, i, case) for case in _A_CASE)
        for i in range(len(ws))
        if not _asked(text, ws[i].end)
    )


def positive_told(text: str) -> bool:
    """A positive result told, not asked ("...dương tính hả?") and not denied ("chưa ai dương hết"), whoever's."""
    ws = words(text)
    return any(
        f.value == "positive" and not _asked(text, f.end) and not _negated(ws, _index_at(ws, f.start), text)
        for f in _test_result_mentions(text)
    )


def _asked(text: str, at: int) -> bool:
    """Is the clause going on at `at` a question ("ý là người bị dương tính hả?"), not something told?"""
    clause_end = re.search(r"[,.;!?\n]", text[at:])
    return clause_end is not None and clause_end.group() == "?"


# Asked for the result, residents also answer this way: "âm" alone, "trạm báo không sao", "đang chờ".
ANSWERS_TO_THE_RESULT_QUESTION = {
    "negative": [
        *("không sao", "bình thường", "ổn", "không bị", "không bị gì", "báo không sao", "kết quả ổn"),
        *("không có vấn đề gì", "hổng có sao", "không có sao", "không có gì"),
        *("không phát hiện", "chưa phát hiện", "không thấy virus", "sạch"),  # a lab's wording: not detected
        *("không có chi", "hổng có gì", "không dính", "hổng dính", "không có bệnh", "không nhiễm", "one line"),
        *("1 line", "một line"),  # "tự test kit ở nhà hôm qua, 1 line"
    ],
    "pending": [
        *(
            "đang chờ",
            "còn chờ",
            "vẫn chờ",
            "chờ báo",
            "chờ họ",
            "chờ gọi",
            "đợi",
            "chưa thấy báo",
            "chưa báo",
            "chưa trả",
            "chưa có kết quả",
            "mới lấy mẫu",
        ),
        *("chưa nghe báo", "chưa nghe", "chưa thấy gì", "chưa thấy kết quả", "hẹn mai trả", "hẹn trả", "mẫu gửi đi"),
        *("hẹn", "mới trả", "mới báo", "mới gọi báo", "sẽ báo", "sẽ trả"),  # "chiều họ mới gọi báo": not yet
        *("mới có", "chưa gọi", "chưa nhắn"),  # "ngoáy mũi sáng nay, chiều mới có", "trạm chưa gọi"
    ],
}
_ANSWER_PATTERNS = sorted(
    ((split_phrase(p), code) for code, phrases in ANSWERS_TO_THE_RESULT_QUESTION.items() for p in phrases),
    key=lambda item: -len(item[0]),
)


def _test_result_mentions(
    text: str, expected: bool = False, others: list[tuple[int, int]] | None = None
) -> list[Found]:
    """The results said; asked for the result, also the first answer in other words ("trạm báo không sao") outside
    `others` (the stretches about someone else): "em tôi dương tính, còn tôi chiều mai mới có kết quả"."""
    found, others = _test_result_words(text, expected), others or []
    if not expected or any(not about_someone_else(f.start, others) for f in found):
        return found
    ws = words(text)
    answers = [
        Found("test_result", ws[i].start, ws[i + len(p) - 1].end, code)
        for i in range(len(ws))
        for p, code in _ANSWER_PATTERNS
        if phrase_at(ws, i, p) and not about_someone_else(ws[i].start, others)
    ]
    return found + answers[:1]


_ENGLISH_RESULTS = {"positive", "negative", "pos", "neg"}
# "âm lịch" (the lunar calendar), "âm thanh" (a sound), "dương lịch": other words, not a result.
_ANOTHER_WORD_WITH = ("lịch", "thanh", "nhạc", "ấm", "điệu", "vật")
_TITLES = ("anh", "chị", "em", "cô", "chú", "bác", "bà", "ông", "bé", "bạn")


def _a_result_alone(ws: list[Word], i: int, expected: bool) -> bool:
    """'âm', 'dương', 'negative' alone are a result next to test words (before or after; an English word up to five
    words after them: 'test nhanh sáng nay ra positive'), or when the result was asked. Never a name mid-sentence
    ('Bình Dương', 'chị Dương'), never a bare 'duong' said in passing (đường, a road)."""
    word = ws[i]
    named = i > 0 and word.text[:1].isupper() and not word.text.isupper() and not word.after_mark
    if named and (ws[i - 1].text[:1].isupper() or any(matches(ws[i - 1], t) for t in _TITLES)):
        return False
    if i + 1 < len(ws) and any(matches(ws[i + 1], w) for w in _ANOTHER_WORD_WITH):
        return False
    if expected:
        return True
    english = word.canonical in _ENGLISH_RESULTS
    if not english and not word.accented:
        return False
    near = [k for k in range(max(0, i - (5 if english else 3)), min(len(ws), i + 4)) if k != i]
    return any(phrase_at(ws, k, c) for k in near for c in _TEST_CONTEXT)


def _test_result_words(text: str, expected: bool) -> list[Found]:
    ws, found = words(text), []
    for i in range(len(ws)):
        for phrase, code in _TEST_PATTERNS:
            if phrase_at(ws, i, phrase) or (len(phrase) > 1 and phrase_sounds_at(ws, i, phrase)):
                if len(phrase) == 1 and not _a_result_alone(ws, i, expected):
                    break
                if not found or found[-1].end < ws[i].start:
                    found.append(Found("test_result", ws[i].start, ws[i + len(phrase) - 1].end, code))
                break
    return found


NOT_TESTED_PHRASES = [
    split_phrase(p)
    for p in (
        "chưa test",
        "chưa xét nghiệm",
        "chưa làm xét nghiệm",
        "chưa đi test",
        "không test",
        "không xét nghiệm",
        "chưa được test",
        "chưa làm test",
        "chưa được xét nghiệm",
        "chưa lấy mẫu",
        *("not tested", "chưa tested", "never tested", "haven't tested"),  # not "no test": "nó test ra dương"
        *("đâu mà test", "đâu mà xét nghiệm", "mô mà test", "mô mà thử", "đâu mà thử"),  # "có đi đâu đâu mà test"
        *("muốn đi test", "muốn được test", "muốn xét nghiệm", "muốn đi xét nghiệm"),  # wanting a test: none yet
    )
]


_NEVER = [split_phrase(p) for p in ("chưa", "không", "hổng", "chẳng", "chưa từng")]
# "chưa có làm xét nghiệm", "chưa đi test", "chưa ai lấy mẫu cho tui"
_BETWEEN = ("có", "đi", "làm", "được", "cho", "hề", "bao giờ", "ai", "phải")  # "chưa phải chọc mũi lần nào"
_TESTS = [split_phrase(p) for p in ("test", "xét nghiệm", "lấy mẫu", "pcr", "chọc mũi", "ngoáy mũi", "quẹt mũi")]


def says_not_tested(text: str) -> bool:
    """'chưa test', 'chưa có làm xét nghiệm', 'không đi test bao giờ'."""
    if says(text, NOT_TESTED_PHRASES):
        return True
    ws = words(text)
    for i in range(len(ws)):
        if any(phrase_at(ws, i, n) for n in _NEVER):
            j = i + 1
            while j < len(ws) and j - i <= 3 and any(matches(ws[j], b) for b in _BETWEEN):
                j += 1
            if any(phrase_at(ws, j, t) for t in _TESTS):
                return True
    return False


# ---------------------------------------------------------------------------------------------- vaccine doses

_DOSE = ("mũi",)
# Doses told as a story: "đi tiêm hai đợt ở trạm", "chích 3 lần rồi" count only beside a word of vaccination
# ("test hai lần" is two tests).
_STORY_UNITS = [split_phrase(p) for p in ("lần", "đợt", "liều", "booster", "mũi nhắc")]
_BOOSTER = [split_phrase(p) for p in ("nhắc lại", "tăng cường", "booster", "mũi nhắc", "nhắc thêm", "lần nhắc")]
# A story of doses names each by its vaccine or its day: "Astra hồi tháng 8, rồi Pfizer, rồi nhắc Moderna" is three.
_BRANDS = [
    split_phrase(p)
    for p in (
        *("astra", "astrazeneca", "az", "pfizer", "moderna", "vero", "verocell", "vero cell", "sinopharm"),
        *("sputnik", "abdala", "janssen", "hayat", "covaxin", "nanocovax", "sinovac", "johnson"),
    )
]
_NOT_DONE = [
    split_phrase(p) for p in ("chưa", "không", "hổng", "chờ", "đợi", "sắp", "định", "sẽ", "hẹn", "hoãn", "dời", "lỡ")
]
_MEANT_FOR = [split_phrase(p) for p in ("tính", "định", "sắp", "chờ", "đợi", "hẹn", "lịch")]  # "tới lịch mũi hai"
_VACCINATION = [split_phrase(p) for p in ("tiêm", "chích", "vắc xin", "vaccine", "vacxin", "vaccin", "mũi", "vắc-xin")]
_ORDINAL = ("thứ",)
_FIRST = [split_phrase(p) for p in ("đầu", "đầu tiên", "một")]  # "mới tiêm được mũi đầu": one dose
_MORE = [
    split_phrase(p) for p in ("thêm", "cộng", "với", "rồi")
]  # "chích Pfizer hai lần, rồi chích thêm Moderna một lần", "Astra hai lần, rồi Moderna một lần": three


# "sổ mũi", "chảy mũi", "nghẹt mũi": the nose, not a dose.
_NOSE = ("sổ", "chảy", "nghẹt", "ngạt", "tắc", "xổ", "xì")


def _names_a_dose(ws: list[Word], i: int) -> bool:
    """ "mũi", or "lần" / "đợt" told after a word of vaccination ("tiêm lần một, lần hai ở bệnh viện"; "đợt" anywhere
    after it: "tiêm đủ rồi, đợt 1 tháng 8, đợt 2 tháng 9")."""
    if phrase_at(ws, i, _DOSE):
        return not (i and any(matches(ws[i - 1], n) for n in _NOSE))
    if not any(phrase_at(ws, i, unit) for unit in (("lần",), ("đợt",))):
        return False
    since = 0 if phrase_at(ws, i, ("đợt",)) else max(0, i - 6)
    return any(phrase_at(ws, k, v) for k in range(since, i) for v in _VACCINATION)


def _dose_count_at(ws: list[Word], i: int) -> tuple[int, int] | None:
    """A count of doses from word i: (doses, words used) for '2 mũi', 'mũi 3', 'mũi thứ ba', 'hai đợt' (beside
    'tiêm'), or None."""
    if _names_a_dose(ws, i):  # "mũi 3", "mũi thứ ba", "mũi đầu", "tiêm lần một"
        if i + 1 < len(ws) and ws[i + 1].canonical == "sau":
            return 2, 2  # "mũi đầu ..., mũi sau ...": the next one (not "mũi sáu")
        skip = 1 + phrase_at(ws, i + 1, _ORDINAL)
        if any(phrase_at(ws, i + skip, first) for first in _FIRST[:2]):
            return 1, skip + 1
        number = number_at(ws, i + skip)
        return (int(number[0]), skip + number[1]) if number else None
    number = number_at(ws, i)
    if number is None:
        return None
    after = i + number[1]
    if phrase_at(ws, after, _DOSE):
        return int(number[0]), number[1] + 1
    vaccination_near = any(
        phrase_at(ws, k, v) for k in range(max(0, i - 4), min(len(ws), after + 4)) for v in _VACCINATION
    )
    if vaccination_near and any(phrase_at(ws, after, unit) for unit in _STORY_UNITS):
        return int(number[0]), number[1] + 1
    if i > 0 and matches(ws[i - 1], "thêm") and _vaccination_before(ws, i):
        unit = any(phrase_at(ws, after, u) for u in _STORY_UNITS)  # "chích thêm một", "thêm một lần ở nhà văn hóa"
        return int(number[0]), number[1] + unit
    return None


def _vaccination_before(ws: list[Word], i: int) -> bool:
    return any(phrase_at(ws, k, v) for k in range(max(0, i - 12), i) for v in _VACCINATION)


def find_doses(text: str, expected: bool = False, speaker: Speaker = ALONE) -> list[Found]:
    """The resident's vaccine doses, a corrected count first: '2 mũi', 'hai mũi', 'mũi 3', 'tiêm hai đợt',
    '4 mũi à nhầm 3 mũi'; someone else's ('bố mẹ em thì 4 mũi') left out. With `expected` (the question was about
    doses) also a bare '2', and a story of doses told by vaccine or day ('Sinopharm ngày 5/9 với 3/10, Pfizer ngày
    20/1': three)."""
    ws = words(text)
    found = corrected(_added_up(dose_mentions(text, expected, speaker), ws, text), text)
    if found and (total := _total_told(ws, found[0])) is not None:
        return [total]  # "2 mũi + booster Pfizer tháng trước là 3": the sum the resident made
    if not expected:
        return found
    story = _doses_in_story(text, speaker)
    if story >= 2 and (not found or found[0].value < story):
        return [Found("doses", 0, len(text), story)]
    return found[:1]


_TOTAL = [split_phrase(p) for p in ("tổng là", "tổng cộng", "tổng cộng là", "tất cả là", "tổng", "là")]


def _total_told(ws: list[Word], counted: Found) -> Found | None:
    """A total said last, in the clause of the doses counted ("2 mũi + booster là 3", "tổng cộng 4 mũi"), and not
    below them: "2 mũi, vợ là 3" is the wife's."""
    for i in range(len(ws) - 1, 0, -1):
        number = number_at(ws, i)
        if number and number[0] <= 6 and i + number[1] >= len(ws) - 1:
            said = next((t for t in _TOTAL if phrase_at(ws, i - len(t), t)), None)
            one_clause = not any(w.after_mark for w in ws if counted.start < w.start <= ws[i].start)
            if said and one_clause and counted.value <= number[0]:
                return Found("doses", counted.start, ws[i].end, int(number[0]))
            return None
    return None


def _doses_in_story(text: str, speaker: Speaker) -> int:
    """How many doses a story names: each vaccine named is one, and each day of vaccination is one."""
    ws, others = words(text), others_spans(text, speaker)
    named = [i for i in range(len(ws)) if any(phrase_at(ws, i, b) for b in _BRANDS)]
    # One vaccine may have two names in a row ("Sinopharm Vero Cell", "Johnson & Johnson"): counted once.
    brands = [i for i in named if i - 1 not in named and not about_someone_else(ws[i].start, others)]
    days = [
        f
        for f, when in find_times(text)
        if when.day_of_month is not None and not about_someone_else(f.start, others) and not _about_a_test(ws, f.start)
    ]
    return max(len(brands), len(days))


def _about_a_test(ws: list[Word], start: int) -> bool:
    """A day said in a clause about a test ('còn test thì ngày 3/3 âm tính') is not a day of vaccination."""
    i = next(k for k, w in enumerate(ws) if w.start >= start)
    clause_start = next((k for k in range(i, -1, -1) if ws[k].after_mark), 0)
    clause_end = next((k for k in range(i + 1, len(ws)) if ws[k].after_mark), len(ws))
    clause = ws[clause_start:clause_end]
    return any(phrase_at(clause, k, c) for k in range(len(clause)) for c in _TEST_WORDS)


def dose_mentions(text: str, expected: bool = False, speaker: Speaker = ALONE) -> list[Found]:
    """Every count of the resident's doses as said, before corrections and sums (the NLU marks each: "2 mũi Astra
    với 1 mũi Pfizer")."""
    ws, found, others = words(text), [], others_spans(text, speaker)
    for i in range(len(ws)):
        if found and found[-1].end > ws[i].start:
            continue  # inside the doses just found
        count = _dose_count_at(ws, i)
        if count and count[0] <= 6 and not _negated(ws, i, text) and not about_someone_else(ws[i].start, others):
            end = ws[i + count[1] - 1].end
            meant = i > 1 and any(phrase_at(ws, k, w) for k in (i - 2, i - 1) for w in _MEANT_FOR)  # "tính đi mũi ba"
            awaited = _names_a_dose(ws, i) and count[0] > 1 and (meant or _not_done_after(ws, end))
            found.append(Found("doses", ws[i].start, end, count[0] - awaited))  # "mũi 4 hẹn tuần sau": three
    if not found and expected:  # a bare number, but not of a date ("tháng 3 năm sau": no five, no six)
        numbers = [
            (number_at(ws, i), i)
            for i in range(len(ws))
            if not _in_a_date(ws, i) and not about_someone_else(ws[i].start, others)
        ]
        found = [Found("doses", ws[i].start, ws[i + n[1] - 1].end, int(n[0])) for n, i in numbers if n and n[0] <= 6]
    return found


_DATE_WORDS = ("tháng", "năm", "ngày", "hôm", "bữa", "mồng", "mùng")


def _in_a_date(ws: list[Word], i: int) -> bool:
    before = i > 0 and any(matches(ws[i - 1], w) for w in _DATE_WORDS)
    after = ws[i + 1] if i + 1 < len(ws) else None  # "năm sau", "năm 2021": a year, not five
    year = matches(ws[i], "năm") and after is not None and (after.text.isdecimal() or after.canonical in _YEAR_AFTER)
    return before or year


_YEAR_AFTER = ("sau", "nay", "ngoái", "trước", "kia", "rồi")


def _added_up(found: list[Found], ws: list[Word], text: str) -> list[Found]:
    """Doses told in parts: 'hai lần, rồi chích thêm một lần', '2 mũi + 1 booster' (their sum); 'mũi đầu AZ, mũi hai
    Pfizer, rồi nhắc lại Moderna' (the doses named one by one, and a booster after them)."""
    ordinal = [_names_a_dose(ws, _index_at(ws, f.start)) for f in found]
    if len(found) >= 2 and not ordinal[-1] and _not_done_after(ws, found[-1].end):
        found, ordinal = found[:-1], ordinal[:-1]  # "2 mũi, 1 mũi nữa thì hẹn": not given (an ordinal counts less)
    if len(found) == 2 and not any(ordinal):  # counts add up; "mũi hai", "lần thứ ba" name the dose reached
        between = [w for w in ws if found[0].end <= w.start < found[1].start]
        plus = "+" in text[found[0].end : found[1].start]
        if plus or any(phrase_at(between, k, m) for k in range(len(between)) for m in _MORE):
            return [replace(found[0], end=found[1].end, value=found[0].value + found[1].value)]
    named_one_by_one = len(found) >= 2 and all(_names_a_dose(ws, _index_at(ws, f.start)) for f in found)
    if named_one_by_one and [f.value for f in found] == list(range(1, len(found) + 1)):
        booster = _booster_after(ws, found[-1].end)
        return [replace(found[0], end=found[-1].end, value=len(found) + booster)]
    if len(found) == 2 and ordinal[1] and found[1].value > found[0].value:
        return [replace(found[0], end=found[1].end, value=found[1].value)]  # "một mũi ..., mới tiêm nốt mũi hai"
    if len(found) == 1 and not phrase_at(ws, _index_at(ws, found[0].start), _DOSE) and _booster_after(ws, found[0].end):
        return [replace(found[0], value=found[0].value + 1)]  # "hai mũi, sau đó nhắc thêm Pfizer": three
    return found


def _not_done_after(ws: list[Word], end: int) -> bool:
    """Within its clause: "mũi hai thì bị sốt nên hoãn" (not "mũi 2 tháng 9, chưa tiêm mũi 3")."""
    after = [w for w in ws if w.start >= end][:7]
    clause = next((k for k, w in enumerate(after) if w.after_mark), len(after))
    return any(phrase_at(after[:clause], j, n) for j in range(clause) for n in _NOT_DONE)


_TEST_WORDS = [*_TESTS, split_phrase("âm tính"), split_phrase("dương tính")]  # a test, or its result
_THEN = [split_phrase(p) for p in ("thêm", "cộng", "sau đó", "rồi", "với", "và", "xong", "nhắc thêm")]


def _booster_after(ws: list[Word], end: int) -> bool:
    """A booster told after the doses counted, joined to them ("cộng", "sau đó", "thêm"), and not denied ("còn
    mũi nhắc thì em chưa đi"); "3 mũi, có booster rồi" and "3 mũi, mũi 3 là booster" name no extra one."""
    after = [w for w in ws if w.start >= end]
    for k in range(len(after)):
        booster = next((b for b in _BOOSTER if phrase_at(after, k, b)), None)
        if booster is None:
            continue
        if not any(phrase_at(after, j, t) for j in range(k + len(booster)) for t in _THEN):
            return False
        if phrase_at(after, k - 2, _DOSE) or phrase_at(after, k - 1, ("là",)):
            return False  # "mũi 3 là booster": the booster is one of the doses counted
        near = range(max(0, k - 2), min(len(after), k + len(booster) + 4))
        return not any(phrase_at(after, j, n) for j in near for n in _NOT_DONE)
    return False


def _index_at(ws: list[Word], start: int) -> int:
    return next(k for k, w in enumerate(ws) if w.start == start)


# ---------------------------------------------------------------------------------------------- days and times

_WEEKDAYS = {"hai": 0, "ba": 1, "tư": 2, "bốn": 2, "năm": 3, "sáu": 4, "bảy": 5}
# Whole English names only: typed without accents, "sat", "mon" are sát, món.
_ENGLISH_WEEKDAYS = {
    name: weekday
    for weekday, name in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))
}
_PARTS_OF_DAY = {"sáng": time(9), "trưa": time(12), "chiều": time(15), "tối": time(19), "đêm": time(21)}
_DAY_OFFSETS = [
    (split_phrase("hôm nay"), 0),
    (split_phrase("bữa nay"), 0),
    (split_phrase("ngày hôm nay"), 0),
    (split_phrase("hôm qua"), -1),
    (split_phrase("bữa qua"), -1),
    (split_phrase("ngày hôm qua"), -1),
    (split_phrase("hôm kia"), -2),
    (split_phrase("bữa kia"), -2),
    (split_phrase("hôm tê"), -2),  # Central: tê = kia
    (split_phrase("bữa tê"), -2),
    (split_phrase("hôm ni"), 0),  # Central: ni = nay
    (split_phrase("bữa ni"), 0),
    (split_phrase("bữa hổm"), -3),  # Southern: the other day
    (split_phrase("hổm rày"), -3),  # Southern: these past days
    (split_phrase("hôm trước"), -2),
    (split_phrase("ngày mai"), 1),
    (split_phrase("mai"), 1),
    (split_phrase("ngày kia"), 2),
    (split_phrase("mốt"), 2),
    (split_phrase("tuần trước"), -7),
    (split_phrase("tuần rồi"), -7),
    (split_phrase("đầu tuần"), None),
    (split_phrase("mấy hôm nay"), -3),
    (split_phrase("mấy ngày nay"), -3),
    (split_phrase("mấy bữa nay"), -3),
    (split_phrase("mấy hôm rồi"), -3),
    (split_phrase("mấy ngày rồi"), -3),
]
_NOW_WORDS = [split_phrase(p) for p in ("một lát nữa", "lát nữa", "chút nữa", "tí nữa", "lát")]


@dataclass(frozen=True)
class When:
    """A day or time expression, resolved against a reference moment by the caller's needs."""

    day_offset: int | None = None  # relative day (-1 = yesterday)
    weekday: int | None = None  # 0 = Monday
    day_of_month: int | None = None
    month: int | None = None
    year: int | None = None
    clock: time | None = None  # an hour given ("5 giờ chiều")
    part_of_day: str | None = None  # sáng/trưa/chiều/tối/đêm without an hour
    delta: timedelta | None = None  # "30 phút nữa"
    start_of_week: bool = False
    week: int | None = None  # the weekday's week, from this one: "thứ sáu tuần trước" = -1
    vague: bool = False  # "lát nữa": good enough for a call back, not a day to record

    def on_day(self, today: date, past: bool) -> date:
        """The calendar day meant, looking back (`past`: onset, test date) or ahead (callbacks)."""
        if self.start_of_week:
            return today - timedelta(days=today.weekday())
        if self.day_of_month is not None:
            return _calendar_day(today, self.day_of_month, self.month, self.year, past)
        if self.weekday is not None and self.week is not None:
            return today + timedelta(days=self.weekday - today.weekday() + 7 * self.week)
        if self.weekday is not None:
            shift = (today.weekday() - self.weekday) % 7 if past else (self.weekday - today.weekday()) % 7
            return today - timedelta(days=shift) if past else today + timedelta(days=shift)
        return today + timedelta(days=self.day_offset or 0)

    def as_date(self, today: date) -> date:
        return self.on_day(today, past=True)

    def as_moment(self, now: datetime) -> datetime:
        """The moment meant for a call back: the next matching time after `now`."""
        if self.delta is not None:
            return now + self.delta
        day = self.on_day(now.date(), past=False)
        clock = self.clock or _PARTS_OF_DAY.get(self.part_of_day or "")
        if clock is None:
            return now + timedelta(hours=2) if day == now.date() else datetime.combine(day, time(9), now.tzinfo)
        moment = datetime.combine(day, clock, now.tzinfo)
        if self.clock and not self.part_of_day and clock.hour < 12 and moment <= now and day == now.date():
            moment += timedelta(hours=12)  # "5 giờ" said at 10 am means 5 pm
        if moment <= now and self.day_offset is None and self.weekday is None:
            moment += timedelta(days=1)
        return moment


def _calendar_day(today: date, day: int, month: int | None, year: int | None, past: bool) -> date:
    month = month or today.month
    year = year or today.year
    if year < 100:
        year += 2000
    try:
        candidate = date(year, month, day)
    except ValueError:
        return today
    if past and candidate > today and year == today.year:
        previous = (month - 2) % 12 + 1
        return date(year - (month == 1), previous, min(day, 28 if previous == 2 else 30))
    return candidate


def _part_of_day(ws: list[Word], i: int) -> str | None:
    return next((part for part in _PARTS_OF_DAY if i < len(ws) and matches(ws[i], part)), None)


def _clock_at(ws: list[Word], i: int) -> tuple[time, int] | None:
    """'5 giờ', '5h', '17h30', '5 giờ rưỡi', '5 giờ 15', 'năm giờ chiều' (the part of day read separately)."""
    if i >= len(ws):
        return None
    glued = re.fullmatch(r"(\d{1,2})(?:h|g|:)(\d{2})?", ws[i].text.lower())
    if glued:
        hour, minute, used = int(glued.group(1)), int(glued.group(2) or 0), 1
    else:
        number = number_at(ws, i)
        if number is None or not phrase_at(ws, i + number[1], ("giờ",)) or ws[i + number[1]].after_mark:
            return None
        hour, minute, used = int(number[0]), 0, number[1] + 1
    if i + used < len(ws) and matches(ws[i + used], "rưỡi"):
        minute, used = 30, used + 1
    elif i + used < len(ws) and ws[i + used].text.isdecimal() and int(ws[i + used].text) < 60 and not glued:
        minute, used = int(ws[i + used].text), used + 1
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute), used


def _with_part(clock: time, part: str | None) -> time:
    if part in ("chiều", "tối", "đêm") and clock.hour < 12:
        return clock.replace(hour=clock.hour + 12)
    return clock


def _amount_at(ws: list[Word], i: int) -> tuple[float, int] | None:
    """A number before a unit of time: "nửa" (half) and an unaccented "mot" (một, not mốt) too."""
    if matches(ws[i], "nửa") and i + 1 < len(ws) and any(matches(ws[i + 1], u) for u in ("tiếng", "phút", "giờ")):
        return 0.5, 1
    return (1.0, 1) if _one_counted(ws, i) else number_at(ws, i)


def _when_at(ws: list[Word], i: int) -> tuple[When, int] | None:
    """The time expression starting at word i, and how many words it takes."""
    # "30 phút nữa", "1 tiếng nữa", "2 tiếng nữa", "nửa tiếng nữa", "10p nữa"
    glued = i < len(ws) and re.fullmatch(r"(\d{1,3})(?:p|ph|phút|phut)", ws[i].text.lower())
    if glued and phrase_at(ws, i + 1, ("nữa",)):
        return When(delta=timedelta(minutes=int(glued.group(1)))), 2
    number = _amount_at(ws, i)
    if number and i + number[1] + 1 < len(ws) + 1:
        j = i + number[1]
        for unit, minutes in ((("phút",), 1), (("tiếng",), 60), (("giờ", "nữa"), 60), (("tiếng", "nữa"), 60)):
            if phrase_at(ws, j, unit):
                used = number[1] + len(unit) + (1 if phrase_at(ws, j + len(unit), ("nữa",)) else 0)
                if unit[-1] == "nữa" or phrase_at(ws, j + len(unit), ("nữa",)):
                    return When(delta=timedelta(minutes=number[0] * minutes)), used
        # "3 ngày nay", "2 hôm trước", "3 ngày rồi", "cách đây 3 ngày" (handled below for cách đây)
        for unit in (("ngày",), ("hôm",), ("bữa",)):
            if phrase_at(ws, j, unit):
                tail = j + 1  # its marks may be wrong: "ba ngày nây" (the unit said it)
                if tail < len(ws) and ws[tail].folded in ("nay", "truoc", "roi", "qua"):
                    return When(day_offset=-int(number[0])), number[1] + 2
        if phrase_at(ws, j, ("tuần",)) and any(phrase_at(ws, j + 1, (w,)) for w in ("nay", "trước", "rồi")):
            return When(day_offset=-7 * int(number[0])), number[1] + 2
    if phrase_at(ws, i, ("cách", "đây")) and (number := number_at(ws, i + 2)):
        j = i + 2 + number[1]
        if any(phrase_at(ws, j, (unit,)) for unit in ("ngày", "hôm", "bữa")):
            return When(day_offset=-int(number[0])), 2 + number[1] + 1
    # clock times, optionally followed by a part of day and a day: "5 giờ chiều mai", "17h hôm nay"
    clock = _clock_at(ws, i)
    if clock:
        used = clock[1]
        part = _part_of_day(ws, i + used)
        used += 1 if part else 0
        day = _day_at(ws, i + used)
        when = day[0] if day else When(day_offset=0)
        used += day[1] if day else 0
        return When(**{**when.__dict__, "clock": _with_part(clock[0], part), "part_of_day": part}), used
    # "hồi sáng", "lúc trưa", "hồi chiều": earlier today (Southern "hồi" is "earlier"); "từ sáng": since this morning
    earlier = any(phrase_at(ws, i, (w,)) for w in ("hồi", "lúc", "từ")) and _part_of_day(ws, i + 1)
    if earlier and not (i + 2 < len(ws) and (_day_at(ws, i + 2) or phrase_at(ws, i + 2, ("qua",)))):
        return When(day_offset=0, part_of_day=earlier), 2
    # a part of day before a day word: "sáng nay", "tối qua", "chiều mai", "sáng thứ hai"
    part = _part_of_day(ws, i)
    if part and i + 1 < len(ws):
        if phrase_at(ws, i + 1, ("nay",)) or phrase_at(ws, i + 1, ("ni",)):  # "chiều ni": Central
            return When(day_offset=0, part_of_day=part), 2
        if phrase_at(ws, i + 1, ("qua",)):
            return When(day_offset=-1, part_of_day=part), 2
        day = _day_at(ws, i + 1)
        if day:
            return When(**{**day[0].__dict__, "part_of_day": part}), 1 + day[1]
    day = _day_at(ws, i)
    if day:
        return day
    for phrase in _NOW_WORDS:
        if phrase_at(ws, i, phrase):
            return When(delta=timedelta(minutes=30), vague=True), len(phrase)
    return None


_WEEKS = [(split_phrase(p), week) for p, week in (("tuần trước nữa", -2), ("tuần kia", -2), ("tuần trước", -1))]
_WEEKS += [(split_phrase(p), week) for p, week in (("tuần rồi", -1), ("tuần vừa rồi", -1))]
_WEEKS += [(split_phrase(p), week) for p, week in (("tuần này", 0), ("tuần ni", 0), ("tuần sau", 1), ("tuần tới", 1))]


def _day_at(ws: list[Word], i: int) -> tuple[When, int] | None:
    """A day from word i; a weekday may name its week after it ("thứ sáu tuần trước", "chủ nhật tuần này")."""
    day = _plain_day_at(ws, i)
    if day is None or day[0].weekday is None:
        return day
    when, used = day
    for phrase, week in _WEEKS:
        if phrase_at(ws, i + used, phrase):
            return replace(when, week=week), used + len(phrase)
    return day


def _one_counted(ws: list[Word], i: int) -> bool:
    """An unaccented "mot" before a counted word is một (one): "mot lan", "mot chut"; "mot" alone is mốt."""
    counted = ("lần", "chút", "tí", "xíu", "người", "mũi", "ngày", "hôm", "tuần", "tháng", "tiếng", "phút", "giờ")
    counted += ("vạch",)
    return ws[i].text.lower() == "mot" and i + 1 < len(ws) and any(matches(ws[i + 1], w) for w in counted)


def _plain_day_at(ws: list[Word], i: int) -> tuple[When, int] | None:
    for phrase, offset in _DAY_OFFSETS:
        if (phrase_at(ws, i, phrase) or (len(phrase) > 1 and phrase_sounds_at(ws, i, phrase))) and not (
            (phrase == ("mai",) and i > 0 and ws[i].text == "Mai")  # chị Mai
            or (phrase == ("mốt",) and _one_counted(ws, i))
        ):
            if offset is None:
                return When(start_of_week=True), len(phrase)
            return When(day_offset=offset), len(phrase)
    if phrase_at(ws, i, ("chủ", "nhật")):
        return When(weekday=6), 2
    if i < len(ws) and re.fullmatch(r"t[2-7]", ws[i].text.lower()):
        return When(weekday=int(ws[i].text[1]) - 2), 1
    if i < len(ws) and ws[i].text.lower() == "cn":
        return When(weekday=6), 1
    if i < len(ws) and (weekday := _ENGLISH_WEEKDAYS.get(ws[i].text.lower())) is not None:
        return When(weekday=weekday), 1  # "từ Sunday"
    if phrase_at(ws, i, ("thứ",)) and i + 1 < len(ws):
        nxt = ws[i + 1]
        if nxt.text.isdecimal() and 2 <= int(nxt.text) <= 7:
            return When(weekday=int(nxt.text) - 2), 2
        for name, weekday in _WEEKDAYS.items():
            if matches(nxt, name):
                return When(weekday=weekday), 2
    # "20/6", "20/6/2021", "20-6", "ngày 2/7"
    lead = 1 if phrase_at(ws, i, ("ngày",)) else 0
    if i + lead < len(ws) and (m := re.fullmatch(r"(\d{1,2})[/-](\d{1,2})(?:[/-](\d{2,4}))?", ws[i + lead].text)):
        return When(
            day_of_month=int(m.group(1)), month=int(m.group(2)), year=int(m.group(3)) if m.group(3) else None
        ), 1 + lead
    # "ngày 20", "ngày 20 tháng 6", "hôm 15" (digits: "hôm hai" is not a day of the month)
    dated = any(phrase_at(ws, i, (w,)) for w in ("ngày", "mồng", "mùng")) or (
        any(phrase_at(ws, i, (w,)) for w in ("hôm", "bữa")) and i + 1 < len(ws) and ws[i + 1].text.isdecimal()
    )
    if dated and (number := number_at(ws, i + 1)) and 1 <= number[0] <= 31:
        used = 1 + number[1]
        month = None
        if phrase_at(ws, i + used, ("tháng",)) and (m := number_at(ws, i + used + 1)) and 1 <= m[0] <= 12:
            month, used = int(m[0]), used + 1 + m[1]
        return When(day_of_month=int(number[0]), month=month), used
    return None


def find_times(text: str) -> list[tuple[Found, When]]:
    """Day and time expressions, longest first at each place: 'từ hôm qua' -> 'hôm qua'; the 'mốt' of '39 độ mốt'
    is a decimal, not the day after tomorrow."""
    temperatures = _temperature_mentions(text, expected=False)
    return [
        (found, when)
        for found, when in _time_mentions(text)
        if not any(t.start <= found.start < t.end for t in temperatures)
    ]


def _time_mentions(text: str) -> list[tuple[Found, When]]:
    ws, found, i = words(text), [], 0
    while i < len(ws):
        hit = _when_at(ws, i)
        if hit is None:
            i += 1
            continue
        when, used = hit
        if when.clock is None and when.delta is None:  # "tối nay 8 giờ", "mai lúc 9h": the day, then the hour
            lead = 1 if phrase_at(ws, i + used, ("lúc",)) else 0
            if clock := _clock_at(ws, i + used + lead):
                when = replace(when, clock=_with_part(clock[0], when.part_of_day))
                used += lead + clock[1]
        found.append((Found("time", ws[i].start, ws[i + used - 1].end, when), when))
        i += used
    return found


# "hôm qua khai rồi", "tuần trước hỏi rồi": the day of an earlier call, not of a symptom or a test.
_ASKED_BEFORE = re.compile(r"(?i)\s+(em |tôi |tui |mình )?(đã )?(khai|hỏi|khai báo|gọi)( báo)? rồi")


_MET = [split_phrase(p) for p in ("tiếp xúc", "gặp", "với", "vs", "cùng", "chung")]


def _someone_elses_day(ws: list[Word], others: list[tuple[int, int]], start: int) -> bool:
    """'chồng em dương tính hôm qua': the husband's day; 'gặp F0 hôm kia' is the day the resident met a case."""
    before = [w for w in ws if w.end <= start]
    met = any(phrase_at(before, k, m) for k in range(len(before)) for m in _MET)
    return about_someone_else(start, others) and not met


# The lines of a rapid test ("một vạch", "T không lên") are a result to the dialogue, not a result phrase the NLU
# marks (bot/ANNOTATION.md).
_READ_FROM_THE_STRIP = re.compile(r"vach|khong len")


def find_all(text: str) -> list[Found]:
    """Every entity the NLU marks, in text order (time values as text; the dialogue resolves them); a value taken
    back by a correction is not marked."""
    return list(_marked(text))


@lru_cache(maxsize=256)  # the engine reads each message twice: `NotUnderstood`, then the entity extractor
def _marked(text: str) -> tuple[Found, ...]:
    results = [f for f in find_test_results(text) if not _READ_FROM_THE_STRIP.search(fold(text[f.start : f.end]))]
    values = [*find_temperatures(text), *results, *dose_mentions(text)]
    items = [*own_symptom_mentions(text), *only_corrected(values, text)]
    ws, others = words(text), others_spans(text)
    times = [
        Found("time", f.start, f.end, text[f.start : f.end])
        for f, when in find_times(text)
        if not when.vague and not _someone_elses_day(ws, others, f.start) and not _ASKED_BEFORE.match(text, f.end)
    ]
    items += only_corrected(times, text)
    items.sort(key=lambda f: (f.start, -(f.end - f.start)))
    kept: list[Found] = []
    for item in items:  # overlapping spans: the earlier, longer one wins ("38 độ 5" is not also a time)
        if not kept or item.start >= kept[-1].end:
            kept.append(item)
    return tuple(kept)


URGENT_CODES = {"shortness_of_breath", "chest_pain"}
# Words that call for help now, whoever is in danger ("người nhà tôi ngất rồi" is an emergency too).
_EMERGENCY_WORDS = [
    split_phrase(p)
    for p in (
        "cứu",
        "cấp cứu",
        "115",
        "ngất",
        "xỉu",
        "bất tỉnh",
        "tím tái",
        "môi tím",
        "co giật",
        "lịm",
        "hôn mê",
        "nguy kịch",
        "sắp chết",
        "spo2",
        "oxy",
        "gấp",
        "khẩn cấp",
        "không chịu nổi",
        "help",
        "sos",
    )
]


def names_an_emergency(text: str) -> bool:
    """Words of danger now: an urgent symptom not denied, or a call for help. The classifier's 'emergency' needs
    them: an answer like 'tối qua ạ' taken for an emergency would raise a false urgent alert."""
    if any(f.value in URGENT_CODES and not denied for f, denied in symptom_mentions(text)):
        return True
    return says(text, _EMERGENCY_WORDS)


def is_unknown_answer(text: str, at_start: bool = False) -> bool:
    """'không biết', 'không rõ', 'không nhớ', 'chả biết nữa', 'lúc ở lúc không' (`at_start`: said first)."""
    ws = words(text)
    phrases = [
        split_phrase(p)
        for p in (
            "không biết",
            "không rõ",
            "không nhớ",
            "chả biết",
            "chẳng biết",
            "không chắc",
            "chưa rõ",
            "chưa biết",
            "không nhớ rõ",
            "quên rồi",
            "not sure",
            "ai biết",
            "chịu",
            *("không sure", "lúc có lúc không", "lúc ở lúc không", "khi có khi không", "khi ở khi không"),
            *("đâu có biết", "có biết đâu", "biết đâu được", "làm sao biết", "sao mà biết"),  # "tui đâu có biết được"
        )
    ]
    return any(phrase_sounds_at(ws, i, p) for i in (range(1) if at_start else range(len(ws))) for p in phrases)


__all__ = [
    "Found",
    "When",
    "find_all",
    "find_doses",
    "find_symptoms",
    "find_temperatures",
    "find_test_results",
    "find_times",
    "others_tested_positive",
    "fold",
    "is_unknown_answer",
    "names_an_emergency",
    "says_not_tested",
    "spoken_number",
]
