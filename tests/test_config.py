import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, Field, SecretStr

from d3.config import ConfigError, NeuronBaseConfig, Section, load_config


class DemoNeuron(Section):
    commit_interval: int = Field(10, gt=0, description="blocks between commits")
    dry_run: bool = Field(False, description="do everything but write")


class XSection(Section):
    bearer_token: SecretStr = Field(SecretStr(""), description="X API bearer token")


class DemoConfig(NeuronBaseConfig):
    neuron: DemoNeuron = DemoNeuron()
    x: XSection = XSection()


NETUID_ENV = {"D3_NETUID": "1"}


def test_defaults_flags_and_env_precedence():
    config = load_config(DemoConfig, [], env=NETUID_ENV)
    assert config.netuid == 1 and config.wallet.name == "default"
    assert config.subtensor.network == "finney" and not config.logging.debug
    env = {"D3_WALLET_NAME": "fromenv", "D3_NEURON_COMMIT_INTERVAL": "7", "D3_LOGGING_DEBUG": "yes"}
    env |= NETUID_ENV
    config = load_config(DemoConfig, ["--wallet.name", "fromflag", "--netuid", "13"], env=env)
    assert config.wallet.name == "fromflag"  # the flag wins over the environment
    assert config.neuron.commit_interval == 7
    assert config.logging.debug is True
    assert config.netuid == 13


def test_bool_flags_and_networks():
    config = load_config(
        DemoConfig,
        ["--neuron.dry_run", "--subtensor.network", "ws://127.0.0.1:9944", "--logging.trace"],
        env=NETUID_ENV,
    )
    assert config.neuron.dry_run and config.logging.trace
    assert config.subtensor.target == "ws://127.0.0.1:9944"
    config = load_config(
        DemoConfig, ["--subtensor.chain_endpoint", "wss://node.example:443"], env=NETUID_ENV
    )
    assert config.subtensor.target == "wss://node.example:443"
    assert load_config(DemoConfig, ["--subtensor.network", "dev:/tmp/c.sqlite"], env=NETUID_ENV)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (
            ["--neuron.commit_interval", "-5"],
            {},
            "--neuron.commit_interval: Input should be greater than 0 (got '-5')",
        ),
        (["--netuid", "abc"], {}, "--netuid: Input should be a valid integer"),
        ([], {"D3_NETUID": ""}, "D3_NETUID: Input should be a valid integer"),
        ([], {"D3_NETUID": "70000"}, "D3_NETUID: Input should be less than or equal to 65535"),
        (
            ["--subtensor.network", "mainnet"],
            {},
            "--subtensor.network: Value error, expected one of",
        ),
        (["--wallet.name", "../etc"], {}, "--wallet.name: Value error, use letters"),
        (
            ["--subtensor.archive_endpoints", "wss://a.example:443,http://b"],
            {},
            "--subtensor.archive_endpoints: Value error, expected comma-separated ws(s)://",
        ),
        ([], {"D3_LOGGING_DEBUG": "maybe"}, "D3_LOGGING_DEBUG: Input should be a valid boolean"),
    ],
)
def test_bad_values_give_one_line_naming_the_flag(argv, env, message):
    with pytest.raises(ConfigError) as info:
        load_config(DemoConfig, argv, env=NETUID_ENV | env)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_secrets_are_never_echoed():
    config = load_config(DemoConfig, ["--x.bearer_token", "s3cr3t"], env=NETUID_ENV)
    assert config.x.bearer_token.get_secret_value() == "s3cr3t"
    assert "s3cr3t" not in repr(config) and "s3cr3t" not in str(config.model_dump())

    class Strict(BaseModel):
        token: SecretStr = Field(min_length=10)

    class WithStrict(NeuronBaseConfig):
        x: Strict = Strict(token=SecretStr("0123456789"))

    with pytest.raises(ConfigError) as info:
        load_config(WithStrict, ["--x.token", "short"], env=NETUID_ENV)
    assert "short" not in str(info.value)


def test_help_lists_every_flag_and_unknown_flags_fail(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_config(DemoConfig, ["--help"], env=NETUID_ENV)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--netuid",
        "--wallet.name",
        "--wallet.hotkey",
        "--wallet.path",
        "--subtensor.network",
        "--subtensor.chain_endpoint",
        "--logging.debug",
        "--logging.trace",
        "--logging.logging_dir",
        "--neuron.commit_interval",
        "--neuron.dry_run",
        "D3_WALLET_NAME",
    ):
        assert flag in out
    with pytest.raises(SystemExit) as exit_info:
        load_config(DemoConfig, ["--wallet.nmae", "x"], env=NETUID_ENV)
    assert exit_info.value.code == 2


def test_logging_routes_sdk_records_into_loguru(tmp_path):
    script = (
        "import logging; from loguru import logger\n"
        "from d3.config import LoggingConfig; from d3.logs import setup_logging\n"
        f"setup_logging(LoggingConfig(debug=True, logging_dir={str(tmp_path)!r}), 'demo')\n"
        "logging.getLogger('bittensor.transport').info('sdk says hi')\n"
        "logger.bind(hotkey='5Abc', uid=3).info('manifest accepted')\n"
        "logger.complete()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "sdk says hi" in result.stdout
    assert "manifest accepted | hotkey=5Abc uid=3" in result.stdout
    assert "manifest accepted" in (tmp_path / "demo.log").read_text()


def test_netuid_is_required():
    """No default subnet: a neuron started without --netuid would otherwise run on netuid 1."""
    with pytest.raises(ConfigError, match="--netuid: Field required"):
        load_config(DemoConfig, [], env={})


def test_a_role_has_its_own_environment_and_secrets_come_from_files(tmp_path):
    """A miner and a validator on one box share one .env: D3_MINER_* and D3_VALIDATOR_*
    win over D3_*; a token file keeps the token out of ps and pm2 describe."""
    token = tmp_path / "x-token"
    token.write_text("s3cr3t\n")
    env = {
        "D3_NETUID": "7",
        "D3_WALLET_NAME": "shared",
        "D3_MINER_WALLET_NAME": "miner",
        "D3_VALIDATOR_WALLET_NAME": "validator",
        "D3_X_BEARER_TOKEN_FILE": str(token),
    }
    assert load_config(DemoConfig, [], env=env, role="miner").wallet.name == "miner"
    validator = load_config(DemoConfig, [], env=env, role="validator")
    assert validator.wallet.name == "validator" and validator.netuid == 7
    assert validator.x.bearer_token.get_secret_value() == "s3cr3t"
    assert load_config(DemoConfig, [], env=env).wallet.name == "shared"
    missing = {**env, "D3_X_BEARER_TOKEN_FILE": str(tmp_path / "nope")}
    with pytest.raises(ConfigError, match="D3_X_BEARER_TOKEN_FILE: cannot read"):
        load_config(DemoConfig, [], env=missing)


def test_help_groups_flags_lists_choices_and_hides_dev_only_ones():
    def help_of(*argv: str) -> str:
        result = subprocess.run(
            [sys.executable, "neurons/miner.py", *argv, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert result.returncode == 0, result.stderr
        return " ".join(result.stdout.split())  # argparse wraps lines

    production = help_of()
    for section in ("general flags:", "wallet flags:", "source flags:", "host flags:"):
        assert section in production
    assert "one of: x_api, twscrape, apify (default: x_api)" in production
    assert "one of: dir, s3, hf" in production
    assert "(default: required)" in production and "PydanticUndefined" not in production
    assert "copier" not in production and "--source.copy_from" not in production
    assert "--source.adversary" not in production and "fabricator" not in production
    assert "--source.x_api_base_url" not in production
    dev = help_of("--subtensor.network", "dev:/tmp/chain.sqlite")
    assert "copier" in dev and "--source.copy_from" in dev
    # The dev roles are a flag of their own; --source.kind lists real sources only.
    assert "one of: copier, fabricator, diluter" in dev
    assert "one of: x_api, twscrape, apify (default: x_api)" in dev
    validator = subprocess.run(
        [sys.executable, "neurons/validator.py", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout
    validator = " ".join(validator.split())
    assert "largest shard fetched (default: 256 MiB)" in validator
    assert "--no-verify.structure_only" not in validator  # its own entry; others may name it
