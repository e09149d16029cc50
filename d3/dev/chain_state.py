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
    min_allowed_weights: int = 0
    max_weights_limit: int = 65535
    weights_version_key: int = 0
    max_validators: int = 64
    immunity_period: int = 0
    burn_rao: int = 10**9
    # Commitments pallet: bytes a hotkey may commit per tempo, and the minimum charge.
    commit_space_per_tempo: int = 3100
    commit_min_bytes: int = 100


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
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO stakes VALUES (?, ?)", (hotkey, rao))

    def validator_permits(self, netuid: int, block: int) -> list[bool]:
        neurons = self.neurons(netuid, block)
        permitted = _permitted(neurons, self._params(netuid))
        return [n.uid in permitted for n in neurons]

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
        with self.transaction() as db:
            try:
                self._registered_uid(db, netuid, hotkey)
            except ChainRejection:
                raise ChainRejection(
                    "AccountNotAllowedCommit",
                    f"hotkey {hotkey} is not registered on netuid {netuid}",
                ) from None
            block = self._head(db) + 1
            period_start = block - block % params.tempo
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

    def set_weights(
        self, netuid: int, hotkey: str, dests: list[int], values: list[int], version_key: int
    ) -> tuple[int, int]:
        params = self._params(netuid)
        with self.transaction() as db:
            uid = self._registered_uid(db, netuid, hotkey)
            head = self._head(db)
            if len(dests) != len(values):
                raise ChainRejection("WeightVecNotEqualSize", "dests and weights differ in length")
            if len(set(dests)) != len(dests):
                raise ChainRejection("DuplicateUids", "a uid appears twice")
            live = {n.uid: n for n in self.neurons_in(db, netuid, head)}
            if any(d not in live for d in dests):
                raise ChainRejection("UidVecContainInvalidOne", "weights name an unknown uid")
            if version_key < params.weights_version_key:
                raise ChainRejection(
                    "IncorrectWeightVersionKey",
                    f"version key {version_key} < {params.weights_version_key}",
                )
            last = self._last_update(db, netuid, uid, head)
            if last and head + 1 - last < params.weights_rate_limit:
                raise ChainRejection(
                    "SettingWeightsTooFast",
                    f"weights set at block {last}; rate limit {params.weights_rate_limit} blocks",
                )
            if dests != [uid] and uid not in _permitted(list(live.values()), params):
                raise ChainRejection(
                    "NeuronNoValidatorPermit", f"uid {uid} has no validator permit"
                )
            block = self._seal_block(db)
            db.execute(
                "INSERT OR REPLACE INTO weights VALUES (?, ?, ?, ?)",
                (netuid, uid, block, json.dumps([dests, values])),
            )
            return block, self._log(db, block, hotkey, f"set_weights({netuid})")

    @staticmethod
    def _last_update(db: sqlite3.Connection, netuid: int, uid: int, block: int) -> int:
        row = db.execute(
            "SELECT MAX(w.block) FROM weights w WHERE w.netuid=? AND w.uid=? AND w.block<=? "
            "AND w.block >= (SELECT MAX(n.registered_block) FROM neurons n "
            "WHERE n.netuid=w.netuid AND n.uid=w.uid AND n.registered_block<=?)",
            (netuid, uid, block, block),
        ).fetchone()
        return row[0] or 0

    def last_updates(self, netuid: int, block: int) -> list[int]:
        with self.reading() as db:
            neurons = self.neurons_in(db, netuid, block)
            return [self._last_update(db, netuid, n.uid, block) for n in neurons]

    def weights(self, netuid: int, block: int) -> dict[int, list[tuple[int, int]]]:
        """uid -> [(dest uid, u16 weight)] as last set by the neuron now holding that uid."""
        out: dict[int, list[tuple[int, int]]] = {}
        with self.reading() as db:
            for neuron in self.neurons_in(db, netuid, block):
                row = db.execute(
                    "SELECT row FROM weights WHERE netuid=? AND uid=? AND block<=? AND block>=? "
                    "ORDER BY block DESC LIMIT 1",
                    (netuid, neuron.uid, block, neuron.registered_block),
                ).fetchone()
                if row:
                    dests, values = json.loads(row[0])
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


def _permitted(neurons: list[NeuronRow], params: SubnetParams) -> set[int]:
    """The top `max_validators` neurons by stake (with any stake at all) hold a permit."""
    ranked = sorted((n for n in neurons if n.stake_rao > 0), key=lambda n: (-n.stake_rao, n.uid))
    return {n.uid for n in ranked[: params.max_validators]}
