"""Logs hold no resident's secret: web chat session ids and invite keys are keys to a conversation."""

import logging
import re

_SECRETS_IN_PATHS = (
    (re.compile(r"(/webchat/sessions/)[^/?#\s]+"), r"\1[redacted]"),
    (re.compile(r"([?&](?:invite|token|session_id)=)[^&#\s]+"), r"\1[redacted]"),
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS_IN_PATHS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """For uvicorn's access log, whose arguments are (client, method, path, http version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True
