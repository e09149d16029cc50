"""Per-ID silence: sampled tweets X says nothing about while it answers other look-ups.

Some look-up sources cannot say "no such tweet": Apify returns only what it found, and
twscrape gives no answer it can compare for a retweet. So a miner can make its own picks
silent (invented or deleted tweets on an Apify validator), and the rules for silence are
written against that miner:

- **It counts as not found at once, provisionally.** The miner's audit is recorded with
  its silent picks as not found, the result an X API validator reaches for a deleted or
  invented tweet, and the period counts for every miner (`RoundRunner._audit_period`
  marks it ready). So nobody can hold a period back by being silent, nor hold a rival's
  credit back by deleting tweets the rival scraped: that costs the rival those picks,
  as on X API. The result is revised if X answers about them before the deadline. An
  outage (X answers nothing) still holds the whole period: that is the validator's
  failure, and it must never put one miner behind another.
- **It is asked about twice more.** What X answered is kept (`KeptAnswers`), so a re-ask
  asks only the silent IDs, at most a tenth of the sample (`reask_cap`, and never fewer
  than `min_per_miner`): `silence_confirm_blocks` (an hour) after this validator first
  saw them, which clears a passing glitch, and at the deadline. A miner that keeps its
  picks silent costs the validator at most a fifth of its allotment more.
- **The deadline is on chain,** so validators agree on it: the seed block plus
  `max_wait_blocks`, or `silence_confirm_blocks` after the first sight if that is later
  (a validator that first audits late still asks twice, an hour apart). Silent at the
  deadline's ask while X answers, the picks stay not found for good.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from d3.record import TweetRecord
from d3.validator.audit import AuditParams
from d3.validator.verifier import Lookup, LookupAnswer


@dataclass(frozen=True)
class Silence:
    """One miner-period's silent picks as this validator saw them: the block it first saw
    them at, the block it last asked X, and the distinct IDs still silent (sorted).
    `thawing`: the last re-ask found some of the ones it asked about (a glitch ending),
    so the rest are asked at once, all of them."""

    first: int
    last: int
    ids: tuple[int, ...]
    thawing: bool = False

    def deadline(self, seed_block: int, params: AuditParams) -> int:
        """From this block on, tweets still silent at an ask count as not found."""
        return max(seed_block + params.max_wait_blocks, self.first + params.silence_confirm_blocks)

    def next_ask(self, seed_block: int, params: AuditParams) -> int:
        """When X is asked again: an hour after the first sight, then at the deadline."""
        deadline = self.deadline(seed_block, params)
        confirm = self.first + params.silence_confirm_blocks
        return confirm if self.last < confirm < deadline else deadline

    def to_ask(self, final: int, seed_block: int, params: AuditParams, picks: int) -> list[int]:
        """The silent IDs to ask X about at block `final` (none before the next ask): all
        of them, up to `reask_cap` of a sample of `picks` distinct tweets. An honest
        miner's silence is a few deletions; a miner whose sample is mostly silent (on
        Apify: invented tweets) gets that many asked again, and the rest stay not found,
        so its re-asks cost at most a fifth of its allotment more, not twice it. Once a
        re-ask finds some (`thawing`), all the rest are asked."""
        if final < self.next_ask(seed_block, params):
            return []
        return list(self.ids if self.thawing else self.ids[: reask_cap(picks, params)])

    def to_json(self) -> str:
        doc = {"first": self.first, "last": self.last, "ids": list(self.ids)}
        return json.dumps(doc | ({"thawing": True} if self.thawing else {}))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Silence:
        doc = json.loads(raw)
        if "first" not in doc:  # the earlier layout: {id: the block first seen at}
            seen = {int(k): int(v) for k, v in doc.items()}
            first = min(seen.values(), default=0)
            return cls(first, max(seen.values(), default=0), tuple(sorted(seen)))
        ids = tuple(int(i) for i in doc["ids"])
        return cls(int(doc["first"]), int(doc["last"]), ids, bool(doc.get("thawing")))


def reask_cap(picks: int, params: AuditParams) -> int:
    """How many silent tweets of a sample of `picks` distinct tweets a re-ask asks about."""
    return max(params.min_per_miner, -(-picks // 10))


@dataclass
class KeptAnswers:
    """What X answered about a held miner's sample, so a re-ask asks only the rest."""

    found: dict[int, TweetRecord] = field(default_factory=dict)
    missing: set[int] = field(default_factory=set)

    def to_json(self) -> str:
        return json.dumps(
            {
                "found": [r.model_dump(mode="json") for _, r in sorted(self.found.items())],
                "missing": sorted(self.missing),
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str | None) -> KeptAnswers:
        if raw is None:
            return cls()
        doc = json.loads(raw)
        records = (TweetRecord.model_validate(r) for r in doc["found"])
        return cls({r.id: r for r in records}, {int(i) for i in doc["missing"]})


class Replay:
    """A look-up that answers kept IDs from `kept` and asks X only about `ask`; every
    other ID is silent. After the call, `fresh` is X's own answer (what tells whether X
    answers now) and `kept` holds everything answered so far."""

    def __init__(self, lookup: Lookup, kept: KeptAnswers, ask: Collection[int]):
        self._lookup = lookup
        self.kept = kept
        self._ask = set(ask)
        self.fresh = LookupAnswer(found={})
        self.asked = 0

    async def __call__(self, ids: Sequence[int]) -> LookupAnswer:
        wanted = [i for i in ids if i in self._ask]
        self.asked = len(wanted)
        if wanted:
            self.fresh = await self._lookup(wanted)
        self.kept.found.update(self.fresh.found)
        self.kept.missing |= self.fresh.missing - self.kept.found.keys()
        found = {i: self.kept.found[i] for i in ids if i in self.kept.found}
        missing = {i for i in ids if i in self.kept.missing and i not in found}
        return LookupAnswer(
            found=found,
            missing=missing,
            failed=set(ids) - found.keys() - missing,
            outage=self.fresh.outage,
        )

    @property
    def answered(self) -> bool:
        """Whether X answered any ID of this ask (found or not found: both are answers)."""
        return bool(self.fresh.found or self.fresh.missing)
