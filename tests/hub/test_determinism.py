"""Two validators with separate Redis servers, different cadences and hubs built at
different moments reach byte-identical hubs from one chain: the same rows, the same
files, the same card and index, though one closed the first day several updates before
the end and the other in its one and only update."""

from __future__ import annotations

import bittensor as bt
import pyarrow.compute as pc
import pyarrow.parquet as pq

from d3.dev.redis_server import start_redis
from d3.hub.builder import HubBuilder
from d3.hub.layout import INDEX_NAME, SIGNATURE_NAME, verify_copy
from d3.hub.signing import verify_signature
from tests.support.datasets import TruthLookup
from tests.support.net import run
from tests.support.runner import audit_now, make_runner

from .support import SCORING, play, published_files


def test_two_validators_build_byte_identical_hubs(net, redis_url, tmp_path):
    lookup = TruthLookup()
    with start_redis(tmp_path / "redis-b") as other:

        async def body():
            async with bt.Subtensor("local", substrate=net.dev) as client:
                live: dict = {}

                async def every_step(step: int) -> None:
                    # Validator A judges after every step and updates its hub each time.
                    if not live:
                        chain = await net.chain(client, "va")
                        runner = make_runner(chain, redis_url, lookup, scoring=SCORING)
                        hub = HubBuilder.for_runner(tmp_path / "a", runner, net.wallet("va").hotkey)
                        live.update(runner=runner, hub=hub, updates=[])
                    await live["runner"].process(await live["runner"].chain.metagraph())
                    live["updates"].append(await live["hub"].update())

                world, _ = await play(net, client, lookup, every_step, later=True)
                await audit_now(live["runner"], net.dev)
                live["updates"].append(await live["hub"].update())
                # Validator B: its own redis-server, judges everything in one go at the end
                # and builds its hub once.
                chain_b = await net.chain(client, "vb")
                runner_b = make_runner(chain_b, other.url, lookup, scoring=SCORING, prefix="b")
                await audit_now(runner_b, net.dev)
                hub_b = HubBuilder.for_runner(tmp_path / "b", runner_b, net.wallet("vb").hotkey)
                final_b = await hub_b.update()
                live["hub"].close()
                hub_b.close()
                return world, live["updates"], final_b

        world, updates_a, final_b = run(body())

    a, b = published_files(tmp_path / "a"), published_files(tmp_path / "b")
    assert a == b  # byte for byte, every published file
    # Partitioned by day: the first one closed (its tweets can no longer be fresh), in one
    # part file holding the rows of two periods; the second still open, a file per period.
    first = [p for p in a if p.startswith("data/2025-12-31/")]
    assert first == ["data/2025-12-31/part-00000.parquet"]
    blocks = pq.read_table(tmp_path / "a" / first[0])["commit_block"]
    assert len({SCORING.period_of(b) for b in pc.unique(blocks).to_pylist()}) == 2
    second = sorted(p for p in a if p.startswith("data/2026-01-01/"))
    assert len(second) == 4 and all("/period-" in p for p in second)
    # A closed the first day as soon as it could, with later updates still to come; B
    # in its single update.
    closing = [i for i, u in enumerate(updates_a) if u.closed]
    assert [updates_a[i].closed for i in closing] == [["2025-12-31"]]
    assert closing[0] < len(updates_a) - 1 and updates_a[-1].published
    assert final_b.closed == ["2025-12-31"]
    assert len([u for u in updates_a if u.published]) >= 3  # A published period by period
    assert final_b.rows == updates_a[-1].rows == 240 + 10 + 50 + 40
    for name, hotkey in (("a", world.hotkeys["va"]), ("b", world.hotkeys["vb"])):
        directory = tmp_path / name
        verify_copy(directory)
        index = (directory / INDEX_NAME).read_bytes()
        assert verify_signature(index, (directory / SIGNATURE_NAME).read_bytes()) == hotkey
