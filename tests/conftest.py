"""Shared fixtures: a real redis-server per test session, flushed for each test."""

from __future__ import annotations

from collections.abc import Iterator

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


@pytest.fixture(autouse=True, scope="session")
def _isolated_sdk_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the SDK's token-symbol cache out of the developer's home directory."""
    import os

    os.environ["BTCLI_TOKEN_SYMBOLS_CACHE"] = str(tmp_path_factory.mktemp("sdk") / "symbols.json")
