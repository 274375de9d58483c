"""Rate limits counted by the `limits` library, in the storage a URI names.

`memory://` counts in this process (one API process, tests); `redis://host:6379` shares the counters between API
replicas, so a limit holds whichever replica a request lands on. A sliding window counter: constant memory per key
(two counters), no burst of twice the limit at a window's edge.
"""

import logging
import time

from limits import RateLimitItemPerMinute
from limits.storage import Storage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

log = logging.getLogger(__name__)


def limit_storage(uri: str) -> Storage:
    """The counters' storage; a URI whose client library is missing stops the start (ConfigurationError)."""
    return storage_from_string(uri)


class RateLimiter:
    """At most `per_minute` requests a minute (or `per_minute` in `minutes` minutes) for each key of one kind (`name`:
    an address, a session...)."""

    def __init__(self, storage: Storage, name: str, per_minute: int, minutes: int = 1) -> None:
        self.name = name
        self._limit = RateLimitItemPerMinute(per_minute, minutes)
        self._strategy = SlidingWindowCounterRateLimiter(storage)

    def exhausted_for(self, key: str) -> float | None:
        """Seconds until `key` may go on when its limit is used up, else None. Counts nothing (see `count`): a login
        form counts only the failures."""
        try:
            if self._strategy.test(self._limit, self.name, key):
                return None
            reset_at = self._strategy.get_window_stats(self._limit, self.name, key).reset_time
        except Exception as error:
            log.warning("the %s rate limit could not be read (%s); the request is let through", self.name, error)
            return None
        return max(reset_at - time.time(), 1.0)

    def count(self, key: str) -> None:
        try:
            self._strategy.hit(self._limit, self.name, key)
        except Exception as error:
            log.warning("the %s rate limit could not be counted (%s)", self.name, error)

    def retry_after(self, key: str) -> float | None:
        """Count a request for `key`: None when allowed, else the seconds until the next one is."""
        try:
            if self._strategy.hit(self._limit, self.name, key):
                return None
            reset_at = self._strategy.get_window_stats(self._limit, self.name, key).reset_time
        except Exception as error:  # residents' health answers matter more than a flood guard: an outage lets through
            log.warning("the %s rate limit could not be counted (%s); the request is let through", self.name, error)
            return None
        return max(reset_at - time.time(), 0.0)
