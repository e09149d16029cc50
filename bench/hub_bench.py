"""The Dataset Hub at scale: a hub of `--rows` tweets built update by update, as a validator's
builder builds it, then exported by time range and by hashtag.

The validator is played by this script, through its real state and index on a local
redis-server: every commitment is accepted (its tweet IDs ingested into `TweetIndex`,
which credits the first committer), every miner-period gets a passing audit, and the hub
is updated once per credit period, after that period's audits. Everything the hub does
is its own code, unchanged: the decisions read from Redis, each commitment's manifest and
shard read back (`file://`) and pinned by hash, first committer wins in the SQLite
ledger, rows staged, each period published, each closed day compacted, the card, index
and signature rewritten. Fetching from real hosts is not in the figures (that is the
hosts' speed).

Rows: synthetic tweets (`d3/dev/synthetic.py`), a few base tables moved in time to fill
successive days. `--miners` miners (default 4) each commit `--commit-rows` tweets
(default 100,000) of each day, the first three in the period after it and the last a
period later, so a day's tweets arrive in two periods (two period files, merged when the
day closes). From the second miner on each commitment also repeats 5 % of the previous
miner's tweets of that day (copies: already claimed, never in the hub). Periods are
finney's (7,200 blocks of 12 s, FRESH_PERIODS 2), so a day closes three updates after it
ends.

Baselines, each in the same process as what it is held against, on the same rows:

- build: `pyarrow.parquet.write_table` of the hub's rows, a day at a time, zstd level 9
  (the hub's codec and level): writing the rows once, with nothing else;
- export: the same DuckDB query streamed into one Parquet file (zstd 9), without the
  hub's verification, per-day files, resume state, card and index.

Each phase runs in a fresh (spawned) process, so its peak RSS (`ru_maxrss`) is its own.

    python bench/hub_bench.py [--rows 10000000] [--commit-rows 100000] [--miners 4]
        [--work DIR] [--keep] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from d3.record import ARROW_SCHEMA, URL_PREFIX
from d3.snowflake import TWITTER_EPOCH_MS

NETUID = 1
BLOCK_MS = 12_000
DAY_MS = 86_400_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
LAG_MS = (3_600_000, 9 * 3_600_000, 17 * 3_600_000, 25 * 3_600_000)  # after the day, per miner
COPY_SHARE = 0.05
SEQUENCE_MASK = (1 << 22) - 1


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Resident memory now (Linux), to tell a high-water mark from growth."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


@dataclass(frozen=True)
class Planned:
    """One commitment of the run: who, when, what."""

    miner: int
    day: int  # days since T0 the tweets were created on
    block: int
    shard: str  # the shard file's path
    manifest: str  # its manifest's sha256
    locator: str
    rows: int
    copies: int


# -- the rows -------------------------------------------------------------------------------


def moved(base: pa.Table, day: int) -> pa.Table:
    """`base`'s tweets squeezed into day `day` after T0: times scaled into the day, ids
    re-minted at the new times (same sequence bits), URLs and conversation ids to match."""
    created = pc.cast(base["created_at"], pa.int64())
    offset = pc.subtract(created, T0_MS)
    span = pc.max(offset).as_py() + 1
    scaled = pc.cast(
        pc.floor(pc.multiply(pc.cast(offset, pa.float64()), DAY_MS / span)), pa.int64()
    )
    when = pc.add(scaled, T0_MS + day * DAY_MS)
    sequence = pc.bit_wise_and(base["id"], SEQUENCE_MASK)
    ids = pc.bit_wise_or(pc.shift_left(pc.subtract(when, TWITTER_EPOCH_MS), 22), sequence)
    stamp = pa.timestamp("ms", tz="UTC")
    columns = {
        "id": ids,
        "created_at": pc.cast(when, stamp),
        "conversation_id": ids,
        "url": pc.binary_join_element_wise(
            URL_PREFIX, base["author_username"], "/status/", pc.cast(ids, pa.string()), ""
        ),
        "scraped_at": pc.cast(pc.add(when, 300_000), stamp),
    }
    return pa.Table.from_arrays(
        [columns.get(name, base[name]) for name in ARROW_SCHEMA.names], schema=ARROW_SCHEMA
    )


def prepare(work: Path, rows: int, commit_rows: int, miners: int) -> list[Planned]:
    """Write every miner's manifests and shards under `work`/hosts; return the plan."""
    from bittensor.sp_core import Keypair

    from d3.commitment import Commitment, parse_locator
    from d3.dev.synthetic import synthetic_table
    from d3.manifest import build_manifest
    from d3.shards import encode_shard

    days = math.ceil(rows / (commit_rows * miners))
    bases = [synthetic_table(commit_rows, seed=s, start=T0) for s in range(miners + 3)]
    signers = [Keypair.create_from_uri(f"//BenchMiner{m}") for m in range(miners)]
    parents: list[str | None] = [None] * miners
    plan: list[Planned] = []
    left = rows
    for day in range(days):
        previous: pa.Table | None = None
        for m in range(miners):
            take = min(commit_rows, left)
            if take <= 0:
                break
            left -= take
            own = moved(bases[(m + day) % len(bases)], day).slice(0, take)
            copies = previous.slice(0, int(COPY_SHARE * previous.num_rows)) if previous else None
            table = pa.concat_tables([own, copies]) if copies is not None else own
            previous = own
            host = work / "hosts" / f"m{m}"
            host.mkdir(parents=True, exist_ok=True)
            shard = encode_shard(table)
            (host / shard.name).write_bytes(shard.data)
            manifest = build_manifest(signers[m], NETUID, [shard], parents[m], created_at=T0)
            (host / manifest.name).write_bytes(manifest.to_bytes())
            parents[m] = manifest.sha256
            committed_ms = (day + 1) * DAY_MS + LAG_MS[m % len(LAG_MS)] + m * BLOCK_MS
            locator = f"file://{host}"
            Commitment(manifest.sha256, parse_locator(locator)).encode()  # fits on chain
            plan.append(
                Planned(
                    m,
                    day,
                    committed_ms // BLOCK_MS,
                    str(host / shard.name),
                    manifest.sha256,
                    locator,
                    own.num_rows,
                    table.num_rows - own.num_rows,
                )
            )
    return sorted(plan, key=lambda p: (p.block, p.miner))


# -- the build ------------------------------------------------------------------------------


class BenchChain:
    """What the hub asks of the chain: commitments, block timestamps, the head."""

    def __init__(self) -> None:
        self.records: dict = {}
        self.head = 0

    async def commitment_of(self, hotkey: str, block: int):
        return self.records.get((hotkey, block))

    async def block_timestamp_ms(self, block: int) -> int:
        return T0_MS + block * BLOCK_MS

    async def block(self) -> int:
        return self.head


def timed(timers: dict[str, float], name: str, fn):
    if asyncio.iscoroutinefunction(fn):

        async def run_async(*args, **kwargs):
            start = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                timers[name] += time.perf_counter() - start

        return run_async

    def run(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            timers[name] += time.perf_counter() - start

    return run


async def _build(work: Path, plan: list[Planned], miners: int) -> dict:
    import redis.asyncio as aioredis
    from bittensor.sp_core import Keypair

    from d3.chain.interface import CommitmentRecord
    from d3.commitment import Commitment, parse_locator
    from d3.dev.redis_server import start_redis
    from d3.hub.builder import HubBuilder
    from d3.validator.audit import AuditResult
    from d3.validator.fetcher import Fetcher, FetchLimits
    from d3.validator.index import TweetIndex
    from d3.validator.scoring import ScoringParams
    from d3.validator.state import Judgement, ValidatorState, Verdict

    scoring = ScoringParams()
    hotkeys = [Keypair.create_from_uri(f"//BenchMiner{m}").ss58_address for m in range(miners)]
    chain = BenchChain()
    by_period: dict[int, list[Planned]] = defaultdict(list)
    for p in plan:
        by_period[scoring.period_of(p.block)].append(p)
    with start_redis() as server:
        client = aioredis.Redis.from_url(server.url)
        state, index = ValidatorState(client), TweetIndex(client)
        fetcher = Fetcher(FetchLimits(deadline_s=300), allow_file=True, allow_private=True)
        hub = HubBuilder(
            work / "hub",
            chain,
            state,
            index,
            fetcher,
            scoring,
            netuid=NETUID,
            audited=True,
            signer=Keypair.create_from_uri("//BenchValidator"),
        )
        timers: dict[str, float] = defaultdict(float)
        hub._apply = timed(timers, "apply", hub._apply)
        hub._publish = timed(timers, "publish", hub._publish)
        hub._close_day = timed(timers, "close", hub._close_day)
        updates = []
        validator_s = 0.0
        for period in range(min(by_period), max(by_period) + 3):
            start = time.perf_counter()
            credited: set[str] = set()
            for p in by_period.get(period, []):  # the validator judges the period
                hotkey = hotkeys[p.miner]
                text = Commitment(p.manifest, parse_locator(p.locator)).encode()
                record = CommitmentRecord(hotkey, p.block, text, uid=p.miner)
                chain.records[(hotkey, p.block)] = record
                await state.enqueue([record], {(hotkey, p.block): p.manifest})
                ids = pq.read_table(p.shard, columns=["id"])["id"].combine_chunks()
                new = (await index.ingest(ids, hotkey, f"{p.manifest}:{hotkey}", period)).new
                judged = Judgement(p.manifest, True, "bench", p.block)
                verdict = Verdict(
                    p.block, True, "bench", manifest_sha256=p.manifest, new_unique=new
                )
                await state.judge(record, [judged], verdict)
                if new:
                    credited.add(hotkey)
            end = (period + 1) * scoring.period_blocks
            for hotkey in sorted(credited):  # and audits it: every sample found
                await state.record_audit(
                    hotkey, period, AuditResult(20, 20, 0), Verdict(end + 60, True, "audit")
                )
            chain.head = end + 60
            validator_s += time.perf_counter() - start
            before = dict(timers)
            start = time.perf_counter()
            report = await hub.update()
            updates.append(
                {
                    "period": period,
                    "s": time.perf_counter() - start,
                    **{f"{k}_s": v - before.get(k, 0.0) for k, v in timers.items()},
                    "published": sum(report.published.values()),
                    "closed": len(report.closed),
                    "rows": report.rows,
                    "withheld": len(report.withheld),
                    "rss_mb": rss_mb(),
                    "peak_rss_mb": peak_rss_mb(),
                }
            )
            u = updates[-1]
            print(
                f"  period {period}: {u['s']:.1f}s (apply {u.get('apply_s', 0):.1f}, publish "
                f"{u.get('publish_s', 0):.1f}, close {u.get('close_s', 0):.1f}), "
                f"RSS {u['rss_mb']:.0f} MB: {report.summary()}",
                file=sys.stderr,
                flush=True,
            )
        hub.close()
        await fetcher.close()
        await client.aclose()
    return {"updates": updates, "timers": dict(timers), "validator_s": validator_s}


def build_phase(work: str, plan: list[Planned], miners: int) -> dict:
    from loguru import logger

    logger.remove()  # the hub's own summary per update is printed below, with its time
    logger.add(sys.stderr, level="WARNING")
    figures = asyncio.run(_build(Path(work), plan, miners))
    figures["peak_rss_mb"] = peak_rss_mb()
    figures["baseline"] = plain_write(Path(work) / "hub")
    index = json.loads((Path(work) / "hub" / "index.json").read_bytes())
    figures["hub_bytes"] = sum(f["bytes"] for f in index["files"])
    return figures


def plain_write(hub: Path) -> dict:
    """The hub's rows written once with pyarrow, a day at a time (zstd 9), timed."""
    from d3.hub.schema import ZSTD_LEVEL

    seconds = rows = size = 0
    for day in sorted((hub / "data").iterdir()):
        table = pq.read_table(day)
        sink = pa.BufferOutputStream()
        start = time.perf_counter()
        pq.write_table(table, sink, compression="zstd", compression_level=ZSTD_LEVEL)
        seconds += time.perf_counter() - start
        rows += table.num_rows
        size += sink.getvalue().size
    return {"s": seconds, "rows": rows, "bytes": size}


# -- exports ----------------------------------------------------------------------------------


def export_phase(hub: str, out: str, query: dict) -> dict:
    import duckdb

    from d3.hub.export import Query, export
    from d3.hub.layout import verify_copy
    from d3.hub.schema import HUB_SCHEMA, ZSTD_LEVEL, writer_options

    hub_dir = Path(hub)
    q = Query(**query)
    start = time.perf_counter()
    report = export(hub_dir, Path(out), q)
    seconds = time.perf_counter() - start
    rss = peak_rss_mb()
    start = time.perf_counter()
    index = verify_copy(hub_dir)
    verify_s = time.perf_counter() - start
    # The baseline: the same query over the same files, streamed to one file.
    files = sorted(
        str(hub_dir / f["path"]) for f in index["files"] if q.days_wanted(f["path"].split("/")[1])
    )
    where, params = q.where()
    con = duckdb.connect()
    con.execute("SET memory_limit = '1GB'")
    con.execute("SET threads = 2")
    start = time.perf_counter()
    sql = f"SELECT * FROM read_parquet($files) WHERE {where} ORDER BY id"
    reader = con.sql(sql, params={**params, "files": files}).to_arrow_reader(64_000)
    baseline_rows = 0
    target = Path(out) / "baseline.parquet"
    with pq.ParquetWriter(target, HUB_SCHEMA, **writer_options(ZSTD_LEVEL)) as w:
        for batch in reader:
            w.write_table(pa.Table.from_batches([batch]).cast(HUB_SCHEMA))
            baseline_rows += batch.num_rows
    baseline_s = time.perf_counter() - start
    con.close()
    assert baseline_rows == report.rows, (baseline_rows, report.rows)
    return {
        "s": seconds,
        "rows_out": report.rows,
        "files": report.files,
        "days_read": report.days,
        "rows_read": sum(f["rows"] for f in index["files"] if str(hub_dir / f["path"]) in files),
        "peak_rss_mb": rss,
        "baseline_s": baseline_s,
        "verify_s": verify_s,
    }


# -- the run ----------------------------------------------------------------------------------


def in_fresh_process(fn, *args):
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="tweets in the hub")
    parser.add_argument("--commit-rows", type=int, default=100_000, help="new tweets a commitment")
    parser.add_argument("--miners", type=int, default=4)
    parser.add_argument("--work", type=Path, help="where to build (default: a temp directory)")
    parser.add_argument("--keep", action="store_true", help="leave the hosts, hub and exports")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="d3hb", dir=args.work))
    try:
        start = time.perf_counter()
        plan = in_fresh_process(prepare, work, args.rows, args.commit_rows, args.miners)
        prepare_s = time.perf_counter() - start
        print(
            f"prepared {len(plan)} commitments of {args.miners} miners in {prepare_s:.0f}s",
            file=sys.stderr,
        )
        build = in_fresh_process(build_phase, str(work), plan, args.miners)
        hub = work / "hub"
        days = sorted(p.name for p in (hub / "data").iterdir())
        week = datetime.fromisoformat(days[len(days) // 3]).replace(tzinfo=UTC)
        queries = {
            "time_range": {"since": week, "until": week + timedelta(days=7)},
            "hashtag": {"hashtags": ("gpu",)},
        }
        exports = {
            name: in_fresh_process(export_phase, str(hub), str(work / f"export-{name}"), query)
            for name, query in queries.items()
        }
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    figures = summarise(plan, build, exports)
    report(figures)
    if args.keep:
        print(f"kept {work}")
    if args.json:
        print(json.dumps(figures))


def summarise(plan: list[Planned], build: dict, exports: dict) -> dict:
    updates = build["updates"]
    rows = updates[-1]["rows"]
    build_s = sum(u["s"] for u in updates)
    timers = build["timers"]
    # Rows per second of the full updates (a period published, a day closed), the first
    # third of them against the last third: a cost that grows with the hub's size shows
    # as a falling rate.
    most = max(u["published"] for u in updates)
    working = [u for u in updates if u["closed"] and u["published"] >= 0.9 * most]
    third = max(1, len(working) // 3)

    def rate(part, phase="s"):
        return sum(u["published"] for u in part) / sum(u.get(phase, 0) for u in part)

    def rss_at(share):
        return next(u["rss_mb"] for u in working if u["rows"] >= share * rows)

    baseline = build["baseline"]
    return {
        "rows": rows,
        "commitments": len(plan),
        "copies": sum(p.copies for p in plan),
        "updates": len(updates),
        "days": len({p.day for p in plan}),
        "days_closed": sum(u["closed"] for u in updates),
        "withheld": sum(u["withheld"] for u in updates),
        "build_s": round(build_s, 1),
        "build_rows_per_s": round(rows / build_s),
        "build_phase_s": {
            "apply": round(timers.get("apply", 0), 1),
            "publish": round(timers.get("publish", 0), 1),
            "close": round(timers.get("close", 0), 1),
            "other": round(build_s - sum(timers.values()), 1),
        },
        "build_rate_first_third": round(rate(working[:third])),
        "build_rate_last_third": round(rate(working[-third:])),
        "phase_rates_first_third": {
            k: round(rate(working[:third], f"{k}_s")) for k in ("apply", "publish", "close")
        },
        "phase_rates_last_third": {
            k: round(rate(working[-third:], f"{k}_s")) for k in ("apply", "publish", "close")
        },
        "build_rss_mb_at_20pct": round(rss_at(0.2)),
        "build_rss_mb_at_90pct": round(rss_at(0.9)),
        "build_peak_rss_mb": round(build["peak_rss_mb"]),
        "build_peak_rss_mb_at_10pct": round(
            next(u["peak_rss_mb"] for u in updates if u["rows"] >= rows / 10)
        ),
        "baseline_write_s": round(baseline["s"], 1),
        "baseline_rows_per_s": round(baseline["rows"] / baseline["s"]),
        "build_vs_baseline": round(build_s / baseline["s"], 2),
        "hub_bytes": build["hub_bytes"],
        "baseline_bytes": baseline["bytes"],
        "exports": {
            name: {
                "s": round(e["s"], 2),
                "rows_out": e["rows_out"],
                "rows_out_per_s": round(e["rows_out"] / e["s"]),
                "rows_read": e["rows_read"],
                "rows_read_per_s": round(e["rows_read"] / e["s"]),
                "days_read": e["days_read"],
                "peak_rss_mb": round(e["peak_rss_mb"]),
                "baseline_s": round(e["baseline_s"], 2),
                "vs_baseline": round(e["s"] / e["baseline_s"], 2),
                "verify_s": round(e["verify_s"], 2),
            }
            for name, e in exports.items()
        },
    }


def report(f: dict) -> None:
    print(
        f"hub: {f['rows']:,} rows from {f['commitments']} commitments ({f['copies']:,} copied "
        f"rows left out), {f['days']} days ({f['days_closed']} closed), {f['updates']} updates"
    )
    print(
        f"build: {f['build_s']:.0f}s, {f['build_rows_per_s']:,} rows/s (first third "
        f"{f['build_rate_first_third']:,}, last third {f['build_rate_last_third']:,} of the full "
        f"updates); phases {f['build_phase_s']}; peak RSS {f['build_peak_rss_mb']} MB "
        f"({f['build_peak_rss_mb_at_10pct']} MB at a tenth of the rows; RSS after the updates "
        f"at 20 % and 90 %: {f['build_rss_mb_at_20pct']} and {f['build_rss_mb_at_90pct']} MB)"
    )
    print(
        f"  rows/s by phase, first third {f['phase_rates_first_third']}, "
        f"last third {f['phase_rates_last_third']}"
    )
    print(
        f"plain pyarrow write of the same rows (zstd 9): {f['baseline_write_s']:.0f}s, "
        f"{f['baseline_rows_per_s']:,} rows/s; the build takes {f['build_vs_baseline']}x; "
        f"hub {f['hub_bytes'] / 1e6:,.0f} MB (plain {f['baseline_bytes'] / 1e6:,.0f} MB)"
    )
    for name, e in f["exports"].items():
        print(
            f"export by {name}: {e['s']:.1f}s, {e['rows_out']:,} rows out "
            f"({e['rows_out_per_s']:,}/s) of {e['rows_read']:,} read in {e['days_read']} days, "
            f"peak RSS {e['peak_rss_mb']} MB; the same query plainly {e['baseline_s']:.1f}s "
            f"({e['vs_baseline']}x); verify {e['verify_s']:.1f}s"
        )


if __name__ == "__main__":
    main()
