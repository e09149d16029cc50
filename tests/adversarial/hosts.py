"""A miner's dataset host on 127.0.0.1 that misbehaves on purpose, file by file.

Each file name maps to a responder: serve the bytes, trickle them, lie about their size,
stream forever, redirect in a loop, or compress them when the client says it accepts
gzip (as CDNs do). Every request is logged, so a test can prove what was never fetched.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Responder = Callable[[BaseHTTPRequestHandler], None]
_CHUNK = 64 * 1024


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        host = self.server.host
        name = self.path.lstrip("/")
        with host.lock:
            host.requests.append(name)
        respond = host.responders.get(name) or host.fallback
        try:
            if respond is None:
                self.send_error(404)
            else:
                respond(self)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the validator hung up: exactly what a bounded fetch should do

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: HostileHost):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.host = host


class HostileHost:
    """`with HostileHost() as host: host.serve(name, data); host.trickle(other, data)`."""

    def __init__(self) -> None:
        self.responders: dict[str, Responder] = {}
        self.fallback: Responder | None = None
        self.requests: list[str] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._httpd = _Server(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HostileHost:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    async def __aenter__(self) -> HostileHost:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)

    def asked_for(self, name: str) -> int:
        with self.lock:
            return self.requests.count(name)

    # -- responders ----------------------------------------------------------------------

    def serve(self, name: str, data: bytes) -> None:
        self.responders[name] = lambda h: _send(h, data)

    def serve_everything(self, data: bytes) -> None:
        """The same bytes for every name: a host that ignores what it is asked for."""
        self.fallback = lambda h: _send(h, data)

    def trickle(self, name: str, data: bytes, every_s: float = 0.2) -> None:
        """One byte every `every_s`: defeats a per-read timeout, never a total deadline."""

        def respond(h: BaseHTTPRequestHandler) -> None:
            _head(h, {"Content-Length": str(len(data))})
            for i in range(len(data)):
                if self.stopping.wait(every_s):
                    return
                h.wfile.write(data[i : i + 1])
                h.wfile.flush()

        self.responders[name] = respond

    def slowly(self, name: str, data: bytes, seconds: float, steps: int = 6) -> None:
        """The whole file, in `steps` pieces spread over `seconds`: each file arrives in
        time, but a manifest of many such files adds up."""

        def respond(h: BaseHTTPRequestHandler) -> None:
            _head(h, {"Content-Length": str(len(data))})
            size = -(-len(data) // steps)
            for i in range(steps):
                if self.stopping.wait(seconds / steps):
                    return
                h.wfile.write(data[i * size : (i + 1) * size])
                h.wfile.flush()

        self.responders[name] = respond

    def oversized(self, name: str, size: int, declare_length: bool) -> None:
        """`size` bytes of zeros, with a truthful Content-Length or none at all (the body
        then ends when the connection closes, as HTTP/1.0 allows)."""

        def respond(h: BaseHTTPRequestHandler) -> None:
            _head(h, {"Content-Length": str(size)} if declare_length else {})
            block = bytes(_CHUNK)
            sent = 0
            while sent < size and not self.stopping.is_set():
                h.wfile.write(block[: min(_CHUNK, size - sent)])
                sent += _CHUNK

        self.responders[name] = respond

    def redirect_loop(self, name: str) -> None:
        """302 to itself, forever."""

        def respond(h: BaseHTTPRequestHandler) -> None:
            h.send_response(302)
            h.send_header("Location", f"/{name}")
            h.send_header("Content-Length", "0")
            h.end_headers()

        self.responders[name] = respond

    def gzip_when_accepted(self, name: str, data: bytes) -> None:
        """What nginx with `gzip_types application/json` or a CDN does: compress the body
        whenever the client advertises gzip, and say so in Content-Encoding."""

        def respond(h: BaseHTTPRequestHandler) -> None:
            if "gzip" in h.headers.get("Accept-Encoding", ""):
                _send(h, gzip.compress(data, mtime=0), {"Content-Encoding": "gzip"})
            else:
                _send(h, data)

        self.responders[name] = respond

    def gzip_encoded(self, name: str, body: bytes) -> None:
        """`body` (already gzip) labelled Content-Encoding: gzip, whatever was accepted."""
        self.responders[name] = lambda h: _send(h, body, {"Content-Encoding": "gzip"})


def _head(h: BaseHTTPRequestHandler, headers: dict[str, str]) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "application/octet-stream")
    for key, value in headers.items():
        h.send_header(key, value)
    h.end_headers()


def _send(h: BaseHTTPRequestHandler, data: bytes, headers: dict[str, str] | None = None) -> None:
    _head(h, {"Content-Length": str(len(data)), **(headers or {})})
    h.wfile.write(data)


def zeros_gzip(size: int) -> bytes:
    """A gzip stream of `size` zero bytes (~1/230 of that on the wire)."""
    deflate = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: a gzip container
    block = bytes(1 << 20)
    out = [deflate.compress(block) for _ in range(size >> 20)]
    out.append(deflate.compress(bytes(size & ((1 << 20) - 1))))
    out.append(deflate.flush())
    return b"".join(out)
