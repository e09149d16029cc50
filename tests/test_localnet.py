"""A short local network end to end: the mechanism punishes copying and fabrication, and
validators that differ in cadence, keyspace and start time set identical weights."""

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import redis.asyncio as aioredis

from d3.chain.interface import CommitmentRecord
from d3.localnet import Report, ValidatorWeights, backlog, main, render, validator_specs
from d3.validator.scoring import ScoringParams
from d3.validator.state import ValidatorState, Verdict


def run_localnet(*flags: str) -> tuple[dict, str]:
    """The network's --json document and its stderr (progress lines)."""
    result = subprocess.run(
        [sys.executable, "-m", "d3.localnet", "--miners", "2", "--blocks", "60", *flags, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def held_localnet(tmp_path: Path, *flags: str) -> tuple[dict, str, dict]:
    """A network run with `--dashboard PORT --hold`: its --json document (printed as the
    hold starts), its stderr, and the first validator's dashboard leaderboard, read while
    the network is held up. Interrupted (as a person would, Ctrl-C) once read."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [
        sys.executable, "-m", "d3.localnet", "--miners", "2", "--blocks", "60", *flags,
        "--dashboard", str(port), "--hold", "600", "--json",
    ]  # fmt: skip
    errors = tmp_path / "localnet.err"
    with errors.open("w") as err:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        line = process.stdout.readline()  # the document, printed before the hold
        assert line, errors.read_text()[-3000:]
        doc = json.loads(line)
        response = httpx.get(f"http://127.0.0.1:{port}/api/leaderboard.json", timeout=30)
        assert response.status_code == 200, response.text
        board = response.json()
        assert "<title>Leaderboard" in httpx.get(f"http://127.0.0.1:{port}/", timeout=30).text
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    assert process.returncode == 0, errors.read_text()[-3000:]
    return doc, errors.read_text(), board


def test_local_network_rewards_honest_miners_only(tmp_path):
    doc, stderr, dashboard = held_localnet(tmp_path, "--copier", "--fabricator", "--diluter")
    # The printed leaderboard is the dashboard's: one read model, the same numbers.
    served = {row["uid"]: row for row in dashboard["miners"]}
    for miner in doc["miners"]:
        row = served[miner["uid"]]
        assert (miner["hotkey"], miner["unique"], miner["rank"]) == (
            row["hotkey"], row["unique"], row["rank"],
        )  # fmt: skip
        assert miner["credibility"] == round(row["credibility"], 4)
        assert miner["score"] == round(row["score"], 2)
        assert miner["next_weight"] == round(row["weight"], 4)
        # (Weights on chain move on: the validator keeps setting them during the hold.)
        assert row["chain_weight"] is not None
    assert "holding the network up for 600 s: the dashboard is on" in stderr
    board = doc["miners"]
    roles = {m["role"] for m in board}
    assert roles == {"honest", "copier", "fabricator", "diluter"}
    by_role = {role: [m for m in board if m["role"] == role] for role in roles}
    [fabricator], [copier] = by_role["fabricator"], by_role["copier"]
    [diluter] = by_role["diluter"]
    # The diluter mixes invented tweets into real ones; the audit discounts its credit.
    assert diluter["invented"] > 0 and diluter["unique"] < diluter["committed"]
    assert fabricator["invented"] == fabricator["committed"] > 0
    assert fabricator["committed"] > 0 and fabricator["weight"] == 0
    assert fabricator["credibility"] < 1
    assert copier["committed"] > 0 and copier["unique"] == 0 and copier["weight"] == 0
    honest = by_role["honest"]
    assert all(m["unique"] > 0 and m["weight"] > 0 and m["invented"] == 0 for m in honest)
    assert abs(sum(m["weight"] for m in [*honest, diluter]) - 1) < 0.01
    assert "redis-server:" in stderr and "block " in stderr
    # The one validator's own view, computed as it sets weights, agrees with the chain's.
    [validator] = doc["validators"]
    assert validator["caught_up"] and doc["weights_identical"]
    assert validator["weights"][str(fabricator["uid"])] == 0
    assert validator["weights"][str(copier["uid"])] == 0
    assert all(validator["weights"][str(m["uid"])] > 0 for m in honest)


def test_validators_agree_whatever_their_cadence_keyspace_and_start():
    doc, stderr = run_localnet("--validators", "3", "--copier", "--fabricator")
    validators = doc["validators"]
    assert len(validators) == 3
    assert len({v["prefix"] for v in validators}) == 3  # one keyspace each
    assert len({v["poll_blocks"] for v in validators}) == 3
    assert len({v["hotkey"] for v in validators}) == 3
    [late] = [v for v in validators if v["late"]]
    early = [v for v in validators if not v["late"]]
    # It started after the miners had committed, with nothing but chain history to go on.
    assert all(late["started_block"] > v["started_block"] for v in early)
    assert late["history_at_start"] > 0 and all(v["history_at_start"] == 0 for v in early)
    assert f"started {late['name']} late with an empty keyspace" in stderr
    assert all(v["caught_up"] for v in validators)
    assert len({v["block"] for v in validators}) == 1  # compared at one metagraph block
    assert doc["weights_identical"] is True
    vectors = [v["weights"] for v in validators]
    assert all(vector == vectors[0] for vector in vectors)
    roles = {str(m["uid"]): m["role"] for m in doc["miners"]}
    for vector in vectors:
        assert vector[next(u for u, r in roles.items() if r == "copier")] == 0
        assert vector[next(u for u, r in roles.items() if r == "fabricator")] == 0
        honest = [w for u, w in vector.items() if roles.get(u) == "honest"]
        assert len(honest) == 2 and all(w > 0 for w in honest)
        assert abs(sum(vector.values()) - 1) < 1e-9


def test_validator_specs_differ_in_what_must_not_matter():
    [single] = validator_specs(1)
    assert (single.name, single.prefix, single.late) == ("validator", "d3", False)
    specs = validator_specs(4)
    for attribute in ("name", "prefix", "poll_blocks"):
        assert len({getattr(s, attribute) for s in specs}) == 4
    assert [s.late for s in specs] == [False, False, False, True]
    assert not any(s.late for s in validator_specs(4, late_start=False))


@pytest.mark.parametrize("count", ["0", "5"])
def test_validator_count_is_bounded(count, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--validators", count])
    assert exit_.value.code == 2
    assert "--validators must be between 1 and 4" in capsys.readouterr().err


def _weights(name: str, weights: dict[int, float], caught_up: bool = True) -> ValidatorWeights:
    return ValidatorWeights(
        name=name,
        uid=0,
        hotkey="5F",
        prefix="d3",
        poll_blocks=2,
        late=False,
        started_block=3,
        history_at_start=0,
        caught_up=caught_up,
        block=90,
        weights=weights,
    )


def test_report_says_whether_vectors_are_identical():
    same = Report([], [_weights("a", {1: 0.5, 2: 0.5}), _weights("b", {2: 0.5, 1: 0.5})])
    assert same.weights_identical and same.to_json()["weights_identical"] is True
    assert render(same).endswith("weights identical across 2 validators: yes")
    # Exact equality: a last-bit difference is a disagreement, not a rounding detail.
    off = Report([], [_weights("a", {1: 0.5, 2: 0.5}), _weights("b", {1: 0.5, 2: 0.5 + 1e-12})])
    assert not off.weights_identical
    assert "weights identical across 2 validators: no" in render(off)
    behind = Report([], [_weights("a", {1: 1.0}), _weights("b", {1: 1.0}, caught_up=False)])
    assert render(behind).endswith("yes (b not caught up yet)")


def test_backlog_waits_for_reads_and_judgements(redis_url):
    async def scenario() -> None:
        redis = aioredis.Redis.from_url(redis_url)
        try:
            state = ValidatorState(redis, "bk")
            runner = SimpleNamespace(state=state, scoring=ScoringParams(), audit=None)
            first = CommitmentRecord("hk1", 10, "x", None)
            newest = [first, CommitmentRecord("hk2", 12, "y", None)]
            assert "2 hotkeys' newest commitment unread" in await backlog(runner, newest, 50)
            await state.enqueue(newest, {})
            assert "2 commitments queued" in await backlog(runner, newest, 50)
            for record in newest:
                await state.judge(record, [], Verdict(record.block, True, "", True))
            assert await backlog(runner, newest, 50) is None
            later = [first, CommitmentRecord("hk2", 20, "z", None)]  # hk2 committed again
            assert "1 hotkeys' newest commitment unread" in await backlog(runner, later, 50)
        finally:
            await redis.aclose()

    asyncio.run(scenario())


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
    # A pm2 restart of the local X serves the same tweets (pinned corpus, journal of mints),
    # and the printed board command works as printed, outside the venv too.
    x_args = by_name["d3-local-x"]["args"]
    assert x_args[x_args.index("--journal") + 1] == f"{target}/x-journal" and "--end" in x_args
    assert f"scripts/localnet --leaderboard {target}" in done.stdout
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


def test_prepare_gives_each_validator_its_keyspace_and_cadence(tmp_path, capsys):
    target = tmp_path / "net"
    assert main(["--prepare", str(target), "--miners", "1", "--validators", "2"]) == 0
    text = (target / "localnet.config.js").read_text()
    apps = json.loads(text.removeprefix("module.exports = ").rstrip().removesuffix(";"))["apps"]
    args = {a["name"]: a["args"] for a in apps if "validator" in a["name"]}
    assert set(args) == {"d3-local-validator", "d3-local-validator1"}

    def flag(argv: list[str], name: str) -> str:
        return argv[argv.index(name) + 1]

    assert len({flag(a, "--redis.prefix") for a in args.values()}) == 2
    assert len({flag(a, "--neuron.poll_blocks") for a in args.values()}) == 2
    assert {flag(a, "--wallet.name") for a in args.values()} == {"validator", "validator1"}
    meta = json.loads((target / "localnet.json").read_text())
    assert [v["late"] for v in meta["validators"]] == [False, False]  # pm2 starts them together
