"""What the validator decided, read as one consistent snapshot.

The hub judges nothing itself. Everything it needs is in the validator's state and index,
read through their public methods only (`ValidatorState`, `TweetIndex.credits`):

- the *accepted commitments*: every verdict that accepted a commitment, with its manifest,
  in the global (commit block, hotkey) order the validator ingested them in;
- the *frontier*: the first commitment not judged yet (the queue's head). The validator
  judges strictly in order, so every verdict before it is final;
- the *audits*: hotkey -> period -> what X said about that miner's sample;
- the *open periods*: periods with credit whose audit is not finished;
- the *credit*: hotkey -> period -> new unique tweets the index credited, the number the
  hub's own attribution must reproduce before it publishes a period.

The validator may be writing while the hub reads (they are separate processes), so the
snapshot is read twice and taken only when both reads agree: a verdict written between
two hotkeys' reads could otherwise be missed while a later one is seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from d3.hub.errors import SnapshotUnstable
from d3.validator.audit import AuditResult
from d3.validator.index import TweetIndex
from d3.validator.state import ValidatorState

READ_ATTEMPTS = 20


@dataclass(frozen=True, order=True)
class Accepted:
    """One accepted commitment, in ingest order."""

    block: int
    hotkey: str
    manifest_sha256: str = field(compare=False)

    @property
    def order(self) -> tuple[int, str]:
        return (self.block, self.hotkey)


@dataclass(frozen=True)
class Decisions:
    accepted: tuple[Accepted, ...]
    frontier: tuple[int, str] | None  # the first unjudged commitment (None: queue empty)
    audits: dict[str, dict[int, AuditResult]]
    open_periods: frozenset[int]
    # Not compared between reads: ingestion moves it before each verdict, and the hub uses
    # it only for periods that are closed, where nothing moves any more.
    credits: dict[str, dict[int, int]] = field(compare=False)

    def judged(self, order: tuple[int, str]) -> bool:
        """Whether the commitment at `order` is before the frontier (its verdict is final)."""
        return self.frontier is None or order < self.frontier


def audit_passed(result: AuditResult) -> bool:
    """The validator's rule (`RoundRunner._audit_period`): an audit fails on an altered
    tweet, on nothing checkable, or on more missing tweets than deletions explain."""
    return not result.failed


async def _read_once(state: ValidatorState, index: TweetIndex) -> Decisions:
    head = await state.queue_head(1)
    hotkeys = sorted(await state.cursors())
    accepted = []
    for hotkey in hotkeys:
        for verdict in await state.verdicts(hotkey):
            if verdict.accepted and verdict.manifest_sha256:
                accepted.append(Accepted(verdict.block, hotkey, verdict.manifest_sha256))
    accepted.sort()
    return Decisions(
        accepted=tuple(accepted),
        frontier=(head[0].block, head[0].hotkey) if head else None,
        audits=await state.audits(),
        open_periods=frozenset(await state.audit_periods()),
        credits=await index.credits(),
    )


async def read_decisions(state: ValidatorState, index: TweetIndex) -> Decisions:
    """A snapshot that two consecutive reads agree on."""
    before = await _read_once(state, index)
    for _ in range(READ_ATTEMPTS):
        after = await _read_once(state, index)
        if after == before:
            return after
        before = after
    raise SnapshotUnstable(
        f"the validator's state changed across {READ_ATTEMPTS} consecutive reads"
    )
