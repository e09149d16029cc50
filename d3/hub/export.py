"""Query datasets cut from the hub: by time range, language, hashtags, keywords, accounts
and minimum engagement, selected by DuckDB over the hub's Parquet.

    python -m d3.hub export HUB OUT --since 2026-01-01 --lang en --hashtag ai --min-engagement 10

The output is a dataset of its own, laid out like the hub (`data/<day>/part-NNNNN.parquet`,
the same schema, sorted by id, zstd), with its own card (the query, its source and the
counts) and index, so `datasets.load_dataset(OUT)` and `python -m d3.hub verify OUT` work
on it as on the hub.

The source is checked against its index first, and only the files it lists are read.
Work goes one day at a time, each day streamed from DuckDB in record batches to
Parquet, so memory stays bounded by DuckDB's `memory_limit` and one batch whatever the
hub's size; days outside the time range are never opened. A finished day is recorded in
`OUT/.export/state.json` and skipped on a rerun, so an export that is interrupted resumes
where it stopped; a rerun with another query or another source refuses to mix them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from d3.hub.card import CardFacts, md_table, render_card
from d3.hub.errors import ExportError
from d3.hub.layout import (
    CARD_NAME,
    DATA_DIR,
    INDEX_NAME,
    canonical,
    index_document,
    sha256_hex,
    verify_copy,
    write_atomic,
)
from d3.hub.ledger import FileEntry
from d3.hub.schema import HUB_SCHEMA, ROW_GROUP_ROWS, ZSTD_LEVEL, writer_options

STATE = ".export/state.json"
BATCH_ROWS = 64_000
MAX_FILE_ROWS = 1_000_000


@dataclass(frozen=True)
class Query:
    """What to select. Each given criterion must hold; within one, any value matches."""

    since: datetime | None = None  # created_at >= since
    until: datetime | None = None  # created_at < until
    languages: tuple[str, ...] = ()  # X's language tags, exactly
    hashtags: tuple[str, ...] = ()  # case-insensitive, with or without '#'
    keywords: tuple[str, ...] = ()  # case-insensitive substrings of the text
    accounts: tuple[str, ...] = ()  # author handles (case-insensitive) or numeric author ids
    min_engagement: int = 0  # likes + retweets + replies + quotes

    def where(self) -> tuple[str, dict]:
        """The WHERE clause over the hub schema, and its named parameters."""
        clauses, params = ["TRUE"], {}
        if self.since is not None:
            clauses.append("created_at >= $since")
            params["since"] = self.since.astimezone(UTC)
        if self.until is not None:
            clauses.append("created_at < $until")
            params["until"] = self.until.astimezone(UTC)
        if self.languages:
            clauses.append("list_contains($langs, lang)")
            params["langs"] = list(self.languages)
        if self.hashtags:
            clauses.append(
                "list_has_any(list_transform(hashtags, lambda h: lower(ltrim(h, '#'))), $tags)"
            )
            params["tags"] = sorted({t.lower().lstrip("#") for t in self.hashtags})
        if self.keywords:
            clauses.append(
                "list_bool_or(list_transform($words, lambda w: contains(lower(text), w)))"
            )
            params["words"] = sorted({w.lower() for w in self.keywords})
        if self.accounts:
            handles = sorted({a.lower().lstrip("@") for a in self.accounts if not a.isdigit()})
            ids = sorted({int(a) for a in self.accounts if a.isdigit()})
            clauses.append(
                "(list_contains($handles, lower(author_username))"
                " OR list_contains($ids::BIGINT[], author_id))"
            )
            params["handles"], params["ids"] = handles, ids
        if self.min_engagement:
            clauses.append(
                "like_count + retweet_count + reply_count + quote_count >= $min_engagement"
            )
            params["min_engagement"] = self.min_engagement
        return " AND ".join(clauses), params

    def describe(self) -> dict:
        doc = asdict(self)
        for name in ("since", "until"):
            if doc[name] is not None:
                doc[name] = doc[name].astimezone(UTC).isoformat()
        return {k: list(v) if isinstance(v, tuple) else v for k, v in doc.items()}

    def days_wanted(self, day: str) -> bool:
        """Whether tweets created on `day` (YYYY-MM-DD, UTC) can match the time range."""
        start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        end = start.timestamp() + 86_400
        if self.since is not None and end <= self.since.timestamp():
            return False
        return not (self.until is not None and start >= self.until)


@dataclass
class ExportReport:
    rows: int = 0
    files: int = 0
    days: int = 0  # days of the source in the time range
    resumed: int = 0  # days done by an earlier run
    rows_by_day: dict[str, int] = field(default_factory=dict)


Progress = Callable[[str, int, int, int], None]  # day, days done, days in all, rows so far


def export(
    hub: Path,
    out: Path,
    query: Query,
    progress: Progress | None = None,
    memory_limit: str = "1GB",
    threads: int = 2,
) -> ExportReport:
    import duckdb

    index = verify_copy(hub)
    source_sha = sha256_hex((hub / INDEX_NAME).read_bytes())
    where, params = query.where()
    state_path = out / STATE
    wanted = {"query": query.describe(), "source": source_sha}
    state = {"done": {}, **wanted}
    if state_path.exists():
        state = json.loads(state_path.read_bytes())
        if {k: state.get(k) for k in wanted} != wanted:
            raise ExportError(
                f"{out} holds an export of another query or source; use an empty directory"
            )
    by_day: dict[str, list[str]] = {}
    for entry in index["files"]:
        day = entry["path"].split("/")[1]
        if query.days_wanted(day):
            by_day.setdefault(day, []).append(str(hub / entry["path"]))
    report = ExportReport(days=len(by_day))
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET threads = {int(threads)}")
    con.execute(f"SET temp_directory = '{out / '.export' / 'spill'}'")
    for position, day in enumerate(sorted(by_day), start=1):
        if day in state["done"]:
            report.resumed += 1
        else:
            sql = f"SELECT * FROM read_parquet($files) WHERE {where} ORDER BY id"
            reader = con.sql(sql, params={**params, "files": sorted(by_day[day])}).to_arrow_reader(
                BATCH_ROWS
            )
            state["done"][day] = _write_day(out, day, reader)
            write_atomic(state_path, canonical(state))
        report.rows = sum(f["rows"] for d in state["done"].values() for f in d)
        if progress is not None:
            progress(day, position, len(by_day), report.rows)
    con.close()
    shutil.rmtree(out / ".export" / "spill", ignore_errors=True)
    files = [
        FileEntry(f["path"], f["sha256"], f["bytes"], f["rows"], 0)
        for done in state["done"].values()
        for f in done
    ]
    for entry in files:
        day = entry.path.split("/")[1]
        report.rows_by_day[day] = report.rows_by_day.get(day, 0) + entry.rows
    report.files = len(files)
    card = render_card(_facts(query, source_sha, index, report))
    write_atomic(out / CARD_NAME, card)
    write_atomic(out / INDEX_NAME, canonical(index_document(index["netuid"], files, card)))
    return report


def _write_day(out: Path, day: str, reader: pa.RecordBatchReader) -> list[dict]:
    """Stream one day's selection into files of at most MAX_FILE_ROWS rows."""
    written: list[dict] = []
    writer: pq.ParquetWriter | None = None
    rows = 0

    def close() -> None:
        nonlocal writer
        if writer is None:
            return
        writer.close()
        temp = out / _temp_name(day, len(written))
        final = out / f"{DATA_DIR}/{day}/part-{len(written):05d}.parquet"
        data = temp.read_bytes()
        temp.replace(final)
        path = final.relative_to(out).as_posix()
        written.append({"path": path, "sha256": sha256_hex(data), "bytes": len(data), "rows": rows})
        writer = None

    for batch in reader:
        if batch.num_rows == 0:
            continue
        table = pa.Table.from_batches([batch]).cast(HUB_SCHEMA)
        if writer is not None and rows + table.num_rows > MAX_FILE_ROWS:
            close()
        if writer is None:
            temp = out / _temp_name(day, len(written))
            temp.parent.mkdir(parents=True, exist_ok=True)
            writer = pq.ParquetWriter(temp, HUB_SCHEMA, **writer_options(ZSTD_LEVEL))
            rows = 0
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        rows += table.num_rows
    close()
    return written


def _temp_name(day: str, number: int) -> str:
    return f"{DATA_DIR}/{day}/.part-{number:05d}.parquet.tmp"


def _facts(query: Query, source_sha: str, index: dict, report: ExportReport) -> CardFacts:
    criteria = [(k, v) for k, v in query.describe().items() if v not in (None, [], 0)]
    shown = md_table(["criterion", "value"], [(f"`{k}`", f"`{v}`") for k, v in criteria])
    return CardFacts(
        title="D3 verified tweets: a query dataset",
        description=(
            "A selection from the D3 hub (tweets credited by the validators of Bittensor "
            f"subnet {index['netuid']}, each once, as its first committer published it), "
            "made with `python -m d3.hub export`."
        ),
        rows=report.rows,
        files=report.files,
        rows_by_day=dict(report.rows_by_day),
        files_per_day=f"in files of at most {MAX_FILE_ROWS:,} rows",
        signed=False,
        sections=(
            ("Query", shown if criteria else "Every row of the source (no criterion)."),
            (
                "Source",
                f"The hub whose `index.json` has SHA-256 `{source_sha}` ({index['rows']:,} "
                f"rows); every row here is one of its rows, unchanged. The selection is "
                f"{report.rows:,} rows, {report.rows / index['rows']:.2%} of the source."
                if index["rows"]
                else f"The hub whose `index.json` has SHA-256 `{source_sha}` (empty).",
            ),
        ),
    )
