"""The dev chain's state: subnets, neurons, commitments and weights in one SQLite file.

A file (not memory) so that separate miner and validator processes can meet on one chain.
Every row carries the block it was written at, so a read pinned to block B sees exactly
the state after B. Blocks advance on a clock stored in the file: either by hand
(`advance`), with every write sealing a block of its own ("instant seal"), or with wall
time at a fixed block time.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subnets (
    netuid INTEGER PRIMARY KEY, owner_hotkey TEXT NOT NULL, owner_coldkey TEXT NOT NULL,
    registered_at INTEGER NOT NULL, params TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS neurons (
    netuid INTEGER NOT NULL, uid INTEGER NOT NULL, hotkey TEXT NOT NULL, coldkey TEXT NOT NULL,
    registered_block INTEGER NOT NULL, replaced_block INTEGER,
    PRIMARY KEY (netuid, uid, registered_block)
);
CREATE TABLE IF NOT EXISTS stakes (hotkey TEXT PRIMARY KEY, rao INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS stake_changes (
    hotkey TEXT NOT NULL, block INTEGER NOT NULL, rao INTEGER NOT NULL,
    PRIMARY KEY (hotkey, block)
);
CREATE TABLE IF NOT EXISTS timelocked (
    netuid INTEGER NOT NULL, hotkey TEXT NOT NULL, block INTEGER NOT NULL,
    epoch INTEGER NOT NULL, reveal_block INTEGER NOT NULL, reveal_round INTEGER NOT NULL,
    commit_hex TEXT NOT NULL, plain TEXT, outcome TEXT,
    PRIMARY KEY (netuid, hotkey, block)
);
CREATE TABLE IF NOT EXISTS axons (
    netuid INTEGER NOT NULL, hotkey TEXT NOT NULL, block INTEGER NOT NULL, info TEXT NOT NULL,
    PRIMARY KEY (netuid, hotkey, block)
);
CREATE TABLE IF NOT EXISTS commitments (
    netuid INTEGER NOT NULL, hotkey TEXT NOT NULL, block INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (netuid, hotkey, block)
);
CREATE TABLE IF NOT EXISTS weights (
    netuid INTEGER NOT NULL, uid INTEGER NOT NULL, block INTEGER NOT NULL, row TEXT NOT NULL,
    PRIMARY KEY (netuid, uid, block)
);
CREATE TABLE IF NOT EXISTS extrinsics (
    block INTEGER NOT NULL, idx INTEGER NOT NULL, signer TEXT NOT NULL, call TEXT NOT NULL,
    success INTEGER NOT NULL, PRIMARY KEY (block, idx)
);
"""


@dataclass(frozen=True)
class SubnetParams:
    """Hyperparameters the dev chain enforces; defaults mirror a small real subnet."""

    tempo: int = 360
    max_uids: int = 256
    weights_rate_limit: int = 100
    min_allowed_weights: int = 1  # what a new subnet gets (the runtime default is 1024)
    max_weights_limit: int = 65535
    weights_version_key: int = 0
    max_validators: int = 64
    immunity_period: int = 0
    burn_rao: int = 10**9
    # Commit-reveal, on by default as in the runtime: weights are committed timelocked and
    # applied when the epoch `reveal_period_epochs` after the commit's begins.
    commit_reveal: bool = True
    reveal_period_epochs: int = 1
    commit_reveal_version: int = 4
    # Commitments pallet: bytes a hotkey may commit per tempo, and the minimum charge.
    commit_space_per_tempo: int = 3100
    commit_min_bytes: int = 100


# The runtime's limits on timelocked commits (`MAX_CRV3_COMMIT_SIZE_BYTES`, and unrevealed
# commits per hotkey per epoch).
MAX_COMMIT_BYTES = 5000
MAX_UNREVEALED = 10
U16_MAX = 65535


@dataclass(frozen=True)
class EpochClock:
    """A subnet's epochs as the runtime counts them: `SubnetEpochIndex` goes up by one each
    `tempo` blocks from `LastEpochBlock = registered_at - netuid % tempo` (no owner-
    triggered epochs on the dev chain), and reads see the state after their block."""

    tempo: int
    origin: int

    def index(self, block: int) -> int:
        return max(0, (block - self.origin) // self.tempo)

    def start_of(self, epoch: int) -> int:
        return self.origin + epoch * self.tempo

    def last_epoch_block(self, block: int) -> int:
        return self.start_of(self.index(block))


@dataclass(frozen=True)
class NeuronRow:
    uid: int
    hotkey: str
    coldkey: str
    registered_block: int
    stake_rao: int


class ChainRejection(Exception):
    """A write the chain refuses; `name` is the pallet error name the real chain uses."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name


class ChainState:
    """Typed access to the state file. Thread-safe; each process opens its own."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM meta WHERE key='chain_id'").fetchone() is None:
                self._set(db, "chain_id", os.urandom(8).hex())
                self._set(db, "anchor_block", "1")
                self._set(db, "anchor_time", repr(time.time()))
                self._set(db, "block_time", "0")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit across processes (`BEGIN IMMEDIATE` takes the write lock)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db

    # -- clock -----------------------------------------------------------------------

    @staticmethod
    def _get(db: sqlite3.Connection, key: str) -> str:
        return db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()[0]

    @staticmethod
    def _set(db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _head(self, db: sqlite3.Connection) -> int:
        anchor = int(self._get(db, "anchor_block"))
        block_time = float(self._get(db, "block_time"))
        if block_time <= 0:
            return anchor
        elapsed = time.time() - float(self._get(db, "anchor_time"))
        return anchor + max(0, int(elapsed / block_time))

    def head(self) -> int:
        with self.reading() as db:
            return self._head(db)

    def block_time(self) -> float:
        with self.reading() as db:
            return float(self._get(db, "block_time"))

    def set_block_time(self, seconds: float) -> None:
        """0 means manual: blocks advance only with `advance` and with each write."""
        with self.transaction() as db:
            head = self._head(db)
            self._set(db, "anchor_block", str(head))
            self._set(db, "anchor_time", repr(time.time()))
            self._set(db, "block_time", repr(float(seconds)))

    def advance(self, blocks: int = 1) -> int:
        if blocks < 0:
            raise ValueError("blocks cannot go backwards")
        with self.transaction() as db:
            head = self._head(db) + blocks
            self._set(db, "anchor_block", str(head))
            self._set(db, "anchor_time", repr(time.time()))
            return head

    def _seal_block(self, db: sqlite3.Connection) -> int:
        """The block a write lands in: a new block in manual mode, the next one otherwise."""
        head = self._head(db) + 1
        if float(self._get(db, "block_time")) <= 0:
            self._set(db, "anchor_block", str(head))
        return head

    def block_hash(self, block: int) -> str:
        """Unpredictable before the chain file exists, but reversible: the block number is in
        the last 8 bytes, so a pinned read can find its block without a lookup table."""
        with self.reading() as db:
            chain_id = self._get(db, "chain_id")
        digest = hashlib.sha256(f"{chain_id}:{block}".encode()).hexdigest()[:48]
        return f"0x{digest}{block:016x}"

    @staticmethod
    def block_of_hash(block_hash: str) -> int:
        return int(block_hash[-16:], 16)

    # -- subnets and neurons -------------------------------------------------------------

    def create_subnet(
        self, netuid: int, owner_hotkey: str, owner_coldkey: str, params: SubnetParams
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO subnets VALUES (?, ?, ?, ?, ?)",
                (netuid, owner_hotkey, owner_coldkey, self._head(db), json.dumps(params.__dict__)),
            )

    def subnet(self, netuid: int) -> tuple[SubnetParams, str, str, int] | None:
        with self.reading() as db:
            row = db.execute(
                "SELECT params, owner_hotkey, owner_coldkey, registered_at FROM subnets "
                "WHERE netuid=?",
                (netuid,),
            ).fetchone()
        if row is None:
            return None
        return SubnetParams(**json.loads(row[0])), row[1], row[2], row[3]

    def epochs(self, netuid: int) -> EpochClock:
        params, _, _, registered_at = self._subnet_or_reject(netuid)
        return EpochClock(params.tempo, registered_at - netuid % params.tempo)

    def _subnet_or_reject(self, netuid: int) -> tuple[SubnetParams, str, str, int]:
        subnet = self.subnet(netuid)
        if subnet is None:
            raise ChainRejection("SubnetNotExists", f"subnet {netuid} does not exist")
        return subnet

    def stake_threshold(self) -> int:
        """`StakeThreshold`: the stake a hotkey needs to set weights (chain-wide)."""
        with self.reading() as db:
            row = db.execute("SELECT value FROM meta WHERE key='stake_threshold'").fetchone()
        return int(row[0]) if row else 0

    def set_stake_threshold(self, rao: int) -> None:
        with self.transaction() as db:
            self._set(db, "stake_threshold", str(int(rao)))

    def netuids(self) -> list[int]:
        with self.reading() as db:
            return [r[0] for r in db.execute("SELECT netuid FROM subnets ORDER BY netuid")]

    def neurons(self, netuid: int, block: int) -> list[NeuronRow]:
        """Neurons registered at `block`, by uid."""
        with self.reading() as db:
            return self.neurons_in(db, netuid, block)

    def uid_of(self, netuid: int, hotkey: str, block: int) -> int | None:
        for neuron in self.neurons(netuid, block):
            if neuron.hotkey == hotkey:
                return neuron.uid
        return None

    def set_stake(self, hotkey: str, rao: int) -> None:
        """Stake from the next block on (its history is kept: permits are per epoch)."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO stakes VALUES (?, ?)", (hotkey, rao))
            db.execute(
                "INSERT OR REPLACE INTO stake_changes VALUES (?, ?, ?)",
                (hotkey, self._head(db) + 1, rao),
            )

    def validator_permits(self, netuid: int, block: int) -> list[bool]:
        subnet = self._subnet_or_reject(netuid)
        epochs = self.epochs(netuid)
        threshold = self.stake_threshold()
        with self.reading() as db:
            return self._permits(db, netuid, subnet, epochs, threshold, block)

    def _permits(
        self,
        db: sqlite3.Connection,
        netuid: int,
        subnet: tuple[SubnetParams, str, str, int],
        epochs: EpochClock,
        threshold: int,
        block: int,
    ) -> list[bool]:
        """`ValidatorPermit` at `block`: computed when the epoch it belongs to ran, from the
        stakes then (below `StakeThreshold` counts as none), the top `max_validators` with
        any stake, the subnet owner always; a uid registered since holds none yet."""
        params, owner_hotkey = subnet[0], subnet[1]
        at = epochs.last_epoch_block(block)
        then = self.neurons_in(db, netuid, at)
        stakes = {}
        for n in then:
            row = db.execute(
                "SELECT rao FROM stake_changes WHERE hotkey=? AND block<=? "
                "ORDER BY block DESC LIMIT 1",
                (n.hotkey, at),
            ).fetchone()
            rao = row[0] if row else 0
            stakes[n.uid] = rao if rao >= threshold or n.hotkey == owner_hotkey else 0
        ranked = sorted((u for u in stakes if stakes[u] > 0), key=lambda u: (-stakes[u], u))
        permitted = set(ranked[: params.max_validators])
        permitted |= {n.uid for n in then if n.hotkey == owner_hotkey}
        holders = {n.uid: n.hotkey for n in then}
        return [
            n.uid in permitted and holders.get(n.uid) == n.hotkey
            for n in self.neurons_in(db, netuid, block)
        ]

    def _params(self, netuid: int) -> SubnetParams:
        subnet = self.subnet(netuid)
        if subnet is None:
            raise ChainRejection("SubnetNotExists", f"subnet {netuid} does not exist")
        return subnet[0]

    # -- writes (each is one extrinsic) ----------------------------------------------------

    def _log(self, db: sqlite3.Connection, block: int, signer: str, call: str) -> int:
        idx = db.execute(
            "SELECT COALESCE(MAX(idx) + 1, 1) FROM extrinsics WHERE block=?", (block,)
        ).fetchone()[0]
        db.execute("INSERT INTO extrinsics VALUES (?, ?, ?, ?, 1)", (block, idx, signer, call))
        return idx

    def register(self, netuid: int, hotkey: str, coldkey: str) -> tuple[int, int, int]:
        """Burned registration; a full subnet replaces its lowest-stake, oldest neuron
        outside the immunity period. Returns (block, extrinsic index, uid)."""
        params = self._params(netuid)
        with self.transaction() as db:
            head = self._head(db)
            live = self.neurons_in(db, netuid, head + 1)
            if any(n.hotkey == hotkey for n in live):
                raise ChainRejection(
                    "HotKeyAlreadyRegisteredInSubNet", f"{hotkey} is already registered"
                )
            block = self._seal_block(db)
            if len(live) < params.max_uids:
                uid = len(live)
            else:
                candidates = [
                    n for n in live if block - n.registered_block > params.immunity_period
                ]
                if not candidates:
                    raise ChainRejection("NoNeuronIdAvailable", "every uid is immune")
                victim = min(candidates, key=lambda n: (n.stake_rao, n.registered_block, n.uid))
                uid = victim.uid
                db.execute(
                    "UPDATE neurons SET replaced_block=? WHERE netuid=? AND uid=? "
                    "AND replaced_block IS NULL",
                    (block, netuid, uid),
                )
            db.execute(
                "INSERT INTO neurons VALUES (?, ?, ?, ?, ?, NULL)",
                (netuid, uid, hotkey, coldkey, block),
            )
            idx = self._log(db, block, coldkey, f"burned_register({netuid})")
            return block, idx, uid

    def neurons_in(self, db: sqlite3.Connection, netuid: int, block: int) -> list[NeuronRow]:
        rows = db.execute(
            "SELECT n.uid, n.hotkey, n.coldkey, n.registered_block, COALESCE(s.rao, 0) "
            "FROM neurons n LEFT JOIN stakes s ON s.hotkey = n.hotkey "
            "WHERE n.netuid=? AND n.registered_block<=? "
            "AND (n.replaced_block IS NULL OR n.replaced_block>?) ORDER BY n.uid",
            (netuid, block, block),
        ).fetchall()
        return [NeuronRow(*r) for r in rows]

    def _registered_uid(self, db: sqlite3.Connection, netuid: int, hotkey: str) -> int:
        for neuron in self.neurons_in(db, netuid, self._head(db)):
            if neuron.hotkey == hotkey:
                return neuron.uid
        raise ChainRejection(
            "HotKeyNotRegisteredInSubNet", f"hotkey {hotkey} is not registered on netuid {netuid}"
        )

    def commit(self, netuid: int, hotkey: str, data: bytes) -> tuple[int, int]:
        params = self._params(netuid)
        epochs = self.epochs(netuid)
        with self.transaction() as db:
            try:
                self._registered_uid(db, netuid, hotkey)
            except ChainRejection:
                raise ChainRejection(
                    "AccountNotAllowedCommit",
                    f"hotkey {hotkey} is not registered on netuid {netuid}",
                ) from None
            block = self._head(db) + 1
            # Usage resets when the subnet's epoch index changes (`UsedSpaceOf.last_epoch`).
            period_start = epochs.last_epoch_block(block)
            used = db.execute(
                "SELECT COALESCE(SUM(MAX(LENGTH(data), ?)), 0) FROM commitments "
                "WHERE netuid=? AND hotkey=? AND block>=?",
                (params.commit_min_bytes, netuid, hotkey, period_start),
            ).fetchone()[0]
            cost = max(len(data), params.commit_min_bytes)
            if used + cost > params.commit_space_per_tempo:
                raise ChainRejection(
                    "SpaceLimitExceeded",
                    f"commit space used this tempo {used}+{cost} > "
                    f"{params.commit_space_per_tempo} bytes",
                )
            block = self._seal_block(db)
            db.execute(
                "INSERT OR REPLACE INTO commitments VALUES (?, ?, ?, ?)",
                (netuid, hotkey, block, data),
            )
            return block, self._log(db, block, hotkey, f"set_commitment({netuid})")

    def commitment_of(self, netuid: int, hotkey: str, block: int) -> tuple[int, bytes] | None:
        """(commit block, data): `hotkey`'s latest commitment as of `block` (full history)."""
        with self.reading() as db:
            return db.execute(
                "SELECT block, data FROM commitments WHERE netuid=? AND hotkey=? AND block<=? "
                "ORDER BY block DESC LIMIT 1",
                (netuid, hotkey, block),
            ).fetchone()

    def commitments(self, netuid: int, block: int) -> list[tuple[str, int, bytes]]:
        """(hotkey, commit block, data): each hotkey's latest commitment at `block`."""
        with self.reading() as db:
            return db.execute(
                "SELECT hotkey, MAX(block), data FROM commitments "
                "WHERE netuid=? AND block<=? GROUP BY hotkey ORDER BY hotkey",
                (netuid, block),
            ).fetchall()

    # -- weights: plain sets, timelocked commits and their reveals --------------------------

    def _weights_context(self, netuid: int) -> tuple:
        """What every weight rule reads, taken before the write lock (the readers lock)."""
        return self._subnet_or_reject(netuid), self.epochs(netuid), self.stake_threshold()

    def _check_weights(
        self,
        db: sqlite3.Connection,
        netuid: int,
        context: tuple,
        hotkey: str,
        dests: list[int],
        values: list[int],
        version_key: int,
        block: int,
        rate_limited: bool,
    ) -> int:
        """The runtime's `internal_set_weights` checks, in its order, for weights applied at
        `block`; returns the setter's uid. A reveal runs them too (without the rate limit)."""
        subnet, epochs, threshold = context
        params, owner_hotkey = subnet[0], subnet[1]
        if len(dests) != len(values):
            raise ChainRejection("WeightVecNotEqualSize", "dests and weights differ in length")
        live = {n.uid: n for n in self.neurons_in(db, netuid, block)}
        if len(dests) > len(live):
            raise ChainRejection("UidsLengthExceedUidsInSubNet", "more weights than uids")
        uid = next((n.uid for n in live.values() if n.hotkey == hotkey), None)
        if uid is None:
            raise ChainRejection(
                "HotKeyNotRegisteredInSubNet",
                f"hotkey {hotkey} is not registered on netuid {netuid}",
            )
        is_owner = hotkey == owner_hotkey
        stake = live[uid].stake_rao
        if not is_owner and stake < threshold:
            raise ChainRejection(
                "NotEnoughStakeToSetWeights", f"stake {stake} < StakeThreshold {threshold}"
            )
        required = params.weights_version_key
        if required and version_key < required:
            raise ChainRejection(
                "IncorrectWeightVersionKey", f"version key {version_key} < {required}"
            )
        if rate_limited:
            last = self._last_update(db, netuid, uid, block - 1)
            if last and block - last < params.weights_rate_limit:
                raise ChainRejection(
                    "SettingWeightsTooFast",
                    f"weights set at block {last}; rate limit {params.weights_rate_limit} blocks",
                )
        self_weight = dests == [uid]
        permits = self._permits(db, netuid, subnet, epochs, threshold, block)
        if not (self_weight or is_owner or permits[sorted(live).index(uid)]):
            raise ChainRejection("NeuronNoValidatorPermit", f"uid {uid} has no validator permit")
        if len(set(dests)) != len(dests):
            raise ChainRejection("DuplicateUids", "a uid appears twice")
        if any(d not in live for d in dests):
            raise ChainRejection("UidVecContainInvalidOne", "weights name an unknown uid")
        needed = min(len(live), params.min_allowed_weights)
        if not self_weight and len(dests) < needed:
            raise ChainRejection(
                "WeightVecLengthIsLow", f"{len(dests)} weights, the subnet needs {needed}"
            )
        total = sum(values)
        limit = params.max_weights_limit
        if not self_weight and limit < U16_MAX and total and max(values) * U16_MAX // total > limit:
            raise ChainRejection(
                "MaxWeightExceeded", f"largest weight is above {limit / U16_MAX:.4f} of the total"
            )
        return uid

    def set_weights(
        self, netuid: int, hotkey: str, dests: list[int], values: list[int], version_key: int
    ) -> tuple[int, int]:
        """A plain weight-set; the runtime refuses it while commit-reveal is on."""
        context = self._weights_context(netuid)
        if context[0][0].commit_reveal:
            raise ChainRejection(
                "CommitRevealEnabled", f"commit-reveal is on for netuid {netuid}: commit weights"
            )
        with self.transaction() as db:
            self._reveal_due(db, self._head(db))
            block = self._head(db) + 1
            uid = self._check_weights(
                db, netuid, context, hotkey, dests, values, version_key, block, True
            )
            block = self._seal_block(db)
            db.execute(
                "INSERT OR REPLACE INTO weights VALUES (?, ?, ?, ?)",
                (netuid, uid, block, json.dumps([dests, _upscaled(values)])),
            )
            return block, self._log(db, block, hotkey, f"set_weights({netuid})")

    def commit_timelocked(
        self,
        netuid: int,
        hotkey: str,
        commit: bytes,
        reveal_round: int,
        version: int,
        plain: dict | None,
    ) -> tuple[int, int]:
        """`commit_timelocked_mechanism_weights`: the runtime's checks at commit, in order;
        `plain` is what the dev beacon knows the ciphertext holds (None: nothing)."""
        context = self._weights_context(netuid)
        (params, owner_hotkey, _, _), epochs, threshold = context
        if len(commit) > MAX_COMMIT_BYTES:
            raise ChainRejection("CommitTooLarge", f"commit is {len(commit)} bytes")
        if not params.commit_reveal:
            raise ChainRejection("CommitRevealDisabled", f"commit-reveal is off for {netuid}")
        if version != params.commit_reveal_version:
            raise ChainRejection(
                "IncorrectCommitRevealVersion",
                f"commit-reveal version {version}, the chain runs {params.commit_reveal_version}",
            )
        with self.transaction() as db:
            self._reveal_due(db, self._head(db))
            block = self._head(db) + 1
            live = {n.hotkey: n for n in self.neurons_in(db, netuid, block)}
            if hotkey not in live:
                raise ChainRejection(
                    "HotKeyNotRegisteredInSubNet",
                    f"hotkey {hotkey} is not registered on netuid {netuid}",
                )
            neuron = live[hotkey]
            if hotkey != owner_hotkey and neuron.stake_rao < threshold:
                raise ChainRejection(
                    "NotEnoughStakeToSetWeights",
                    f"stake {neuron.stake_rao} < StakeThreshold {threshold}",
                )
            last = self._last_update(db, netuid, neuron.uid, block - 1)
            if last and block - last < params.weights_rate_limit:
                raise ChainRejection(
                    "CommittingWeightsTooFast",
                    f"weights committed at block {last}; rate limit "
                    f"{params.weights_rate_limit} blocks",
                )
            epoch = epochs.index(block)
            pending = db.execute(
                "SELECT COUNT(*) FROM timelocked WHERE netuid=? AND hotkey=? AND epoch=? "
                "AND outcome IS NULL",
                (netuid, hotkey, epoch),
            ).fetchone()[0]
            if pending >= MAX_UNREVEALED:
                raise ChainRejection("TooManyUnrevealedCommits", f"{pending} commits unrevealed")
            block = self._seal_block(db)
            db.execute(
                "INSERT INTO timelocked VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (
                    netuid,
                    hotkey,
                    block,
                    epoch,
                    epochs.start_of(epoch + params.reveal_period_epochs),
                    reveal_round,
                    commit.hex(),
                    None if plain is None else json.dumps(plain),
                ),
            )
            return block, self._log(db, block, hotkey, f"commit_timelocked_weights({netuid})")

    def _reveal_due(self, db: sqlite3.Connection, head: int) -> None:
        """Reveal every commit whose reveal block has come, in block order, as the runtime's
        `reveal_crv3_commits` does at the start of that block: the weight checks run with
        the state of that block; a failure only drops the commit (the old weights stay),
        and so does a commit nobody can decrypt (no plaintext)."""
        due = db.execute(
            "SELECT netuid, hotkey, block, reveal_block, plain FROM timelocked "
            "WHERE outcome IS NULL AND reveal_block<=? ORDER BY reveal_block, block, hotkey",
            (head,),
        ).fetchall()
        for netuid, hotkey, block, reveal_block, plain in due:
            outcome = "revealed"
            try:
                if plain is None:
                    raise ChainRejection("Undecryptable", "no plaintext for this ciphertext")
                payload = json.loads(plain)
                if payload["hotkey"] != hotkey:
                    raise ChainRejection("HotkeyMismatch", "payload names another hotkey")
                subnet = db.execute(
                    "SELECT params, owner_hotkey, owner_coldkey, registered_at FROM subnets "
                    "WHERE netuid=?",
                    (netuid,),
                ).fetchone()
                params = SubnetParams(**json.loads(subnet[0]))
                epochs = EpochClock(params.tempo, subnet[3] - netuid % params.tempo)
                row = db.execute("SELECT value FROM meta WHERE key='stake_threshold'").fetchone()
                context = (
                    (params, subnet[1], subnet[2], subnet[3]),
                    epochs,
                    int(row[0]) if row else 0,
                )
                dests, values = payload["uids"], payload["values"]
                uid = self._check_weights(
                    db,
                    netuid,
                    context,
                    hotkey,
                    dests,
                    values,
                    payload["version_key"],
                    reveal_block,
                    False,
                )
                db.execute(
                    "INSERT OR REPLACE INTO weights VALUES (?, ?, ?, ?)",
                    (netuid, uid, reveal_block, json.dumps([dests, _upscaled(values), True])),
                )
            except ChainRejection as rejection:
                outcome = f"failed: {rejection.name}: {rejection}"
            db.execute(
                "UPDATE timelocked SET outcome=? WHERE netuid=? AND hotkey=? AND block=?",
                (outcome, netuid, hotkey, block),
            )

    def _settle(self) -> None:
        """Apply the reveals due by now before a read that can see weights."""
        with self.reading() as db:
            head = self._head(db)
            due = db.execute(
                "SELECT 1 FROM timelocked WHERE outcome IS NULL AND reveal_block<=? LIMIT 1",
                (head,),
            ).fetchone()
        if due:
            with self.transaction() as db:
                self._reveal_due(db, self._head(db))

    def timelocked_commits(self, netuid: int, block: int) -> list[tuple[int, list[tuple]]]:
        """`TimelockedWeightCommits` at `block`: epoch -> (hotkey, commit block, ciphertext,
        reveal round) still waiting for their reveal."""
        self._settle()
        with self.reading() as db:
            rows = db.execute(
                "SELECT epoch, hotkey, block, commit_hex, reveal_round FROM timelocked "
                "WHERE netuid=? AND block<=? AND (outcome IS NULL OR reveal_block>?) "
                "ORDER BY epoch, block, hotkey",
                (netuid, block, block),
            ).fetchall()
        out: dict[int, list[tuple]] = {}
        for epoch, hotkey, at, commit_hex, reveal_round in rows:
            out.setdefault(epoch, []).append((hotkey, at, "0x" + commit_hex, reveal_round))
        return sorted(out.items())

    def reveal_outcomes(self, netuid: int) -> list[tuple[str, int, int, str | None]]:
        """(hotkey, commit block, reveal block, outcome): what became of each commit (a dev
        chain's record; the runtime only traces a failed reveal)."""
        self._settle()
        with self.reading() as db:
            return db.execute(
                "SELECT hotkey, block, reveal_block, outcome FROM timelocked WHERE netuid=? "
                "ORDER BY block, hotkey",
                (netuid,),
            ).fetchall()

    @staticmethod
    def _last_update(db: sqlite3.Connection, netuid: int, uid: int, block: int) -> int:
        """`LastUpdate`: registration sets it, and so does each plain weight-set or
        timelocked commit (a reveal does not), for the neuron holding `uid` at `block`."""
        registered = db.execute(
            "SELECT MAX(registered_block) FROM neurons WHERE netuid=? AND uid=? "
            "AND registered_block<=?",
            (netuid, uid, block),
        ).fetchone()[0]
        if registered is None:
            return 0
        hotkey = db.execute(
            "SELECT hotkey FROM neurons WHERE netuid=? AND uid=? AND registered_block=?",
            (netuid, uid, registered),
        ).fetchone()[0]
        plain = db.execute(
            "SELECT MAX(block) FROM weights WHERE netuid=? AND uid=? AND block<=? AND block>=? "
            "AND json_array_length(row)=2",
            (netuid, uid, block, registered),
        ).fetchone()[0]
        committed = db.execute(
            "SELECT MAX(block) FROM timelocked WHERE netuid=? AND hotkey=? AND block<=? "
            "AND block>=?",
            (netuid, hotkey, block, registered),
        ).fetchone()[0]
        return max(registered, plain or 0, committed or 0)

    def last_updates(self, netuid: int, block: int) -> list[int]:
        self._settle()
        with self.reading() as db:
            neurons = self.neurons_in(db, netuid, block)
            return [self._last_update(db, netuid, n.uid, block) for n in neurons]

    def weights(self, netuid: int, block: int) -> dict[int, list[tuple[int, int]]]:
        """uid -> [(dest uid, u16 weight)] as last set by the neuron now holding that uid."""
        self._settle()
        out: dict[int, list[tuple[int, int]]] = {}
        with self.reading() as db:
            for neuron in self.neurons_in(db, netuid, block):
                row = db.execute(
                    "SELECT row FROM weights WHERE netuid=? AND uid=? AND block<=? AND block>=? "
                    "ORDER BY block DESC LIMIT 1",
                    (netuid, neuron.uid, block, neuron.registered_block),
                ).fetchone()
                if row:
                    dests, values = json.loads(row[0])[:2]
                    out[neuron.uid] = list(zip(dests, values, strict=True))
        return out

    def serve_axon(self, netuid: int, hotkey: str, info: dict) -> tuple[int, int]:
        with self.transaction() as db:
            self._registered_uid(db, netuid, hotkey)
            block = self._seal_block(db)
            db.execute(
                "INSERT OR REPLACE INTO axons VALUES (?, ?, ?, ?)",
                (netuid, hotkey, block, json.dumps(info)),
            )
            return block, self._log(db, block, hotkey, f"serve_axon({netuid})")

    def axon(self, netuid: int, hotkey: str, block: int) -> dict | None:
        with self.reading() as db:
            row = db.execute(
                "SELECT info FROM axons WHERE netuid=? AND hotkey=? AND block<=? "
                "ORDER BY block DESC LIMIT 1",
                (netuid, hotkey, block),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def nonce(self, address: str) -> int:
        with self.reading() as db:
            return db.execute(
                "SELECT COUNT(*) FROM extrinsics WHERE signer=?", (address,)
            ).fetchone()[0]


def _upscaled(values: list[int]) -> list[int]:
    """The runtime stores weights max-upscaled to u16 (`vec_u16_max_upscale_to_u16`)."""
    top = max(values, default=0)
    return [v * U16_MAX // top for v in values] if top else values
