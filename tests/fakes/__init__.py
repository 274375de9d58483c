"""Local stand-ins for the remote services the platform talks to (Twilio, Zalo), following their wire protocols."""

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from fastapi import FastAPI

from tests.support.net import serving


class ServedFake:
    """A fake service served on loopback while `running()`."""

    app: FastAPI
    http: httpx.Client  # what the fake sends the platform (webhooks, callbacks), closed when it stops
    url: str = ""  # where the fake listens, once running

    @contextmanager
    def running(self) -> Iterator[str]:
        with serving(self.app) as url:
            self.url = url
            yield url
        self.http.close()
