"""Closed questions on a call: recognised words snapped to the answers the question offers.

A recogniser that is wrong on a word in four on open sentences ("bạn cảm khúc cây" for "bạn cầm khúc cây") is
still right about which of three answers a resident gave, if the words are compared as sounds rather than spelt:
"khong co trieu trung" is "Không có triệu chứng". Words that are close to no offered answer are passed on as heard
(the dialogue understands "không", "hai mũi rồi" and a hundred other forms); a recogniser that says it is unsure
and matched nothing makes the call ask again with keypad choices.
"""

from collections.abc import Sequence
from difflib import SequenceMatcher

from bot.vntext import folded

SNAP_AT = 0.8  # similarity of the folded words to an answer's (1 = the same)
UNSURE_BELOW = 0.5  # a recogniser's confidence under this, with nothing snapped: ask again with keys
_DIGIT_WORDS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")


def _spoken(title: str) -> str:
    """An answer as it is said: digits read out ("2 mũi" -> "hai mũi")."""
    return " ".join(_DIGIT_WORDS[int(word)] if word.isdigit() and len(word) == 1 else word for word in title.split())


def snap(text: str, choices: Sequence[str]) -> int | None:
    """The index of the offered answer the words clearly say, or None."""
    said = folded(text)
    if not said or not choices:
        return None
    scores = [max(_similarity(said, folded(c)), _similarity(said, folded(_spoken(c)))) for c in choices]
    best = max(range(len(choices)), key=scores.__getitem__)
    return best if scores[best] >= SNAP_AT else None


def _similarity(said: str, answer: str) -> float:
    return SequenceMatcher(None, said, answer, autojunk=False).ratio()


def unsure(confidence: float | None) -> bool:
    return confidence is not None and confidence < UNSURE_BELOW
