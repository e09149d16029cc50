"""`python -m d3.hub build DIR <validator flags>` builds the hub of the validator those
flags describe: the same bytes as the builder run in-process."""

from __future__ import annotations

import bittensor as bt

from d3.hub.cli import main
from tests.support.net import NETUID, run

from .support import SCORING, build, published_files


def test_build_from_the_validators_own_flags(net, redis_url, tmp_path, capsys):
    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            _, _, builder, _ = await build(net, client, redis_url, tmp_path / "direct")
            builder.close()

    run(body())
    flags = [
        "--netuid", str(NETUID),
        "--subtensor.network", f"dev:{tmp_path / 'chain.sqlite'}",
        "--wallet.name", "va",
        "--wallet.path", str(net.wallets_dir),
        "--redis.url", redis_url,
        "--verify.x_bearer_token", "unused",
        "--verify.x_api_base_url", "http://127.0.0.1:9",
        "--scoring.period_blocks", str(SCORING.period_blocks),
        "--scoring.fresh_periods", str(SCORING.fresh_periods),
        "--verify.daily_budget", "2000000",  # enough for the 50-block periods' audits
    ]  # fmt: skip
    assert main(["build", str(tmp_path / "cli"), *flags]) == 0
    assert "240 rows in all" in capsys.readouterr().out
    assert published_files(tmp_path / "cli") == published_files(tmp_path / "direct")
    assert (
        main(["verify", str(tmp_path / "cli"), "--hotkey", net.wallet("va").hotkey.ss58_address])
        == 0
    )


def test_build_with_a_missing_hotkey_is_one_line(net, tmp_path, capsys):
    flags = [
        "--netuid", str(NETUID), "--subtensor.network", f"dev:{tmp_path / 'chain.sqlite'}",
        "--wallet.name", "ghost", "--wallet.path", str(tmp_path / "no-wallets"),
        "--verify.structure_only", "--verify.daily_budget", "0",
    ]  # fmt: skip
    assert main(["build", str(tmp_path / "hub"), *flags]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("d3.hub: hotkey ghost/default in "), err
    assert not (tmp_path / "hub").exists()  # nothing written
