"""Vietnamese text as residents type and speak it: normalisation, teencode, yes/no.

Pure Python (standard library only) so that both environments use the same code: the engine's NLU components
and the platform's channels.

Three forms of a word matter:
- `canonical`: NFC, lower case, look-alike letters fixed, the tone mark on the vowel where the classic
  convention puts it ("hoà" and "hòa" both become "hòa"), teencode expanded ("ko" -> "không");
- `fold`: the canonical form without any diacritics ("không" -> "khong"), what unaccented typing gives;
- the original text, which offsets always refer to.
"""

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

# Look-alikes typed instead of Đ/đ (U+0110/U+0111), e.g. from some IMEs and PDFs.
_LOOKALIKES = str.maketrans({"Ð": "Đ", "ð": "đ"})

_TONE_MARKS = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}  # huyền, sắc, ngã, hỏi, nặng
_VOWELS = set("aăâeêioôơuưy")
_QUALITY_VOWELS = set("ăâêôơư")

WORD = re.compile(r"\d+(?:[.,/:-]\d+)+|\w+")
_CLAUSE_MARKS = re.compile(r"[,.;!?:\n]")


@dataclass(frozen=True)
class Word:
    """One word of a text with its place in the original string."""

    text: str  # as typed
    start: int
    end: int
    canonical: str
    folded: str
    after_mark: bool = False  # a clause mark (, . ; ! ? :) stands between this word and the one before
    typed_folded: str = field(init=False)  # the typed word without diacritics: "hong" is không, and họng typed bare
    sounds: frozenset[str] = field(init=False)  # every `rough_key` this word can match (see `sounds_like`)

    def __post_init__(self) -> None:
        typed_folded = fold(self.text.lower())
        object.__setattr__(self, "typed_folded", typed_folded)
        object.__setattr__(self, "sounds", frozenset((rough_key(self.canonical), rough_key(typed_folded))))

    @property
    def accented(self) -> bool:
        return self.canonical != self.folded


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text).translate(_LOOKALIKES)


@lru_cache(maxsize=8192)
def fold(text: str) -> str:
    """Strip every diacritic: 'Không có, được' -> 'Khong co, duoc'."""
    decomposed = unicodedata.normalize("NFD", nfc(text)).replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


@lru_cache(maxsize=8192)
def _split_tone(word: str) -> tuple[str, str | None]:
    """A lower-case word without its tone mark, and the tone mark (None for the level tone)."""
    tone = None
    kept = []
    for char in unicodedata.normalize("NFD", word):
        if char in _TONE_MARKS:
            tone = char
        else:
            kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept)), tone


def _tone_position(word: str) -> int | None:
    """Index of the letter that carries the tone in the classic convention (hòa, khỏe, thủy, người, quý)."""
    start = 0
    if word.startswith("qu") or (word.startswith("gi") and len(word) > 2 and word[2] in _VOWELS):
        start = 2  # the u of qu- and the i of gi- belong to the consonant
    vowels = [i for i in range(start, len(word)) if word[i] in _VOWELS]
    if not vowels:
        return None
    cluster = vowels[: next((n for n in range(1, len(vowels)) if vowels[n] != vowels[n - 1] + 1), len(vowels))]
    quality = [i for i in cluster if word[i] in _QUALITY_VOWELS]
    if quality:
        return quality[-1]  # ươ: on the ơ
    if len(cluster) == 1:
        return cluster[0]
    closed = cluster[-1] + 1 < len(word)
    if closed or len(cluster) == 3:
        return cluster[-1] if closed else cluster[1]
    return cluster[0]


@lru_cache(maxsize=8192)
def canonical_tones(word: str) -> str:
    """Put the tone mark where the classic convention puts it: 'hoà' -> 'hòa', 'thuỷ' -> 'thủy'."""
    base, tone = _split_tone(word)
    if tone is None:
        return base
    position = _tone_position(base)
    if position is None:
        return word
    with_tone = unicodedata.normalize("NFC", unicodedata.normalize("NFD", base[position]) + tone)
    return base[:position] + with_tone + base[position + 1 :]


# Chat shorthand, per whole word (never inside words: "k65", "50k"). Ambiguous ones ("v" = với/vậy) are left out.
TEENCODE = {
    "không": [
        *("ko", "k", "kh", "hk", "hok", "hong", "hông", "khum", "kg", "kô", "hem", "hổng", "hỏng", "khg", "nỏ"),
        *(
            "khôg",
            "khog",
            "kog",
            "khôn",
            "khôngg",
            "khoong",
            "khônh",
            "khong6",
            "khôgn",
            "khogn",
            "kohng",
        ),  # in a hurry; "khôn": Central
    ],
    "được": ["dc", "đc", "dk", "đk", "đươc", "dươc", "đựơc"],
    "đúng": ["đúg", "dúng", "đung", "dug", "đug", "dúg"],
    "vâng": ["vg", "vâg", "vâgg"],
    "qua": ["qa", "wa"],
    "test": ["tesst", "tét", "tess", "tes", "tesd"],
    "nước": ["nc"],
    "về": ["dìa", "zìa"],
    "hôm qua": ["hqua", "hwa", "yesterday"],
    "hôm nay": ["hnay", "today"],
    "hôm": ["hum", "hổm"],
    "chiều": ["chìu"],
    "nhật": ["nhựt"],  # Southern: "chủ nhựt"
    "gì": ["j", "ji"],
    "với": ["vs"],
    "rồi": ["r", "rùi", "gòi", "ròi", "dồi", "zồi"],
    "cũng": ["cx", "cug", "cungx"],
    "mình": ["mk", "mik", "mh"],
    "em": ["e"],
    "anh": ["a"],
    "chị": ["c"],
    "chưa": ["chx"],
    "vậy": ["z", "zậy", "dzậy", "zay"],
    "ok": ["oke", "okie", "oki", "okay", "okê", "ôkê", "uki", "yes", "yeah", "yep", "yup"],
    "bình thường": ["bt", "bth", "bthg"],
    "người": ["ng"],
    "trước": ["trc", "ago"],
    "đang": ["đag", "dg", "đg"],
    "kết quả": ["kq"],
    "vợ": ["vk"],
    "chồng": ["ck"],
    "xét nghiệm": ["xn"],
    "muốn": ["mún"],
    "biết": ["bít", "bik"],
    "ừ": ["uh", "uhm", "um", "ừm", "ưm", "ờm"],
    "thôi": ["thui"],
    "nhưng": ["nhg", "nhưg"],
    "nhé": ["nha", "nhá", "nhe", "nghen"],
    "bây giờ": ["bh", "bgio"],
    "số điện thoại": ["sđt", "sdt"],
    # English words in Vietnamese chat ("2 days rồi", "one dose", "đang waiting kết quả", "lấy sample")
    "ngày": ["days", "day"],
    "tuần": ["weeks", "week"],
    "mũi": ["doses", "dose", "shots", "shot"],
    "một": ["one"],
    "hai": ["two"],
    "ba": ["three"],
    "chờ": ["waiting", "wait"],
    "mẫu": ["sample"],
    "triệu chứng": ["symptoms", "symptom"],
    "không biết": ["unknown", "idk"],
}
_SHORTHAND = {short: full for full, shorts in TEENCODE.items() for short in shorts}

# Unaccented typing with the Telex keys left in: the tone key at the end ("dungs", "hongj", "muix") and doubled
# letters ("vaanx", "quaa", "khongg"). Such a word reads as its bare letters, when they make a Vietnamese syllable.
_SYLLABLE = re.compile(
    r"(ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdghklmnprstvx])?"
    r"(uye|uya|oai|oay|uay|uoi|ươi|ieu|yeu|ai|ao|au|ay|eo|eu|ia|ie|iu|oa|oe|oi|ua|ue|ui|uo|uy|ye|[aeiouy])"
    r"(ng|nh|ch|[cmnptiouy])?"
)
_NOT_TELEX = {"thanks", "tests", "pos", "bus", "plus", "ms", "mrs", "max", "sos", "ok"}


def is_syllable(folded_word: str) -> bool:
    """Could these letters (diacritics stripped) be one Vietnamese syllable? 'nguoi', 'khong', 'xot' yes; 'asdf',
    'jjjj', 'hund' no."""
    return bool(_SYLLABLE.fullmatch(folded_word))


def _without_telex_keys(word: str) -> str:
    letters = word.replace("đ", "d")
    if not letters.isascii() and len(word) > 2 and word[-1] in "sfrxj" and is_syllable(fold(word[:-1])):
        return word[:-1]  # a tone key typed after the accents were already in: "đượcj", "rồis"
    short = len(word) == 2 and word[0] == "y" and word[1] in "sfrxj"  # "ys": ý (of "đồng ý")
    if not letters.isascii() or not letters.isalpha() or word in _NOT_TELEX or (len(word) < 3 and not short):
        return word
    bare = letters[:-1] if letters[-1] in "sfrxj" else letters
    bare = re.sub(r"([a-z])\1+", r"\1", bare.replace("uow", "uo").replace("aw", "a").replace("ow", "o"))
    bare = bare.replace("uw", "u")
    return bare if bare != letters and _SYLLABLE.fullmatch(bare) else word  # "đau" keeps its đ


def _unstretched(word: str) -> str:
    """A word with its last letter held down ("dạaaa", "đúngg", "sốttt", "quaaa") as it is written. Accented words
    lose any repeat of their last letter; unaccented ones only runs of three, for Telex doubles letters ("khoongg")."""
    if word.isascii():
        return re.sub(r"([a-z])\1{2,}$", r"\1", word)
    kept = len(word)
    while kept > 2 and word[kept - 1].isascii() and fold(word[kept - 2]) == word[kept - 1]:
        kept -= 1
    known = is_syllable(fold(word[:kept])) or word[:kept] in _SHORTHAND  # "đcc": đc
    return word[:kept] if kept < len(word) and known else word


def words(text: str, split_expansions: bool = True) -> list[Word]:
    """The words of `text`, each with offsets into `text` and its canonical and folded forms.

    Offsets are into the NFC form of the text, which is what the platform sends (it normalises at every ingress).
    Shorthand for several words ("hqua" = "hôm qua") becomes several words over the same span, unless
    `split_expansions` is off (the NLU tokenizer keeps one token per typed word).
    """
    return list(_words(text, split_expansions))


# VNI typing with the keys left in: a digit after the letters it marks ("d9u1ng ro62i" is "đúng rồi", "kho6ng").
_VNI_WORD = re.compile(r"[a-z]+[1-9][a-z1-9]*")
_VNI_TONES = {"1": "\u0301", "2": "\u0300", "3": "\u0309", "4": "\u0303", "5": "\u0323"}
_VNI_SHAPES = {"6": {"a": "â", "e": "ê", "o": "ô"}, "7": {"o": "ơ", "u": "ư"}, "8": {"a": "ă"}, "9": {"d": "đ"}}


def _from_vni(word: str) -> str:
    """The word a VNI typist meant, when its letters make a Vietnamese syllable; else the word as typed."""
    if not _VNI_WORD.fullmatch(word):
        return word
    letters, tone = [], ""
    for char in word:
        if char.isalpha():
            letters.append(char)
        elif char in _VNI_TONES:
            tone = _VNI_TONES[char]
        else:
            shapes = _VNI_SHAPES[char]
            marked = next((k for k in range(len(letters) - 1, -1, -1) if letters[k] in shapes), None)
            if marked is None:
                return word
            letters[marked] = shapes[letters[marked]]
            if letters[marked] == "ơ" and marked and letters[marked - 1] == "u":
                letters[marked - 1] = "ư"  # "uo7" is ươ
    base = "".join(letters)
    return canonical_tones(base + tone) if is_syllable(fold(base)) else word


_GLUED = re.compile(r"\d+|\D+")


def _typed_words(text: str) -> Iterator[tuple[str, int, int]]:
    """Each typed word with its offsets; a number glued to an accented word is a word of its own ("tiêm2mũi")."""
    for match in WORD.finditer(text):
        typed = match.group()
        glued = typed.isalnum() and not typed.isascii() and any(c.isdecimal() for c in typed)
        if not glued:
            yield typed, match.start(), match.end()
            continue
        for piece in _GLUED.finditer(typed):
            yield piece.group(), match.start() + piece.start(), match.start() + piece.end()


@lru_cache(maxsize=256)  # one turn is read by many rules: its words are found once
def _words(text: str, split_expansions: bool) -> tuple[Word, ...]:
    text = nfc(text)
    result: list[Word] = []
    for typed, start, end in _typed_words(text):
        after_mark = bool(result) and bool(_CLAUSE_MARKS.search(text, result[-1].end, start))
        lower = _unstretched(_from_vni(typed.lower()))
        previous_is_number = bool(result) and result[-1].text[:1].isdecimal()
        expanded = lower if lower == "k" and previous_is_number else _SHORTHAND.get(lower, lower)  # "50 k" = 50,000
        expanded = _without_telex_keys(expanded)
        parts = [canonical_tones(part) for part in expanded.split()]
        pieces = parts if split_expansions else [" ".join(parts)]
        result += [Word(typed, start, end, piece, fold(piece), after_mark) for piece in pieces]
    return tuple(result)


def canonical(text: str) -> str:
    """The whole text in canonical form, words joined by single spaces (for matching, never for display)."""
    return " ".join(w.canonical for w in words(text))


def folded(text: str) -> str:
    return " ".join(w.folded for w in words(text))


def matches(word: Word, target: str) -> bool:
    """Does `word` say `target` (one canonical word)? Unaccented typing matches on the folded form only."""
    if word.canonical == target:
        return True
    bare = fold(target)
    return (not word.accented and word.folded == bare) or (word.text == word.typed_folded and word.typed_folded == bare)


# Letters that typing and speech recognition confuse (s/x, ch/tr, d/gi/r, l/n, a final c for t) and the hỏi/ngã tones.
_ONSETS = (("gi", "d"), ("tr", "ch"), ("x", "s"), ("r", "d"), ("l", "n"), ("đ", "d"), ("f", "ph"))
# ...and a dropped n of -ng ("hog", "dươg", "đúg": no Vietnamese syllable ends in a bare g).
_CODAS = (("nh", "n"), ("ng", "n"), ("g", "n"), ("ch", "t"), ("c", "t"), ("y", "i"))
_HOI, _NGA = "\u0309", "\u0303"


@lru_cache(maxsize=8192)
def sound_key(word: str) -> str:
    """A word as it sounds, the confusable letters and tones made one: 'xốt' and 'sốt', 'mủi' and 'mũi', 'trảy'
    and 'chảy' share a key. Doubled letters count once ('sốtt')."""
    word = unicodedata.normalize("NFD", canonical_tones(word.lower())).replace(_NGA, _HOI)
    word = unicodedata.normalize("NFC", re.sub(r"(.)\1+", r"\1", word))
    for typed, heard in _ONSETS:
        if word.startswith(typed):
            word = heard + word[len(typed) :]
            break
    for typed, heard in _CODAS:  # Southern speech and its typing merge -nh/-n, -ng/-n, -c/-t, -ch/-t
        if word.endswith(typed):
            return word[: -len(typed)] + heard
    return word


@lru_cache(maxsize=8192)
def rough_key(word: str) -> str:
    """`sound_key` of the word without any diacritic: a word that matches or sounds like a target shares its rough
    key ("cuu" typed, read as "cu", and "cứu"; "y" and "ý"), so comparing rough keys first rules out most pairs at
    the cost of a set lookup (long messages stay cheap)."""
    return sound_key(fold(word))


def sounds_like(word: Word, target: str) -> bool:
    """Does `word` sound like `target` (one canonical word), as a misspelling would? Words typed with accents compare
    with accents (so 'xót' is not 'sốt'); a word with only its tone mark left off ('sôt', 'mêt') compares without
    tones (but 'đâu' is not 'đau'); a word typed with no accent at all compares without them ('xot' is 'sốt').
    """
    if matches(word, target):
        return True
    if sound_key(word.canonical) == sound_key(target):
        return True
    if not word.accented and rough_key(word.canonical) == rough_key(target):
        return True  # typed without any accent and misspelt: "xot" is xốt (sốt), "hog" is họng
    (letters, tone), (target_letters, target_tone) = _split_tone(word.canonical), _split_tone(target)
    return tone is None and target_tone is not None and sound_key(letters) == sound_key(target_letters)


def phrase_at(ws: list[Word], i: int, phrase: tuple[str, ...]) -> bool:
    """Do the words from index i on say `phrase` (canonical words, e.g. ("khó", "thở"))?"""
    if i + len(phrase) > len(ws) or rough_key(phrase[0]) not in ws[i].sounds or _crosses_a_mark(ws, i, phrase):
        return False
    return all(matches(ws[i + k], part) for k, part in enumerate(phrase))


def _crosses_a_mark(ws: list[Word], i: int, phrase: tuple[str, ...]) -> bool:
    """'đâu, ngực' is not 'đau ngực': a phrase is said within one clause."""
    return any(ws[i + k].after_mark for k in range(1, len(phrase)))


def phrase_sounds_at(ws: list[Word], i: int, phrase: tuple[str, ...]) -> bool:
    """`phrase_at`, misspellings allowed ('trưa xét nghiệm' for 'chưa xét nghiệm'); a phrase of several words may
    also have its accents wrong ('đau hộng'), as long as its letters are right and one word is exactly right."""
    if i + len(phrase) > len(ws) or rough_key(phrase[0]) not in ws[i].sounds or _crosses_a_mark(ws, i, phrase):
        return False
    if all(sounds_like(ws[i + k], part) for k, part in enumerate(phrase)):
        return True
    # One word must be exactly right, the others may have a wrong tone or vowel mark ("đâu đầu", "đau hộng"); with
    # none right the words say something else ("đâu đâu" is not "đau đầu", "rác có" not "rát cổ").
    if len(phrase) < 2 or not any(matches(ws[i + k], part) for k, part in enumerate(phrase)):
        return False
    if any(ws[i + k].canonical in _ASKING and part != ws[i + k].canonical for k, part in enumerate(phrase)):
        return False  # "ngày mấy" asks which day; it is not "ngày mai" misspelt
    return all(rough_key(ws[i + k].canonical) == rough_key(p) for k, p in enumerate(phrase))


_ASKING = {"mấy", "nào", "gì"}


def says(text: str, phrases: list[tuple[str, ...]]) -> bool:
    """Does the text say one of the phrases anywhere, misspellings allowed?"""
    ws = words(text)
    return any(phrase_sounds_at(ws, i, p) for i in range(len(ws)) for p in phrases)


def split_phrase(phrase: str) -> tuple[str, ...]:
    return tuple(canonical(phrase).split())


# Yes and no as Northern and Southern speakers say them. Negation wins: "dạ không" and "không có" are no.
_NO = [split_phrase(p) for p in ("không", "chưa", "chẳng", "chả", "hổng", "sai rồi", "nhầm", "no", "nope")]
_YES = [
    split_phrase(p)
    for p in (
        "có",
        "vâng",
        "dạ",
        "ừ",
        "ừa",  # Southern
        "ờ",
        "ok",
        "đúng",
        "phải",
        "rồi",
        "được",
        "đồng ý",
        "yes",
        "chính xác",
        "chính tôi",
        "tôi đây",
        "em đây",
        "hỏi đi",
        "sẵn sàng",
        "nhất trí",
        *("correct", "right", "sure"),
    )
]


_MAYBE = [split_phrase(p) for p in ("có thể", "có lẽ", "chắc là", "hình như", "chắc có", "chắc không")]
_POLITE = [split_phrase(p) for p in ("dạ", "vâng", "ừ", "ừa", "ờ", "thưa")]  # before the answer itself

# A thumbs up is a yes in chat; a thumbs down or a cross a no.
_YES_EMOJI = set("👍👌✅🆗🙆☑✔")
_NO_EMOJI = set("👎❌🙅✖")


def _emoji_yes_no(text: str) -> bool | None:
    if _NO_EMOJI & set(text):
        return False
    return True if _YES_EMOJI & set(text) else None


# "có gặp ai đâu", "mô có", "đâu có dọn đi đâu", "làm gì có": a yes word that asks "where?" of itself is a no.
_RHETORICAL_NO = [
    split_phrase(p) for p in ("đâu có", "mô có", "làm gì có", "làm chi có", "có đâu", "có mô", "đâu mà", "mô mà")
] + [split_phrase(p) for p in ("răng mà có", "sao mà có", "làm sao có", "răng có", "sao có được")]  # how could there
_WHERE = ("đâu", "mô")
_TRAILING = ("hết", "cả", "ạ", "à", "nha", "nhé", "đó", "đâu", "mô", "luôn", "nữa", "hà", "hỉ", "nè")


def _clause(ws: list[Word], i: int) -> list[Word]:
    """The words of the clause that starts at word i (up to the next clause mark)."""
    end = next((k for k in range(i + 1, len(ws)) if ws[k].after_mark), len(ws))
    return ws[i:end]


def rhetorical_no(ws: list[Word], i: int) -> bool:
    """Does the clause from word i deny by asking "where" ("có gặp ai đâu": met nobody; "mô có": not at all)?"""
    clause = _clause(ws, i)
    if any(phrase_at(clause, k, p) for k in range(len(clause)) for p in _RHETORICAL_NO):
        return True
    has = next((k for k, w in enumerate(clause) if matches(w, "có")), None)
    tail = [w for w in clause if not any(matches(w, t) for t in _TRAILING)]
    ends_asking = bool(clause) and any(matches(clause[-1], w) for w in _WHERE)
    return has is not None and ends_asking and bool(tail) and tail[-1].start > clause[has].start


def _grudging_yes(ws: list[Word], i: int) -> bool:
    """ "khai thì khai", "hỏi thì hỏi": a verb granted by saying it twice (a yes, however grudging)."""
    return i + 2 < len(ws) and matches(ws[i + 1], "thì") and ws[i + 2].canonical == ws[i].canonical


def denied_before(ws: list[Word], i: int) -> bool:
    """Is word i said under a no of its clause ("em không về quê", "đâu có dọn đi đâu")?"""
    start = next((k for k in range(i, -1, -1) if k == 0 or ws[k].after_mark), 0)
    said_no = any(phrase_at(ws, k, p) for k in range(start, i) for p in _NO)
    return said_no or rhetorical_no(ws, start)


def leading_yes_no(text: str, rhetorical: bool = True) -> bool | None:
    """Yes or no said first, before anything else ("có, vợ tôi là F0"): an answer whatever follows. `rhetorical`: a
    "có ... đâu" first is a no ("có gặp ai đâu")."""
    ws = words(text)
    if not ws:
        return _emoji_yes_no(text)
    if any(phrase_at(ws, 0, p) for p in _MAYBE):
        return None  # "có thể có, em không chắc", "có lẽ không"
    first = 0  # "dạ không ạ", "dạ thưa không": after the politeness comes the answer
    while first + 1 < len(ws) and (polite := next((p for p in _POLITE if phrase_at(ws, first, p)), None)):
        first += len(polite)
    if any(phrase_at(ws, first, p) for p in _NO) or (rhetorical and rhetorical_no(ws, first)):  # "trưa" is no "chưa"
        return False
    if _grudging_yes(ws, first):
        return True
    # A yes may be misspelt ("phãi", "fải", "đúg"), not on one or two letters ("ơ..." is not "ờ").
    said = phrase_sounds_at if len(ws[first].folded) > 2 else phrase_at
    if first and not any(said(ws, first, p) for p in _YES):
        # "dạ, em nghe": the polite yes itself; "dạ ôn không tiếp xúc ai": politeness, then a no
        return not any(phrase_at(ws, k, p) for k in range(first, len(_clause(ws, first)) + first) for p in _NO)
    return True if any(said(ws, first, p) for p in _YES) else None


def _introduces(ws: list[Word], i: int) -> bool:
    """A name before "đây" ("dạ phải, Trang đây" typed "chang đây"): the resident, whatever word it looks like."""
    return i < len(ws) and matches(ws[i], "đây")


def yes_no(text: str) -> bool | None:
    """True for yes, False for no, None when the text says neither."""
    ws = words(text)
    if any(phrase_at(ws, i, p) and not _introduces(ws, i + len(p)) for i in range(len(ws)) for p in _NO):
        return False
    if any(rhetorical_no(ws, i) for i in range(len(ws)) if i == 0 or ws[i].after_mark):
        return False
    if _grudging_yes(ws, 0):
        return True
    if any(phrase_at(ws, i, p) for i in range(len(ws)) for p in _YES):
        return True
    return _emoji_yes_no(text)
