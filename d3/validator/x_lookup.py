"""Adapt a tweet source's look-up to what the verifier needs, keeping outages blameless.

X's records are passed through whole: the verifier compares every field a miner
publishes, and they come from the same normaliser that made the miners' records. A
look-up that fails as a whole (credentials refused, usage cap, an outage that outlasted
the retries) is an `outage`: the audit then waits, and no timer runs against any miner.

A request that fails while the look-up's others are answered (a 503 on one batch of 100)
is asked again split in halves, until what still fails is one ID asked alone: so a
passing failure costs no miner anything, and an ID that makes every request carrying it
fail (a "poison" ID) fails only itself, as per-ID silence of its own miner's sample.
When both halves of a split fail whole, the asking stops rather than hammering X: those
IDs stay without an answer, and the audit tells per-ID silence from an outage as for any
silence (X's answers to the rest of the pass, or its probe).
"""

from __future__ import annotations

from collections.abc import Sequence

from loguru import logger

from d3.validator.verifier import Lookup, LookupAnswer
from scraping.source import LookupResult, SourceAuthError, SourceError, TweetSource


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
        if result.errored and (result.found or result.missing):
            await isolate(source, result)
        return LookupAnswer(
            found=dict(result.found), missing=set(result.missing), failed=set(result.failed)
        )

    return lookup


async def isolate(source: TweetSource, result: LookupResult) -> None:
    """Ask `result.errored` again in halves (module docstring), merging the answers into
    `result`; what is left in `errored` failed again, asked alone or beside an ID that
    did. At most about 2 log2(n) more requests for one poison ID among n."""
    parts = [sorted(result.errored)]
    while parts:
        part = parts.pop()
        halves = [part] if len(part) == 1 else [part[: len(part) // 2], part[len(part) // 2 :]]
        whole: list[list[int]] = []  # halves whose request failed again, whole
        for half in halves:
            try:
                again = await source.lookup(half)
            except SourceError as error:
                logger.warning("asking {} IDs again failed: {}", len(half), error)
                return
            result.found.update(again.found)
            result.missing |= again.missing
            answered = set(half) - again.errored
            result.failed -= answered
            result.errored -= answered
            if again.errored == set(half):
                whole.append(half)
            elif len(again.errored) > 1:
                parts.append(sorted(again.errored))
        if len(whole) == 2:
            logger.warning("asking {} IDs again in halves failed whole: X is down", len(part))
            return
        parts += [half for half in whole if len(half) > 1]
