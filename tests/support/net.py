"""Loopback helpers: free ports and a real HTTP server for the app under test."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from connectors.twilio_stream import WS_MAX_BYTES


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(app: FastAPI, port: int | None = None) -> Iterator[str]:
    """Run `app` under uvicorn on loopback (a free port unless given) for the block; yields its base URL."""
    port = port or free_port()
    # as `outreach serve` runs it: forwarded headers are the app's to judge (trusted_proxies), not uvicorn's
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False, ws_max_size=WS_MAX_BYTES
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the app under test did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
