"""Attacks on the chain side: replaying another hotkey's commitment, and garbage
commitments (random bytes, random text, near-misses of the format) from several hotkeys."""

from __future__ import annotations

import base64
import random
import string

import bittensor as bt
import pytest

from d3.validator.scoring import INITIAL_CREDIBILITY
from tests.support.net import run

from .support import Arena

VALID_HASH = "ab" * 32


@pytest.mark.parametrize("replayer_first", [False, True], ids=["replayed-later", "front-run"])
def test_replayed_commitment_of_another_hotkey_is_rejected(
    net, redis_url, logs, x_world, replayer_first
):
    table = x_world.tweets.slice(0, 200)

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["replayer", "honest"])
            honest = await arena.publish("honest", [table], commit=False)
            # The exact commitment string, verbatim, from the attacker's own hotkey: before
            # the honest miner's lands (front-running it from the mempool), or after.
            if replayer_first:
                await arena.commit("replayer", honest.commitment)
                await arena.commit("honest", honest.commitment)
            else:
                await arena.commit("honest", honest.commitment)
                await arena.commit("replayer", honest.commitment)
            runner = arena.runner(redis_url, lookup=x_world.lookup())
            net.dev.advance(1)
            report, _ = await arena.round(runner)
            credited = await arena.credited(runner)
            mine = await runner.state.judgement(arena.hotkey("honest"), honest.manifest_sha256)
            theirs = await runner.state.judgement(arena.hotkey("replayer"), honest.manifest_sha256)
            cred = await runner.state.credibility(runner.scoring.period_blocks)
            await arena.close()
            return arena, report, credited, mine, theirs, cred, honest

    arena, report, credited, mine, theirs, cred, honest = run(body())
    reason = (
        f"manifest is for hotkey {arena.hotkey('honest')}, committed by {arena.hotkey('replayer')}"
    )
    # RoundReport is keyed by manifest hash, which both share: judgements are per hotkey.
    assert report.accepted == [honest.manifest_sha256]
    assert report.rejected == {honest.manifest_sha256: reason}
    assert f"manifest rejected: {reason}" in logs.of(arena.hotkey("replayer"))
    assert mine is not None and mine.accepted
    assert theirs is not None and not theirs.accepted and theirs.reason == reason
    assert credited == {"honest": 200, "replayer": 0}
    assert cred[arena.hotkey("replayer")] < cred.get(arena.hotkey("honest"), INITIAL_CREDIBILITY)


def _garbage() -> dict[str, bytes]:
    """Commitments nobody should act on, one per attacking hotkey (seeded: deterministic)."""
    rng = random.Random(1337)
    printable = string.printable.strip()
    b64 = base64.urlsafe_b64encode(bytes.fromhex(VALID_HASH)).rstrip(b"=").decode()
    non_canonical = b64[:-1] + chr(ord(b64[-1]) + 1)  # same bytes, other padding bits
    return {
        "random-1": rng.randbytes(1),
        "random-64": rng.randbytes(64),
        "random-128": rng.randbytes(128),
        "printable": "".join(rng.choices(printable, k=100)).encode(),
        "tag-then-junk": ("d3.1:" + "".join(rng.choices(printable, k=80))).encode(),
        "other-version": f"d3.9:{b64}:file:///tmp/x".encode(),
        "short-hash": f"d3.1:{b64[:40]}:file:///tmp/x".encode(),
        "non-canonical": f"d3.1:{non_canonical}:file:///tmp/x".encode(),
        "ftp-locator": f"d3.1:{b64}:ftp://127.0.0.1/x".encode(),
        "relative-file": f"d3.1:{b64}:file://tmp/x".encode(),
        "http-userinfo": f"d3.1:{b64}:http://user@127.0.0.1/x".encode(),
        "non-ascii": ("d3.1:" + "é" * 40).encode(),
    }


def test_garbage_commitments_are_ignored_with_a_reason(net, redis_url, logs, x_world):
    garbage = _garbage()
    names = list(garbage)

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["early", *names, "late"])
            early = await arena.publish("early", [x_world.tweets.slice(0, 150)])
            for name, data in garbage.items():
                await arena.commit_raw(name, data)
            late = await arena.publish("late", [x_world.tweets.slice(150, 150)])
            runner = arena.runner(redis_url, lookup=x_world.lookup())
            net.dev.advance(1)
            first, _ = await arena.round(runner)
            logged = {n: list(logs.of(arena.hotkey(n))) for n in names}
            second, _ = await arena.round(runner)
            relogged = {n: list(logs.of(arena.hotkey(n))) for n in names}
            credited = await arena.credited(runner)
            judged = await runner.state.credibility(runner.scoring.period_blocks)
            hotkeys = {n: arena.hotkey(n) for n in names}
            await arena.close()
            return first, second, logged, relogged, credited, judged, hotkeys, early, late

    first, second, logged, relogged, credited, judged, hotkeys, early, late = run(body())
    # Honest miners on both sides of the garbage are processed and credited.
    assert first.accepted == [early.manifest_sha256, late.manifest_sha256]
    assert not first.rejected and not first.pending
    assert credited["early"] == 150 and credited["late"] == 150
    for name in names:
        # Ignored, not judged: one log line with a reason, no credibility change, no credit.
        [line] = logged[name]
        assert line.startswith("ignoring commitment: ") and len(line) > 30, (name, line)
        assert credited[name] == 0 and hotkeys[name] not in judged
    # The same garbage is not re-logged every round, and nothing new happens.
    assert relogged == logged
    assert not second.accepted and not second.rejected and not second.pending
    assert "over 128 bytes" in logged["random-128"][0]  # the SDK shows it as 0x-hex
    assert "not a D3 commitment" in logged["printable"][0]
    assert "is not https://, http://, hf:, s3:// or file://" in logged["ftp-locator"][0]
    assert "must be file:// with an absolute path" in logged["relative-file"][0]
    assert "must be a plain base URL with a host" in logged["http-userinfo"][0]
    assert "not canonical base64url" in logged["non-canonical"][0]
