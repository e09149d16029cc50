"""Attacks on the manifest hash chain. A true loop needs a hash fixed point, so these are
the closest an attacker can get: a parent name whose file holds another manifest, a host
that answers every name with the same manifest, a parent that is someone else's valid
manifest, and a chain deeper than any validator should walk. Every walk must end, with a
reason, after a bounded number of fetches."""

from __future__ import annotations

import re

import bittensor as bt
import pytest

from d3.manifest import MANIFEST_SUFFIX
from d3.validator.pipeline import PipelineLimits
from tests.support.net import run

from .hosts import HostileHost
from .support import Arena, commitment_text

MISMATCH = "manifest bytes do not match the committed sha256"


@pytest.mark.parametrize(
    "trick", ["parent-file-holds-another-manifest", "same-bytes-for-every-name"]
)
def test_parent_link_that_does_not_hash_to_its_name_is_ignored(
    net, redis_url, logs, x_world, trick
):
    rows = x_world.tweets.slice(500, 40)

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client, HostileHost() as host:
            arena = await Arena.open(client, net, ["looper", "honest"])
            parent = await arena.publish("looper", [rows.slice(0, 20)], commit=False)
            other = await arena.publish("looper", [rows.slice(20, 10)], commit=False)
            child = await arena.publish(
                "looper", [rows.slice(30, 10)], parent=parent.manifest_sha256, commit=False
            )
            child_name = child.manifest_sha256 + MANIFEST_SUFFIX
            parent_name = parent.manifest_sha256 + MANIFEST_SUFFIX
            if trick == "parent-file-holds-another-manifest":
                host.serve(child_name, child.manifest_bytes)
                host.serve(parent_name, other.manifest_bytes)  # valid, signed, wrong one
                for shard in child.shards:
                    host.serve(shard.name, shard.data)
            else:  # whatever is asked for, the child manifest comes back
                host.serve_everything(child.manifest_bytes)
            await arena.commit("looper", commitment_text(child.manifest_sha256, host.base_url))
            honest = await arena.publish("honest", [x_world.tweets.slice(0, 100)])
            runner = arena.runner(redis_url, lookup=x_world.lookup())
            net.dev.advance(1)
            report, _ = await arena.round(runner)
            credited = await arena.credited(runner)
            requests = list(host.requests)
            await arena.close()
            return arena, report, credited, requests, child, parent_name, child_name, honest

    arena, report, credited, requests, child, parent_name, child_name, honest = run(body())
    # The walk stops at the bad link with a reason; the commitment's own manifest is judged
    # on its own (a bad ancestor never sinks it, so how far back a validator could walk
    # never changes a verdict). Two manifest fetches, then only the child's shard.
    assert any(
        line.startswith(f"parent manifest {parent_name[:12]} unusable ({MISMATCH})")
        for line in logs.of(arena.hotkey("looper"))
    )
    assert requests[:2] == [child_name, parent_name]
    assert [r for r in requests if r.endswith(MANIFEST_SUFFIX)] == [child_name, parent_name]
    if trick == "parent-file-holds-another-manifest":
        assert not report.rejected
        assert report.accepted == [child.manifest_sha256, honest.manifest_sha256]
        assert credited == {"looper": 10, "honest": 100}
    else:  # the child's shard comes back as manifest bytes too
        [reason] = report.rejected.values()
        assert re.fullmatch(r"shard \w{12}: \d+ bytes, manifest says \d+", reason), reason
        assert report.accepted == [honest.manifest_sha256]
        assert credited == {"looper": 0, "honest": 100}


def test_parent_that_is_another_hotkeys_manifest_is_ignored(net, redis_url, logs, x_world):
    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["honest", "grafter"])
            honest = await arena.publish("honest", [x_world.tweets.slice(0, 100)])
            # The grafter chains onto the honest manifest: the bytes hash to the parent name
            # (they are copied verbatim), but the manifest is signed for another hotkey.
            (arena.dir("grafter")).mkdir(parents=True)
            (arena.dir("grafter") / f"{honest.manifest_sha256}{MANIFEST_SUFFIX}").write_bytes(
                honest.manifest_bytes
            )
            grafted = await arena.publish(
                "grafter", [x_world.tweets.slice(100, 30)], parent=honest.manifest_sha256
            )
            runner = arena.runner(redis_url, lookup=x_world.lookup())
            net.dev.advance(1)
            report, _ = await arena.round(runner)
            credited = await arena.credited(runner)
            await arena.close()
            return arena, report, credited, honest, grafted

    arena, report, credited, honest, grafted = run(body())
    reason = (
        f"manifest is for hotkey {arena.hotkey('honest')}, committed by {arena.hotkey('grafter')}"
    )
    # The graft is ignored with a reason; the honest tweets stay the honest miner's, and the
    # grafter is paid for its own 30 only.
    assert not report.rejected
    assert any(reason in line for line in logs.of(arena.hotkey("grafter")))
    assert report.accepted == [honest.manifest_sha256, grafted.manifest_sha256]
    assert credited == {"honest": 100, "grafter": 30}


def test_chain_deeper_than_the_walk_limit_stops_at_the_limit(net, redis_url, logs, x_world):
    links, depth, per_link = 24, 16, 5

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client, HostileHost() as host:
            arena = await Arena.open(client, net, ["deep", "honest"])
            parent = None
            for i in range(links):  # 24 valid, signed links; only the newest is committed
                link = await arena.publish(
                    "deep",
                    [x_world.tweets.slice(300 + i * per_link, per_link)],
                    parent=parent,
                    commit=False,
                )
                host.serve(link.manifest_sha256 + MANIFEST_SUFFIX, link.manifest_bytes)
                for shard in link.shards:
                    host.serve(shard.name, shard.data)
                parent = link.manifest_sha256
            await arena.commit("deep", commitment_text(parent, host.base_url))
            honest = await arena.publish("honest", [x_world.tweets.slice(0, 100)])
            runner = arena.runner(
                redis_url,
                lookup=x_world.lookup(),
                limits=PipelineLimits(grace_blocks=5, max_walk=depth),
            )
            net.dev.advance(1)
            report, _ = await arena.round(runner)
            credited = await arena.credited(runner)
            manifests = [r for r in host.requests if r.endswith(MANIFEST_SUFFIX)]
            await arena.close()
            return arena, report, credited, manifests, parent, honest

    arena, report, credited, manifests, head, honest = run(body())
    # Never more fetches than the limit (the own manifest and `depth` ancestors); the
    # commitment's own manifest is judged as usual, older links are ignored with a reason.
    assert len(manifests) == depth + 1
    assert report.accepted == [head, honest.manifest_sha256]
    assert credited == {"deep": (depth + 1) * per_link, "honest": 100}
    assert f"more than {depth} never-judged ancestors; older links ignored" in logs.of(
        arena.hotkey("deep")
    )
