"""Redis connection strings: validated at the edge, then one client for single or cluster."""

from __future__ import annotations

from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

SCHEMES = ("redis", "rediss", "unix")


def validate_redis_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(s + '://' for s in SCHEMES)}")
    if parts.scheme == "unix":
        if not parts.path.startswith("/"):
            raise ValueError("unix:// needs an absolute socket path, e.g. unix:///run/redis.sock")
    elif not parts.hostname:
        raise ValueError("missing host, e.g. redis://127.0.0.1:6379/0")
    else:
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise ValueError(f"the database is a number (redis://host:6379/0), not {db!r}")
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ValueError(f"the port is not a number in {url!r}") from None
    return url


def connect_redis(url: str, cluster: bool = False) -> aioredis.Redis:
    """A client for `url`; with `cluster`, the URL names any one node of the cluster."""
    validate_redis_url(url)
    options = {"socket_timeout": 30, "socket_connect_timeout": 10, "health_check_interval": 30}
    if cluster:
        if url.startswith("unix://"):
            raise ValueError("a Redis Cluster is reached over TCP, not a unix socket")
        return RedisCluster.from_url(url, **options)
    return aioredis.Redis.from_url(url, **options)
