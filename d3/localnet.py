"""A whole D3 network on one machine: dev chain, local X, Redis, miners and validators.

    python -m d3.localnet [--miners 3] [--validators 1] [--blocks 150] [--copier]
                          [--fabricator] [--hub DIR] [--json]

Every participant is the real thing: the miners and validators are `neurons/miner.py`
and `neurons/validator.py` processes, talking to a dev chain file through the real
bittensor SDK, scraping a local X API v2 server through tweepy, publishing to directories,
and deduplicating in a real redis-server. The miners run for a bounded number of blocks;
then they stop, every validator catches up with what they committed, and the run ends
with the leaderboard read back from the chain and each validator's weight vector.

With `--validators N` the validators differ in everything that must not change the
outcome: hotkey, Redis keyspace, poll cadence and start time (the last one starts halfway
through with an empty keyspace and has to replay chain history). Their weight vectors,
computed at one block, must be identical, and the run says whether they are.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import bittensor as bt
import pyarrow.parquet as pq
import redis.asyncio as aioredis

from d3.chain.interface import CommitmentRecord, MetagraphSnapshot
from d3.chain.sdk import SdkChain, _isolate_sdk_cache
from d3.config import ConfigError, load_config
from d3.dev.chain_state import SubnetParams
from d3.dev.redis_server import find_redis_server, free_port, start_redis
from d3.dev.substrate import DevSubstrate
from d3.dev.wallets import dev_wallet
from d3.dev.x_server import DEFAULT_TOKEN, LocalXServer
from d3.hub.localnet import build_localnet_hub
from d3.manifest import parse_manifest
from d3.redis_url import connect_redis
from d3.validator import leaderboard as leaderboards
from d3.validator.history import hotkey_history
from d3.validator.neuron import ValidatorConfig, build_runner
from d3.validator.rounds import RoundRunner

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
# --neuron.poll_blocks by validator index: deliberately unlike each other, so agreement
# cannot come from validators happening to look at the chain at the same moments. (A
# validator checks the head every 2 s at most, so at 0.5 s blocks 1 and 2 behave alike.)
POLL_BLOCKS = (2, 5, 11, 1)
MAX_VALIDATORS = len(POLL_BLOCKS)
GRACE_BLOCKS = 10  # --neuron.grace_blocks of every validator
# --scoring.period_blocks of every validator: short, so that periods close and their
# audits run within a local network's few hundred blocks (finney's is 7200).
PERIOD_BLOCKS = 30
# How long the validators get, after the miners stop, to judge everything on chain. The
# late one usually has most of its replay behind it by then; this bounds a stuck one.
SETTLE_TIMEOUT_S = 180.0

Say = Callable[..., None]


@dataclass
class MinerRow:
    """One miner as the first validator's leaderboard read model has it
    (`d3/validator/leaderboard.py`, the numbers that set its weights and the ones the
    dashboard shows), with what only a local network knows: its role, the rows it
    committed and how many of them the local X never had."""

    uid: int
    hotkey: str
    role: str
    committed: int
    unique: int  # credited as scoring counts it: in the window, audited, times found share
    credibility: float
    weight: float  # this validator's weight for it on chain, normalised
    invented: int | None = None  # committed tweets the local X never had (None: unknown)
    rank: int = 0
    noise: float = 0.0
    score: float = 0.0
    next_weight: float = 0.0  # what the validator would set now (the board's `weight`)


@dataclass(frozen=True)
class ValidatorSpec:
    """One validator process and what sets it apart from the others."""

    name: str  # wallet name
    prefix: str  # --redis.prefix: its own keyspace on the one redis-server
    poll_blocks: int
    late: bool  # started halfway through --blocks, with an empty keyspace


def validator_specs(count: int, late_start: bool = True) -> list[ValidatorSpec]:
    """The first keeps the names a one-validator network always had (wallet `validator`,
    the default prefix `d3`), so `--validators 1` runs exactly what it did before. With
    `late_start` and more than one, the last is started late."""
    return [
        ValidatorSpec(
            name="validator" if i == 0 else f"validator{i}",
            prefix="d3" if i == 0 else f"d3v{i}",
            poll_blocks=POLL_BLOCKS[i],
            late=late_start and count > 1 and i == count - 1,
        )
        for i in range(count)
    ]


@dataclass
class ValidatorWeights:
    """One validator's weights as it would set them at `block`, from its own keyspace.

    Computed by the validator's own code (`build_runner` from its argv, then
    `RoundRunner.scores`), so the scoring parameters are the ones the process runs with.
    """

    name: str
    uid: int | None
    hotkey: str
    prefix: str
    poll_blocks: int
    late: bool
    started_block: int | None  # None: not started by this run (a pm2 network)
    history_at_start: int | None  # commitments already on chain when it started
    caught_up: bool  # had read and judged every commitment on chain at `block`
    block: int
    weights: dict[int, float] = field(default_factory=dict)  # uid -> weight, every neuron
    unique: dict[int, int] = field(default_factory=dict)  # uid -> credited, as scored
    credibility: dict[int, float] = field(default_factory=dict)


@dataclass
class Report:
    miners: list[MinerRow]
    validators: list[ValidatorWeights]
    shown: bool = field(default=False, compare=False)  # printed already (--hold)

    @property
    def weights_identical(self) -> bool:
        """Exact equality, not a tolerance: honest validators compute the same floats."""
        vectors = [sorted(v.weights.items()) for v in self.validators]
        return all(vector == vectors[0] for vector in vectors)

    def to_json(self) -> dict:
        return {
            "miners": [asdict(r) for r in sorted(self.miners, key=lambda r: r.uid)],
            "validators": [asdict(v) for v in self.validators],
            "weights_identical": self.weights_identical,
        }


def plan_toml(index: int) -> str:
    own, shared = TOPICS[index % len(TOPICS)], TOPICS[(index + 1) % len(TOPICS)]
    blocks = []
    for name, keywords, hashtags in (own, shared):
        blocks.append(
            f'[[queries]]\nname = "{name}"\nkeywords = {json.dumps(keywords)}\n'
            f"hashtags = {json.dumps(hashtags)}\n"
        )
    return "[defaults]\ninterval_s = 10\nlimit = 100\nlanguages = []\n\n" + "\n".join(blocks)


async def backlog(
    runner: RoundRunner, commitments: Iterable[CommitmentRecord], head: int
) -> str | None:
    """None when the runner's validator has read and judged every commitment in
    `commitments` (each hotkey's newest on chain) that its history horizon keeps; else
    what it still has to do. Cursors alone are not enough: a read commitment waits in
    the queue until it is judged, and one still in its grace period stays there."""
    horizon = runner.scoring.history_horizon(head)
    cursors = await runner.state.cursors()
    unread = [r for r in commitments if r.block >= horizon and cursors.get(r.hotkey, -1) < r.block]
    queued = await runner.state.queue_size()
    unaudited = len(await runner.state.audit_periods()) if runner.audit is not None else 0
    if not unread and not queued and not unaudited:
        return None
    return (
        f"{queued} commitments queued, {len(unread)} hotkeys' newest commitment unread, "
        f"{unaudited} periods not audited"
    )


class LocalNet:
    def __init__(self, args: argparse.Namespace, workdir: Path, say: Say):
        self.args = args
        self.dir = workdir
        self.say = say
        self.chain_file = workdir / "chain.sqlite"
        self.wallets = workdir / "wallets"
        self.processes: dict[str, subprocess.Popen] = {}  # name -> process
        self.stopped: set[str] = set()  # stopped on purpose: not a crash
        self.started: dict[str, tuple[int, int]] = {}  # name -> (block, commitments then)
        self.roles: dict[str, str] = {}  # miner wallet name -> role
        self.validators = validator_specs(getattr(args, "validators", 1))

    # -- setup ---------------------------------------------------------------------------

    async def prepare_chain(self) -> DevSubstrate:
        dev = DevSubstrate(self.chain_file)
        owner = dev_wallet(self.wallets, "owner")
        dev.create_subnet(
            NETUID,
            owner.hotkey.ss58_address,
            owner.coldkeypub.ss58_address,
            # Commit-reveal on (the runtime's default): weights land at the next epoch.
            SubnetParams(tempo=20, weights_rate_limit=5, commit_min_bytes=100),
        )
        self.roles = {f"miner{i}": "honest" for i in range(self.args.miners)}
        if self.args.copier:
            self.roles["copier"] = "copier"
        if self.args.fabricator:
            self.roles["fabricator"] = "fabricator"
        if getattr(self.args, "diluter", False):
            self.roles["diluter"] = "diluter"
        names = [v.name for v in self.validators] + list(self.roles)
        async with bt.Subtensor("local", substrate=dev) as client:
            for name in names:
                verdict = await SdkChain(client, dev_wallet(self.wallets, name), NETUID).register()
                if not verdict.ok:
                    raise RuntimeError(f"registering {name}: {verdict.message}")
        for spec in self.validators:  # stake is what earns a validator permit
            dev.set_stake(dev_wallet(self.wallets, spec.name).hotkey.ss58_address, 10**12)
        dev.next_epoch(NETUID)  # permits are computed at epochs: start with them
        dev.set_block_time(self.args.block_time)
        return dev

    def _argv(self, name: str, script: str) -> list[str]:
        return [
            sys.executable,
            str(ROOT / "neurons" / script),
            "--netuid",
            str(NETUID),
            "--subtensor.network",
            f"dev:{self.chain_file}",
            "--wallet.name",
            name,
            "--wallet.path",
            str(self.wallets),
        ]

    def validator_commands(self, x_url: str, redis_url: str) -> dict[str, list[str]]:
        """name -> argv of every validator. One redis-server, one keyspace each."""
        out = {}
        for spec in self.validators:
            dashboard = []
            port = getattr(self.args, "dashboard", None)
            if port and spec is self.validators[0]:
                dashboard = ["--dashboard.port", str(port)]
                if getattr(self.args, "hub", None):
                    dashboard += ["--dashboard.hub", str(self.args.hub)]
            out[spec.name] = [
                *self._argv(spec.name, "validator.py"),
                *dashboard,
                "--redis.url",
                redis_url,
                "--redis.prefix",
                spec.prefix,
                "--verify.x_bearer_token",
                DEFAULT_TOKEN,
                "--verify.x_api_base_url",
                x_url,
                "--verify.daily_budget",
                "1000000",
                "--verify.audit_lookups",
                "200",
                "--scoring.period_blocks",
                str(PERIOD_BLOCKS),
                "--neuron.poll_blocks",
                str(spec.poll_blocks),
                "--neuron.weights_interval",
                "10",
                "--neuron.grace_blocks",
                str(GRACE_BLOCKS),
            ]
        return out

    def miner_commands(self, x_url: str) -> dict[str, list[str]]:
        """name -> argv of every miner (writes their query plans)."""
        out = {}
        for name, role in self.roles.items():
            plan = self.dir / f"{name}.toml"  # copier and fabricator ignore the queries
            # The diluter gets topics of its own, so its gain cannot be an honest miner's loss.
            index = {"honest": None, "diluter": self.args.miners + 1}.get(role, 0)
            plan.write_text(plan_toml(int(name.removeprefix("miner")) if index is None else index))
            argv = [
                *self._argv(name, "miner.py"),
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
            # The dishonest roles are a dev-only flag of the real miner, not source kinds.
            if role == "copier":
                argv += [
                    "--source.adversary",
                    "copier",
                    "--source.copy_from",
                    str(self.dir / "hosts" / "miner0"),
                ]
            elif role == "fabricator":
                argv += ["--source.adversary", "fabricator"]
            elif role == "diluter":  # scrapes like an honest miner, invents 10% on top
                argv += ["--source.adversary", "diluter"]
            out[name] = argv
        return out

    def commands(self, x_url: str, redis_url: str) -> dict[str, list[str]]:
        """name -> argv of every neuron: the real entry points with their flags."""
        return {**self.miner_commands(x_url), **self.validator_commands(x_url, redis_url)}

    async def launch(self, commands: Mapping[str, list[str]]) -> None:
        """Start these neurons now, noting the block and how many commitments the chain
        already holds: a validator started after some must have replayed them."""
        async with bt.Subtensor("local", substrate=DevSubstrate(self.chain_file)) as client:
            chain = SdkChain(client, dev_wallet(self.wallets, self.validators[0].name), NETUID)
            head = await chain.block()
            history = [await hotkey_history(chain, r, -1) for r in await chain.commitments(head)]
        self._spawn(commands)
        for name in commands:
            self.started[name] = (head, sum(map(len, history)))

    def _spawn(self, commands: Mapping[str, list[str]]) -> None:
        for name, argv in commands.items():
            with open(self.dir / f"{name}.log", "w") as log:  # the child keeps its own copy
                self.processes[name] = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )

    async def start_late(self, spec: ValidatorSpec, argv: list[str], redis_url: str) -> None:
        """Start `spec` now, after the miners have been committing for a while. Its
        keyspace must be empty: everything it knows it must then read from chain history."""
        redis = aioredis.Redis.from_url(redis_url)
        try:
            leftover = [k async for k in redis.scan_iter(match=f"{spec.prefix}:*", count=1000)]
        finally:
            await redis.aclose()
        if leftover:
            raise RuntimeError(f"{spec.name}'s keyspace {spec.prefix}:* is not empty")
        await self.launch({spec.name: argv})
        block, history = self.started[spec.name]
        self.say(
            f"block {block}: started {spec.name} late with an empty keyspace ({spec.prefix}:*): "
            f"it has {history} commitments to replay from chain history"
        )

    def write_pm2(self, x_port: int, redis_port: int) -> Path:
        """A pm2 file that runs the same network as separate long-lived processes. Under
        pm2 every validator starts at once: there is no late start."""
        binary, _origin = find_redis_server()
        (self.dir / "redis").mkdir(exist_ok=True)
        apps = [
            {
                "name": "d3-local-x",
                "script": sys.executable,
                "args": [
                    "-m",
                    "d3.dev.x_server",
                    "--port",
                    str(x_port),
                    "--live-rate",
                    "3",
                    "--seed",
                    str(self.args.seed),
                    "--size",
                    str(self.args.tweets),
                    # A pm2 restart serves the same tweets: the corpus ends at the hour the
                    # network was prepared, and what it minted since is replayed.
                    "--end",
                    datetime.now(UTC).replace(minute=0, second=0, microsecond=0).isoformat(),
                    "--journal",
                    str(self.dir / "x-journal"),
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
        x_url, redis_url = f"http://127.0.0.1:{x_port}", f"redis://127.0.0.1:{redis_port}/0"
        for name, argv in self.commands(x_url, redis_url).items():
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
        meta = {
            "roles": self.roles,
            "redis_url": redis_url,
            "x_url": x_url,
            "validators": [asdict(v) for v in self.validators],
        }
        (self.dir / "localnet.json").write_text(json.dumps(meta))
        return path

    def stop(self, names: Iterable[str] | None = None) -> None:
        """SIGTERM (the neurons shut down cleanly on it), SIGKILL after 20 s."""
        chosen = [
            n
            for n in (self.processes if names is None else names)
            if n in self.processes and n not in self.stopped
        ]
        for name in chosen:
            if self.processes[name].poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.processes[name].pid, signal.SIGTERM)
        for name in chosen:
            process = self.processes[name]
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            self.stopped.add(name)

    def logs_hint(self, names: Iterable[str]) -> str:
        """Where to read these neurons' logs: the work directory goes unless --keep."""
        logs = ", ".join(f"{name}.log" for name in names)
        if getattr(self.args, "keep", False):
            return f"see {logs} in {self.dir}"
        return f"rerun with --keep to read {logs}"

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if name not in self.stopped and process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited ({process.returncode}); {self.logs_hint([name])}"
                )

    async def land_weights(self, dev: DevSubstrate, since: int) -> None:
        """Wait for the first validator to set weights at or after `since` and, on a
        commit-reveal subnet, for the chain to reveal them (skipping to the next epoch:
        the miners are gone, so that changes nothing else), so the board reads them."""
        hotkey = dev_wallet(self.wallets, self.validators[0].name).hotkey.ss58_address
        if not dev.state.subnet(NETUID)[0].commit_reveal:
            return  # plain weights apply in their block
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            self.check_alive()
            mine = [
                (block, reveal, outcome)
                for who, block, reveal, outcome in dev.state.reveal_outcomes(NETUID)
                if who == hotkey and block >= since
            ]
            if mine:
                block, reveal, _ = mine[-1]
                head = dev.state.head()
                if head < reveal:
                    dev.advance(reveal - head)
                outcome = [
                    o
                    for w, b, _, o in dev.state.reveal_outcomes(NETUID)
                    if w == hotkey and b == block
                ]
                self.say(
                    f"block {dev.state.head()}: weights committed at block {block} "
                    f"(commit-reveal), revealed at block {reveal}: {outcome[0]}"
                )
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.validators[0].name} set no weights within {SETTLE_TIMEOUT_S:.0f}s "
                    f"of block {since}; {self.logs_hint([self.validators[0].name])}"
                )
            await asyncio.sleep(0.5)

    # -- validators' views -------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def runners(
        self, client: bt.Client, commands: Mapping[str, list[str]], only: str | None = None
    ) -> AsyncIterator[list[tuple[ValidatorSpec, RoundRunner]]]:
        """Each validator's RoundRunner, built by the validator's own `build_runner` from
        the validator's own argv: its keyspace, its hotkey and the ScoringParams it runs
        with, so nothing here can score differently from the process it stands for."""
        async with contextlib.AsyncExitStack() as stack:
            out = []
            for spec in self.validators:
                if only is not None and spec.name != only:
                    continue
                try:
                    config = load_config(
                        ValidatorConfig, commands[spec.name][2:], prog="validator.py"
                    )
                except ConfigError as error:
                    raise RuntimeError(f"{spec.name}'s flags: {error}") from None
                redis = connect_redis(config.redis.url, cluster=config.redis.cluster)
                stack.push_async_callback(redis.aclose)
                chain = SdkChain(client, dev_wallet(self.wallets, spec.name), NETUID)
                runner = build_runner(config, chain, redis)
                stack.push_async_callback(runner.pipeline.fetcher.close)
                out.append((spec, runner))
            yield out

    async def settle(
        self, dev: DevSubstrate, client: bt.Client, runners: list[tuple[ValidatorSpec, RoundRunner]]
    ) -> int:
        """Stop the miners and wait until every validator has judged every commitment on
        chain. Returns the head then: the block at which their weights are compared.

        Comparing earlier would compare validators at different points of the same
        history. Once the miners have exited nothing more is committed, and once the head
        is past the newest commitment's grace period no upload can still be pending, so
        every queue drains. The wait is bounded: a validator that does not get there is
        named with what it still has to do.
        """
        miners = [n for n in self.roles if n in self.processes]
        self.say(f"block {dev.state.head()}: stopping the miners")
        await asyncio.to_thread(self.stop, miners)
        chain = SdkChain(client, dev_wallet(self.wallets, self.validators[0].name), NETUID)
        head = await chain.block()
        commitments = await chain.commitments(head)
        newest = max((r.block for r in commitments), default=0)
        # Past the grace period of the newest commitment, and past the block that seeds
        # the audit of its period, so that every credited period is audited.
        period_end = (newest // PERIOD_BLOCKS + 1) * PERIOD_BLOCKS - 1
        past_grace = period_end + GRACE_BLOCKS + 1
        if head < past_grace:  # the miners are gone, so skipping these blocks changes
            # nothing but the wait (dev block timestamps follow block numbers)
            head = dev.advance(past_grace - head)
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            self.check_alive()
            head = dev.state.head()
            behind = {
                spec.name: missing
                for spec, runner in runners
                if (missing := await backlog(runner, commitments, head)) is not None
            }
            if not behind:
                self.say(
                    f"block {head}: all {len(runners)} validators have judged every commitment "
                    f"on chain (the newest at block {newest})"
                )
                return head
            if time.monotonic() > deadline:
                detail = "; ".join(f"{name}: {what}" for name, what in behind.items())
                raise RuntimeError(
                    f"validators did not catch up within {SETTLE_TIMEOUT_S:.0f}s of the "
                    f"miners stopping ({detail}); {self.logs_hint(behind)}"
                )
            await asyncio.sleep(0.5)

    async def weights(
        self,
        runners: list[tuple[ValidatorSpec, RoundRunner]],
        graph: MetagraphSnapshot,
        caught_up: Mapping[str, bool],
    ) -> list[ValidatorWeights]:
        """Each validator's weights at `graph.block`, exactly as its next weight-set would
        compute them (`RoundRunner.scores`: windowed credit times windowed credibility)."""
        out = []
        for spec, runner in runners:
            scores = await runner.scores(graph)
            hotkey = dev_wallet(self.wallets, spec.name).hotkey.ss58_address
            started_block, history = self.started.get(spec.name, (None, None))
            out.append(
                ValidatorWeights(
                    name=spec.name,
                    uid=graph.uid_of(hotkey),
                    hotkey=hotkey,
                    prefix=spec.prefix,
                    poll_blocks=spec.poll_blocks,
                    late=spec.late,
                    started_block=started_block,
                    history_at_start=history,
                    caught_up=caught_up[spec.name],
                    block=graph.block,
                    weights={s.uid: s.weight for s in scores},
                    unique={s.uid: s.unique for s in scores},
                    credibility={s.uid: s.credibility for s in scores},
                )
            )
        return out

    async def compare(
        self, dev: DevSubstrate, commands: Mapping[str, list[str]], settle: bool
    ) -> list[ValidatorWeights]:
        """Every validator's weight vector at one common metagraph block. With `settle`,
        stop the miners first and wait for every validator to catch up; without (a live
        pm2 network), take the head as it is and report who had caught up."""
        async with (
            bt.Subtensor("local", substrate=dev) as client,
            self.runners(client, commands) as runners,
        ):
            chain = SdkChain(client, dev_wallet(self.wallets, self.validators[0].name), NETUID)
            if settle:
                block = await self.settle(dev, client, runners)
                caught_up = {spec.name: True for spec, _ in runners}
            else:
                block = await chain.block()
                commitments = await chain.commitments(block)
                caught_up = {
                    spec.name: await backlog(runner, commitments, block) is None
                    for spec, runner in runners
                }
            return await self.weights(runners, await chain.metagraph(block), caught_up)

    # -- reading results -------------------------------------------------------------------

    def committed_rows(self, name: str) -> int:
        total = 0
        for path in (self.dir / "hosts" / name).glob("*.json"):
            total += parse_manifest(path.read_bytes()).body.rows
        return total

    def invented_rows(self, name: str, real_ids: set[int]) -> int:
        """Rows in the miner's published shards that the local X never had."""
        total = 0
        for path in (self.dir / "hosts" / name).glob("*.parquet"):
            ids = pq.read_table(path, columns=["id"])["id"].to_pylist()
            total += sum(1 for i in ids if i not in real_ids)
        return total

    async def leaderboard(
        self,
        dev: DevSubstrate,
        commands: Mapping[str, list[str]],
        validators: list[ValidatorWeights],
        real_ids: set[int] | None = None,
    ) -> list[MinerRow]:
        """The board of the first validator at the block the validators were compared at:
        its leaderboard read model (the one its dashboard and `/leaderboard.json` serve,
        built by its own `build_runner`), with its weights on chain as they are now."""
        first = validators[0]
        async with (
            bt.Subtensor("local", substrate=dev) as client,
            self.runners(client, commands, only=first.name) as runners,
        ):
            [(_, runner)] = runners
            graph = await runner.chain.metagraph(first.block)
            board = await leaderboards.read(runner, graph)
        names = {dev_wallet(self.wallets, n).hotkey.ss58_address: n for n in self.roles}
        rows = []
        for row in board.rows:
            name = names.get(row.hotkey)
            if name is None:  # a validator
                continue
            rows.append(
                MinerRow(
                    uid=row.uid,
                    hotkey=row.hotkey,
                    role=self.roles[name],
                    committed=self.committed_rows(name),
                    unique=row.unique,
                    credibility=round(row.credibility, 4),
                    weight=round(row.chain_weight or 0.0, 4),
                    invented=None if real_ids is None else self.invented_rows(name, real_ids),
                    rank=row.rank,
                    noise=round(row.noise, 2),
                    score=round(row.score, 2),
                    next_weight=round(row.weight, 4),
                )
            )
        return rows


def render(report: Report) -> str:
    header = (
        f"{'rank':>4} {'uid':>3}  {'hotkey':<12} {'role':<10} {'committed':>9} {'invented':>8} "
        f"{'unique':>7} {'cred':>6} {'score':>9} {'next':>6} {'weight':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in sorted(report.miners, key=lambda r: (r.rank or 1 << 30, -r.weight, r.uid)):
        invented = "-" if r.invented is None else str(r.invented)
        lines.append(
            f"{r.rank:>4} {r.uid:>3}  {r.hotkey[:10] + '…':<12} {r.role:<10} {r.committed:>9} "
            f"{invented:>8} {r.unique:>7} {r.credibility:>6.2f} {r.score:>9.1f} "
            f"{r.next_weight:>6.3f} {r.weight:>7.3f}"
        )
    lines.append(
        "unique: tweets credited as scoring counts them (first committer, in the window, "
        "audited on X, times the share X found); score: unique less 2 x its sampling noise, "
        "times credibility; next: the weight the validator would set now; weight: its "
        "weight on chain; invented: committed tweets X never had. The same read model as "
        "the validator's dashboard and /leaderboard.json (docs/monitoring.md)."
    )
    lines.append("")
    for v in report.validators:
        vector = " ".join(f"{uid}:{w:.3f}" for uid, w in sorted(v.weights.items()))
        started = "" if v.started_block is None else f" from block {v.started_block:>4}"
        notes = []
        if v.late:
            notes.append(f"late, replayed {v.history_at_start} commitments")
        if not v.caught_up:
            notes.append("behind")
        lines.append(
            f"{v.name:<11} uid {v.uid!s:>3}  poll {v.poll_blocks:>2} blocks{started}"
            f"{' (' + ', '.join(notes) + ')' if notes else ''}  weights at block {v.block}: "
            f"{vector}"
        )
    count = len(report.validators)
    behind = [v.name for v in report.validators if not v.caught_up]
    lines.append(
        f"weights identical across {count} validator{'s' if count != 1 else ''}: "
        f"{'yes' if report.weights_identical else 'no'}"
        + (f" ({', '.join(behind)} not caught up yet)" if behind else "")
    )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> Report:
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
        count = len(net.validators)
        say(
            f"dev chain: {net.chain_file} ({args.block_time}s blocks); {len(net.roles)} miners "
            f"and {'a validator' if count == 1 else f'{count} validators'} registered"
        )
        commands = net.commands(x.base_url, redis.url)
        late = next((v for v in net.validators if v.late), None)
        await net.launch({n: a for n, a in commands.items() if late is None or n != late.name})
        start = dev.state.head()
        end, late_at = start + args.blocks, start + args.blocks // 2
        last_shown = -1
        while (head := dev.state.head()) < end:
            net.check_alive()
            # Late: past half of --blocks and with something on chain to replay.
            if late is not None and head >= late_at and dev.state.commitments(NETUID, head):
                await net.start_late(late, commands[late.name], redis.url)
                late = None
            if head // 10 != last_shown:
                last_shown = head // 10
                say(f"block {head}/{end}")
            x.publish(3)  # X keeps tweeting while the network runs
            await asyncio.sleep(min(1.0, args.block_time))
        if late is not None:  # no miner committed in time: it still has to run and agree
            await net.start_late(late, commands[late.name], redis.url)
        validators = await net.compare(dev, commands, settle=True)
        await net.land_weights(dev, min(v.block for v in validators))
        if getattr(args, "hub", None):
            hub, same = await build_localnet_hub(net, dev, commands, args.hub)
            line = f"hub in {args.hub}: {hub.summary()}"
            if same is not None:
                line += f"; hubs identical across {count} validators: {'yes' if same else 'no'}"
            say(line)
        real = set(x.corpus.ids)  # every tweet the local X ever had, minted ones too
        report = Report(await net.leaderboard(dev, commands, validators, real), validators)
        if args.hold:
            show(report, args.json)  # now, while the network is still up to look at
            port = args.dashboard
            where = f": the dashboard is on http://127.0.0.1:{port}/" if port else ""
            say(f"holding the network up for {args.hold:g} s{where} (Ctrl-C ends it)")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(args.hold)  # a person looks; nothing waits on this
            report.shown = True
        return report
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
    net.validators = validator_specs(args.validators, late_start=False)  # pm2 starts all at once
    await net.prepare_chain()
    return net.write_pm2(free_port(), free_port())


async def leaderboard_of(args: argparse.Namespace) -> Report:
    """The leaderboard of a network made with --prepare (and running under pm2)."""
    _isolate_sdk_cache()
    workdir = Path(args.leaderboard)
    meta = json.loads(await asyncio.to_thread((workdir / "localnet.json").read_text))
    net = LocalNet(args, workdir, print)
    net.roles = meta["roles"]
    if "validators" in meta:  # a file written before --validators has one, the default
        net.validators = [ValidatorSpec(**v) for v in meta["validators"]]
    else:
        net.validators = validator_specs(1)
    dev = DevSubstrate(net.chain_file)
    commands = net.validator_commands(meta.get("x_url", "http://127.0.0.1:1"), meta["redis_url"])
    validators = await net.compare(dev, commands, settle=False)
    return Report(await net.leaderboard(dev, commands, validators), validators)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m d3.localnet", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--miners", type=int, default=3, help="honest miners (1-5)")
    parser.add_argument(
        "--validators",
        type=int,
        default=1,
        help=f"validators (1-{MAX_VALIDATORS}); with more than one, the last starts halfway "
        "through with an empty Redis keyspace",
    )
    parser.add_argument("--blocks", type=int, default=150, help="blocks the miners run")
    parser.add_argument("--block-time", type=float, default=0.5, help="seconds per block")
    parser.add_argument("--copier", action="store_true", help="add a miner that copies miner0")
    parser.add_argument("--fabricator", action="store_true", help="add a miner that invents tweets")
    parser.add_argument(
        "--diluter", action="store_true", help="add a miner that mixes 10%% invented tweets in"
    )
    parser.add_argument("--tweets", type=int, default=4000, help="tweets in the local X corpus")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep logs and data in /tmp")
    parser.add_argument("--json", action="store_true", help="end with the results as JSON")
    parser.add_argument("--prepare", metavar="DIR", help="set up DIR for pm2 instead of running")
    parser.add_argument("--leaderboard", metavar="DIR", help="print the board of a --prepare net")
    parser.add_argument(
        "--hub", metavar="DIR", help="leave the hub dataset (docs/hub.md) in DIR at the end"
    )
    parser.add_argument(
        "--dashboard",
        metavar="PORT",
        type=int,
        default=0,
        help="serve the first validator's dashboard on 127.0.0.1:PORT (docs/monitoring.md)",
    )
    parser.add_argument(
        "--hold",
        metavar="SECONDS",
        type=float,
        default=0,
        help="after printing the leaderboard, keep the network up this long to look at",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.miners <= len(TOPICS):
        parser.error(f"--miners must be between 1 and {len(TOPICS)}")
    if not 1 <= args.validators <= MAX_VALIDATORS:
        parser.error(f"--validators must be between 1 and {MAX_VALIDATORS}")
    if args.blocks < 20 or args.block_time <= 0:
        parser.error("--blocks must be at least 20 and --block-time positive")
    if not 0 <= args.dashboard <= 65535 or args.hold < 0:
        parser.error("--dashboard must be a port (0-65535) and --hold not negative")
    for name in ("prepare", "leaderboard", "hub"):  # resolved here, outside the event loop
        if getattr(args, name):
            setattr(args, name, Path(getattr(args, name)).expanduser().resolve())
    if args.prepare:
        args.prepare.mkdir(parents=True, exist_ok=True)
        config = asyncio.run(prepare(args))
        print(
            f"prepared a dev network in {config.parent}\n  pm2 start {config}\n"
            f"  {ROOT / 'scripts' / 'localnet'} --leaderboard {config.parent}\n"
            f"  pm2 delete {config}"
        )
        return 0
    try:
        report = asyncio.run(leaderboard_of(args) if args.leaderboard else run(args))
    except RuntimeError as error:
        print(f"localnet: {error}", file=sys.stderr)
        return 1
    if not report.shown:
        show(report, args.json)
    return 0


def show(report: Report, as_json: bool) -> None:
    print(json.dumps(report.to_json()) if as_json else render(report), flush=True)


if __name__ == "__main__":
    sys.exit(main())
