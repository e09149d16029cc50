"""One validator round: read commitments, prepare work, ingest in order, score, set weights.

A round never dies of one miner: every commitment is decoded, fetched and verified in
isolation, and each failure becomes a logged rejection. Ingestion is strictly in
(commit block, hotkey) order and stops at the first item whose upload is still within
its grace period, so a slow upload can delay others' credit but never steal it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from loguru import logger

from d3.chain.interface import Chain, ChainVerdict, MetagraphSnapshot
from d3.commitment import CommitmentError, decode_commitment
from d3.validator.index import TweetIndex
from d3.validator.pipeline import ManifestPipeline, Outcome, Pending, Prepared, Rejected, WorkItem
from d3.validator.scoring import MinerScore, ScoringParams, score_miners
from d3.validator.state import Judgement, ValidatorState


@dataclass
class RoundReport:
    block: int
    accepted: list[str] = field(default_factory=list)  # manifest hashes
    rejected: dict[str, str] = field(default_factory=dict)  # manifest hash -> reason
    pending: list[str] = field(default_factory=list)
    new_unique: int = 0


class RoundRunner:
    def __init__(
        self,
        chain: Chain,
        index: TweetIndex,
        state: ValidatorState,
        pipeline: ManifestPipeline,
        scoring: ScoringParams,
        concurrency: int = 8,
    ):
        self.chain = chain
        self.index = index
        self.state = state
        self.pipeline = pipeline
        self.scoring = scoring
        self.concurrency = concurrency
        self._reported_bad: dict[str, str] = {}  # hotkey -> commitment text already logged

    async def work_items(self, graph: MetagraphSnapshot) -> list[WorkItem]:
        """New commitments of registered hotkeys, in ingest order."""
        items = []
        for record in await self.chain.commitments(graph.block):
            uid = graph.uid_of(record.hotkey)
            if uid is None:
                continue  # deregistered or replaced: nothing to credit
            decoded = decode_commitment(record.data)
            if isinstance(decoded, CommitmentError):
                if self._reported_bad.get(record.hotkey) != record.data:
                    self._reported_bad[record.hotkey] = record.data
                    logger.bind(hotkey=record.hotkey[:10], uid=uid).info(
                        "ignoring commitment: {}", decoded.reason
                    )
                continue
            if await self.state.head(record.hotkey) == decoded.manifest_sha256:
                continue
            if await self.state.judgement(record.hotkey, decoded.manifest_sha256):
                continue
            items.append(WorkItem(record.block, record.hotkey, uid, decoded))
        return sorted(items, key=lambda i: i.order)

    async def process(self, graph: MetagraphSnapshot) -> RoundReport:
        report = RoundReport(block=graph.block)
        items = await self.work_items(graph)
        if items:
            logger.info("round at block {}: {} new commitments", graph.block, len(items))
        gate = asyncio.Semaphore(self.concurrency)

        async def prepare(item: WorkItem, sample_size: int) -> Outcome:
            async with gate:
                return await self.pipeline.prepare(item, graph.block, sample_size)

        sizes = [self.pipeline.sample_size() for _ in items]
        tasks = [asyncio.create_task(prepare(i, n)) for i, n in zip(items, sizes, strict=True)]
        applied = 0
        try:
            for task in tasks:  # in ingest order, while later ones are still preparing
                outcome = await task
                if isinstance(outcome, Pending):
                    report.pending.append(outcome.item.commitment.manifest_sha256)
                    logger.bind(hotkey=outcome.item.hotkey[:10], uid=outcome.item.uid).info(
                        "waiting for upload ({}); later commitments wait too", outcome.reason
                    )
                    break
                await self._apply(outcome, report)
                applied += 1
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # Look-ups allotted to items not judged this round and not yet spent go back: a
            # miner that never uploads must not drain the budget for the miners behind it.
            for task, size in zip(tasks[applied:], sizes[applied:], strict=True):
                spent = task.done() and not task.cancelled() and not task.exception()
                if not (spent and getattr(task.result(), "sampled", False)):
                    self.pipeline.refund(size)
        return report

    async def _apply(self, outcome: Prepared | Rejected, report: RoundReport) -> None:
        item = outcome.item
        log = logger.bind(
            hotkey=item.hotkey[:10], uid=item.uid, manifest=item.commitment.manifest_sha256[:12]
        )
        if isinstance(outcome, Rejected):
            judgements = [
                Judgement(sha, False, outcome.reason, item.block, counts=not outcome.blameless)
                for sha in outcome.manifest_sha256s
            ]
            await self.state.judge(item.hotkey, judgements)
            report.rejected[item.commitment.manifest_sha256] = outcome.reason
            log.warning("manifest rejected: {}", outcome.reason)
            return
        period = self.scoring.period_of(item.block)
        new = 0
        for shard_sha, ids in outcome.shard_ids:
            result = await self.index.ingest(ids, item.hotkey, f"{shard_sha}:{item.hotkey}", period)
            new += result.new
        judgements = [
            Judgement(m.sha256, True, "; ".join(outcome.notes), item.block)
            for m in outcome.manifests
        ]
        await self.state.judge(item.hotkey, judgements)
        report.accepted.append(item.commitment.manifest_sha256)
        report.new_unique += new
        log.info(
            "manifest accepted: {} rows, {} new unique{}",
            outcome.rows,
            new,
            f" ({'; '.join(outcome.notes)})" if outcome.notes else "",
        )

    async def scores(self, graph: MetagraphSnapshot) -> list[MinerScore]:
        neurons = [(n.uid, n.hotkey, n.registered_block) for n in graph.neurons]
        return score_miners(
            neurons,
            await self.index.credits(),
            await self.state.credibility(),
            graph.block,
            self.scoring,
        )

    async def set_weights(self, scores: Iterable[MinerScore], version_key: int) -> ChainVerdict:
        weights = {s.uid: s.weight for s in scores if s.weight > 0}
        if not weights:
            return ChainVerdict(False, "no miner has a positive score yet", "nothing_to_set")
        verdict = await self.chain.set_weights(weights, version_key)
        if verdict.ok:
            logger.info("weights set at block {} for {} uids", verdict.block, len(weights))
        else:
            logger.warning("weights not set: {}", verdict.message)
        return verdict
