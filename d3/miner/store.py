"""The miner's tweet store: a durable SQLite record of what it scraped and what it published.

A tweet scraped but lost is unpaid work, and a batch published twice (or re-built with
different rows after a crash) breaks the manifest hash chain, so every state change here is
one SQLite transaction that is on disk before the call returns.

Layout, and why:

- `tweets` numbers rows by `seq`, in arrival order, with AUTOINCREMENT so a number is never
  reused even after deletes. Batches are claimed oldest-first, so the claimed rows are always
  a prefix of `seq` and a batch is just a range `[seq_lo, seq_hi]`: claiming writes one row,
  not one per tweet. A claimed range never changes (new tweets get higher numbers, and only
  published rows are ever deleted), so after a restart a batch re-reads to the same rows, the
  same shard bytes and the same hash.
- Payload columns mirror ARROW_SCHEMA so rows round-trip exactly: timestamps as int ms,
  lists as JSON text, nulls as NULL.
- `pruned_ids` keeps the bare ID (~15 bytes) of every tweet whose payload was pruned, so a
  re-scraped old tweet is recognised as known instead of being stored and published again.

Durability: WAL with `synchronous=FULL` fsyncs the WAL on every commit. A kill -9 at any
moment loses nothing acknowledged (a committed transaction is in the WAL, and recovery drops
any uncommitted tail); FULL rather than NORMAL extends that to power loss and kernel panics,
for one fsync per call, which callers amortise by adding a page or chunk of tweets at a time.

Concurrency: one connection, every method under one lock, each call one short transaction.
The miner's asyncio tasks call it through `asyncio.to_thread` so the event loop never waits
on a disk sync; `busy_timeout` covers another process (an operator's sqlite3 shell) holding
the file briefly.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from os import PathLike
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from loguru import logger

from d3.record import ARROW_SCHEMA, COLUMNS, TweetRecord, check_nulls, check_schema
from d3.shards import SHA256_HEX

STORE_VERSION = 1  # PRAGMA user_version; bump with any layout change
BUSY_TIMEOUT_S = 30.0
# After a prune, give pages back to the OS only when most of the file is free (an operator
# lowered max_rows); in steady state freed pages are simply reused by the next inserts.
VACUUM_FREE_FRACTION = 0.5
WAL_SIZE_LIMIT = 64 * 1024 * 1024
# Page cache in KiB (negative = KiB for SQLite). Bulk chunks of ~100k rows dirty ~30 MB;
# 64 MiB instead of the 2 MiB default measured ~10% faster add_table (bench/store_bench.py).
CACHE_KIB = 64 * 1024

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _kind(field: pa.Field) -> str:
    """How a record column is stored: 'int', 'text', 'ms' (timestamp) or 'json' (list)."""
    if pa.types.is_timestamp(field.type):
        return "ms"
    if pa.types.is_list(field.type):
        return "json"
    if pa.types.is_int64(field.type):
        return "int"
    if pa.types.is_string(field.type):
        return "text"
    raise TypeError(f"no SQLite storage for column {field.name}: {field.type}")


_KINDS = tuple(_kind(f) for f in ARROW_SCHEMA)
_ID_PARAM = f"?{COLUMNS.index('id') + 1}"


def _tweets_ddl() -> str:
    cols = []
    for field, kind in zip(ARROW_SCHEMA, _KINDS, strict=True):
        sql_type = "INTEGER" if kind in ("int", "ms") else "TEXT"
        not_null = "" if field.nullable else " NOT NULL"
        unique = " UNIQUE" if field.name == "id" else ""
        cols.append(f"{field.name} {sql_type}{not_null}{unique}")
    return f"CREATE TABLE tweets (seq INTEGER PRIMARY KEY AUTOINCREMENT, {', '.join(cols)})"


_DDL = (
    _tweets_ddl(),
    "CREATE TABLE pruned_ids (id INTEGER PRIMARY KEY)",
    """CREATE TABLE batches (
        batch_id INTEGER PRIMARY KEY,
        seq_lo INTEGER NOT NULL,
        seq_hi INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        claimed_at_ms INTEGER NOT NULL,
        manifest_sha256 TEXT,
        published_at_ms INTEGER
    )""",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE cursors (query TEXT PRIMARY KEY, since_id INTEGER NOT NULL)",
)
# Insert-or-ignore, but only on the ID: ON CONFLICT(id) leaves NOT NULL violations as
# errors instead of silently dropping the row as OR IGNORE would.
_INSERT = (
    f"INSERT INTO tweets ({', '.join(COLUMNS)}) "
    f"SELECT {', '.join(f'?{i + 1}' for i in range(len(COLUMNS)))} "
    f"WHERE NOT EXISTS (SELECT 1 FROM pruned_ids WHERE id = {_ID_PARAM}) "
    "ON CONFLICT(id) DO NOTHING"
)
_SELECT_RANGE = f"SELECT {', '.join(COLUMNS)} FROM tweets WHERE seq BETWEEN ? AND ? ORDER BY seq"


class StoreError(RuntimeError):
    """The store cannot do what was asked without breaking its guarantees."""


@dataclass(frozen=True)
class Batch:
    """Rows claimed for one shard; `batch_id` names them until they are marked published."""

    batch_id: int
    table: pa.Table

    @property
    def rows(self) -> int:
        return self.table.num_rows


def _ms(value: datetime) -> int:
    # Integer arithmetic, so exactness never rests on float rounding.
    return (value - _EPOCH) // _MS


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _record_row(record: TweetRecord) -> tuple[Any, ...]:
    if not isinstance(record, TweetRecord):
        raise TypeError(f"expected TweetRecord, got {type(record).__name__}")
    row: list[Any] = []
    for name, kind in zip(COLUMNS, _KINDS, strict=True):
        value = getattr(record, name)
        if kind == "ms":
            value = _ms(value)
        elif kind == "json":
            value = _to_json(value)
        row.append(value)
    return tuple(row)


def _table_rows(table: pa.Table) -> Iterator[tuple[Any, ...]]:
    """Rows for executemany, converted a column at a time (the per-row work is the zip)."""
    columns: list[list[Any]] = []
    for name, kind in zip(COLUMNS, _KINDS, strict=True):
        column = table.column(name)
        if kind == "ms":
            columns.append(pc.cast(column, pa.int64()).to_pylist())
        elif kind == "json":
            columns.append(_json_lists(column))
        else:
            columns.append(column.to_pylist())
    return zip(*columns, strict=True)


def _json_lists(column: pa.ChunkedArray) -> list[str]:
    """A list<string> column as one JSON array per row, built in Arrow rather than per row.

    Matches json.dumps: only quote and backslash need escaping, unless a value holds a
    control character (rare), which falls back to json itself.
    """
    lists = column.combine_chunks()
    values = pc.list_flatten(lists)
    if pc.any(pc.match_substring_regex(values, r"[\x00-\x1f]")).as_py():
        return [_to_json(v) for v in lists.to_pylist()]
    escaped = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    quoted = pc.binary_join_element_wise('"', escaped, '"', "")
    offsets = pc.subtract(lists.offsets, lists.offsets[0])
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, quoted), ",")
    return pc.binary_join_element_wise("[", joined, "]", "").to_pylist()


def _rows_table(rows: list[tuple[Any, ...]]) -> pa.Table:
    """Stored rows back to a canonical table: ARROW_SCHEMA (metadata included), sorted by id."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in COLUMNS]
    arrays = []
    for field, kind, values in zip(ARROW_SCHEMA, _KINDS, columns, strict=True):
        if kind == "ms":
            arrays.append(pa.array(values, pa.int64()).cast(field.type))
        elif kind == "json":
            # One parse of the whole column instead of one json.loads per row.
            arrays.append(pa.array(json.loads(f"[{','.join(values)}]"), field.type))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA).sort_by("id")


class TweetStore:
    """Every tweet the miner scraped, which batch it was published in, and scraper cursors.

    With `max_rows`, published payloads beyond that many rows are pruned oldest-first (see
    `prune`); unpublished rows are never pruned, so the bound holds only while the publisher
    keeps up.
    """

    def __init__(self, path: str | PathLike[str], *, max_rows: int | None = None) -> None:
        if max_rows is not None and max_rows < 0:
            raise ValueError("max_rows must be >= 0")
        self.path = Path(path)
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            self._configure()
        except BaseException:
            self._conn.close()
            raise
        logger.info("tweet store {} open: {} rows", self.path, self.count())

    def _configure(self) -> None:
        db = self._conn
        # Only takes effect before the first table exists, i.e. on a new file.
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreError(f"{self.path}: cannot use WAL (journal_mode={mode})")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                for statement in _DDL:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={STORE_VERSION}")
            elif version != STORE_VERSION:
                raise StoreError(f"{self.path}: store version {version}, want {STORE_VERSION}")
            columns = [row[1] for row in db.execute("PRAGMA table_info(tweets)")]
            if columns != ["seq", *COLUMNS]:
                raise StoreError(f"{self.path}: tweets columns {columns} do not match the record")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> TweetStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: the write lock up front, so no upgrade deadlocks."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction, so multi-statement reads see one snapshot."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")

    # -- tweets ---------------------------------------------------------------------------

    def add(self, records: Iterable[TweetRecord]) -> int:
        """Store validated records not seen before; returns how many were new.

        Durable when it returns, so a scraper advances its cursor only after this call.
        """
        rows = [_record_row(r) for r in records]
        return self._insert(rows, len(rows))

    def add_table(self, table: pa.Table) -> int:
        """`add` for a table in ARROW_SCHEMA (rows already validated, e.g. by check_table)."""
        check_schema(table.schema)
        check_nulls(table)
        return self._insert(_table_rows(table), table.num_rows)

    def _insert(self, rows: Iterable[tuple[Any, ...]], offered: int) -> int:
        with self._write() as db:
            before = db.total_changes
            db.executemany(_INSERT, rows)
            new = db.total_changes - before
        logger.debug("stored {} new of {} tweets", new, offered)
        return new

    def count(self) -> int:
        """Rows held with their payload (pruned IDs not included)."""
        with self._read() as db:
            return db.execute("SELECT count(*) FROM tweets").fetchone()[0]

    def unpublished_count(self) -> int:
        """Rows not yet in a published batch: unclaimed plus claimed-but-pending."""
        with self._read() as db:
            unclaimed = db.execute(
                "SELECT count(*) FROM tweets WHERE seq > ?", (self._claimed_through(db),)
            ).fetchone()[0]
            pending = db.execute(
                "SELECT coalesce(sum(rows), 0) FROM batches WHERE manifest_sha256 IS NULL"
            ).fetchone()[0]
        return unclaimed + pending

    # -- publishing -----------------------------------------------------------------------

    @staticmethod
    def _claimed_through(db: sqlite3.Connection) -> int:
        row = db.execute("SELECT seq_hi FROM batches ORDER BY batch_id DESC LIMIT 1").fetchone()
        return 0 if row is None else row[0]

    def claim_batch(self, max_rows: int) -> Batch | None:
        """Assign the oldest unclaimed rows (at most `max_rows`) to a new batch; None if none.

        The assignment is durable: after a crash, `pending_batches` and `batch_table` give
        back exactly these rows, so the re-built shard has the same hash.
        """
        if max_rows < 1:
            raise ValueError("max_rows must be >= 1")
        with self._write() as db:
            lo, hi, rows = db.execute(
                "SELECT min(seq), max(seq), count(*) FROM "
                "(SELECT seq FROM tweets WHERE seq > ? ORDER BY seq LIMIT ?)",
                (self._claimed_through(db), max_rows),
            ).fetchone()
            if rows == 0:
                return None
            batch_id = db.execute(
                "INSERT INTO batches (seq_lo, seq_hi, rows, claimed_at_ms) VALUES (?, ?, ?, ?)",
                (lo, hi, rows, _now_ms()),
            ).lastrowid
            # Read inside the transaction: if this fails the claim is rolled back too.
            table = _rows_table(db.execute(_SELECT_RANGE, (lo, hi)).fetchall())
        assert batch_id is not None
        logger.info("claimed batch {}: {} rows", batch_id, rows)
        return Batch(batch_id, table)

    def pending_batches(self) -> list[int]:
        """Batches claimed but not marked published, oldest first: resume these first."""
        with self._read() as db:
            rows = db.execute(
                "SELECT batch_id FROM batches WHERE manifest_sha256 IS NULL ORDER BY batch_id"
            ).fetchall()
        return [r[0] for r in rows]

    def batch_table(self, batch_id: int) -> pa.Table:
        """The rows of a claimed batch, as `claim_batch` returned them."""
        with self._read() as db:
            lo, hi, rows = self._batch_range(db, batch_id)
            table = _rows_table(db.execute(_SELECT_RANGE, (lo, hi)).fetchall())
        if table.num_rows != rows:
            raise StoreError(f"batch {batch_id} was pruned ({table.num_rows} of {rows} rows left)")
        return table

    @staticmethod
    def _batch_range(db: sqlite3.Connection, batch_id: int) -> tuple[int, int, int]:
        row = db.execute(
            "SELECT seq_lo, seq_hi, rows FROM batches WHERE batch_id = ?", (batch_id,)
        ).fetchone()
        if row is None:
            raise KeyError(f"no batch {batch_id}")
        return row

    def mark_published(
        self, batch_id: int, manifest_sha256: str, *, meta: Mapping[str, str] | None = None
    ) -> None:
        """Record that a batch is published under a manifest, then prune.

        `meta` (e.g. the last manifest hash, parent of the next) is written in the same
        transaction, so a crash can never leave the batch published but the chain unmoved.
        Repeating the call with the same hash is a no-op; with another hash it is refused.
        """
        if not SHA256_HEX.match(manifest_sha256):
            raise ValueError(f"not a sha256 hex digest: {manifest_sha256[:80]!r}")
        with self._write() as db:
            row = db.execute(
                "SELECT manifest_sha256 FROM batches WHERE batch_id = ?", (batch_id,)
            ).fetchone()
            if row is None:
                raise KeyError(f"no batch {batch_id}")
            current = row[0]
            if current == manifest_sha256:
                return
            if current is not None:
                raise StoreError(f"batch {batch_id} already published as {current}")
            db.execute(
                "UPDATE batches SET manifest_sha256 = ?, published_at_ms = ? WHERE batch_id = ?",
                (manifest_sha256, _now_ms(), batch_id),
            )
            self._set_meta(db, meta or {})
        logger.info("batch {} published in manifest {}", batch_id, manifest_sha256)
        self.prune()

    def prune(self) -> int:
        """Drop the payload of the oldest published rows beyond `max_rows`; returns how many.

        Unpublished rows are never dropped: they are the miner's unpaid work, and deleting
        them would also change pending batches after the fact. Pruned IDs stay in
        `pruned_ids`, so re-scraping them later stores and publishes nothing twice.
        """
        if self.max_rows is None:
            return 0
        with self._write() as db:
            excess = db.execute("SELECT count(*) FROM tweets").fetchone()[0] - self.max_rows
            dropped = 0
            if excess > 0:
                dropped = self._drop_published(db, excess)
                if dropped < excess:
                    logger.warning(
                        "store is {} rows over max_rows={}: unpublished rows are kept",
                        excess - dropped,
                        self.max_rows,
                    )
        if dropped:
            logger.info("pruned {} published rows", dropped)
            self._maybe_shrink()
        return dropped

    @staticmethod
    def _drop_published(db: sqlite3.Connection, limit: int) -> int:
        floor = db.execute("SELECT coalesce(min(seq), 0) FROM tweets").fetchone()[0]
        ranges = db.execute(
            "SELECT seq_lo, seq_hi FROM batches "
            "WHERE manifest_sha256 IS NOT NULL AND seq_hi >= ? ORDER BY seq_lo",
            (floor,),
        ).fetchall()
        dropped = 0
        for lo, hi in ranges:
            if dropped >= limit:
                break
            cut = db.execute(
                "SELECT seq FROM tweets WHERE seq BETWEEN ? AND ? ORDER BY seq LIMIT 1 OFFSET ?",
                (lo, hi, limit - dropped - 1),
            ).fetchone()
            top = hi if cut is None else cut[0]
            db.execute(
                "INSERT OR IGNORE INTO pruned_ids (id) "
                "SELECT id FROM tweets WHERE seq BETWEEN ? AND ?",
                (lo, top),
            )
            dropped += db.execute(
                "DELETE FROM tweets WHERE seq BETWEEN ? AND ?", (lo, top)
            ).rowcount
        return dropped

    def _maybe_shrink(self) -> None:
        with self._lock:
            free = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
            total = self._conn.execute("PRAGMA page_count").fetchone()[0]
            if free > total * VACUUM_FREE_FRACTION:
                self._conn.execute("PRAGMA incremental_vacuum").fetchall()
                logger.info("returned {} free pages to the OS", free)

    # -- publisher state and scraper cursors ----------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self._read() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as db:
            self._set_meta(db, {key: value})

    @staticmethod
    def _set_meta(db: sqlite3.Connection, items: Mapping[str, str]) -> None:
        db.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            items.items(),
        )

    def get_cursor(self, query: str) -> int | None:
        """The newest tweet ID stored for a search query, to resume with `since_id`."""
        with self._read() as db:
            row = db.execute("SELECT since_id FROM cursors WHERE query = ?", (query,)).fetchone()
        return None if row is None else row[0]

    def set_cursor(self, query: str, since_id: int) -> None:
        """Set after `add` has returned: a crash in between then re-scrapes, never skips."""
        if since_id < 1:
            raise ValueError("since_id must be a positive tweet ID")
        with self._write() as db:
            db.execute(
                "INSERT INTO cursors (query, since_id) VALUES (?, ?) "
                "ON CONFLICT(query) DO UPDATE SET since_id = excluded.since_id",
                (query, since_id),
            )
