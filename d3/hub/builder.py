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

Files are written before the ledger records them and are a pure function of the chain,
so a crash anywhere is repaired by running the update again.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from loguru import logger

from d3.chain.interface import Chain
from d3.hub.card import CardFacts, md_table, render_card
from d3.hub.decisions import Decisions, audit_passed, read_decisions
from d3.hub.errors import LedgerError, RowsUnavailable
from d3.hub.layout import (
    CARD_NAME,
    INDEX_NAME,
    SIGNATURE_NAME,
    STATE_DIR,
    canonical,
    data_path,
    index_document,
    sha256_hex,
    write_atomic,
)
from d3.hub.ledger import DISCARDED, PUBLISHED, WITHHELD, FileEntry, Ledger
from d3.hub.rows import RowSource
from d3.hub.schema import day_label, day_numbers, decode_parquet, encode_parquet
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
    blocked: str | None = None  # why applying stopped early (retried next update)
    rows: int = 0  # rows in the hub after the update

    def summary(self) -> str:
        text = (
            f"applied {self.applied} commitments ({self.staged_rows} new rows staged), "
            f"published {sum(self.published.values())} rows of {len(self.published)} periods, "
            f"discarded {self.discarded}, withheld {len(self.withheld)}; {self.rows} rows in all"
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
        self.ledger = Ledger(self.dir / STATE_DIR / "ledger.sqlite")
        # A hub is one validator's view of one subnet under one set of rules: mixing two
        # would publish an attribution neither made.
        params = (
            f"netuid={netuid} period_blocks={scoring.period_blocks} "
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
        decisions = await read_decisions(self.state, self.index)
        behind = await self._apply(decisions, report)
        for period in self._closed_periods(decisions, behind, settled_through):
            await asyncio.to_thread(self._publish, period, decisions, report)
        report.rows = self._write_index()
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
                data = await asyncio.to_thread(encode_parquet, new)
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
        for day in sorted(pc.unique(days).to_pylist()):
            part = table.filter(pc.equal(days, day))
            path = data_path(day_label(day), period)
            data = encode_parquet(part)
            write_atomic(self.dir / path, data)
            files.append(FileEntry(path, sha256_hex(data), len(data), part.num_rows, period))
        return files

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
        for f in files:
            by_day[f.path.split("/")[1]] += f.rows
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
            "(by commit block, then hotkey), and "
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
            sections=(
                ("How it was verified", verified),
                (
                    "Miners",
                    f"{len(periods)} credit periods decided "
                    f"({self.scoring.period_blocks} blocks each).\n\n{miners}",
                ),
            ),
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
