"""A real miner process: /metrics counts what it scraped, stored, committed and uploaded,
/healthz is 200 while both loops run, and every JSON log line carries its hotkey."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from d3.dev.x_server import LocalXServer
from tests.observability.support import free_port, get, get_json, poll
from tests.support.net import register
from tests.support.neuron import start_miner


@pytest.fixture
def x():
    with LocalXServer(seed=7, size=3000) as server:
        yield server


def _metrics(url: str) -> dict[str, float]:
    """sample name{labels} -> value, for every sample."""
    out = {}
    for family in text_string_to_metric_families(get(f"{url}/metrics").text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def test_miner_metrics_health_and_json_logs_with_its_hotkey(net, x, tmp_path):
    hotkey = register(net, "miner")["miner"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    miner = start_miner(net, x, tmp_path, "--metrics.port", str(port), "--logging.json")
    try:
        metrics = poll(
            lambda: (m := _metrics(url)).get("d3_miner_uploads_total{outcome=ok}", 0) > 0 and m,
            "an upload counted in /metrics",
            alive=miner.alive,
        )
        assert metrics["d3_miner_tweets_scraped_total{query=ai}"] > 0
        assert metrics["d3_miner_tweets_stored_total{query=ai}"] > 0
        assert metrics["d3_miner_commits_total{verdict=ok}"] >= 1
        assert metrics["d3_miner_last_commit_block{}"] > 0
        assert metrics["d3_miner_upload_bytes_total{}"] > 0
        later = poll(
            lambda: (m := _metrics(url)).get("d3_miner_tweets_published_total{}", 0) > 0 and m,
            "published rows",
            alive=miner.alive,
        )
        published = later["d3_miner_tweets_published_total{}"]
        assert published <= later["d3_miner_tweets_stored_total{query=ai}"]
        assert later["d3_miner_publications_total{}"] >= 1
        code, body = get_json(f"{url}/healthz")
        assert code == 200 and set(body["loops"]) == {"scrape", "publish"}, body
    finally:
        exit_status = miner.stop()
    assert exit_status == 0, miner.tail()
    lines = [json.loads(line) for line in miner.stdout.splitlines()]
    assert any("committed at block" in line["message"] for line in lines)
    ours = [line for line in lines if line["name"].startswith("d3.")]
    assert ours and all(line["hotkey"] == hotkey[:10] for line in ours)
    assert miner.stderr == ""  # the log is on stdout by default: pm2 files it as out
