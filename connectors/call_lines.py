"""What a call says in either voice mode (Gather or stream) besides the dialogue's own replies."""

from collections.abc import Sequence
from functools import cache

from conversations.engine import BotMessage
from conversations.engine_project import DOMAIN
from voice.prompts import button_titles, speakable, static_texts

SILENCES_BEFORE_HANGING_UP = 2
NOT_HEARD = "Xin lỗi, tôi chưa nghe thấy anh/chị trả lời."
CALL_BACK_LATER = "Có vẻ đường truyền không tốt. Chúng tôi sẽ gọi lại cho anh/chị sau. Xin cảm ơn và chào anh/chị."
APOLOGY = "Xin lỗi, hệ thống đang gặp sự cố. Chúng tôi sẽ gọi lại cho anh/chị sau. Xin cảm ơn."
NOT_CLEAR = "Xin lỗi, tôi nghe chưa rõ."
NUMBER_HIDDEN = (
    "Xin lỗi, tổng đài không nhận được số điện thoại của anh/chị. Xin anh/chị gọi lại mà không ẩn số. Xin cảm ơn."
)


def keypad_hint(titles: Sequence[str]) -> str:
    """'Hoặc bấm phím 1 nếu đúng, phím 2 nếu không phải.' — a question with buttons also takes keypad digits."""
    choices = ", phím ".join(f"{number} nếu {title.lower()}" for number, title in enumerate(titles, 1))
    return f"Hoặc bấm phím {choices}."


def spoken_lines(message: BotMessage) -> list[str]:
    """A reply as a call says it: a question with buttons also says which key is which."""
    return [message.text, keypad_hint([b.title for b in message.buttons])] if message.buttons else [message.text]


def ahead_of_calls() -> list[str]:
    """Every line a call may play that is the same for everyone: rendered at start and when a campaign starts."""
    hints = [keypad_hint(titles) for titles in button_titles(DOMAIN)]
    return [*static_texts(DOMAIN), *hints, NOT_HEARD, NOT_CLEAR, CALL_BACK_LATER, APOLOGY, NUMBER_HIDDEN]


@cache
def _said_to_everyone() -> frozenset[str]:
    return frozenset(speakable(line) for line in ahead_of_calls())


def personal(line: str) -> bool:
    """Whether a line may hold something of a resident's (their name): any line not said to everyone alike."""
    return speakable(line) not in _said_to_everyone()
