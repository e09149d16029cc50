"""A miner's locator cannot make the validator reach into its own network: real local HTTP
servers stand for the validator's internal services, and must never see a request."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator

import pytest

from d3.commitment import parse_locator
from d3.validator.fetcher import Fetcher, FetchError
from d3.validator.public_net import is_public


class _Recorder(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        if self.path.startswith("/hop"):
            self.send_response(302)
            self.send_header("Location", self.server.target)  # type: ignore[attr-defined]
            self.end_headers()
            return
        body = b"internal secret"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    srv.paths = []  # type: ignore[attr-defined]
    srv.target = ""  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _fetch(fetcher: Fetcher, url: str) -> bytes:
    async def go() -> bytes:
        try:
            return await fetcher.fetch(parse_locator(url), "manifest.json", 10_000)
        finally:
            await fetcher.close()

    return asyncio.run(go())


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_loopback_locator_is_refused_before_any_request(server, host):
    port = server.server_address[1]
    with pytest.raises(FetchError, match="not a public address") as caught:
        _fetch(Fetcher(), f"http://{host}:{port}/d")
    assert not caught.value.transient  # the miner's locator is wrong, not the network
    assert server.paths == []


def test_a_redirect_into_the_private_network_is_refused(server):
    """The first hop is a host the operator trusts (its S3 endpoint); the redirect it
    serves points at an internal address, and is checked like any other connection."""
    port = server.server_address[1]
    server.target = f"http://localhost:{port}/secret"
    fetcher = Fetcher(s3_endpoint=f"http://127.0.0.1:{port}")
    with pytest.raises(FetchError, match=r"localhost resolves to 127\.0\.0\.1"):
        _fetch(fetcher, f"http://127.0.0.1:{port}/hop")
    assert server.paths == ["/hop/manifest.json"]  # the secret was never requested


def test_local_networks_may_fetch_from_loopback(server):
    port = server.server_address[1]
    assert _fetch(Fetcher(allow_private=True), f"http://127.0.0.1:{port}/d") == b"internal secret"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("10.0.0.5", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),  # the cloud metadata service
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fc00::1", False),
        ("fe80::1%eth0", False),
        ("::ffff:10.0.0.5", False),  # IPv4-mapped
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
    ],
)
def test_which_addresses_are_public(address, public):
    assert is_public(address) is public
