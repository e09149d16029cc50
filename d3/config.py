"""Bittensor-style dotted flags (`--wallet.name`, `--neuron.commit_interval`, ...).

The SDK no longer parses command lines, so this module does, generically: a config is a
pydantic model whose nested models are flag sections. Flags are generated from the model
(names, types, defaults and help all come from the fields, so `--help` cannot drift from
what is validated). Precedence: command line, then environment (`D3_WALLET_NAME`,
`D3_NEURON_COMMIT_INTERVAL`, ...), then the field default. A bad value ends the program
with one line naming the flag and the reason.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

ENV_PREFIX = "D3_"
_NETWORKS = ("finney", "test", "local", "archive")
_ENDPOINT = re.compile(r"^wss?://[^\s/]+(:\d+)?(/\S*)?$")

C = TypeVar("C", bound=BaseModel)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WalletConfig(Section):
    name: str = Field("default", description="wallet (coldkey) name")
    hotkey: str = Field("default", description="hotkey name within the wallet")
    path: str = Field("~/.bittensor/wallets", description="directory that holds the wallets")

    @field_validator("name", "hotkey")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value) or value in {".", ".."}:
            raise ValueError("use letters, digits, '_', '-' or '.' (a file name, no slashes)")
        return value


class SubtensorConfig(Section):
    network: str = Field(
        "finney",
        description="finney, test, local, a ws(s):// endpoint, or dev:PATH for a dev chain file",
    )
    chain_endpoint: str | None = Field(None, description="ws(s):// endpoint; overrides network")
    archive_endpoints: str | None = Field(
        None,
        description="comma-separated ws(s):// archive nodes for old blocks (validators read "
        "commitment history); default: the SDK's public archive pool for finney and test, "
        "none elsewhere",
    )

    @field_validator("network")
    @classmethod
    def _known_network(cls, value: str) -> str:
        if value in _NETWORKS or _ENDPOINT.match(value) or value.startswith("dev:"):
            if value == "dev:":
                raise ValueError("dev: needs a chain file path, e.g. dev:/tmp/d3-chain.sqlite")
            return value
        raise ValueError(f"expected one of {', '.join(_NETWORKS)}, ws(s)://host[:port] or dev:PATH")

    @field_validator("chain_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not _ENDPOINT.match(value):
            raise ValueError("expected ws://host:port or wss://host")
        return value

    @field_validator("archive_endpoints")
    @classmethod
    def _archives(cls, value: str | None) -> str | None:
        if value is None:
            return None
        urls = [u.strip() for u in value.split(",") if u.strip()]
        bad = [u for u in urls if not _ENDPOINT.match(u)]
        if bad or not urls:
            raise ValueError(f"expected comma-separated ws(s):// endpoints, got {value!r}")
        return ",".join(urls)

    @property
    def archives(self) -> list[str] | None:
        """The archive pool to use; None lets the SDK pick its default for the network."""
        return self.archive_endpoints.split(",") if self.archive_endpoints else None

    @property
    def target(self) -> str:
        """What to connect to: the explicit endpoint when given, else the network."""
        return self.chain_endpoint or self.network


class LoggingConfig(Section):
    debug: bool = Field(False, description="log debug events")
    trace: bool = Field(False, description="log trace events (very verbose)")
    logging_dir: str | None = Field(None, description="also write rotating log files here")


class NeuronBaseConfig(BaseModel):
    """What every D3 neuron takes. Miner and validator configs extend it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    netuid: int = Field(1, ge=0, le=65535, description="subnet uid")
    wallet: WalletConfig = WalletConfig()
    subtensor: SubtensorConfig = SubtensorConfig()
    logging: LoggingConfig = LoggingConfig()


class ConfigError(ValueError):
    """A flag or environment value is invalid; the message is one line for the operator."""


def _flags(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted name, field info) for every leaf field, depth first."""
    out: list[tuple[str, Any]] = []
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += _flags(annotation, dotted + ".")
        else:
            out.append((dotted, field))
    return out


def _is_bool(annotation: Any) -> bool:
    return annotation is bool


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


def build_parser(model: type[BaseModel], prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=f"Every flag can also be set in the environment: --wallet.name is "
        f"{ENV_PREFIX}WALLET_NAME. Flags win over the environment.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for dotted, field in _flags(model):
        help_text = field.description or ""
        default = field.default
        if isinstance(default, SecretStr):
            default = "****" if default.get_secret_value() else None
        if _is_bool(field.annotation):
            parser.add_argument(
                f"--{dotted}",
                dest=dotted,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=f"{help_text} (default: {default})",
            )
        else:
            parser.add_argument(
                f"--{dotted}",
                dest=dotted,
                metavar=dotted.rsplit(".", 1)[-1].upper(),
                default=argparse.SUPPRESS,
                help=f"{help_text} (default: {default})",
            )
    return parser


def env_name(dotted: str) -> str:
    return ENV_PREFIX + dotted.replace(".", "_").upper()


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = tree
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def _env_bool(raw: str) -> bool | str:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    return raw  # let pydantic produce the error


def load_config(
    model: type[C],
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    prog: str = "d3",
    description: str = "",
) -> C:
    """Parse `argv` and `env` into a validated `model`; raises ConfigError on bad values.

    `--help` prints the generated help and exits 0, as argparse does.
    """
    parser = build_parser(model, prog, description)
    parsed = vars(parser.parse_args(list(argv) if argv is not None else sys.argv[1:]))
    env = os.environ if env is None else env
    flat: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for dotted, field in _flags(model):
        if dotted in parsed:
            flat[dotted], origin[dotted] = parsed[dotted], f"--{dotted}"
        elif env_name(dotted) in env:
            raw = env[env_name(dotted)]
            flat[dotted] = _env_bool(raw) if _is_bool(field.annotation) else raw
            origin[dotted] = env_name(dotted)
    try:
        return model.model_validate(_nest(flat))
    except ValidationError as exc:
        first = exc.errors()[0]
        dotted = ".".join(str(p) for p in first["loc"])
        where = origin.get(dotted, f"--{dotted}")
        fields = dict(_flags(model))
        shown = dotted in flat and not _is_secret(fields[dotted].annotation)
        given = f" (got {first['input']!r})" if shown else ""
        raise ConfigError(f"{where}: {first['msg']}{given}") from None


def parse_or_exit(
    model: type[C], prog: str, description: str, argv: Sequence[str] | None = None
) -> C:
    """`load_config` for entry points: a bad value prints one line and exits with status 2."""
    try:
        return load_config(model, argv, prog=prog, description=description)
    except ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def expand(path: str) -> Path:
    return Path(path).expanduser()
