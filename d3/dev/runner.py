"""A validator's round runner in-process, for a network on this machine (tests, benches).

`d3.validator.neuron.build_runner` wires a validator from its flags; code that drives a
validator inside its own process against a dev chain wires it here instead, the same way
but for what only a network on one machine needs: datasets fetched from `file://` hosts
and loopback (which a production validator refuses), and look-ups, audits and limits as
the caller passes them rather than from flags. The netuid is the chain's; the freshness
bound reads block timestamps, as in production.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from d3.chain.interface import Chain
from d3.validator.audit import AuditParams
from d3.validator.fetcher import Fetcher, FetchLimits
from d3.validator.index import TweetIndex
from d3.validator.pipeline import ManifestPipeline, PipelineLimits
from d3.validator.rounds import RoundRunner
from d3.validator.scoring import ScoringParams
from d3.validator.state import ValidatorState
from d3.validator.verifier import Lookup, LookupBudget


def local_runner(
    chain: Chain,
    redis: aioredis.Redis,
    scoring: ScoringParams,
    *,
    prefix: str = "d3",
    fetch: FetchLimits | None = None,
    limits: PipelineLimits | None = None,
    lookup: Lookup | None = None,
    audit: AuditParams | None = None,
    budget: LookupBudget | None = None,
    index: TweetIndex | None = None,
    concurrency: int | None = None,
    round_seconds: float | None = None,
) -> RoundRunner:
    """A RoundRunner on `redis` under `prefix`, judging `chain`'s commitments.

    Without `audit` it credits on structure alone; `index` replaces the plain TweetIndex on
    the same keys (a bench's timed one, say); what is left None keeps the default of
    FetchLimits, PipelineLimits and RoundRunner.
    """
    state = ValidatorState(redis, prefix)
    pipeline = ManifestPipeline.for_chain(
        Fetcher(fetch or FetchLimits(), allow_file=True, allow_private=True),
        state,
        chain,
        scoring,
        audit,
        limits or PipelineLimits(),
    )
    rounds = {"concurrency": concurrency, "round_seconds": round_seconds}
    return RoundRunner(
        chain,
        index or TweetIndex(redis, prefix),
        state,
        pipeline,
        scoring,
        lookup=lookup,
        budget=budget,
        **{name: value for name, value in rounds.items() if value is not None},
    )
