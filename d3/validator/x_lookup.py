"""Adapt a tweet source's look-up to what the verifier needs, keeping outages blameless.

X's records are passed through whole: the verifier compares every field a miner
publishes, and they come from the same normaliser that made the miners' records. A
look-up that fails as a whole (credentials refused, usage cap, an outage that outlasted
the retries) is an `outage`: the audit then waits, and no timer runs against any miner.
"""

from __future__ import annotations

from collections.abc import Sequence

from loguru import logger

from d3.validator.verifier import Lookup, LookupAnswer
from scraping.source import SourceAuthError, SourceError, TweetSource


def source_lookup(source: TweetSource) -> Lookup:
    async def lookup(ids: Sequence[int]) -> LookupAnswer:
        try:
            result = await source.lookup(ids)
        except SourceAuthError as error:
            logger.error("X refused the validator's credentials: {} (audits wait)", error)
            return LookupAnswer(found={}, failed=set(ids), outage=True)
        except SourceError as error:
            logger.warning("X look-up failed: {} (no signal for this sample)", error)
            return LookupAnswer(found={}, failed=set(ids), outage=True)
        return LookupAnswer(
            found=dict(result.found), missing=set(result.missing), failed=set(result.failed)
        )

    return lookup
