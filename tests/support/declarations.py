"""One whole health declaration as residents give it (typed, or spoken on a call) and what the store keeps of it."""

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from models import Declaration

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")

# Fever and cough since yesterday, no contact with a case, a negative rapid test this morning, two doses, at home,
# nothing needed: each answer typed with diacritics, from the identity question to the last one.
TYPED_ANSWERS = (
    "Vâng, đúng rồi",
    "Được",
    "Tôi bị sốt và ho khan",
    "38,5 độ",
    "Từ hôm qua",
    "Không",
    "Test nhanh âm tính",
    "Sáng nay",
    "Tiêm 2 mũi rồi",
    "Có, tôi vẫn ở nhà",
    "Không cần gì",
)
# The health questions' answers of that declaration (symptoms to vaccine doses) as a caller says them.
SPOKEN_HEALTH_ANSWERS = (
    "tôi bị sốt và ho",
    "ba mươi tám độ rưỡi",
    "từ hôm qua",
    "không",
    "test nhanh âm tính",
    "sáng nay",
    "hai mũi",
)


def today() -> date:
    return datetime.now(HANOI).date()


def typed_declaration() -> dict[str, Any]:
    """What the store keeps of TYPED_ANSWERS, by column."""
    return {
        "status": "complete",
        "identity_confirmed": True,
        "symptoms_asked": True,
        "symptoms": ["fever", "cough"],
        "temperature_c": 38.5,
        "symptom_onset": today() - timedelta(days=1),
        "contact_with_case": "no",
        "test_result": "negative",
        "test_date": today(),
        "vaccine_doses": 2,
        "at_registered_address": True,
        "needs": None,
        "alert_level": "watch",
    }


def columns(declaration: Declaration, names: dict[str, Any]) -> dict[str, Any]:
    """The declaration's values of the columns `names` holds (compared with it as a whole, every difference shows)."""
    return {name: getattr(declaration, name) for name in names}
