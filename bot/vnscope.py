"""Whose facts, and which of two values: the scope of what a resident says in one answer.

- Other people: "vợ tôi dương tính", "thằng cu nhà tôi ho", "ổng sốt 39 độ". A fact belongs to the last person
  named before it; the resident (tôi, em, mình, tui...) unless someone else was named since. The possessive after a
  relative ("vợ tôi", "con em") is part of naming the relative, not the resident speaking.
- Self-corrections: "39 độ, à nhầm, 38 độ 4", "tiêm 3 mũi, à không, 2 mũi", "dương tính, ơ nhầm, âm tính". The value
  said after the last correction wins.

Pure Python on top of `bot.vntext`; offsets are into the NFC text, like every finder's.
"""

from dataclasses import dataclass
from functools import lru_cache

from bot.vntext import Word, matches, phrase_at, split_phrase, words


@dataclass(frozen=True)
class Speaker:
    """Who answers, and the word this conversation calls the resident by: "bà" when a grandmother said "bà đây", "mẹ"
    when her son said "mẹ đi rẫy, tôi nói giúp mẹ". That word names the resident, not someone else."""

    proxy: bool = False  # a relative answers for the resident: their "nó", "cháu" is the resident
    called: tuple[str, ...] = ()


ALONE = Speaker()

# Someone else, whatever follows: spouses, parents, neighbours, "ổng/bả" (Southern he/she), "nó", "họ".
_OTHERS = sorted(
    (
        split_phrase(p)
        for p in (
            "vợ",
            "chồng",
            "ông xã",
            "bà xã",
            "hàng xóm",
            "đồng nghiệp",
            "bố",
            "mẹ",
            "mạ",  # Central: mother
            *("bọ tui", "bọ tôi", "bọ em", "bọ hắn", "mụ nhà", "mệ tui", "mệ tôi"),  # Central: father, wife, grandma
            "tía",  # Southern: father
            "ba mẹ",
            "cha mẹ",
            "người nhà",
            "ông nhà",
            "bà nhà",
            "thằng",
            "con bé",
            "bé nhà",
            "cu nhà",
            "cu con",
            "sếp",
            "người yêu",
            "bạn trai",
            "bạn gái",
            "bạn bè",
            "người ta",
            "bệnh nhân",
            "ca bệnh",
            "f0",
            "đứa",
            "mấy đứa",
            "tụi nhỏ",
            "tụi nó",
            "bọn nó",
            "bọn trẻ",
            "lũ trẻ",
            "con nít",
            "cô giáo",
            "thầy giáo",
            "ai",  # "không gặp ai dương tính": anyone
            "có người",
            "một người",
            *("mấy người", "nhiều người", "vài người", "người khác", "hấn"),  # "hấn": Nghệ Tĩnh "he"
            "người quen",
            *("bạn cùng", "bạn học", "bạn thân", "bạn của", "có bạn"),  # "bạn cùng công ty", "lớp nó có bạn"
            *("tổ trưởng", "quản lý", "giám đốc", "chủ nhà", "chủ trọ", "tài xế", "cháu nội", "cháu ngoại"),
        )
    ),
    key=lambda phrase: -len(phrase),
)
_ANYONE = [split_phrase(p) for p in ("ai", "có người", "một người", "người ta", "có bạn")]
# People outside the family: someone else even when a relative answers for the resident.
_OUTSIDERS = [
    split_phrase(p)
    for p in (
        *("hàng xóm", "đồng nghiệp", "sếp", "người yêu", "bạn trai", "bạn gái", "bạn bè", "người ta", "bệnh nhân"),
        *("ca bệnh", "f0", "cô giáo", "thầy giáo", "ai", "có người", "một người", "người quen", "bạn", "có bạn"),
    )
]
# Words that are everyday words too when typed without accents ("ho" is cough, "no" is English, "ba" is three):
# they name someone else only when typed with their accents.
_ACCENTED_OTHERS = {"họ", "bả", "ổng", "má", "nó", "bé", "ảnh", "ông", "bà", "cụ"}
# Kinship words that are also how residents say "I" or "you" ("em bị ho", "chị hỏi đi"): someone else only with a
# word after them that makes them a relative ("con tôi", "anh ấy", "bà ngoại", "em trai").
_KIN = ("anh", "chị", "em", "con", "cháu", "ông", "bà", "ba", "cô", "chú", "bác", "cậu", "dì", "bạn", "cha")
_RELATIVE_MARKS = (
    "tôi",
    "mình",
    "tui",
    "tao",
    "tớ",
    "ấy",
    "nhà",
    "trai",
    "gái",
    "giai",
    "ta",
    "xã",
    "kia",
    *("dâu", "rể", "út", "kế", "nuôi"),  # "chị dâu", "anh rể", "thằng út" (not "họ", "cả": "em ho", "chi cả")
)
_SIDES = ("nội", "ngoại")  # "bà nội", "ông ngoại"; "a noi nham" is "anh nói nhầm"
# "con em", "con chị", "bà em": the resident's child or grandmother, whatever the resident calls themself.
_MY_CHILD = ("con", "cháu", "ba", "bạn", "ông", "bà", "cha")
_SPEAKERS = ("em", "chị", "anh", "cô", "chú", "bác", "mẹ", "bố", "ba", "má", "ông", "bà")
_SELF = [split_phrase(p) for p in ("tôi", "em", "mình", "tui", "tao", "tớ", "con", "cháu", "bản thân", "tự tôi")]


_POSSESSORS = ("nhà", "tôi", "em", "mình", "tui", "tao", "tớ", "ấy", "ta", "nó", "cháu", "ổng", "bả", "ảnh", "chỉ")


def _someone_else_at(ws: list[Word], i: int) -> int:
    """How many words name someone other than the resident from word i (0 if none), the possessor after them
    included ("vợ tôi", "thằng cu nhà tôi"), but not across a comma ("chồng tôi là F0, tôi sổ mũi")."""
    used = _relative_at(ws, i)
    while used and i + used < len(ws) and any(matches(ws[i + used], p) for p in _POSSESSORS):
        if ws[i + used].after_mark or _only_at(ws, i + used):
            break
        used += 1
    return used


# "chỉ" is Southern "she" ("má chỉ": her mother) and "only" ("bà chỉ ho khan thôi": grandma only coughs).
_AFTER_ONLY = ("bị", "có", "hơi", "mới", "còn", "tiêm", "test", "ho", "sốt", "mệt", "đau", "thấy", "sổ", "nhức", "là")
_AFTER_ONLY += ("kêu", "than")  # "anh ấy chỉ kêu mỏi người"


def _only_at(ws: list[Word], i: int) -> bool:
    return ws[i].canonical == "chỉ" and i + 1 < len(ws) and any(matches(ws[i + 1], w) for w in _AFTER_ONLY)


def _relative_at(ws: list[Word], i: int) -> int:
    """The longest naming wins: "bà xã", "ông nội" before "bà", "ông"."""
    for phrase in _OTHERS:
        if phrase_at(ws, i, phrase) and (
            len(phrase) > 1 or ws[i].canonical == phrase[0] or _a_person_typed_bare(ws, i)
        ):
            return len(phrase)
    kin = next((k for k in _KIN if matches(ws[i], k)), None)
    if ws[i].canonical == "ba" and _three_at(ws, i):
        return 0
    if kin and ws[i].text.islower() and _a_name_at(ws, i + 1):
        return 2  # "anh Hai tui", "chị Lan": a relative by name (not "Chị Hoa đây", the resident herself)
    if kin and i + 1 < len(ws) and not ws[i + 1].after_mark and not _looks_alike(ws, i):
        marks = _RELATIVE_MARKS + (_SPEAKERS if kin in _MY_CHILD else ()) + (_SIDES if kin in ("ông", "bà") else ())
        marks += ("nó",) if kin == "con" else ()  # "con nó": his child (but "cháu nó" is the child himself)
        marks += ("nó", "hắn") if kin in ("ba", "cha", "ông", "bà", "cô", "chú", "bác", "cậu", "dì") else ()  # "ba nó"
        marks += tuple(p for p in ("anh", "chị", "em") if p != kin) if kin in ("chị", "em", "anh") else ()  # "chị em"
        if any(matches(ws[i + 1], mark) for mark in marks):
            return 2
    return 1 if ws[i].canonical in _ACCENTED_OTHERS else 0


# "ba" is a father and the number three: "thứ ba ba tám độ" is Tuesday, 38 degrees.
_COUNTED = ("độ", "mũi", "lần", "ngày", "hôm", "tuần", "giờ", "tháng", "đợt", "phẩy", "chấm", "vạch", "người", "đứa")


def _three_at(ws: list[Word], i: int) -> bool:
    after = ws[i + 1] if i + 1 < len(ws) else None
    if i > 0 and matches(ws[i - 1], "thứ"):
        return True
    return after is not None and (after.text.isdecimal() or any(matches(after, w) for w in _NUMBER_WORDS + _COUNTED))


_THIRD_PERSON = ("nó", "cháu", "ông", "bà", "ổng", "bả", "ảnh", "chỉ")


def _others_for_a_proxy(ws: list[Word], i: int, used: int, called: tuple[str, ...]) -> bool:
    """Someone else when a relative answers: a relative of the resident ("bố nó", "vợ ông"), anyone outside the
    family ("đồng nghiệp", "hàng xóm", "ai"), or a kinsman other than the one the relative calls the resident ("bố"
    when "mẹ" is the resident); not the resident themself ("nó", "thằng Bảo", "anh ấy", "con tôi")."""
    if used >= 2 and any(matches(ws[i + used - 1], p) for p in _THIRD_PERSON):
        return True
    if _of_the_other_sex(ws[i].canonical, called):
        return True  # "mẹ không ho. bố ho thôi", the son answering for his mother (who is also "bà" to him)
    named = tuple(w.canonical for w in ws[i : i + used])
    return any(named[: len(p)] == p for p in _OUTSIDERS)


# Words for a kinsman, by sex: a relative calls the same resident "mẹ" and "bà" (as the children do), "bố" and "ông",
# but never "mẹ" and "bố". "nó", "cháu", "con", "bác" may be anyone.
_WOMEN = ("bà", "mẹ", "má", "mạ", "chị", "cô", "dì", "mợ", "thím", "vợ", "mệ")
_MEN = ("ông", "bố", "ba", "tía", "cha", "anh", "chú", "cậu", "dượng", "chồng", "bọ")
_SEXED = (*_WOMEN, *_MEN)
_KIN_NOUNS = (*_SEXED, "bác")


def _of_the_other_sex(word: str, called: tuple[str, ...]) -> bool:
    """A kinsman of the other sex than every word the resident is called by."""
    sexes = [_WOMEN if w in _WOMEN else _MEN if w in _MEN else None for w in called]
    return bool(called) and all(sexes) and not any(word in sex for sex in sexes) and word in _SEXED


_HERE = [split_phrase(p) for p in ("đây", "nè", "nghe", "đang nghe", "đây ạ")]


def called_in(text: str, proxy: bool) -> str | None:
    """The words that name the resident in this conversation, from the answer to who they are: a kinship word the
    resident calls themself ("ừ bà đây", "chị Lan đây"), or those the relative answering calls them ("mẹ đi rẫy, tôi
    là con trai", "tui là vợ ảnh", "máy của bố em, ông nghe không rõ": "bố ông"). None when no such word is said."""
    ws, said = words(text), []
    for i, word in enumerate(ws):
        if not word.text.islower() or not any(matches(word, k) for k in (*_KIN_NOUNS, *_THIRD_PERSON, "em", "con")):
            continue
        after_is = i > 0 and matches(ws[i - 1], "là")
        if not proxy:
            named = i + 1 < len(ws) and ws[i + 1].text[:1].isupper() and not ws[i + 1].after_mark
            at = i + 2 if named else i + 1  # "chị Lan đây"
            if any(phrase_at(ws, at, p) for p in _HERE):
                return word.canonical
        elif after_is and i + 1 < len(ws) and ws[i + 1].text.islower() and not ws[i + 1].after_mark:
            if any(matches(ws[i + 1], k) for k in (*_KIN_NOUNS, *_THIRD_PERSON)):  # "tui là vợ ảnh": ảnh
                said.append(ws[i + 1].canonical)
        elif not after_is and not any(phrase_at(ws, i, p) for p in _SELF):
            said.append(word.canonical)
    return " ".join(dict.fromkeys(said)) or None


def _the_resident(ws: list[Word], i: int, used: int, speaker: Speaker) -> bool:
    """Does the naming at word i name the resident: by the word they are called, or, when a relative answers, as
    anyone the relative may speak of the resident as?"""
    if _names_the_resident(ws, i, used, speaker):
        return True
    return speaker.proxy and not _others_for_a_proxy(ws, i, used, speaker.called)


def _names_the_resident(ws: list[Word], i: int, used: int, speaker: Speaker) -> bool:
    """The word the resident is called by, alone, or after it only the relative answering ("mẹ em", "mẹ tôi")."""
    if not any(matches(ws[i], word) for word in speaker.called):
        return False
    return used == 1 or (speaker.proxy and all(any(phrase_at(ws, k, p) for p in _SELF) for k in range(i + 1, i + used)))


# Typed without accents, a word that names someone can be another word: "chong mat" is chóng mặt (dizzy), "me met"
# mê mệt, "cau thang" a staircase, "thang 7" July (tháng). Those pairs, and "thang" without a possessor, name nobody.
_LOOK_ALIKE_PAIRS = {
    ("chong", "mat"),
    ("me", "met"),
    ("cau", "thang"),
    ("thang", "may"),
    ("leo", "thang"),
    ("vo", "tay"),
    ("dang", "ban"),  # đang bận (busy), not a friend
    ("hoi", "ban"),
    ("ban", "qua"),
}


_BEFORE_MA = {"ba", "bo", "cua", "voi", "va", "cho", "gap", "nha", "ma"}  # "ma ma toi": mà má tôi


def _looks_alike(ws: list[Word], i: int) -> bool:
    before = (ws[i - 1].folded, ws[i].folded) if i > 0 else None
    after = (ws[i].folded, ws[i + 1].folded) if i + 1 < len(ws) else None
    return not ws[i].accented and (before in _LOOK_ALIKE_PAIRS or after in _LOOK_ALIKE_PAIRS)


def _a_person_typed_bare(ws: list[Word], i: int) -> bool:
    if _looks_alike(ws, i):
        return False
    if ws[i].folded == "ma" and i > 0 and not ws[i].after_mark and ws[i - 1].folded not in _BEFORE_MA:
        return False  # mid-clause "ma" is mà (but): "lay mau ma ho chua tra"; "ma toi bi sot", "ba ma" are má
    possessed = i + 1 < len(ws) and any(matches(ws[i + 1], p) for p in _POSSESSORS)
    return possessed or ws[i].folded != "thang"


def _a_name_at(ws: list[Word], i: int) -> bool:
    capitalised = i < len(ws) and ws[i].text[:1].isupper() and ws[i].text[1:].islower() and not ws[i].after_mark
    return capitalised and not (i + 1 < len(ws) and matches(ws[i + 1], "đây"))


def others_spans(text: str, speaker: Speaker = ALONE) -> list[tuple[int, int]]:
    """The stretches of `text` about someone other than the resident, as (start, end) offsets. When a relative
    answers for the resident (`speaker.proxy`), their "nó", "cháu", "ông", "anh ấy" are the resident; only the
    resident's own relatives ("bố nó", "mẹ cháu") and people outside the family are someone else."""
    return list(_others_spans(text, speaker))


@lru_cache(maxsize=256)  # every finder asks whose facts a turn tells
def _others_spans(text: str, speaker: Speaker) -> tuple[tuple[int, int], ...]:
    proxy, ws, spans, i = speaker.proxy, words(text), [], 0
    other_from: int | None = None
    named_until = -1  # "thằng cháu": a word that would name the resident, right after a naming, is part of it
    anyone = False  # "không gặp ai hết, mà ...": anyone's stretch ends with its clause
    resident_named = False  # the resident named by a relative answering: "còn" sets another apart from them
    while i < len(ws):
        if other_from is not None and anyone and ws[i].after_mark:
            spans.append((other_from, ws[i].start))
            other_from, anyone = None, False
        used = _someone_else_at(ws, i)
        set_apart = proxy and resident_named and _after_a_contrast(ws, i)
        if used and (set_apart or not _the_resident(ws, i, used, speaker)):  # "ảnh sốt, còn thằng nhỏ nhà tui"
            anyone = (other_from is None or anyone) and any(phrase_at(ws, i, p) for p in _ANYONE)
            other_from = ws[i].start if other_from is None else other_from
            i += used
            named_until = i
            continue
        if used:  # the resident, by the word they are called: what the others did has ended
            joined = i == named_until and not ws[i].after_mark  # "ông nhà bà": his, whoever "bà" is
            resident_named = resident_named or not joined
            if other_from is not None and not joined:
                spans.append((other_from, ws[i].start))
                other_from, anyone = None, False
            i += used
            continue
        if proxy and _speaker_apart(ws, i):  # "anh ấy chỉ mỏi người, còn tôi thì sổ mũi": the relative's own
            other_from = ws[i].start if other_from is None else other_from
            named_until = i = i + 1
            continue
        if other_from is None and _subject_of_an_object(ws, i):
            other_from, named_until = ws[i].start, i + 1  # "chị ngồi cùng phòng em dương tính": she, not I
            i += 1
            continue
        joined = i == named_until and not ws[i].after_mark
        self_named = (any(phrase_at(ws, i, p) for p in _SELF) or _contrasted_self(ws, i)) and not joined
        if other_from is not None and self_named and not _object_at(ws, i):
            spans.append((other_from, ws[i].start))
            other_from, anyone = None, False
        i += 1
    if other_from is not None:
        spans.append((other_from, len(text)))
    return tuple(spans)


# "còn chị thì sốt", "chứ anh vẫn khỏe": the speaker set against the others just named.
_CONTRAST = ("còn", "chứ", "riêng")


def _after_a_contrast(ws: list[Word], i: int) -> bool:
    return i > 0 and any(matches(ws[i - 1], c) for c in _CONTRAST)


def _contrasted_self(ws: list[Word], i: int) -> bool:
    kin = i > 0 and ws[i].text.islower() and any(matches(ws[i], k) for k in _SPEAKERS)
    return kin and _after_a_contrast(ws, i) and _relative_at(ws, i) == 0


_FIRST_PERSON = ("tôi", "tui", "mình", "tớ", "tao", "em")


def _speaker_apart(ws: list[Word], i: int) -> bool:
    """The relative answering speaks of themself, set apart from the resident: "còn tôi thì ho", "tôi cũng sốt"."""
    if not any(matches(ws[i], w) for w in _FIRST_PERSON) or _object_at(ws, i):
        return False
    return _after_a_contrast(ws, i) or (i + 1 < len(ws) and any(matches(ws[i + 1], w) for w in ("thì", "cũng")))


def _subject_of_an_object(ws: list[Word], i: int) -> bool:
    """A kinship word starting a clause whose object is the resident ("chị ngồi cùng phòng em", "anh ở chung với
    tôi"): someone else is speaking of, not the resident."""
    if not (i == 0 or ws[i].after_mark) or not any(ws[i].canonical == k for k in (*_SPEAKERS, "bạn")):
        return False
    clause = next((k for k in range(i + 1, len(ws)) if ws[k].after_mark), len(ws))
    selves = [k for k in range(i + 1, clause) if any(phrase_at(ws, k, p) for p in _SELF)]
    return bool(selves) and all(_object_at(ws, k) for k in selves) and ws[selves[0]].canonical != ws[i].canonical


# "ngồi cạnh em", "ở chung với tôi": the resident as an object; the fact that follows is still the other's.
_BEFORE_AN_OBJECT = ("cạnh", "với", "cùng", "gần", "chung", "cho", "của", "bên", "giúp", "thăm", "gặp", "chăm", "kế")
# ...and "cùng phòng tôi", "bạn trọ em", "công ty tôi": a place of the resident's, still the other's sentence.
_BEFORE_AN_OBJECT += ("phòng", "trọ", "lớp", "ty", "quan", "xóm", "xưởng", "nhà")  # "thằng út nhà tui"


def _object_at(ws: list[Word], i: int) -> bool:
    return i > 0 and any(matches(ws[i - 1], w) for w in _BEFORE_AN_OBJECT)


def about_someone_else(start: int, spans: list[tuple[int, int]]) -> bool:
    return any(s <= start < e for s, e in spans)


# "à không", "à nhầm", "ơ nhầm", "à lộn" (Southern): what follows takes back what came before.
_RETRACTIONS = [
    split_phrase(p)
    for p in (
        "à không",
        "à không phải",
        "ơ không",
        "ơ không phải",
        "à nhầm",
        "ấy nhầm",
        "ơ nhầm",
        "nhầm",
        "à lộn",
        *("à khoan", "ấy chết", "ơ khoan"),  # "không... à khoan, có"
        "lộn",
        "sửa lại",
        "ý tôi là",
        "ý em là",
        "ý là",
    )
]
# "à mà", "đo lại" (measured again): a new value replaces the one before; a symptom after them adds to the others.
_AMENDMENTS = [
    split_phrase(p)
    for p in ("à mà", "à quên", "đo lại", "nói lại", "à thôi", "mà thôi", "nhìn lại", "xem lại", "coi lại", "à có")
]
_NOT_A_CORRECTION = ("số", "máy", "người")  # "nhầm số", "nhầm người": the wrong person, not a correction


def corrections(text: str, retractions_only: bool = False) -> list[tuple[int, int]]:
    """Where self-corrections are said, in order: (start of their words, end of their words). A bare "à" before a
    number counts too ("tiêm 3 mũi, à 4 mũi chứ")."""
    markers = _RETRACTIONS if retractions_only else _RETRACTIONS + _AMENDMENTS
    ws, found = words(text), []
    for i in range(len(ws)):
        for phrase in markers:
            if phrase_at(ws, i, phrase):
                after = i + len(phrase)
                if after < len(ws) and any(matches(ws[after], w) for w in _NOT_A_CORRECTION):
                    continue
                found.append((ws[i].start, ws[after - 1].end))
                break
        else:
            if not retractions_only and matches(ws[i], "à") and i + 1 < len(ws) and _numeric(ws[i + 1]):
                found.append((ws[i].start, ws[i].end))
    return found


def last_correction(text: str, retractions_only: bool = False) -> tuple[int, int] | None:
    """Where the last self-correction is said, or None."""
    found = corrections(text, retractions_only)
    return found[-1] if found else None


def _numeric(word: Word) -> bool:
    return word.text[:1].isdecimal() or any(matches(word, n) for n in _NUMBER_WORDS)


_NUMBER_WORDS = ("một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín", "mười", "băm", "mươi", "mốt", "lăm")


def corrected(items: list, text: str) -> list:
    """Found items, the corrected value first: the first said after the last correction that has one after it
    ("38 độ 5... à không, 37 độ 9, lúc nãy đọc nhầm" -> 37.9); when the corrections come after every value
    ("39 độ... à 38 độ 9, nhìn lại rồi"), the last value. The others stay as fallbacks."""
    marks = corrections(text)
    if not marks or not items:
        return items
    for _, end in reversed(marks):
        after = [item for item in items if item.start >= end]
        if after:
            return after + [item for item in items if item.start < end]
    return [items[-1], *items[:-1]]


def only_corrected(items: list, text: str) -> list:
    """Found items without the values a correction took back: of each kind said after the last correction, only those
    after it."""
    correction = last_correction(text)
    if correction is None:
        return items
    corrected_kinds = {item.entity for item in items if item.start >= correction[1]}
    return [item for item in items if item.entity not in corrected_kinds or item.start >= correction[1]]
