"""Closing a day: the rule (when no commitment can add to it any more), the merge (the same
bytes whatever files the day was made of), and a crash mid-close that leaves a valid hub
and resumes to the bytes of a clean build."""

from __future__ import annotations

from datetime import UTC, datetime

import bittensor as bt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import d3.hub.builder as builder_module
from d3.dev.synthetic import synthetic_table
from d3.hub.builder import HubBuilder
from d3.hub.compaction import DAY_MS, merge_day, open_from_day
from d3.hub.layout import CARD_NAME, verify_copy
from d3.hub.schema import COUNTS_NOTE, NOTE, encode_parquet, with_provenance
from d3.snowflake import MAX_CLOCK_SKEW_MS
from tests.support.net import run

from .support import build, published_files

FIRST_DAY = "2025-12-31"


def _ms(*args) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def test_a_day_closes_once_no_fresh_tweet_can_have_been_created_on_it():
    day = _ms(2026, 1, 2) // DAY_MS
    # Every row still to come has an id minted at or after the bound; its created_at may
    # lie MAX_CLOCK_SKEW_MS earlier. The 1st is closed only once that cannot reach it.
    assert open_from_day(_ms(2026, 1, 2) + MAX_CLOCK_SKEW_MS) == day
    assert open_from_day(_ms(2026, 1, 2) + MAX_CLOCK_SKEW_MS - 1) == day - 1
    assert open_from_day(_ms(2026, 1, 2, 13)) == day
    assert open_from_day(None) is None  # no freshness bound yet: any day can grow


def test_a_closed_day_is_the_same_bytes_whatever_files_it_was_made_of(tmp_path):
    rows = with_provenance(synthetic_table(2_300, seed=5), "5Hotkey", "ab" * 32, 7)
    whole = rows.sort_by("id")
    # The day's rows in one file, or spread over four (interleaved ids, one file empty),
    # as periods bring them.
    spread = pa.array([i % 3 for i in range(rows.num_rows)])
    layouts = {
        "one": [rows],
        "four": [rows.filter(pc.equal(spread, k)) for k in range(3)] + [rows.slice(0, 0)],
    }
    merged = {}
    for name, tables in layouts.items():
        inputs = []
        for n, table in enumerate(tables):
            path = tmp_path / f"{name}-{n}.parquet"
            path.write_bytes(encode_parquet(table, level=3, row_group_rows=170))
            inputs.append(path)
        parts = merge_day(inputs, tmp_path / name, file_rows=1_000, row_group_rows=250)
        merged[name] = [(tmp_path / name / p.name).read_bytes() for p in parts]
        assert [p.rows for p in parts] == [1_000, 1_000, 300]
    assert merged["one"] == merged["four"]
    # Each file is exactly what encode_parquet makes of its rows: in id order, cut into
    # files of whole row groups.
    for n, data in enumerate(merged["one"]):
        assert data == encode_parquet(whole.slice(n * 1_000, 1_000), row_group_rows=250)
    with pytest.raises(ValueError, match="whole row groups"):
        merge_day([], tmp_path / "bad", file_rows=1_000, row_group_rows=300)


def test_a_crash_while_closing_a_day_leaves_a_valid_hub_and_resumes(
    net, redis_url, tmp_path, monkeypatch
):
    """Killed after merging (before the ledger knew), then after the ledger's transaction
    (before the day's directory was swapped): each time the hub on disk still matches its
    index, and the next update ends byte-identical to a clean build."""
    real_merge, real_swap = builder_module.merge_day, HubBuilder._swap_in
    states = []

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            _, runner, clean, report = await build(
                net, client, redis_url, tmp_path / "clean", later=True
            )
            clean.close()
            assert report.closed == [FIRST_DAY]
            signer = net.wallet("va").hotkey
            hub = tmp_path / "hub"
            for crash in ("merged", "committed"):

                def merged_then_killed(*args, **kwargs):
                    real_merge(*args, **kwargs)
                    raise SystemExit("killed after merging")

                def committed_then_killed(self, day):
                    raise SystemExit("killed before the swap")

                if crash == "merged":
                    monkeypatch.setattr(builder_module, "merge_day", merged_then_killed)
                else:
                    monkeypatch.setattr(HubBuilder, "_swap_in", committed_then_killed)
                builder = HubBuilder.for_runner(hub, runner, signer)
                with pytest.raises(SystemExit):
                    await builder.update()
                builder.close()
                monkeypatch.setattr(builder_module, "merge_day", real_merge)
                monkeypatch.setattr(HubBuilder, "_swap_in", real_swap)
                verify_copy(hub)  # the old files, as the old index lists them
                states.append(sorted(p.name for p in (hub / "data" / FIRST_DAY).iterdir()))
                before = pads.dataset(hub / "data" / FIRST_DAY).to_table().sort_by("id")
            builder = HubBuilder.for_runner(hub, runner, signer)  # a new process
            resumed = await builder.update()
            idle = await builder.update()
            builder.close()
            return before, resumed, idle

    before, resumed, idle = run(body())
    assert states == [["period-00000000.parquet", "period-00000002.parquet"]] * 2
    assert resumed.closed == [] and not resumed.published  # only the swap was left
    assert idle.closed == [] and idle.applied == 0
    hub = tmp_path / "hub"
    assert published_files(hub) == published_files(tmp_path / "clean")
    assert not (hub / ".hub" / "compact").exists() or not any((hub / ".hub" / "compact").iterdir())
    verify_copy(hub)
    after = pq.read_table(hub / "data" / FIRST_DAY / "part-00000.parquet")
    assert after.to_pylist() == before.to_pylist()  # the same rows, now one sorted file
    # The card tells closed days from open ones, and says the counts are as scraped; so
    # does the schema, on each count column.
    card = (hub / CARD_NAME).read_text()
    second = pads.dataset(hub / "data" / "2026-01-01").count_rows()
    assert f"| {FIRST_DAY} | {after.num_rows} | closed |" in card
    assert f"| 2026-01-01 | {second} | open |" in card
    assert "**not verified**" in card
    note = after.schema.field("like_count").metadata[NOTE.encode()].decode()
    assert note == COUNTS_NOTE and "not verified" in note
