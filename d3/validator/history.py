"""Every commitment from chain history, not just the ones a validator happened to see.

The commitments pallet keeps one entry per hotkey, the latest, with the block it was
written in; the same storage read pinned at `block - 1` gives the one before. Walking
that back for every hotkey, down to the history horizon or to the newest commitment
already read, enumerates every commitment exactly once, whatever this validator's poll
cadence, restarts or start time. Old blocks need historical state (an archive node on
finney); a pruned block raises HistoryUnavailable from the chain layer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from loguru import logger

from d3.chain.interface import Chain, CommitmentRecord


async def hotkey_history(
    chain: Chain, latest: CommitmentRecord, stop_at: int
) -> list[CommitmentRecord]:
    """`latest` and every earlier commitment of its hotkey with a block > `stop_at`,
    oldest first."""
    found: list[CommitmentRecord] = []
    record: CommitmentRecord | None = latest
    while record is not None and record.block > stop_at:
        found.append(record)
        if record.block <= 0:
            break
        previous = await chain.commitment_of(record.hotkey, record.block - 1)
        if previous is not None and previous.block >= record.block:
            raise ValueError(  # a chain answering this way is broken, not a miner
                f"chain returned commitment at block {previous.block} for a read at "
                f"{record.block - 1}"
            )
        record = previous
    found.reverse()
    return found


async def new_commitments(
    chain: Chain,
    head: int,
    cursors: Mapping[str, int],
    horizon: int,
    concurrency: int = 16,
    save: Callable[[list[CommitmentRecord]], Awaitable[None]] | None = None,
) -> list[CommitmentRecord]:
    """Commitments made at or before `head` and not yet read: newer than the hotkey's
    cursor and not older than `horizon`. In (block, hotkey) order.

    `save` gets each hotkey's history as soon as its walk ends, so a long bootstrap that
    is interrupted keeps the walks it finished (the caller must not judge anything until
    this returns: a walk still running may hold older commitments)."""
    latest = await chain.commitments(head)
    todo = [r for r in latest if r.block > max(cursors.get(r.hotkey, -1), horizon - 1)]
    if not todo:
        return []
    gate = asyncio.Semaphore(concurrency)
    done = 0
    started = last_report = time.monotonic()

    async def one(record: CommitmentRecord) -> list[CommitmentRecord]:
        nonlocal done, last_report
        stop_at = max(cursors.get(record.hotkey, -1), horizon - 1)
        async with gate:
            history = await hotkey_history(chain, record, stop_at)
            if save is not None:
                await save(history)
        done += 1
        now = time.monotonic()
        if now - last_report > 10 and done < len(todo):  # long bootstraps show progress
            last_report = now
            logger.info("reading commitment history: {}/{} hotkeys", done, len(todo))
        return history

    histories = await asyncio.gather(*(one(r) for r in todo))
    records = sorted((r for h in histories for r in h), key=lambda r: (r.block, r.hotkey))
    if len(todo) > 1 or len(records) > 1:
        logger.info(
            "read {} commitments of {} hotkeys from chain history (blocks {}..{}) in {:.1f}s",
            len(records),
            len(todo),
            records[0].block,
            records[-1].block,
            time.monotonic() - started,
        )
    return records
