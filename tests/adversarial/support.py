"""The arena for adversarial tests: a dev chain through the real SDK, a real redis-server,
miners that publish (honestly or not) and a validator round, plus the instruments the
assertions need: captured logs and the round's peak memory."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import io
import json
import re
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bittensor as bt
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis.asyncio as aioredis

from d3 import PROTOCOL_VERSION
from d3.chain.sdk import SdkChain, commitment_info
from d3.commitment import Commitment, parse_locator
from d3.manifest import SIGNING_CONTEXT, Manifest, build_manifest
from d3.shards import EncodedShard, encode_shard, sha256_hex
from d3.validator.audit import AuditParams
from d3.validator.fetcher import Fetcher, FetchLimits
from d3.validator.index import TweetIndex
from d3.validator.pipeline import ManifestPipeline, PipelineLimits
from d3.validator.rounds import RoundReport, RoundRunner
from d3.validator.scoring import ScoringParams
from d3.validator.state import ValidatorState
from d3.validator.verifier import LookupBudget
from tests.support.net import NETUID, Net

# The local X corpus ends here: fixed, so it is the same on every run, and in the past, so
# no tweet is "from the future".
CORPUS_END = datetime(2026, 1, 20, tzinfo=UTC)
# Look-ups per miner: larger than the unaltered part of every attacker's data set, so a
# sample always hits an altered or fabricated row whatever the (random-signature) seed.
SAMPLE = 50
AUDIT = AuditParams(  # ranked by the block after the commit: see tests/support/runner.py
    lookups_per_period=2 * SAMPLE,
    min_per_miner=SAMPLE,
    candidates_per_commitment=SAMPLE,
    rank_delay_blocks=1,
)
SCORING = ScoringParams(period_blocks=1000, window_periods=7, decay=0.5)


# -- publishing ---------------------------------------------------------------------------


@dataclass
class Published:
    manifest_sha256: str
    manifest_bytes: bytes
    commitment: str
    shards: list[EncodedShard]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)


def raw_shard(data: bytes, rows: int, min_id: int, max_id: int) -> EncodedShard:
    """A shard as an attacker wrote it: any bytes, any claims."""
    return EncodedShard(sha256_hex(data), data, rows, min_id, max_id)


def parquet_shard(table: pa.Table, **write_options: Any) -> EncodedShard:
    """`table` written by hand (not through encode_shard), with its true row count and the
    first/last IDs, the way verify_shard reads them."""
    sink = io.BytesIO()
    pq.write_table(table, sink, **write_options)
    ids = table.column("id").to_pylist()
    low, high = int(ids[0]), int(ids[-1])
    return raw_shard(sink.getvalue(), table.num_rows, low, high)


def locator_of(directory: Path) -> str:
    return f"file://{directory}"


def commitment_text(manifest_sha256: str, locator: str) -> str:
    return Commitment(manifest_sha256, parse_locator(locator)).encode()


def write_published(
    directory: Path,
    signer,
    shards: list[EncodedShard],
    parent: str | None = None,
    locator: str | None = None,
    upload: bool = True,
) -> Published:
    """Sign a manifest of `shards` and (unless `upload` is False) write it and the shards."""
    manifest: Manifest = build_manifest(
        signer, NETUID, shards, parent, created_at=datetime.now(UTC)
    )
    data = manifest.to_bytes()
    if upload:
        directory.mkdir(parents=True, exist_ok=True)
        for shard in shards:
            (directory / shard.name).write_bytes(shard.data)
        (directory / manifest.name).write_bytes(data)
    text = commitment_text(manifest.sha256, locator or locator_of(directory))
    return Published(manifest.sha256, data, text, shards)


def canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def forged_manifest(signer, shard_refs: list[dict], parent: str | None = None) -> bytes:
    """Canonical, correctly signed manifest bytes that skip the model's own limits (the
    miner-side code would refuse to build them; an attacker writes JSON by hand)."""
    body = {
        "version": PROTOCOL_VERSION,
        "netuid": NETUID,
        "hotkey": signer.ss58_address,
        "parent": parent,
        "created_at": int(time.time() * 1000),
        "shards": shard_refs,
    }
    signature = bytes(signer.sign(SIGNING_CONTEXT + canonical(body))).hex()
    return canonical({"body": body, "signature": signature})


def tiny_refs(count: int) -> list[dict]:
    """`count` distinct one-row shard entries (the shards themselves need not exist)."""
    refs = []
    for i in range(count):
        tweet_id = 2_000_000_000_000_000_000 + i
        refs.append(
            {
                "bytes": 3000,
                "max_id": tweet_id,
                "min_id": tweet_id,
                "rows": 1,
                "sha256": sha256_hex(i.to_bytes(8, "big")),
            }
        )
    return refs


def with_column(table: pa.Table, name: str, values: list | pa.Array) -> pa.Table:
    """Replace a column, keeping the record schema's field (type and nullability)."""
    index = table.schema.get_field_index(name)
    return table.set_column(index, table.schema.field(name), pa.array(values, table[name].type))


# -- the arena ------------------------------------------------------------------------------


@dataclass
class Arena:
    net: Net
    client: Any
    chains: dict[str, SdkChain]
    _closers: list = field(default_factory=list)

    @classmethod
    async def open(cls, client, net: Net, miners: list[str]) -> Arena:
        chains = {}
        for name in ["validator", *miners]:
            chain = await net.chain(client, name)
            verdict = await chain.register()
            assert verdict.ok, verdict.message
            chains[name] = chain
        net.dev.set_stake(chains["validator"].hotkey, 10**12)
        return cls(net, client, chains)

    def hotkey(self, name: str) -> str:
        return self.chains[name].hotkey

    def signer(self, name: str):
        return self.net.wallet(name).hotkey

    def dir(self, name: str) -> Path:
        return self.net.data_dir / name

    async def commit(self, name: str, text: str) -> None:
        verdict = await self.chains[name].commit(text)
        assert verdict.ok, verdict.message

    async def commit_raw(self, name: str, data: bytes) -> None:
        """Commit bytes as they are (SdkChain.commit only takes text)."""
        chain = self.chains[name]
        call = bt.calls.Commitments.set_commitment(netuid=NETUID, info=commitment_info(data))
        result = await self.client.submit_call(call, chain.wallet, signer="hotkey")
        assert result.success, result.message

    async def publish(
        self, name: str, tables: list[pa.Table], commit: bool = True, **kwargs
    ) -> Published:
        """An honest miner: encode, sign, upload to its directory, commit."""
        shards = [encode_shard(t) for t in tables]
        return await self.publish_shards(name, shards, commit=commit, **kwargs)

    async def publish_shards(
        self, name: str, shards: list[EncodedShard], commit: bool = True, **kwargs
    ) -> Published:
        published = write_published(self.dir(name), self.signer(name), shards, **kwargs)
        if commit:
            await self.commit(name, published.commitment)
        return published

    def runner(
        self,
        redis_url: str,
        lookup=None,
        limits: PipelineLimits | None = None,
        fetch: FetchLimits | None = None,
        budget: LookupBudget | None = None,
    ) -> RoundRunner:
        redis = aioredis.Redis.from_url(redis_url)
        fetcher = Fetcher(
            fetch or FetchLimits(deadline_s=10, retries=0), allow_file=True, allow_private=True
        )
        self._closers += [redis.aclose, fetcher.close]
        if lookup is not None and budget is None:
            budget = LookupBudget(10**9)
        state = ValidatorState(redis)
        pipeline = ManifestPipeline(
            fetcher,
            state,
            NETUID,
            self.chains["validator"].block_hash,
            lambda: datetime.now(UTC),
            audit=AUDIT if lookup is not None else None,
            limits=limits or PipelineLimits(grace_blocks=5),
        )
        return RoundRunner(
            self.chains["validator"],
            TweetIndex(redis),
            state,
            pipeline,
            SCORING,
            lookup=lookup,
            budget=budget,
        )

    async def graph(self):
        return await self.chains["validator"].metagraph()

    async def audit(self, runner: RoundRunner) -> tuple[RoundReport, float]:
        """Close the current period (advance to the block that seeds its audit) and run
        the round that audits it."""
        head = await self.chains["validator"].block()
        end = (SCORING.period_of(head) + 1) * SCORING.period_blocks - 1
        seed_block = end + runner.pipeline.limits.grace_blocks + AUDIT.delay_blocks
        if head < seed_block:
            self.net.dev.advance(seed_block - head)
        return await self.round(runner)

    async def round(self, runner: RoundRunner) -> tuple[RoundReport, float]:
        """One validator round now; also its wall time in seconds."""
        graph = await self.chains["validator"].metagraph()
        start = time.monotonic()
        report = await runner.process(graph)
        return report, time.monotonic() - start

    async def credited(self, runner: RoundRunner) -> dict[str, int]:
        """miner name -> new unique tweets credited to it in the index."""
        credits = await runner.index.credits()
        return {
            name: sum(credits.get(chain.hotkey, {}).values())
            for name, chain in self.chains.items()
            if name != "validator"
        }

    async def close(self) -> None:
        for close in self._closers:
            await close()


# -- instruments ------------------------------------------------------------------------------


@dataclass
class LogBook:
    records: list[dict] = field(default_factory=list)

    def of(self, hotkey: str) -> list[str]:
        """Messages bound to a hotkey (the validator binds its first 10 characters)."""
        return [r["message"] for r in self.records if r["extra"].get("hotkey") == hotkey[:10]]

    def text(self, hotkey: str) -> str:
        return "\n".join(self.of(hotkey))


def _status_kb(name: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{name}:\s+(\d+) kB", text, re.MULTILINE)
    assert match, name
    return int(match.group(1))


@dataclass
class Memory:
    rss_growth: int = 0  # bytes: peak resident set above where it started (Arrow included)
    python_peak: int | None = None  # bytes: tracemalloc's peak, when traced


@contextlib.contextmanager
def peak_memory(trace_python: bool = False) -> Iterator[Memory]:
    """Peak memory of the enclosed code: the whole process's resident set, whose high-water
    mark Linux resets on `clear_refs` 5 (it sees Arrow's allocations, which tracemalloc
    cannot), and optionally tracemalloc's peak of Python allocations (precise, but it
    makes the round several times slower)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pytest.skip("needs Linux /proc/self/clear_refs to measure peak RSS")
    gc.collect()
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # glibc keeps freed heap resident
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    measured = Memory()
    Path("/proc/self/clear_refs").write_text("5")
    start_kb = _status_kb("VmRSS")
    if trace_python:
        tracemalloc.start()
    try:
        yield measured
    finally:
        if trace_python:
            measured.python_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        measured.rss_growth = (_status_kb("VmHWM") - start_kb) * 1024


MB = 1024 * 1024
