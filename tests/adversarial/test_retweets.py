"""A retweet earns nothing (d3/earning.py): its text is its original's. Attacked through
the real validator over the dev chain: a miner that farms the retweets of viral tweets
for "unique" IDs, and a miner whose retweets a twscrape validator could never check.
"""

from __future__ import annotations

import bittensor as bt
import pyarrow as pa
import pyarrow.compute as pc

from tests.support.net import run

from .support import SAMPLE, Arena

RETWEETS = 25


class Recording:
    def __init__(self, lookup):
        self.lookup = lookup
        self.asked: set[int] = set()

    async def __call__(self, ids):
        self.asked.update(ids)
        return await self.lookup(ids)


def test_retweets_earn_nothing_and_are_never_audited(net, redis_url, x_world):
    """One miner commits only retweets (each a distinct ID, each real on X), another the
    same number of originals plus retweets. The retweets are credited to nobody, never
    looked up (so a twscrape validator, which cannot check a retweet, judges these miners
    as an X API validator does), and the verdict says why; the originals earn in full.
    (Before, every retweet was a new unique tweet: a viral tweet's retweets were a
    farm of credit with one text.)"""
    originals, retweets = x_world.tweets, x_world.retweets
    assert retweets.num_rows >= 2 * RETWEETS, "the corpus has retweets"
    farmer = retweets.slice(0, RETWEETS)
    mixed = pa.concat_tables([originals.slice(0, SAMPLE), retweets.slice(RETWEETS, RETWEETS)])
    mixed = mixed.take(pc.sort_indices(mixed["id"]))

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["farmer", "mixed"])
            await arena.publish("farmer", [farmer])
            await arena.publish("mixed", [mixed])
            lookup = Recording(x_world.lookup())
            runner = arena.runner(redis_url, lookup=lookup)
            net.dev.advance(1)
            report, _ = await arena.round(runner)
            await arena.audit(runner)
            credited = await arena.credited(runner)
            scores = {s.hotkey: s for s in await runner.scores(await arena.graph())}
            verdicts = await runner.state.verdicts(arena.hotkey("farmer"))
            await arena.close()
            return arena, report, lookup, credited, scores, verdicts

    arena, report, lookup, credited, scores, verdicts = run(body())
    assert len(report.accepted) == 2  # retweets are real tweets: nothing is rejected
    assert credited == {"farmer": 0, "mixed": SAMPLE}
    assert scores[arena.hotkey("mixed")].unique == SAMPLE
    assert scores[arena.hotkey("farmer")].unique == 0
    assert not lookup.asked & set(retweets["id"].to_pylist())
    assert lookup.asked <= set(originals["id"].to_pylist())
    [farmed] = verdicts
    assert f"{RETWEETS} retweets earn nothing (their originals do)" in farmed.reason
