import asyncio
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from d3.dev.synthetic import synthetic_records, synthetic_table
from d3.miner.store import StoreError, TweetStore
from d3.record import ARROW_SCHEMA, INT64_MAX, RecordError, TweetRecord, records_to_table
from d3.shards import encode_shard

REPO = Path(__file__).resolve().parents[1]
BASE = datetime(2026, 1, 1, tzinfo=UTC)
SHA_A = "a" * 64
SHA_B = "b" * 64


def chunk(rows: int, index: int, seed: int = 0) -> pa.Table:
    """Synthetic tweets whose IDs never collide with another index's (30 days apart)."""
    return synthetic_table(rows, seed=seed + index, start=BASE + timedelta(days=30 * index))


def ids(table: pa.Table) -> list[int]:
    return table["id"].to_pylist()


def stored_ids(path: Path) -> set[int]:
    """IDs with their payload still on disk, read behind the store's back."""
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT id FROM tweets")}


def tricky_records(control_chars: bool) -> list[TweetRecord]:
    """Rows exercising every column kind: nulls, extremes, escapes, non-ASCII."""
    rows = [r.model_dump() for r in synthetic_records(3, seed=11)]
    odd = "\t\n\x00" if control_chars else ""
    rows[0].update(
        text=f'say "hi" \\ back\nslash 😀 é{odd}',
        hashtags=["ünï", 'a"b', "c\\d", f"x{odd}", "", "[]", '","'],
        urls=['https://e.com/?q="1"&r=\\'],
        media_urls=["https://pbs.twimg.com/media/a.jpg", "https://pbs.twimg.com/media/b.jpg"],
        lang=None,
        view_count=None,
        conversation_id=None,
        in_reply_to_id=1,
        quoted_id=INT64_MAX,
        retweeted_id=42,
    )
    rows[1].update(like_count=INT64_MAX, retweet_count=0, view_count=0, hashtags=[])
    return [TweetRecord.model_validate(r) for r in rows]


def test_add_counts_only_new_ids(tmp_path: Path):
    records = synthetic_records(15, seed=1)
    with TweetStore(tmp_path / "s.db") as store:
        assert store.add(records[:10]) == 10
        assert store.add(records) == 5
        assert store.add(records) == 0
        assert store.add([]) == 0
        table = records_to_table(records[5:] + records[5:])  # duplicates inside one call
        assert store.add_table(table) == 0
        assert store.add_table(chunk(20, 1)) == 20
        assert store.count() == 35
        assert store.unpublished_count() == 35


@pytest.mark.parametrize("via_table", [False, True], ids=["records", "table"])
@pytest.mark.parametrize("control_chars", [False, True], ids=["plain", "control-chars"])
def test_rows_round_trip_exactly(tmp_path: Path, via_table: bool, control_chars: bool):
    records = tricky_records(control_chars)
    expected = records_to_table(records).sort_by("id")
    with TweetStore(tmp_path / "s.db") as store:
        arrival = records[::-1]  # not in ID order: the batch comes back sorted anyway
        if via_table:
            store.add_table(records_to_table(arrival))
        else:
            store.add(arrival)
        batch = store.claim_batch(100)
    assert batch is not None
    assert batch.table.schema.equals(ARROW_SCHEMA, check_metadata=True)
    assert batch.table.equals(expected)
    assert [TweetRecord.model_validate(r) for r in batch.table.to_pylist()] == sorted(
        records, key=lambda r: r.id
    )


def test_bulk_table_round_trips(tmp_path: Path):
    table = chunk(2000, 0, seed=5)
    with TweetStore(tmp_path / "s.db") as store:
        assert store.add_table(table.slice(0, 700)) == 700  # a sliced table: offsets not at 0
        assert store.add_table(table) == 1300
        batch = store.claim_batch(5000)
    assert batch is not None and batch.rows == 2000
    assert batch.table.equals(table.sort_by("id"))


def test_add_refuses_unvalidated_input(tmp_path: Path):
    table = chunk(3, 0)
    with TweetStore(tmp_path / "s.db") as store:
        with pytest.raises(RecordError, match="missing=\\['source'\\]"):
            store.add_table(table.drop_columns(["source"]))
        with pytest.raises(RecordError, match="wrong_type"):
            store.add_table(table.set_column(0, "id", pa.array(ids(table), pa.uint64())))
        holed = table.set_column(
            1, ARROW_SCHEMA.field("text"), pa.array(["a", None, "c"], pa.string())
        )
        with pytest.raises(RecordError, match="text has nulls"):
            store.add_table(holed)
        with pytest.raises(TypeError, match="TweetRecord"):
            store.add([table.to_pylist()[0]])  # type: ignore[list-item]
        assert store.count() == 0


def test_claims_oldest_arrivals_first_and_never_twice(tmp_path: Path):
    newer, older = chunk(30, 2), chunk(30, 1)
    with TweetStore(tmp_path / "s.db") as store:
        store.add_table(newer)
        store.add_table(older)  # lower IDs, but they arrived later
        first = store.claim_batch(20)
        second = store.claim_batch(20)
        third = store.claim_batch(20)
        assert store.claim_batch(20) is None
        assert first and second and third
        assert set(ids(first.table)) == set(ids(newer)[:20])
        assert set(ids(second.table)) == set(ids(newer)[20:] + ids(older)[:10])
        assert set(ids(third.table)) == set(ids(older)[10:])
        assert [b.rows for b in (first, second, third)] == [20, 20, 20]
        assert store.pending_batches() == [first.batch_id, second.batch_id, third.batch_id]
        assert store.unpublished_count() == 60
        with pytest.raises(ValueError):
            store.claim_batch(0)


def test_batch_is_identical_after_reopen(tmp_path: Path):
    path = tmp_path / "s.db"
    table = chunk(500, 1)
    with TweetStore(path) as store:
        store.add_table(table)
        batch = store.claim_batch(200)
        assert batch is not None
        # Tweets arriving after the claim (older IDs too) must not join the batch.
        store.add_table(chunk(100, 0))
    shard = encode_shard(batch.table)
    with TweetStore(path) as store:
        assert store.pending_batches() == [batch.batch_id]
        again = store.batch_table(batch.batch_id)
        assert again.equals(batch.table)
        assert set(ids(again)) == set(ids(table)[:200])
        assert encode_shard(again).sha256 == shard.sha256
        rest = store.claim_batch(10_000)
        assert rest is not None and rest.rows == 400
        assert not set(ids(rest.table)) & set(ids(again))
        assert store.pending_batches() == [batch.batch_id, rest.batch_id]
        with pytest.raises(KeyError):
            store.batch_table(999)


def test_mark_published(tmp_path: Path):
    path = tmp_path / "s.db"
    with TweetStore(path) as store:
        store.add_table(chunk(50, 0))
        first, second = store.claim_batch(30), store.claim_batch(30)
        assert first and second
        store.mark_published(first.batch_id, SHA_A, meta={"last_manifest": SHA_A})
        assert store.pending_batches() == [second.batch_id]
        assert store.unpublished_count() == 20
        assert store.get_meta("last_manifest") == SHA_A
        store.mark_published(first.batch_id, SHA_A)  # a retry after a crash is harmless
        with pytest.raises(StoreError, match="already published"):
            store.mark_published(first.batch_id, SHA_B, meta={"last_manifest": SHA_B})
        assert store.get_meta("last_manifest") == SHA_A  # the refused call wrote nothing
        with pytest.raises(KeyError):
            store.mark_published(999, SHA_A)
        with pytest.raises(ValueError, match="sha256"):
            store.mark_published(second.batch_id, "not-a-hash")
        assert store.batch_table(first.batch_id).equals(first.table)  # no max_rows: kept
    with TweetStore(path) as store:
        assert store.pending_batches() == [second.batch_id]
        assert store.claim_batch(100) is None
        store.mark_published(second.batch_id, SHA_B)
        assert store.pending_batches() == []
        assert store.unpublished_count() == 0
        assert store.count() == 50


def test_prune_drops_only_oldest_published_payloads(tmp_path: Path):
    path = tmp_path / "s.db"
    table = chunk(300, 0)
    with TweetStore(path, max_rows=100) as store:
        store.add_table(table)
        published, pending = store.claim_batch(100), store.claim_batch(100)
        assert published and pending
        store.mark_published(published.batch_id, SHA_A)  # prunes: only 100 rows may go
        assert store.count() == 200
        assert stored_ids(path) == set(ids(table)[100:])
        assert store.unpublished_count() == 200
        with pytest.raises(StoreError, match="pruned"):
            store.batch_table(published.batch_id)
        assert store.batch_table(pending.batch_id).equals(pending.table)
        assert store.add_table(table) == 0  # pruned IDs are still known
        assert store.add(table_records(table.slice(0, 10))) == 0
        assert store.prune() == 0
    with TweetStore(path, max_rows=150) as store:
        store.mark_published(pending.batch_id, SHA_B)  # 200 rows, 100 published: drop 50
        assert stored_ids(path) == set(ids(table)[150:])
        assert store.add_table(table) == 0
        assert store.unpublished_count() == 100
        fresh = chunk(10, 1)
        assert store.add_table(fresh) == 10
    with TweetStore(path) as store:  # no max_rows: nothing is ever pruned
        assert store.prune() == 0
        assert store.count() == 160


def test_ids_freed_by_pruning_everything_are_never_reused(tmp_path: Path):
    """Batches are ranges of arrival numbers, so a number must never come back."""
    with TweetStore(tmp_path / "s.db", max_rows=0) as store:
        store.add_table(chunk(10, 0))
        batch = store.claim_batch(10)
        assert batch is not None
        store.mark_published(batch.batch_id, SHA_A)
        assert store.count() == 0
        assert store.add_table(chunk(5, 1)) == 5
        again = store.claim_batch(10)
        assert again is not None and set(ids(again.table)) == set(ids(chunk(5, 1)))


def table_records(table: pa.Table) -> list[TweetRecord]:
    return [TweetRecord.model_validate(r) for r in table.to_pylist()]


def test_meta_and_cursors_persist(tmp_path: Path):
    path = tmp_path / "s.db"
    with TweetStore(path) as store:
        assert store.get_meta("last_manifest") is None
        assert store.get_cursor("#bittensor") is None
        store.set_meta("last_manifest", SHA_A)
        store.set_meta("last_manifest", SHA_B)
        store.set_cursor("#bittensor", 10)
        store.set_cursor("#bittensor", 12)
        store.set_cursor("from:someone", 7)
        with pytest.raises(ValueError):
            store.set_cursor("#bittensor", 0)
    with TweetStore(path) as store:
        assert store.get_meta("last_manifest") == SHA_B
        assert store.get_cursor("#bittensor") == 12
        assert store.get_cursor("from:someone") == 7


def test_durability_settings(tmp_path: Path):
    path = tmp_path / "s.db"
    with TweetStore(path) as store:
        # synchronous is per connection, so it can only be read on the store's own one.
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # INCREMENTAL


def test_refuses_a_store_of_another_version(tmp_path: Path):
    path = tmp_path / "s.db"
    TweetStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(StoreError, match="version 99"):
        TweetStore(path)


def test_concurrent_scrapers_and_publisher(tmp_path: Path):
    """asyncio tasks sharing one store through to_thread: every row published exactly once."""
    chunks = [chunk(40, i) for i in range(30)]

    async def scrape(mine: list[pa.Table], store: TweetStore) -> None:
        for i, table in enumerate(mine):
            if i % 2:
                await asyncio.to_thread(store.add, table_records(table))
            else:
                await asyncio.to_thread(store.add_table, table)

    async def main(store: TweetStore) -> list[pa.Table]:
        scrapers = [asyncio.create_task(scrape(chunks[i::3], store)) for i in range(3)]
        published = []
        while True:
            finished = all(task.done() for task in scrapers)
            batch = await asyncio.to_thread(store.claim_batch, 70)
            if batch is None:
                if finished:
                    break
                await asyncio.sleep(0.001)
                continue
            await asyncio.to_thread(store.mark_published, batch.batch_id, SHA_A)
            published.append(batch.table)
        await asyncio.gather(*scrapers)
        return published

    with TweetStore(tmp_path / "s.db") as store:
        published = asyncio.run(main(store))
        assert store.pending_batches() == []
        assert store.unpublished_count() == 0
    out = [i for table in published for i in ids(table)]
    assert len(out) == len(set(out)) == 30 * 40
    assert set(out) == {i for table in chunks for i in ids(table)}
    assert len(published) > 1


# Adds batches of synthetic tweets, acknowledging each with its last ID once `add_table`
# returns; in batch `hang_at` it freezes mid-transaction and says so, waiting to be killed.
WRITER = r"""
import os, sys, time
from datetime import UTC, datetime, timedelta
from d3.dev.synthetic import synthetic_table
from d3.miner.store import TweetStore

path, rows, hang_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = TweetStore(path)
# A tiny page cache makes a big transaction spill uncommitted pages into the WAL, so the
# kill leaves a half-written batch on disk for recovery to discard.
store._conn.execute("PRAGMA cache_size=8")
steps = 0

def freeze():
    global steps
    steps += 1
    if steps == 40:
        print("mid", os.path.getsize(path + "-wal"), flush=True)
        time.sleep(60)
    return 0

for i in range(hang_at + 1):
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=30 * i)  # as chunk(rows, i)
    table = synthetic_table(rows, seed=i, start=start)
    if i == hang_at:
        store._conn.set_progress_handler(freeze, 1000)
    store.add_table(table)
    print("ack", table["id"][-1].as_py(), os.path.getsize(path + "-wal"), flush=True)
"""


def test_kill_9_mid_batch_loses_nothing_acknowledged(tmp_path: Path):
    path, rows, hang_at = tmp_path / "s.db", 1500, 3
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    stderr = (tmp_path / "writer.err").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path), str(rows), str(hang_at)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    acked: list[int] = []
    wal_at_ack = wal_mid = 0
    try:
        while True:
            kind, *fields = lines.get(timeout=30).split()
            if kind == "ack":
                acked.append(int(fields[0]))
                wal_at_ack = int(fields[1])
            else:
                assert kind == "mid"
                wal_mid = int(fields[0])
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stderr.close()
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "writer.err").read_text()
    assert len(acked) == hang_at
    assert wal_mid > wal_at_ack, "the kill should land with uncommitted pages in the WAL"

    with sqlite3.connect(path) as db:  # recovery happens here, before any store code runs
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert set(acked) <= stored_ids(path)
    with TweetStore(path) as store:
        assert store.count() == hang_at * rows
        for i in range(hang_at):  # every acknowledged batch whole, the torn one absent
            assert store.add_table(chunk(rows, i)) == 0
        assert store.add_table(chunk(rows, hang_at)) == rows
