"""Vietnamese phone numbers in every form people write them, to E.164."""

import re

import phonenumbers

# The 2018 conversion of 11-digit mobile numbers: only the prefix changed, the last 7 digits stayed.
LEGACY_MOBILE_PREFIXES = {
    "0162": "032",
    "0163": "033",
    "0164": "034",
    "0165": "035",
    "0166": "036",
    "0167": "037",
    "0168": "038",
    "0169": "039",
    "0120": "070",
    "0121": "079",
    "0122": "077",
    "0126": "076",
    "0128": "078",
    "0123": "083",
    "0124": "084",
    "0125": "085",
    "0127": "081",
    "0129": "082",
    "0186": "056",
    "0188": "058",
    "0199": "059",
}

_NON_DIGITS = re.compile(r"\D")
MAX_DIGITS = 17  # the longest number phonenumbers keeps; longer digits are never a phone (nor an int to build)


class InvalidPhone(ValueError):
    """A number that is not a Vietnamese phone number; the message says why."""


def _national_digits(raw: str) -> str:
    digits = _NON_DIGITS.sub("", raw)
    if digits.startswith("0084"):
        return "0" + digits[4:]
    if digits.startswith("84") and len(digits) in (11, 12):
        return "0" + digits[2:]
    if len(digits) == 9 and not digits.startswith("0"):
        return "0" + digits  # a spreadsheet dropped the leading 0
    return digits


def normalize_phone(raw: str) -> str:
    """`0912 345 678`, `84912345678`, `+84 91 234 5678`, `0162.345.6789` ... -> `+84912345678`."""
    if not raw or not raw.strip():
        raise InvalidPhone("the phone number is empty")
    if re.search(r"[A-Za-z]", raw):
        raise InvalidPhone(f"'{raw}' contains letters")
    digits = _national_digits(raw)
    if len(digits) == 11 and digits[:4] in LEGACY_MOBILE_PREFIXES:
        digits = LEGACY_MOBILE_PREFIXES[digits[:4]] + digits[4:]
    number = national_number(digits) or _parsed(digits, raw)
    if number.country_code != 84 or not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"'{raw}' is not a valid Vietnamese phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def national_number(digits: str) -> phonenumbers.PhoneNumber | None:
    """`0` and the national significant number, as phonenumbers would parse it in Vietnam, without its string parsing:
    a quarter of the time (check-in imports read millions of distinct phones). Anything else: None."""
    if not 3 <= len(digits) <= MAX_DIGITS or digits[0] != "0" or digits[1] == "0" or not digits.isdigit():
        return None  # phonenumbers refuses the rest with its reason (too long, an international prefix ...)
    return phonenumbers.PhoneNumber(country_code=84, national_number=int(digits[1:]))


def _parsed(digits: str, raw: str) -> phonenumbers.PhoneNumber:
    try:
        return phonenumbers.parse(digits, "VN")
    except phonenumbers.NumberParseException as error:
        raise InvalidPhone(f"'{raw}' is not a phone number ({error})") from None
