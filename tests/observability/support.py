"""Observability tests run real neurons on a dev chain and talk to them over HTTP: a free
port, polling with a deadline, and GETs."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(
    check: Callable[[], Any],
    what: str,
    deadline_s: float = 120,
    alive: Callable[[], None] | None = None,
) -> Any:
    """`check()` until it returns something truthy, within a deadline (no fixed sleeps:
    the next try follows at once, with a short pause so the neuron gets the CPU)."""
    deadline = time.monotonic() + deadline_s
    last: Any = None
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        try:
            last = check()
            if last:
                return last
        except httpx.TransportError as error:  # not listening yet
            last = error
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=10)


def get_json(url: str) -> tuple[int, Any]:
    response = get(url)
    return response.status_code, json.loads(response.text)
