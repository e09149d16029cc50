"""The hub's private memory: one SQLite file beside the published data (`DIR/.hub/`).

    meta      cursor: the last commitment applied, as "<block>|<hotkey>"
    claimed   every tweet id attributed to a first committer (published, staged or
              discarded: a tweet whose first committer failed its audit is nobody's)
    staged    per applied commitment with new rows: its period and its staged row file
    credit    hotkey, period -> new tweets the hub attributed (held against the index's)
    outcomes  hotkey, period -> published | discarded | withheld, with the reason
    files     every published data file: path, sha256, bytes, rows, and the period it
              holds (DAY_FILE for a closed day's part file, which holds every period's)

Applying a commitment (its claims, its staged file, its credit, the cursor) is one
transaction, and so is publishing a period, and so is closing a day (its period files
replaced by its part files); the files they name are written before the transaction and
are a pure function of the data, so a crash between the two leaves files that the
retried step rewrites with the same bytes. Nothing is applied twice or lost.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from d3.hub.errors import LedgerError

LEDGER_VERSION = "1"
PUBLISHED, DISCARDED, WITHHELD = "published", "discarded", "withheld"
DAY_FILE = -1  # the period of a closed day's file: it holds every period's rows of the day
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS claimed (id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS staged (
    hotkey TEXT NOT NULL, period INTEGER NOT NULL, block INTEGER NOT NULL,
    rows INTEGER NOT NULL, file TEXT NOT NULL, PRIMARY KEY (hotkey, block));
CREATE TABLE IF NOT EXISTS credit (
    hotkey TEXT NOT NULL, period INTEGER NOT NULL, rows INTEGER NOT NULL,
    PRIMARY KEY (hotkey, period));
CREATE TABLE IF NOT EXISTS outcomes (
    hotkey TEXT NOT NULL, period INTEGER NOT NULL, outcome TEXT NOT NULL,
    rows INTEGER NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (hotkey, period));
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL,
    rows INTEGER NOT NULL, period INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Staged:
    hotkey: str
    period: int
    block: int
    rows: int
    file: str  # relative to the staging directory


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the hub directory, "/"-separated
    sha256: str
    bytes: int
    rows: int
    period: int


class Ledger:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        # Explicit transactions; one thread at a time (an update runs its steps in turn).
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        # 64 MB of pages: claims and look-ups land in the newest stretch of `claimed`
        # (ids grow with time), which then stays cached however large the table grows.
        self.db.execute("PRAGMA cache_size=-65536")
        self.db.executescript(_SCHEMA)
        version = self._meta("version")
        if version is None:
            self._set_meta("version", LEDGER_VERSION)
        elif version != LEDGER_VERSION:
            raise LedgerError(
                f"hub ledger {path} has layout {version}, this release {LEDGER_VERSION}"
            )

    def close(self) -> None:
        self.db.close()

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def get(self, key: str) -> str | None:
        return self._meta(key)

    def set(self, key: str, value: str) -> None:
        self._set_meta(key, value)

    # -- attribution ------------------------------------------------------------------

    def cursor(self) -> tuple[int, str] | None:
        raw = self._meta("cursor")
        if raw is None:
            return None
        block, hotkey = raw.split("|", 1)
        return int(block), hotkey

    def unclaimed(self, ids: pa.Array) -> pa.Array:
        """A boolean mask over `ids`: True where nobody has claimed the id yet."""
        values = ids.to_pylist()
        # One statement per batch: SQLite parses the JSON array in C, where a Python loop
        # of inserts would cost a round trip per id.
        taken = {
            row[0]
            for row in self.db.execute(
                "SELECT c.id FROM json_each(?) j JOIN claimed c ON c.id = j.value",
                (json.dumps(values),),
            )
        }
        return pa.array([i not in taken for i in values], pa.bool_())

    def apply(
        self,
        order: tuple[int, str],
        period: int,
        ids: Iterable[int],
        staged_file: str | None,
    ) -> None:
        """One commitment, at once: its new ids claimed, its staged file and credit
        recorded, the cursor moved past it."""
        block, hotkey = order
        ids = list(ids)
        with self._transaction():
            self.db.execute(
                "INSERT INTO claimed SELECT value FROM json_each(?)", (json.dumps(ids),)
            )
            if ids:
                assert staged_file is not None
                self.db.execute(
                    "INSERT INTO staged VALUES (?, ?, ?, ?, ?)",
                    (hotkey, period, block, len(ids), staged_file),
                )
                self.db.execute(
                    "INSERT INTO credit VALUES (?, ?, ?) ON CONFLICT (hotkey, period) "
                    "DO UPDATE SET rows = rows + excluded.rows",
                    (hotkey, period, len(ids)),
                )
            self._set_meta("cursor", f"{block}|{hotkey}")

    def staged(self, period: int | None = None) -> list[Staged]:
        query = "SELECT hotkey, period, block, rows, file FROM staged"
        args: tuple = ()
        if period is not None:
            query += " WHERE period = ?"
            args = (period,)
        return [Staged(*row) for row in self.db.execute(query + " ORDER BY block, hotkey", args)]

    def credit(self, period: int) -> dict[str, int]:
        rows = self.db.execute("SELECT hotkey, rows FROM credit WHERE period = ?", (period,))
        return dict(rows.fetchall())

    # -- publication ------------------------------------------------------------------

    def publish(
        self,
        period: int,
        outcomes: dict[str, tuple[str, int, str]],
        files: list[FileEntry],
    ) -> None:
        """A period's outcome per hotkey (outcome, rows, reason) and its data files, at
        once. Staged rows are dropped, except a withheld hotkey's (kept for an operator)."""
        with self._transaction():
            for hotkey, (outcome, rows, reason) in sorted(outcomes.items()):
                self.db.execute(
                    "INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?, ?, ?)",
                    (hotkey, period, outcome, rows, reason),
                )
            for entry in files:
                self.db.execute(
                    "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                    (entry.path, entry.sha256, entry.bytes, entry.rows, entry.period),
                )
            for hotkey, (outcome, _, _) in outcomes.items():
                if outcome != WITHHELD:
                    self.db.execute(
                        "DELETE FROM staged WHERE period = ? AND hotkey = ?", (period, hotkey)
                    )

    def close_day(self, day: str, files: list[FileEntry]) -> None:
        """A closed day's files replace every file of that day, at once."""
        with self._transaction():
            self.db.execute("DELETE FROM files WHERE path LIKE ?", (f"data/{day}/%",))
            for entry in files:
                self.db.execute(
                    "INSERT INTO files VALUES (?, ?, ?, ?, ?)",
                    (entry.path, entry.sha256, entry.bytes, entry.rows, entry.period),
                )

    def outcomes(self) -> list[tuple[str, int, str, int, str]]:
        return self.db.execute(
            "SELECT hotkey, period, outcome, rows, reason FROM outcomes ORDER BY period, hotkey"
        ).fetchall()

    def decided_periods(self) -> set[int]:
        return {row[0] for row in self.db.execute("SELECT DISTINCT period FROM outcomes")}

    def files(self) -> list[FileEntry]:
        rows = self.db.execute("SELECT path, sha256, bytes, rows, period FROM files ORDER BY path")
        return [FileEntry(*row) for row in rows]

    def _transaction(self):
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, traceback) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
