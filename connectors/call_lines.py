"""What a call says in either voice mode (Gather or stream) besides the dialogue's own replies."""

from collections.abc import Sequence

from conversations.engine import BotMessage

SILENCES_BEFORE_HANGING_UP = 2
NOT_HEARD = "Xin lỗi, tôi chưa nghe thấy anh/chị trả lời."
CALL_BACK_LATER = "Có vẻ đường truyền không tốt. Chúng tôi sẽ gọi lại cho anh/chị sau. Xin cảm ơn và chào anh/chị."
APOLOGY = "Xin lỗi, hệ thống đang gặp sự cố. Chúng tôi sẽ gọi lại cho anh/chị sau. Xin cảm ơn."
NOT_CLEAR = "Xin lỗi, tôi nghe chưa rõ."


def keypad_hint(titles: Sequence[str]) -> str:
    """'Hoặc bấm phím 1 nếu đúng, phím 2 nếu không phải.' — a question with buttons also takes keypad digits."""
    choices = ", phím ".join(f"{number} nếu {title.lower()}" for number, title in enumerate(titles, 1))
    return f"Hoặc bấm phím {choices}."


def spoken_lines(message: BotMessage) -> list[str]:
    """A reply as a call says it: a question with buttons also says which key is which."""
    return [message.text, keypad_hint([b.title for b in message.buttons])] if message.buttons else [message.text]
