"""Whose facts, and which of two values: the scope of what a resident says in one answer.

- Other people: "vợ tôi dương tính", "thằng cu nhà tôi ho", "ổng sốt 39 độ". A fact belongs to the last person
  named before it; the resident (tôi, em, mình, tui...) unless someone else was named since. The possessive after a
  relative ("vợ tôi", "con em") is part of naming the relative, not the resident speaking.
- Self-corrections: "39 độ, à nhầm, 38 độ 4", "tiêm 3 mũi, à không, 2 mũi", "dương tính, ơ nhầm, âm tính". The value
  said after the last correction wins.

Pure Python on top of `bot.vntext`; offsets are into the NFC text, like every finder's.
"""

from bot.vntext import Word, matches, phrase_at, split_phrase, words

# Someone else, whatever follows: spouses, parents, neighbours, "ổng/bả" (Southern he/she), "nó", "họ".
_OTHERS = [
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
    )
]
# Words that are everyday words too when typed without accents ("ho" is cough, "no" is English, "ba" is three):
# they name someone else only when typed with their accents.
_ACCENTED_OTHERS = {"họ", "bả", "ổng", "má", "nó", "bé", "ảnh"}
# Kinship words that are also how residents say "I" or "you" ("em bị ho", "chị hỏi đi"): someone else only with a
# word after them that makes them a relative ("con tôi", "anh ấy", "bà ngoại", "em trai").
_KIN = ("anh", "chị", "em", "con", "cháu", "ông", "bà", "ba", "cô", "chú", "bác", "cậu", "dì", "bạn", "cha")
_RELATIVE_MARKS = ("tôi", "mình", "tui", "tao", "tớ", "ấy", "nhà", "nội", "ngoại", "trai", "gái", "ta", "xã", "kia")
# "con em", "con chị", "bà em": the resident's child or grandmother, whatever the resident calls themself.
_MY_CHILD = ("con", "cháu", "ba", "bạn", "ông", "bà", "cha")
_SPEAKERS = ("em", "chị", "anh", "cô", "chú", "bác", "mẹ", "bố", "ba", "má", "ông", "bà")
_SELF = [split_phrase(p) for p in ("tôi", "em", "mình", "tui", "tao", "tớ", "con", "cháu", "bản thân", "tự tôi")]


_POSSESSORS = ("nhà", "tôi", "em", "mình", "tui", "tao", "tớ", "ấy", "ta", "nó")


def _someone_else_at(ws: list[Word], i: int) -> int:
    """How many words name someone other than the resident from word i (0 if none), the possessor after them
    included ("vợ tôi", "thằng cu nhà tôi")."""
    used = _relative_at(ws, i)
    while used and i + used < len(ws) and any(matches(ws[i + used], p) for p in _POSSESSORS):
        used += 1
    return used


def _relative_at(ws: list[Word], i: int) -> int:
    if ws[i].canonical in _ACCENTED_OTHERS:
        return 1
    for phrase in _OTHERS:
        if phrase_at(ws, i, phrase):
            return len(phrase)
    kin = next((k for k in _KIN if matches(ws[i], k)), None)
    if kin and i + 1 < len(ws):
        marks = _RELATIVE_MARKS + (_SPEAKERS if kin in _MY_CHILD else ())
        if any(matches(ws[i + 1], mark) for mark in marks):
            return 2
    return 0


def others_spans(text: str) -> list[tuple[int, int]]:
    """The stretches of `text` about someone other than the resident, as (start, end) offsets."""
    ws, spans, i = words(text), [], 0
    other_from: int | None = None
    while i < len(ws):
        if used := _someone_else_at(ws, i):
            other_from = ws[i].start if other_from is None else other_from
            i += used
            continue
        if other_from is not None and any(phrase_at(ws, i, p) for p in _SELF):
            spans.append((other_from, ws[i].start))
            other_from = None
        i += 1
    if other_from is not None:
        spans.append((other_from, len(text)))
    return spans


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
        "lộn",
        "sửa lại",
        "ý tôi là",
        "ý em là",
        "ý là",
    )
]
# "à mà", "đo lại" (measured again): a new value replaces the one before; a symptom after them adds to the others.
_AMENDMENTS = [split_phrase(p) for p in ("à mà", "à quên", "đo lại", "nói lại", "à thôi", "mà thôi")]
_NOT_A_CORRECTION = ("số", "máy", "người")  # "nhầm số", "nhầm người": the wrong person, not a correction


def last_correction(text: str, retractions_only: bool = False) -> tuple[int, int] | None:
    """Where the last self-correction is said: (start of its words, end of its words), or None."""
    markers = _RETRACTIONS if retractions_only else _RETRACTIONS + _AMENDMENTS
    ws, found = words(text), None
    for i in range(len(ws)):
        for phrase in markers:
            if phrase_at(ws, i, phrase):
                after = i + len(phrase)
                if after < len(ws) and any(matches(ws[after], w) for w in _NOT_A_CORRECTION):
                    continue
                found = (ws[i].start, ws[after - 1].end)
                break
    return found


def corrected(items: list, text: str) -> list:
    """Found items, those said after the last correction first: the corrected value wins; the others stay as
    fallbacks (a correction of something else leaves them the answer)."""
    correction = last_correction(text)
    if correction is None:
        return items
    after = [item for item in items if item.start >= correction[1]]
    return after + [item for item in items if item.start < correction[1]] if after else items


def only_corrected(items: list, text: str) -> list:
    """Found items without the values a correction took back: of each kind said after the last correction, only those
    after it."""
    correction = last_correction(text)
    if correction is None:
        return items
    corrected_kinds = {item.entity for item in items if item.start >= correction[1]}
    return [item for item in items if item.entity not in corrected_kinds or item.start >= correction[1]]
