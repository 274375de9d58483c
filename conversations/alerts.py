"""Which declarations need a human, how urgently, and why."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ground.settings import Settings
from models import Alert, AlertLevel, Declaration

EMERGENCY_REASON = "emergency reported by the resident"
_RANK = {AlertLevel.NONE: 0, AlertLevel.WATCH: 1, AlertLevel.URGENT: 2}
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


def raise_alert(session: Session, declaration: Declaration, assessment: Assessment) -> Alert | None:
    """Keep one open alert per declaration, escalated as answers come in; a new one after an acknowledged one
    only when there is something new to act on."""
    declaration.alert_level, declaration.alert_reasons = assessment.level, assessment.reasons
    if assessment.level == AlertLevel.NONE:
        return None
    latest = session.scalar(
        select(Alert).where(Alert.declaration_id == declaration.id).order_by(Alert.id.desc()).limit(1)
    )
    if latest is not None and latest.acknowledged_at is None:
        if _RANK[assessment.level] >= _RANK[latest.level] and latest.reasons != assessment.reasons:
            latest.level, latest.reasons = assessment.level, assessment.reasons
        return latest
    if latest is not None and set(assessment.reasons) <= set(latest.reasons):
        return latest  # nothing new since a tracer acknowledged it
    alert = Alert(
        declaration_id=declaration.id,
        person_id=declaration.person_id,
        level=assessment.level,
        reasons=assessment.reasons,
    )
    session.add(alert)
    return alert
