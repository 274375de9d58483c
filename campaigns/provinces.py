"""Vietnam's provinces (the 63 of 2008-2025) with their two-digit GSO codes, matched however a list spells them.

Lists of the COVID-19 years name the old provinces; the 2025 merger (34 units) kept codes of merged provinces, so
a code here still scopes the people of that area.
"""

from bot.vntext import folded

PROVINCES = {
    "01": "Hà Nội",
    "02": "Hà Giang",
    "04": "Cao Bằng",
    "06": "Bắc Kạn",
    "08": "Tuyên Quang",
    "10": "Lào Cai",
    "11": "Điện Biên",
    "12": "Lai Châu",
    "14": "Sơn La",
    "15": "Yên Bái",
    "17": "Hòa Bình",
    "19": "Thái Nguyên",
    "20": "Lạng Sơn",
    "22": "Quảng Ninh",
    "24": "Bắc Giang",
    "25": "Phú Thọ",
    "26": "Vĩnh Phúc",
    "27": "Bắc Ninh",
    "30": "Hải Dương",
    "31": "Hải Phòng",
    "33": "Hưng Yên",
    "34": "Thái Bình",
    "35": "Hà Nam",
    "36": "Nam Định",
    "37": "Ninh Bình",
    "38": "Thanh Hóa",
    "40": "Nghệ An",
    "42": "Hà Tĩnh",
    "44": "Quảng Bình",
    "45": "Quảng Trị",
    "46": "Thừa Thiên Huế",
    "48": "Đà Nẵng",
    "49": "Quảng Nam",
    "51": "Quảng Ngãi",
    "52": "Bình Định",
    "54": "Phú Yên",
    "56": "Khánh Hòa",
    "58": "Ninh Thuận",
    "60": "Bình Thuận",
    "62": "Kon Tum",
    "64": "Gia Lai",
    "66": "Đắk Lắk",
    "67": "Đắk Nông",
    "68": "Lâm Đồng",
    "70": "Bình Phước",
    "72": "Tây Ninh",
    "74": "Bình Dương",
    "75": "Đồng Nai",
    "77": "Bà Rịa - Vũng Tàu",
    "79": "Hồ Chí Minh",
    "80": "Long An",
    "82": "Tiền Giang",
    "83": "Bến Tre",
    "84": "Trà Vinh",
    "86": "Vĩnh Long",
    "87": "Đồng Tháp",
    "89": "An Giang",
    "91": "Kiên Giang",
    "92": "Cần Thơ",
    "93": "Hậu Giang",
    "94": "Sóc Trăng",
    "95": "Bạc Liêu",
    "96": "Cà Mau",
}

_PREFIXES = ("thanh pho", "tinh", "tp")
_ALIASES = {"hcm": "79", "tphcm": "79", "sai gon": "79", "hn": "01", "hue": "46", "brvt": "77", "vung tau": "77"}


def _key(name: str) -> str:
    key = folded(name.replace(".", " ").replace("-", " "))
    for prefix in _PREFIXES:
        if key.startswith(prefix + " "):
            key = key[len(prefix) + 1 :]
    return key.strip()


_BY_NAME = {_key(name): code for code, name in PROVINCES.items()} | _ALIASES


def province_code(name_or_code: str | None) -> str | None:
    """'Bắc Ninh', 'tỉnh Bac Ninh', 'TP. Hồ Chí Minh', 'HCM', '27' -> the GSO code, or None when unknown."""
    if not name_or_code or not name_or_code.strip():
        return None
    value = name_or_code.strip()
    if value.isdigit():
        return value.zfill(2) if value.zfill(2) in PROVINCES else None
    return _BY_NAME.get(_key(value))
