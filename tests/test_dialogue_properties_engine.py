"""Issue 11's promise through the real web chat and the real engine: whatever the resident sends, no question is asked
a third time and every conversation ends (`"ended": true`) within the turn budget.

`CONVERSATIONS` conversations are generated with a fixed seed, each resident on their own phone (every other one
with no province on file, so that "where are you staying?" is asked too). Each turn is drawn from the pools of
tests/test_dialogue_properties.py (an answer to the question the bot just asked, an answer to another one, nonsense,
silence, a request to repeat, a question or complaint, a refusal, busy, a goodbye, the same message again) or is a
click on one of the buttons the bot offered. Blank messages are left out: the web chat refuses them (422) before the
engine (tests/test_webchat_limits.py), and they would count against the chat's messages a minute. The engine
classifies what it is sent: the intents are its own.

Each bot reply is mapped to the question it asks by the texts of the `utter_ask_*` responses of bot/domain.yml (both
variants; `{name}` matches any name). "Go on?" (utter_ask_continue, after an emergency) is counted per emergency: a
question of the form asked after it starts the count again.
"""

import random
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml

from bot import answers
from tests import factories
from tests.test_dialogue_properties import ALL_ANSWERS, ANSWERS, BOT, CONTINUE, KINDS, POOLS, TURN_BUDGET
from tests.test_resident_conversations import chat  # noqa: F401

SEED = 20210603
CONVERSATIONS = 30
PARALLEL_RESIDENTS = 4
BUTTON_CLICKS = 0.2  # how often the resident clicks a button offered rather than types
SHOWN_FAILURES = 3  # transcripts printed in full, shortest first


def _question_patterns() -> list[tuple[str, re.Pattern[str]]]:
    """(question, the texts asking it) for every `utter_ask_*` response; "go on?" is `CONTINUE`."""
    responses = yaml.safe_load((BOT / "domain.yml").read_text(encoding="utf-8"))["responses"]
    patterns = []
    for name, variants in responses.items():
        if not name.startswith("utter_ask_"):
            continue
        question = name.removeprefix("utter_ask_")
        for variant in variants:
            text = re.sub(r"\\\{\w+\\\}", ".+?", re.escape(variant["text"].strip()))
            patterns.append((question, re.compile(text)))
    return patterns


QUESTION_PATTERNS = _question_patterns()
assert {q for q, _ in QUESTION_PATTERNS} >= {*answers.QUESTIONS, "callback_at", CONTINUE}


def question_asked(text: str) -> str | None:
    return next((question for question, pattern in QUESTION_PATTERNS if pattern.fullmatch(text.strip())), None)


@dataclass
class Talk:
    index: int
    name: str
    lines: list[str] = field(default_factory=list)
    asks: Counter = field(default_factory=Counter)
    over: dict[str, int] = field(default_factory=dict)  # questions asked a third time: how often, at most
    turns: int = 0
    ended: bool = False
    error: str | None = None

    def heard(self, replies: list[dict[str, Any]]) -> None:
        for reply in replies:
            question = question_asked(reply["text"])
            if question is not None and question != CONTINUE:
                self.asks[CONTINUE] = 0  # the form is back: a new emergency may ask "go on?" again
            if question is not None:
                self.asks[question] += 1
                if self.asks[question] > answers.MAX_ASKS:
                    self.over[question] = self.asks[question]
            tag = f"  [asks {question} #{self.asks[question]}]" if question else ""
            self.lines.append(f"    bot: {reply['text'][:110]}{tag}")

    @property
    def failed(self) -> bool:
        return bool(self.over) or not self.ended or self.error is not None

    def described(self) -> str:
        why = [f"asked a third time: {self.over}"] if self.over else []
        why += [] if self.ended else [f"not ended after {self.turns} turns"]
        why += [self.error] if self.error else []
        return "\n".join([f"{self.name}: {'; '.join(why)}", *self.lines])


def _message(rng: random.Random, question: str | None, previous: dict[str, Any] | None, buttons: list[dict]) -> dict:
    if buttons and rng.random() < BUTTON_CLICKS:
        button = rng.choice(buttons)
        return {"text": button["title"], "payload": button["payload"]}
    kind = rng.choice(KINDS)
    if kind == "same_again" and previous is not None:
        return previous
    if kind in ("answer", "same_again"):
        pool = ANSWERS.get(question or CONTINUE, ALL_ANSWERS)
    elif kind == "any_answer":
        pool = ALL_ANSWERS
    else:
        pool = POOLS[kind]
    return {"text": rng.choice([text for text in pool if text.strip()])}


def talk(app, index: int, script: list[dict[str, str]] | None = None, name: str = "") -> Talk:
    """A generated conversation, or the `script` given."""
    rng = random.Random(SEED * 1000 + index)
    phone = f"+8497{index:07d}"
    with app.sessions.begin() as session:
        factories.person(session, phone, province_code="27" if index % 2 else None, name="Trần Thị Bình")
    post = httpx.Client(base_url=app.url, timeout=60).post
    result = Talk(index, name or f"generated {index}")
    opened = post("/api/v1/webchat/sessions", json={"phone": phone, "name": "Bình"}).json()
    replies, result.ended = opened["replies"], opened["ended"]
    result.heard(replies)
    previous = None
    while not result.ended and result.turns < TURN_BUDGET and not result.over:
        asked = [q for q in map(question_asked, (r["text"] for r in replies)) if q]
        buttons = [button for reply in replies for button in reply.get("buttons") or []]
        if script:
            message = script[result.turns]
        else:
            message = _message(rng, asked[-1] if asked else None, previous, buttons)
        previous = message
        response = post(f"/api/v1/webchat/sessions/{opened['session_id']}/messages", json=message)
        result.lines.append(f"> {message['text']!r}" + (f" ({message['payload']})" if "payload" in message else ""))
        if response.status_code != 200:
            result.error = f"HTTP {response.status_code}: {response.text[:200]}"
            return result
        result.turns += 1
        body = response.json()
        replies, result.ended = body["replies"], body["ended"]
        result.heard(replies)
    return result


# The violations tests/test_dialogue_properties.py found, in words, through the engine. Past its script the resident
# sends the last message again until the turn budget is spent. A (title, payload) is a button clicked.
SCRIPTS = {
    "callback_time_not_understood_twice": ["đúng rồi", "bận", "hả", "hả"],
    "callback_then_emergency_then_stop": ["đúng rồi", "bận", "tôi khó thở quá", ("Dừng lại", "/deny")],
    "go_on_asked_again_at_each_repeat": ["đúng rồi", "được", "tôi khó thở quá", "hả"],
    "go_on_asked_again_at_each_emergency": ["đúng rồi", "được", "tôi khó thở quá"],
    "stranded_after_emergency": ["đúng rồi", "được", "tôi khó thở quá", "asdf", "có", "tạm biệt"],
    "wrong_person_after_emergency": ["đúng rồi", "được", "tôi khó thở quá", "không phải tôi"],
}


def scripted(app, index: int, name: str) -> Talk:
    script = [{"text": m} if isinstance(m, str) else {"text": m[0], "payload": m[1]} for m in SCRIPTS[name]]
    script += [script[-1]] * (TURN_BUDGET - len(script))
    return talk(app, index, script, name)


def test_found_violations_through_the_web_chat(chat):  # noqa: F811
    with ThreadPoolExecutor(PARALLEL_RESIDENTS) as pool:
        talks = list(pool.map(lambda item: scripted(chat, 1000 + item[0], item[1]), enumerate(SCRIPTS)))
    failed = [t for t in talks if t.failed]
    summary = f"{len(failed)} of {len(talks)} scripts broke the promise: {[t.name for t in failed]}"
    assert not failed, "\n\n".join([summary, *(t.described() for t in failed)])


def test_no_question_thrice_and_every_web_chat_ends(chat):  # noqa: F811
    with ThreadPoolExecutor(PARALLEL_RESIDENTS) as pool:
        talks = list(pool.map(lambda index: talk(chat, index), range(CONVERSATIONS)))
    failed = sorted((t for t in talks if t.failed), key=lambda t: (t.turns, len(t.lines)))
    summary = f"{len(failed)} of {len(talks)} conversations broke the promise (turn budget {TURN_BUDGET})"
    assert not failed, "\n\n".join([summary, *(t.described() for t in failed[:SHOWN_FAILURES])])
