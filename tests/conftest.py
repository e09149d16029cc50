"""Shared fixtures: a real redis-server per test session, flushed for each test, and the
dev network (`net`) of tests/support/net.py. Shared helpers are in tests/support/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from d3.dev.redis_server import RedisServer, start_redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with start_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def net(tmp_path: Path):
    """A dev chain with subnet `NETUID` (tests/support/net.py), its host directory removed
    after the test."""
    from tests.support.net import dev_net  # the SDK loads only for the tests that use it

    with dev_net(tmp_path) as network:
        yield network


@pytest.fixture(autouse=True, scope="session")
def _isolated_sdk_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the SDK's token-symbol cache out of the developer's home directory."""
    import os

    os.environ["BTCLI_TOKEN_SYMBOLS_CACHE"] = str(tmp_path_factory.mktemp("sdk") / "symbols.json")
