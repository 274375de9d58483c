"""Where a resident says they are staying: `bot.places.find_place` on answers as residents type them."""

import time

import pytest

from bot.places import GSO_CODES, Place, find_place

# (answer, GSO code, 2025 province, 2025 ward or None, old province or None)
PLACES = [
    # 2025 names
    ("phường Ngọc Hà, Hà Nội", "01", "Hà Nội", "Phường Ngọc Hà", None),
    ("xã Hòa Vang Đà Nẵng", "48", "Đà Nẵng", "Xã Hòa Vang", None),
    ("cháu ở phường Tân Định, TP Hồ Chí Minh ạ", "79", "Hồ Chí Minh", "Phường Tân Định", None),
    ("vẫn ở 25 Lê Lợi, phường Thuận Hóa, Huế", "46", "Huế", "Phường Thuận Hóa", None),
    ("phường Thái Bình, Hưng Yên", "33", "Hưng Yên", "Phường Thái Bình", None),
    ("Côn Đảo, TP.HCM", "79", "Hồ Chí Minh", "Đặc khu Côn Đảo", None),
    ("Cư M'gar, Đắk Lắk", "66", "Đắk Lắk", "Xã Cư M'gar", None),
    ("Hà Nội", "01", "Hà Nội", None, None),
    ("Thanh Hoá", "38", "Thanh Hóa", None, None),
    # the ways of naming Hồ Chí Minh and Huế
    ("TP.HCM", "79", "Hồ Chí Minh", None, None),
    ("tp hcm", "79", "Hồ Chí Minh", None, None),
    ("HCM", "79", "Hồ Chí Minh", None, None),
    ("Sài Gòn", "79", "Hồ Chí Minh", None, None),
    ("thanh pho ho chi minh", "79", "Hồ Chí Minh", None, None),
    ("Huế", "46", "Huế", None, None),
    ("Thừa Thiên Huế", "46", "Huế", None, None),
    # old provinces go to their 2025 province
    ("Thái Bình", "33", "Hưng Yên", None, "Thái Bình"),
    ("tỉnh Bình Dương", "79", "Hồ Chí Minh", None, "Bình Dương"),
    ("Quảng Nam", "48", "Đà Nẵng", None, "Quảng Nam"),
    ("tui về Long An rồi nha", "80", "Tây Ninh", None, "Long An"),
    ("mình ở Bắc Giang cũ, giờ là tỉnh Bắc Ninh", "24", "Bắc Ninh", None, "Bắc Giang"),
    # old and new named together: the new one, with the old one remembered
    ("ở Dĩ An, Bình Dương cũ, giờ là TP.HCM", "79", "Hồ Chí Minh", "Phường Dĩ An", "Bình Dương"),
    (
        "em đang ở nhà ngoại ở Hội An, Quảng Nam, giờ thuộc Đà Nẵng rồi",
        "48",
        "Đà Nẵng",
        "Phường Hội An",
        "Quảng Nam",
    ),
    ("tui ở Rạch Giá, Kiên Giang cũ, chừ là An Giang á", "91", "An Giang", "Phường Rạch Giá", "Kiên Giang"),
    # old wards and districts go to their 2025 ward
    ("tui ở Phú Hội, Huế", "46", "Huế", "Phường Thuận Hóa", None),
    ("Phường Phúc Xá, Quận Ba Đình, Hà Nội", "01", "Hà Nội", "Phường Hồng Hà", None),
    ("phường 5, quận 3", "79", "Hồ Chí Minh", "Phường Bàn Cờ", None),
    ("p.12, q. Gò Vấp", "79", "Hồ Chí Minh", "Phường An Hội Tây", None),
    (
        "vẫn ở chỗ cũ, phường An Hòa quận Ninh Kiều, giờ là phường Ninh Kiều, Cần Thơ",
        "92",
        "Cần Thơ",
        "Phường Ninh Kiều",
        None,
    ),
    ("quận 7", "79", "Hồ Chí Minh", None, None),
    # typed without diacritics
    ("phuong ngoc ha ha noi", "01", "Hà Nội", "Phường Ngọc Hà", None),
    ("e o p Ngoc Ha, HN a", "01", "Hà Nội", "Phường Ngọc Hà", None),
    ("tui o ap 3 xa Phong Dien, Can Tho nha", "92", "Cần Thơ", "Xã Phong Điền", None),
    ("van o nha o Hoi An, Quang Nam cu", "48", "Đà Nẵng", "Phường Hội An", "Quảng Nam"),
    ("tinh binh duong", "79", "Hồ Chí Minh", None, "Bình Dương"),
    ("nha minh o Ha Dong, Ha Tay cu", "01", "Hà Nội", "Phường Hà Đông", None),
    # a pre-2025 provincial city names its province
    ("Đà Lạt", "68", "Lâm Đồng", None, None),
    ("em đang ở nhà ngoại ở Thủ Đức", "79", "Hồ Chí Minh", "Phường Thủ Đức", None),
    # the hometown is not where they stay
    ("quê Nghệ An, đang ở Hà Nội", "01", "Hà Nội", None, None),
    ("đang ở Hà Nội, quê Nghệ An", "01", "Hà Nội", None, None),
    ("tôi ở xa Hà Nội", "01", "Hà Nội", None, None),
]


@pytest.mark.parametrize(("text", "code", "province", "ward", "old_province"), PLACES)
def test_a_place_as_residents_say_it(text, code, province, ward, old_province):
    assert find_place(text) == Place(code, province, ward, old_province)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "không",
        "vẫn ở nhà",
        "tôi bị sốt",
        "hôm qua",
        "2 mũi",
        "âm tính",
        "có",
        "ok",
        "không cần gì",
        "tôi là F1",  # F1 is a contact, not ward 1
        "ở xa lắm",
        "chị Huệ",  # not Huế
        "tôi cần thở oxy",  # not Cần Thơ
        "hn tôi bị sốt",  # hn = hôm nay
        "bac can thuoc huyet ap",  # bác cần, not Bắc Cạn
        "ben trung tam y te hay ben xa goi vay",  # "xa" = far
        "ở Tân Bình",  # a ward name in many provinces, with none named
        "ở nhà với bố mẹ, bình thường",
    ],
)
def test_no_place_in_ordinary_answers(text):
    assert find_place(text) is None


def test_a_bare_ward_name_needs_a_province_or_a_unit_word():
    assert find_place("Ngọc Hà") is None
    assert find_place("phường Ngọc Hà") == Place("01", "Hà Nội", "Phường Ngọc Hà", None)
    assert find_place("tôi ở Bắc Ninh, bị ho").ward is None  # "Hồ" is an old township of Bắc Ninh


def test_every_2025_province_has_its_gso_code():
    assert len(GSO_CODES) == 34
    for code in GSO_CODES.values():
        names = {find_place(name).province for name, c in GSO_CODES.items() if c == code}
        assert len(names) == 1
    assert (find_place("Hưng Yên").province_code, find_place("Đà Nẵng").province_code) == ("33", "48")
    assert {find_place(name).province_code for name in GSO_CODES} == set(GSO_CODES.values())


def test_a_thousand_answers_in_under_two_seconds():
    texts = [case[0] for case in PLACES] + ["không", "tôi bị sốt", "vẫn ở nhà"]
    find_place("Hà Nội")  # the indexes are built on the first call
    started = time.perf_counter()
    for i in range(1000):
        find_place(texts[i % len(texts)])
    assert time.perf_counter() - started < 2.0
