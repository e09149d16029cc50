"""A real local X server per session, and sources pointed at it through tweepy."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from d3.dev.x_server import LocalXServer
from scraping.x_api import XApiSource
from tests.scraping.support import FakeSleep, SourceFactory

# Fixed, so the corpus (and every expectation drawn from it) is the same on every run.
CORPUS_END = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def x_server() -> Iterator[LocalXServer]:
    with LocalXServer(seed=11, size=5000, end=CORPUS_END) as server:
        yield server


@pytest.fixture
def server(x_server: LocalXServer) -> Iterator[LocalXServer]:
    """The session server with no faults left over from another test."""
    x_server.clear_faults()
    yield x_server
    x_server.clear_faults()


@pytest.fixture
def small_server() -> Iterator[LocalXServer]:
    """A private server for tests that change the corpus or the server's settings."""
    with LocalXServer(seed=5, size=300) as server:
        yield server


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def make_source(server: LocalXServer, sleep: FakeSleep) -> SourceFactory:
    """XApiSource → tweepy → adapter → the local server; `target=` picks another server."""

    def make(target: LocalXServer | None = None, **overrides: Any) -> XApiSource:
        target = target or server
        options: dict[str, Any] = {
            "api_base_url": target.base_url,
            "sleep": sleep,
            "rng": random.Random(7),
            "max_retries": 3,
            "max_wait_s": 60.0,
        }
        options |= overrides
        token = options.pop("token", target.token)
        return XApiSource(token, **options)

    return make
