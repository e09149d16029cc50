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
from redis.exceptions import WatchError

from d3.validator.scoring import CREDIBILITY_ALPHA, INITIAL_CREDIBILITY, update_credibility

# How many judged manifests to remember per hotkey: deeper parent walks are cut off anyway.
JUDGED_HISTORY = 256


@dataclass(frozen=True)
class Judgement:
    manifest_sha256: str
    accepted: bool
    reason: str
    block: int


class ValidatorState:
    def __init__(self, redis: aioredis.Redis, prefix: str = "d3"):
        self.redis = redis
        # One hash tag: all state lives in one cluster slot and updates atomically.
        self._base = f"{prefix}:{{state}}"

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
        judgements already recorded are skipped, so repeating the call is harmless.
        """
        judged_key = self._key("judged", hotkey)
        order_key = self._key("order", hotkey)
        cred_key = self._key("credibility")
        for _ in range(16):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(judged_key, cred_key)
                    known = await pipe.hmget(judged_key, [j.manifest_sha256 for j in judgements])
                    raw = await pipe.hget(cred_key, hotkey)
                    cred = float(raw) if raw is not None else INITIAL_CREDIBILITY
                    pipe.multi()
                    for judgement, seen in zip(judgements, known, strict=True):
                        if seen is not None:
                            continue
                        cred = update_credibility(cred, judgement.accepted, alpha)
                        doc = {
                            "accepted": judgement.accepted,
                            "reason": judgement.reason,
                            "block": judgement.block,
                        }
                        pipe.hset(judged_key, judgement.manifest_sha256, json.dumps(doc))
                        pipe.rpush(order_key, judgement.manifest_sha256)
                    pipe.hset(cred_key, hotkey, repr(cred))
                    if judgements:
                        pipe.hset(self._key("head"), hotkey, judgements[-1].manifest_sha256)
                    await pipe.execute()
                    break
                except WatchError:
                    continue
        else:
            raise RuntimeError(f"validator state for {hotkey} kept changing during judge()")
        await self._trim(hotkey)

    async def _trim(self, hotkey: str) -> None:
        order_key = self._key("order", hotkey)
        excess = await self.redis.llen(order_key) - JUDGED_HISTORY
        if excess > 0:
            old = await self.redis.lrange(order_key, 0, excess - 1)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hdel(self._key("judged", hotkey), *old)
                pipe.ltrim(order_key, excess, -1)
                await pipe.execute()

    async def get_meta(self, name: str) -> str | None:
        value = await self.redis.hget(self._key("meta"), name)
        return value.decode() if value else None

    async def set_meta(self, name: str, value: str) -> None:
        await self.redis.hset(self._key("meta"), name, value)
