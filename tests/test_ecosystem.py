"""ecosystem.config.js loads in node, reads .env, and its apps start the real neurons."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from d3.dev.chain_state import SubnetParams
from d3.dev.substrate import DevSubstrate
from d3.dev.wallets import dev_wallet

ROOT = Path(__file__).resolve().parents[1]
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

DUMP = "console.log(JSON.stringify(require(process.argv[1]).apps))"


def _apps(config: Path, env: dict[str, str] | None = None) -> list[dict]:
    out = subprocess.run(
        [NODE, "-e", DUMP, str(config)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=30,
    )
    return json.loads(out.stdout)


def test_loads_and_points_at_the_neurons():
    apps = {a["name"]: a for a in _apps(ROOT / "ecosystem.config.js")}
    assert set(apps) == {"d3-miner", "d3-validator"}
    assert apps["d3-miner"]["script"] == str(ROOT / "neurons" / "miner.py")
    assert apps["d3-validator"]["script"] == str(ROOT / "neurons" / "validator.py")
    for app in apps.values():
        assert app["autorestart"] and app["kill_signal"] == "SIGTERM"
        assert app["out_file"].endswith(".out.log")


def test_dotenv_reaches_the_real_neuron(tmp_path):
    # A copy of the checkout's entry points beside a .env, as an operator would have it.
    shutil.copy(ROOT / "ecosystem.config.js", tmp_path)
    dev = DevSubstrate(tmp_path / "chain.sqlite")
    owner = dev_wallet(tmp_path / "w", "owner")
    dev.create_subnet(7, owner.hotkey.ss58_address, owner.coldkeypub.ss58_address, SubnetParams())
    dev_wallet(tmp_path / "w", "op")
    (tmp_path / ".env").write_text(
        f"D3_NETUID=7\nD3_SUBTENSOR_NETWORK=dev:{tmp_path}/chain.sqlite\n"
        f"D3_WALLET_NAME=op\nD3_WALLET_PATH='{tmp_path}/w'\n# a comment\n"
        f"D3_SOURCE_X_BEARER_TOKEN=abc\nD3_PYTHON={sys.executable}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("D3_")}
    [miner, _validator] = _apps(tmp_path / "ecosystem.config.js", env)
    assert miner["interpreter"] == sys.executable
    assert miner["env"]["D3_NETUID"] == "7" and miner["env"]["D3_WALLET_PATH"] == f"{tmp_path}/w"
    run = subprocess.run(
        [
            miner["interpreter"] if os.path.exists(miner["interpreter"]) else "python3",
            str(ROOT / "neurons" / "miner.py"),
        ],
        env={**env, **miner["env"]},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    # Its log reaches stdout, which pm2 files as out: an error log holds only crashes.
    assert miner["env"]["D3_LOGGING_STREAM"] == "stdout"
    assert "is not registered on netuid 7" in run.stdout and "netuid 7" not in run.stderr
