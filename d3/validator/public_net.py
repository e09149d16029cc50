"""Connections to miners' hosts reach the public internet only.

A locator is whatever a miner commits, so without a check any miner could make every
validator send requests into the validator's own network: `http://10.0.0.5/`, the cloud
metadata service at `169.254.169.254`, `localhost`, or a public name that resolves (or
redirects) to one of them. The check sits where the connection is made, in httpcore's
network backend: every TCP connection, redirects included, resolves the name once, refuses
any address that is not globally routable, and connects to the address it checked, so a
name that resolves differently a moment later (DNS rebinding) cannot slip past. TLS still
verifies the name. httpx has no such option and the well-known guard (`advocate`) is for
requests, so this is written here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx


class PrivateAddress(Exception):
    """The host resolves to an address validators must not connect to."""


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """httpcore's own backend, with every TCP connection checked first."""

    def __init__(self, allowed_hosts: Iterable[str] = ()):
        self._inner = httpcore.AnyIOBackend()
        self._allowed = {h.lower() for h in allowed_hosts}  # operator-configured endpoints

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if host.lower() in self._allowed:
            return await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except socket.gaierror as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from None
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        refused = [a for a in addresses if not is_public(a)]
        if refused:
            raise PrivateAddress(f"{host} resolves to {refused[0]}, which is not a public address")
        return await self._inner.connect_tcp(
            addresses[0], port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise PrivateAddress("unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def public_transport(allowed_hosts: Iterable[str] = ()) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections go through `PublicOnlyBackend`."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx builds its pool without a way to pass a network backend; this is the pool it
    # would build, with the checked backend (tests/validator/test_public_net.py pins it).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=PublicOnlyBackend(allowed_hosts),
    )
    return transport
