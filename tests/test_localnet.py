"""A short local network end to end: the mechanism punishes copying and fabrication."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def test_local_network_rewards_honest_miners_only():
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
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    board = json.loads(result.stdout.strip().splitlines()[-1])["miners"]
    roles = {m["role"] for m in board}
    assert roles == {"honest", "copier", "fabricator"}
    by_role = {role: [m for m in board if m["role"] == role] for role in roles}
    [fabricator], [copier] = by_role["fabricator"], by_role["copier"]
    assert fabricator["committed"] > 0 and fabricator["weight"] == 0
    assert fabricator["credibility"] < 1
    assert copier["committed"] > 0 and copier["unique"] == 0 and copier["weight"] == 0
    honest = by_role["honest"]
    assert all(m["unique"] > 0 and m["weight"] > 0 for m in honest)
    assert abs(sum(m["weight"] for m in honest) - 1) < 0.01
    assert "redis-server:" in result.stderr and "block " in result.stderr


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_prepare_writes_a_pm2_file_of_real_processes(tmp_path):
    target = tmp_path / "net"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "d3.localnet",
            "--prepare",
            str(target),
            "--miners",
            "2",
            "--fabricator",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"pm2 start {target}/localnet.config.js" in done.stdout
    dump = "console.log(JSON.stringify(require(process.argv[1]).apps))"
    apps = json.loads(
        subprocess.run(
            ["node", "-e", dump, str(target / "localnet.config.js")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    by_name = {a["name"]: a for a in apps}
    assert set(by_name) == {
        "d3-local-x",
        "d3-local-redis",
        "d3-local-miner0",
        "d3-local-miner1",
        "d3-local-fabricator",
        "d3-local-validator",
    }
    for name in ("miner0", "fabricator", "validator"):
        args = by_name[f"d3-local-{name}"]["args"]
        assert Path(args[0]).name in ("miner.py", "validator.py") and Path(args[0]).exists()
        assert args[args.index("--subtensor.network") + 1] == f"dev:{target}/chain.sqlite"
    # The chain is ready: every neuron is registered before pm2 starts anything.
    board = subprocess.run(
        [
            sys.executable,
            "-c",
            "from d3.dev.substrate import DevSubstrate; "
            f"print(len(DevSubstrate({str(target / 'chain.sqlite')!r}).state.neurons(1, 10**9)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert board.stdout.strip() == "4"
