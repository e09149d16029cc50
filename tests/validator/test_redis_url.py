import asyncio

import pyarrow as pa
import pytest

from d3.dev.redis_server import start_redis
from d3.redis_url import connect_redis, validate_redis_url
from d3.validator.index import TweetIndex


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:6379/0", "rediss://user:pw@redis.example:6380/1", "unix:///run/redis.sock"],
)
def test_accepted_urls(url):
    assert validate_redis_url(url) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1", "scheme must be one of"),
        ("redis://", "missing host"),
        ("unix://relative.sock", "absolute socket path"),
    ],
)
def test_refused_urls(url, reason):
    with pytest.raises(ValueError, match=reason):
        validate_redis_url(url)


def test_cluster_needs_tcp():
    with pytest.raises(ValueError, match="over TCP"):
        connect_redis("unix:///tmp/x.sock", cluster=True)


def test_index_over_a_unix_socket(tmp_path):
    socket = tmp_path / "r.sock"
    with start_redis(tmp_path, extra_args=("--unixsocket", str(socket), "--unixsocketperm", "700")):

        async def body():
            redis = connect_redis(f"unix://{socket}")
            index = TweetIndex(redis)
            result = await index.ingest(pa.array([1 << 40, 2 << 40], pa.int64()), "hk", "t", 0)
            await redis.aclose()
            return result.new

        assert asyncio.run(body()) == 2
