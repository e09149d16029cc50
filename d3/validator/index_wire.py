"""Large reads of index windows, received straight into buffers of their exact size.

A cold start reads every window it touches once: a day of 50M IDs is 330 windows, 245 MB.
redis-py's parser copies each byte about five times (socket, stream buffer, `readexactly`,
its join, its trim) and pauses and resumes the socket every 256 KB: 0.3 s of client CPU
for that day on the bench machine, three times what Redis spends sending it. This reader
opens one connection of its own to the same server (same address, user, password and
database), pipelines MGETs on it, and has the kernel copy every large bulk string
straight into its final buffer (an asyncio `BufferedProtocol`): one copy, about 0.07 s.

It only reads, speaks RESP2, and is opened per large read and closed after it. A client
it cannot reach the same way (TLS, a Redis Cluster, a credential provider, Sentinel) has
no `bulk_address`, and the caller reads through redis-py instead. An MGET is one instant
whichever connection carries it, so what it returns is exactly what redis-py would have:
the same values (large ones as `bytearray`s; None for a missing key).
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from dataclasses import dataclass

from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

HEAD_BYTES = 1 << 16  # reply headers and small values are parsed from a buffer this size
_DIRECT_BYTES = 1 << 12  # a bulk string this long or longer is received in place
_CRLF = b"\r\n"

Reply = bytes | bytearray | int | list | ResponseError | None


@dataclass(frozen=True)
class Address:
    """Where and as whom the client connects: TCP (`host`, `port`) or a unix `path`."""

    host: str | None = None
    port: int = 6379
    path: str | None = None
    username: str | None = None
    password: str | None = None
    db: int = 0
    connect_timeout: float | None = None
    timeout: float | None = None  # per reply, as redis-py's `socket_timeout`


def bulk_address(redis: object) -> Address | None:
    """The plain TCP or unix-socket address of a standalone client, or None (read
    through redis-py): a cluster client has no one pool, and TLS, a credential provider
    or Sentinel would each need more than this reader knows."""
    pool = getattr(redis, "connection_pool", None)
    if pool is None:
        return None
    options = pool.connection_kwargs
    if options.get("credential_provider") is not None:
        return None
    common = {
        "username": options.get("username"),
        "password": options.get("password"),
        "db": int(options.get("db") or 0),
        "connect_timeout": options.get("socket_connect_timeout"),
        "timeout": options.get("socket_timeout"),
    }
    if pool.connection_class is Connection:  # exactly: SSLConnection is a subclass
        return Address(options.get("host", "localhost"), int(options.get("port", 6379)), **common)
    if pool.connection_class is UnixDomainSocketConnection:
        return Address(path=options["path"], **common)
    return None


def pack(*args: str | bytes | int) -> bytes:
    """One command in RESP."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out += (b"$%d\r\n" % len(data), data, _CRLF)
    return b"".join(out)


class ReplyParser(asyncio.BufferedProtocol):
    """RESP2 replies, in order, each completing the oldest waiting future.

    Headers and short values land in a fixed buffer (`HEAD_BYTES`) and are parsed from
    there; a bulk string of `_DIRECT_BYTES` or more gets a buffer of its exact length,
    and `get_buffer` hands the transport the rest of it, so the kernel writes into it.
    An error reply (`-ERR ...`) is a `ResponseError` value, not raised here: the stream
    stays in step. Anything malformed, or the connection's end, fails every waiter.
    """

    def __init__(self) -> None:
        self._head = bytearray(HEAD_BYTES)
        self._filled = 0  # bytes of `_head` received and not parsed yet
        self._skip = 0  # bytes of a CRLF still to skip after a value received in place
        self._bulk: bytearray | None = None  # the value being received in place
        self._view: memoryview | None = None  # ... and a view of it, for the transport
        self._got = 0  # bytes of `_bulk` received
        self._arrays: list[list] = []  # open arrays, innermost last: [items, still due]
        self.waiting: deque[asyncio.Future] = deque()
        self.transport: asyncio.Transport | None = None
        self.failure: Exception | None = None

    # -- asyncio.BufferedProtocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._view is not None:
            return self._view[self._got :]
        if self._filled == len(self._head):
            # Only a header line longer than the buffer can fill it (replies here never
            # have one); stop rather than hand the transport an empty buffer.
            self._fail(RedisConnectionError(f"a Redis reply line over {HEAD_BYTES} bytes"))
            return memoryview(bytearray(1))
        return memoryview(self._head)[self._filled :]

    def buffer_updated(self, nbytes: int) -> None:
        try:
            if self._view is not None:
                self._got += nbytes
                if self._got < len(self._view):
                    return
                value = self._bulk
                self._view.release()
                self._bulk = self._view = None
                self._skip = len(_CRLF)
                self._push(value)
            else:
                self._filled += nbytes
            self._parse()
        except (ValueError, RedisConnectionError) as error:
            self._fail(RedisConnectionError(f"malformed Redis reply: {error}"))

    def eof_received(self) -> bool:
        return False  # close: `connection_lost` fails whoever still waits

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError(f"Redis closed the connection ({exc or 'EOF'})"))

    # -- parsing ---------------------------------------------------------------------------

    def _parse(self) -> None:
        """Every complete item in `_head`; a partial line stays, moved to the front."""
        head, end, at = self._head, self._filled, 0
        while at < end:
            if self._skip:
                step = min(self._skip, end - at)
                if head[at : at + step] != _CRLF[len(_CRLF) - self._skip :][:step]:
                    raise ValueError("a bulk string not followed by CRLF")
                at += step
                self._skip -= step
                continue
            eol = head.find(_CRLF, at, end)
            if eol < 0:
                break
            kind, line = head[at], bytes(head[at + 1 : eol])
            at = eol + len(_CRLF)
            if kind == 0x24:  # "$": a bulk string
                size = int(line)
                if size < 0:
                    self._push(None)
                    continue
                have = min(size, end - at)
                if size < _DIRECT_BYTES and have == size:
                    self._push(bytes(head[at : at + size]))
                    at += size
                    self._skip = len(_CRLF)
                    continue
                value = bytearray(size)
                value[:have] = head[at : at + have]
                at += have
                if have == size:
                    self._skip = len(_CRLF)
                    self._push(value)
                    continue
                self._bulk, self._view, self._got = value, memoryview(value), have
                break  # the rest of it goes straight into `value`
            elif kind == 0x2A:  # "*": an array
                count = int(line)
                if count > 0:
                    self._arrays.append([[], count])
                else:
                    self._push([] if count == 0 else None)
            elif kind == 0x3A:  # ":": an integer
                self._push(int(line))
            elif kind == 0x2B:  # "+": a simple string
                self._push(line)
            elif kind == 0x2D:  # "-": an error
                self._push(ResponseError(line.decode(errors="replace")))
            else:
                raise ValueError(f"unknown reply type {bytes([kind])!r}")
        head[: end - at] = head[at:end]  # (same length: the transport may hold a view)
        self._filled = end - at

    def _push(self, value: Reply) -> None:
        while self._arrays:
            items = self._arrays[-1]
            items[0].append(value)
            items[1] -= 1
            if items[1]:
                return
            value = self._arrays.pop()[0]
        if not self.waiting:
            raise ValueError("a reply nobody asked for")
        future = self.waiting.popleft()
        if not future.done():
            future.set_result(value)

    def _fail(self, error: Exception) -> None:
        if self.failure is None:
            self.failure = error
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(self.failure)
                future.exception()  # retrieved: a caller that stopped waiting is not logged
        if self.transport is not None:
            self.transport.abort()


class BulkReader:
    """One connection of its own, for pipelined reads: `send` a command, later `reply`
    to it (replies come in the order sent). Close it after use."""

    def __init__(self, transport: asyncio.Transport, parser: ReplyParser, timeout: float | None):
        self._transport, self._parser, self._timeout = transport, parser, timeout

    @classmethod
    async def open(cls, address: Address) -> BulkReader:
        """Connected, authenticated and on the client's database."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(address.connect_timeout):
                if address.path is not None:
                    transport, parser = await loop.create_unix_connection(ReplyParser, address.path)
                else:
                    transport, parser = await loop.create_connection(
                        ReplyParser, address.host, address.port
                    )
                    sock = transport.get_extra_info("socket")
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except TimeoutError as error:
            raise RedisTimeoutError("timed out connecting to Redis for a bulk read") from error
        reader = cls(transport, parser, address.timeout)
        try:
            handshake = []
            if address.password is not None:
                user = () if address.username is None else (address.username,)
                handshake.append(reader.send("AUTH", *user, address.password))
            if address.db:
                handshake.append(reader.send("SELECT", address.db))
            for future in handshake:
                await reader.reply(future)
        except BaseException:
            reader.close()
            raise
        return reader

    def send(self, *args: str | bytes | int) -> asyncio.Future:
        """Sends one command; the future is its reply."""
        if self._parser.failure is not None:
            raise self._parser.failure
        future = asyncio.get_running_loop().create_future()
        self._parser.waiting.append(future)
        self._transport.write(pack(*args))
        return future

    async def reply(self, future: asyncio.Future) -> Reply:
        """The reply to a `send`; an error reply raises `ResponseError`."""
        try:
            async with asyncio.timeout(self._timeout):
                value = await future
        except TimeoutError as error:
            self.close()  # the stream is out of step now
            raise RedisTimeoutError("timed out reading a bulk reply from Redis") from error
        if isinstance(value, ResponseError):
            raise value
        return value

    def close(self) -> None:
        self._transport.abort()  # nothing is written on this connection: nothing to flush
