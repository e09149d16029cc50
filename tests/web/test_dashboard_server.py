"""The dashboard's server answers even when the validator cannot: a miner's page on a
stuck event loop is a 503 within its deadline, not a hung request; names that are not
hotkeys are 404s; a hub directory with nothing built yet is a 503 that says so."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import httpx

from d3.validator.dashboard import ValidatorDashboard
from d3.web.server import ReadOnlyServer

HOTKEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


def test_a_stuck_loop_makes_the_miner_page_busy_not_hung(tmp_path):
    loop = asyncio.new_event_loop()
    release = threading.Event()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    loop.call_soon_threadsafe(release.wait)  # the loop is stuck in a blocking call
    validator = SimpleNamespace(leaderboard=None, leaderboard_json=lambda: None)
    dashboard = ValidatorDashboard(validator, loop, tmp_path / "hub", read_timeout_s=0.5)
    try:
        with ReadOnlyServer(dashboard.routes()) as server:
            busy = httpx.get(f"{server.url}/api/miner/{HOTKEY}.json", timeout=30)
            assert busy.status_code == 503 and "busy" in busy.json()["error"]
            for path in ("/api/miner/not-a-hotkey.json", "/miner/../etc", "/miner/x" * 3):
                assert httpx.get(server.url + path, timeout=30).status_code == 404, path
            page = httpx.get(f"{server.url}/miner/{HOTKEY}", timeout=30)
            assert page.status_code == 200 and f"/api/miner/{HOTKEY}.json" in page.text
            # Nothing has run yet: the JSON read models say so, the pages still load.
            for api in ("/api/leaderboard.json", "/api/network.json", "/api/data.json"):
                response = httpx.get(server.url + api, timeout=30)
                assert response.status_code == 503 and "not ready" in response.json()["error"]
            assert "no hub built there yet" in httpx.get(f"{server.url}/api/data.json").text
            assert httpx.get(f"{server.url}/data", timeout=30).status_code == 200
    finally:
        release.set()
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(10)  # drain
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
