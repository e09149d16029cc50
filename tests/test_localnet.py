"""A short local network end to end: the mechanism punishes copying and fabrication."""

import json
import subprocess
import sys


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
