"""A real miner process: /metrics counts what it scraped, stored, committed and uploaded,
/healthz is 200 while both loops run, and every JSON log line carries its hotkey."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import bittensor as bt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from d3.chain.sdk import SdkChain
from d3.dev.chain_state import SubnetParams
from d3.dev.substrate import DevSubstrate
from d3.dev.wallets import dev_wallet
from d3.dev.x_server import DEFAULT_TOKEN, LocalXServer
from tests.observability.support import free_port, get, get_json, poll

ROOT = Path(__file__).resolve().parents[2]
NETUID = 5
PLAN = """
[defaults]
interval_s = 10
limit = 200
[[queries]]
name = "ai"
keywords = ["ai", "model"]
"""


@pytest.fixture
def world(tmp_path):
    dev = DevSubstrate(tmp_path / "chain.sqlite")
    owner = dev_wallet(tmp_path / "w", "owner")
    dev.create_subnet(
        NETUID, owner.hotkey.ss58_address, owner.coldkeypub.ss58_address, SubnetParams()
    )
    host_dir = Path(tempfile.mkdtemp(prefix="d3o"))  # file:// locators must stay short
    with LocalXServer(seed=7, size=3000) as x:
        yield dev, x, host_dir, tmp_path
    shutil.rmtree(host_dir, ignore_errors=True)


async def _register(dev, tmp) -> str:
    async with bt.Subtensor("local", substrate=dev) as client:
        chain = SdkChain(client, dev_wallet(tmp / "w", "miner"), NETUID)
        assert (await chain.register()).ok
        return chain.hotkey


def _metrics(url: str) -> dict[str, float]:
    """sample name{labels} -> value, for every sample."""
    out = {}
    for family in text_string_to_metric_families(get(f"{url}/metrics").text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def test_miner_metrics_health_and_json_logs_with_its_hotkey(world):
    dev, x, host_dir, tmp = world
    hotkey = asyncio.run(_register(dev, tmp))
    (tmp / "plan.toml").write_text(PLAN)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "miner.out"
    args = [
        sys.executable, str(ROOT / "neurons" / "miner.py"),
        "--netuid", str(NETUID), "--subtensor.network", f"dev:{dev.path}",
        "--wallet.name", "miner", "--wallet.path", str(tmp / "w"),
        "--source.x_bearer_token", DEFAULT_TOKEN, "--source.x_api_base_url", x.base_url,
        "--source.query_plan", str(tmp / "plan.toml"), "--host.dir", str(host_dir),
        "--neuron.store_path", str(tmp / "m" / "store.sqlite"),
        "--neuron.commit_interval", "1", "--neuron.shard_rows", "100",
        "--metrics.port", str(port), "--logging.json", "--logging.stream", "stdout",
    ]  # fmt: skip
    with log.open("w") as out, (tmp / "miner.err").open("w") as err:
        process = subprocess.Popen(args, stdout=out, stderr=err, text=True)

    def alive() -> None:
        assert process.poll() is None, log.read_text()[-3000:]

    try:
        metrics = poll(
            lambda: (m := _metrics(url)).get("d3_miner_uploads_total{outcome=ok}", 0) > 0 and m,
            "an upload counted in /metrics",
            alive=alive,
        )
        assert metrics["d3_miner_tweets_scraped_total{query=ai}"] > 0
        assert metrics["d3_miner_tweets_stored_total{query=ai}"] > 0
        assert metrics["d3_miner_commits_total{verdict=ok}"] >= 1
        assert metrics["d3_miner_last_commit_block{}"] > 0
        assert metrics["d3_miner_upload_bytes_total{}"] > 0
        later = poll(
            lambda: (m := _metrics(url)).get("d3_miner_tweets_published_total{}", 0) > 0 and m,
            "published rows",
            alive=alive,
        )
        published = later["d3_miner_tweets_published_total{}"]
        assert published <= later["d3_miner_tweets_stored_total{query=ai}"]
        assert later["d3_miner_publications_total{}"] >= 1
        status, body = get_json(f"{url}/healthz")
        assert status == 200 and set(body["loops"]) == {"scrape", "publish"}, body
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0, log.read_text()[-3000:]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert any("committed at block" in line["message"] for line in lines)
    ours = [line for line in lines if line["name"].startswith("d3.")]
    assert ours and all(line["hotkey"] == hotkey[:10] for line in ours)
    assert (tmp / "miner.err").read_text() == ""  # nothing on stderr: pm2 files it as out
