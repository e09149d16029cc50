"""Bittensor-style dotted flags (`--wallet.name`, `--neuron.commit_interval`, ...).

The SDK no longer parses command lines, so this module does, generically: a config is a
pydantic model whose nested models are flag sections. Flags are generated from the model
(names, types, defaults and help all come from the fields, so `--help` cannot drift from
what is validated). Precedence: command line, then the role's environment
(`D3_MINER_WALLET_NAME`, `D3_VALIDATOR_WALLET_NAME`: a miner and a validator can share one
`.env`), then the shared one (`D3_WALLET_NAME`, `D3_NEURON_COMMIT_INTERVAL`, ...), then the
field default. A secret (a token) can also come from a file named by the same variable with
`_FILE` appended, so it never appears in `ps` or `pm2 describe`. A bad value ends the
program with one line naming the flag and the reason.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from d3.errors import first_error

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
    connect_deadline_s: float = Field(
        60, gt=0, description="seconds to keep retrying an endpoint at start-up"
    )
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


# `--logging.json` is the flag operators expect; the field shadows pydantic's deprecated
# `BaseModel.json()`, which no config ever calls.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "json"', category=UserWarning)

    class LoggingConfig(Section):
        debug: bool = Field(False, description="log debug events")
        trace: bool = Field(False, description="log trace events (very verbose)")
        logging_dir: str | None = Field(None, description="also write rotating log files here")
        json: bool = Field(
            False, description="one JSON object per line (time, level, message, context)"
        )
        stream: Literal["stdout", "stderr"] = Field(
            "stdout",
            description="where the console log goes (pm2 files stdout as out, stderr as error)",
        )


class MetricsConfig(Section):
    port: int = Field(
        0,
        ge=0,
        le=65535,
        description="serve /metrics and /healthz (a validator also /leaderboard.json) on this "
        "port; 0: off",
    )
    host: str = Field("127.0.0.1", description="address the metrics server listens on")
    stale_s: float = Field(
        1800,
        gt=0,
        description="/healthz answers 503 once a loop has not finished an iteration for this "
        "many seconds beyond its planned waits",
    )


class NeuronBaseConfig(BaseModel):
    """What every D3 neuron takes. Miner and validator configs extend it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    netuid: int = Field(ge=0, le=65535, description="the subnet's uid: the one D3 is registered on")
    wallet: WalletConfig = WalletConfig()
    subtensor: SubtensorConfig = SubtensorConfig()
    logging: LoggingConfig = LoggingConfig()
    metrics: MetricsConfig = MetricsConfig()


class ConfigError(ValueError):
    """The configuration cannot work: a flag or environment value is invalid, or flags do
    not fit together; the message is one line for the operator, naming what to change."""


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


def _choices(annotation: Any) -> list[str]:
    """The strings of a Literal, also of one in `Literal[...] | None`."""
    args = get_args(annotation)
    inner = [a for arg in args for a in (get_args(arg) if get_origin(arg) is Literal else (arg,))]
    return [c for c in inner if isinstance(c, str)]


# Flags that exist only to demo a dev chain: listed in --help only there.
DEV_ONLY = "dev_only"
DEV_FLAG = {DEV_ONLY: True}  # a field's json_schema_extra: listed only on dev chains
_SIZE_UNITS = (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


def _shown_default(dotted: str, field: Any) -> str:
    """The default as an operator reads it: sizes in binary units, secrets masked."""
    if field.is_required():
        return "required"
    default = field.default
    if isinstance(default, SecretStr):
        return "set" if default.get_secret_value() else "none"
    if default is None:
        return "none"
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, int) and dotted.endswith("bytes"):
        for unit, size in _SIZE_UNITS:
            if default >= size and default % size == 0:
                return f"{default // size} {unit}"
    return str(default)


def build_parser(
    model: type[BaseModel], prog: str, description: str, dev: bool = False
) -> argparse.ArgumentParser:
    """Flags grouped by section, each with its choices and its default; flags that only
    make sense on a dev chain are listed only when `dev` (dev roles are such flags, never
    choices of a production flag)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=f"Every flag can also be set in the environment: --wallet.name is "
        f"{ENV_PREFIX}WALLET_NAME, or {ENV_PREFIX}MINER_WALLET_NAME / "
        f"{ENV_PREFIX}VALIDATOR_WALLET_NAME for one role only (those win). A token can come "
        f"from a file: {ENV_PREFIX}VERIFY_X_BEARER_TOKEN_FILE=/path. Flags win over the "
        "environment; prefer the environment for tokens (flags show in ps).",
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for dotted, field in _flags(model):
        section = dotted.split(".", 1)[0] if "." in dotted else "general"
        if section not in groups:
            groups[section] = parser.add_argument_group(f"{section} flags")
        group = groups[section]
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        hidden = bool(extra.get(DEV_ONLY)) and not dev
        help_text = (field.description or "").replace("%", "%%")
        choices = _choices(field.annotation)
        if choices:
            help_text += f"; one of: {', '.join(choices)}"
        help_text += f" (default: {_shown_default(dotted, field)})"
        options: dict[str, Any] = {
            "dest": dotted,
            "default": argparse.SUPPRESS,
            "help": argparse.SUPPRESS if hidden else help_text,
        }
        if _is_bool(field.annotation):
            group.add_argument(f"--{dotted}", action=argparse.BooleanOptionalAction, **options)
        else:
            metavar = "CHOICE" if choices else dotted.rsplit(".", 1)[-1].upper()
            group.add_argument(f"--{dotted}", metavar=metavar, **options)
    return parser


def env_name(dotted: str, role: str | None = None) -> str:
    scope = f"{role.upper()}_" if role else ""
    return ENV_PREFIX + scope + dotted.replace(".", "_").upper()


def _from_env(
    dotted: str, secret: bool, env: Mapping[str, str], role: str | None
) -> tuple[str, str] | None:
    """(raw value, where it came from) for `dotted` in the environment, the role's own
    variables first; a secret may name a file instead (`..._FILE`)."""
    for name in ([env_name(dotted, role)] if role else []) + [env_name(dotted)]:
        if name in env:
            return env[name], name
        if secret and f"{name}_FILE" in env:
            path = Path(env[f"{name}_FILE"]).expanduser()
            try:
                return path.read_text().strip(), f"{name}_FILE"
            except OSError as error:
                raise ConfigError(f"{name}_FILE: cannot read {path}: {error.strerror}") from None
    return None


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
    role: str | None = None,
) -> C:
    """Parse `argv` and `env` into a validated `model`; raises ConfigError on bad values.

    `role` ("miner", "validator") adds its own environment variables, which win over the
    shared ones. `--help` prints the generated help and exits 0, as argparse does.
    """
    args = list(argv) if argv is not None else sys.argv[1:]
    env = os.environ if env is None else env
    dev = any(a.startswith("dev:") for a in args) or str(
        env.get(env_name("subtensor.network"), "")
    ).startswith("dev:")
    parser = build_parser(model, prog, description, dev=dev)
    parsed = vars(parser.parse_args(args))
    flat: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for dotted, field in _flags(model):
        if dotted in parsed:
            flat[dotted], origin[dotted] = parsed[dotted], f"--{dotted}"
        elif (found := _from_env(dotted, _is_secret(field.annotation), env, role)) is not None:
            raw, origin[dotted] = found
            flat[dotted] = _env_bool(raw) if _is_bool(field.annotation) else raw
    try:
        return model.model_validate(_nest(flat))
    except ValidationError as exc:
        first = first_error(exc)
        where = origin.get(first.where, f"--{first.where}")
        fields = dict(_flags(model))
        shown = first.where in flat and not _is_secret(fields[first.where].annotation)
        given = f" (got {first.input!r})" if shown else ""
        raise ConfigError(f"{where}: {first.raw_message}{given}") from None


def parse_or_exit(
    model: type[C],
    prog: str,
    description: str,
    argv: Sequence[str] | None = None,
    role: str | None = None,
) -> C:
    """`load_config` for entry points: a bad value prints one line and exits with status 2."""
    try:
        return load_config(model, argv, prog=prog, description=description, role=role)
    except ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def expand(path: str) -> Path:
    return Path(path).expanduser()
