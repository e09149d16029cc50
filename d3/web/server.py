"""One read-only HTTP server for everything a neuron or the hub shows its operator.

`/metrics`, `/healthz`, the JSON read models and the dashboard pages are all GETs of
snapshots, so they share this server: the standard library's threading HTTP server in a
daemon thread. A request never waits on the neuron's event loop, and a stuck event loop
still answers (with the last snapshot, or with 503 from `/healthz`). Handlers therefore
only read values that the loop swaps in whole.

Routes are matched in order; a route is an exact path, or a prefix ending in "/" whose
handler gets the rest of the path. A handler returns a `Response`, or None for 404.
"""

from __future__ import annotations

import json
import mimetypes
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

STATIC_DIR = Path(__file__).with_name("static")


@dataclass(frozen=True)
class Request:
    path: str  # the part after a prefix route's prefix, unquoted ("" for exact routes)
    query: dict[str, list[str]] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes
    cache_s: int = 0  # 0: no-store (snapshots change every round)

    @classmethod
    def json(cls, document: Any, status: int = 200) -> Response:
        data = json.dumps(document, indent=1, allow_nan=False).encode() + b"\n"
        return cls(status, "application/json", data)

    @classmethod
    def html(cls, text: str, status: int = 200) -> Response:
        return cls(status, "text/html; charset=utf-8", text.encode())

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status, "text/plain; charset=utf-8", text.encode())


Handler = Callable[[Request], Response | None]


@dataclass(frozen=True)
class Route:
    path: str  # exact, or a prefix when it ends in "/" (and is not "/")
    handler: Handler

    def match(self, path: str) -> str | None:
        if self.path.endswith("/") and self.path != "/":
            return path[len(self.path) :] if path.startswith(self.path) else None
        return "" if path == self.path else None


def json_route(path: str, read: Callable[[], Any], not_ready: str) -> Route:
    """A JSON snapshot; `read()` returning None (nothing computed yet) is a 503."""

    def handle(_: Request) -> Response:
        document = read()
        if document is None:
            return Response.json({"error": f"not ready: {not_ready}"}, 503)
        return Response.json(document)

    return Route(path, handle)


def files_route(prefix: str, root: Path, cache_s: int = 300) -> Route:
    """Files under `root` (no listing, no dotfiles, nothing outside `root`)."""
    base = root.resolve()

    def handle(request: Request) -> Response | None:
        parts = request.path.split("/")
        if not request.path or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            return None
        try:  # a NUL byte or an over-long name from the URL is no file, not a crash
            path = (base / request.path).resolve()
            if not path.is_relative_to(base) or not path.is_file():
                return None
            data = path.read_bytes()
        except (OSError, ValueError):
            return None
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "application/json"):
            kind += "; charset=utf-8"
        return Response(200, kind, data, cache_s)

    return Route(prefix, handle)


def static_route() -> Route:
    """The dashboard's own stylesheet, script and vendored chart library."""
    return files_route("/static/", STATIC_DIR, cache_s=3600)


class ReadOnlyServer:
    """Serves `routes` from a daemon thread on `host:port` (0: any free port)."""

    def __init__(self, routes: Sequence[Route], host: str = "127.0.0.1", port: int = 0):
        self.routes = list(routes)
        server = self

        class RequestHandler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(send_body=True)

            def do_HEAD(self) -> None:
                self._answer(send_body=False)

            def _answer(self, send_body: bool) -> None:
                url = urlsplit(self.path)
                path = unquote(url.path)
                response = None
                for route in server.routes:
                    rest = route.match(path)
                    if rest is not None:
                        response = route.handler(Request(rest, parse_qs(url.query)))
                        if response is not None:
                            break
                if response is None:
                    paths = [r.path for r in server.routes]
                    response = Response.json({"error": "not found", "paths": paths}, 404)
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                cache = f"max-age={response.cache_s}" if response.cache_s else "no-store"
                self.send_header("Cache-Control", cache)
                self.send_header("X-Content-Type-Options", "nosniff")
                self.end_headers()
                if send_body:
                    self.wfile.write(response.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # scrapes every 15 s and page refreshes would drown the neuron's log

        self._httpd = ThreadingHTTPServer((host, port), RequestHandler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def start(self) -> ReadOnlyServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="d3-http", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> ReadOnlyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
