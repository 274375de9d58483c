import random

import phonenumbers
import pytest

from ground.phones import InvalidPhone, national_number, normalize_phone


@pytest.mark.parametrize(
    "raw",
    [
        "0912345678",
        "0912 345 678",
        "0912.345.678",
        "84912345678",
        "+84 91 234 5678",
        "+84912345678",
        "0084912345678",
        "912345678",
        " 091-234-5678 ",
    ],
)
def test_common_forms_of_one_mobile_number_agree(raw):
    assert normalize_phone(raw) == "+84912345678"


@pytest.mark.parametrize(
    ("legacy", "current"),
    [
        ("01623456789", "+84323456789"),
        ("0120 345 6789", "+84703456789"),
        ("01293456789", "+84823456789"),
        ("01883456789", "+84583456789"),
        ("01993456789", "+84593456789"),
        ("841663456789", "+84363456789"),
    ],
)
def test_pre_2018_eleven_digit_mobiles_map_to_their_new_prefix(legacy, current):
    assert normalize_phone(legacy) == current


def test_landlines_keep_their_area_code():
    assert normalize_phone("(024) 3825 1234") == "+842438251234"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("abc", "letters"),
        ("12345", "not a valid"),
        ("+1 212 555 0100", "not a valid"),
        ("0912", "not a valid"),
    ],
)
def test_invalid_numbers_say_why(raw, reason):
    with pytest.raises(InvalidPhone, match=reason):
        normalize_phone(raw)


def test_national_numbers_read_directly_are_what_phonenumbers_parses():
    """The shortcut past phonenumbers' string parsing gives the same number, valid or not, on numbers of every
    length and prefix (a sixth of them valid mobiles or landlines)."""
    chance = random.Random(11)
    valid = 0
    for _ in range(50_000):
        length = chance.choice([9, 10, 11])
        digits = "0" + chance.choice("123456789") + "".join(chance.choices("0123456789", k=length - 2))
        parsed = phonenumbers.parse(digits, "VN")
        assert national_number(digits) == parsed, digits
        valid += phonenumbers.is_valid_number(parsed)
    assert valid > 5_000
    assert national_number("0084912345678") is None and national_number("09x") is None


@pytest.mark.parametrize("raw", ["0" + "9" * 5000, "09" + "1" * 20])
def test_a_number_too_long_to_be_a_phone_is_refused_not_a_crash(raw):
    with pytest.raises(InvalidPhone, match="too long"):
        normalize_phone(raw)
