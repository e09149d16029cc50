"""Query datasets: DuckDB's selection equals the same criteria applied row by row in
Python; the export is a dataset of its own (card, index, loadable); an interrupted export
resumes to the same bytes; publishing to a local directory copies only what is missing."""

from __future__ import annotations

from datetime import UTC, datetime

import bittensor as bt
import pyarrow as pa
import pyarrow.dataset as pads
import pytest

from d3.hub.cli import main
from d3.hub.export import ExportError, Query, export
from d3.hub.layout import verify_copy
from d3.hub.publish import publish_local
from tests.support.net import run

from .support import build, published_files

pytest.importorskip("duckdb")


@pytest.fixture
def hub(net, redis_url, tmp_path):
    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            _, _, builder, _ = await build(net, client, redis_url, tmp_path / "hub")
            builder.close()

    run(body())
    return tmp_path / "hub"


def _matches(row: dict, query: Query) -> bool:
    """The criteria, one row at a time: the reference DuckDB's selection must equal."""
    if query.since and row["created_at"] < query.since:
        return False
    if query.until and row["created_at"] >= query.until:
        return False
    if query.languages and row["lang"] not in query.languages:
        return False
    tags = {t.lower().lstrip("#") for t in row["hashtags"]}
    if query.hashtags and not tags & {t.lower().lstrip("#") for t in query.hashtags}:
        return False
    if query.keywords and not any(w.lower() in row["text"].lower() for w in query.keywords):
        return False
    if query.accounts and not (
        row["author_username"].lower() in {a.lower() for a in query.accounts}
        or str(row["author_id"]) in query.accounts
    ):
        return False
    engagement = sum(row[c] for c in ("like_count", "retweet_count", "reply_count", "quote_count"))
    return engagement >= query.min_engagement


def _table(directory) -> pa.Table:
    return pads.dataset(directory / "data").to_table().sort_by("id")


def test_an_export_selects_exactly_what_its_query_says(hub, tmp_path):
    rows = _table(hub).to_pylist()
    some = rows[7]
    queries = [
        Query(since=datetime(2026, 1, 1, tzinfo=UTC)),
        Query(until=datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC), languages=("en", "ja")),
        Query(hashtags=("#Bittensor", "python"), min_engagement=300),
        Query(keywords=("GPU", "stake")),
        Query(accounts=(some["author_username"].upper(), str(rows[9]["author_id"]))),
    ]
    for i, query in enumerate(queries):
        out = tmp_path / f"out{i}"
        report = export(hub, out, query)
        wanted = [r["id"] for r in rows if _matches(r, query)]
        got = _table(out)
        assert got["id"].to_pylist() == wanted and report.rows == len(wanted) > 0, query
        assert got.schema == pads.dataset(hub / "data").schema
        assert verify_copy(out)["rows"] == len(wanted)
        card = (out / "README.md").read_text()
        assert "## Query" in card and f"**{len(wanted)} tweets**" in card


def test_an_interrupted_export_resumes_and_refuses_another_query(hub, tmp_path):
    query = Query(languages=("en",))
    clean = export(hub, tmp_path / "clean", query)
    seen = []

    def dies_after_one_day(day, done, total, rows):
        seen.append(day)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export(hub, tmp_path / "out", query, dies_after_one_day)
    resumed = export(hub, tmp_path / "out", query)
    assert resumed.resumed == 1 and resumed.rows == clean.rows and len(seen) == 1
    assert published_files(tmp_path / "out") == published_files(tmp_path / "clean")
    with pytest.raises(ExportError, match="another query"):
        export(hub, tmp_path / "out", Query(languages=("ja",)))
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset(
        str(tmp_path / "out"), split="train", cache_dir=str(tmp_path / "cache")
    )
    assert loaded.num_rows == clean.rows


def test_publishing_to_a_directory_copies_only_what_is_missing(hub, tmp_path, capsys):
    dest = tmp_path / "www"
    first = publish_local(hub, dest)
    assert first.copied == 4 and first.skipped == 0  # three data files and the card
    damaged = next((dest / "data").rglob("*.parquet"))
    damaged.write_bytes(b"half a file")  # a crash mid-copy, or a disk error
    again = publish_local(hub, dest)
    assert (again.copied, again.skipped) == (1, 3)
    assert published_files(dest) == published_files(hub)
    assert main(["verify", str(dest)]) == 0
    assert "all match; signed by" in capsys.readouterr().out
    assert main(["export", str(hub), str(tmp_path / "q"), "--hashtag", "AI"]) == 0
    assert "exported" in capsys.readouterr().out
