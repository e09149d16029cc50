"""The index's own reader for large reads (d3/validator/index_wire.py): its RESP parser on
its own, split at every boundary, and on a real redis-server (password, database, unix
socket) against redis-py's answers; the fallback to redis-py where it cannot go."""

from __future__ import annotations

import asyncio

import pyarrow as pa
import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from d3.dev.redis_server import start_redis
from d3.validator import index as index_module
from d3.validator.index import WINDOW_BITS, TweetIndex
from d3.validator.index_wire import HEAD_BYTES, BulkReader, ReplyParser, bulk_address
from tests.validator.test_index import _batches, _check_exact, _dump

BIG = bytes(range(256)) * 40  # 10 KB: received in place
STREAM = (
    b"*5\r\n$3\r\nabc\r\n$-1\r\n$%d\r\n%s\r\n*2\r\n:42\r\n$0\r\n\r\n$%d\r\n%s\r\n"
    % (len(BIG), BIG, len(BIG) + 1, BIG + b"\n")
    + b"-ERR wrong\r\n+OK\r\n*0\r\n*-1\r\n"
)
REPLIES = [[b"abc", None, BIG, [42, b""], BIG + b"\n"], "ERR wrong", b"OK", [], None]


class _Transport:
    aborted = False

    def abort(self) -> None:
        self.aborted = True


def _feed(parser: ReplyParser, data: bytes, step: int) -> None:
    """`data` through the parser `step` bytes a receive at most, as a transport would."""
    at = 0
    while at < len(data):
        buffer = parser.get_buffer(-1)
        n = min(step, len(buffer), len(data) - at)
        buffer[:n] = data[at : at + n]
        parser.buffer_updated(n)
        at += n


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 4093, 5000, 1 << 20])
def test_the_parser_gives_every_reply_however_the_stream_is_split(step):
    async def body():
        loop = asyncio.get_running_loop()
        parser = ReplyParser()
        parser.connection_made(_Transport())
        futures = [loop.create_future() for _ in REPLIES]
        parser.waiting.extend(futures)
        _feed(parser, STREAM, step)
        return [f.result() for f in futures], parser

    replies, parser = asyncio.run(body())
    assert isinstance(replies[1], ResponseError)
    replies[1] = str(replies[1])
    assert replies == REPLIES
    assert parser.failure is None and not parser.waiting


def test_the_parser_fails_every_waiter_on_garbage_or_a_lost_connection():
    async def body(data: bytes, lose: bool):
        loop = asyncio.get_running_loop()
        parser = ReplyParser()
        parser.connection_made(transport := _Transport())
        futures = [loop.create_future() for _ in range(2)]
        parser.waiting.extend(futures)
        _feed(parser, data, 3)
        if lose:
            parser.connection_lost(None)
        return [f.exception() for f in futures], transport.aborted

    garbage, aborted = asyncio.run(body(b"$3\r\nabc\r\n?what\r\n", lose=False))
    assert garbage[0] is None and isinstance(garbage[1], RedisConnectionError) and aborted
    lost, _ = asyncio.run(body(b"*2\r\n$%d\r\n%s" % (len(BIG), BIG[:100]), lose=True))
    assert all(isinstance(e, RedisConnectionError) for e in lost)
    long_line, _ = asyncio.run(body(b"+" + b"x" * HEAD_BYTES, lose=False))
    assert all(isinstance(e, RedisConnectionError) for e in long_line)


def test_only_a_plain_standalone_client_gets_an_address():
    plain = aioredis.Redis.from_url("redis://u:pw@127.0.0.1:7000/3", socket_timeout=5)
    assert bulk_address(plain).__dict__ == {
        "host": "127.0.0.1",
        "port": 7000,
        "path": None,
        "username": "u",
        "password": "pw",
        "db": 3,
        "connect_timeout": None,
        "timeout": 5,
    }
    assert bulk_address(aioredis.Redis.from_url("unix:///tmp/r.sock?db=2")).path == "/tmp/r.sock"
    assert bulk_address(aioredis.Redis.from_url("rediss://127.0.0.1:7000/0")) is None
    cluster = RedisCluster(host="127.0.0.1", port=7000)
    assert bulk_address(cluster) is None


async def _reads_alike(url: str) -> TweetIndex:
    """Ingest with the bulk reader, then every window read both ways: the same views."""
    index = TweetIndex(aioredis.Redis.from_url(url), prefix="t", cache_bytes=0)
    await _check_exact(index, _batches(seed=31, count=6, size=3_000))
    assert index.stats.bulk_reads > 0 and index.stats.bulk_fallbacks == 0
    windows = sorted({int(k.split(b":")[-1]) for k in await _dump(index.redis, "t") if b":w:" in k})
    batches = [(w >> index_module.GROUP_BITS, [w]) for w in windows]
    bulk = await index._fetch(batches, versions=True)
    old, index_module.BULK_MIN_MGETS = index_module.BULK_MIN_MGETS, 1 << 30
    try:
        plain = await index._fetch(batches, versions=True)
    finally:
        index_module.BULK_MIN_MGETS = old
    assert len(bulk) == len(windows) >= index_module.BULK_MIN_MGETS
    for (v1, views1), (v2, views2) in zip(bulk, plain, strict=True):
        assert v1 == v2 and views1.keys() == views2.keys()
        for w in views1:
            assert (views1[w].offsets() == views2[w].offsets()).all()
            assert views1[w].delta_len == views2[w].delta_len
    return index


def test_the_bulk_reader_reads_what_redis_py_reads(redis_url):
    async def body():
        index = await _reads_alike(redis_url)
        await index.redis.aclose()

    asyncio.run(body())


def test_the_bulk_reader_with_a_password_a_database_and_a_unix_socket(tmp_path):
    sock = tmp_path / "r.sock"
    args = ("--unixsocket", str(sock), "--unixsocketperm", "700")
    with start_redis(tmp_path / "data", extra_args=args) as server:

        async def body():
            async with aioredis.Redis.from_url(server.url) as admin:
                await admin.config_set("requirepass", "s3cret")
            for url in (
                f"redis://:s3cret@127.0.0.1:{server.port}/5",
                f"unix://{sock}?db=6&password=s3cret",
            ):
                index = await _reads_alike(url)
                assert await index.redis.dbsize() > 0
                await index.redis.aclose()
            wrong = bulk_address(aioredis.Redis.from_url(f"redis://:nope@127.0.0.1:{server.port}"))
            with pytest.raises(ResponseError):
                await BulkReader.open(wrong)

        asyncio.run(body())


def test_exact_through_redis_py_when_the_bulk_connection_cannot_open(redis_url, monkeypatch):
    async def refuse(cls, address):
        raise ConnectionRefusedError("maxclients")

    monkeypatch.setattr(BulkReader, "open", classmethod(refuse))

    async def body():
        index = TweetIndex(aioredis.Redis.from_url(redis_url), prefix="t", cache_bytes=0)
        await _check_exact(index, _batches(seed=32, count=4, size=3_000))
        await index.redis.aclose()
        return index.stats

    stats = asyncio.run(body())
    assert stats.bulk_fallbacks > 0 and stats.bulk_reads == 0


def test_a_bulk_read_that_loses_its_connection_raises_and_writes_nothing(redis_url, monkeypatch):
    """The server drops the reader mid-read: the ingest fails, nothing of it lands, and a
    retry with the same token completes it exactly."""
    batch = _batches(seed=33, count=1, size=5_000)[0]
    real_open = BulkReader.open

    async def doomed(cls, address):
        reader = await real_open(address)
        reader._transport.abort()  # as if the server went away
        return reader

    async def body():
        index = TweetIndex(aioredis.Redis.from_url(redis_url), prefix="t")
        await index.ingest(pa.array(batch[:2_000], pa.int64()), "A", "seed", 0)
        index.forget()  # cold: the next ingest reads every window
        with monkeypatch.context() as patch:
            patch.setattr(BulkReader, "open", classmethod(doomed))
            with pytest.raises(RedisConnectionError):
                await index.ingest(pa.array(batch, pa.int64()), "A", "t1", 0)
        assert await index.size() == len(set(batch[:2_000]))
        result = await index.ingest(pa.array(batch, pa.int64()), "A", "t1", 0)
        await index.redis.aclose()
        return result

    result = asyncio.run(body())
    assert result.new == len(set(batch)) - len(set(batch[:2_000]))
    assert len({i >> WINDOW_BITS for i in batch}) >= 4 * index_module.FETCH_BATCH
