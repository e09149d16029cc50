"""The pieces in isolation, over real HTTP: server, health, reason classes, leaderboard, logs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import httpx
import pytest
from loguru import logger
from prometheus_client.parser import text_string_to_metric_families

from d3.chain.interface import MetagraphSnapshot, Neuron
from d3.config import MetricsConfig
from d3.errors import FatalError
from d3.metrics import (
    Health,
    MetricsServer,
    MinerMetrics,
    ValidatorMetrics,
    reason_class,
    serve_metrics,
)
from d3.validator.leaderboard import build, normalised
from d3.validator.scoring import ScoringParams, score_miners


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_two_neurons_have_separate_registries_and_the_server_speaks_prometheus():
    one, two = ValidatorMetrics(), ValidatorMetrics()
    one.manifests_accepted.inc(3)
    one.manifests_rejected.labels("signature").inc()
    MinerMetrics().commits.labels("ok").inc()  # no collision with the validator's names
    with MetricsServer(one.registry, Health(60), port=0) as server:
        response = httpx.get(f"{server.url}/metrics", timeout=10)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(response.text)}
        [sample] = families["d3_validator_manifests_accepted"].samples
        assert sample.value == 3
        assert any(
            s.labels == {"reason": "signature"} and s.value == 1
            for s in families["d3_validator_manifests_rejected"].samples
        )
        assert httpx.get(f"{server.url}/nope", timeout=10).status_code == 404
    [total] = [s for s in two.manifests_accepted.collect()[0].samples if s.name.endswith("_total")]
    assert total.value == 0


def test_healthz_goes_stale_after_the_bound_plus_the_planned_idle_time():
    clock = FakeClock()
    health = Health(stale_s=10, clock=clock)
    health.register("scrape", "publish")
    with MetricsServer(ValidatorMetrics().registry, health, port=0) as server:
        url = f"{server.url}/healthz"
        assert httpx.get(url, timeout=10).status_code == 200  # start-up grace
        clock.now += 11
        response = httpx.get(url, timeout=10)
        assert response.status_code == 503
        assert response.json()["loops"]["scrape"]["ok"] is False
        health.beat("scrape", idle_s=100)  # a planned backoff is not being stuck
        health.beat("publish")
        clock.now += 50
        assert httpx.get(url, timeout=10).status_code == 503  # publish: 50 > 10
        health.beat("publish")
        assert httpx.get(url, timeout=10).status_code == 200
        clock.now += 61
        body = httpx.get(url, timeout=10).json()
        assert body["loops"]["scrape"]["ok"] is False and body["ok"] is False


def test_serve_metrics_is_what_the_flags_ask_for_and_a_taken_port_is_one_fatal_line():
    """The one start-up path both neurons take: port 0 serves nothing, a port serves the
    registry, health and documents and says where, a port in use stops the neuron."""
    metrics, health = ValidatorMetrics(), Health(60)
    health.beat("rounds")
    with serve_metrics(MetricsConfig(port=0), metrics.registry, health) as server:
        assert server is None
    told: list[str] = []
    sink = logger.add(lambda m: told.append(m.record["message"]), filter="d3.metrics")
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        section = MetricsConfig(port=port)
        board = {"miners": []}
        with serve_metrics(section, metrics.registry, health, {"/board.json": lambda: board}):
            url = f"http://127.0.0.1:{port}"
            assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
            assert httpx.get(f"{url}/board.json", timeout=10).json() == board
            with (
                pytest.raises(FatalError) as taken,
                serve_metrics(section, metrics.registry, health),
            ):
                pass
    finally:
        logger.remove(sink)
    assert told == [
        f"metrics on http://127.0.0.1:{port}/metrics, health on /healthz, board on /board.json"
    ]
    assert str(taken.value).startswith(f"cannot serve metrics on 127.0.0.1:{port}: ")
    assert "\n" not in str(taken.value)


def test_reason_classes_are_few_and_cover_the_pipelines_reasons():
    cases = {
        "not available 50 blocks after commit: x: no such file": "unavailable",
        "https://h/x.json: HTTP 500": "unavailable",
        "signature does not verify for the committing hotkey": "signature",
        "manifest is for hotkey 5F.., committed by 5G..": "signature",
        "manifest bytes do not match the committed sha256": "manifest",
        "shard 0123456789ab: rows are not sorted by id": "shard",
        "unexpected validator error: KeyError: 1": "validator",
        "something new": "other",
    }
    assert {reason: reason_class(reason) for reason in cases} == cases


def test_leaderboard_orders_by_score_shares_ranks_and_keeps_the_scoring_numbers():
    params = ScoringParams(period_blocks=100, window_periods=3)
    neurons = [(0, "hk0", 0), (1, "hk1", 0), (2, "hk2", 0), (3, "hk3", 0)]
    credits = {"hk0": {0: 100}, "hk1": {0: 1000}, "hk2": {0: 1000}}
    scores = score_miners(neurons, credits, {"hk0": 0.5}, 50, params)
    graph = MetagraphSnapshot(
        7, 50, tuple(Neuron(u, h, "ck", float(u), u == 3, 0) for u, h, _ in neurons)
    )
    board = build(scores, graph, params, normalised({1: 65535, 2: 0}))
    assert [(r.uid, r.rank) for r in board.rows] == [(1, 1), (2, 1), (0, 3), (3, 4)]
    by_uid = {s.uid: s for s in scores}
    for row in board.rows:
        s = by_uid[row.uid]
        assert (row.unique, row.noise, row.credibility, row.score, row.weight) == (
            s.unique, s.noise, s.credibility, s.score, s.weight,
        )  # fmt: skip
    assert board.rows[0].rank_steps == 0.0 and board.rows[3].rank_steps is None
    assert [r.chain_weight for r in board.rows] == [1.0, 0.0, 0.0, 0.0]
    assert board.rows[3].validator_permit
    doc = json.loads(json.dumps(board.to_json()))
    assert doc["legend"].startswith("score = max(0, unique - 2 x noise) x credibility")
    assert len(doc["miners"]) == 4 and len(board.lines()) == 5


def test_json_logs_are_one_object_per_line_with_the_bound_context_on_stdout():
    script = (
        "import logging; from loguru import logger\n"
        "from d3.config import LoggingConfig; from d3.logs import setup_logging\n"
        "setup_logging(LoggingConfig(json=True), 'demo')\n"
        "logger.bind(hotkey='5Abc', uid=3).info('manifest {} accepted {{braces}}', 'ab')\n"
        "logging.getLogger('bittensor.x').warning('sdk says hi')\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    logger.exception('boom')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3
    first, sdk, boom = lines
    assert first["message"] == "manifest ab accepted {braces}"
    assert (first["hotkey"], first["uid"], first["level"]) == ("5Abc", 3, "INFO")
    assert sdk["message"] == "sdk says hi" and sdk["level"] == "WARNING"
    assert "ZeroDivisionError" in boom["exception"]


@pytest.mark.parametrize("variable", [None, "stdout", "stderr"])
def test_the_console_log_is_on_stdout_unless_the_environment_says_stderr(variable):
    """The neurons' own path (flags and variables, then `setup_logging`), the fatal line as
    `fatal_exits` logs it: by hand as under pm2 the log is on stdout, and
    D3_LOGGING_STREAM=stderr (or --logging.stream stderr) moves all of it to stderr."""
    script = (
        "from loguru import logger\n"
        "from d3.config import NeuronBaseConfig, load_config; from d3.logs import setup_logging\n"
        "setup_logging(load_config(NeuronBaseConfig, []).logging, 'demo')\n"
        "logger.info('started'); logger.error('fatal: demo')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("D3_")} | {"D3_NETUID": "1"}
    if variable is not None:
        env["D3_LOGGING_STREAM"] = variable
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    streams = {"stdout": result.stdout, "stderr": result.stderr}
    chosen = streams.pop(variable or "stdout")
    [other] = streams.values()
    assert "started" in chosen and "fatal: demo" in chosen
    assert other == ""
