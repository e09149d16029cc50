"""`Chain` over the bittensor SDK: finney, test, local, any ws(s):// node, or a dev chain file.

Every read pins one block (the SDK's snapshot reads), so a validator's view of commitments
and neurons is consistent. Writes return the chain's verdict instead of raising: a refused
commit or weight-set is an expected event for a long-running neuron, not a crash.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import bittensor as bt
from bittensor import BittensorError, ChainError, RpcConnectionError
from loguru import logger

from d3.chain.interface import (
    ChainUnreachable,
    ChainVerdict,
    CommitmentRecord,
    HistoryUnavailable,
    MetagraphSnapshot,
    Neuron,
    SubnetNotFound,
)
from d3.chain.weights import WeightRules, same_row
from d3.commitment import MAX_COMMITMENT_BYTES
from d3.config import SubtensorConfig
from d3.retry import Backoff, retry

DEV_PREFIX = "dev:"


def commitment_info(data: bytes) -> dict:
    """The `info` param of `Commitments.set_commitment` for one Raw field."""
    return {"fields": [[{f"Raw{len(data)}": data}]]}


def _verdict_from_result(result: bt.ExtrinsicResult) -> ChainVerdict:
    block = None
    if result.extrinsic_id and "-" in result.extrinsic_id:
        block = int(result.extrinsic_id.split("-", 1)[0])
    if result.success:
        return ChainVerdict(True, "included", block=block)
    code = result.error.code.value if result.error is not None else None
    name = f"{result.error.name}: " if result.error is not None and result.error.name else ""
    return ChainVerdict(False, f"{name}{result.message}", code=code, block=block)


def _verdict_from_error(error: BittensorError) -> ChainVerdict:
    if isinstance(error, ChainError):
        code = error.code.value
    elif isinstance(error, RpcConnectionError):
        code = "connection"
    else:
        code = "invalid_argument"
    return ChainVerdict(False, str(error), code=code)


# A write waits for finalization (a few blocks on finney); the SDK's watch has no limit of
# its own, and a finality stall must not freeze a neuron inside one call.
WRITE_TIMEOUT_S = 180.0


async def _write(
    what: str, call: Callable[[], Awaitable[bt.ExtrinsicResult]], timeout_s: float
) -> ChainVerdict:
    """One chain write as a verdict, whatever happens: refusals, a stalled finality, an SDK
    that does not understand the runtime (its codec raises plain errors before any RPC)."""
    try:
        async with asyncio.timeout(timeout_s):
            result = await call()
    except TimeoutError:
        return ChainVerdict(
            False,
            f"{what}: not finalized within {timeout_s:g}s (it may still land)",
            code="timeout",
        )
    except BittensorError as error:  # preflight refusals: rate limit, not registered, ...
        return _verdict_from_error(error)
    except (ConnectionError, OSError) as error:
        return ChainVerdict(False, f"{what}: {error}", code="connection")
    except Exception as error:  # the SDK and the runtime disagree (metadata skew)
        return ChainVerdict(
            False, f"{what}: the SDK failed: {type(error).__name__}: {error}", code="sdk_error"
        )
    return _verdict_from_result(result)


T = TypeVar("T")
# Reads (and weight-sets, which are idempotent) are retried this many times when the
# endpoint drops a connection; commits are not (a retry could spend the commit budget
# twice): they report a verdict and the caller decides.
READ_ATTEMPTS = 4
READ_BACKOFF = Backoff(0.2)
# Start-up waits out a restarting node, up to --subtensor.connect_deadline_s.
CONNECT_BACKOFF = Backoff(1.0, cap_s=10.0)


async def _read(call: Callable[[], Awaitable[T]]) -> T:
    return await retry(
        call, READ_BACKOFF, attempts=READ_ATTEMPTS, retryable=_dropped, on_retry=_read_retried
    )


def _dropped(error: Exception) -> bool:
    return isinstance(error, RpcConnectionError | ConnectionError | TimeoutError)


def _read_retried(error: Exception, wait: float) -> None:
    logger.debug("chain read failed ({}); retry in {:.1f}s", error, wait)


async def _historic(block: int, call: Callable[[], Awaitable[T]]) -> T:
    """A read pinned at an old block; pruned state becomes one clear HistoryUnavailable."""
    try:
        return await _read(call)
    except ChainError as error:
        if "state discarded" in str(error).lower() or "unknown block" in str(error).lower():
            raise HistoryUnavailable(
                f"block {block} is not available from this endpoint (pruned state): point "
                "--subtensor.archive_endpoints at an archive node"
            ) from None
        raise


class SdkChain:
    """One hotkey's view of one subnet through an async `bt.Client`."""

    def __init__(
        self,
        client: bt.Client,
        wallet: Any,
        netuid: int,
        write_timeout_s: float = WRITE_TIMEOUT_S,
    ):
        self.client = client
        self.wallet = wallet
        self.netuid = netuid
        self.write_timeout_s = write_timeout_s
        self.hotkey: str = wallet.hotkey.ss58_address
        # The last timelocked commit still to be confirmed: (commit block, expected row).
        self._pending_reveal: tuple[int, list[tuple[int, int]]] | None = None

    async def block(self) -> int:
        return await _read(self.client.block)

    async def finalized_block(self) -> int:
        return await _read(self.client.finalized_block)

    async def block_hash(self, block: int) -> str | None:
        """The hash of a *finalized* block (None before it is final): seeds taken from it
        cannot be reorganised away, so every validator draws the same sample."""
        if block > await _read(self.client.finalized_block):
            return None
        # The client resolves a number to its hash with one header lookup; `block_info`
        # would download the whole block (archive state for old ones).
        return await _historic(block, lambda: self.client._block_hash(block))

    async def metagraph(self, block: int | None = None) -> MetagraphSnapshot:
        graph = await _read(
            lambda: self.client.subnets.metagraph(self.netuid, block, commitments=False)
        )
        if graph is None:
            raise SubnetNotFound(f"netuid {self.netuid} has no subnet on this chain")
        neurons = tuple(
            Neuron(
                uid=n.uid,
                hotkey=n.hotkey,
                coldkey=n.coldkey,
                stake=float(n.total_stake.alpha),
                validator_permit=n.validator_permit,
                registered_block=n.block_at_registration,
            )
            for n in graph.neurons
        )
        return MetagraphSnapshot(self.netuid, graph.block, neurons)

    async def commitments(self, block: int | None = None) -> list[CommitmentRecord]:
        """Every plain-text commitment on the subnet, ordered by (block, hotkey)."""
        found = await _read(lambda: self.client.subnets.commitments(self.netuid, block))
        records = [
            CommitmentRecord(hotkey=c.hotkey, block=c.block, data=c.data or "", uid=c.uid)
            for c in found.values()
            if c.status == "plain" and c.block
        ]
        return sorted(records, key=lambda r: (r.block, r.hotkey))

    async def commitment_of(self, hotkey: str, block: int) -> CommitmentRecord | None:
        found = await _historic(
            block, lambda: self.client.identity.commitment(self.netuid, hotkey, block=block)
        )
        if found is None or not found.block:
            return None
        return CommitmentRecord(hotkey=hotkey, block=found.block, data=found.data or "", uid=None)

    async def block_timestamp_ms(self, block: int) -> int:
        stamp = await _historic(block, lambda: self.client.chain.timestamp(block=block))
        return round(float(stamp["unix"]) * 1000)

    async def uid(self) -> int | None:
        return await _read(lambda: self.client.neurons.uid(self.hotkey, self.netuid))

    async def commit(self, data: str) -> ChainVerdict:
        raw = data.encode()
        if len(raw) > MAX_COMMITMENT_BYTES:
            return ChainVerdict(
                False, f"commitment is {len(raw)} bytes, limit 128", "invalid_argument"
            )
        if await self.uid() is None:
            return ChainVerdict(
                False,
                f"hotkey {self.hotkey} is not registered on netuid {self.netuid}",
                "not_registered",
            )
        call = bt.calls.Commitments.set_commitment(netuid=self.netuid, info=commitment_info(raw))
        # Not retried: a retry after a commit that landed would spend the budget twice.
        return await _write(
            "commit",
            lambda: self.client.submit_call(call, self.wallet, signer="hotkey"),
            self.write_timeout_s,
        )

    async def weight_rules(self) -> WeightRules | None:
        """The chain's weight rules for this hotkey, read at one block (None: not
        registered)."""
        block = await self.block()

        async def query(name: str, params: list) -> Any:
            return await _read(
                lambda: self.client.query(("SubtensorModule", name), params, block=block)
            )

        graph = await _read(
            lambda: self.client.subnets.metagraph(self.netuid, block, commitments=False)
        )
        if graph is None:
            raise SubnetNotFound(f"netuid {self.netuid} has no subnet on this chain")
        me = next((n for n in graph.neurons if n.hotkey == self.hotkey), None)
        if me is None:
            return None
        enabled, min_allowed, max_limit, version, threshold = await asyncio.gather(
            query("CommitRevealWeightsEnabled", [self.netuid]),
            query("MinAllowedWeights", [self.netuid]),
            query("MaxWeightsLimit", [self.netuid]),
            query("WeightsVersionKey", [self.netuid]),
            query("StakeThreshold", []),
        )
        return WeightRules(
            uid=me.uid,
            n_uids=len(graph.neurons),
            commit_reveal=bool(enabled),
            min_allowed_weights=int(min_allowed or 0),
            max_weights_limit=65535 if max_limit is None else int(max_limit),
            required_version=int(version or 0),
            stake_threshold=int(threshold or 0),
            stake=int(me.total_stake.rao),
            permit=bool(me.validator_permit),
            owner=graph.owner_hotkey == self.hotkey,
        )

    async def set_weights(self, weights: Mapping[int, float], version_key: int) -> ChainVerdict:
        """Check what the chain (or, with commit-reveal, its silent reveal) would check,
        pad to `MinAllowedWeights`, then set or commit them."""
        try:
            rules = await self.weight_rules()
        except Exception as error:  # a read the runtime does not serve: the SDK skew
            return ChainVerdict(
                False, f"set_weights: reading the weight rules: {error}", "sdk_error"
            )
        if rules is None:
            return ChainVerdict(
                False,
                f"hotkey {self.hotkey} is not registered on netuid {self.netuid}",
                "not_registered",
            )
        refusal = rules.refusal(version_key)
        if refusal is not None:
            return ChainVerdict(
                False, f"the chain would refuse these weights: {refusal}", "refused"
            )
        padded = rules.padded(weights)
        intent = bt.SetWeights(netuid=self.netuid, weights=padded, version_key=version_key)
        # Safe to retry on a dropped connection: setting the same weights twice is harmless,
        # and a second try after a landed first is refused by the rate limit.
        verdict = await _write(
            "set_weights",
            lambda: _read(lambda: self.client.execute(intent, self.wallet)),
            self.write_timeout_s,
        )
        if verdict.ok and rules.commit_reveal:
            block = verdict.block if verdict.block is not None else await self.block()
            self._pending_reveal = (block, rules.expected_row(padded))
            return ChainVerdict(True, "committed (timelocked); applied at the reveal", block=block)
        return verdict

    @property
    def pending_reveal_block(self) -> int | None:
        return None if self._pending_reveal is None else self._pending_reveal[0]

    async def weights_of(self, uid: int) -> dict[int, int] | None:
        stored = await _read(
            lambda: self.client.query(("SubtensorModule", "Weights"), [self.netuid, uid])
        )
        return {int(u): int(v) for u, v in stored or []}

    async def reveal_outcome(self) -> ChainVerdict | None:
        """What became of the last timelocked commit, once the chain has dealt with it:
        ok when `Weights` holds the committed row, not ok when the reveal dropped it (the
        runtime only traces that). None while it waits, or when nothing was committed."""
        if self._pending_reveal is None:
            return None
        block, expected = self._pending_reveal
        commits = await _read(lambda: self.client.weights.timelocked_weight_commits(self.netuid))
        if any(
            c["hotkey"] == self.hotkey and c["commit_block"] == block
            for entries in commits.values()
            for c in entries
        ):
            return None
        uid = await self.uid()
        stored = (
            await _read(
                lambda: self.client.query(("SubtensorModule", "Weights"), [self.netuid, uid])
            )
            if uid is not None
            else None
        )
        self._pending_reveal = None
        row = [(int(u), int(v)) for u, v in stored or []]
        if same_row(row, expected):
            return ChainVerdict(
                True, f"weights committed at block {block} were revealed", block=block
            )
        return ChainVerdict(
            False,
            f"weights committed at block {block} were not applied at the reveal (the chain "
            "checks version key, validator permit, stake threshold and weight limits there "
            "and drops a commit that fails, silently): the old weights stay",
            "reveal_failed",
            block=block,
        )

    async def blocks_until_weights_allowed(self) -> int:
        """0 when a weight-set would pass the rate limit now."""
        uid = await self.uid()
        if uid is None:
            raise ChainError(f"hotkey {self.hotkey} is not registered on netuid {self.netuid}")
        limit = await _read(lambda: self.client.hyperparameters.weights_rate_limit(self.netuid))
        since = await _read(lambda: self.client.epochs.blocks_since_last_update(self.netuid, uid))
        if not limit or since is None:
            return 0
        last_set_ever = since < await self.block()  # LastUpdate 0 means never set
        return max(0, limit - since) if last_set_ever else 0

    async def runtime_skew(self, weights: bool) -> str | None:
        """Why the pinned SDK cannot work with this chain's runtime (None: it can): each
        storage item the SDK reads to commit (and, for a validator, to set weights) is read
        once. The SDK's codec raises before any RPC on an item the runtime's metadata lacks,
        and then every commit or weight-set would fail, round after round."""
        reads = [("Commitments", "CommitmentOf", [self.netuid, self.hotkey])]
        if weights:
            for name in _WEIGHT_READS:
                params: list = [self.netuid, self.hotkey] if name == "Uids" else [self.netuid]
                reads.append(("SubtensorModule", name, [] if name == "StakeThreshold" else params))
        block = await self.block()
        for module, name, params in reads:
            try:
                await _read(
                    lambda m=module, n=name, p=params: self.client.query((m, n), p, block=block)
                )
            except (RpcConnectionError, ConnectionError, TimeoutError):
                raise
            except Exception as error:
                return (
                    f"the chain's runtime does not serve {module}.{name}, which bittensor "
                    f"{bt.__version__} reads to {'set weights' if weights else 'commit'} "
                    f"({type(error).__name__}: {error}): install the SDK version this "
                    "runtime supports"
                )
        return None

    async def register(self) -> ChainVerdict:
        """Burned registration, paid by the coldkey (not MEV-shielded: a plain extrinsic)."""
        call = bt.calls.SubtensorModule.burned_register(netuid=self.netuid, hotkey=self.hotkey)
        return await _write(
            "register", lambda: self.client.submit_call(call, self.wallet), self.write_timeout_s
        )


# What the pinned SDK reads to set weights (its SetWeights preflight and timelocked path)
# and to commit: a runtime without one of them fails every weight-set or commit.
_WEIGHT_READS = (
    "Uids",
    "CommitRevealWeightsEnabled",
    "WeightsSetRateLimit",
    "LastUpdate",
    "MinAllowedWeights",
    "MaxWeightsLimit",
    "SubnetEpochConsensus",
    "Tempo",
    "RevealPeriodEpochs",
    "LastEpochBlock",
    "PendingEpochAt",
    "SubnetEpochIndex",
    "BlocksSinceLastStep",
    "WeightsVersionKey",
    "StakeThreshold",
)


def _isolate_sdk_cache() -> None:
    """The SDK caches token symbols in ~/.bittensor keyed by network label; a dev chain
    labelled "local" must not poison a real local node's cache."""
    os.environ.setdefault(
        "BTCLI_TOKEN_SYMBOLS_CACHE", os.path.join(tempfile.gettempdir(), "d3-token-symbols.json")
    )


@asynccontextmanager
async def _connected(
    make: Callable[[], bt.Subtensor], target: str, deadline_s: float
) -> AsyncIterator[bt.Client]:
    """Enter the SDK client, retrying a refused or dropped connection with backoff until
    `deadline_s`; then one ChainUnreachable line (a node restarting is normal, a wrong
    endpoint is not, and only time tells them apart)."""
    give_up = asyncio.get_running_loop().time() + deadline_s
    attempt = 0
    while True:
        subtensor = make()
        try:
            client = await subtensor.__aenter__()
        except (RpcConnectionError, ConnectionError, OSError, TimeoutError) as error:
            attempt += 1
            wait = CONNECT_BACKOFF.delay(attempt)
            if asyncio.get_running_loop().time() + wait > give_up:
                raise ChainUnreachable(
                    f"cannot reach {target} after {attempt} attempts in {deadline_s:g}s: {error}"
                ) from None
            logger.warning("cannot reach {} ({}); retry in {:.0f}s", target, error, wait)
            await asyncio.sleep(wait)
            continue
        break
    try:
        yield client
    finally:
        await subtensor.__aexit__(None, None, None)


@asynccontextmanager
async def open_chain(
    subtensor: SubtensorConfig, wallet: Any, netuid: int
) -> AsyncIterator[SdkChain]:
    """Connect to the configured network; `dev:PATH` opens the dev chain file at PATH (it
    must exist: a local network creates it)."""
    target = subtensor.target
    if target.startswith(DEV_PREFIX):
        from d3.dev.substrate import DevSubstrate

        path = target.removeprefix(DEV_PREFIX)
        if not await asyncio.to_thread(os.path.isfile, path):
            raise ChainUnreachable(f"no dev chain file at {path} (./scripts/localnet creates one)")
        _isolate_sdk_cache()
        substrate = DevSubstrate(path)
        async with bt.Subtensor("local", substrate=substrate) as client:
            yield SdkChain(client, wallet, netuid)
    else:
        make = lambda: bt.Subtensor(target, archive_endpoints=subtensor.archives)  # noqa: E731
        async with _connected(make, target, subtensor.connect_deadline_s) as client:
            yield SdkChain(client, wallet, netuid)
