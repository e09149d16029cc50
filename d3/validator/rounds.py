"""One validator round: read new commitments from chain history, judge them in order, score.

Every commitment any hotkey made is read from the chain (`history.py`) into a queue and
judged exactly once, in global (commit block, hotkey) order; each manifest is attributed to
the block of its own commitment, or, when only reachable through `parent`, to the earliest
commitment whose chain contains it. So any two honest validators, whatever their poll
cadence, restarts or start time, ingest the same manifests in the same order and reach the
same credit.

A round never dies of one miner: each commitment is decoded, fetched and verified in
isolation, and each failure becomes a logged rejection. Ingestion stops at the first
commitment whose upload is still within its grace period, so a slow upload can delay
others' credit but never steal it.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from loguru import logger

from d3.chain.interface import Chain, ChainVerdict, CommitmentRecord, MetagraphSnapshot
from d3.commitment import UnreadableCommitment, decode_commitment
from d3.validator.audit import AuditResult, allot, draw, seed_of, table_to_bytes
from d3.validator.history import new_commitments
from d3.validator.index import TweetIndex
from d3.validator.pipeline import ManifestPipeline, Outcome, Pending, Prepared, Rejected, WorkItem
from d3.validator.scoring import MinerScore, ScoringParams, score_miners
from d3.validator.silence import KeptAnswers, Replay, Silence
from d3.validator.state import Judgement, ValidatorState, Verdict
from d3.validator.verifier import Lookup, LookupBudget, SampleVerdict, check_sample


@dataclass
class RoundReport:
    block: int
    accepted: list[str] = field(default_factory=list)  # manifest hashes
    rejected: dict[str, str] = field(default_factory=dict)  # manifest hash -> reason
    pending: list[str] = field(default_factory=list)
    neutral: int = 0  # commitments judged without effect (undecodable, repeated manifests)
    new_unique: int = 0
    read: int = 0  # commitments read from chain history this round
    audited: int = 0  # miners' periods audited this round
    caught_up: bool = True  # False: the round's time ran out with commitments still queued
    audits_waiting: int = 0  # miners whose audit of a closed period waits (X, budget)
    audits_provisional: int = 0  # miners' periods whose silent picks X is to be asked again


class RoundRunner:
    def __init__(
        self,
        chain: Chain,
        index: TweetIndex,
        state: ValidatorState,
        pipeline: ManifestPipeline,
        scoring: ScoringParams,
        concurrency: int = 8,
        round_seconds: float = 600.0,
        lookup: Lookup | None = None,
        budget: LookupBudget | None = None,
    ):
        self.chain = chain
        self.index = index
        self.state = state
        self.pipeline = pipeline
        self.scoring = scoring
        self.concurrency = concurrency
        self.round_seconds = round_seconds
        self.batch = 4 * concurrency
        self.lookup = lookup
        self.budget = budget
        self.audit = pipeline.audit  # None: structure-only, nothing is audited

    async def sync_history(self, head: int) -> int:
        """Queue every commitment made up to `head` that this validator has not read."""
        horizon = self.scoring.history_horizon(head)
        if await self.state.get_meta("forgotten_before") != str(horizon):
            dropped = await self.state.forget_before(horizon)
            if dropped:
                logger.info("forgot {} records older than the history horizon {}", dropped, horizon)
            await self.state.set_meta("forgotten_before", str(horizon))

        async def save(records: list[CommitmentRecord]) -> None:
            manifests = {}
            for record in records:
                decoded = decode_commitment(record.data)
                if not isinstance(decoded, UnreadableCommitment):
                    manifests[(record.hotkey, record.block)] = decoded.manifest_sha256
            await self.state.enqueue(records, manifests)

        records = await new_commitments(
            self.chain, head, await self.state.cursors(), horizon, 2 * self.concurrency, save
        )
        return len(records)

    async def process(self, graph: MetagraphSnapshot) -> RoundReport:
        report = RoundReport(block=graph.block)
        # History only from finalized blocks: a commitment in a block that is reorganised
        # away must never have been read by some validators and not by others.
        final = min(graph.block, await self.chain.finalized_block())
        report.read = await self.sync_history(final)
        started = last_log = time.monotonic()
        judged = 0
        while True:
            queue = await self.state.queue_head(self.batch)
            if not queue:
                break
            if time.monotonic() - started > self.round_seconds:
                report.caught_up = False
                break
            # One commitment per hotkey per batch: a hotkey's later commitment is prepared
            # only after its earlier one is judged (its parent walk stops there).
            batch: list[CommitmentRecord] = []
            for record in queue:
                if any(r.hotkey == record.hotkey for r in batch):
                    break
                batch.append(record)
            done, stop = await self._run_batch(batch, graph, report)
            judged += done
            if stop:
                break
            if time.monotonic() - last_log > 10:
                last_log = time.monotonic()
                logger.info(
                    "judged {} commitments this round, {} queued",
                    judged,
                    await self.state.queue_size(),
                )
        if report.caught_up:  # a pending upload stops judging; the audit of closed periods
            await self.audit_periods(graph, report)  # waits on its own rule
        return report

    async def _triage(
        self, record: CommitmentRecord, graph: MetagraphSnapshot
    ) -> WorkItem | Verdict:
        """A work item, or the verdict of a commitment that needs no work."""
        decoded = decode_commitment(record.data)
        if isinstance(decoded, UnreadableCommitment):
            return Verdict(record.block, False, decoded.reason, False)
        sha = decoded.manifest_sha256
        earlier = await self.state.judgement(record.hotkey, sha)
        if earlier is not None:
            reason = f"manifest already judged with the commitment at block {earlier.block}"
            return Verdict(record.block, False, reason, False, sha)
        first = await self.state.committed_block(record.hotkey, sha)
        if first is not None and first < record.block:
            reason = f"manifest already committed at block {first}"
            return Verdict(record.block, False, reason, False, sha)
        return WorkItem(record.block, record.hotkey, graph.uid_of(record.hotkey), decoded)

    async def _run_batch(
        self, batch: list[CommitmentRecord], graph: MetagraphSnapshot, report: RoundReport
    ) -> tuple[int, bool]:
        """Prepare the batch concurrently and apply it in order. Returns how many
        commitments were judged and whether the round must stop (a pending upload)."""
        triaged = [await self._triage(record, graph) for record in batch]
        gate = asyncio.Semaphore(self.concurrency)

        async def prepare(item: WorkItem) -> Outcome:
            async with gate:
                return await self.pipeline.prepare(item, graph.block)

        tasks: list[asyncio.Task | None] = [
            asyncio.create_task(prepare(t)) if isinstance(t, WorkItem) else None for t in triaged
        ]
        applied, stop = 0, False
        try:
            for record, work, task in zip(batch, triaged, tasks, strict=True):
                if task is None:
                    assert isinstance(work, Verdict)
                    await self.state.judge(record, [], work)
                    logger.bind(
                        hotkey=record.hotkey[:10],
                        uid=graph.uid_of(record.hotkey),
                        block=record.block,
                    ).info("ignoring commitment: {}", work.reason)
                    report.neutral += 1
                    applied += 1
                    continue
                outcome = await task  # in ingest order, while later ones are still preparing
                if isinstance(outcome, Pending):
                    report.pending.append(outcome.item.commitment.manifest_sha256)
                    logger.bind(hotkey=outcome.item.hotkey[:10], uid=outcome.item.uid).info(
                        "waiting for upload ({}); later commitments wait too", outcome.reason
                    )
                    stop = True
                    break
                complete = await self._apply(record, outcome, report)
                applied += 1
                if not complete:
                    break  # its newer manifests come next, before anything after it
        finally:
            for task in tasks:
                if task is not None:
                    task.cancel()
            await asyncio.gather(*(t for t in tasks if t is not None), return_exceptions=True)
        return applied, stop

    async def _apply(
        self, record: CommitmentRecord, outcome: Prepared | Rejected, report: RoundReport
    ) -> bool:
        """Write one outcome; False when the commitment is only partly done."""
        item = outcome.item
        sha = item.commitment.manifest_sha256
        log = logger.bind(
            hotkey=item.hotkey[:10], uid=item.uid, manifest=sha[:12], block=item.block
        )
        if isinstance(outcome, Rejected):
            judgements = [
                Judgement(m, False, outcome.reason, item.block) for m in outcome.manifest_sha256s
            ]
            verdict = Verdict(item.block, False, outcome.reason, not outcome.blameless, sha)
            await self.state.judge(record, judgements, verdict)
            report.rejected[sha] = outcome.reason
            log.warning("manifest rejected: {}", outcome.reason)
            return True
        period = self.scoring.period_of(item.block)
        candidates = await self._new_candidates(outcome)  # before ingest: new = not yet indexed
        new = 0
        for shard_sha, ids in outcome.shard_ids:
            token = f"{shard_sha}:{item.hotkey}:{item.block}"  # one per shard per commitment
            result = await self.index.ingest(ids, item.hotkey, token, period)
            new += result.credited  # exact even when a crash interrupted an earlier run
        notes = "; ".join(outcome.notes)
        judgements = [Judgement(m.sha256, True, notes, item.block) for m in outcome.manifests]
        for dropped, reason in outcome.dropped:
            judgements.append(Judgement(dropped, False, reason, item.block))
            log.warning("ancestor manifest {} rejected: {}", dropped[:12], reason)
        # With audits, passing the structural checks is no evidence that tweets are real
        # (`counts` False): the commitment is one of its period's share of accepted ones,
        # and that period's credibility outcome waits for its audit (`period_outcomes`).
        counts = self.audit is None
        verdict = Verdict(item.block, True, notes, counts, sha, new) if outcome.complete else None
        audit = None
        if self.audit is not None:  # one record per application (a long ancestry: parts)
            rows = table_to_bytes(candidates) if candidates is not None else None
            part = outcome.manifests[-1].sha256[:16] if outcome.manifests else ""
            audit = (period, new, rows, part)
        await self.state.judge(record, judgements, verdict, audit)
        report.new_unique += new
        if not outcome.complete:
            log.info(
                "commitment at block {}: {} older manifests taken first ({} rows, {} new unique)",
                item.block,
                len(outcome.manifests),
                outcome.rows,
                new,
            )
            return False
        report.accepted.append(sha)
        log.info(
            "manifest accepted: {} rows, {} new unique{}",
            outcome.rows,
            new,
            f" ({notes})" if notes else "",
        )
        return True

    async def _new_candidates(self, outcome: Prepared) -> pa.Table | None:
        """The first audit candidates, in key order, that this commitment brings new."""
        ranked = outcome.candidates
        if self.audit is None or ranked is None or ranked.num_rows == 0:
            return None
        ids = ranked["id"].to_pylist()
        want = self.audit.candidates_for(outcome.rows)
        keep: list[int] = []
        taken: set[int] = set()
        chunk = max(32, 2 * want)  # most rows are new: one chunk usually does
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            for offset, indexed in enumerate(await self.index.contains(part)):
                tweet_id = part[offset]
                # A tweet repeated across the manifests one commitment brings is one.
                if not indexed and tweet_id not in taken and len(keep) < want:
                    taken.add(tweet_id)
                    keep.append(start + offset)
            if len(keep) >= want:
                break
        return ranked.take(pa.array(keep, pa.int64())) if keep else None

    async def audit_periods(self, graph: MetagraphSnapshot, report: RoundReport) -> None:
        """Audit every closed period: all its commitments judged, and the seed block
        (`delay_blocks` after the grace period that follows the period) final. Newest
        first: when look-ups are short (a validator that bootstraps, or comes back from an
        outage, owes several periods at once) they go to the periods that count longest,
        and the window fills from its newest end (bench/catchup_bench.py: from an empty
        Redis at the default budget it counts a veteran's periods after 4.5 days, against
        26 oldest first)."""
        if self.audit is None or self.lookup is None:
            return
        final = min(graph.block, await self.chain.finalized_block())
        head = await self.state.queue_head(1)
        closed: list[tuple[int, int, str]] = []
        for period in await self.state.audit_periods():
            last = (period + 1) * self.scoring.period_blocks - 1
            seed_block = last + self.pipeline.limits.grace_blocks + self.audit.delay_blocks
            if final < seed_block or (head and head[0].block <= last):
                break  # not closed yet; later periods are not either
            block_hash = await self.chain.block_hash(seed_block)
            if block_hash is None:
                break
            closed.append((period, seed_block, block_hash))
        answering = _Answering(self)  # whether X answers this validator, in this pass
        for period, seed_block, block_hash in reversed(closed):
            # Each period and each miner stands alone: one that must wait (look-ups spent,
            # X down) holds up nobody else.
            await self._audit_period(period, seed_block, block_hash, report, final, answering)
        await answering.settle(final, report)

    async def _audit_period(
        self,
        period: int,
        seed_block: int,
        block_hash: str,
        report: RoundReport,
        final: int,
        answering: _Answering,
    ) -> None:
        """Audit every miner with credit in `period` that is not audited yet. A miner that
        must wait (look-ups spent, X down) holds the period for everyone, so that a wait
        never puts one miner behind another. A miner whose picks X is silent about gets a
        provisional result at once, its silent picks counted as not found, and is asked
        again until the deadline (silence.py): the period counts for everyone meanwhile
        (`mark_ready`), and closes when no miner is left to ask."""
        assert self.audit is not None and self.lookup is not None
        credits = {h: per.get(period, 0) for h, per in (await self.index.credits()).items()}
        done = await self.state.audits()
        holds = await self.state.holds(period)
        allotment = allot(credits, self.audit)
        waiting = held = False
        # First asks before re-asks: silent picks never spend the look-ups that another
        # miner's first audit needs.
        for hotkey in sorted(allotment, key=lambda h: (h in holds, h)):
            hold = holds.get(hotkey)
            if period in done.get(hotkey, {}) and hold is None:
                continue
            log = logger.bind(hotkey=hotkey[:10], period=period)
            pool = await self.state.candidates(hotkey, period)
            size = allotment[hotkey]
            sample, unverifiable = draw(pool, size, seed_of(block_hash, hotkey, period))
            ask = _Ask(hotkey, period, credits[hotkey], sample, unverifiable, seed_block)
            answer: SampleVerdict | None = None
            again: tuple[Silence, KeptAnswers] | None = None
            if sample is not None:
                recorded = period in done.get(hotkey, {})
                asked = await self._ask(ask, hold, recorded, final, answering, log)
                if asked is _WAIT:
                    waiting = True
                    report.audits_waiting += 1
                    continue
                if asked is _KEEP:  # its provisional result stands for now
                    held = True
                    report.audits_provisional += 1
                    continue
                assert not isinstance(asked, str)
                answer, again = asked
                held = held or again is not None
                report.audits_provisional += again is not None
            await self._record(ask, answer, again, hold is not None, report)
        if waiting:
            return
        if held:
            await self.state.mark_ready(period)
        else:
            await self.state.close_audit_period(period)

    async def _record(
        self,
        ask: _Ask,
        answer: SampleVerdict | None,
        again: tuple[Silence, KeptAnswers] | None,
        revised: bool,
        report: RoundReport,
    ) -> None:
        """Record one miner's audit of a period from X's verdict on its sample (None: no
        row to check); with `again`, provisionally: its silent picks count as not found
        until X answers about them."""
        assert self.audit is not None
        log = logger.bind(hotkey=ask.hotkey[:10], period=ask.period)
        checked = found = altered = 0
        reason = ""
        if answer is not None:
            checked = answer.checked + answer.unanswered  # silent ones: not found
            found = answer.checked - answer.not_found
            altered = len(answer.altered)
            reason = answer.rejected or answer.notes
        notes = [reason] if reason else []
        if again is not None:
            notes.append(f"{len(again[0].ids)} silent tweets count as not found until X answers")
        elif answer is not None and answer.silent:
            notes.append(f"{len(answer.silent)} tweets X stayed silent about count as not found")
        if ask.unverifiable:
            notes.append(f"{ask.unverifiable} picks fell on credit with no row to check")
        distinct = 0 if ask.sample is None else pc.count_distinct(ask.sample["id"]).as_py()
        # Picks with no row to check are each their own (missing) evidence.
        result = AuditResult(
            checked + ask.unverifiable,
            found,
            altered,
            "; ".join(notes),
            distinct + ask.unverifiable,
        )
        verdict = Verdict(
            # The period's own last block, not the seed's: the verdict belongs to the
            # window that holds the period, like the credit it judges. One verdict per
            # audited miner-period, however many commitments the sample touched, so a
            # failed audit costs a miner the same whatever its commit cadence.
            (ask.period + 1) * self.scoring.period_blocks - 1,
            not result.failed,
            f"audit of period {ask.period}: {result.found} of {result.checked} found"
            + (f"; {result.reason}" if result.reason else ""),
            True,
        )
        await self.state.record_audit(ask.hotkey, ask.period, result, verdict, again)
        report.audited += 1
        num, den = result.factor
        log.log(
            "WARNING" if result.failed else "INFO",
            "audit of period {}{}: {} of {} sampled tweets found on X, {} altered; {} of "
            "{} credited tweets count",
            ask.period,
            " (provisional)" if again is not None else (" (revised)" if revised else ""),
            result.found,
            result.checked,
            result.altered,
            ask.credit * num // den,
            ask.credit,
        )
        if again is not None:
            silence = again[0]
            log.info(
                "X answers other look-ups but not {} of this miner's sampled tweets: they "
                "count as not found, are asked again from block {}, and stay not found if "
                "still silent from block {}",
                len(silence.ids),
                silence.next_ask(ask.seed_block, self.audit),
                silence.deadline(ask.seed_block, self.audit),
            )

    async def _ask(
        self,
        ask: _Ask,
        hold: tuple[Silence, KeptAnswers] | None,
        recorded: bool,
        final: int,
        answering: _Answering,
        log,
    ) -> tuple[SampleVerdict, tuple[Silence, KeptAnswers] | None] | str:
        """X's verdict on one miner's sample, with the silence to ask about again (None:
        the verdict is final), or why there is none: `_WAIT` for X or look-ups (the
        period waits for everyone), `_KEEP` for a held miner (`hold`: its silent picks
        and what X answered) not due to be asked again, or X not answering now (its
        provisional result stands). Silent picks in a verdict count as not found. A hold
        with no result `recorded` (the earlier release kept silence, and nothing X answered,
        without a result while it waited: state a validator upgraded mid-wait still holds)
        is asked about its whole sample at once, keeping its first sight."""
        assert self.audit is not None and self.lookup is not None
        assert ask.sample is not None
        seed_block = ask.seed_block
        silence, kept = hold if hold is not None else (None, KeptAnswers())
        distinct = list(dict.fromkeys(ask.sample["id"].to_pylist()))
        if silence is None or not recorded:  # a first ask (nothing kept): the whole sample
            ids = distinct
        else:
            ids = silence.to_ask(final, seed_block, self.audit, len(distinct))
            if not ids:
                return _KEEP  # asked again at silence.next_ask
        still = _WAIT if silence is None else _KEEP
        if answering.down:  # X failed a whole look-up this pass: do not hammer it
            return still
        if self.budget is not None and not self.budget.spend(len(ids), time.time()):
            log.info("audit waits for look-up budget ({} needed)", len(ids))
            return still
        replay = Replay(self.lookup, kept, ids)
        answer = await check_sample(ask.sample, replay)
        if replay.answered:
            answering.saw(ask.hotkey, (i for i in ids if i in replay.fresh.found))
        if not answer.silent or answer.altered:
            return answer, None  # complete, or failed whatever the silent picks would say
        if replay.fresh.outage and not answering.answered:
            answering.down = True  # the rest of this pass waits without asking
        known: bool | None = False  # whether X answers this validator now (None: unknown)
        if not replay.fresh.outage:
            known = True if replay.answered else await answering.now()
        if not known:
            if self.budget is not None and not replay.answered:
                self.budget.refund(len(ids))  # no answer: asked again
            if known is None and silence is None:  # nothing tells yet: decided at the end
                answering.later(ask, answer, kept)
            log.info(
                "audit waits: X answers no look-up now (an outage: nothing counts against "
                "any miner, however long it lasts)"
            )
            return still
        first = final if silence is None else silence.first
        now = Silence(first, final, tuple(sorted(answer.silent)))
        if silence is not None and not silence.thawing and set(ids) - set(answer.silent):
            # A glitch ending: the rest are asked at once, not at the next ask.
            now = Silence(first, silence.last, now.ids, thawing=True)
        if final >= now.deadline(seed_block, self.audit) and not now.thawing:
            log.warning(
                "X answered other look-ups but not {} of this sample's tweets, asked from "
                "block {} to {}: they stay not found",
                len(answer.silent),
                first,
                final,
            )
            return answer, None
        return answer, (now, kept)

    async def scores(self, graph: MetagraphSnapshot) -> list[MinerScore]:
        neurons = [(n.uid, n.hotkey, n.registered_block) for n in graph.neurons]
        factors = evidence = None
        if self.audit is not None:
            # A period counts for every miner once every miner's audit of it is done (some
            # perhaps provisionally: silent picks count as not found until X answers),
            # and for nobody before: an audit that waits (X down, budget) never puts one
            # miner behind the others, and a bootstrapping validator scores what it has
            # audited.
            unfinished = set(await self.state.audit_periods()) - await self.state.ready_periods()
            audits = {
                h: {p: r for p, r in per.items() if p not in unfinished}
                for h, per in (await self.state.audits()).items()
            }
            factors = {h: {p: r.factor for p, r in per.items()} for h, per in audits.items()}
            evidence = {h: {p: r.evidence for p, r in per.items()} for h, per in audits.items()}
        return score_miners(
            neurons,
            await self.index.credits(),
            await self.state.credibility(
                self.scoring.period_blocks, self.scoring.window_start(graph.block)
            ),
            graph.block,
            self.scoring,
            factors,
            evidence,
        )

    async def set_weights(self, scores: Iterable[MinerScore], version_key: int) -> ChainVerdict:
        weights = {s.uid: s.weight for s in scores if s.weight > 0}
        if not weights:
            return ChainVerdict(False, "no miner has a positive score yet", "nothing_to_set")
        verdict = await self.chain.set_weights(weights, version_key)
        if verdict.ok:
            shown = ", ".join(f"{uid}: {w:.4f}" for uid, w in sorted(weights.items()))
            logger.info(
                "weights {} at block {} for {} uids: {}",
                verdict.message,
                verdict.block,
                len(weights),
                shown,
            )
        else:
            logger.warning("weights not set: {}", verdict.message)
        return verdict


@dataclass(frozen=True)
class _Ask:
    """One miner's audit of one period: its credit, its sample (None: no row to check)
    and the picks with no row to check, and the period's seed block."""

    hotkey: str
    period: int
    credit: int
    sample: pa.Table | None
    unverifiable: int
    seed_block: int


_KEEP = "keep"  # a held miner's provisional result stands; it is asked again later
_WAIT = "wait"  # it waits for X or look-ups: the period waits for everyone


class _Answering:
    """Whether X answers this validator's look-ups, within one audit pass: yes once any
    look-up of the pass got an answer; before that, a probe (a look-up of tweets X
    answered before, each from another miner's sample: found or not found, either is an
    answer), asked at most once per pass. Without that, a sample X is wholly silent about
    could be per-ID silence (which ends in "not found") or an outage (which must never).
    Several probe tweets, of miners drawn at random by this validator alone (not by
    hotkey order, which a Sybil can grind): to silence them all, an attacker would have
    to own most of the miners X answered about. With nothing to probe yet (a new
    validator), such samples are decided at the end of the pass (`settle`)."""

    PROBES = "x_answered_ids"  # state meta: {hotkey: an ID X answered lately}
    MAX_PROBES = 8

    def __init__(self, runner: RoundRunner, rng: random.Random | None = None):
        self.runner = runner
        self.answered = False
        self.down = False  # a look-up failed whole (an outage) before any was answered
        self.probed: bool | None = None
        self._later: list[tuple[_Ask, SampleVerdict, KeptAnswers]] = []
        self._fresh: dict[str, int] = {}  # this pass's answered IDs, one per hotkey
        self._rng = rng or random.SystemRandom()

    def saw(self, hotkey: str, ids: Iterable[int]) -> None:
        """A look-up of this pass about `hotkey`'s sample got answers, for `ids` among
        others: keep one of them for later probes."""
        self.answered = True
        first = next(iter(ids), None)
        if first is not None:
            self._fresh.setdefault(hotkey, first)

    async def now(self) -> bool | None:
        """Whether X answers now; None: nothing tells yet (no answer, nothing to probe)."""
        if self.answered:
            return True
        if self.probed is None:
            self.probed = await self._probe()
        return self.probed

    def later(self, ask: _Ask, answer: SampleVerdict, kept: KeptAnswers) -> None:
        self._later.append((ask, answer, kept))

    async def settle(self, block: int, report: RoundReport) -> None:
        """X answered later in the pass: the silence of samples decided before that was
        per-ID silence after all, and their provisional results are recorded. Then the
        probe tweets: this pass's, then the earlier ones of other miners."""
        if self.answered:
            for ask, answer, kept in self._later:
                silence = Silence(block, block, tuple(sorted(answer.silent)))
                await self.runner._record(ask, answer, (silence, kept), False, report)
                report.audits_waiting -= 1  # it waits no more
                report.audits_provisional += 1
        if self._fresh:
            drawn = self._rng.sample(sorted(self._fresh), min(self.MAX_PROBES, len(self._fresh)))
            probes = {hotkey: self._fresh[hotkey] for hotkey in drawn}
            for hotkey, tweet_id in (await self._probes()).items():
                if len(probes) < self.MAX_PROBES:
                    probes.setdefault(hotkey, tweet_id)
            await self.runner.state.set_meta(self.PROBES, json.dumps(probes, sort_keys=True))

    async def _probes(self) -> dict[str, int]:
        raw = await self.runner.state.get_meta(self.PROBES)
        return {h: int(i) for h, i in json.loads(raw).items()} if raw else {}

    async def _probe(self) -> bool | None:
        runner = self.runner
        known = sorted(set((await self._probes()).values()))
        if not known or runner.lookup is None:
            return None
        if runner.budget is not None and not runner.budget.spend(len(known), time.time()):
            return False
        answer = await runner.lookup(known)
        return not answer.outage and bool(answer.found or answer.missing)
