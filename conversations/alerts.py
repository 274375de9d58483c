"""Which declarations need a human, how urgently, and why."""

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.outcomes import keep_verdict
from ground.settings import Settings
from models import Alert, AlertLevel, Declaration

EMERGENCY_REASON = "emergency reported by the resident"
LEVEL_RANK = {AlertLevel.NONE: 0, AlertLevel.WATCH: 1, AlertLevel.URGENT: 2}
SYMPTOM_NAMES = {
    "fever": "fever",
    "cough": "cough",
    "shortness_of_breath": "shortness of breath",
    "sore_throat": "sore throat",
    "fatigue": "fatigue",
    "loss_of_taste_or_smell": "loss of taste or smell",
    "runny_nose": "runny nose",
    "body_ache": "body ache",
    "headache": "headache",
    "diarrhea": "diarrhea",
    "chest_pain": "chest pain",
}

# The same symptoms and reasons as tracing teams say them (the store and the API keep the English above).
SYMPTOMS_VI = {
    "fever": "sốt",
    "cough": "ho",
    "shortness_of_breath": "khó thở",
    "sore_throat": "đau họng",
    "fatigue": "mệt mỏi",
    "loss_of_taste_or_smell": "mất vị giác, khứu giác",
    "runny_nose": "sổ mũi",
    "body_ache": "đau nhức người",
    "headache": "đau đầu",
    "diarrhea": "tiêu chảy",
    "chest_pain": "đau ngực",
}
_REASONS_VI = {
    EMERGENCY_REASON: "người dân báo cấp cứu",
    "positive test": "xét nghiệm dương tính",
    **{SYMPTOM_NAMES[code]: vietnamese for code, vietnamese in SYMPTOMS_VI.items()},
}
_TEMPERATURE_REASON = re.compile(r"temperature ([\d.]+) °C")


def reason_vi(reason: str) -> str:
    """An alert reason in Vietnamese: "temperature 39.5 °C" -> "nhiệt độ 39,5 °C"."""
    if match := _TEMPERATURE_REASON.fullmatch(reason):
        return f"nhiệt độ {match.group(1).replace('.', ',')} °C"
    return _REASONS_VI.get(reason, reason)


@dataclass(frozen=True)
class Assessment:
    level: AlertLevel
    reasons: list[str]


def assess(declaration: Declaration, emergency_reported: bool, settings: Settings) -> Assessment:
    """Urgent: danger signs, a high fever, a positive test, an emergency; watch: any other symptom or a fever."""
    urgent, watch = [], []
    if emergency_reported:
        urgent.append(EMERGENCY_REASON)
    for code in declaration.symptoms or []:
        (urgent if code in settings.alert_urgent_symptoms else watch).append(SYMPTOM_NAMES.get(code, code))
    temperature = declaration.temperature_c
    if temperature is not None and temperature >= settings.alert_urgent_temperature_c:
        urgent.append(f"temperature {temperature:.1f} °C")
    elif temperature is not None and temperature >= settings.alert_watch_temperature_c:
        watch.append(f"temperature {temperature:.1f} °C")
    if declaration.test_result == "positive":
        urgent.append("positive test")
    if urgent:
        return Assessment(AlertLevel.URGENT, urgent + watch)
    return Assessment(AlertLevel.WATCH, watch) if watch else Assessment(AlertLevel.NONE, [])


def raise_alert(
    session: Session, declaration: Declaration, assessment: Assessment, by_a_person: bool = False
) -> Alert | None:
    """Keep one open alert per declaration, escalated as answers come in; a new one after an acknowledged one
    only when there is something new to act on. `by_a_person`: the assessment follows a tracer's correction, and
    whoever corrects is acting on it: after an acknowledged alert, a new one only when the level goes up."""
    declaration.alert_level, declaration.alert_reasons = assessment.level, assessment.reasons
    keep_verdict(session, declaration)  # every answer and correction is assessed here: the campaign's day follows
    if assessment.level == AlertLevel.NONE:
        return None
    latest = session.scalar(
        select(Alert).where(Alert.declaration_id == declaration.id).order_by(Alert.id.desc()).limit(1)
    )
    if latest is not None and latest.acknowledged_at is None:
        if LEVEL_RANK[assessment.level] >= LEVEL_RANK[latest.level] and latest.reasons != assessment.reasons:
            latest.level, latest.reasons = assessment.level, assessment.reasons
        return latest
    if latest is not None and set(assessment.reasons) <= set(latest.reasons):
        return latest  # nothing new since a tracer acknowledged it
    if latest is not None and by_a_person and LEVEL_RANK[assessment.level] <= LEVEL_RANK[latest.level]:
        return latest
    alert = Alert(
        declaration_id=declaration.id,
        person_id=declaration.person_id,
        level=assessment.level,
        reasons=assessment.reasons,
    )
    session.add(alert)
    return alert
