"""The validator's durable memory, kept in the same Redis as the index.

Everything here is derived from the chain and the miners' hosts, so a validator that loses
it replays history and rebuilds the same thing. Per hotkey:

- a *cursor*: the newest commitment block already read from chain history;
- the *committed* manifests: manifest hash -> the earliest block a commitment named it,
  so a parent walk stops where an earlier commitment of the same hotkey takes over;
- the *judged* manifests: hash -> judgement, so a parent walk stops at known ground;
- the *verdicts*: commit block -> verdict of that commitment, from which, with the audit
  verdicts, credibility is computed over the scoring window: one outcome per miner-period
  (`window_credibility`), so every validator computes the same credibility;
- the *audits*: period -> what X said about the miner's sample, and the credibility
  verdict that audit gave; while an audit waits on tweets X is silent about, those
  tweets with the blocks they were first and last asked at, and what X answered about
  the rest of the sample (silence.py).

And one *queue* of commitments read but not yet judged, in global (block, hotkey) order.
Every write is one MULTI transaction on keys sharing one hash tag (one cluster slot), and
idempotent: a restart that repeats a write changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import redis.asyncio as aioredis
from loguru import logger

from d3.chain.interface import CommitmentRecord
from d3.validator.audit import AuditResult, CandidateSet, table_from_bytes
from d3.validator.scoring import CREDIBILITY_ALPHA, INITIAL_CREDIBILITY, update_credibility
from d3.validator.silence import KeptAnswers, Silence

# Bumped when the layout changes; a validator that finds another version rebuilds from chain.
STATE_VERSION = "2"
_SEP = "|"  # queue members: "<block, 12 digits>|<hotkey>|<data>"; ss58 has no '|'


@dataclass(frozen=True)
class Judgement:
    """The outcome for one manifest (a commitment's own, or one reached through `parent`)."""

    manifest_sha256: str
    accepted: bool
    reason: str
    block: int  # the block of the commitment it is attributed to


@dataclass(frozen=True)
class Verdict:
    """The outcome for one commitment. A rejection with `counts` False is neutral for
    credibility (the validator's own failure, an undecodable text, a manifest judged
    before); an acceptance with `counts` False passed the structural checks while audits
    run, so its period's credibility outcome waits for the audit (`period_outcomes`)."""

    block: int
    accepted: bool
    reason: str
    counts: bool = True
    manifest_sha256: str = ""
    new_unique: int = 0

    def to_json(self) -> str:
        return json.dumps(
            {
                "accepted": self.accepted,
                "reason": self.reason,
                "counts": self.counts,
                "manifest": self.manifest_sha256,
                "new": self.new_unique,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, block: int, raw: bytes | str) -> Verdict:
        # Releases before one outcome per audited period wrote a "weight" (the commitments
        # an audit touched) that credibility repeated the outcome for; it is ignored, so
        # state written then reads exactly as a fresh validator would write it now.
        doc = json.loads(raw)
        return cls(
            block, doc["accepted"], doc["reason"], doc["counts"], doc["manifest"], doc["new"]
        )


def queue_member(record: CommitmentRecord) -> str:
    return f"{record.block:012d}{_SEP}{record.hotkey}{_SEP}{record.data}"


def parse_queue_member(member: bytes | str) -> CommitmentRecord:
    text = member.decode() if isinstance(member, bytes) else member
    block, hotkey, data = text.split(_SEP, 2)
    return CommitmentRecord(hotkey=hotkey, block=int(block), data=data, uid=None)


def period_outcomes(
    verdicts: Iterable[Verdict], audits: Mapping[int, Verdict], period_blocks: int
) -> dict[int, float]:
    """Period -> the miner's one credibility outcome for it, in [0, 1], in period order.

    A commitment belongs to the period of its block, an audit verdict to the period it
    audited. A failed audit makes the period 0. Otherwise the outcome is the share of the
    period's commitments judged on their merits that were accepted: accepted ones, and
    rejections the miner is to blame for; neutral verdicts (the validator's own failure,
    text that is no commitment, a manifest judged before) are left out. An acceptance
    that earned nothing (copies of indexed tweets, retweets, stale rows) counts as
    accepted: an honest miner whose scrapes others committed first did nothing wrong. A passed audit
    with no such commitment is 1. So an outage, however many commitments it hits, costs a
    share of one period, whatever the commit cadence, and never more than a failed audit.

    While audits run, an accepted commitment is no evidence on its own (`counts` False):
    a period with credit that its audit has not judged yet waits for it, so a failed audit
    is not washed out by the periods after it before they are audited. Integer counts,
    then one division per period: every validator gets the same floats whatever order it
    read the verdicts in.
    """
    accepted: dict[int, int] = {}
    judged: dict[int, int] = {}
    awaiting: set[int] = set()  # periods with credit an audit is still to judge
    for verdict in verdicts:
        if verdict.accepted or verdict.counts:
            period = verdict.block // period_blocks
            judged[period] = judged.get(period, 0) + 1
            accepted[period] = accepted.get(period, 0) + verdict.accepted
            if verdict.accepted and not verdict.counts and verdict.new_unique > 0:
                awaiting.add(period)
    out: dict[int, float] = {}
    for period in sorted(judged.keys() | audits.keys()):
        audit = audits.get(period)
        outcome = period_outcome(
            accepted.get(period, 0),
            judged.get(period, 0),
            None if audit is None else audit.accepted,
            period in awaiting,
        )
        if outcome is not None:
            out[period] = outcome
    return out


def period_outcome(accepted: int, judged: int, passed: bool | None, awaiting: bool) -> float | None:
    """One miner-period's outcome (`period_outcomes`) from its counts: `accepted` of
    `judged` commitments, `passed` its audit's verdict (None: not audited), `awaiting`
    whether it has credit an audit is still to judge. None: nothing counts (yet)."""
    if passed is None and (awaiting or not judged):
        return None
    if passed is False:
        return 0.0
    return accepted / judged if judged else 1.0


def window_credibility(
    verdicts: Iterable[Verdict],
    audits: Mapping[int, Verdict],
    period_blocks: int,
    alpha: float = CREDIBILITY_ALPHA,
) -> float:
    """The credibility EMA over the miner-periods of `verdicts` (its commitments') and
    `audits` (audited period -> its verdict), in period order, from INITIAL_CREDIBILITY:
    one step per period (`period_outcomes`). The caller picks the window's verdicts."""
    return _ema(period_outcomes(verdicts, audits, period_blocks).values(), alpha)


def _ema(outcomes: Iterable[float], alpha: float) -> float:
    cred = INITIAL_CREDIBILITY
    for outcome in outcomes:
        cred = update_credibility(cred, outcome, alpha)
    return cred


class ValidatorState:
    def __init__(self, redis: aioredis.Redis, prefix: str = "d3"):
        self.redis = redis
        self.prefix = prefix
        # One hash tag: all state lives in one cluster slot and updates atomically.
        self._base = f"{prefix}:{{state}}"

    def _key(self, *parts: str) -> str:
        return ":".join((self._base, *parts))

    # -- chain history ---------------------------------------------------------------

    async def cursors(self) -> dict[str, int]:
        raw = await self.redis.hgetall(self._key("cursor"))
        return {_text(k): int(v) for k, v in raw.items()}

    async def enqueue(
        self, records: list[CommitmentRecord], manifests: Mapping[tuple[str, int], str]
    ) -> None:
        """Queue commitments read from history and move the hotkeys' cursors past them.

        `manifests` maps (hotkey, block) to the manifest a decodable commitment names. One
        transaction: a crash leaves either all of it or none, so nothing is read twice or
        lost.
        """
        if not records:
            return
        cursors: dict[str, int] = {}
        async with self.redis.pipeline(transaction=True) as tx:
            tx.zadd(self._key("queue"), {queue_member(r): r.block for r in records})
            for record in sorted(records, key=lambda r: r.block):
                cursors[record.hotkey] = max(cursors.get(record.hotkey, 0), record.block)
                sha = manifests.get((record.hotkey, record.block))
                if sha is not None:  # the earliest commitment naming it wins
                    tx.hsetnx(self._key("committed", record.hotkey), sha, record.block)
            tx.hset(self._key("cursor"), mapping={h: str(b) for h, b in cursors.items()})
            tx.sadd(self._key("hotkeys"), *cursors)
            await tx.execute()

    async def queue_head(self, limit: int) -> list[CommitmentRecord]:
        """The oldest unjudged commitments in (block, hotkey) order."""
        members = await self.redis.zrange(self._key("queue"), 0, limit - 1)
        return [parse_queue_member(m) for m in members]

    async def queue_size(self) -> int:
        return int(await self.redis.zcard(self._key("queue")))

    async def committed_block(self, hotkey: str, manifest_sha256: str) -> int | None:
        raw = await self.redis.hget(self._key("committed", hotkey), manifest_sha256)
        return int(raw) if raw is not None else None

    # -- judgements ------------------------------------------------------------------

    async def judgement(self, hotkey: str, manifest_sha256: str) -> Judgement | None:
        raw = await self.redis.hget(self._key("judged", hotkey), manifest_sha256)
        if raw is None:
            return None
        doc = json.loads(raw)
        return Judgement(manifest_sha256, doc["accepted"], doc["reason"], doc["block"])

    async def judge(
        self,
        record: CommitmentRecord,
        judgements: list[Judgement],
        verdict: Verdict | None,
        audit: tuple[int, int, bytes | None, str] | None = None,
    ) -> None:
        """Record manifest judgements and, with `verdict`, the commitment's own outcome,
        which also takes it off the queue. `verdict` None: the commitment is only partly
        done (a long unjudged ancestry taken oldest-first) and stays at the queue's head."""
        hotkey = record.hotkey
        async with self.redis.pipeline(transaction=True) as tx:
            for judgement in judgements:
                doc = {
                    "accepted": judgement.accepted,
                    "reason": judgement.reason,
                    "block": judgement.block,
                }
                tx.hsetnx(self._key("judged", hotkey), judgement.manifest_sha256, json.dumps(doc))
            if verdict is not None:
                tx.hset(self._key("verdicts", hotkey), str(verdict.block), verdict.to_json())
                tx.sadd(self._key("hotkeys"), hotkey)
                tx.zrem(self._key("queue"), queue_member(record))
            if audit is not None and audit[1] > 0:
                period, new, rows, part = audit
                field = f"{period}:{record.block}:{part}"
                tx.hset(self._key("candn", hotkey), field, new)
                if rows is not None:
                    tx.hset(self._key("cand", hotkey), field, rows)
                tx.sadd(self._key("audit_periods"), period)
            await tx.execute()

    # -- audits ------------------------------------------------------------------------

    async def audit_periods(self) -> list[int]:
        """Periods with credit whose audit is not finished, oldest first."""
        return sorted(int(p) for p in await self.redis.smembers(self._key("audit_periods")))

    async def candidates(self, hotkey: str, period: int) -> list[CandidateSet]:
        """Every application with credit in `period`, with its candidates (None: none)."""
        news = {
            _text(f): int(n)
            for f, n in (await self.redis.hgetall(self._key("candn", hotkey))).items()
        }
        fields = sorted(f for f in news if f.split(":")[0] == str(period))
        rows = await self.redis.hmget(self._key("cand", hotkey), fields) if fields else []
        out = []
        for name, data in zip(fields, rows, strict=True):
            _, block, part = name.split(":", 2)
            table = table_from_bytes(data) if data is not None else None
            out.append(CandidateSet(int(block), news[name], table, part))
        return out

    async def record_audit(
        self,
        hotkey: str,
        period: int,
        result: AuditResult,
        verdict: Verdict,
        hold: tuple[Silence, KeptAnswers] | None = None,
    ) -> None:
        """One miner's audit for one period and its credibility verdict, in one go; with
        `hold`, a provisional one, and the silent picks to ask X about again."""
        doc = json.dumps(
            {
                "checked": result.checked,
                "found": result.found,
                "distinct": result.distinct,
                "altered": result.altered,
                "reason": result.reason,
            }
        )
        async with self.redis.pipeline(transaction=True) as tx:
            tx.hset(self._key("audits", hotkey), str(period), doc)
            tx.hset(self._key("averdicts", hotkey), str(period), verdict.to_json())
            tx.hset(self._key("averdict_blocks", hotkey), str(period), verdict.block)
            if hold is None:
                tx.hdel(self._key("silence"), f"{hotkey}:{period}")
                tx.hdel(self._key("kept"), f"{hotkey}:{period}")
            else:
                tx.hset(self._key("silence"), f"{hotkey}:{period}", hold[0].to_json())
                tx.hset(self._key("kept"), f"{hotkey}:{period}", hold[1].to_json())
            await tx.execute()

    async def holds(self, period: int) -> dict[str, tuple[Silence, KeptAnswers]]:
        """hotkey -> its silent picks of `period` and what X answered about the rest."""
        raw = await self.redis.hgetall(self._key("silence"))
        suffix = f":{period}"
        held = {_text(f)[: -len(suffix)]: v for f, v in raw.items() if _text(f).endswith(suffix)}
        if not held:
            return {}
        fields = [f"{h}{suffix}" for h in sorted(held)]
        kept = await self.redis.hmget(self._key("kept"), fields)
        return {
            hotkey: (Silence.from_json(held[hotkey]), KeptAnswers.from_json(answers))
            for hotkey, answers in zip(sorted(held), kept, strict=True)
        }

    async def mark_ready(self, period: int) -> None:
        """Every miner of `period` is audited, some provisionally (silent picks X is to be
        asked about again): the period counts (`ready_periods`), and stays open."""
        await self.redis.sadd(self._key("audit_ready"), period)

    async def ready_periods(self) -> set[int]:
        return {int(p) for p in await self.redis.smembers(self._key("audit_ready"))}

    async def audits(self) -> dict[str, dict[int, AuditResult]]:
        hotkeys = sorted(_text(h) for h in await self.redis.smembers(self._key("hotkeys")))
        async with self.redis.pipeline(transaction=False) as pipe:
            for hotkey in hotkeys:
                pipe.hgetall(self._key("audits", hotkey))
            ledgers = await pipe.execute()
        out: dict[str, dict[int, AuditResult]] = {}
        for hotkey, ledger in zip(hotkeys, ledgers, strict=True):
            for period, raw in ledger.items():
                out.setdefault(hotkey, {})[int(period)] = _audit_result(raw)
        return out

    async def audits_of(self, hotkey: str) -> dict[int, tuple[AuditResult, Verdict | None]]:
        """One miner's audits by period, each with the verdict it gave (for its page)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._key("audits", hotkey))
            pipe.hgetall(self._key("averdicts", hotkey))
            pipe.hgetall(self._key("averdict_blocks", hotkey))
            results, verdicts, blocks = await pipe.execute()
        out = {}
        for period, raw in results.items():
            verdict = verdicts.get(period)
            out[int(period)] = (
                _audit_result(raw),
                None if verdict is None else Verdict.from_json(int(blocks[period]), verdict),
            )
        return out

    async def close_audit_period(self, period: int) -> None:
        """Every miner of `period` is audited: drop its candidates."""
        hotkeys = [_text(h) for h in await self.redis.smembers(self._key("hotkeys"))]
        prefix = f"{period}:"
        for hotkey in hotkeys:
            for kind in ("cand", "candn"):
                key = self._key(kind, hotkey)
                fields = [f for f in await self.redis.hkeys(key) if _text(f).startswith(prefix)]
                if fields:
                    await self.redis.hdel(key, *fields)
            await self.redis.hdel(self._key("silence"), f"{hotkey}:{period}")
            await self.redis.hdel(self._key("kept"), f"{hotkey}:{period}")
        await self.redis.srem(self._key("audit_ready"), period)
        await self.redis.srem(self._key("audit_periods"), period)

    async def verdicts(self, hotkey: str) -> list[Verdict]:
        raw = await self.redis.hgetall(self._key("verdicts", hotkey))
        return sorted((Verdict.from_json(int(k), v) for k, v in raw.items()), key=lambda v: v.block)

    async def credibility(
        self, period_blocks: int, since_block: int = 0, alpha: float = CREDIBILITY_ALPHA
    ) -> dict[str, float]:
        """hotkey -> credibility over its verdicts from `since_block` on (the window's first
        block), one outcome per miner-period (`window_credibility`)."""
        hotkeys = sorted(_text(h) for h in await self.redis.smembers(self._key("hotkeys")))
        async with self.redis.pipeline(transaction=False) as pipe:
            for hotkey in hotkeys:
                pipe.hgetall(self._key("verdicts", hotkey))
                pipe.hgetall(self._key("averdicts", hotkey))
                pipe.hgetall(self._key("averdict_blocks", hotkey))
            raw = await pipe.execute()
        out = {}
        for i, hotkey in enumerate(hotkeys):
            ledger, audited, blocks = raw[3 * i], raw[3 * i + 1], raw[3 * i + 2]
            verdicts = [Verdict.from_json(int(k), v) for k, v in ledger.items()]
            verdicts = [v for v in verdicts if v.block >= since_block]
            audits = {int(p): Verdict.from_json(int(blocks[p]), v) for p, v in audited.items()}
            audits = {p: v for p, v in audits.items() if v.block >= since_block}
            outcomes = period_outcomes(verdicts, audits, period_blocks)
            if outcomes:  # the rest stand at INITIAL_CREDIBILITY
                out[hotkey] = _ema(outcomes.values(), alpha)
        return out

    async def forget_before(self, block: int) -> int:
        """Drop verdicts, judgements and committed entries older than `block` (the history
        horizon): nothing older can change credit or weights any more. Returns how many."""
        hotkeys = [_text(h) for h in await self.redis.smembers(self._key("hotkeys"))]
        dropped = 0
        for hotkey in hotkeys:
            for kind, block_of in (
                ("verdicts", lambda k, v: int(k)),
                ("judged", lambda k, v: json.loads(v)["block"]),
                ("committed", lambda k, v: int(v)),
            ):
                key = self._key(kind, hotkey)
                old = [
                    k for k, v in (await self.redis.hgetall(key)).items() if block_of(k, v) < block
                ]
                if old:
                    dropped += await self.redis.hdel(key, *old)
        stale = await self.redis.zrangebyscore(self._key("queue"), "-inf", f"({block}")
        if stale:
            dropped += await self.redis.zrem(self._key("queue"), *stale)
        return dropped

    # -- housekeeping ----------------------------------------------------------------

    async def ensure_version(self) -> bool:
        """A Redis written by another state layout is dropped (index included) and rebuilt
        from chain history: it is derived data, and mixing layouts would corrupt credit.
        True when it dropped something (a `TweetIndex`'s cache of it is then stale)."""
        found = await self.get_meta("version")
        if found == STATE_VERSION:
            return False
        keys = [k async for k in self.redis.scan_iter(match=f"{self.prefix}:*", count=1000)]
        if keys:
            logger.warning(
                "validator state in Redis has layout {} (this release: {}): dropping {} keys "
                "and rebuilding from chain history",
                found or "1",
                STATE_VERSION,
                len(keys),
            )
            for start in range(0, len(keys), 500):
                for key in keys[start : start + 500]:
                    await self.redis.delete(key)  # one by one: keys span cluster slots
        await self.set_meta("version", STATE_VERSION)
        return bool(keys)

    async def get_meta(self, name: str) -> str | None:
        value = await self.redis.hget(self._key("meta"), name)
        return value.decode() if value else None

    async def set_meta(self, name: str, value: str) -> None:
        await self.redis.hset(self._key("meta"), name, value)


def _audit_result(raw: bytes | str) -> AuditResult:
    doc = json.loads(raw)
    return AuditResult(
        doc["checked"], doc["found"], doc["altered"], doc["reason"], doc.get("distinct", 0)
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
