"""The dashboard's assets: the vendored chart library is byte for byte the release its
README names, every page loads only what the server itself serves, and the static route
refuses paths outside its folder."""

from __future__ import annotations

import hashlib
import re

import httpx

from d3.web.pages import page
from d3.web.server import STATIC_DIR, ReadOnlyServer, static_route


def test_the_vendored_files_are_the_release_the_readme_names():
    readme = (STATIC_DIR / "vendor" / "README.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$", readme, re.M)
    assert {name for name, _ in rows} == {"uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE"}
    for name, digest in rows:
        assert hashlib.sha256((STATIC_DIR / "vendor" / name).read_bytes()).hexdigest() == digest


def test_pages_load_nothing_from_elsewhere_and_the_static_route_stays_in_its_folder():
    html = page("leaderboard", "Leaderboard", "/api/leaderboard.json", [("L", "/")], "/", 15)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources)
    with ReadOnlyServer([static_route()]) as server:
        for path in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
            response = httpx.get(server.url + path, timeout=10)
            assert response.status_code == 200 and response.content, path
        for bad in ("/static/../server.py", "/static/%2e%2e/server.py", "/static/vendor/",
                    "/static/.hidden", "/static//etc/passwd", "/static/a%00b",
                    "/static/" + "x" * 5000):  # fmt: skip
            assert httpx.get(server.url + bad, timeout=10).status_code == 404, bad
