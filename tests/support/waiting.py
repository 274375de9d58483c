"""Waiting for what another thread or process does (a webhook handled, a message sent), with a deadline."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], what: str, timeout: float = 20.0) -> T:
    """The condition's first true value, checked every 50 ms; fails the test with `what` past the deadline."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result
