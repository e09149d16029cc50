"""The hub of a local network (`python -m d3.localnet --hub DIR`).

Built once the validators have judged and audited everything, from the first validator's
state and index, through the same `RoundRunner` the leaderboard reads (built by the
validator's own `build_runner` from its own flags), so the hub and the board are the
same numbers. With several validators each one's hub is built too, beside the network's
data, and compared byte for byte with the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import bittensor as bt

from d3.dev.wallets import dev_wallet
from d3.hub.builder import HubBuilder, UpdateReport
from d3.hub.layout import SIGNATURE_NAME, STATE_DIR


def published_bytes(directory: Path) -> dict[str, bytes]:
    """Every published file but the signature (each validator signs with its own key)."""
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
        and STATE_DIR not in p.relative_to(directory).parts
        and p.name != SIGNATURE_NAME
    }


async def build_localnet_hub(
    net, dev, commands: Mapping[str, list[str]], directory: Path
) -> tuple[UpdateReport, bool | None]:
    """Build the first validator's hub in `directory`. Returns its report and, with more
    than one validator, whether every validator's hub has the same bytes (else None)."""
    reports: list[UpdateReport] = []
    dirs: list[Path] = []
    async with (
        bt.Subtensor("local", substrate=dev) as client,
        net.runners(client, commands) as runners,
    ):
        for i, (spec, runner) in enumerate(runners):
            target = directory if i == 0 else net.dir / "hubs" / spec.name
            signer = dev_wallet(net.wallets, spec.name).hotkey
            builder = HubBuilder.for_runner(target, runner, signer)
            try:
                reports.append(await builder.update())
            finally:
                builder.close()
            dirs.append(target)
    if len(dirs) == 1:
        return reports[0], None
    first = published_bytes(dirs[0])
    return reports[0], all(published_bytes(d) == first for d in dirs[1:])
