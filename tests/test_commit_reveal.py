"""Commit-reveal weights, the runtime's default, through the SDK's real timelocked path.

The SDK encrypts the weights to a drand round and sends
`commit_timelocked_mechanism_weights`; the dev chain applies them when the epoch after the
commit's begins, running the runtime's weight checks there, and drops them silently when a
check fails, as the runtime does. The validator checks first, pads to the subnet's
minimum, and confirms from `Weights` afterwards.
"""

from __future__ import annotations

import asyncio

import bittensor as bt
import pytest

from d3.chain.sdk import SdkChain
from d3.dev.chain_state import SubnetParams
from d3.dev.substrate import DevSubstrate
from d3.dev.wallets import dev_wallet

NETUID = 4


@pytest.fixture
def dev(tmp_path):
    return DevSubstrate(tmp_path / "chain.sqlite")


def _subnet(dev: DevSubstrate, tmp_path, **params) -> None:
    owner = dev_wallet(tmp_path / "wallets", "owner")
    defaults = {"tempo": 20, "weights_rate_limit": 5, **params}
    dev.create_subnet(
        NETUID, owner.hotkey.ss58_address, owner.coldkeypub.ss58_address, SubnetParams(**defaults)
    )


async def _network(client, dev, tmp_path, names, stake=("validator",)):
    chains = {n: SdkChain(client, dev_wallet(tmp_path / "wallets", n), NETUID) for n in names}
    for chain in chains.values():
        assert (await chain.register()).ok
    for name in stake:
        dev.set_stake(chains[name].hotkey, 10**12)
    dev.next_epoch(NETUID)  # permits are computed at epochs, and the rate limit has passed
    return chains


def test_weights_commit_timelocked_and_land_at_the_reveal(dev, tmp_path):
    _subnet(dev, tmp_path)

    async def body():
        async with bt.Subtensor("local", substrate=dev) as client:
            chains = await _network(client, dev, tmp_path, ["validator", "a", "b"])
            validator = chains["validator"]
            verdict = await validator.set_weights({1: 0.75, 2: 0.25}, version_key=0)
            pending = await client.weights.timelocked_weight_commits(NETUID)
            before = await client.weights.weights(NETUID)
            waiting = await validator.reveal_outcome()
            dev.next_epoch(NETUID)
            outcome = await validator.reveal_outcome()
            after = await client.weights.weights(NETUID)
            return verdict, pending, before, waiting, outcome, after, validator.hotkey

    verdict, pending, before, waiting, outcome, after, hotkey = asyncio.run(body())
    assert verdict.ok and "timelocked" in verdict.message
    [[commit]] = pending.values()  # the real SDK's ciphertext, with its drand round
    assert commit["hotkey"] == hotkey and commit["commit_block"] == verdict.block
    assert commit["reveal_round"] > 0 and len(commit["ciphertext"]) > 100
    assert before == {} and waiting is None  # hidden until the reveal
    assert outcome.ok and f"block {verdict.block}" in outcome.message
    assert after[0] == pytest.approx({1: 0.75, 2: 0.25}, abs=1e-4)


def test_a_reveal_the_chain_refuses_is_reported_and_the_old_weights_stay(dev, tmp_path):
    """The validator loses its permit between commit and reveal (its stake is gone by the
    reveal epoch): the runtime drops the commit at the reveal with only a trace log."""
    _subnet(dev, tmp_path)

    async def body():
        async with bt.Subtensor("local", substrate=dev) as client:
            chains = await _network(client, dev, tmp_path, ["validator", "a", "b"])
            validator = chains["validator"]
            assert (await validator.set_weights({1: 1.0}, version_key=0)).ok
            dev.next_epoch(NETUID)
            first = await validator.reveal_outcome()
            dev.advance(5)
            assert (await validator.set_weights({2: 1.0}, version_key=0)).ok
            dev.set_stake(validator.hotkey, 0)
            dev.next_epoch(NETUID)
            second = await validator.reveal_outcome()
            weights = await client.weights.weights(NETUID)
            return first, second, weights, dev.state.reveal_outcomes(NETUID)

    first, second, weights, outcomes = asyncio.run(body())
    assert first.ok
    assert not second.ok and second.code == "reveal_failed"
    assert "not applied at the reveal" in second.message and "\n" not in second.message
    assert weights[0] == {1: 1.0}  # the old row stays
    assert outcomes[-1][3].startswith("failed: NeuronNoValidatorPermit")


def test_weights_are_padded_to_the_subnets_minimum(dev, tmp_path):
    """`MinAllowedWeights` 3 and one miner scored: the SDK would refuse one weight, and the
    reveal would drop it; the validator adds the smallest weight the chain keeps."""
    _subnet(dev, tmp_path, min_allowed_weights=3)

    async def body():
        async with bt.Subtensor("local", substrate=dev) as client:
            chains = await _network(client, dev, tmp_path, ["validator", "a", "b", "c"])
            validator = chains["validator"]
            verdict = await validator.set_weights({2: 1.0}, version_key=0)
            dev.next_epoch(NETUID)
            outcome = await validator.reveal_outcome()
            return verdict, outcome, await client.query(("SubtensorModule", "Weights"), [NETUID, 0])

    verdict, outcome, row = asyncio.run(body())
    assert verdict.ok and outcome.ok, (verdict, outcome)
    assert [(int(u), int(v)) for u, v in row] == [(1, 1), (2, 65535), (3, 1)]


def test_the_first_weights_after_registration_wait_a_rate_limit(dev, tmp_path):
    """Registration sets `LastUpdate` to its block: a new validator waits a full rate limit."""
    _subnet(dev, tmp_path, weights_rate_limit=50, tempo=10)

    async def body():
        async with bt.Subtensor("local", substrate=dev) as client:
            validator = SdkChain(client, dev_wallet(tmp_path / "wallets", "validator"), NETUID)
            miner = SdkChain(client, dev_wallet(tmp_path / "wallets", "miner"), NETUID)
            assert (await validator.register()).ok and (await miner.register()).ok
            dev.set_stake(validator.hotkey, 10**12)
            dev.next_epoch(NETUID)
            wait = await validator.blocks_until_weights_allowed()
            early = await validator.set_weights({1: 1.0}, version_key=0)
            dev.advance(wait)
            late = await validator.set_weights({1: 1.0}, version_key=0)
            return wait, early, late

    wait, early, late = asyncio.run(body())
    assert 0 < wait <= 50
    assert not early.ok and early.code == "rate_limited"
    assert late.ok, late.message


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda dev, hotkey: dev.set_stake_threshold(10**13), "StakeThreshold"),
        (lambda dev, hotkey: None, "WeightsVersionKey"),
    ],
)
def test_weights_the_reveal_would_drop_are_not_committed(dev, tmp_path, setup, reason):
    """What the reveal would refuse is refused before anything is signed: no commit."""
    _subnet(dev, tmp_path, weights_version_key=7 if reason == "WeightsVersionKey" else 0)

    async def body():
        async with bt.Subtensor("local", substrate=dev) as client:
            chains = await _network(client, dev, tmp_path, ["validator", "a"])
            setup(dev, chains["validator"].hotkey)
            verdict = await chains["validator"].set_weights({1: 1.0}, version_key=3)
            return verdict, await client.weights.timelocked_weight_commits(NETUID)

    verdict, pending = asyncio.run(body())
    assert not verdict.ok and verdict.code == "refused" and reason in verdict.message
    assert pending == {}


def test_a_plain_weight_set_is_refused_while_commit_reveal_is_on(dev, tmp_path):
    """The runtime's `CommitRevealEnabled`: on such a subnet only commits are accepted."""
    _subnet(dev, tmp_path)

    async def body():
        async with bt.Subtensor("local", substrate=dev) as client:
            await _network(client, dev, tmp_path, ["validator", "a"])
            call = bt.calls.SubtensorModule.set_mechanism_weights(
                netuid=NETUID, mecid=0, dests=[1], weights=[65535], version_key=0
            )
            wallet = dev_wallet(tmp_path / "wallets", "validator")
            return await client.submit_call(call, wallet, signer="hotkey")

    result = asyncio.run(body())
    assert not result.success and "CommitRevealEnabled" in str(result.error.name)
