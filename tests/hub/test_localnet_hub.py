"""`./scripts/localnet --copier --fabricator --hub DIR --json` leaves the hub in DIR: every
id once, nothing from the copier or the fabricator, and each honest miner holding exactly
the tweets the leaderboard credits it with."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.compute as pc
import pyarrow.dataset as pads
import pytest

from d3.hub.layout import verify_copy


@pytest.mark.slow
def test_the_local_network_leaves_its_hub(tmp_path):
    hub = tmp_path / "hub"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "d3.localnet",
            "--miners",
            "2",
            "--blocks",
            "60",
            "--copier",
            "--fabricator",
            "--hub",
            str(hub),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    board = json.loads(result.stdout.strip().splitlines()[-1])["miners"]
    assert f"hub in {hub}:" in result.stderr
    verify_copy(hub)
    table = pads.dataset(hub / "data").to_table()
    try:
        import datasets
    except ImportError:
        pass
    else:
        loaded = datasets.load_dataset(str(hub), split="train", cache_dir=str(tmp_path / "c"))
        assert sorted(loaded["id"]) == sorted(table["id"].to_pylist())
    assert table.num_rows > 0
    assert pc.count_distinct(table["id"]).as_py() == table.num_rows  # every id once
    counts = {e["values"]: e["counts"] for e in pc.value_counts(table["miner_hotkey"]).to_pylist()}
    roles = {m["hotkey"]: m["role"] for m in board}
    assert {roles[h] for h in counts} == {"honest"}  # no copier, no fabricator
    for miner in board:
        if miner["role"] == "honest":
            assert counts[miner["hotkey"]] == miner["unique"] > 0
