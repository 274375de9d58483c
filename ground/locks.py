"""One lock per key (a conversation, a Zalo user, a prompt's text), alive only while someone holds or awaits it."""

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar
from weakref import WeakValueDictionary

Key = TypeVar("Key", bound=Hashable)
Lock = TypeVar("Lock")


class KeyedLocks(Generic[Key, Lock]):
    """Locks made by `make_lock` (`asyncio.Lock` or `threading.Lock`), one per key.

    A lock is held only weakly: once nobody holds or awaits it, it goes, so keys never pile up. Handing out a lock
    is guarded by a thread lock, so threads asking for the same key at once get the same lock.
    """

    def __init__(self, make_lock: Callable[[], Lock]) -> None:
        self._make_lock = make_lock
        self._locks: WeakValueDictionary[Key, Lock] = WeakValueDictionary()
        self._guard = threading.Lock()

    def __call__(self, key: Key) -> Lock:
        with self._guard:
            lock = self._locks.get(key)
            if lock is None:
                lock = self._locks[key] = self._make_lock()
            return lock
