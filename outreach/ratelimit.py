"""Sliding-window rate limits kept in memory (per API process: residents' channels need no shared state)."""

import time
from collections import defaultdict, deque


class RateLimiter:
    MAX_KEYS = 10_000  # past this, keys idle for a whole window are forgotten

    def __init__(self, limit: int, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def retry_after(self, key: str) -> float | None:
        """Count a request for `key`: None when allowed, else the seconds until the next one is."""
        now = time.monotonic()
        if len(self._hits) > self.MAX_KEYS:
            self._forget_idle(now)
        hits = self._hits[key]
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self.window_s - now
        hits.append(now)
        return None

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window_s]:
            del self._hits[key]
