"""The validator process: configuration, wiring, and the loop that runs for months.

Every iteration is guarded: a bad round is logged and the next one starts. Only
conditions that a restart could fix, or that an operator must see, end the process with a
non-zero status (so pm2 restarts it): the hotkey is not registered, or Redis has been
unreachable for longer than `--redis.max_outage_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time

from loguru import logger
from pydantic import Field, SecretStr, field_validator
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from d3 import __version__
from d3.chain.interface import Chain, ChainUnreachable, HistoryUnavailable, SubnetNotFound
from d3.chain.sdk import DEV_PREFIX, open_chain
from d3.config import DEV_FLAG, NeuronBaseConfig, Section, expand, parse_or_exit
from d3.errors import FatalError
from d3.logs import setup_logging
from d3.metrics import Health, ValidatorMetrics, serve_metrics
from d3.redis_url import connect_redis, validate_redis_url
from d3.shards import ShardLimits
from d3.startup import check_ready, fatal_exits, load_wallet, stop_on_signals
from d3.validator import leaderboard as leaderboards
from d3.validator.audit import AuditParams, budget_shortfall
from d3.validator.dashboard import (
    NetworkView,
    Outcome,
    RoundRecord,
    ValidatorDashboard,
    brief,
)
from d3.validator.fetcher import Fetcher, FetchLimits
from d3.validator.index import DEFAULT_CACHE_BYTES, LayoutError, TweetIndex
from d3.validator.leaderboard import Leaderboard
from d3.validator.pipeline import ManifestPipeline, PipelineLimits
from d3.validator.rounds import RoundRunner
from d3.validator.scoring import (
    CONFIDENCE_Z,
    DECAY,
    FRESH_PERIODS,
    PERIOD_BLOCKS,
    RANK_STEP,
    WINDOW_PERIODS,
    ScoringParams,
)
from d3.validator.state import ValidatorState
from d3.validator.verifier import Lookup, LookupAnswer, LookupBudget
from d3.validator.x_lookup import source_lookup
from d3.web.server import ReadOnlyServer
from scraping.factory import SourceKind, build_source
from scraping.source import SourceAuthError, SourceConfigError, SourceSettings

# Sent with every weight-set; bump when a release changes scoring.
VERSION_KEY = int("".join(f"{int(p):03d}" for p in __version__.split(".")))


class RedisSection(Section):
    url: str = Field("redis://127.0.0.1:6379/0", description="redis://, rediss:// or unix://")
    cluster: bool = Field(False, description="the URL is one node of a Redis Cluster")
    prefix: str = Field("d3", description="key prefix (one per subnet if Redis is shared)")
    max_outage_s: float = Field(300, gt=0, description="exit after Redis is down this long")
    index_cache_mb: int = Field(
        DEFAULT_CACHE_BYTES >> 20,
        ge=0,
        description="memory for the index's cache of windows, in MiB (a miss is one read)",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return validate_redis_url(value)


class ValidatorNeuronSection(Section):
    poll_blocks: int = Field(5, gt=0, description="read commitments every N blocks")
    weights_interval: int = Field(100, gt=0, description="set weights every N blocks at most")
    concurrency: int = Field(8, gt=0, le=64, description="miners fetched in parallel")
    grace_blocks: int = Field(
        PipelineLimits.grace_blocks, ge=0, description="blocks a miner has to upload after commit"
    )
    round_seconds: float = Field(
        600,
        gt=0,
        description="longest a round judges before it scores (bootstrap goes on next round)",
    )


class VerifySection(Section):
    daily_budget: int = Field(
        10_000, ge=0, description="X look-ups per day (0 needs --verify.structure_only)"
    )
    audit_lookups: int = Field(
        AuditParams.lookups_per_period,
        gt=0,
        description="look-ups per audited period over all miners (same on every validator)",
    )
    audit_min: int = Field(
        AuditParams.min_per_miner, gt=0, description="fewest look-ups per miner per period"
    )
    x_bearer_token: SecretStr = Field(SecretStr(""), description="X API v2 bearer token")
    x_api_base_url: str | None = Field(
        None, description="X API host (the local X server)", json_schema_extra=DEV_FLAG
    )
    lookup_kind: SourceKind = Field(
        "x_api", description="where look-ups go: X API v2, a twscrape account pool, or Apify"
    )
    twscrape_accounts: str | None = Field(None, description="twscrape accounts file")
    apify_token: SecretStr = Field(SecretStr(""), description="Apify API token")
    structure_only: bool = Field(
        False,
        description="run with no X look-ups: credit on structural checks alone, which "
        "invented tweets pass (tests and local networks only)",
        json_schema_extra=DEV_FLAG,
    )


class FetchSection(Section):
    max_shard_bytes: int = Field(256 * 1024 * 1024, gt=0, description="largest shard fetched")
    max_rows: int = Field(PipelineLimits.max_rows, gt=0, description="most rows per commitment")
    deadline_s: float = Field(FetchLimits.deadline_s, gt=0, description="time allowed for one file")
    s3_endpoint: str | None = Field(None, description="S3-compatible endpoint for s3:// data")
    allow_private_hosts: bool = Field(
        False,
        description="fetch from private, loopback and link-local addresses too (miners "
        "could then make the validator reach its own network; local networks only)",
    )


class ScoringSection(Section):
    decay: float = Field(DECAY, gt=0, lt=1, description="weight ratio between adjacent ranks")
    period_blocks: int = Field(PERIOD_BLOCKS, gt=0, description="blocks per credit period")
    window_periods: int = Field(WINDOW_PERIODS, gt=0, description="periods in the window")
    fresh_periods: int = Field(
        FRESH_PERIODS, ge=0, description="periods a tweet may be older than its commitment's"
    )
    rank_step: float = Field(
        RANK_STEP,
        gt=0,
        le=1,
        description="one rank of score: 0.1 means 10 percent less score, half the weight",
    )
    confidence_z: float = Field(
        CONFIDENCE_Z, ge=0, description="standard errors of audit noise a score gives up"
    )


class DashboardSection(Section):
    port: int = Field(0, ge=0, le=65535, description="serve the web dashboard on this port; 0: off")
    host: str = Field(
        "127.0.0.1", description="address the dashboard listens on (0.0.0.0: every interface)"
    )
    hub: str | None = Field(
        None, description="a hub directory (python -m d3.hub build DIR) for the Data page"
    )
    refresh_s: float = Field(15, ge=1, description="seconds between a page's refreshes")


class ValidatorConfig(NeuronBaseConfig):
    redis: RedisSection = RedisSection()
    dashboard: DashboardSection = DashboardSection()
    neuron: ValidatorNeuronSection = ValidatorNeuronSection()
    verify: VerifySection = VerifySection()
    fetch: FetchSection = FetchSection()
    scoring: ScoringSection = ScoringSection()


def metered_lookup(lookup: Lookup, metrics: ValidatorMetrics) -> Lookup:
    """`lookup`, counting every tweet asked by X's answer (found, missing, failed)."""

    async def counted(ids):
        answer: LookupAnswer = await lookup(ids)
        metrics.lookups.labels("found").inc(len(answer.found))
        metrics.lookups.labels("missing").inc(len(answer.missing))
        metrics.lookups.labels("failed").inc(len(answer.failed))
        return answer

    return counted


def build_runner(
    config: ValidatorConfig, chain: Chain, redis, metrics: ValidatorMetrics | None = None
) -> RoundRunner:
    state = ValidatorState(redis, config.redis.prefix)
    scoring = ScoringParams(
        config.scoring.period_blocks,
        config.scoring.window_periods,
        config.scoring.decay,
        config.scoring.fresh_periods,
        config.scoring.rank_step,
        config.scoring.confidence_z,
    )
    lookup = None
    verify = config.verify
    if verify.daily_budget and not verify.structure_only:
        shortfall = budget_shortfall(
            verify.daily_budget,
            AuditParams(lookups_per_period=verify.audit_lookups, min_per_miner=verify.audit_min),
            scoring.period_blocks,
        )
        if shortfall is not None:
            raise FatalError(shortfall)
        try:
            # A rate-limited look-up waits at most a minute: a round must not stall for long.
            settings = SourceSettings.of(verify, "--verify", max_wait_s=60)
            source = build_source(verify.lookup_kind, settings)
        except (SourceConfigError, SourceAuthError, OSError) as error:
            raise FatalError(
                f"no look-up source ({error}); or pass --verify.structure_only to credit "
                "on structure alone"
            ) from None
        lookup = source_lookup(source)
        if metrics is not None:
            lookup = metered_lookup(lookup, metrics)
        logger.info("look-ups through {} ({} a day)", verify.lookup_kind, verify.daily_budget)
    elif verify.structure_only:
        logger.warning(
            "STRUCTURE-ONLY MODE (--verify.structure_only): no X look-ups, so invented tweets "
            "that are well-formed earn credit; never run this on a real subnet"
        )
    else:
        raise FatalError(
            "no look-up source: --verify.daily_budget is 0; set it above 0 with a look-up "
            "source, or pass --verify.structure_only to credit on structure alone"
        )
    audit = None
    if lookup is not None:
        audit = AuditParams(
            lookups_per_period=config.verify.audit_lookups,
            min_per_miner=config.verify.audit_min,
        )
    fetch = config.fetch
    pipeline = ManifestPipeline.for_chain(
        Fetcher(
            FetchLimits(deadline_s=fetch.deadline_s),
            s3_endpoint=fetch.s3_endpoint,
            allow_file=config.subtensor.target.startswith(DEV_PREFIX),
            allow_private=fetch.allow_private_hosts
            or config.subtensor.target.startswith(DEV_PREFIX),
        ),
        state,
        chain,
        scoring,
        audit,
        PipelineLimits(
            max_rows=fetch.max_rows,
            grace_blocks=config.neuron.grace_blocks,
            shard=ShardLimits(max_bytes=fetch.max_shard_bytes, max_rows=fetch.max_rows),
        ),
    )
    return RoundRunner(
        chain,
        TweetIndex(redis, config.redis.prefix, cache_bytes=config.redis.index_cache_mb << 20),
        state,
        pipeline,
        scoring,
        concurrency=config.neuron.concurrency,
        round_seconds=config.neuron.round_seconds,
        lookup=lookup,
        budget=LookupBudget(config.verify.daily_budget),
    )


class Validator:
    """The loop. `metrics` and `health` are counted into whether or not a server shows
    them; `leaderboard` is the latest read model, swapped in whole after each round (the
    metrics server's thread reads it)."""

    LOOP = "rounds"

    def __init__(
        self,
        config: ValidatorConfig,
        chain: Chain,
        runner: RoundRunner,
        metrics: ValidatorMetrics | None = None,
        health: Health | None = None,
    ):
        self.config = config
        self.chain = chain
        self.runner = runner
        self.metrics = metrics or ValidatorMetrics()
        self.health = health or Health(config.metrics.stale_s)
        self.health.register(self.LOOP)
        self.leaderboard: Leaderboard | None = None
        self.view = NetworkView()  # the dashboard's: rounds, weight-sets, reveals, errors
        self.stop = asyncio.Event()
        self._redis_down_since: float | None = None
        self._rules_read_at: int | None = None

    def leaderboard_json(self) -> dict | None:
        board = self.leaderboard
        return None if board is None else board.to_json()

    def redis_down_for_s(self) -> float | None:
        since = self._redis_down_since
        return None if since is None else round(time.monotonic() - since, 1)

    def _note(self, **changes) -> None:
        self.view = dataclasses.replace(self.view, **changes)

    def _round_done(self, block: int, started: float, report) -> None:
        seconds = round(time.monotonic() - started, 3)
        if report is None:
            record = RoundRecord(block, seconds, "failed")
        else:
            record = RoundRecord(
                block, seconds, "ok", report.read, len(report.accepted), len(report.rejected),
                report.new_unique,
            )  # fmt: skip
        self.view = self.view.with_round(record)

    async def run(self) -> None:
        log = logger.bind(hotkey=self.chain.hotkey[:10])
        last_weights: int | None = None
        metrics = self.metrics
        while not self.stop.is_set():
            try:
                if last_weights is None:
                    if await self.runner.state.ensure_version():
                        self.runner.index.forget()  # what it held is gone from Redis
                    saved = await self.runner.state.get_meta("last_weights_block")
                    last_weights = int(saved or 0)
                graph = await self.chain.metagraph()
                if graph.uid_of(self.chain.hotkey) is None:
                    raise FatalError(
                        f"validator hotkey {self.chain.hotkey} is not registered on netuid "
                        f"{self.config.netuid}"
                    )
                outcome = await self.chain.reveal_outcome()
                if outcome is not None:
                    self._note(last_reveal=Outcome.of(outcome))
                if outcome is not None and outcome.ok:
                    metrics.reveals.labels("revealed").inc()
                    log.info("{}", outcome.message)
                elif outcome is not None:
                    metrics.reveals.labels(outcome.code or "reveal_failed").inc()
                    log.error("{}", outcome.message)
                report = None
                scores = None
                started = time.monotonic()
                try:
                    report = await self.runner.process(graph)
                    metrics.round_duration.observe(time.monotonic() - started)
                    metrics.count_round(report)
                finally:
                    # a failed round must not also cost this interval's weights
                    self._round_done(graph.block, started, report)
                    behind = report is not None and not report.caught_up
                    if behind:
                        log.info(
                            "still replaying history ({} commitments queued); weights wait",
                            await self.runner.state.queue_size(),
                        )
                    due = graph.block - last_weights >= self.config.neuron.weights_interval
                    if due and not behind:
                        scores = await self.runner.scores(graph)
                        verdict = await self.runner.set_weights(scores, VERSION_KEY)
                        self._note(last_weight_set=Outcome.of(verdict))
                        if verdict.ok:  # the gauge first: a reader polls the counter
                            last_weights = verdict.block or graph.block
                            metrics.last_weights_block.set(last_weights)
                        metrics.weight_sets.labels(
                            "ok" if verdict.ok else verdict.code or "refused"
                        ).inc()
                        if verdict.ok:
                            await self.runner.state.set_meta(
                                "last_weights_block", str(last_weights)
                            )
                        else:
                            shown = ", ".join(
                                f"{s.uid}: {s.weight:.4f}" for s in scores if s.weight
                            )
                            log.info("weights it would have set: {}", shown or "none")
                await self._observe(graph, scores, report)
                metrics.rounds.labels("ok").inc()  # last: a round counted is one observed
                self._redis_down_since = None
                if report is not None and not report.caught_up:
                    self.health.beat(self.LOOP)
                    continue  # replaying history: the next batch starts now
            except FatalError:
                raise
            except (HistoryUnavailable, SubnetNotFound, LayoutError) as error:
                raise FatalError(str(error)) from None
            except (RedisConnectionError, RedisTimeoutError, OSError) as error:
                metrics.rounds.labels("failed").inc()
                if isinstance(error, RedisError):
                    metrics.redis_errors.inc()
                    self._note(redis_error=brief(error))
                else:
                    metrics.chain_errors.inc()
                    self._note(chain_error=brief(error))
                self._redis_outage(error)
            except RedisError as error:
                metrics.rounds.labels("failed").inc()
                metrics.redis_errors.inc()
                self._note(redis_error=brief(error))
                log.error("redis error in round: {}", error)
            except Exception as error:
                metrics.rounds.labels("failed").inc()
                if _is_chain_error(error):
                    metrics.chain_errors.inc()
                    self._note(chain_error=brief(error))
                log.exception("round failed; the next one starts on schedule")
            self.health.beat(self.LOOP)
            await self._wait_blocks(self.config.neuron.poll_blocks)

    async def _observe(self, graph, scores, report) -> None:
        """Refresh the gauges and the leaderboard from the numbers that set weights."""
        metrics = self.metrics
        if scores is None:
            scores = await self.runner.scores(graph)
        credits = await self.runner.index.credits()
        metrics.index_size.set(sum(sum(per.values()) for per in credits.values()))
        self._note(credits=credits)
        await self._read_weight_rules(graph.block)
        metrics.queue_size.set(await self.runner.state.queue_size())
        metrics.miners_scored.set(sum(1 for s in scores if s.weight > 0))
        if self.runner.budget is not None:
            metrics.lookup_budget.set(self.runner.budget.available)
        caught_up = report is None or report.caught_up
        try:  # the scores are in hand: only the read of the weights on chain can fail here
            board = await leaderboards.read(self.runner, graph, scores, caught_up)
        except Exception as error:  # shown as unknown (null), the round goes on
            metrics.chain_errors.inc()
            logger.warning("could not read this validator's weights on chain: {}", error)
            board = leaderboards.build(scores, graph, self.runner.scoring, None, caught_up)
        self.leaderboard = board

    async def _read_weight_rules(self, block: int) -> None:
        """Whether commit-reveal is on, for the dashboard: read once per weights interval
        (it is a subnet hyperparameter, rarely changed)."""
        last = self._rules_read_at
        if last is not None and block - last < self.config.neuron.weights_interval:
            return
        try:
            rules = await self.chain.weight_rules()
        except Exception as error:  # shown as unknown; the round goes on
            self.metrics.chain_errors.inc()
            self._note(chain_error=brief(error))
            return
        self._rules_read_at = block
        if rules is not None:
            self._note(commit_reveal=rules.commit_reveal)

    def _redis_outage(self, error: Exception) -> None:
        now = time.monotonic()
        self._redis_down_since = self._redis_down_since or now
        down = now - self._redis_down_since
        logger.error("redis unreachable for {:.0f}s: {}", down, error)
        if down > self.config.redis.max_outage_s:
            limit = self.config.redis.max_outage_s
            raise FatalError(f"redis unreachable for {down:.0f}s (limit {limit:.0f}s)")

    async def _wait_blocks(self, blocks: int) -> None:
        """Sleep until `blocks` more blocks exist (or stop is requested)."""
        try:
            target = await self.chain.block() + blocks
        except Exception as error:  # chain hiccup: wait a while and let the loop retry
            self.metrics.chain_errors.inc()
            logger.warning("could not read the block number: {}", error)
            target = None
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=2.0)
            if target is None:
                return
            try:
                if await self.chain.block() >= target:
                    return
            except Exception:
                return


@fatal_exits("fatal")
async def amain(config: ValidatorConfig) -> int:
    wallet = load_wallet(config.wallet)
    redis = connect_redis(config.redis.url, cluster=config.redis.cluster)
    try:
        async with open_chain(config.subtensor, wallet, config.netuid) as chain:
            # No such subnet, or not registered: stop here, not every round.
            await check_ready(chain, config.netuid, role="validator", weights=True)
            logger.info(
                "validator {} on netuid {} ({}), redis {}",
                chain.hotkey,
                config.netuid,
                config.subtensor.target,
                config.redis.url,
            )
            metrics = ValidatorMetrics()
            validator = Validator(
                config,
                chain,
                build_runner(config, chain, redis, metrics),
                metrics,
            )
            stop_on_signals(validator.stop)
            documents = {"/leaderboard.json": validator.leaderboard_json}
            with (
                serve_metrics(config.metrics, metrics.registry, validator.health, documents),
                serve_dashboard(config, validator),
            ):
                await validator.run()
            logger.info("validator stopped")
            return 0
    finally:
        await redis.aclose()


def _is_chain_error(error: Exception) -> bool:
    return isinstance(error, ChainUnreachable | TimeoutError) or type(error).__module__.startswith(
        ("bittensor", "websockets")
    )


@contextlib.contextmanager
def serve_dashboard(config: ValidatorConfig, validator: Validator):
    """The dashboard for `--dashboard.port` (none for 0) while the block runs."""
    section = config.dashboard
    if not section.port:
        yield None
        return
    hub = expand(section.hub) if section.hub else None
    dashboard = ValidatorDashboard(validator, asyncio.get_running_loop(), hub, section.refresh_s)
    try:
        server = ReadOnlyServer(dashboard.routes(), section.host, section.port)
    except OSError as error:
        raise FatalError(
            f"cannot serve the dashboard on {section.host}:{section.port}: "
            f"{error.strerror or error}"
        ) from None
    with server:
        logger.info("dashboard on {}/", server.url)
        yield server


def main(argv: list[str] | None = None) -> int:
    config = parse_or_exit(
        ValidatorConfig,
        "validator.py",
        "D3 validator: verify miners' datasets, deduplicate in Redis, set weights.",
        argv,
        role="validator",
    )
    setup_logging(config.logging, "validator")
    return asyncio.run(amain(config))
