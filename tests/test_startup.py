"""Neuron start-up (d3/startup.py): a wallet that cannot load and a fatal error are one
line and status 1; anything else keeps its traceback. The checks against a real chain
(no subnet, not registered, unreachable) run on real processes in tests/hardening."""

from __future__ import annotations

import asyncio

import pytest
from loguru import logger

from d3.chain.interface import SubnetNotFound
from d3.config import ConfigError, WalletConfig
from d3.dev.wallets import dev_wallet
from d3.errors import FatalError
from d3.startup import fatal_exits, load_wallet


@pytest.fixture
def logged():
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(message.record["message"]), level="ERROR")
    yield lines
    logger.remove(sink)


def test_a_missing_hotkey_is_one_fatal_line(tmp_path) -> None:
    config = WalletConfig(name="nobody", hotkey="default", path=str(tmp_path))
    with pytest.raises(FatalError, match=r"hotkey nobody/default in .* cannot be loaded: ") as info:
        load_wallet(config)
    assert "\n" not in str(info.value)


def test_a_wallet_that_exists_is_loaded_with_its_hotkey(tmp_path) -> None:
    made = dev_wallet(tmp_path, "miner")
    wallet = load_wallet(WalletConfig(name="miner", hotkey="default", path=str(tmp_path)))
    assert wallet.hotkey.ss58_address == made.hotkey.ss58_address


@pytest.mark.parametrize("error", [FatalError("stop"), ConfigError("stop"), SubnetNotFound("stop")])
def test_a_fatal_error_is_one_line_and_status_1(logged, error) -> None:
    @fatal_exits("cannot start")
    async def amain() -> int:
        raise error

    assert asyncio.run(amain()) == 1
    assert logged == ["cannot start: stop"]


def test_the_status_is_passed_on_and_a_bug_keeps_its_traceback(logged) -> None:
    @fatal_exits("fatal")
    async def fine(status: int) -> int:
        return status

    @fatal_exits("fatal")
    async def buggy() -> int:
        raise KeyError("a bug")

    assert asyncio.run(fine(0)) == 0
    with pytest.raises(KeyError):
        asyncio.run(buggy())
    assert logged == []
