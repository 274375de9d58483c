"""The dialogue's custom actions (engine environment: `rasa run actions --actions bot.actions`).

`validate_declaration_form` reads each answer of the health declaration: the answer to the pending question,
whatever else the resident volunteered in the same breath ("tôi sốt 38 độ 5 từ hôm qua, ho khan"), and the acts
that end or pause the conversation (wrong person, refusal, call back later). It then names the next question.
Answers are parsed by `bot.answers`, which the platform can use too.
"""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot import answers
from bot.answers import Turn

TIMEZONE = ZoneInfo("Asia/Ho_Chi_Minh")
REQUESTED_SLOT = "requested_slot"
# Intents the form hands to the rules: they neither answer nor end anything.
LEFT_TO_RULES = {"repeat", "greet", "ask_quarantine", "ask_testing", "ask_identity", "emergency"}


def _turn(tracker: Tracker) -> Turn:
    message = tracker.latest_message or {}
    return Turn(
        text=message.get("text") or "",
        intent=(message.get("intent") or {}).get("name") or "",
        entities=message.get("entities") or [],
        now=datetime.now(TIMEZONE),
        proxy=tracker.get_slot("answered_by") == "relative",
        called=tracker.get_slot("resident_called"),
        greeted=tracker.get_slot("name"),
    )


def _answering(tracker: Tracker) -> bool:
    """Did the resident just speak (True), or is the form back from a rule's answer or a repeat (False)?

    The form calls us on a copy of the tracker that ends with its own ActionExecuted, so the latest action name
    is always the form's: look further back, past bookkeeping, for a user message or another action.
    """
    bookkeeping = {"declaration_form", "action_extract_slots", "action_listen"}
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return True
        if event.get("event") == "action" and event.get("name") not in bookkeeping:
            return False
    return False


def _answers_anyway(requested: str, turn: Turn) -> bool:
    """A message the classifier took for a question or a repeat that plainly answers the question asked."""
    return turn.intent != "emergency" and answers.specific_answer(requested, turn) is not None


def _really(turn: Turn) -> bool:
    """A question the classifier heard must read like one ("ờm để xem" is thinking, not asking about tests)."""
    return not turn.intent.startswith("ask_") or answers.reads_as_a_question(turn.text)


def _slot_events(before: dict[str, Any], after: dict[str, Any]) -> list[EventType]:
    """The slots that changed; the question to ask (`requested_slot`) always, for the form asks it."""
    return [
        SlotSet(name, value) for name, value in after.items() if before.get(name) != value or name == REQUESTED_SLOT
    ]


class ValidateDeclarationForm(Action):
    def name(self) -> str:
        return "validate_declaration_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        slots = {name: tracker.get_slot(name) for name in answers.DIALOGUE_SLOTS}
        requested = tracker.get_slot(REQUESTED_SLOT)
        turn = _turn(tracker)
        if not _answering(tracker):
            # Back from answering a question or repeating: ask the pending question again (it counts as asked).
            return _slot_events(slots, answers.ask_next(slots))
        if requested and answers.is_complaint(turn):
            dispatcher.utter_message(response="utter_explain_follow_up")
            told = answers.told_with_a_complaint(requested, turn)
            if told is None:
                return _slot_events(slots, answers.ask_next(slots))
            turn = told  # "lại khai nữa à? ... thôi được, hỏi đi": explained, and the answer taken
        if requested and turn.intent in LEFT_TO_RULES and not _answers_anyway(requested, turn) and _really(turn):
            return []  # the form steps aside; a rule answers, then the form asks again
        updated = answers.apply(slots, requested, turn)
        if answers.needs_emergency_advice(slots, updated):
            dispatcher.utter_message(response="utter_emergency_advice")
            updated["emergency"] = True
        return _slot_events(slots, answers.ask_next(updated))


class ActionEmergency(Action):
    """Stop the questions: tell the resident to call 115 and that a health worker is on the way."""

    def name(self) -> str:
        return "action_emergency"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        turn = _turn(tracker)
        before = tracker.get_slot("symptoms")
        if tracker.get_slot("emergency") and not answers.new_urgent_symptoms(before, turn):
            # Told again, with nothing new: the alert is raised and a health worker is calling. Say so briefly and go
            # on where the questions were; "go on?" is asked once per emergency, not at every "khó thở".
            dispatcher.utter_message(response="utter_emergency_known")
            return [FollowupAction("declaration_form")]
        dispatcher.utter_message(response="utter_emergency_advice")
        symptoms = answers.merge_symptoms(before, answers.symptoms_in(turn))
        answered = symptoms or isinstance(before, list)  # "no symptoms" said before stays said
        events: list[EventType] = [SlotSet("emergency", True), SlotSet("symptoms", symptoms if answered else None)]
        if tracker.get_slot("consent") is None:
            events.append(SlotSet("consent", True))  # going on after this is the resident's own choice
        if tracker.active_loop_name:
            events += [ActiveLoop(None), SlotSet(REQUESTED_SLOT, None)]
        return events


class ActionClose(Action):
    """Say goodbye in the way the conversation ended, and mark it closed."""

    def name(self) -> str:
        return "action_close"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        outcome = tracker.get_slot("outcome") or "ended_early"
        events: list[EventType] = []
        if outcome == "callback_requested":
            moment = _callback_moment(tracker.get_slot("callback_at"))
            events.append(SlotSet("callback_at", moment.isoformat()))
            dispatcher.utter_message(response="utter_close_callback", callback_display=f"{moment:%H:%M ngày %d/%m}")
        else:
            dispatcher.utter_message(response=answers.CLOSING_RESPONSES[outcome])
        return [*events, SlotSet("outcome", outcome), SlotSet("conversation_closed", True)]


def _callback_moment(said: object) -> datetime:
    """When to call back: the time the resident gave, or the default delay when they gave none (an emergency came
    in between, or the time was not understood twice)."""
    try:
        return datetime.fromisoformat(str(said)).astimezone(TIMEZONE)
    except ValueError:
        return datetime.now(TIMEZONE) + answers.DEFAULT_CALLBACK_DELAY
