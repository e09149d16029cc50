"""A dev substrate: the SDK's `bt.Substrate` protocol answered from a local state file.

The real SDK runs over it unchanged (`bt.Subtensor("local", substrate=DevSubstrate(path))`),
so tests and local networks exercise the SDK's own call building, registration and
rate-limit preflights and weight conversion; only the node is replaced. It implements the
reads and writes a subnet needs (registration, commitments, weights, axons, the
`get_metagraph` runtime call) and refuses everything else with a clear ChainError, so a
gap shows up as an error and never as a silently wrong answer.

Values are shaped like the real codec's output: ss58 strings for accounts, 0x-hex for
fixed byte arrays, tuples for tuples, None for missing Optional storage. Submitted calls go
through the real runtime's codec (d3/dev/codec.py) and are refused if they do not encode;
tests/chain/ holds every answer to the real runtime's types.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from bittensor import Balance, ChainError, ExtrinsicResult
from bittensor.sp_core import verify
from bittensor_core import ss58_encode

from d3.dev import timelock
from d3.dev.chain_state import ChainRejection, ChainState, SubnetParams
from d3.dev.codec import SPEC_VERSION, ShapeError, encode_call, storage_default

T = TypeVar("T")
# What the fake reports for block time when the clock is manual: the SDK sleeps this long
# between retries, so keep it short.
MANUAL_BLOCK_TIME = 0.05
GENESIS_TIMESTAMP_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z

# Fields of the runtime's `Metagraph` answer the dev chain does not model: zero (emissions,
# prices, scores, identities), so the answer has the real type's full shape.
_METAGRAPH_UNMODELLED: dict[str, Any] = {
    "subnet_emission": 0,
    "alpha_in": 0,
    "alpha_out": 0,
    "tao_in": 0,
    "alpha_out_emission": 0,
    "alpha_in_emission": 0,
    "tao_in_emission": 0,
    "pending_alpha_emission": 0,
    "pending_root_emission": 0,
    "subnet_volume": 0,
    "rho": 0,
    "kappa": 0,
    "activity_cutoff": 0,
    "difficulty": 0,
    "min_difficulty": 0,
    "max_difficulty": 0,
    "min_burn": 0,
    "max_burn": 0,
    "adjustment_alpha": 0,
    "adjustment_interval": 0,
    "target_regs_per_interval": 0,
    "max_regs_per_block": 0,
    "serving_rate_limit": 0,
    "alpha_high": 0,
    "alpha_low": 0,
    "bonds_moving_avg": 0,
    "identity": None,
    "moving_price": {"bits": 0},
    "registration_allowed": True,
    "pow_registration_allowed": False,
    "liquid_alpha_enabled": False,
    "tao_dividends_per_hotkey": [],
    "alpha_dividends_per_hotkey": [],
}
_METAGRAPH_UNMODELLED_PER_NEURON = (
    "pruning_score",
    "emission",
    "dividends",
    "incentives",
    "consensus",
    "trust",
    "rank",
    "collateral_locked",
    "collateral_min",
    "collateral_earned",
)
# The runtime's AxonInfo for a hotkey that never served one.
_NO_AXON = dict.fromkeys(
    ("block", "version", "ip", "port", "ip_type", "protocol", "placeholder1", "placeholder2"), 0
)


def _as_bytes(value: Any) -> bytes:
    return bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)


def _raw_bytes(info: Any) -> bytes:
    """The committed bytes from a `set_commitment` info param ({"fields": [[{"RawN": b}]]})."""
    fields = info.get("fields") if isinstance(info, dict) else None
    if not isinstance(fields, list | tuple):
        raise ChainRejection("InvalidCommitment", "info must be {'fields': [...]}")
    flat = [f for group in fields for f in (group if isinstance(group, list | tuple) else [group])]
    out = b""
    for field in flat:
        if not isinstance(field, dict) or len(field) != 1:
            raise ChainRejection("InvalidCommitment", f"unsupported commitment field {field!r}")
        ((variant, value),) = field.items()
        if not variant.startswith("Raw"):
            raise ChainRejection("InvalidCommitment", f"dev chain stores Raw fields, not {variant}")
        data = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
        if variant != f"Raw{len(data)}" or len(data) > 128:
            raise ChainRejection("InvalidCommitment", f"{variant} carries {len(data)} bytes")
        out += data
    if len(flat) > 3:
        raise ChainRejection("TooManyFieldsInCommitmentInfo", "at most 3 fields")
    return out


class DevSubstrate:
    """`bt.Substrate` over a `ChainState` file; several processes may share one file."""

    def __init__(self, path: str | os.PathLike[str]):
        self.state = ChainState(path)
        self.token_symbols: dict[int, str] = {}
        # Weights this process commits timelocked must be revealable here (d3/dev/timelock.py).
        timelock.install()

    @property
    def path(self) -> Path:
        return self.state.path

    # -- admin helpers for tests and local networks (not part of the SDK protocol) ----------

    def create_subnet(
        self, netuid: int, owner_hotkey: str, owner_coldkey: str, params: SubnetParams | None = None
    ) -> None:
        self.state.create_subnet(netuid, owner_hotkey, owner_coldkey, params or SubnetParams())

    def advance(self, blocks: int = 1) -> int:
        return self.state.advance(blocks)

    def set_block_time(self, seconds: float) -> None:
        self.state.set_block_time(seconds)

    def set_stake(self, hotkey: str, rao: int) -> None:
        self.state.set_stake(hotkey, rao)

    def next_epoch(self, netuid: int) -> int:
        """Advance to the first block of the subnet's next epoch (permits are computed
        there); returns that block."""
        head = self.state.head()
        epochs = self.state.epochs(netuid)
        target = epochs.start_of(epochs.index(head) + 1)
        return self.state.advance(target - head)

    def set_stake_threshold(self, rao: int) -> None:
        self.state.set_stake_threshold(rao)

    # -- protocol: display and lifecycle ------------------------------------------------

    def balance(self, rao: int, netuid: int = 0) -> Balance:
        symbol = self.token_symbols.get(netuid) if netuid else None
        return Balance(int(rao), netuid, symbol)

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """SQLite work off the event loop: another process may hold the write lock."""
        return await asyncio.to_thread(fn, *args)

    def _block_at(self, block_hash: str | None) -> int:
        if block_hash is None:
            return self.state.head()
        try:
            block = ChainState.block_of_hash(block_hash)
        except ValueError:
            raise ChainError(f"unknown block hash {block_hash!r}") from None
        if self.state.block_hash(block) != block_hash or block > self.state.head():
            raise ChainError(f"unknown block hash {block_hash!r}")
        return block

    # -- protocol: reads ----------------------------------------------------------------

    async def block_hash(self, block: int | None = None) -> str | None:
        head = await self._run(self.state.head)
        if block is None:
            block = head
        if block < 0 or block > head:
            return None
        return self.state.block_hash(block)

    async def block_number(self) -> int:
        return await self._run(self.state.head)

    async def finalized_block_number(self) -> int:
        return await self._run(self.state.head)

    async def block_time(self) -> float:
        seconds = await self._run(self.state.block_time)
        return seconds if seconds > 0 else MANUAL_BLOCK_TIME

    async def spec_version(self) -> int:
        return SPEC_VERSION  # the runtime whose metadata the dev chain is held to

    async def get_block(
        self, block_number: int | None = None, block_hash: str | None = None
    ) -> dict | None:
        block = self._block_at(block_hash) if block_hash else block_number
        head = await self.block_number()
        block = head if block is None else block
        if block > head:
            return None
        return {
            "header": {
                "number": block,
                "hash": self.state.block_hash(block),
                "parentHash": self.state.block_hash(max(block - 1, 0)),
            },
            "extrinsics": [],
        }

    async def query(
        self,
        module: str,
        storage_function: str,
        params: list | None = None,
        block_hash: str | None = None,
    ) -> Any:
        return await self._run(
            self._query, module, storage_function, list(params or []), block_hash
        )

    def _query(self, module: str, name: str, params: list, block_hash: str | None) -> Any:
        block = self._block_at(block_hash)
        state = self.state
        key = f"{module}.{name}"
        if key == "Timestamp.Now":
            return GENESIS_TIMESTAMP_MS + block * 12_000
        if key == "SubtensorModule.Owner":
            for netuid in state.netuids():
                for n in state.neurons(netuid, block):
                    if n.hotkey == params[0]:
                        return n.coldkey
            return storage_default(module, name)  # a Default item: the zero account
        if key == "SubtensorModule.StakeThreshold":
            return state.stake_threshold()
        if key == "SubtensorModule.CommitRevealWeightsVersion":
            return storage_default(module, name)  # chain-wide in the runtime (4), no netuid key
        netuid = int(params[0]) if params else None
        if netuid is None:
            raise ChainError(f"dev chain: {key} needs a netuid")
        subnet = state.subnet(netuid)
        if key == "Commitments.CommitmentOf":
            found = state.commitment_of(netuid, params[1], block)
            return self._commitment_value(*found) if found else None
        if subnet is None:
            return storage_default(module, name)  # what a node answers for an absent key
        p: SubnetParams = subnet[0]
        scalars: dict[str, Any] = {
            "SubtensorModule.Tempo": p.tempo,
            "SubtensorModule.WeightsSetRateLimit": p.weights_rate_limit,
            "SubtensorModule.MinAllowedWeights": p.min_allowed_weights,
            "SubtensorModule.MaxWeightsLimit": p.max_weights_limit,
            "SubtensorModule.WeightsVersionKey": p.weights_version_key,
            "SubtensorModule.CommitRevealWeightsEnabled": p.commit_reveal,
            "SubtensorModule.RevealPeriodEpochs": p.reveal_period_epochs,
            "SubtensorModule.PendingEpochAt": 0,
            "SubtensorModule.SubnetEpochConsensus": "Yuma",
            "SubtensorModule.Burn": p.burn_rao,
            "SubtensorModule.CollateralLockShare": 0,
            "SubtensorModule.MaxAllowedUids": p.max_uids,
            "SubtensorModule.ImmunityPeriod": p.immunity_period,
        }
        if key in scalars:
            return scalars[key]
        epochs = state.epochs(netuid)
        if key == "SubtensorModule.SubnetEpochIndex":
            return epochs.index(block)
        if key == "SubtensorModule.LastEpochBlock":
            return epochs.last_epoch_block(block)
        if key == "SubtensorModule.BlocksSinceLastStep":
            return block - epochs.last_epoch_block(block)
        if key == "SubtensorModule.SubnetworkN":
            return len(state.neurons(netuid, block))
        if key == "SubtensorModule.Uids":
            return state.uid_of(netuid, params[1], block)
        if key == "SubtensorModule.Keys":
            neurons = {n.uid: n.hotkey for n in state.neurons(netuid, block)}
            return neurons.get(int(params[1]), "5C4hrfjw9DjXZTzV3MwzrrAr9P1MJhSrvWGWqi1eSuyUpnhM")
        if key == "SubtensorModule.LastUpdate":
            return state.last_updates(netuid, block)
        if key == "SubtensorModule.ValidatorPermit":
            return state.validator_permits(netuid, block)
        if key == "SubtensorModule.Weights":
            return state.weights(netuid, block).get(int(params[1]), [])
        raise ChainError(f"dev chain does not implement storage {key}")

    @staticmethod
    def _commitment_value(block: int, data: bytes) -> dict:
        fields = [
            {f"Raw{len(data[i : i + 128])}": "0x" + data[i : i + 128].hex()}
            for i in range(0, len(data), 128)
        ] or [{"Raw0": []}]  # the runtime's decoding of an empty fixed array
        return {"deposit": 0, "block": block, "info": {"fields": fields}}

    async def map_has_entries(
        self, module: str, storage_function: str, params: list, block_hash: str | None = None
    ) -> bool:
        return bool(await self.query_map(module, storage_function, params, block_hash))

    async def query_map(
        self,
        module: str,
        storage_function: str,
        params: list | None = None,
        block_hash: str | None = None,
    ) -> list[tuple[Any, Any]]:
        return await self._run(
            self._query_map, module, storage_function, list(params or []), block_hash
        )

    def _query_map(
        self, module: str, name: str, params: list, block_hash: str | None
    ) -> list[tuple[Any, Any]]:
        block = self._block_at(block_hash)
        key = f"{module}.{name}"
        if key == "SubtensorModule.TokenSymbol":
            return [(netuid, "α") for netuid in self.state.netuids()]
        if key == "Commitments.RevealedCommitments":
            return []
        if not params:
            raise ChainError(f"dev chain: map {key} needs a netuid prefix")
        netuid = int(params[0])
        if key == "Commitments.CommitmentOf":
            return [
                (hotkey, self._commitment_value(at, data))
                for hotkey, at, data in self.state.commitments(netuid, block)
            ]
        if key == "SubtensorModule.Uids":
            return [(n.hotkey, n.uid) for n in self.state.neurons(netuid, block)]
        if key == "SubtensorModule.Weights":
            return sorted(self.state.weights(netuid, block).items())
        if key == "SubtensorModule.TimelockedWeightCommits":
            return self.state.timelocked_commits(netuid, block)
        raise ChainError(f"dev chain does not implement storage map {key}")

    async def query_batch(
        self,
        module: str,
        storage_function: str,
        param_sets: list[list],
        block_hash: str | None = None,
    ) -> list[Any]:
        return [await self.query(module, storage_function, p, block_hash) for p in param_sets]

    async def runtime_call(
        self, api: str, method: str, params: list, block_hash: str | None = None
    ) -> Any:
        if (api, method) == ("SubnetInfoRuntimeApi", "get_metagraph"):
            return await self._run(self._metagraph, int(params[0]), block_hash)
        if (api, method) == ("SubnetInfoRuntimeApi", "get_next_epoch_start_block"):
            return await self._run(self._next_epoch_start, int(params[0]), block_hash)
        raise ChainError(f"dev chain does not implement runtime call {api}.{method}")

    def _next_epoch_start(self, netuid: int, block_hash: str | None) -> int | None:
        if self.state.subnet(netuid) is None:
            return None
        epochs = self.state.epochs(netuid)
        return epochs.last_epoch_block(self._block_at(block_hash)) + epochs.tempo

    def _metagraph(self, netuid: int, block_hash: str | None) -> dict | None:
        block = self._block_at(block_hash)
        subnet = self.state.subnet(netuid)
        if subnet is None:
            return None
        params, owner_hotkey, owner_coldkey, registered_at = subnet
        neurons = self.state.neurons(netuid, block)
        last_updates = self.state.last_updates(netuid, block)
        last_step = self.state.epochs(netuid).last_epoch_block(block)
        axons = [self.state.axon(netuid, n.hotkey, block) for n in neurons]
        return {
            **_METAGRAPH_UNMODELLED,
            **{key: [0] * len(neurons) for key in _METAGRAPH_UNMODELLED_PER_NEURON},
            "identities": [None] * len(neurons),
            "netuid": netuid,
            "name": list(f"dev{netuid}".encode()),
            "symbol": list("α".encode()),
            "block": block,
            "tempo": params.tempo,
            "last_step": last_step,
            "blocks_since_last_step": block - last_step,
            "owner_hotkey": owner_hotkey,
            "owner_coldkey": owner_coldkey,
            "network_registered_at": registered_at,
            "num_uids": len(neurons),
            "max_uids": params.max_uids,
            "hotkeys": [n.hotkey for n in neurons],
            "coldkeys": [n.coldkey for n in neurons],
            "axons": [{**_NO_AXON, **(a or {})} for a in axons],
            "active": [True] * len(neurons),
            "validator_permit": self.state.validator_permits(netuid, block),
            "last_update": last_updates,
            "block_at_registration": [n.registered_block for n in neurons],
            "alpha_stake": [n.stake_rao for n in neurons],
            "tao_stake": [0] * len(neurons),
            "total_stake": [n.stake_rao for n in neurons],
            # The hyperparameters the dev chain models, as its storage reads report them.
            "min_allowed_weights": params.min_allowed_weights,
            "max_weights_limit": params.max_weights_limit,
            "weights_version": params.weights_version_key,
            "weights_rate_limit": params.weights_rate_limit,
            "max_validators": params.max_validators,
            "immunity_period": params.immunity_period,
            "burn": params.burn_rao,
            "commit_reveal_weights_enabled": params.commit_reveal,
            "commit_reveal_period": params.reveal_period_epochs,
        }

    async def constant(self, module: str, name: str) -> Any:
        if (module, name) == ("Aura", "SlotDuration"):
            return int(await self.block_time() * 1000)
        raise ChainError(f"dev chain does not implement constant {module}.{name}")

    async def decode_scale(self, type_string: str, data: Any) -> Any:
        raise ChainError("dev chain does not decode SCALE")

    async def blocks(self, *, finalized: bool = False) -> AsyncIterator[dict]:
        last = await self.block_number()
        while True:
            head = await self.block_number()
            for number in range(last + 1, head + 1):
                yield {
                    "header": {"number": number, "parentHash": self.state.block_hash(number - 1)}
                }
            last = max(last, head)
            await asyncio.sleep(await self.block_time() / 2)

    async def events(self, block_hash: str | None = None) -> list[dict]:
        return []

    # -- protocol: calls and fees ---------------------------------------------------------

    async def compose(self, call: Any) -> Any:
        return call  # the generated Call(module, function, params) is its own composed form

    async def estimate_fee(self, call: Any, keypair: Any) -> Balance:
        return Balance.from_rao(0)

    async def estimate_weight(self, call: Any, keypair: Any) -> dict:
        return {"ref_time": 0, "proof_size": 0}

    async def account_next_index(self, address: str) -> int:
        return await self._run(self.state.nonce, address)

    async def mev_next_key(self) -> bytes | None:
        return None  # no MEV shield on the dev chain: submit unshielded calls

    # -- protocol: writes -------------------------------------------------------------------

    async def submit(
        self,
        call: Any,
        keypair: Any,
        *,
        nonce: int | None = None,
        period: int | None = None,
        wait_for_inclusion: bool = True,
        wait_for_finalization: bool = True,
    ) -> ExtrinsicResult:
        module, function, params = call
        signer = keypair.ss58_address
        # A node decodes the call against its runtime: refuse what the real one could not.
        try:
            await self._run(encode_call, module, function, dict(params))
        except ShapeError as error:
            return self._failure("CallNotDecodable", str(error))
        # Prove the submitter holds the key, as a node would by checking the signature.
        payload = f"{module}.{function}:{sorted(params)}".encode()
        signature = keypair.sign(payload)
        if inspect.isawaitable(signature):
            signature = await signature
        if not verify(payload, bytes(signature), signer):
            return self._failure("BadSignature", "extrinsic signature does not verify")
        try:
            block, idx = await self._run(self._apply, module, function, dict(params), signer)
        except ChainRejection as rejection:
            return self._failure(rejection.name, str(rejection))
        if wait_for_inclusion or wait_for_finalization:
            await self._wait_for_block(block)
        return ExtrinsicResult(
            success=True,
            message="Success",
            block_hash=self.state.block_hash(block),
            extrinsic_id=f"{block}-{idx:04d}",
            fee=Balance.from_rao(0),
            events=[],
        )

    async def _wait_for_block(self, block: int) -> None:
        """On a timed clock a write lands in the next block; wait for it like a node would."""
        while await self.block_number() < block:  # noqa: ASYNC110 - polling a file-backed clock
            await asyncio.sleep(await self.block_time() / 4)

    @staticmethod
    def _failure(name: str, message: str) -> ExtrinsicResult:
        return ExtrinsicResult(success=False, message=message, error=ChainError(message, name))

    def _apply(self, module: str, function: str, params: dict, signer: str) -> tuple[int, int]:
        state = self.state
        match (module, function):
            case ("SubtensorModule", "burned_register"):
                block, idx, _uid = state.register(int(params["netuid"]), params["hotkey"], signer)
                return block, idx
            case ("Commitments", "set_commitment"):
                return state.commit(int(params["netuid"]), signer, _raw_bytes(params["info"]))
            case ("SubtensorModule", "set_mechanism_weights" | "set_weights"):
                if int(params.get("mecid", 0)) != 0:
                    raise ChainRejection("MechanismDoesNotExist", "dev chain has one mechanism")
                return state.set_weights(
                    int(params["netuid"]),
                    signer,
                    [int(d) for d in params["dests"]],
                    [int(w) for w in params["weights"]],
                    int(params["version_key"]),
                )
            case ("SubtensorModule", "commit_timelocked_mechanism_weights"):
                if int(params.get("mecid", 0)) != 0:
                    raise ChainRejection("MechanismDoesNotExist", "dev chain has one mechanism")
                commit = _as_bytes(params["commit"])
                payload = timelock.plaintext_of(commit)
                plain = None
                if payload is not None:
                    plain = {
                        "hotkey": ss58_encode(payload.hotkey),
                        "uids": list(payload.uids),
                        "values": list(payload.values),
                        "version_key": payload.version_key,
                    }
                return state.commit_timelocked(
                    int(params["netuid"]),
                    signer,
                    commit,
                    int(params["reveal_round"]),
                    int(params["commit_reveal_version"]),
                    plain,
                )
            case ("SubtensorModule", "serve_axon"):
                info = {k: int(params[k]) for k in ("version", "ip", "port", "ip_type", "protocol")}
                return state.serve_axon(int(params["netuid"]), signer, info)
        raise ChainRejection(
            "CallNotSupported", f"dev chain does not implement {module}.{function}"
        )

    async def _unsupported(self, *_args: Any, **_kwargs: Any) -> Any:
        raise ChainError(
            "not supported by the dev chain (no MEV shield, multisig or offline signing)"
        )

    sign_extrinsic = find_extrinsic = prepare = submit_signature = submit_signed = _unsupported
    submit_multisig = _unsupported

    def multisig_account(self, signatories: list[str], threshold: int) -> Any:
        raise ChainError("multisig is not supported by the dev chain")
