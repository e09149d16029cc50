"""A whole D3 network on one machine: dev chain, local X, Redis, miners and a validator.

    python -m d3.localnet [--miners 3] [--blocks 120] [--copier] [--fabricator] [--json]

Every participant is the real thing: the miners and the validator are `neurons/miner.py`
and `neurons/validator.py` processes, talking to a dev chain file through the real
bittensor SDK, scraping a local X API v2 server through tweepy, publishing to directories,
and deduplicating in a real redis-server. It runs for a bounded number of blocks and ends
with the leaderboard read back from the chain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import bittensor as bt
import redis.asyncio as aioredis

from d3.chain.sdk import SdkChain, _isolate_sdk_cache
from d3.dev.chain_state import SubnetParams
from d3.dev.redis_server import find_redis_server, free_port, start_redis
from d3.dev.substrate import DevSubstrate
from d3.dev.wallets import dev_wallet
from d3.manifest import parse_manifest
from d3.validator.index import TweetIndex
from d3.validator.state import ValidatorState
from scraping.local_x_server import DEFAULT_TOKEN, LocalXServer

NETUID = 1
ROOT = Path(__file__).resolve().parent.parent
# Different query plans per honest miner: each has its own topic and shares one with the
# next miner, so their data overlaps partly and first-committer-wins has work to do.
TOPICS = [
    ("ai", ["model", "LLM", "agents", "inference"], ["AI", "LLM"]),
    ("crypto", ["bittensor", "subnet", "validator", "stake"], ["bittensor", "TAO"]),
    ("dev", ["python", "rust", "release", "tests"], ["python", "opensource"]),
    ("science", ["paper", "experiment", "data", "results"], ["science", "research"]),
    ("life", ["coffee", "music", "trip", "book"], ["coffee", "travel"]),
]


@dataclass
class MinerRow:
    uid: int
    hotkey: str
    role: str
    committed: int
    unique: int
    credibility: float
    weight: float


def plan_toml(index: int) -> str:
    own, shared = TOPICS[index % len(TOPICS)], TOPICS[(index + 1) % len(TOPICS)]
    blocks = []
    for name, keywords, hashtags in (own, shared):
        blocks.append(
            f'[[queries]]\nname = "{name}"\nkeywords = {json.dumps(keywords)}\n'
            f"hashtags = {json.dumps(hashtags)}\n"
        )
    return "[defaults]\ninterval_s = 10\nlimit = 100\nlanguages = []\n\n" + "\n".join(blocks)


class LocalNet:
    def __init__(self, args: argparse.Namespace, workdir: Path, say):
        self.args = args
        self.dir = workdir
        self.say = say
        self.chain_file = workdir / "chain.sqlite"
        self.wallets = workdir / "wallets"
        self.processes: list[subprocess.Popen] = []
        self.roles: dict[str, str] = {}  # wallet name -> role

    # -- setup ---------------------------------------------------------------------------

    async def prepare_chain(self) -> DevSubstrate:
        dev = DevSubstrate(self.chain_file)
        owner = dev_wallet(self.wallets, "owner")
        dev.create_subnet(
            NETUID,
            owner.hotkey.ss58_address,
            owner.coldkeypub.ss58_address,
            SubnetParams(tempo=100, weights_rate_limit=5, commit_min_bytes=100),
        )
        names = ["validator"] + [f"miner{i}" for i in range(self.args.miners)]
        self.roles = {f"miner{i}": "honest" for i in range(self.args.miners)}
        if self.args.copier:
            names.append("copier")
            self.roles["copier"] = "copier"
        if self.args.fabricator:
            names.append("fabricator")
            self.roles["fabricator"] = "fabricator"
        async with bt.Subtensor("local", substrate=dev) as client:
            for name in names:
                verdict = await SdkChain(client, dev_wallet(self.wallets, name), NETUID).register()
                if not verdict.ok:
                    raise RuntimeError(f"registering {name}: {verdict.message}")
        dev.set_stake(dev_wallet(self.wallets, "validator").hotkey.ss58_address, 10**12)
        dev.set_block_time(self.args.block_time)
        return dev

    def commands(self, x_url: str, redis_url: str) -> dict[str, list[str]]:
        """name -> argv of every neuron: the real entry points with their flags."""
        out = {}
        for name, role in [*self.roles.items(), ("validator", "validator")]:
            argv = [
                sys.executable,
                str(ROOT / "neurons" / ("validator.py" if role == "validator" else "miner.py")),
                "--netuid",
                str(NETUID),
                "--subtensor.network",
                f"dev:{self.chain_file}",
                "--wallet.name",
                name,
                "--wallet.path",
                str(self.wallets),
            ]
            if role == "validator":
                argv += [
                    "--redis.url",
                    redis_url,
                    "--verify.x_bearer_token",
                    DEFAULT_TOKEN,
                    "--verify.x_api_base_url",
                    x_url,
                    "--verify.daily_budget",
                    "1000000",
                    "--verify.min_per_manifest",
                    "5",
                    "--verify.max_per_manifest",
                    "30",
                    "--neuron.poll_blocks",
                    "2",
                    "--neuron.weights_interval",
                    "10",
                    "--neuron.grace_blocks",
                    "10",
                ]
                out[name] = argv
                continue
            plan = self.dir / f"{name}.toml"  # copier and fabricator ignore the queries
            plan.write_text(plan_toml(int(name.removeprefix("miner")) if role == "honest" else 0))
            argv += [
                "--host.dir",
                str(self.dir / "hosts" / name),
                "--neuron.store_path",
                str(self.dir / name / "store.db"),
                "--neuron.commit_interval",
                "5",
                "--neuron.shard_rows",
                "200",
                "--source.x_bearer_token",
                DEFAULT_TOKEN,
                "--source.x_api_base_url",
                x_url,
                "--source.query_plan",
                str(plan),
            ]
            if role == "copier":
                argv += [
                    "--source.kind",
                    "copier",
                    "--source.copy_from",
                    str(self.dir / "hosts" / "miner0"),
                ]
            elif role == "fabricator":
                argv += ["--source.kind", "fabricator"]
            out[name] = argv
        return out

    def start_neurons(self, x_url: str, redis_url: str) -> None:
        for name, argv in self.commands(x_url, redis_url).items():
            log = open(self.dir / f"{name}.log", "w")  # noqa: SIM115 - owned by the child
            self.processes.append(
                subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            )

    def write_pm2(self, x_port: int, redis_port: int) -> Path:
        """A pm2 file that runs the same network as separate long-lived processes."""
        binary, _origin = find_redis_server()
        (self.dir / "redis").mkdir(exist_ok=True)
        apps = [
            {
                "name": "d3-local-x",
                "script": sys.executable,
                "args": [
                    "-m",
                    "scraping.local_x_server",
                    "--port",
                    str(x_port),
                    "--live-rate",
                    "3",
                    "--seed",
                    str(self.args.seed),
                    "--size",
                    str(self.args.tweets),
                ],
            },
            {
                "name": "d3-local-redis",
                "script": binary,
                "args": [
                    "--port",
                    str(redis_port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.dir / "redis"),
                    "--appendonly",
                    "yes",
                ],
            },
        ]
        commands = self.commands(f"http://127.0.0.1:{x_port}", f"redis://127.0.0.1:{redis_port}/0")
        for name, argv in commands.items():
            apps.append({"name": f"d3-local-{name}", "script": argv[0], "args": argv[1:]})
        for app in apps:
            app.update(
                cwd=str(ROOT),
                interpreter="none",
                autorestart=True,
                kill_timeout=20000,
                out_file=str(self.dir / "logs" / f"{app['name']}.log"),
                merge_logs=True,
            )
        path = self.dir / "localnet.config.js"
        path.write_text("module.exports = " + json.dumps({"apps": apps}, indent=2) + ";\n")
        meta = {"roles": self.roles, "redis_url": f"redis://127.0.0.1:{redis_port}/0"}
        (self.dir / "localnet.json").write_text(json.dumps(meta))
        return path

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                name = Path(process.args[1]).stem if isinstance(process.args, list) else "?"
                raise RuntimeError(
                    f"a {name} process exited ({process.returncode}); see the logs in {self.dir}"
                )

    # -- reading results -------------------------------------------------------------------

    def committed_rows(self, name: str) -> int:
        total = 0
        for path in (self.dir / "hosts" / name).glob("*.json"):
            total += parse_manifest(path.read_bytes()).body.rows
        return total

    async def leaderboard(self, dev: DevSubstrate, redis_url: str) -> list[MinerRow]:
        redis = aioredis.Redis.from_url(redis_url)
        try:
            credits = await TweetIndex(redis).credits()
            credibility = await ValidatorState(redis).credibility()
        finally:
            await redis.aclose()
        async with bt.Subtensor("local", substrate=dev) as client:
            graph = await client.subnets.metagraph(NETUID, commitments=False)
            matrix = await client.weights.weights(NETUID)
        hotkeys = {dev_wallet(self.wallets, n).hotkey.ss58_address: n for n in self.roles}
        validator_uid = graph.by_hotkey(
            dev_wallet(self.wallets, "validator").hotkey.ss58_address
        ).uid
        weights = matrix.get(validator_uid, {})
        rows = []
        for neuron in graph.neurons:
            name = hotkeys.get(neuron.hotkey)
            if name is None:
                continue
            rows.append(
                MinerRow(
                    uid=neuron.uid,
                    hotkey=neuron.hotkey,
                    role=self.roles[name],
                    committed=self.committed_rows(name),
                    unique=sum(credits.get(neuron.hotkey, {}).values()),
                    credibility=round(credibility.get(neuron.hotkey, 1.0), 4),
                    weight=round(weights.get(neuron.uid, 0.0), 4),
                )
            )
        return rows


def render(rows: list[MinerRow]) -> str:
    header = (
        f"{'uid':>3}  {'hotkey':<12} {'role':<10} {'committed':>9} {'unique':>7} "
        f"{'cred':>6} {'weight':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in sorted(rows, key=lambda r: -r.weight):
        lines.append(
            f"{r.uid:>3}  {r.hotkey[:10] + '…':<12} {r.role:<10} {r.committed:>9} {r.unique:>7} "
            f"{r.credibility:>6.2f} {r.weight:>7.3f}"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> list[MinerRow]:
    _isolate_sdk_cache()
    quiet = args.json
    say = (
        (lambda *a: print(*a, file=sys.stderr, flush=True))
        if quiet
        else (lambda *a: print(*a, flush=True))
    )
    # Short paths: file:// locators must fit in a 128-byte commitment.
    workdir = Path(tempfile.mkdtemp(prefix="d3net-", dir="/tmp"))
    net = LocalNet(args, workdir, say)
    redis = start_redis(workdir / "redis")
    say(f"redis-server: {redis.origin} on port {redis.port}")
    x = LocalXServer(seed=args.seed, size=args.tweets).start()
    say(f"local X API: {x.base_url} ({args.tweets} tweets)")
    try:
        dev = await net.prepare_chain()
        say(
            f"dev chain: {net.chain_file} ({args.block_time}s blocks); "
            f"{len(net.roles)} miners and a validator registered"
        )
        net.start_neurons(x.base_url, redis.url)
        start = dev.state.head()
        end = start + args.blocks
        last_shown = -1
        while (head := dev.state.head()) < end:
            net.check_alive()
            if head // 10 != last_shown:
                last_shown = head // 10
                say(f"block {head}/{end}")
            x.publish(3)  # X keeps tweeting while the network runs
            await asyncio.sleep(min(1.0, args.block_time))
        return await net.leaderboard(dev, redis.url)
    finally:
        net.stop()
        x.stop()
        redis.stop()
        if args.keep:
            say(f"logs and data kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


async def prepare(args: argparse.Namespace) -> Path:
    """Set up a network for pm2 in `args.prepare` instead of running it here."""
    _isolate_sdk_cache()
    workdir = Path(args.prepare)
    net = LocalNet(args, workdir, print)
    await net.prepare_chain()
    return net.write_pm2(free_port(), free_port())


async def leaderboard_of(args: argparse.Namespace) -> list[MinerRow]:
    """The leaderboard of a network made with --prepare (and running under pm2)."""
    _isolate_sdk_cache()
    workdir = Path(args.leaderboard)
    meta = json.loads(await asyncio.to_thread((workdir / "localnet.json").read_text))
    net = LocalNet(args, workdir, print)
    net.roles = meta["roles"]
    return await net.leaderboard(DevSubstrate(net.chain_file), meta["redis_url"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m d3.localnet", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--miners", type=int, default=3, help="honest miners (1-5)")
    parser.add_argument("--blocks", type=int, default=150, help="blocks to run")
    parser.add_argument("--block-time", type=float, default=0.5, help="seconds per block")
    parser.add_argument("--copier", action="store_true", help="add a miner that copies miner0")
    parser.add_argument("--fabricator", action="store_true", help="add a miner that invents tweets")
    parser.add_argument("--tweets", type=int, default=4000, help="tweets in the local X corpus")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep logs and data in /tmp")
    parser.add_argument("--json", action="store_true", help="end with the leaderboard as JSON")
    parser.add_argument("--prepare", metavar="DIR", help="set up DIR for pm2 instead of running")
    parser.add_argument("--leaderboard", metavar="DIR", help="print the board of a --prepare net")
    args = parser.parse_args(argv)
    if not 1 <= args.miners <= len(TOPICS):
        parser.error(f"--miners must be between 1 and {len(TOPICS)}")
    if args.blocks < 20 or args.block_time <= 0:
        parser.error("--blocks must be at least 20 and --block-time positive")
    for name in ("prepare", "leaderboard"):  # resolved here, outside the event loop
        if getattr(args, name):
            setattr(args, name, Path(getattr(args, name)).expanduser().resolve())
    if args.prepare:
        args.prepare.mkdir(parents=True, exist_ok=True)
        config = asyncio.run(prepare(args))
        print(
            f"prepared a dev network in {config.parent}\n  pm2 start {config}\n"
            f"  python -m d3.localnet --leaderboard {config.parent}\n"
            f"  pm2 delete {config}"
        )
        return 0
    try:
        rows = asyncio.run(leaderboard_of(args) if args.leaderboard else run(args))
    except RuntimeError as error:
        print(f"localnet: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"miners": [asdict(r) for r in sorted(rows, key=lambda r: r.uid)]}))
    else:
        print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
