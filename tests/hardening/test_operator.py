"""What an operator sees when the configuration cannot work: one line naming the problem,
a non-zero exit, no traceback. Real neuron processes, started as pm2 would start them."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import bittensor as bt
import pytest

from d3.chain.sdk import SdkChain
from d3.commitment import Commitment, parse_locator
from d3.dev.chain_state import SubnetParams
from d3.dev.substrate import DevSubstrate
from d3.dev.wallets import dev_wallet
from d3.miner.hosts import LocalDirHost
from d3.miner.neuron import resume_chain_tip
from d3.miner.publisher import PARENT_KEY
from d3.miner.store import TweetStore

ROOT = Path(__file__).resolve().parents[2]
NETUID = 6


@pytest.fixture
def chain(tmp_path) -> DevSubstrate:
    dev = DevSubstrate(tmp_path / "chain.sqlite")
    owner = dev_wallet(tmp_path / "w", "owner")
    dev.create_subnet(
        NETUID, owner.hotkey.ss58_address, owner.coldkeypub.ss58_address, SubnetParams()
    )
    for name in ("miner", "validator"):
        dev_wallet(tmp_path / "w", name)
    return dev


def _run(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "neurons" / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def _miner_args(tmp_path, network: str, *extra: str) -> list[str]:
    return [
        "--subtensor.network", network, "--wallet.name", "miner",
        "--wallet.path", str(tmp_path / "w"), "--source.x_bearer_token", "t",
        "--host.dir", str(tmp_path / "host"),
        "--neuron.store_path", str(tmp_path / "store.sqlite"), *extra,
    ]  # fmt: skip


def _validator_args(tmp_path, network: str, *extra: str) -> list[str]:
    return [
        "--subtensor.network", network, "--wallet.name", "validator",
        "--wallet.path", str(tmp_path / "w"), "--redis.url", "redis://127.0.0.1:1/0",
        "--verify.structure_only", *extra,
    ]  # fmt: skip


def _one_line(result: subprocess.CompletedProcess, status: int, needle: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == status, output[-2000:]
    assert "Traceback" not in output, output[-2000:]
    [line] = [line for line in output.splitlines() if needle in line]
    assert "ERROR" in line or "error" in line


def test_no_such_subnet_stops_the_validator_at_once(tmp_path, chain):
    result = _run("validator.py", "--netuid", "99", *_validator_args(tmp_path, f"dev:{chain.path}"))
    _one_line(result, 1, "fatal: netuid 99 has no subnet on this chain")


def test_no_such_subnet_stops_the_miner(tmp_path, chain):
    result = _run("miner.py", "--netuid", "99", *_miner_args(tmp_path, f"dev:{chain.path}"))
    _one_line(result, 1, "cannot start: netuid 99 has no subnet on this chain")


@pytest.mark.parametrize("script", ["miner.py", "validator.py"])
def test_an_unreachable_endpoint_is_retried_then_one_line(tmp_path, chain, script):
    args = _miner_args if script == "miner.py" else _validator_args
    extra = (
        "--subtensor.chain_endpoint",
        "ws://127.0.0.1:1",
        "--subtensor.connect_deadline_s",
        "2",
    )
    if script == "miner.py":  # a miner on a real network needs its public locator
        extra += ("--host.locator", "https://example.com/d")
    result = _run(script, "--netuid", "1", *args(tmp_path, "finney", *extra))
    _one_line(result, 1, "cannot reach ws://127.0.0.1:1 after")
    assert "retry in" in result.stdout + result.stderr  # it did retry first


@pytest.mark.parametrize("script", ["miner.py", "validator.py"])
def test_a_dev_chain_file_that_does_not_exist_is_not_created(tmp_path, chain, script):
    args = _miner_args if script == "miner.py" else _validator_args
    missing = tmp_path / "nowhere" / "chain.sqlite"
    result = _run(script, "--netuid", "1", *args(tmp_path, f"dev:{missing}"))
    _one_line(result, 1, f"no dev chain file at {missing}")
    assert not missing.exists() and not missing.parent.exists()


def test_a_locator_too_long_for_a_commitment_is_refused_at_start(tmp_path, chain):
    locator = "https://example.com/" + "d" * 90
    result = _run(
        "miner.py", "--netuid", str(NETUID),
        *_miner_args(tmp_path, f"dev:{chain.path}", "--host.locator", locator),
    )  # fmt: skip
    _one_line(result, 1, "cannot start: commitment is")
    assert "shorten the locator (110 chars)" in result.stdout + result.stderr


def test_a_host_kind_without_its_extra_is_one_line(tmp_path, chain):
    """`--host.kind hf` where huggingface_hub is not installed (a stand-in module that
    fails to import, first on the path)."""
    fake = tmp_path / "no_hf" / "huggingface_hub"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named huggingface_hub')\n")
    result = _run(
        "miner.py", "--netuid", str(NETUID),
        *_miner_args(
            tmp_path, f"dev:{chain.path}", "--host.kind", "hf", "--host.locator", "hf:o/r"
        ),
        env={"PYTHONPATH": f"{fake.parent}{os.pathsep}{ROOT}"},
    )  # fmt: skip
    _one_line(result, 1, "HF hosting needs huggingface_hub: pip install 'd3-subnet[hf]'")


def test_a_redis_url_with_a_bad_database_is_a_flag_error(tmp_path, chain):
    result = _run(
        "validator.py", "--netuid", str(NETUID),
        *_validator_args(tmp_path, f"dev:{chain.path}", "--redis.url", "redis://host/abc"),
    )  # fmt: skip
    _one_line(result, 2, "--redis.url: Value error, the database is a number")


def test_published_files_are_world_readable(tmp_path):
    """A web server running as another user must be able to serve them (0600 was a 403)."""
    host = LocalDirHost(tmp_path / "host", "https://example.com/d")
    asyncio.run(host.upload("manifest.json", b"{}"))
    mode = stat.S_IMODE((tmp_path / "host" / "manifest.json").stat().st_mode)
    assert mode & stat.S_IROTH and mode & stat.S_IRGRP


def test_a_fresh_store_continues_the_manifest_chain_on_chain(tmp_path, chain):
    """The store was lost: the next manifest's parent is the hotkey's committed tip."""
    sha = "ab" * 32

    async def body():
        async with bt.Subtensor("local", substrate=chain) as client:
            miner = SdkChain(client, dev_wallet(tmp_path / "w", "miner"), NETUID)
            assert (await miner.register()).ok
            fresh = TweetStore(tmp_path / "fresh.sqlite")
            await resume_chain_tip(fresh, miner)  # nothing on chain yet
            before = fresh.get_meta(PARENT_KEY)
            text = Commitment(sha, parse_locator("https://example.com/d")).encode()
            assert (await miner.commit(text)).ok
            await resume_chain_tip(fresh, miner)
            after = fresh.get_meta(PARENT_KEY)
            fresh.close()
            return before, after

    before, after = asyncio.run(body())
    assert before is None and after == sha
