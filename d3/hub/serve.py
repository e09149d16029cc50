"""`python -m d3.hub serve DIR`: the hub's data page, and its files, over HTTP.

    /                 the data page: volume per day, languages, hashtags, sample rows,
                      how to load it (drawn from /api/data.json)
    /api/data.json    `hub_stats` of DIR, recomputed when its index changes
    /files/<path>     the hub's own files (README.md, index.json, index.sig, data/...),
                      so a copy can be fetched and checked against the signed index

Read-only and bound to 127.0.0.1 unless told otherwise; the builder's private state
(`.hub/`) is never served.
"""

from __future__ import annotations

from pathlib import Path

from d3.hub.card import X_TERMS
from d3.hub.stats import HubStatsCache
from d3.web.pages import page
from d3.web.server import ReadOnlyServer, Response, Route, files_route, json_route, static_route


def hub_routes(directory: Path, refresh_s: float = 60) -> list[Route]:
    stats = HubStatsCache(directory)

    def data() -> dict | None:
        value = stats.read()
        return None if value is None else {**value, "terms": X_TERMS}

    html = page(
        "data",
        "D3 dataset hub",
        "/api/data.json",
        (("Data", "/"), ("Index", "/files/index.json"), ("Card", "/files/README.md")),
        "/",
        refresh_s,
        "Every tweet D3's validators credited, exactly once, as its first committer "
        "published it. The index pins every file by sha256 and is signed by the builder.",
    )
    return [
        Route("/", lambda _request: Response.html(html)),
        json_route("/api/data.json", data, f"no hub built in {directory} yet"),
        files_route("/files/", directory, cache_s=60),
        static_route(),
    ]


def serve_hub(directory: Path, host: str = "127.0.0.1", port: int = 0) -> ReadOnlyServer:
    """A started server for the hub in `directory` (close it, or use it as a context)."""
    return ReadOnlyServer(hub_routes(directory), host, port).start()
