"""Every dashboard page, rendered by a real headless Chromium from a validator that judged a
real network on the dev chain (two honest miners, a copier, a fabricator, a miner whose
counts X contradicts, one whose shard does not match its manifest), and the hub's page.

Asserted on the DOM the browser built: the leaderboard lists every miner with the numbers
that set weights, plots are drawn, a rejected manifest shows its reason, the network and
data pages show what they promise. A screenshot of each page (desktop and phone widths) is
kept in .artifacts/screenshots (D3_TEST_ARTIFACTS)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import bittensor as bt

from d3.config import load_config
from d3.dev.synthetic import synthetic_table
from d3.hub.serve import serve_hub
from d3.metrics import ValidatorMetrics
from d3.validator.dashboard import ValidatorDashboard
from d3.validator.neuron import Validator, ValidatorConfig
from d3.validator.state import STATE_VERSION
from d3.web.server import ReadOnlyServer
from tests.hub.support import START, build
from tests.support.datasets import write_dataset
from tests.support.net import NETUID, registered

from .browser import Browser, Element

PAGES = ("leaderboard", "miner", "network", "data")


def _numbers(text: str) -> float:
    return float(text.replace(",", "")) if text not in ("–", "") else float("nan")


async def _until(check, what: str, task: asyncio.Task, deadline_s: float = 120):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if task.done():
            task.result()
            raise AssertionError("the validator loop ended")
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)  # the loop's turn, not a synchronisation
    raise AssertionError(f"timed out waiting for {what}")


def _render(browser: Browser, url: str, name: str) -> Element:
    browser.screenshot(url, f"{name}-desktop", 1280, 1800)
    browser.screenshot(url, f"{name}-phone", 390, 1600)
    dom = browser.dom(url)
    body = dom.find("body")[0]
    status = dom.by_id("status").text
    assert body.attrs.get("data-rendered"), f"{name} never rendered: {status}"
    assert "error" not in dom.by_id("status").attrs.get("class", ""), status
    return dom


def _drawn(dom: Element, chart: str) -> int:
    return int(dom.by_id(f"{chart}-chart").attrs.get("data-drawn", "0"))


def test_every_page_renders_in_a_real_browser(net, redis_url, tmp_path, browser):
    hub_dir = tmp_path / "hub"

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            world, runner, builder, _ = await build(net, client, redis_url, hub_dir)
            builder.close()
            # This release wrote the state: the loop's start-up check keeps it.
            await runner.state.set_meta("version", STATE_VERSION)
            # A miner whose shard is not the one its manifest hashes: rejected, with why.
            broken = (await registered(client, net, ["broken"]))["broken"]
            table = synthetic_table(20, seed=99, start=START)
            published = write_dataset(
                net.data_dir / "broken", net.wallet("broken").hotkey, NETUID, [table]
            )
            [shard] = (net.data_dir / "broken").glob("*.parquet")
            shard.write_bytes(shard.read_bytes()[:-16] + b"\0" * 16)
            assert (await broken.commit(published.commitment)).ok
            net.dev.advance(1)
            argv = [
                "--netuid", str(NETUID), "--subtensor.network", f"dev:{net.dev.path}",
                "--redis.url", redis_url, "--neuron.poll_blocks", "1",
                "--neuron.weights_interval", "1000000", "--verify.daily_budget", "0",
                "--verify.structure_only",
            ]  # fmt: skip
            config = load_config(ValidatorConfig, argv, env={})
            metrics = ValidatorMetrics()
            validator = Validator(config, runner.chain, runner, metrics)
            dashboard = ValidatorDashboard(
                validator, asyncio.get_running_loop(), hub_dir, refresh_s=60
            )
            broken_hotkey = net.wallet("broken").hotkey.ss58_address
            with ReadOnlyServer(dashboard.routes()) as server:
                task = asyncio.create_task(validator.run())
                try:

                    def judged():
                        board = validator.leaderboard
                        return board and any(r.hotkey == broken_hotkey for r in board.rows)

                    await _until(judged, "the broken miner on the leaderboard", task)
                    board = validator.leaderboard
                    urls = {
                        "leaderboard": f"{server.url}/",
                        "network": f"{server.url}/network",
                        "data": f"{server.url}/data",
                        "miner-broken": f"{server.url}/miner/{broken_hotkey}",
                        "miner-fabricator": f"{server.url}/miner/{world.hotkeys['fabricator']}",
                        "miner-honest": f"{server.url}/miner/{world.hotkeys['honest-a']}",
                    }
                    doms = {}
                    for name, url in urls.items():  # the loop serves the miner pages' reads
                        doms[name] = await asyncio.to_thread(_render, browser, url, name)
                finally:
                    validator.stop.set()
                    await task
            await runner.state.redis.aclose()
            index_ids = metrics.registry.get_sample_value("d3_validator_index_credited_ids")
            return world, board, doms, index_ids

    world, board, doms, index_ids = asyncio.run(body())

    # The leaderboard: every miner, in the read model's order, with its numbers.
    rows = doms["leaderboard"].by_id("leaderboard").table()
    header, *cells = rows
    assert header[:3] == ["rank", "uid", "hotkey"] and "weight on chain" in header
    assert len(cells) == len(board.rows) == 6 + 2  # the miners and the two validators
    for shown, row in zip(cells, board.rows, strict=True):
        assert int(shown[0]) == row.rank and int(shown[1]) == row.uid
        assert row.hotkey.startswith(shown[2].rstrip("…"))
        assert _numbers(shown[3]) == row.unique
        assert abs(_numbers(shown[8]) - row.weight) < 1e-4
    links = [a.attrs["href"] for a in doms["leaderboard"].by_id("leaderboard").find("a")]
    assert sorted(links) == sorted(f"/miner/{r.hotkey}" for r in board.rows)
    assert "credibility" in doms["leaderboard"].by_id("legend").text
    assert _drawn(doms["leaderboard"], "weights") >= 2  # the honest miners at least

    # A rejected manifest shows its reason; a failed audit shows X's finding.
    commitments = doms["miner-broken"].by_id("commitments").table()
    assert commitments[0][:5] == ["block", "manifest", "verdict", "new unique", "reason"]
    [rejected] = [r for r in commitments[1:] if r[2] == "rejected"]
    reason = rejected[4]
    assert "sha256" in reason or "hash" in reason, reason
    audits = doms["miner-fabricator"].by_id("audits").table()
    assert any(r[4] == "rejected" and r[5] for r in audits[1:]), audits
    honest = doms["miner-honest"]
    assert _drawn(honest, "credit") >= 2  # two credit periods
    assert world.hotkeys["honest-a"] in honest.by_id("title").text
    accepted = [r for r in honest.by_id("commitments").table()[1:] if r[2] == "accepted"]
    assert len(accepted) == 2, honest.by_id("commitments").table()

    # The network: index size, look-ups, rounds (a plot), weights, commit-reveal, health.
    network = doms["network"]
    cards = {c.attrs["data-name"]: c.text for c in network.find(cls="card")}
    assert cards["index"] == f"index (credited IDs){int(index_ids):,}" and index_ids > 200
    assert "look-ups spent" in cards["lookups-spent"]
    assert cards["loops"].endswith("healthy")
    assert _drawn(network, "round-times") >= 1
    assert network.by_id("commit-reveal").find(cls="card")
    assert len(network.by_id("rounds").table()) >= 2

    # The data page: the hub's volume per day (a plot), languages, hashtags, how to load.
    data = doms["data"]
    rows_card = next(c for c in data.find(cls="card") if c.attrs["data-name"] == "rows")
    assert rows_card.text.endswith("240")  # every credited tweet once (tests/hub)
    assert _drawn(data, "volume") == 2  # the tweets span two days
    assert len(data.by_id("languages").table()) > 1
    assert "load_dataset" in data.by_id("load").text
    assert "X Developer Agreement" in data.by_id("load").text


def test_the_hub_serves_its_page_and_its_files(net, redis_url, tmp_path, browser):
    hub_dir: Path = tmp_path / "hub"

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            _, runner, builder, report = await build(net, client, redis_url, hub_dir)
            builder.close()
            await runner.state.redis.aclose()
            return report

    report = asyncio.run(body())
    with serve_hub(hub_dir) as server:
        dom = _render(browser, f"{server.url}/", "hub")
        sample = dom.by_id("sample").table()
        assert len(sample) == 1 + 8 and sample[0][0] == "id"
        assert _drawn(dom, "volume") == 2
        assert [a.text for a in dom.find("nav")[0].find("a")] == ["Data", "Index", "Card"]
        import httpx

        index = httpx.get(f"{server.url}/files/index.json", timeout=10).json()
        assert index["rows"] == report.rows == 240
        assert httpx.get(f"{server.url}/files/.hub/ledger.sqlite", timeout=10).status_code == 404
