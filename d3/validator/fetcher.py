"""Fetch manifests and shards from miners' dataset hosts, with hard limits.

A miner's host is untrusted: it may be slow, trickle bytes, lie about sizes, or never
answer. Every fetch therefore has a byte cap (checked against Content-Length and again
while streaming) and a total deadline (not just a per-read timeout, which a trickling
host defeats). Transient failures are retried a bounded number of times; "not there yet"
(404 / missing file) is reported separately because the upload may still be in flight.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import httpx

from d3.commitment import Locator, LocatorKind
from d3.retry import Backoff, retry
from d3.validator.public_net import PrivateAddress, public_transport


class FetchError(Exception):
    """The file could not be fetched; `transient` says whether trying later may help."""

    def __init__(self, message: str, transient: bool):
        super().__init__(message)
        self.transient = transient


class NotYetAvailable(FetchError):
    """The host answered but has no such file (yet): the upload may still be coming."""

    def __init__(self, message: str):
        super().__init__(message, transient=True)


@dataclass(frozen=True)
class FetchLimits:
    deadline_s: float = 120.0  # whole fetch, including retries
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    retries: int = 2


FETCH_BACKOFF = Backoff(0.5, cap_s=8.0, jitter=0.5)  # between tries, within the deadline


def _worth_retrying(error: Exception) -> bool:
    """A transient failure; not "not there yet", which the pipeline waits out itself."""
    return (
        isinstance(error, FetchError) and error.transient and not isinstance(error, NotYetAvailable)
    )


class Fetcher:
    """Bounded downloads over HTTP(S) and `file://` (local networks only).

    Hosts must be on the public internet (`public_net.py`) unless `allow_private` (local
    networks and tests); the operator's own `s3_endpoint` is always allowed."""

    def __init__(
        self,
        limits: FetchLimits = FetchLimits(),
        s3_endpoint: str | None = None,
        allow_file: bool = False,
        client: httpx.AsyncClient | None = None,
        allow_private: bool = False,
    ):
        self.limits = limits
        self.s3_endpoint = s3_endpoint
        self.allow_file = allow_file
        trusted = [httpx.URL(s3_endpoint).host] if s3_endpoint else []
        self._client = client or httpx.AsyncClient(
            transport=None if allow_private else public_transport(trusted),
            timeout=httpx.Timeout(
                limits.read_timeout_s, connect=limits.connect_timeout_s, pool=limits.deadline_s
            ),
            follow_redirects=True,
            max_redirects=3,
            # Hash what the host stores, not a compressed transfer of it (and never inflate
            # an attacker's gzip stream).
            headers={"User-Agent": "d3-validator", "Accept-Encoding": "identity"},
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def fetch(self, locator: Locator, name: str, max_bytes: int) -> bytes:
        """The bytes of file `name` at `locator`, or FetchError. Never more than `max_bytes`."""
        url = locator.url_for(name, s3_endpoint=self.s3_endpoint)
        try:
            async with asyncio.timeout(self.limits.deadline_s):
                if locator.kind is LocatorKind.FILE:
                    return await self._read_file(url, max_bytes)
                return await self._get_with_retries(url, max_bytes)
        except TimeoutError:
            raise FetchError(
                f"{url}: not complete within {self.limits.deadline_s:.0f}s", transient=True
            ) from None

    async def _read_file(self, url: str, max_bytes: int) -> bytes:
        if not self.allow_file:
            raise FetchError("file:// locators are only accepted on local networks", False)
        path = Path(url.removeprefix("file://"))

        def read() -> bytes:
            with path.open("rb") as handle:
                data = handle.read(max_bytes + 1)
            return data

        try:
            data = await asyncio.to_thread(read)
        except FileNotFoundError:
            raise NotYetAvailable(f"{path}: no such file") from None
        except OSError as exc:
            raise FetchError(f"{path}: {exc.strerror}", transient=True) from None
        if len(data) > max_bytes:
            raise FetchError(f"{path}: larger than {max_bytes} bytes", transient=False)
        return data

    async def _get_with_retries(self, url: str, max_bytes: int) -> bytes:
        return await retry(
            lambda: self._get(url, max_bytes),
            FETCH_BACKOFF,
            attempts=self.limits.retries + 1,
            retryable=_worth_retrying,
        )

    async def _get(self, url: str, max_bytes: int) -> bytes:
        try:
            async with self._client.stream("GET", url) as response:
                if response.status_code in (404, 410):
                    raise NotYetAvailable(f"{url}: HTTP {response.status_code}")
                if response.status_code == 429 or response.status_code >= 500:
                    raise FetchError(f"{url}: HTTP {response.status_code}", transient=True)
                if response.status_code != 200:
                    raise FetchError(f"{url}: HTTP {response.status_code}", transient=False)
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise FetchError(
                        f"{url}: {declared} bytes declared, limit {max_bytes}", transient=False
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(f"{url}: more than {max_bytes} bytes", transient=False)
                    chunks.append(chunk)
                return b"".join(chunks)
        except PrivateAddress as exc:
            raise FetchError(f"{url}: {exc}: refused", transient=False) from None
        except httpx.TransportError as exc:
            raise FetchError(f"{url}: {type(exc).__name__}", transient=True) from None
        except httpx.HTTPError as exc:  # redirect loops, bad URLs, undecodable responses
            raise FetchError(f"{url}: {type(exc).__name__}", transient=False) from None
