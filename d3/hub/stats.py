"""What a hub holds, for its dashboard page: volume per day, languages, hashtags, sample
rows and how to load it.

Computed by DuckDB over the files the hub's index lists (never a directory walk, so a
half-written file is never read), and cached by the index's hash: a hub changes only
when its index does, so a page refresh costs one small file read.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from d3.hub.layout import INDEX_NAME, sha256_hex

SAMPLE_COLUMNS = (
    "id", "created_at", "author_username", "lang", "text", "like_count", "retweet_count",
    "hashtags", "miner_hotkey",
)  # fmt: skip


def load_snippets(where: str) -> dict[str, str]:
    """How a trainer loads the hub at `where` (a directory or URL), one line each."""
    return {
        "datasets": f'datasets.load_dataset("{where}", split="train")',
        "pandas": f'pandas.read_parquet("{where}/data")',
        "duckdb": f"SELECT * FROM read_parquet('{where}/data/*/*.parquet')",
        "export": f"python -m d3.hub export {where} OUT --hashtag ai --since 2026-01-01",
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def hub_stats(directory: Path, top: int = 15, sample: int = 8) -> dict[str, Any]:
    """The page's numbers for the hub in `directory` (raises OSError/ValueError when it
    has no readable index)."""
    import duckdb

    raw = (directory / INDEX_NAME).read_bytes()
    index = json.loads(raw)
    files = [str(directory / entry["path"]) for entry in index["files"]]
    out: dict[str, Any] = {
        "rows": int(index.get("rows", 0)),
        "files": len(files),
        "index_sha256": sha256_hex(raw),
        "netuid": index.get("netuid"),
        "days": [],
        "languages": [],
        "hashtags": [],
        "miners": [],
        "sample": [],
        "load": load_snippets(str(directory)),
    }
    if not files:
        return out
    con = duckdb.connect()
    try:
        con.execute("SET threads = 1")
        con.sql("SELECT * FROM read_parquet($files)", params={"files": files}).create_view("hub")

        def query(sql: str) -> list[tuple]:
            return con.sql(sql).fetchall()

        out["days"] = [
            {"day": str(day), "rows": int(n)}
            for day, n in query(
                "SELECT CAST(created_at AS DATE) AS d, count(*) FROM hub GROUP BY d ORDER BY d"
            )
        ]
        out["languages"] = [
            {"lang": lang or "und", "rows": int(n)}
            for lang, n in query(
                f"SELECT lang, count(*) AS n FROM hub GROUP BY lang "
                f"ORDER BY n DESC, lang LIMIT {int(top)}"
            )
        ]
        out["hashtags"] = [
            {"hashtag": tag, "rows": int(n)}
            for tag, n in query(
                f"SELECT lower(t) AS tag, count(*) AS n FROM (SELECT unnest(hashtags) AS t "
                f"FROM hub) GROUP BY tag ORDER BY n DESC, tag LIMIT {int(top)}"
            )
        ]
        out["miners"] = [
            {"hotkey": hotkey, "rows": int(n)}
            for hotkey, n in query(
                "SELECT miner_hotkey, count(*) AS n FROM hub GROUP BY miner_hotkey "
                "ORDER BY n DESC, miner_hotkey"
            )
        ]
        columns = ", ".join(SAMPLE_COLUMNS)
        # The newest rows, deterministic: every viewer of one hub sees the same sample.
        result = con.sql(f"SELECT {columns} FROM hub ORDER BY id DESC LIMIT {int(sample)}")
        out["sample"] = [
            {name: _json_value(value) for name, value in zip(SAMPLE_COLUMNS, row, strict=True)}
            for row in result.fetchall()
        ]
    finally:
        con.close()
    return out


@dataclass
class HubStatsCache:
    """`hub_stats` of one directory, recomputed only when its index changes."""

    directory: Path
    _key: str | None = None
    _value: dict[str, Any] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self) -> dict[str, Any] | None:
        """The stats, or None while the directory has no index yet (not built)."""
        try:
            key = sha256_hex((self.directory / INDEX_NAME).read_bytes())
        except OSError:
            return None
        with self._lock:  # one computation at a time; concurrent page loads wait for it
            if key != self._key:
                self._value, self._key = hub_stats(self.directory), key
            return self._value
