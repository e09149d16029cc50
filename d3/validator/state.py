"""The validator's durable memory, kept in the same Redis as the index.

Per hotkey: the newest manifest it has judged (its chain head as far as this validator is
concerned), a bounded history of judged manifests (so a parent walk stops at known
ground), and its credibility. Judging a manifest is one transaction and idempotent: a
restart that judges the same manifest again changes nothing, so credibility can never be
applied twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis.asyncio as aioredis

from d3.validator.scoring import CREDIBILITY_ALPHA, INITIAL_CREDIBILITY, update_credibility

# How many judged manifests to remember per hotkey: deeper parent walks are cut off anyway.
JUDGED_HISTORY = 256


@dataclass(frozen=True)
class Judgement:
    manifest_sha256: str
    accepted: bool
    reason: str
    block: int
    counts: bool = True  # False: judged, but not held against the miner's credibility


# Compare-and-set of one hotkey's judgements. KEYS: judged hash, order list, credibility
# hash, head hash. ARGV: hotkey, credibility read ("" if none), new credibility, new head,
# then (manifest sha, judgement json) pairs that were absent when read.
_JUDGE = """
local current = redis.call('HGET', KEYS[3], ARGV[1]) or ''
if current ~= ARGV[2] then return 0 end
for i = 5, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then return 0 end
end
for i = 5, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('RPUSH', KEYS[2], ARGV[i])
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[4], ARGV[1], ARGV[4]) end
return 1
"""


class ValidatorState:
    def __init__(self, redis: aioredis.Redis, prefix: str = "d3"):
        self.redis = redis
        # One hash tag: all state lives in one cluster slot and updates atomically.
        self._base = f"{prefix}:{{state}}"
        self._judge = redis.register_script(_JUDGE)

    def _key(self, *parts: str) -> str:
        return ":".join((self._base, *parts))

    async def head(self, hotkey: str) -> str | None:
        value = await self.redis.hget(self._key("head"), hotkey)
        return value.decode() if value else None

    async def judgement(self, hotkey: str, manifest_sha256: str) -> Judgement | None:
        raw = await self.redis.hget(self._key("judged", hotkey), manifest_sha256)
        if raw is None:
            return None
        doc = json.loads(raw)
        return Judgement(manifest_sha256, doc["accepted"], doc["reason"], doc["block"])

    async def credibility(self) -> dict[str, float]:
        raw = await self.redis.hgetall(self._key("credibility"))
        return {k.decode(): float(v) for k, v in raw.items()}

    async def judge(
        self, hotkey: str, judgements: list[Judgement], alpha: float = CREDIBILITY_ALPHA
    ) -> None:
        """Record judgements (oldest first) and move the hotkey's head to the last one.

        Each judgement not already recorded updates credibility once (verified or not);
        judgements already recorded are skipped, so repeating the call is harmless. The
        update is computed here and applied by a compare-and-set script, which refuses it
        if credibility changed or a judgement landed meanwhile (then we recompute).
        """
        judged_key, order_key = self._key("judged", hotkey), self._key("order", hotkey)
        cred_key, head_key = self._key("credibility"), self._key("head")
        shas = [j.manifest_sha256 for j in judgements]
        for _ in range(16):
            known = await self.redis.hmget(judged_key, shas) if shas else []
            raw = await self.redis.hget(cred_key, hotkey)
            cred = float(raw) if raw is not None else INITIAL_CREDIBILITY
            fresh: list[str] = []
            for judgement, seen in zip(judgements, known, strict=True):
                if seen is None:
                    if judgement.counts:
                        cred = update_credibility(cred, judgement.accepted, alpha)
                    doc = {
                        "accepted": judgement.accepted,
                        "reason": judgement.reason,
                        "block": judgement.block,
                    }
                    fresh += [judgement.manifest_sha256, json.dumps(doc)]
            head = shas[-1] if shas else ""
            done = await self._judge(
                keys=[judged_key, order_key, cred_key, head_key],
                args=[hotkey, raw if raw is not None else "", repr(cred), head, *fresh],
            )
            if done:
                await self._trim(hotkey)
                return
        raise RuntimeError(f"validator state for {hotkey} kept changing during judge()")

    async def _trim(self, hotkey: str) -> None:
        """Forget the oldest judgements beyond JUDGED_HISTORY (best effort, idempotent)."""
        order_key = self._key("order", hotkey)
        excess = await self.redis.llen(order_key) - JUDGED_HISTORY
        if excess > 0:
            old = await self.redis.lrange(order_key, 0, excess - 1)
            await self.redis.hdel(self._key("judged", hotkey), *old)
            await self.redis.ltrim(order_key, excess, -1)

    async def get_meta(self, name: str) -> str | None:
        value = await self.redis.hget(self._key("meta"), name)
        return value.decode() if value else None

    async def set_meta(self, name: str, value: str) -> None:
        await self.redis.hset(self._key("meta"), name, value)
