"""Neurons as operators run them, as processes: `NeuronProcess` reads a neuron's output line
by line as it comes, and `start_miner` runs `neurons/miner.py` on the dev network of
tests/support/net.py, scraping a local X server and publishing into a directory."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from d3.dev.x_server import DEFAULT_TOKEN, LocalXServer
from tests.support.net import NETUID, Net

ROOT = Path(__file__).resolve().parents[2]
# A query the local X corpus answers at once, scraped often: a miner has rows in seconds.
PLAN = """
[defaults]
interval_s = 10
limit = 200
[[queries]]
name = "ai"
keywords = ["ai", "model"]
"""


class NeuronProcess:
    """A neuron's process whose stdout and stderr threads read as they come: a test waits
    for a log line (a bound on the wait, never a fixed sleep) and a full pipe never stalls
    the neuron."""

    def __init__(self, args: list[str]) -> None:
        self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self._out: list[str] = []
        self._err: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()  # stdout; None: it closed
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self._out, True)),
            threading.Thread(target=self._read, args=(self.process.stderr, self._err, False)),
        ]
        for reader in self._readers:
            reader.daemon = True
            reader.start()

    def _read(self, pipe: IO[str], into: list[str], announce: bool) -> None:
        for line in pipe:
            into.append(line)
            if announce:
                self._lines.put(line)
        if announce:
            self._lines.put(None)

    @property
    def stdout(self) -> str:
        return "".join(self._out)

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    def tail(self, chars: int = 3000) -> str:
        return f"stdout: {self.stdout[-chars:]}\nstderr: {self.stderr[-chars:]}"

    def wait_for(self, pattern: str, deadline_s: float = 120) -> str:
        """The next line on stdout that matches `pattern` (a regular expression); fails
        when the process closes its stdout (exits) or `deadline_s` passes first."""
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"no line matching {pattern!r} within {deadline_s:.0f}s\n{self.tail()}"
                ) from None
            if line is None:
                raise AssertionError(
                    f"exited ({self.process.wait()}) before a line matching {pattern!r}\n"
                    f"{self.tail()}"
                )
            if re.search(pattern, line):
                return line

    def alive(self) -> None:
        """Fail, with its output, if the process has exited."""
        assert self.process.poll() is None, self.tail()

    def wait(self, timeout_s: float = 60) -> int:
        """Its exit status, once it has exited and all of its output is read."""
        status = self.process.wait(timeout=timeout_s)
        for reader in self._readers:
            reader.join(timeout=timeout_s)
        return status

    def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM (as pm2 stops it), then `wait`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout_s)


class MinerProcess(NeuronProcess):
    def __init__(self, args: list[str], host_dir: Path) -> None:
        super().__init__(args)
        self.host_dir = host_dir  # where it publishes (`--host.dir`)


def start_miner(
    net: Net, x: LocalXServer, workdir: Path, *flags: str, plan: str = PLAN
) -> MinerProcess:
    """The miner of wallet "miner" on `net`, scraping `x` by `plan` every few seconds and
    publishing each block into `net.data_dir / "miner"`; its plan and store in `workdir`;
    `flags` are added to its command line."""
    (workdir / "plan.toml").write_text(plan)
    host_dir = net.data_dir / "miner"
    args = [
        sys.executable, str(ROOT / "neurons" / "miner.py"),
        "--netuid", str(NETUID), "--subtensor.network", f"dev:{net.dev.path}",
        "--wallet.name", "miner", "--wallet.path", str(net.wallets_dir),
        "--source.x_bearer_token", DEFAULT_TOKEN, "--source.x_api_base_url", x.base_url,
        "--source.query_plan", str(workdir / "plan.toml"), "--host.dir", str(host_dir),
        "--neuron.store_path", str(workdir / "miner" / "store.sqlite"),
        "--neuron.commit_interval", "1", "--neuron.shard_rows", "100",
        *flags,
    ]  # fmt: skip
    return MinerProcess(args, host_dir)
