"""The miner process: scrape on a query plan, store, publish every few blocks.

Scraping and publishing are two tasks sharing the store. Either can fail an iteration
(X down, chain down, host down) and simply tries again later; SIGTERM/SIGINT stop both,
and the store is closed cleanly (everything acknowledged is already on disk anyway).
The process exits non-zero only when it cannot work at all: the hotkey is not registered,
or the configuration is unusable.

Every log line carries the miner's hotkey (`hotkey=5F...`), and with `--metrics.port`
the process serves `/metrics` (what it scraped, stored, published, committed, uploaded)
and `/healthz` (both loops finished an iteration recently) from `d3/metrics.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Literal

from loguru import logger
from pydantic import Field, SecretStr

from d3.chain.interface import Chain, ChainVerdict
from d3.chain.sdk import DEV_PREFIX, open_chain
from d3.commitment import Commitment, decode_commitment
from d3.config import DEV_FLAG, ConfigError, NeuronBaseConfig, Section, expand, parse_or_exit
from d3.errors import FatalError
from d3.logs import setup_logging
from d3.metrics import Health, MinerMetrics, serve_metrics
from d3.miner.hosts import DatasetHost, HostError, HuggingFaceHost, LocalDirHost, S3Host
from d3.miner.publisher import PARENT_KEY, Publisher, PublishError
from d3.miner.store import TweetStore
from d3.retry import Backoff
from d3.startup import check_ready, fatal_exits, load_wallet, stop_on_signals
from scraping.factory import SourceKind
from scraping.factory import build_source as build_real_source
from scraping.query_plan import QueryPlan, QueryPlanError, default_plan, load_plan
from scraping.source import (
    SourceAuthError,
    SourceConfigError,
    SourceError,
    SourceSettings,
    SourceUsageCapped,
    TweetSource,
)

AUTH_BACKOFF_S = 600.0
USAGE_CAP_BACKOFF_S = 3600.0  # a spent monthly cap: ask X once an hour, not every query
STORE_BACKOFF_S = 5.0
PUBLISH_BACKOFF = Backoff(2.0, cap_s=300.0, jitter=0.5)  # after failed publications in a row


class MinerNeuronSection(Section):
    commit_interval: int = Field(50, gt=0, description="blocks between publications")
    store_path: str = Field("~/.d3/miner/store.sqlite", description="the miner's tweet store")
    max_rows: int | None = Field(5_000_000, gt=0, description="store bound (published rows)")
    batch_rows: int = Field(Publisher.BATCH_ROWS, gt=0, description="most rows per publication")
    shard_rows: int = Field(Publisher.SHARD_ROWS, gt=0, description="rows per Parquet shard")


class SourceSection(Section):
    kind: SourceKind = Field("x_api", description="tweet source")
    # Dev chains only: a dishonest miner for a local network to punish (d3/dev/adversaries.py).
    adversary: Literal["copier", "fabricator", "diluter"] | None = Field(
        None,
        description="a dishonest source instead: copier (re-publishes --source.copy_from), "
        "fabricator (invents tweets) or diluter (mixes 10% invented into --source.kind's)",
        json_schema_extra=DEV_FLAG,
    )
    copy_from: str | None = Field(
        None, description="copier: the dataset dir to copy from", json_schema_extra=DEV_FLAG
    )
    x_bearer_token: SecretStr = Field(SecretStr(""), description="X API v2 bearer token")
    x_api_base_url: str | None = Field(
        None, description="X API host (the local X server)", json_schema_extra=DEV_FLAG
    )
    query_plan: str | None = Field(None, description="TOML/JSON query plan; none: the built-in one")
    twscrape_accounts: str | None = Field(None, description="twscrape accounts file")
    apify_token: SecretStr = Field(SecretStr(""), description="Apify API token")


class HostSection(Section):
    kind: Literal["dir", "s3", "hf"] = Field("dir", description="where datasets are uploaded")
    dir: str = Field("~/.d3/miner/public", description="directory for kind=dir")
    locator: str | None = Field(
        None,
        description="public locator committed on chain: https://... for a served dir, "
        "s3://bucket/prefix, hf:owner/repo (file:// is used for dir on dev chains)",
    )
    s3_endpoint: str | None = Field(None, description="S3-compatible endpoint URL")
    hf_token: SecretStr = Field(SecretStr(""), description="Hugging Face token (or HF_TOKEN)")


class MinerConfig(NeuronBaseConfig):
    neuron: MinerNeuronSection = MinerNeuronSection()
    source: SourceSection = SourceSection()
    host: HostSection = HostSection()


def build_source(config: SourceSection, dev_chain: bool) -> TweetSource:
    """The `--source.kind` source from the registry, or on a dev chain the dishonest one
    `--source.adversary` names (imported only then: production never loads d3.dev)."""
    if config.adversary is None:
        return _real_source(config)
    if not dev_chain:
        raise ConfigError(f"--source.adversary {config.adversary} exists only to demo a dev chain")
    if config.adversary == "copier" and not config.copy_from:
        raise ConfigError("--source.copy_from is required for the copier")
    from d3.dev.adversaries import adversary_source

    copy_from = expand(config.copy_from) if config.copy_from else None
    return adversary_source(config.adversary, lambda: _real_source(config), copy_from)


def _real_source(config: SourceSection) -> TweetSource:
    settings = SourceSettings.of(config, "--source")
    try:
        return build_real_source(config.kind, settings)
    except SourceConfigError as error:
        raise ConfigError(str(error)) from None


def build_host(config: HostSection, dev_chain: bool) -> DatasetHost:
    if config.kind == "dir":
        if config.locator is None and not dev_chain:
            raise ConfigError(
                "--host.locator is required: the public https:// URL where --host.dir is served"
            )
        return LocalDirHost(expand(config.dir), config.locator)
    if config.locator is None:
        raise ConfigError(f"--host.locator is required for host kind {config.kind}")
    if config.kind == "s3":
        return S3Host(config.locator, endpoint_url=config.s3_endpoint)
    token = config.hf_token.get_secret_value() or None
    return HuggingFaceHost(config.locator, token=token)


def build_plan(path: str | None) -> QueryPlan:
    return load_plan(path) if path else default_plan()


SCRAPE_LOOP, PUBLISH_LOOP = "scrape", "publish"


async def scrape_forever(
    source: TweetSource,
    plan: QueryPlan,
    store: TweetStore,
    stop: asyncio.Event,
    metrics: MinerMetrics | None = None,
    health: Health | None = None,
) -> None:
    """Run each planned query when it is due, resuming from its stored since_id."""
    metrics = metrics or MinerMetrics()
    last_run: dict[str, float] = {}
    while not stop.is_set():
        for query in plan.due(last_run, time.monotonic()):
            if stop.is_set():
                break
            log = logger.bind(query=query.name)
            since_id = await asyncio.to_thread(store.get_cursor, query.name)
            try:
                result = await source.search(query.query, since_id=since_id, limit=query.limit)
            except SourceAuthError as error:
                metrics.scrape_errors.labels("auth").inc()
                log.error(
                    "source refused our credentials: {}; retry in {:.0f}s", error, AUTH_BACKOFF_S
                )
                _beat(health, SCRAPE_LOOP, AUTH_BACKOFF_S)
                await _sleep(stop, AUTH_BACKOFF_S)
                break
            except SourceUsageCapped as error:  # the plan's cap: hours or days, not minutes
                metrics.scrape_errors.labels("usage_cap").inc()
                log.error(
                    "source usage cap reached: {}; raise the plan or wait, retry in {:.0f}s",
                    error,
                    USAGE_CAP_BACKOFF_S,
                )
                _beat(health, SCRAPE_LOOP, USAGE_CAP_BACKOFF_S)
                await _sleep(stop, USAGE_CAP_BACKOFF_S)
                break
            except SourceError as error:
                metrics.scrape_errors.labels("source").inc()
                log.warning("search failed: {}", error)
                last_run[query.name] = time.monotonic()
                continue
            except Exception:
                metrics.scrape_errors.labels("crash").inc()
                log.exception("search crashed; the query runs again on schedule")
                last_run[query.name] = time.monotonic()
                continue
            last_run[query.name] = time.monotonic()
            metrics.tweets_scraped.labels(query.name).inc(len(result.records))
            try:
                new = await asyncio.to_thread(store.add, result.records)
                if result.newest_id is not None:  # only after the rows are durable
                    await asyncio.to_thread(store.set_cursor, query.name, result.newest_id)
            except (sqlite3.Error, OSError) as error:
                # Disk full or failing: nothing was acknowledged, the cursor did not move,
                # so the same tweets are fetched again once the store can take them.
                metrics.scrape_errors.labels("store").inc()
                log.error("store write failed ({}); will retry", error)
                await _sleep(stop, STORE_BACKOFF_S)
                continue
            metrics.tweets_stored.labels(query.name).inc(new)
            metrics.tweets_rejected.labels(query.name).inc(result.rejected)
            log.info("{} tweets, {} new, {} rejected", len(result.records), new, result.rejected)
        idle = max(1.0, plan.seconds_until_due(last_run, time.monotonic()))
        _beat(health, SCRAPE_LOOP, idle)
        await _sleep(stop, idle)


async def publish_forever(
    publisher: Publisher,
    chain: Chain,
    interval: int,
    stop: asyncio.Event,
    metrics: MinerMetrics | None = None,
    health: Health | None = None,
) -> None:
    """Publish at most once every `interval` blocks while there is something new."""
    metrics = metrics or MinerMetrics()
    failures = 0
    next_block = 0
    while not stop.is_set():
        try:
            block = await chain.block()
            if block >= next_block:
                published = await publisher.publish_once()
                if published is not None:
                    next_block = block + interval
                    metrics.publications.inc()
                    metrics.tweets_published.inc(published.rows)
                failures = 0
        except (PublishError, SourceError) as error:
            failures += 1
            metrics.publish_failures.inc()
            logger.warning("publication failed ({}); retrying", error)
        except Exception:
            failures += 1
            metrics.publish_failures.inc()
            logger.exception("publication crashed; retrying")
        backoff = PUBLISH_BACKOFF.delay(failures) if failures else 0
        idle = max(backoff, 2.0)
        _beat(health, PUBLISH_LOOP, idle)
        await _sleep(stop, idle)


def _beat(health: Health | None, loop: str, idle_s: float) -> None:
    if health is not None:
        health.beat(loop, idle_s)


class MeteredChain:
    """A `Chain` whose commits are counted by verdict; everything else passes through."""

    def __init__(self, chain: Chain, metrics: MinerMetrics):
        self._chain = chain
        self._metrics = metrics

    def __getattr__(self, name: str):
        return getattr(self._chain, name)

    async def commit(self, data: str) -> ChainVerdict:
        verdict = await self._chain.commit(data)
        self._metrics.commits.labels("ok" if verdict.ok else verdict.code or "refused").inc()
        if verdict.ok and verdict.block is not None:
            self._metrics.last_commit_block.set(verdict.block)
        return verdict


class MeteredHost:
    """A `DatasetHost` whose uploads are counted (files by outcome, bytes)."""

    def __init__(self, host: DatasetHost, metrics: MinerMetrics):
        self._host = host
        self._metrics = metrics
        self.locator = host.locator

    async def exists(self, name: str) -> bool:
        return await self._host.exists(name)

    async def upload(self, name: str, data: bytes) -> None:
        try:
            await self._host.upload(name, data)
        except Exception:
            self._metrics.uploads.labels("failed").inc()
            raise
        self._metrics.upload_bytes.inc(len(data))  # before the count a reader polls for
        self._metrics.uploads.labels("ok").inc()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def resume_chain_tip(store: TweetStore, chain: Chain) -> None:
    """A store with no manifest chain (new, or lost) continues the one on chain: the next
    manifest's parent is this hotkey's latest committed manifest, so its history stays one
    chain instead of silently starting a second."""
    if await asyncio.to_thread(store.get_meta, PARENT_KEY) is not None:
        return
    tip = await chain.commitment_of(chain.hotkey, await chain.block())
    commitment = decode_commitment(tip.data) if tip is not None else None
    if not isinstance(commitment, Commitment):
        logger.info("no earlier commitment on chain: starting a new manifest chain")
        return
    await asyncio.to_thread(store.set_meta, PARENT_KEY, commitment.manifest_sha256)
    logger.warning(
        "the store has no manifest chain: continuing the one on chain from manifest {} "
        "(committed at block {})",
        commitment.manifest_sha256[:16],
        tip.block,
    )


@fatal_exits("cannot start")
async def amain(config: MinerConfig) -> int:
    wallet = load_wallet(config.wallet)
    # Every line of this miner's work carries its hotkey (a call's own bind wins).
    logger.configure(extra={"hotkey": wallet.hotkey.ss58_address[:10]})
    try:
        dev_chain = config.subtensor.target.startswith(DEV_PREFIX)
        source = build_source(config.source, dev_chain)
        host = build_host(config.host, dev_chain)
        # The longest commitment this locator can make must fit the chain's 128 bytes.
        Commitment("0" * 64, host.locator).encode()
        plan = build_plan(config.source.query_plan)
    except (ConfigError, QueryPlanError, HostError, ValueError, OSError) as error:
        raise FatalError(str(error)) from None
    store_path = expand(config.neuron.store_path)
    store_path.parent.mkdir(parents=True, exist_ok=True)
    store = TweetStore(store_path, max_rows=config.neuron.max_rows)
    try:
        async with open_chain(config.subtensor, wallet, config.netuid) as chain:
            graph = await check_ready(chain, config.netuid, role="miner", weights=False)
            await resume_chain_tip(store, chain)
            logger.info(
                "miner {} (uid {}) on netuid {}, publishing to {}",
                chain.hotkey,
                graph.uid_of(chain.hotkey),
                config.netuid,
                host.locator.text,
            )
            metrics = MinerMetrics()
            health = Health(config.metrics.stale_s)
            health.register(SCRAPE_LOOP, PUBLISH_LOOP)
            publisher = Publisher(
                store,
                MeteredHost(host, metrics),
                MeteredChain(chain, metrics),
                wallet.hotkey,
                config.netuid,
                staging_dir=Path(store_path).with_suffix(".staging"),
                batch_rows=config.neuron.batch_rows,
                shard_rows=config.neuron.shard_rows,
            )
            stop = asyncio.Event()
            stop_on_signals(stop)
            with serve_metrics(config.metrics, metrics.registry, health):
                await asyncio.gather(
                    scrape_forever(source, plan, store, stop, metrics, health),
                    publish_forever(
                        publisher, chain, config.neuron.commit_interval, stop, metrics, health
                    ),
                )
            logger.info("miner stopped")
            return 0
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    config = parse_or_exit(
        MinerConfig,
        "miner.py",
        "D3 miner: scrape tweets, publish content-addressed datasets, commit them on chain.",
        argv,
        role="miner",
    )
    setup_logging(config.logging, "miner")
    return asyncio.run(amain(config))
