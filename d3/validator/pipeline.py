"""From one commitment to verified tweet IDs: walk the manifest chain, fetch, verify.

Preparation is the slow, untrusted part (miners' hosts, X look-ups), so it runs for many
miners concurrently; its result is either verified IDs ready to ingest, a rejection with
a reason, or "pending" while the upload may still be in flight. Nothing here writes to
the index: ingestion happens afterwards, strictly in (commit block, hotkey) order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from loguru import logger
from redis.exceptions import RedisError

from d3.chain.interface import Chain, HistoryUnavailable
from d3.commitment import Commitment
from d3.earning import NotEarning, earning_rows, first_fresh_id
from d3.manifest import MAX_MANIFEST_BYTES, Manifest, ManifestError, parse_manifest, verify_manifest
from d3.shards import ShardLimits, shard_name
from d3.validator.audit import AuditParams, lowest_keys, seed_of
from d3.validator.fetcher import Fetcher, FetchError, NotYetAvailable
from d3.validator.scoring import PERIOD_BLOCKS, ScoringParams
from d3.validator.state import ValidatorState
from d3.validator.verifier import VerificationError, verify_shard


@dataclass(frozen=True)
class WorkItem:
    block: int  # the commitment's block: the item's place in the ingest order
    hotkey: str
    uid: int | None  # None once the hotkey is no longer registered
    commitment: Commitment

    @property
    def order(self) -> tuple[int, str]:
        return (self.block, self.hotkey)


@dataclass(frozen=True)
class PipelineLimits:
    max_walk: int = 10_000  # unjudged manifests one commitment may reach through `parent`
    max_shards: int = 1_000  # per work item
    max_rows: int = 2_000_000  # per work item
    grace_blocks: int = 50  # for the upload to appear after the commit
    min_fetch_rate: float = 1_000_000  # bytes/s a host must average over a whole commitment
    max_item_s: float = 900.0  # and never longer than this for one item, whatever it declares
    # The judging order is global, so fetch time is everyone's time. A commitment with all
    # of its never-judged ancestry (applied in parts, each part one item) gets at most
    # this much of it, and one hotkey's commitments of one period at most
    # `max_hotkey_period_s`; past either, the commitment is rejected as the miner's fault.
    max_commitment_s: float = 1_800.0
    max_hotkey_period_s: float = 3_600.0
    shard: ShardLimits = field(default_factory=ShardLimits)


@dataclass
class Prepared:
    item: WorkItem
    manifests: list[Manifest]  # oldest first
    shard_ids: list[tuple[str, pa.Array]]  # (shard sha256, its tweet IDs) in manifest order
    notes: list[str] = field(default_factory=list)
    candidates: pa.Table | None = None  # rows ranked for the audit, lowest key first
    complete: bool = True  # False: older manifests only; the commitment's own comes later
    dropped: list[tuple[str, str]] = field(default_factory=list)  # ancestors that failed

    @property
    def rows(self) -> int:
        return sum(len(ids) for _, ids in self.shard_ids)


@dataclass
class Rejected:
    item: WorkItem
    manifest_sha256s: list[str]  # what to record as judged (oldest first)
    reason: str
    blameless: bool = False  # the validator's failure, not the miner's: credibility unchanged


@dataclass
class Pending:
    item: WorkItem
    reason: str


Outcome = Prepared | Rejected | Pending


class _Reject(Exception):
    pass


class SeedNotFinal(Exception):
    """The block whose hash seeds the sample is not finalized yet: the validator waits
    (never the miner's fault, however long it takes)."""


class ManifestPipeline:
    def __init__(
        self,
        fetcher: Fetcher,
        state: ValidatorState,
        netuid: int,
        block_hash: Callable[[int], Awaitable[str | None]],
        now: Callable[[], datetime],
        block_time_ms: Callable[[int], Awaitable[int]] | None = None,
        fresh_from_block: Callable[[int], int] = lambda block: 0,
        audit: AuditParams | None = None,
        limits: PipelineLimits = PipelineLimits(),
        clock: Callable[[], float] | None = None,
        period_of: Callable[[int], int] = lambda block: block // PERIOD_BLOCKS,
    ):
        self.fetcher = fetcher
        self.state = state
        self.netuid = netuid
        self.block_hash = block_hash
        self.now = now
        self.block_time_ms = block_time_ms
        self.fresh_from_block = fresh_from_block
        self._times: dict[int, int] = {}
        self.audit = audit  # None: structure-only, no audit candidates
        self.limits = limits
        self.clock = clock or (lambda: now().timestamp())
        self.period_of = period_of
        # Fetch time spent so far (monotonic seconds): per commitment (hotkey, block), over
        # its parts and retries, and per (hotkey, period). Kept in memory: a restart grants
        # a fresh allowance, which only ever favours the miner.
        self._spent: dict[tuple[str, int], float] = {}
        self._spent_period: dict[tuple[str, int], float] = {}

    @classmethod
    def for_chain(
        cls,
        fetcher: Fetcher,
        state: ValidatorState,
        chain: Chain,
        scoring: ScoringParams,
        audit: AuditParams | None,
        limits: PipelineLimits,
    ) -> ManifestPipeline:
        """The pipeline a validator runs on `chain`: its netuid, block hashes (the audit's
        seeds) and timestamps (the freshness bound), and the scoring's periods."""
        return cls(
            fetcher,
            state,
            chain.netuid,
            chain.block_hash,
            lambda: datetime.now(UTC),
            block_time_ms=chain.block_timestamp_ms,
            fresh_from_block=scoring.fresh_from_block,
            audit=audit,
            limits=limits,
            period_of=scoring.period_of,
        )

    async def prepare(self, item: WorkItem, head_block: int) -> Outcome:
        """Everything about one commitment except writing it; never raises for bad data.
        An attempt's time counts against the commitment's and the hotkey's allowances,
        unless the validator threw the attempt away (cancelled)."""
        commitment = (item.hotkey, item.block)
        period = (item.hotkey, self.period_of(item.block))
        started = time.monotonic()
        outcome = await self._prepare(item, head_block, commitment, period)
        self._account(commitment, period, time.monotonic() - started, outcome)
        return outcome

    async def _prepare(
        self,
        item: WorkItem,
        head_block: int,
        commitment: tuple[str, int],
        period: tuple[str, int],
    ) -> Outcome:
        """`prepare` itself.

        Fetching has a deadline for the whole item (a little over one file's deadline, plus
        time for its declared bytes at `min_fetch_rate`, capped at `max_item_s`; a shard
        must be exactly its declared size), so a host serving each of many files just
        inside the per-file deadline cannot hold the global order for files x deadline;
        and the item's time counts against its commitment's (`max_commitment_s`, over
        every part of a long ancestry) and its hotkey's in that period
        (`max_hotkey_period_s`), so neither a long slow ancestry nor a stream of slow
        commitments can hold it for longer.
        X look-ups happen later, in the period's audit (audit.py); here the commitment's
        rows are only ranked for it. Only the miner's own failures reject it; the
        validator's are "pending" (and, past the grace period, judged without touching
        credibility).
        """
        log = logger.bind(
            hotkey=item.hotkey[:10], uid=item.uid, manifest=item.commitment.manifest_sha256[:12]
        )
        in_grace = head_block <= item.block + self.limits.grace_blocks
        walked: list[str] = []  # the manifests this outcome is about, oldest first

        def judged_as(reason: str, blameless: bool = False) -> Rejected:
            return Rejected(item, walked or [item.commitment.manifest_sha256], reason, blameless)

        def late(reason: str) -> Outcome:
            return Pending(item, reason) if in_grace else judged_as(reason)

        commitment_left = self.limits.max_commitment_s - self._spent.get(commitment, 0.0)
        period_left = self.limits.max_hotkey_period_s - self._spent_period.get(period, 0.0)
        left = min(commitment_left, period_left)
        over_budget = (
            f"this commitment, its ancestry included, took more than "
            f"{self.limits.max_commitment_s:.0f}s of fetching (the limit for one commitment)"
            if commitment_left <= period_left
            else f"this hotkey's commitments of period {period[1]} took more than "
            f"{self.limits.max_hotkey_period_s:.0f}s of fetching (the limit per period)"
        )
        if left <= 0:
            return judged_as(over_budget)
        allowed = 1.25 * self.fetcher.limits.deadline_s  # a single slow file reports itself
        capped = allowed >= left  # the commitment's or the hotkey's allowance binds
        allowed = min(allowed, left)
        try:
            fresh_ms = await self._fresh_ms(item.block)
            seed = await self._audit_seed(item)
            async with asyncio.timeout(allowed) as deadline:
                manifests, complete = await self._walk(item, walked, fresh_ms, log)
                declared = sum(r.bytes for m in manifests for r in m.body.shards)
                extra = min(
                    declared / self.limits.min_fetch_rate,
                    max(0.0, self.limits.max_item_s - allowed),
                )
                if allowed + extra >= left:
                    extra, capped = max(0.0, left - allowed), True
                allowed += extra
                deadline.reschedule(deadline.when() + extra)  # type: ignore[operator]
                prepared = await self._verify_data(item, manifests, seed, fresh_ms)
            prepared.complete = complete
            return prepared
        except TimeoutError:
            if capped:
                return judged_as(over_budget)
            return late(f"the host did not deliver this commitment within {allowed:.0f}s")
        except SeedNotFinal as waiting:
            return Pending(item, str(waiting))
        except NotYetAvailable as missing:
            if in_grace:
                return Pending(item, str(missing))
            return judged_as(
                f"not available {self.limits.grace_blocks} blocks after commit: {missing}"
            )
        except FetchError as error:
            return late(str(error)) if error.transient else judged_as(str(error))
        except (_Reject, ManifestError, VerificationError) as error:
            return judged_as(str(error))
        except (RedisError, HistoryUnavailable, asyncio.CancelledError):
            raise  # the validator's own trouble: the round fails and is retried
        except Exception as error:
            # A bug of ours, or the chain or X failing under us: never let it stop the round,
            # and never count it against the miner.
            log.opt(exception=True).error("unexpected error preparing this commitment")
            reason = f"unexpected validator error: {type(error).__name__}: {error}"
            return Pending(item, reason) if in_grace else judged_as(reason, blameless=True)

    def _account(
        self,
        commitment: tuple[str, int],
        period: tuple[str, int],
        seconds: float,
        outcome: Outcome,
    ) -> None:
        """Add an attempt's fetch time to its commitment's and its hotkey's period's."""
        self._spent_period[period] = self._spent_period.get(period, 0.0) + seconds
        done = isinstance(outcome, Rejected) or (isinstance(outcome, Prepared) and outcome.complete)
        if done:
            self._spent.pop(commitment, None)
        else:  # a part of a long ancestry, a retry within the grace period: it adds up
            self._spent[commitment] = self._spent.get(commitment, 0.0) + seconds
        newest = max(p for _, p in self._spent_period)
        for key in [k for k in self._spent_period if k[1] < newest - 2]:
            del self._spent_period[key]  # periods that can no longer be fetched for

    async def _fresh_ms(self, commit_block: int) -> int | None:
        """The timestamp before which tweets earn nothing in this commitment (None: no bound)."""
        block = self.fresh_from_block(commit_block)
        if block <= 0 or self.block_time_ms is None:
            return None
        if block not in self._times:
            self._times[block] = await self.block_time_ms(block)
        return self._times[block]

    async def _walk(
        self, item: WorkItem, walked: list[str], fresh_ms: int | None, log
    ) -> tuple[list[Manifest], bool]:
        """The manifests this commitment brings, oldest first: its own and the unjudged
        ancestors only it can reach. The walk stops at a manifest already judged, at one an
        earlier commitment of this hotkey named (that commitment is judged first, in
        order), and at one created before the freshness bound (nothing in it can earn).
        Returns as many whole manifests as one item's limits allow, and whether that
        includes the commitment's own; the rest follow, oldest first, right after."""
        sha: str | None = item.commitment.manifest_sha256
        chain: list[Manifest] = []
        seen: set[str] = set()
        while sha is not None:
            if sha in seen:
                log.warning("manifest chain loops at {}; older links ignored", sha[:12])
                break
            seen.add(sha)
            if len(chain) > self.limits.max_walk:
                log.warning(
                    "more than {} never-judged ancestors; older links ignored", self.limits.max_walk
                )
                break
            if chain:  # an ancestor
                if await self.state.judgement(item.hotkey, sha) is not None:
                    break
                earlier = await self.state.committed_block(item.hotkey, sha)
                if earlier is not None and earlier < item.block:
                    break
            try:
                data = await self.fetcher.fetch(
                    item.commitment.locator, f"{sha}.json", MAX_MANIFEST_BYTES
                )
                manifest = await asyncio.to_thread(parse_manifest, data, sha)
                verify_manifest(manifest, item.hotkey, self.netuid)
            except (FetchError, ManifestError) as error:
                if not chain:
                    raise  # the commitment's own manifest: its verdict
                log.warning(
                    "parent manifest {} unusable ({}); older links ignored", sha[:12], error
                )
                break
            if chain and fresh_ms is not None and manifest.body.created_at < fresh_ms:
                break  # older than the freshness bound: none of its tweets can earn
            chain.append(manifest)
            sha = manifest.body.parent
        chain.reverse()
        # Oldest first, as many whole manifests as fit (at least one: a single manifest
        # over the limits is the miner's fault and is rejected below).
        kept, rows, shards = [], 0, 0
        for manifest in chain:
            rows += manifest.body.rows
            shards += len(manifest.body.shards)
            if kept and (rows > self.limits.max_rows or shards > self.limits.max_shards):
                break
            kept.append(manifest)
        walked[:] = [m.sha256 for m in kept]
        return kept, len(kept) == len(chain)

    async def _verify_data(
        self, item: WorkItem, manifests: list[Manifest], seed: int | None, fresh_ms: int | None
    ) -> Prepared:
        refs = [ref for m in manifests for ref in m.body.shards]
        seen: set[str] = set()
        refs = [r for r in refs if not (r.sha256 in seen or seen.add(r.sha256))]
        if len(refs) > self.limits.max_shards:
            raise _Reject(f"{len(refs)} shards, limit {self.limits.max_shards}")
        total = sum(r.rows for r in refs)
        if total > self.limits.max_rows:
            raise _Reject(f"{total} rows, limit {self.limits.max_rows}")
        now = self.now()
        scan = self.audit.scan_for(total) if self.audit is not None else 0
        first_fresh = first_fresh_id(fresh_ms)
        shard_ids: list[tuple[str, pa.Array]] = []
        ranked: list[pa.Table] = []
        kept: list[Manifest] = []
        dropped: list[tuple[str, str]] = []
        done: set[str] = set()
        skipped = NotEarning()  # rows of the kept manifests that earn nothing
        own = manifests[-1].sha256
        for manifest in manifests:
            # Each manifest stands on its own: an ancestor that fails is dropped (and judged
            # rejected) without sinking the commitment, whose verdict is its own manifest's.
            # How far back a walk reaches can differ between validators (what they had
            # read); what a manifest is judged to be cannot.
            mine_ids: list[tuple[str, pa.Array]] = []
            mine_ranked: list[pa.Table] = []
            mine_skipped = NotEarning()
            every: list[pa.Array] = []
            try:
                for ref in manifest.body.shards:
                    if ref.sha256 in done:
                        continue
                    table = await self._shard(item, ref, now)
                    every.append(table["id"].combine_chunks())
                    earning = earning_rows(table, first_fresh)  # the rest earn nothing
                    mine_skipped += NotEarning.of(table, first_fresh)
                    if seed is not None:  # the audit asks only about rows that earn
                        mine_ranked.append(lowest_keys(earning, seed, scan))
                    mine_ids.append((ref.sha256, earning["id"].combine_chunks()))
                    del table, earning
                joined = pa.concat_arrays(every) if every else pa.array([], pa.int64())
                if pc.count_distinct(joined).as_py() != len(joined):
                    raise _Reject("the same tweet id appears in two shards")
            except (_Reject, VerificationError, FetchError) as error:
                if manifest.sha256 == own:
                    raise
                dropped.append((manifest.sha256, f"as an ancestor: {error}"))
                continue
            done.update(ref.sha256 for ref in manifest.body.shards)
            kept.append(manifest)
            shard_ids += mine_ids
            ranked += mine_ranked
            skipped += mine_skipped
        prepared = Prepared(item, kept, shard_ids, dropped=dropped)
        prepared.notes += skipped.notes()
        if seed is not None and ranked:
            prepared.candidates = lowest_keys(pa.concat_tables(ranked), seed, scan)
        return prepared

    async def _shard(self, item: WorkItem, ref, now: datetime) -> pa.Table:
        if ref.bytes > self.limits.shard.max_bytes:
            raise _Reject(
                f"shard {ref.sha256[:12]} is {ref.bytes} bytes, limit {self.limits.shard.max_bytes}"
            )
        data = await self.fetcher.fetch(item.commitment.locator, shard_name(ref.sha256), ref.bytes)
        # Hashing, decoding and checks are CPU work: off the event loop (Arrow releases the
        # GIL), so other miners' downloads and deadlines keep running.
        return await asyncio.to_thread(verify_shard, data, ref, self.limits.shard, now)

    async def _audit_seed(self, item: WorkItem) -> int | None:
        """The key that ranks this commitment's rows for the audit: from the hash of a
        finalized block after its grace period, which did not exist while the miner could
        still upload or withhold anything. None when no audit runs (structure-only)."""
        if self.audit is None:
            return None
        block = self.audit.rank_block(item.block, self.limits.grace_blocks)
        block_hash = await self.block_hash(block)
        if block_hash is None:
            raise SeedNotFinal(f"block {block}, which seeds the audit, is not final yet")
        return seed_of(item.commitment.manifest_sha256, block_hash)
