"""One incremental update of the hub: apply what the validator accepted since the last
update, publish every period whose audits are done, rewrite the card and the index.

**Attribution.** Accepted commitments are applied in the validator's own (commit block,
hotkey) order. Each one's fresh rows (rows.py) are held against the ids already claimed:
the unclaimed ones are this commitment's, first committer wins, exactly the rule the index
applies. They are staged (not yet published) with their provenance.

**Publication.** A period is published once the validator has closed it: every
commitment in it judged and every miner with credit in it audited (with audits off, once
the caller says the chain is settled past it). Then, per miner:

- the hub's count must equal the index's credit for that miner and period, or the rows
  are *withheld* (kept staged, reported): the hub never publishes an attribution the
  validator did not make;
- a failed audit *discards* the rows (their ids stay claimed: a later copy of them was
  never credited either);
- otherwise the rows are *published*: one file per day the period's tweets were created on.

**Closing days.** Once no commitment can add rows to a day (`compaction.py` has the rule),
the day's period files are merged into its final part files, and the index names those.

Files are written before the ledger records them and are a pure function of the chain,
so a crash anywhere is repaired by running the update again.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from loguru import logger

from d3.chain.interface import Chain
from d3.hub.card import CardFacts, md_table, render_card
from d3.hub.compaction import FILE_ROWS, merge_day, open_from_day
from d3.hub.decisions import Decisions, audit_passed, read_decisions
from d3.hub.errors import HubCorrupt, LedgerError, RowsUnavailable
from d3.hub.layout import (
    CARD_NAME,
    DATA_DIR,
    INDEX_NAME,
    SIGNATURE_NAME,
    STATE_DIR,
    canonical,
    data_path,
    day_of,
    fsync_dir,
    index_document,
    is_part,
    part_path,
    sha256_file,
    sha256_hex,
    write_atomic,
)
from d3.hub.ledger import DAY_FILE, DISCARDED, PUBLISHED, WITHHELD, FileEntry, Ledger
from d3.hub.rows import RowSource
from d3.hub.schema import (
    HUB_VERSION,
    OPEN_ZSTD_LEVEL,
    day_label,
    day_numbers,
    decode_parquet,
    encode_parquet,
    encode_staging,
)
from d3.hub.signing import sign_index
from d3.manifest import Signer
from d3.shards import ShardLimits
from d3.validator.fetcher import Fetcher
from d3.validator.index import TweetIndex
from d3.validator.rounds import RoundRunner
from d3.validator.scoring import ScoringParams
from d3.validator.state import ValidatorState


@dataclass
class UpdateReport:
    applied: int = 0  # accepted commitments applied
    staged_rows: int = 0  # new rows attributed (not yet published)
    published: dict[int, int] = field(default_factory=dict)  # period -> rows published
    discarded: int = 0  # rows of failed audits
    withheld: list[str] = field(default_factory=list)  # one line per withheld miner-period
    closed: list[str] = field(default_factory=list)  # days compacted (YYYY-MM-DD)
    blocked: str | None = None  # why applying stopped early (retried next update)
    rows: int = 0  # rows in the hub after the update

    def summary(self) -> str:
        text = (
            f"applied {self.applied} commitments ({self.staged_rows} new rows staged), "
            f"published {sum(self.published.values())} rows of {len(self.published)} periods, "
            f"discarded {self.discarded}, withheld {len(self.withheld)}, "
            f"closed {len(self.closed)} days; {self.rows} rows in all"
        )
        return text + (f"; waiting: {self.blocked}" if self.blocked else "")


class HubBuilder:
    def __init__(
        self,
        directory: Path,
        chain: Chain,
        state: ValidatorState,
        index: TweetIndex,
        fetcher: Fetcher,
        scoring: ScoringParams,
        *,
        netuid: int,
        audited: bool,
        signer: Signer | None = None,
        limits: ShardLimits | None = None,
    ):
        self.dir = Path(directory)
        self.state = state
        self.index = index
        self.scoring = scoring
        self.netuid = netuid
        self.audited = audited
        self.signer = signer
        self.source = RowSource(chain, state, fetcher, scoring, limits)
        self.staging = self.dir / STATE_DIR / "staging"
        self.compacting = self.dir / STATE_DIR / "compact"  # a closing day's new files
        self.retired = self.dir / STATE_DIR / "retired"  # a closed day's old directory
        self.ledger = Ledger(self.dir / STATE_DIR / "ledger.sqlite")
        # A hub is one validator's view of one subnet under one set of rules: mixing two
        # would publish an attribution neither made.
        params = (
            f"hub_version={HUB_VERSION} netuid={netuid} period_blocks={scoring.period_blocks} "
            f"fresh_periods={scoring.fresh_periods} audited={audited}"
        )
        found = self.ledger.get("params")
        if found is None:
            self.ledger.set("params", params)
        elif found != params:
            self.ledger.close()
            raise LedgerError(f"{self.dir} was built with {found}, not {params}")

    @classmethod
    def for_runner(
        cls, directory: Path, runner: RoundRunner, signer: Signer | None = None
    ) -> HubBuilder:
        """The hub of the validator `runner` stands for: its chain, state, index and
        fetcher, and the parameters it judges with."""
        pipeline = runner.pipeline
        return cls(
            directory,
            runner.chain,
            runner.state,
            runner.index,
            pipeline.fetcher,
            runner.scoring,
            netuid=pipeline.netuid,
            audited=runner.audit is not None,
            signer=signer,
            limits=pipeline.limits.shard,
        )

    def close(self) -> None:
        self.ledger.close()

    async def update(self, settled_through: int | None = None) -> UpdateReport:
        """Bring the hub up to date with the validator. `settled_through`: with audits off,
        the block up to which every commitment on chain has been judged (periods ending
        by then are published); ignored with audits on, where the audits close periods."""
        report = UpdateReport()
        await asyncio.to_thread(self._finish_closing)
        decisions = await read_decisions(self.state, self.index)
        behind = await self._apply(decisions, report)
        for period in self._closed_periods(decisions, behind, settled_through):
            await asyncio.to_thread(self._publish, period, decisions, report)
        report.rows = self._write_index()
        open_from = await self._open_from(decisions, behind, settled_through)
        for day in self._days_to_close(open_from):
            await asyncio.to_thread(self._close_day, day)
            report.closed.append(day)
        logger.info("hub {}: {}", self.dir, report.summary())
        return report

    # -- attribution ------------------------------------------------------------------

    async def _apply(self, decisions: Decisions, report: UpdateReport) -> tuple[int, str] | None:
        """Apply every judged accepted commitment after the cursor, in order. Returns the
        first one not applied (None: all of them), before which the hub is complete."""
        cursor = self.ledger.cursor()
        for accepted in decisions.accepted:
            if cursor is not None and accepted.order <= cursor:
                continue
            if not decisions.judged(accepted.order):
                return accepted.order
            try:
                rows = await self.source.rows(accepted)
            except RowsUnavailable as error:
                report.blocked = (
                    f"commitment of {accepted.hotkey[:10]} at block {accepted.block}: {error}"
                )
                logger.warning("hub waits: {}", report.blocked)
                return accepted.order
            table = rows.table
            new = table.filter(self.ledger.unclaimed(table["id"])) if table.num_rows else table
            period = self.scoring.period_of(accepted.block)
            name = None
            if new.num_rows:
                name = f"{period:08d}/{accepted.block:012d}-{accepted.hotkey}.parquet"
                data = await asyncio.to_thread(encode_staging, new)
                write_atomic(self.staging / name, data)
            self.ledger.apply(accepted.order, period, new["id"].to_pylist(), name)
            report.applied += 1
            report.staged_rows += new.num_rows
        return None

    # -- publication ------------------------------------------------------------------

    def _closed_periods(
        self, decisions: Decisions, behind: tuple[int, str] | None, settled_through: int | None
    ) -> list[int]:
        decided = self.ledger.decided_periods()
        waiting = sorted({s.period for s in self.ledger.staged()} - decided)
        closed = []
        for period in waiting:
            last = (period + 1) * self.scoring.period_blocks - 1
            if not decisions.judged((last + 1, "")):
                continue  # commitments of the period still wait for their verdicts
            if behind is not None and behind < (last + 1, ""):
                continue  # or for this hub to apply them
            if self.audited:
                if period in decisions.open_periods:
                    continue
            elif settled_through is None or last > settled_through:
                continue
            closed.append(period)
        return closed

    def _publish(self, period: int, decisions: Decisions, report: UpdateReport) -> None:
        ours = self.ledger.credit(period)
        theirs = {h: per[period] for h, per in decisions.credits.items() if per.get(period)}
        outcomes: dict[str, tuple[str, int, str]] = {}
        for hotkey in sorted(set(ours) | set(theirs)):
            rows, credited = ours.get(hotkey, 0), theirs.get(hotkey, 0)
            if rows != credited:
                reason = f"the hub attributed {rows} tweets, the validator credited {credited}"
                outcomes[hotkey] = (WITHHELD, rows, reason)
            elif not self.audited:
                outcomes[hotkey] = (PUBLISHED, rows, "structure-only validation")
            elif (result := decisions.audits.get(hotkey, {}).get(period)) is None:
                outcomes[hotkey] = (WITHHELD, rows, "closed without an audit of this miner")
            elif audit_passed(result):
                outcomes[hotkey] = (
                    PUBLISHED,
                    rows,
                    f"audit: {result.found} of {result.checked} found",
                )
            else:
                reason = f"audit failed: {result.found} of {result.checked} found"
                outcomes[hotkey] = (
                    DISCARDED,
                    rows,
                    reason + (f"; {result.reason}" if result.reason else ""),
                )
        staged = self.ledger.staged(period)
        tables = [
            decode_parquet((self.staging / s.file).read_bytes())
            for s in staged
            if outcomes.get(s.hotkey, (None,))[0] == PUBLISHED
        ]
        files = self._write_period(period, tables)
        self.ledger.publish(period, outcomes, files)
        for s in staged:
            if outcomes.get(s.hotkey, (None,))[0] != WITHHELD:
                (self.staging / s.file).unlink(missing_ok=True)
        for hotkey, (outcome, rows, reason) in outcomes.items():
            if outcome == DISCARDED:
                report.discarded += rows
            elif outcome == WITHHELD:
                line = f"period {period}, {hotkey[:10]}: {reason}"
                report.withheld.append(line)
                logger.error("hub withholds {}", line)
        report.published[period] = sum(f.rows for f in files)

    def _write_period(self, period: int, tables: list[pa.Table]) -> list[FileEntry]:
        if not tables:
            return []
        table = pa.concat_tables(tables)
        days = day_numbers(table)
        files = []
        closed = {day_of(f.path) for f in self.ledger.files() if is_part(f.path)}
        for day in sorted(pc.unique(days).to_pylist()):
            part = table.filter(pc.equal(days, day))
            path = data_path(day_label(day), period)
            if day_label(day) in closed:
                # Rows for a day this hub closed: a rule the closing does not know. They
                # are published all the same, and the day is closed again with them.
                logger.error("hub: period {} brings {} rows to a closed day", period, path)
            data = encode_parquet(part, level=OPEN_ZSTD_LEVEL)
            write_atomic(self.dir / path, data)
            files.append(FileEntry(path, sha256_hex(data), len(data), part.num_rows, period))
        return files

    # -- closing days -----------------------------------------------------------------

    def _decided_through(
        self, decisions: Decisions, behind: tuple[int, str] | None, settled_through: int | None
    ) -> int | None:
        """The last period P such that every commitment up to its end is judged and applied
        here, and every period up to it is closed by the validator and decided here
        (None: not even period 0)."""
        if self.audited:
            # The validator audits a period only once it and every period before it are
            # closed, all their commitments judged (`RoundRunner.audit_periods`): a
            # finished audit of period A closes every period up to A, and an earlier one
            # still being audited bounds it. (A period with no credit has no audit; a
            # later one's closes it.)
            audited = {p for per in decisions.audits.values() for p in per}
            finished = audited - decisions.open_periods
            if not finished:
                return None
            through = max(finished)
            if decisions.open_periods:
                through = min(through, min(decisions.open_periods) - 1)
        elif settled_through is None:
            return None
        else:
            through = self.scoring.period_of(settled_through + 1) - 1
        if decisions.frontier is not None:
            through = min(through, self.scoring.period_of(decisions.frontier[0]) - 1)
        if behind is not None:
            through = min(through, self.scoring.period_of(behind[0]) - 1)
        undecided = {s.period for s in self.ledger.staged()} - self.ledger.decided_periods()
        if undecided:
            through = min(through, min(undecided) - 1)
        return through if through >= 0 else None

    async def _open_from(
        self, decisions: Decisions, behind: tuple[int, str] | None, settled_through: int | None
    ) -> int | None:
        """The first day (days since 1970-01-01) that can still gain rows; None: any day."""
        through = self._decided_through(decisions, behind, settled_through)
        if through is None:
            return None
        next_block = (through + 1) * self.scoring.period_blocks  # the next period's first
        bound_block = self.scoring.fresh_from_block(next_block)
        if bound_block >= next_block and bound_block > await self.source.chain.block():
            return None  # FRESH_PERIODS 0: the bound's block is not on chain yet
        return open_from_day(await self.source.fresh_bound_ms(next_block))

    def _days_to_close(self, open_from: int | None) -> list[str]:
        """Closed days whose files are not (all) part files yet."""
        if open_from is None:
            return []
        first_open = day_label(open_from)
        days: dict[str, bool] = {}
        for f in self.ledger.files():
            day = day_of(f.path)
            days[day] = days.get(day, True) and is_part(f.path)
        return sorted(day for day, done in days.items() if day < first_open and not done)

    def _close_day(self, day: str) -> None:
        """Merge a closed day's files into its part files, then: one transaction (the
        ledger names the parts), one swap of the day's directory, the index rewritten."""
        files = [f for f in self.ledger.files() if day_of(f.path) == day]
        work = self.compacting / day
        shutil.rmtree(work, ignore_errors=True)
        parts = merge_day([self.dir / f.path for f in files], work, file_rows=FILE_ROWS)
        entries = [
            FileEntry(part_path(day, n), p.sha256, p.bytes, p.rows, DAY_FILE)
            for n, p in enumerate(parts)
        ]
        merged, listed = sum(e.rows for e in entries), sum(f.rows for f in files)
        if merged != listed:  # checked before the ledger hears of it: the hub stays as it was
            raise HubCorrupt(f"closing {day}: {merged} rows merged from {listed} listed")
        self.ledger.close_day(day, entries)
        self._swap_in(day)
        self._write_index()  # the directory and its index agree again

    def _swap_in(self, day: str) -> None:
        """The merged directory replaces the day's: two renames, the old one then deleted."""
        live, work, retired = self.dir / DATA_DIR / day, self.compacting / day, self.retired / day
        shutil.rmtree(retired, ignore_errors=True)
        retired.parent.mkdir(parents=True, exist_ok=True)
        if live.exists():
            os.replace(live, retired)
        os.replace(work, live)
        fsync_dir(live.parent)
        shutil.rmtree(retired, ignore_errors=True)

    def _finish_closing(self) -> None:
        """After a crash: finish closing a day whose transaction went through (its merged
        files are the ledger's), drop a merge whose transaction did not (it is redone)."""
        if self.compacting.exists():
            for work in sorted(p for p in self.compacting.iterdir() if p.is_dir()):
                day = work.name
                listed = {(f.path, f.sha256) for f in self.ledger.files() if day_of(f.path) == day}
                merged = {
                    (f"{DATA_DIR}/{day}/{p.name}", sha256_file(p))
                    for p in work.iterdir()
                    if p.is_file()
                }
                if merged and merged == listed:
                    self._swap_in(day)
                else:
                    shutil.rmtree(work)
        shutil.rmtree(self.retired, ignore_errors=True)

    # -- card and index ---------------------------------------------------------------

    def _write_index(self) -> int:
        files = self.ledger.files()
        card = render_card(self._card_facts(files))
        index = canonical(index_document(self.netuid, files, card))
        write_atomic(self.dir / CARD_NAME, card)
        write_atomic(self.dir / INDEX_NAME, index)
        if self.signer is not None:
            write_atomic(self.dir / SIGNATURE_NAME, sign_index(self.signer, index))
        return sum(f.rows for f in files)

    def _card_facts(self, files: list[FileEntry]) -> CardFacts:
        by_day: dict[str, int] = defaultdict(int)
        open_days: set[str] = set()
        for f in files:
            by_day[day_of(f.path)] += f.rows
            if not is_part(f.path):
                open_days.add(day_of(f.path))
        per_miner: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        periods: set[int] = set()
        for hotkey, period, outcome, rows, _ in self.ledger.outcomes():
            per_miner[hotkey][outcome] += rows
            periods.add(period)
        miners = _miner_table(per_miner)
        total = sum(f.rows for f in files)
        verified = (
            "Every row is a tweet that D3 validators credited: a miner scraped it, committed "
            "the hash of a signed manifest listing it on chain, and published it; a validator "
            "read every commitment from chain history, checked every row's structure "
            "(schema, snowflake time, URL), credited each tweet to its first committer only "
            "(by commit block, then hotkey; retweets are not credited, so they are not here: "
            "their originals are, when a miner brought them), and "
            + (
                "audited each miner's new tweets of each period on X. A period's rows are "
                "published only once its audit passed: a miner-period whose audit failed "
                "(an altered tweet, or more missing tweets than deletions explain) is left "
                "out whole, and its tweets are nobody's."
                if self.audited
                else "**ran structure-only (no look-ups on X)**, so invented tweets that "
                "are well-formed can be in here."
            )
            + " The builder re-derives the attribution from the miners' own bytes (pinned "
            "by the manifest hashes) and publishes a miner's period only when its count "
            "equals the validator's credit. Rows keep the record exactly as the first "
            "committer published it, plus `miner_hotkey`, `manifest_sha256` and "
            "`commit_block`."
        )
        return CardFacts(
            title="D3 verified tweets",
            description=(
                f"Tweets mined on Bittensor subnet {self.netuid} (D3), deduplicated and "
                "verified by its validators: each tweet once, as its first committer "
                "published it."
            ),
            rows=total,
            files=len(files),
            rows_by_day=dict(by_day),
            open_days=frozenset(open_days),
            files_per_day=(
                "in one file per credit period that brought some while the day is open "
                "(`period-<period>.parquet`), and once it is closed (final: no commitment "
                "can add tweets of that day any more, given the freshness bound) in files "
                f"of at most {FILE_ROWS:,} rows (`part-<n>.parquet`)"
            ),
            sections=(
                ("How it was verified", verified),
                ("Engagement counts are as scraped", COUNTS_TEXT),
                (
                    "Miners",
                    f"{len(periods)} credit periods decided "
                    f"({self.scoring.period_blocks} blocks each).\n\n{miners}",
                ),
            ),
        )


COUNTS_TEXT = (
    "`like_count`, `retweet_count`, `reply_count`, `quote_count` and `view_count` are the "
    "first committer's reading at `scraped_at`, **not verified**. An audit looks up a "
    "sample of each miner's tweets on X and counts a sampled tweet whose count is above "
    "X's by more than max(50, 100 %) as not found (counts move after a scrape, both ways, "
    "and anyone can withdraw likes), so even an audited tweet's count can be up to double "
    "X's plus 50, and the other tweets' counts were never looked at. The hub does not "
    "know which tweets were sampled, and the validator keeps no count of X's to publish. "
    "Use them as a miner's report, not as X's figures. The sampled tweets' other "
    "columns are held against X more strictly: text, author, creation time and "
    "references must match."
)


def _miner_table(per_miner: dict[str, dict[str, int]]) -> str:
    if not per_miner:
        return "No miner yet."
    rows = [
        (
            f"`{hotkey}`",
            f"{o.get(PUBLISHED, 0):,}",
            f"{o.get(DISCARDED, 0):,}",
            f"{o.get(WITHHELD, 0):,}",
        )
        for hotkey, o in sorted(per_miner.items(), key=lambda kv: (-kv[1].get(PUBLISHED, 0), kv[0]))
    ]
    return md_table(["miner hotkey", "published", "discarded (failed audit)", "withheld"], rows)
