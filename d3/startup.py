"""Neuron start-up, shared by the miner and the validator.

Both neurons start the same way, and each step is here once:

- `load_wallet`: the configured wallet with its hotkey read now, so a missing or
  unreadable key file is one line at start-up rather than a traceback later;
- `check_ready`: the pinned SDK can work with the chain's runtime, and the hotkey is
  registered on the subnet (a subnet that does not exist stops here, not every round);
- `stop_on_signals`: SIGTERM and SIGINT (pm2 stop, Ctrl-C) set the event the loops
  watch, so they finish the iteration they are in and the process exits 0;
- `fatal_exits`: the neuron's `amain` as a process status. What cannot work without an
  operator or a restart (`FATAL`: a FatalError raised anywhere, a configuration that
  cannot work, an unreachable endpoint, no such subnet) is one logged line and status 1;
  anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import asyncio
import functools
import signal
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

import bittensor as bt
from loguru import logger

from d3.chain.interface import ChainUnreachable, MetagraphSnapshot, SubnetNotFound
from d3.config import ConfigError, WalletConfig, expand
from d3.errors import FatalError

P = ParamSpec("P")
FATAL: tuple[type[Exception], ...] = (FatalError, ConfigError, ChainUnreachable, SubnetNotFound)


def load_wallet(config: WalletConfig) -> bt.Wallet:
    """The wallet with its hotkey loaded; FatalError naming the key if it cannot be."""
    try:
        wallet = bt.Wallet(config.name, config.hotkey, path=str(expand(config.path)))
        wallet.hotkey  # noqa: B018 - load it now: a missing key is an operator error
    except Exception as error:
        raise FatalError(
            f"hotkey {config.name}/{config.hotkey} in {config.path} cannot be loaded: {error}"
        ) from None
    return wallet


async def check_ready(chain: Any, netuid: int, *, role: str, weights: bool) -> MetagraphSnapshot:
    """The subnet's metagraph once the chain can serve this neuron: FatalError when the
    SDK and the runtime disagree (`weights`: also on what setting weights reads) or the
    hotkey is not registered; SubnetNotFound when there is no such subnet."""
    skew = await chain.runtime_skew(weights=weights)
    if skew is not None:
        raise FatalError(skew)
    graph = await chain.metagraph()
    if graph.uid_of(chain.hotkey) is None:
        raise FatalError(
            f"{role} hotkey {chain.hotkey} is not registered on netuid {netuid}: register "
            "it first (btcli subnets register)"
        )
    return graph


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set `stop` (call from inside the running loop)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def fatal_exits(
    prefix: str,
) -> Callable[[Callable[P, Awaitable[int]]], Callable[P, Awaitable[int]]]:
    """Decorate a neuron's `amain`: a `FATAL` error becomes `logger.error("<prefix>: …")`
    and status 1; the status `amain` returns is passed on."""

    def decorate(amain: Callable[P, Awaitable[int]]) -> Callable[P, Awaitable[int]]:
        @functools.wraps(amain)
        async def run(*args: P.args, **kwargs: P.kwargs) -> int:
            try:
                return await amain(*args, **kwargs)
            except FATAL as error:
                logger.error("{}: {}", prefix, error)
                return 1

        return run

    return decorate
