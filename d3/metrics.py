"""Metrics, health and the read-only HTTP server a neuron exposes to its operator.

    /metrics           Prometheus text format, from the neuron's own `CollectorRegistry`
    /healthz           200 while every loop of the neuron has finished an iteration within
                       its bound, 503 (with the stale loops named) when one is stuck
    /leaderboard.json  the validator's leaderboard read model (`d3/validator/leaderboard.py`)

Nothing here is a module-level singleton: a neuron builds one `MinerMetrics` or
`ValidatorMetrics` (each with its own registry) and one `Health` at start-up and passes
them to the code that counts. The server (`d3/web/server.py`) runs in a daemon
thread, so a scrape never waits on the neuron's event loop and a stuck event loop still
answers `/healthz` with 503: it reads only numbers and an immutable snapshot that the
loop swaps in whole.

It binds 127.0.0.1 unless told otherwise (`--metrics.host`): the leaderboard and the
counters are harmless, but an operator decides what faces the internet. Both neurons start
it through `serve_metrics`, which turns the `--metrics.*` flags into a running server (or
none for port 0) and a port it cannot bind into one FatalError line.

Adding a metric: one attribute on the neuron's metrics class below, named
`d3_<role>_<what>[_total|_seconds]`, with labels from a small fixed set (never a hotkey,
a URL or a free-text reason: those go to the logs), and a line in docs/monitoring.md.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from loguru import logger
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from d3 import __version__
from d3.config import MetricsConfig
from d3.errors import FatalError
from d3.web.server import ReadOnlyServer, Request, Response, Route, json_route


def _info(registry: CollectorRegistry, role: str) -> None:
    Gauge(
        "d3_build_info", "1, labelled with the D3 version and the role", ["version", "role"],
        registry=registry,
    ).labels(__version__, role).set(1)  # fmt: skip


class MinerMetrics:
    """What a miner counts: its scraping, its store, its publications, commits and uploads."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        _info(r, "miner")
        self.tweets_scraped = Counter(
            "d3_miner_tweets_scraped", "tweets a source returned", ["query"], registry=r
        )
        self.tweets_stored = Counter(
            "d3_miner_tweets_stored", "tweets new to the store", ["query"], registry=r
        )
        self.tweets_rejected = Counter(
            "d3_miner_tweets_rejected", "tweets the normaliser refused", ["query"], registry=r
        )
        self.scrape_errors = Counter(
            "d3_miner_scrape_errors",
            "failed searches and store writes, by kind (auth, usage_cap, source, store, crash)",
            ["kind"],
            registry=r,
        )
        self.publications = Counter(
            "d3_miner_publications", "datasets published (committed, then uploaded)", registry=r
        )
        self.tweets_published = Counter(
            "d3_miner_tweets_published", "rows in published datasets", registry=r
        )
        self.publish_failures = Counter(
            "d3_miner_publish_failures", "publication attempts that failed", registry=r
        )
        self.commits = Counter(
            "d3_miner_commits",
            "commitments sent to the chain, by verdict (ok or the chain's code)",
            ["verdict"],
            registry=r,
        )
        self.last_commit_block = Gauge(
            "d3_miner_last_commit_block", "block of the last commitment that landed", registry=r
        )
        self.uploads = Counter(
            "d3_miner_uploads", "files uploaded to the dataset host, by outcome", ["outcome"],
            registry=r,
        )  # fmt: skip
        self.upload_bytes = Counter(
            "d3_miner_upload_bytes", "bytes uploaded to the dataset host", registry=r
        )


# Rejection reasons are free text (they name shards and hosts); metrics carry their class.
# First match wins; anything else is "other". The full reason is in the validator's log.
REASON_CLASSES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("validator", re.compile(r"unexpected validator error")),
    ("unavailable", re.compile(r"not available|no such file|HTTP \d|did not deliver|refused")),
    ("signature", re.compile(r"signature|is for hotkey|is for netuid")),
    ("manifest", re.compile(r"manifest")),
    ("shard", re.compile(r"shard|rows|bytes")),
)


def reason_class(reason: str) -> str:
    for name, pattern in REASON_CLASSES:
        if pattern.search(reason):
            return name
    return "other"


class ValidatorMetrics:
    """What a validator counts: its rounds, verdicts, look-ups, index, weights and errors."""

    ROUND_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, float("inf"))

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        _info(r, "validator")
        self.rounds = Counter(
            "d3_validator_rounds", "rounds run, by outcome (ok or failed)", ["outcome"],
            registry=r,
        )  # fmt: skip
        self.round_duration = Histogram(
            "d3_validator_round_duration_seconds", "time one round took (read, judge, audit)",
            buckets=self.ROUND_BUCKETS, registry=r,
        )  # fmt: skip
        self.commitments_read = Counter(
            "d3_validator_commitments_read", "commitments read from chain history", registry=r
        )
        self.manifests_accepted = Counter(
            "d3_validator_manifests_accepted", "commitments accepted", registry=r
        )
        self.manifests_rejected = Counter(
            "d3_validator_manifests_rejected",
            "commitments rejected, by reason class (see docs/monitoring.md)",
            ["reason"],
            registry=r,
        )
        self.commitments_neutral = Counter(
            "d3_validator_commitments_neutral",
            "commitments judged without effect (not D3, repeated manifests)",
            registry=r,
        )
        self.new_unique = Counter(
            "d3_validator_new_unique_tweets", "tweet IDs credited for the first time", registry=r
        )
        self.audits = Counter("d3_validator_audits", "miners' periods audited on X", registry=r)
        self.audits_waiting = Gauge(
            "d3_validator_audits_waiting",
            "miners whose audit of a closed period waits (X down, look-ups spent); weights wait",
            registry=r,
        )
        self.audits_provisional = Gauge(
            "d3_validator_audits_provisional",
            "miners' periods counted with silent picks as not found until X is asked again",
            registry=r,
        )
        self.lookups = Counter(
            "d3_validator_lookups", "tweets looked up on X, by answer", ["answer"], registry=r
        )
        self.lookup_budget = Gauge(
            "d3_validator_lookup_budget_available", "look-ups the daily allowance has now",
            registry=r,
        )  # fmt: skip
        self.index_size = Gauge(
            "d3_validator_index_credited_ids", "tweet IDs credited in the index", registry=r
        )
        self.queue_size = Gauge(
            "d3_validator_queue_size", "commitments read but not yet judged", registry=r
        )
        self.caught_up = Gauge(
            "d3_validator_caught_up", "1 when no history is left to replay", registry=r
        )
        self.block = Gauge("d3_validator_block", "chain head at the last round", registry=r)
        self.weight_sets = Counter(
            "d3_validator_weight_sets",
            "weight-sets tried, by verdict (ok or the chain's or the preflight's code)",
            ["verdict"],
            registry=r,
        )
        self.last_weights_block = Gauge(
            "d3_validator_last_weights_block", "block of the last weight-set that landed",
            registry=r,
        )  # fmt: skip
        self.reveals = Counter(
            "d3_validator_reveals",
            "timelocked weight commits resolved, by outcome (revealed or reveal_failed)",
            ["outcome"],
            registry=r,
        )
        self.redis_errors = Counter(
            "d3_validator_redis_errors", "rounds that failed on Redis", registry=r
        )
        self.chain_errors = Counter(
            "d3_validator_chain_errors", "chain reads that failed", registry=r
        )
        self.miners_scored = Gauge(
            "d3_validator_miners_with_weight", "miners this validator gives a weight", registry=r
        )

    def count_round(self, report: Any) -> None:
        """Count one `RoundReport`."""
        self.commitments_read.inc(report.read)
        self.manifests_accepted.inc(len(report.accepted))
        for reason in report.rejected.values():
            self.manifests_rejected.labels(reason_class(reason)).inc()
        self.commitments_neutral.inc(report.neutral)
        self.new_unique.inc(report.new_unique)
        self.audits.inc(report.audited)
        self.audits_waiting.set(report.audits_waiting)
        self.audits_provisional.set(report.audits_provisional)
        self.caught_up.set(1 if report.caught_up else 0)
        self.block.set(report.block)


@dataclass
class _Loop:
    due: float  # monotonic time by which the next iteration must end
    iterations: int = 0
    last: float | None = None


@dataclass
class Health:
    """Heartbeats of a neuron's loops. A loop `beat`s at the end of each iteration, saying
    how long it means to sit idle before the next (a backoff, a wait for blocks); it is
    stale once `stale_s` more than that has passed. A registered loop that has not beaten
    yet is given `stale_s` from its registration."""

    stale_s: float
    clock: Callable[[], float] = time.monotonic
    _loops: dict[str, _Loop] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, *names: str) -> None:
        with self._lock:
            for name in names:
                self._loops.setdefault(name, _Loop(self.clock() + self.stale_s))

    def beat(self, name: str, idle_s: float = 0.0) -> None:
        now = self.clock()
        with self._lock:
            loop = self._loops.setdefault(name, _Loop(now))
            loop.iterations += 1
            loop.last = now
            loop.due = now + max(0.0, idle_s) + self.stale_s

    def status(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, a JSON-able body naming each loop's state)."""
        now = self.clock()
        with self._lock:
            loops = {
                name: {
                    "ok": now <= loop.due,
                    "iterations": loop.iterations,
                    "seconds_since_last": None if loop.last is None else round(now - loop.last, 3),
                    "seconds_until_stale": round(loop.due - now, 3),
                }
                for name, loop in self._loops.items()
            }
        healthy = bool(loops) and all(v["ok"] for v in loops.values())
        return healthy, {"ok": healthy, "stale_s": self.stale_s, "loops": loops}


def metrics_routes(
    registry: CollectorRegistry,
    health: Health,
    documents: dict[str, Callable[[], Any]] | None = None,
) -> list[Route]:
    """/metrics, /healthz and read-only JSON documents (a path -> a function returning a
    JSON-able snapshot, or None: 503, no round has finished yet)."""

    def metrics(_: Request) -> Response:
        return Response(200, CONTENT_TYPE_LATEST, generate_latest(registry))

    def healthz(_: Request) -> Response:
        healthy, body = health.status()
        return Response.json(body, 200 if healthy else 503)

    routes = [Route("/metrics", metrics), Route("/healthz", healthz)]
    for path, read in (documents or {}).items():
        routes.append(json_route(path, read, "no round has finished yet"))
    return routes


class MetricsServer(ReadOnlyServer):
    """/metrics, /healthz and any read-only JSON documents, served from a daemon thread
    (`d3/web/server.py`); `documents` run in the server's thread, so they must only read
    a snapshot."""

    def __init__(
        self,
        registry: CollectorRegistry,
        health: Health,
        host: str = "127.0.0.1",
        port: int = 0,
        documents: dict[str, Callable[[], Any]] | None = None,
    ):
        super().__init__(metrics_routes(registry, health, documents), host, port)


@contextlib.contextmanager
def serve_metrics(
    section: MetricsConfig,
    registry: CollectorRegistry,
    health: Health,
    documents: dict[str, Callable[[], Any]] | None = None,
) -> Iterator[MetricsServer | None]:
    """The metrics server the `--metrics.*` flags ask for (none for port 0) while the
    block runs; FatalError naming the address when it cannot be bound."""
    if not section.port:
        yield None
        return
    try:
        server = MetricsServer(registry, health, section.host, section.port, documents)
    except OSError as error:
        raise FatalError(
            f"cannot serve metrics on {section.host}:{section.port}: {error.strerror or error}"
        ) from None
    with server:
        also = "".join(f", {PurePosixPath(path).stem} on {path}" for path in documents or {})
        logger.info("metrics on {}/metrics, health on /healthz{}", server.url, also)
        yield server
