"""Forged data: tweets that are not on X, altered tweets, copies, other encodings of the
same tweet, duplicates. Each attacker commits in the same round as an honest miner whose
tweets were scraped from a real local X server; the validator looks tweets up there."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import bittensor as bt
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from d3.dev.synthetic import synthetic_table
from d3.record import ARROW_SCHEMA, check_table
from d3.shards import encode_shard
from d3.validator.scoring import INITIAL_CREDIBILITY
from tests.support.net import run

from .support import CORPUS_END, SAMPLE, Arena, parquet_shard, with_column

HONEST_ROWS = 200


def _honest(x_world) -> pa.Table:
    return x_world.tweets.slice(0, HONEST_ROWS)


async def _attacker_rejected(arena, runner, report, logs, name, published, pattern):
    """The attacker's manifest is rejected with `pattern` in the reason, logged against its
    hotkey, credited nothing, and its credibility drops."""
    reason = report.rejected.get(published.manifest_sha256)
    assert reason is not None, (report.accepted, report.rejected)
    assert re.search(pattern, reason), reason
    assert f"manifest rejected: {reason}" in logs.of(arena.hotkey(name))
    assert (await arena.credited(runner))[name] == 0
    assert (await runner.state.credibility(runner.scoring.period_blocks))[
        arena.hotkey(name)
    ] < INITIAL_CREDIBILITY


async def _caught_by_the_audit(arena, runner, logs, name, pattern, real=0):
    """Only X can tell: the attacker's manifest passes every structural check, and the
    period's audit finds it out. With no real tweets it earns nothing; with `real` real
    ones its score stays below an honest miner's with those tweets alone (the sampled
    not-found share discounts its credit, and the missing share beyond the deletion
    allowance costs credibility). The audit is logged against its hotkey."""
    await arena.audit(runner)
    hotkey = arena.hotkey(name)
    [result] = (await runner.state.audits())[hotkey].values()
    assert re.search(pattern, result.reason), result
    scores = {s.hotkey: s for s in await runner.scores(await arena.graph())}
    if real:
        assert scores[hotkey].score < real * INITIAL_CREDIBILITY, scores[hotkey]
    else:
        assert scores[hotkey].unique == 0, scores[hotkey]
    assert scores[hotkey].credibility < INITIAL_CREDIBILITY
    assert any(line.startswith("audit of period") for line in logs.of(hotkey))
    return scores


def _honest_credited(arena, report, logs, credited, published, name="honest"):
    assert published.manifest_sha256 in report.accepted
    assert credited[name] == published.rows
    accepted = [m for m in logs.of(arena.hotkey(name)) if m.startswith("manifest accepted")]
    assert accepted == [f"manifest accepted: {published.rows} rows, {published.rows} new unique"]


@pytest.mark.parametrize("fabricated_share", ["all", "half"])
def test_fabricated_tweets_with_consistent_snowflakes_fail_the_lookups(
    net, redis_url, logs, x_world, fabricated_share
):
    fake = synthetic_table(60, seed=901, start=CORPUS_END - timedelta(days=2), source="x_api")
    if fabricated_share == "half":
        attack = pa.concat_tables([x_world.tweets.slice(300, 30), fake.slice(0, 30)])
        fake = fake.slice(0, 30)
    else:
        attack = fake
    # The forgery is structurally perfect: only X can tell.
    check_table(attack, datetime.now(UTC))
    assert not set(fake["id"].to_pylist()) & set(x_world.server.corpus.ids)

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["fabricator", "honest"])
            forged = await arena.publish("fabricator", [attack])  # commits first, even
            honest = await arena.publish("honest", [_honest(x_world)])
            runner = arena.runner(redis_url, lookup=x_world.lookup())
            net.dev.advance(1)  # the audit's ranking is seeded by the block after the commit
            report, _ = await arena.round(runner)
            assert forged.manifest_sha256 in report.accepted  # structurally perfect
            _honest_credited(arena, report, logs, await arena.credited(runner), honest)
            real = attack.num_rows - fake.num_rows
            scores = await _caught_by_the_audit(
                arena,
                runner,
                logs,
                "fabricator",
                rf"^\d+ of {SAMPLE} sampled tweets do not exist on X",
                real=real,
            )
            assert scores[arena.hotkey("honest")].unique == HONEST_ROWS
            await arena.close()

    run(body())


# How an alterer rewrites one field of a real tweet; every one must be caught on X.
_ALTERATIONS = {
    "text": lambda value, invented: value + " (edited)",
    "author_id": lambda value, invented: value + 1,
    "created_at": lambda value, invented: value + timedelta(seconds=59),
    "hashtags": lambda value, invented: [*value, "d3airdrop"],
    "lang": lambda value, invented: "ja" if value == "en" else "en",
    "in_reply_to_id": lambda value, invented: invented if value != invented else invented + 1,
}


def _one_in_three(real: pa.Table, field: str, alter) -> pa.Table:
    """`real` with 20 of its 60 rows' `field` rewritten: any 50-row sample hits some."""
    invented = real["id"][0].as_py() - 1  # a real-looking tweet none of these reply to
    values = real[field].to_pylist()
    for i in range(0, len(values), 3):
        values[i] = alter(values[i], invented)
    altered = with_column(real, field, values)
    check_table(altered, datetime.now(UTC))  # structurally perfect: only X can tell
    return altered


@pytest.mark.parametrize("field", list(_ALTERATIONS))
def test_real_ids_with_altered_rows_are_rejected(net, redis_url, logs, x_world, field):
    altered = _one_in_three(x_world.tweets.slice(360, 60), field, _ALTERATIONS[field])

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["alterer", "honest"])
            forged = await arena.publish("alterer", [altered])
            honest = await arena.publish("honest", [_honest(x_world)])
            runner = arena.runner(redis_url, lookup=x_world.lookup())
            net.dev.advance(1)
            report, _ = await arena.round(runner)
            assert forged.manifest_sha256 in report.accepted  # structurally perfect
            _honest_credited(arena, report, logs, await arena.credited(runner), honest)
            await _caught_by_the_audit(  # one altered tweet zeroes the period
                arena,
                runner,
                logs,
                "alterer",
                rf"^tweet \d+ differs from X in {field}: .+ \(\d+ altered\)$",
            )
            await arena.close()

    run(body())


@pytest.mark.parametrize("field", ["like_count", "view_count"])
def test_counts_inflated_on_many_rows_cost_their_share_and_credibility(
    net, redis_url, logs, x_world, field
):
    """Counts earn nothing and their owners can withdraw engagement at will, so a count X
    refutes is not an alteration: the pick counts as not found. Inflated on a third of
    the rows, that is more than deletions explain: the credit is discounted by the share
    and credibility drops."""
    real = x_world.tweets.slice(360)
    real = real.filter(pc.greater(real[field], 0)).slice(0, 60)  # x100 leaves a zero a zero
    inflated = _one_in_three(real, field, lambda value, invented: value * 100)

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["inflater", "honest"])
            await arena.publish("inflater", [inflated])
            honest = await arena.publish("honest", [_honest(x_world)])
            runner = arena.runner(redis_url, lookup=x_world.lookup())
            net.dev.advance(1)
            report, _ = await arena.round(runner)
            _honest_credited(arena, report, logs, await arena.credited(runner), honest)
            scores = await _caught_by_the_audit(
                arena,
                runner,
                logs,
                "inflater",
                rf"^\d+ of {SAMPLE} sampled tweets count as not found for counts above X's "
                rf"\(tweet \d+ differs from X in {field}: .+\)$",
                real=40,
            )
            [result] = (await runner.state.audits())[arena.hotkey("inflater")].values()
            assert result.altered == 0 and 0 < result.found < result.checked
            assert scores[arena.hotkey("inflater")].unique == 60 * result.found // result.checked
            await arena.close()

    run(body())


def test_copied_shards_resigned_later_earn_nothing(net, redis_url, logs, x_world):
    honest_table = _honest(x_world)

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["honest", "copier"])
            honest = await arena.publish(
                "honest", [honest_table.slice(0, 120), honest_table.slice(120)]
            )
            # The copier downloads the honest shards byte for byte and signs its own manifest.
            copied = await arena.publish_shards("copier", honest.shards)
            assert {s.sha256 for s in copied.shards} == {s.sha256 for s in honest.shards}
            runner = arena.runner(redis_url, lookup=x_world.lookup())
            net.dev.advance(1)
            report, _ = await arena.round(runner)
            await arena.audit(runner)  # credit counts once its period is audited
            credited = await arena.credited(runner)
            scores = {
                s.hotkey: s
                for s in await runner.scores(await arena.chains["validator"].metagraph())
            }
            await arena.close()
            return arena, report, credited, scores, honest, copied

    arena, report, credited, scores, honest, copied = run(body())
    # Structurally fine and real, so accepted; but every tweet was someone else's first.
    assert report.accepted == [honest.manifest_sha256, copied.manifest_sha256]
    assert not report.rejected and report.new_unique == HONEST_ROWS
    assert credited == {"honest": HONEST_ROWS, "copier": 0}
    assert f"manifest accepted: {HONEST_ROWS} rows, 0 new unique" in logs.text(
        arena.hotkey("copier")
    )
    _honest_credited(arena, report, logs, credited, honest)
    assert scores[arena.hotkey("copier")].weight == 0
    assert scores[arena.hotkey("honest")].weight == pytest.approx(1.0)


def _string_ids(table: pa.Table) -> pa.Table:
    """The same rows with `id` as zero-padded text: the same tweets, another encoding."""
    schema = ARROW_SCHEMA.set(0, pa.field("id", pa.string(), nullable=False))
    ids = [f"{i:025d}" for i in table["id"].to_pylist()]
    return pa.Table.from_arrays([pa.array(ids), *table.columns[1:]], schema=schema)


def _padded_urls(table: pa.Table) -> pa.Table:
    urls = [
        f"https://x.com/{user}/status/00{tweet_id}"
        for user, tweet_id in zip(
            table["author_username"].to_pylist(), table["id"].to_pylist(), strict=True
        )
    ]
    return with_column(table, "url", urls)


@pytest.mark.parametrize(
    "encoding, pattern",
    [
        ("string id column", r"schema mismatch: missing=\[\] extra=\[\] wrong_type=\['id'\]"),
        ("zero-padded status id in url", r"url does not match id"),
    ],
    ids=["string-id-column", "zero-padded-url"],
)
def test_same_tweets_in_another_id_encoding_are_rejected(
    net, redis_url, logs, x_world, encoding, pattern
):
    honest_table = _honest(x_world)
    if encoding == "string id column":
        shard = parquet_shard(_string_ids(honest_table), compression="zstd")
    else:
        shard = encode_shard(_padded_urls(honest_table))

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["recoder", "honest"])
            # The recoder even commits first: a different encoding must not win priority.
            forged = await arena.publish_shards("recoder", [shard])
            honest = await arena.publish("honest", [honest_table])
            runner = arena.runner(redis_url, lookup=x_world.lookup())
            net.dev.advance(1)
            report, _ = await arena.round(runner)
            await _attacker_rejected(arena, runner, report, logs, "recoder", forged, pattern)
            _honest_credited(arena, report, logs, await arena.credited(runner), honest)
            await arena.close()

    run(body())


def test_same_tweet_ids_reencoded_and_committed_later_earn_only_the_new_ones(
    net, redis_url, logs, x_world
):
    honest_table = _honest(x_world)
    extra = x_world.tweets.slice(420, 20)  # tweets only the late miner has
    # Other bytes for the same int64 IDs: another codec, row groups, and row order.
    late = parquet_shard(
        pa.concat_tables([honest_table, extra]).sort_by("id"),
        compression="snappy",
        row_group_size=50,
    )

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["honest", "late"])
            honest = await arena.publish("honest", [honest_table])
            recoded = await arena.publish_shards("late", [late])
            assert recoded.shards[0].sha256 != honest.shards[0].sha256
            runner = arena.runner(redis_url, lookup=x_world.lookup())
            net.dev.advance(1)
            report, _ = await arena.round(runner)
            credited = await arena.credited(runner)
            await arena.close()
            return arena, report, credited, honest, recoded

    arena, report, credited, honest, recoded = run(body())
    assert report.accepted == [honest.manifest_sha256, recoded.manifest_sha256]
    assert credited == {"honest": HONEST_ROWS, "late": 20}
    assert report.new_unique == HONEST_ROWS + 20
    _honest_credited(arena, report, logs, credited, honest)


@pytest.mark.parametrize("where", ["within a shard", "across shards"])
def test_duplicate_ids_are_rejected(net, redis_url, logs, x_world, where):
    rows = x_world.tweets.slice(450, 60)

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["duplicator", "honest"])
            if where == "within a shard":
                dup = encode_shard(pa.concat_tables([rows, rows.slice(10, 5)]))
                forged = await arena.publish_shards("duplicator", [dup])
            else:
                forged = await arena.publish("duplicator", [rows.slice(0, 40), rows.slice(30, 30)])
            honest = await arena.publish("honest", [_honest(x_world)])
            runner = arena.runner(redis_url, lookup=x_world.lookup())
            net.dev.advance(1)
            report, _ = await arena.round(runner)
            pattern = (
                r"duplicate id \d+ within the data"
                if where == "within a shard"
                else r"^the same tweet id appears in two shards$"
            )
            await _attacker_rejected(arena, runner, report, logs, "duplicator", forged, pattern)
            _honest_credited(arena, report, logs, await arena.credited(runner), honest)
            assert await runner.index.contains(rows["id"].to_pylist()[:5]) == [False] * 5
            await arena.close()

    run(body())


def test_child_repeating_its_parents_ids_earns_only_the_new_ones(net, redis_url, x_world):
    """Each manifest is judged on its own; a repeat across manifests is a duplicate the
    index already holds, never a second credit."""
    rows = x_world.tweets.slice(450, 60)

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["repeater"])
            # The parent is uploaded but never committed; the child repeats 10 of its IDs.
            parent = await arena.publish("repeater", [rows.slice(0, 40)], commit=False)
            child = await arena.publish(
                "repeater", [rows.slice(30, 30)], parent=parent.manifest_sha256
            )
            runner = arena.runner(redis_url, lookup=x_world.lookup())
            net.dev.advance(1)
            report, _ = await arena.round(runner)
            credited = await arena.credited(runner)
            await arena.close()
            return report, credited, child

    report, credited, child = run(body())
    assert report.accepted == [child.manifest_sha256] and not report.rejected
    assert credited == {"repeater": 60}


def _invalid_utf8(table: pa.Table, row: int) -> pa.Table:
    """`table` with row `row`'s text replaced by bytes that are not UTF-8 (Arrow does not
    validate string buffers it is handed, and neither does the Parquet writer)."""
    texts = [t.encode() for t in table["text"].to_pylist()]
    texts[row] = b"\xff\xfe not utf-8 \xc3"
    offsets = [0]
    for text in texts:
        offsets.append(offsets[-1] + len(text))
    column = pa.Array.from_buffers(
        pa.string(),
        len(texts),
        [None, pa.array(offsets, pa.int32()).buffers()[1], pa.py_buffer(b"".join(texts))],
    )
    return table.set_column(1, ARROW_SCHEMA.field("text"), column)


def _null_in_required_column(table: pa.Table, row: int) -> pa.Table:
    """The record schema with every field optional (the schema check compares types, not
    nullability), and a null like_count."""
    likes = table["like_count"].to_pylist()
    likes[row] = None
    schema = pa.schema([f.with_nullable(True) for f in ARROW_SCHEMA], ARROW_SCHEMA.metadata)
    columns = [
        pa.array(likes, pa.int64()) if name == "like_count" else table[name]
        for name in ARROW_SCHEMA.names
    ]
    return pa.Table.from_arrays(columns, schema=schema)


@pytest.mark.parametrize(
    "mangle, pattern",
    [(_invalid_utf8, r"(?i)utf-?8"), (_null_in_required_column, r"like_count")],
    ids=["invalid-utf8-text", "null-in-required-column"],
)
def test_readable_but_malformed_shard_is_rejected_and_the_round_goes_on(
    net, redis_url, logs, x_world, mangle, pattern
):
    shard = parquet_shard(mangle(x_world.tweets.slice(520, 20), 3), compression="zstd")

    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            arena = await Arena.open(client, net, ["honest", "mangler", "late"])
            honest = await arena.publish("honest", [_honest(x_world)])
            forged = await arena.publish_shards("mangler", [shard])
            late = await arena.publish("late", [x_world.tweets.slice(300, 50)])
            runner = arena.runner(redis_url, lookup=x_world.lookup())
            net.dev.advance(1)
            try:
                report, _ = await arena.round(runner)  # today: raises from process()
                await _attacker_rejected(arena, runner, report, logs, "mangler", forged, pattern)
                credited = await arena.credited(runner)
                _honest_credited(arena, report, logs, credited, honest)
                _honest_credited(arena, report, logs, credited, late, name="late")
            finally:
                await arena.close()

    run(body())
