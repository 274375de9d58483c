"""Where a resident says they are staying: a province of Viet Nam as of July 2025 and, when named, its ward.

Residents answer "Anh/chị hiện đang ở phường/xã nào, tỉnh/thành phố nào ạ?" as they speak: "phường Ngọc Hà, Hà Nội",
"xã Hòa Vang Đà Nẵng", "ở Dĩ An, Bình Dương cũ, giờ là TP.HCM", "phuong ngoc ha ha noi". They name the units of
July 2025 (34 provinces, wards and communes only) or the ones before (63 provinces, with districts).

The units come from the `vietnam-address-converter` package (pure Python, no dependencies): the 34 provinces and
3,321 wards of 2025, the 63 provinces, 696 districts and 10,147 wards before, and its old-to-new mapping of wards.
The package numbers provinces its own way (Hà Nội 11, Hồ Chí Minh 12, ...); `Place.province_code` is the two-digit
GSO code instead (01 Hà Nội, 79 Hồ Chí Minh, 33 Hưng Yên, 48 Đà Nẵng: the code of the province whose name the
merged one kept), from the table below, checked against the package's names when the indexes are built.

Names are `Place.province` = the package's short form ("Hồ Chí Minh", "Hưng Yên", "Huế", as the platform stores a
person's province), `Place.ward` = the ward with its type ("Phường Ngọc Hà", "Xã Hòa Vang", "Đặc khu Côn Đảo"),
`Place.old_province` = the short pre-2025 name ("Bình Dương").

Matching is on the words without diacritics (`bot.vntext.fold`; not `folded`, whose teencode would read the bare
"hong" of Hồng as "không"), so unaccented typing works; a tone mark the resident did type must agree with the name's
("huệ" is not Huế, "cần thở" is not Cần Thơ). Many ward names are everyday words ("An", "Hòa", "Chợ", "Hồ"), so a
ward counts only in a named province or after a unit word ("phường X", "p.X", "xã X", "quận X", "q1"); a one-word or
numeric name only after a unit word, and only numbers or names of two words or more say the province on their own
("phường 5, quận 3"). A provincial city of before 2025 ("Đà Lạt", "Hội An", "Thủ Dầu Một") names its province when
no province is named. When a new and an old province are named ("Bình Dương cũ, giờ là TP.HCM") the new one is the
province and the old one `old_province`; of two current ones, the one not in a "quê ..." clause, else the last. A
2025 ward's own name wins over the ward an old one went into. Pure Python; the indexes are built on the first call
(under a second).
"""

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bot.vntext import canonical_tones, fold, nfc


@dataclass(frozen=True)
class Place:
    province_code: str  # two-digit GSO code of the 2025 province: "01" Hà Nội, "79" Hồ Chí Minh
    province: str  # 2025 short name: "Hà Nội", "Hồ Chí Minh", "Huế"
    ward: str | None  # 2025 ward or commune with its type, when one was recognised: "Phường Ngọc Hà"
    old_province: str | None  # the pre-2025 province the resident named, when they named one: "Bình Dương"


# The 34 provinces of 2025 by their folded short name: each kept the GSO code of the province whose name it kept.
GSO_CODES = {
    "ha noi": "01",
    "cao bang": "04",
    "tuyen quang": "08",
    "dien bien": "11",
    "lai chau": "12",
    "son la": "14",
    "lao cai": "15",
    "thai nguyen": "19",
    "lang son": "20",
    "quang ninh": "22",
    "bac ninh": "24",
    "phu tho": "25",
    "hai phong": "31",
    "hung yen": "33",
    "ninh binh": "37",
    "thanh hoa": "38",
    "nghe an": "40",
    "ha tinh": "42",
    "quang tri": "44",
    "hue": "46",
    "da nang": "48",
    "quang ngai": "51",
    "gia lai": "52",
    "khanh hoa": "56",
    "dak lak": "66",
    "lam dong": "68",
    "dong nai": "75",
    "ho chi minh": "79",
    "tay ninh": "80",
    "dong thap": "82",
    "vinh long": "86",
    "an giang": "91",
    "can tho": "92",
    "ca mau": "96",
}

# Other ways of naming a province: (spoken form, needs a "tp"/"tỉnh" word before it). Abbreviations that are also
# everyday shorthand ("hn" = hôm nay) count only after "tp" or "thành phố"; "Bắc Cạn" is left out ("bac can" is
# "bác cần" typed bare).
NEW_PROVINCE_ALIASES = {
    "01": [("hanoi", False), ("tphn", False), ("hn", True), ("hà tây", False)],  # Hà Tây: merged in 2008
    "79": [
        ("hcm", False),
        ("tphcm", False),
        ("hcmc", False),
        ("sài gòn", False),
        ("saigon", False),
        ("sg", False),
        ("tp hồ chí minh", False),
    ],
    "48": [("danang", False)],
    "31": [("haiphong", False)],
    "92": [("cantho", False)],
    "46": [("thừa thiên huế", False), ("thừa thiên", False)],
    "66": [("đắc lắc", False), ("daklak", False)],
}
OLD_PROVINCE_ALIASES = {  # folded old short name -> spoken forms
    "ba ria vung tau": [("brvt", False), ("vũng tàu", False)],
    "dak nong": [("đắc nông", False), ("daknong", False)],
}

# Unit words before a name, by what they introduce. "tp"/"thành phố" is a province or a district-level city.
_PREFIXES = {
    ("tinh",): ("province", "tinh", "\u0309"),
    ("thanh", "pho"): ("city", "thanh-pho", "\u0300\u0301"),  # the tones of "thành phố", word by word
    ("tp",): ("city", "thanh-pho", ""),
    ("phuong",): ("ward", "phuong", "\u0300"),
    ("p",): ("ward", "phuong", ""),
    ("xa",): ("ward", "xa", "\u0303"),
    ("thi", "tran"): ("ward", "thi-tran", "\u0323\u0301"),
    ("tt",): ("ward", "thi-tran", ""),
    ("dac", "khu"): ("ward", "dac-khu", "\u0323"),
    ("quan",): ("district", "quan", "\u0323"),
    ("q",): ("district", "quan", ""),
    ("huyen",): ("district", "huyen", "\u0323"),
    ("thi", "xa"): ("district", "thi-xa", "\u0323\u0303"),
    ("tx",): ("district", "thi-xa", ""),
}
# Which kinds of name may follow each kind of unit word (None: no unit word).
_KINDS_AFTER = {
    None: {"province", "old_province", "ward", "old_ward", "district"},
    "province": {"province", "old_province"},
    "city": {"province", "old_province", "district"},
    "ward": {"ward", "old_ward"},
    "district": {"district"},
}
_UNIT_KINDS = ("ward", "old_ward", "district")
_HOMETOWN = {"que"}  # "quê Nghệ An, đang ở Hà Nội": a province in the hometown's clause counts last
_TONE_MARKS = "\u0300\u0301\u0303\u0309\u0323"  # huyền, sắc, ngã, hỏi, nặng
_TOKEN = re.compile(r"[^\W_]+")
_GLUED_NUMBER = re.compile(r"^(q|p|quan|phuong)(\d+)$")  # "q1", "p12"
_CLAUSE_END = re.compile(r"[,;!?()\n]|(\w*)[.:](?=\s|$)")  # "TP.HCM" and "q. Gò Vấp" are one clause
_ABBREVIATIONS = {"p", "q", "tp", "tt", "tx"}


@dataclass(frozen=True)
class _Token:
    folded: str
    tone: str  # the tone mark typed, "" for none
    canonical: str  # lower case, NFC, tone on the classic vowel
    clause: int


@dataclass(frozen=True)
class _Entry:
    """One reading of a phrase: a province, a ward or a district, new or old."""

    kind: str  # province | old_province | ward | old_ward | district
    tones: tuple[str, ...]  # the tone mark of each word of the name ("" for none)
    canonical: tuple[str, ...]
    code: str  # GSO code of the 2025 province it is in (or became part of)
    name: str  # province: short name; ward: with its type; old ones: their name
    unit_type: str  # phuong, xa, dac-khu, thi-tran, quan, huyen, thanh-pho, thi-xa, tinh
    wards: frozenset[str] = frozenset()  # old ward or district: the 2025 wards it went into
    district: str = ""  # old ward: the package's code of its district; district: its own
    old_province: str = ""  # old units: the short name of their pre-2025 province
    needs_prefix: bool = False  # one-word and numeric names, some abbreviations
    city: bool = False  # a district-level city ("Thành phố Đà Lạt") whose name says its province


@dataclass(frozen=True)
class _Mention:
    start: int
    end: int
    entries: tuple[_Entry, ...]
    prefix: str | None  # province | city | ward | district | None
    prefix_type: str  # the unit word's type ("xa", "quan", ...), "" without one
    hometown: bool


@dataclass(frozen=True)
class _Index:
    phrases: dict[tuple[str, ...], tuple[_Entry, ...]]
    longest: int
    provinces: dict[str, str]  # GSO code -> short name


def _tone(word: str) -> str:
    return next((c for c in unicodedata.normalize("NFD", word) if c in _TONE_MARKS), "")


def _tokens(text: str) -> list[_Token]:
    text = re.sub(r"['’]", "", nfc(text).lower())  # "Cư M'gar" is typed "Cư Mgar" as often
    ends = [m.end() - 1 for m in _CLAUSE_END.finditer(text) if fold(m.group(1) or "") not in _ABBREVIATIONS]
    result: list[_Token] = []
    for match in _TOKEN.finditer(text):
        clause = bisect_left(ends, match.start())  # the clause ends before this word
        word = match.group()
        glued = _GLUED_NUMBER.match(fold(word))
        for part in glued.groups() if glued else (word,):
            result.append(_Token(fold(part), _tone(part), canonical_tones(part), clause))
    return result


def _ward_name(name_with_type: str) -> str:
    return re.sub(r"^Đặc Khu ", "Đặc khu ", name_with_type)  # as the official list writes it


def _add(
    phrases: dict[tuple[str, ...], list[_Entry]], spoken: str, needs_prefix: bool | None = None, **entry: Any
) -> None:
    """Index one name. A unit's one-word or numeric name needs a unit word before it unless told otherwise."""
    ws = _tokens(spoken)
    if not ws:
        return
    folded = tuple(w.folded for w in ws)
    if needs_prefix is None:
        needs_prefix = len(ws) == 1 or all(w.folded.isdecimal() for w in ws)
    phrases.setdefault(folded, []).append(
        _Entry(
            tones=tuple(w.tone for w in ws),
            canonical=tuple(w.canonical for w in ws),
            needs_prefix=needs_prefix,
            **entry,
        )
    )


@lru_cache(maxsize=1)
def _index() -> _Index:
    from vietnam_address_converter.data import DEFAULT_DATA as data  # ~10 MB of units: loaded on first use

    provinces: dict[str, str] = {}  # the package's code -> GSO code
    names: dict[str, str] = {}  # GSO code -> short name
    for code, province in data["newProvinces"].items():
        key = " ".join(w.folded for w in _tokens(province["name"]))
        if key not in GSO_CODES:
            raise RuntimeError(f"vietnam-address-converter has a province this table lacks: {province['name']}")
        provinces[code], names[GSO_CODES[key]] = GSO_CODES[key], province["name"]
    if len(names) != len(GSO_CODES):
        raise RuntimeError("vietnam-address-converter does not have the 34 provinces of 2025")

    new_wards = {code: _ward_name(ward["name_with_type"]) for code, ward in data["newWards"].items()}
    became: dict[str, set[str]] = {}  # old ward code -> new ward names
    old_to_new: dict[str, str] = {}  # the package's old province code -> GSO code
    district_became: dict[str, set[str]] = {}
    for row in data["mapping"]["rows"]:
        old, new = row["old"], row["new"]
        gso = provinces[new["province_code"]]
        if old_to_new.setdefault(old["province_code"], gso) != gso:
            raise RuntimeError(f"old province {old['province_name']} went into two provinces")
        ward = new_wards.get(new["ward_code"], new["ward_name"])
        became.setdefault(old["ward_code"], set()).add(ward)
        district_became.setdefault(old["district_code"], set()).add(ward)

    phrases: dict[tuple[str, ...], list[_Entry]] = {}
    new_names = set(GSO_CODES)
    for code, name in names.items():
        _add(phrases, name, False, kind="province", code=code, name=name, unit_type="tinh")
        for spoken, needs_prefix in NEW_PROVINCE_ALIASES.get(code, []):
            _add(phrases, spoken, needs_prefix, kind="province", code=code, name=name, unit_type="tinh")
    for ward in data["newWards"].values():
        code = provinces[ward["parent_code"]]
        short = ward["name"]
        _add(phrases, short, kind="ward", code=code, name=_ward_name(ward["name_with_type"]), unit_type=ward["type"])
    old_names: dict[str, str] = {}
    for old_code, province in data["oldProvinces"].items():
        old_names[old_code] = province["name"]
        key = " ".join(w.folded for w in _tokens(province["name"]))
        if key in new_names:  # the name a 2025 province kept: that province, nothing old about it
            continue
        entry = {"kind": "old_province", "code": old_to_new[old_code], "name": province["name"], "unit_type": "tinh"}
        _add(phrases, province["name"], False, old_province=province["name"], **entry)
        for spoken, needs_prefix in OLD_PROVINCE_ALIASES.get(key, []):
            _add(phrases, spoken, needs_prefix, old_province=province["name"], **entry)
    district_province: dict[str, str] = {}
    for district_code, district in data["oldDistricts"].items():
        district_province[district_code] = district["parent_code"]
        with_type = district["name_with_type"]
        unit_type = "thi-xa" if with_type.lower().startswith("thị xã") else district["type"]
        _add(
            phrases,
            district["name"],
            kind="district",
            code=old_to_new[district["parent_code"]],
            name=with_type,
            unit_type=unit_type,
            wards=frozenset(district_became.get(district_code, ())),
            district=district_code,
            old_province=old_names[district["parent_code"]],
            city=unit_type == "thanh-pho" and len(_tokens(district["name"])) > 1,
        )
    for ward_code, ward in data["oldWards"].items():
        old_province = district_province[ward["parent_code"]]
        _add(
            phrases,
            ward["name"],
            kind="old_ward",
            code=old_to_new[old_province],
            name=ward["name_with_type"],
            unit_type=ward["type"],
            wards=frozenset(became.get(ward_code, ())),
            district=ward["parent_code"],
            old_province=old_names[old_province],
        )
    frozen = {key: tuple(entries) for key, entries in phrases.items()}
    return _Index(frozen, max(len(key) for key in frozen), names)


def _tones_agree(typed: Iterable[_Token], tones: Iterable[str]) -> bool:
    """A tone mark the resident typed must be the name's; a word typed without one matches any."""
    return all(not t.tone or t.tone == tone for t, tone in zip(typed, tones, strict=False))


def _prefix_before(ws: list[_Token], i: int) -> tuple[str | None, str]:
    for length in (2, 1):
        if i - length < 0:
            continue
        before = ws[i - length : i]
        found = _PREFIXES.get(tuple(w.folded for w in before))
        if (
            found
            and before[0].clause == ws[i].clause
            and (not found[2] or all(not w.tone or w.tone == tone for w, tone in zip(before, found[2], strict=False)))
        ):
            return found[0], found[1]
    return None, ""


def _mentions(ws: list[_Token], index: _Index) -> list[_Mention]:
    """Every phrase of the text that names a unit, with the unit word before it (all lengths, overlapping)."""
    hometown_clauses = {w.clause for w in ws if w.folded in _HOMETOWN}
    found = []
    for i in range(len(ws)):
        prefix, prefix_type = _prefix_before(ws, i)
        for length in range(min(index.longest, len(ws) - i), 0, -1):
            typed = ws[i : i + length]
            if typed[-1].clause != typed[0].clause:  # a name never spans a comma: "Hà Đông, Hà Tây" is no "Đông Hà"
                continue
            candidates = [
                e for e in index.phrases.get(tuple(w.folded for w in typed), ()) if _tones_agree(typed, e.tones)
            ]
            # A name the unit word cannot introduce is read without it: "ở xa Hà Nội" (far from Hà Nội).
            for said, said_type in ((prefix, prefix_type), (None, "")) if prefix else ((None, ""),):
                entries = tuple(e for e in candidates if e.kind in _KINDS_AFTER[said] and (said or not e.needs_prefix))
                if entries:
                    hometown = ws[i].clause in hometown_clauses
                    found.append(_Mention(i, i + length, entries, said, said_type, hometown))
                    break
    return found


def _overlaps(a: _Mention, b: _Mention) -> bool:
    return a.start < b.end and b.start < a.end


def _exact(ws: list[_Token], mention: _Mention, entry: _Entry) -> bool:
    return tuple(w.canonical for w in ws[mention.start : mention.end]) == entry.canonical


def _within(inner: _Mention, outer: _Mention) -> bool:
    return inner is not outer and outer.start <= inner.start and inner.end <= outer.end


def _province_mentions(mentions: list[_Mention]) -> list[_Mention]:
    """Mentions read as a province. The longest reading wins: "Bà Rịa Vũng Tàu" over "Vũng Tàu", and the ward
    "Phú Thọ Hòa" over the province "Phú Thọ" in it."""
    named = [m for m in mentions if any(e.kind in ("province", "old_province") for e in m.entries)]
    return [m for m in named if not any(_within(m, o) and o.end - o.start > m.end - m.start for o in mentions)]


def _choose_province(named: list[_Mention]) -> tuple[str, str | None] | None:
    """The 2025 province (GSO code) the named provinces say, and the old province named for it, if any."""
    current = [m for m in named if not m.hometown] or named
    new = [e.code for m in current for e in m.entries if e.kind == "province"]
    old = [e for m in current for e in m.entries if e.kind == "old_province"]
    if new:
        code = new[-1] if len(set(new)) > 1 else new[0]  # two current provinces: the one said last
    elif old:
        code = old[-1].code
    else:
        return None
    # The old name of that province said last, in the hometown's clause too ("về quê ở Thái Bình, giờ là Hưng Yên").
    old_names = [e.old_province for m in named for e in m.entries if e.kind == "old_province" and e.code == code]
    return code, old_names[-1] if old_names else None


def _unit_provinces(mention: _Mention) -> set[str]:
    """The provinces a prefixed unit could be in: a 2025 ward's name first, then the old units'."""
    entries = [e for e in mention.entries if e.kind in _UNIT_KINDS]
    entries = [e for e in entries if len(e.canonical) > 1 or e.canonical[0].isdecimal()]  # "xa Gôi": "far Gôi"?
    typed = [e for e in entries if e.unit_type == mention.prefix_type]
    entries = typed or entries
    new = [e for e in entries if e.kind == "ward"]
    return {e.code for e in (new or entries)}


def _readings(
    ws: list[_Token], mention: _Mention, code: str, old_province: str | None, districts: set[str]
) -> Iterator[str | None]:
    """What one mention says of the 2025 ward in province `code`: its own name as a 2025 ward, then the 2025 ward
    an old ward or district went into (when it went into one only); None where it says nothing certain."""
    entries = [e for e in mention.entries if e.code == code]
    if mention.prefix != "district":
        new = [e for e in entries if e.kind == "ward"]
        new = [e for e in new if _exact(ws, mention, e)] or new
        new = [e for e in new if e.unit_type == mention.prefix_type] or new
        yield new[0].name if len({e.name for e in new}) == 1 else None
    old = [e for e in entries if e.kind == "old_ward"]
    old = [e for e in old if e.old_province == old_province] or old
    old = [e for e in old if e.district in districts] or old
    old = [e for e in old if _exact(ws, mention, e)] or old
    old = [e for e in old if e.unit_type == mention.prefix_type] or old
    for readings in (old, [e for e in entries if e.kind == "district"]):
        wards = {w for e in readings for w in e.wards}
        yield wards.pop() if len(wards) == 1 else None


def _choose_ward(
    ws: list[_Token], units: list[_Mention], code: str, old_province: str | None, explicit: bool
) -> str | None:
    """The 2025 ward the unit mentions in province `code` say.

    After a unit word first, a 2025 ward's own name before an old one ("phường An Hòa cũ, giờ là phường Ninh Kiều"
    is Ninh Kiều; "phường 12 Gò Vấp" is the old ward 12 of the district Gò Vấp); then the bare names in the order
    said ("Phúc Xá, Ba Đình, Hà Nội": the old ward Phúc Xá of the district Ba Đình).
    """
    in_province = [
        m for m in units if (m.prefix or explicit) and any(e.code == code and e.kind in _UNIT_KINDS for e in m.entries)
    ]
    districts = {e.district for m in in_province for e in m.entries if e.kind == "district" and e.code == code}
    said = {id(m): list(_readings(ws, m, code, old_province, districts)) for m in in_province}
    prefixed = [m for m in in_province if m.prefix in ("ward", "city")]
    for mention in prefixed:  # "phường Ninh Kiều" before "phường An Hòa" (old) wherever said
        if mention.prefix == "ward" and said[id(mention)][0]:
            return said[id(mention)][0]
    others = sorted((m for m in in_province if m not in prefixed), key=lambda m: (m.prefix is not None, m.start))
    for mention in prefixed + others:
        ward = next((w for w in said[id(mention)] if w), None)
        if ward:
            return ward
    return None


def load() -> None:
    """Read the administrative units now (about a second) rather than during the first resident's turn."""
    _index()


def find_place(text: str) -> Place | None:
    """The place a resident's free text names (a province at least), or None."""
    if not text or not text.strip():
        return None
    index = _index()
    ws = _tokens(text)
    mentions = _mentions(ws, index)
    if not mentions:
        return None
    named = _province_mentions([m for m in mentions if m.prefix != "district"])
    units = [
        m for m in mentions if not any(_overlaps(m, p) for p in named) and any(e.kind in _UNIT_KINDS for e in m.entries)
    ]
    chosen = _choose_province(named)
    explicit = chosen is not None
    if chosen is None:  # a provincial city of before 2025 says its province: "Đà Lạt", "Thủ Dầu Một"
        cities = {e.code for m in units if m.prefix in (None, "city") for e in m.entries if e.city}
        if len(cities) == 1:
            chosen, explicit = (cities.pop(), None), True
    if chosen is None:  # units after a unit word, agreeing on one province: "phường 5, quận 3"
        possible = [_unit_provinces(m) for m in units if m.prefix]
        common = set.intersection(*possible) if possible else set()
        if len(common) != 1:
            return None
        chosen = (common.pop(), None)
    code, old_province = chosen
    ward = _choose_ward(ws, units, code, old_province, explicit)
    return Place(code, index.provinces[code], ward, old_province)
