"""Verification of a miner's data: structure on every row, X look-ups on a sample.

Structure is cheap and total (schema, hashes, snowflakes, URLs, duplicates). Look-ups are
expensive and budgeted, so they are sampled per miner per period (audit.py), with a seed
the miner could not know while it could still change its data. Every field of a sampled
row is held against the record X returns. What a tweet's author wrote (text, author,
time, language, references, entities) is fixed on X, so a difference there is an
*alteration*, which fails the miner's audit; engagement counts are not (anyone can
withdraw a like, a reply or a quote after a miner scraped them), so a count far above X's
makes only that pick count as *not found*; differences time explains (counts within the
slack, renamed handles) are accepted. An X outage gives no signal either way: the audit
waits.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from loguru import logger

from d3.manifest import ShardRef
from d3.record import MAX_LIST_ITEMS, RecordError, TweetRecord, check_table
from d3.shards import ShardError, ShardLimits, decode_shard

# Tweets get deleted between scrape and check; this share of "not found" is tolerated,
MAX_MISSING_SHARE = 0.2
# and never fewer than this many less one: at the smallest sample (8 picks) two deletions
# are already 25 %, which ordinary deletions give an honest miner now and then (2 % of
# periods at a 3 % deletion rate) and a griefer deleting bait tweets can give on purpose.
MIN_MISSING_TO_FAIL = 3


def too_many_missing(missing: int, checked: int) -> bool:
    """More picks not found than deletions explain (the deletion allowance): the audit
    fails and costs credibility. The one rule: the validator, its reasons and the hub."""
    return missing >= MIN_MISSING_TO_FAIL and missing > MAX_MISSING_SHARE * checked


class VerificationError(ValueError):
    """The data is not acceptable; the message is the one-line reason that gets logged."""


@dataclass(frozen=True)
class LookupAnswer:
    """What X said about sampled IDs (the shape of a source's look-up result).

    `found` holds the whole record X returned, normalised by the same code that made the
    miners' records, so every field a miner publishes can be held against X's own.
    """

    found: dict[int, TweetRecord]  # id -> the record X returned
    missing: set[int] = field(default_factory=set)  # X says: no such tweet (or not visible)
    failed: set[int] = field(default_factory=set)  # no answer for these IDs: no signal
    # The look-up as a whole failed (credentials refused, usage cap, outage after the
    # retries): nothing about any ID can be concluded, not even that X is answering.
    outage: bool = False


Lookup = Callable[[Sequence[int]], Awaitable[LookupAnswer]]


@dataclass(frozen=True)
class SampleVerdict:
    """The outcome of one sample's look-ups.

    `altered` are the tweets with a difference that cannot be honest (`reasons` says which
    field, one line per tweet); `stale` counts, per field, the sampled tweets whose
    difference time or scrapers explain (accepted). `renamed` maps each author whose
    handle differs from X's to (the miner's handle, X's), out of `authors` distinct
    authors compared: handles change, so a few are staleness, most are a rewrite.
    """

    checked: int  # picks X answered for (found, altered, inflated or missing)
    altered: list[int]
    missing: list[int]
    unanswered: int  # picks X gave no answer for
    reasons: dict[int, str] = field(default_factory=dict)  # altered or inflated id -> reason
    stale: dict[str, int] = field(default_factory=dict)  # field -> tweets, accepted
    renamed: dict[int, tuple[str, str]] = field(default_factory=dict)
    authors: int = 0
    # Picks whose content is X's but whose counts exceed X's beyond the slack, or that list
    # media X no longer has: counted as not found (WITHDRAWABLE_FIELDS).
    inflated: list[int] = field(default_factory=list)
    silent: list[int] = field(default_factory=list)  # distinct IDs X gave no answer for
    outage: bool = False  # the look-up failed as a whole (LookupAnswer.outage)

    @property
    def not_found(self) -> int:
        """Answered picks that do not count as found: missing on X, or counts X refutes."""
        return len(self.missing) + len(self.inflated)

    @property
    def rejected(self) -> str | None:
        if self.altered:
            first = self.altered[0]
            reason = self.reasons.get(first, f"tweet {first} differs from X")
            return f"{reason} ({len(self.altered)} altered)"
        if too_many_renamed(len(self.renamed), self.authors):
            author_id, (mine, theirs) = next(iter(self.renamed.items()))
            return (
                f"author_username: {len(self.renamed)} of {self.authors} sampled authors "
                f"carry a handle X does not (author {author_id}: @{mine}, X has @{theirs})"
            )
        if self.checked and too_many_missing(self.not_found, self.checked):
            return f"{self.not_found} of {self.checked} sampled tweets {self._not_found_text()}"
        return None

    @property
    def notes(self) -> str:
        """What the found share left out, when the audit does not fail for it."""
        if not self.inflated:
            return ""
        return f"{len(self.inflated)} sampled tweets {self._not_found_text(only_inflated=True)}"

    def _not_found_text(self, only_inflated: bool = False) -> str:
        parts = []
        if self.missing and not only_inflated:
            parts.append(f"do not exist on X (first {self.missing[0]})")
        if self.inflated:
            first = self.inflated[0]
            media = any("in media_urls" in self.reasons.get(i, "") for i in self.inflated)
            what = "counts above X's or media X no longer has" if media else "counts above X's"
            parts.append(
                f"count as not found for {what} ({self.reasons.get(first, f'tweet {first}')})"
            )
        return "; ".join(parts)


def verify_shard(data: bytes, ref: ShardRef, limits: ShardLimits, now: datetime) -> pa.Table:
    """Decode a shard and check it against its manifest entry and every record rule."""
    if len(data) != ref.bytes:  # the declared size sets the fetch deadline: it must be true
        raise VerificationError(
            f"shard {ref.sha256[:12]}: {len(data)} bytes, manifest says {ref.bytes}"
        )
    try:
        table = decode_shard(data, limits, expected_sha256=ref.sha256)
        check_table(table, now)
    except (ShardError, RecordError) as exc:
        raise VerificationError(f"shard {ref.sha256[:12]}: {exc}") from None
    except (pa.ArrowException, ValueError) as exc:  # a kernel choking on malformed values
        raise VerificationError(f"shard {ref.sha256[:12]}: malformed values: {exc}") from None
    if table.num_rows != ref.rows:
        raise VerificationError(
            f"shard {ref.sha256[:12]}: {table.num_rows} rows, manifest says {ref.rows}"
        )
    ids = table["id"]
    if (
        table.num_rows > 1
        and not pc.all(pc.greater(ids.slice(1), ids.slice(0, len(ids) - 1))).as_py()
    ):
        raise VerificationError(f"shard {ref.sha256[:12]}: rows are not sorted by id")
    low, high = ids[0].as_py(), ids[-1].as_py()
    if (low, high) != (ref.min_id, ref.max_id):
        raise VerificationError(f"shard {ref.sha256[:12]}: id range differs from the manifest")
    return table


# -- comparing a row with X's record -------------------------------------------------------
#
# Each rule below is pure: a miner's value and X's in, a Difference (or None) out. A
# difference is *fraud* when no honest scraper could have produced it (it rejects the
# manifest), or *staleness* when time or a scraper's gaps explain it (accepted, counted).
# The table of which is which is in docs/protocol.md, "What a look-up compares".

# Counts grow after a scrape and shrink (unlikes, purged bots, deleted retweets, and a
# griefer's sock puppets withdrawing the likes they gave a tweet other miners scraped):
# a miner's count may exceed X's current one by this much. Beyond it (more than double,
# and 50 more) the reading is refuted, but it is never an alteration: counts earn nothing,
# and anyone can withdraw engagement after the fact, so such a pick only counts as not
# found (check_sample) and a griefer can cost a miner at most the picks it withdrew from.
COUNT_SLACK = 50
COUNT_SLACK_PERCENT = 100
COUNT_FIELDS = ("like_count", "retweet_count", "reply_count", "quote_count", "view_count")
# Fields someone other than the author can change after a scrape: engagement is withdrawn,
# and media are taken down (a copyright claim removes a photo from a tweet that stays). A
# row above X's there makes its pick count as not found (it earns nothing for that), never
# altered: a griefer's takedown or unliking costs a miner that pick, not the period.
WITHDRAWABLE_FIELDS = (*COUNT_FIELDS, "media_urls")
REFERENCE_FIELDS = ("conversation_id", "in_reply_to_id", "quoted_id", "retweeted_id")
# Handles change, rarely: a rewrite is when more than this share of the sampled authors
# (and at least MIN_RENAMED_AUTHORS of them) carry a handle X does not know.
MAX_RENAMED_SHARE = 0.5
MIN_RENAMED_AUTHORS = 3
UNDETERMINED_LANG = "und"

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Difference:
    """One field of a miner's row that is not what X says, and whether it can be honest."""

    field: str
    detail: str
    fraud: bool

    def reason(self, tweet_id: int) -> str:
        return f"tweet {tweet_id} differs from X in {self.field}: {self.detail}"


_SPACE = re.compile(r"\s+")
# X API v2 escapes exactly these three in `text` (not always in note_tweet.text); scrapers
# of the web API pass them through or not. Nothing else is an entity X wrote, so a
# general HTML unescape would turn a user's literal "&copy" into "©".
_X_ENTITY = re.compile(r"&(amp|lt|gt);")
_X_ENTITY_CHARS = {"amp": "&", "lt": "<", "gt": ">"}


def normalise_text(text: str) -> str:
    """Whitespace and Unicode form differ between X's endpoints and scrapers; meaning
    does not."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def unescape_x(text: str) -> str:
    """Undo X's HTML escaping, once: `&amp;amp;` is a user's literal `&amp;`, not `&`."""
    return _X_ENTITY.sub(lambda m: _X_ENTITY_CHARS[m.group(1)], text)


def _text_forms(text: str) -> set[str]:
    """A text as it may have been served (escaped or not), normalised both ways: the side
    that was escaped matches through its unescaped form, the side that was not through
    its own, and a user's literal entity survives as itself."""
    return {normalise_text(text), normalise_text(unescape_x(text))}


def _snippet(text: str, at: int) -> str:
    return repr(text[max(0, at - 15) : at + 35])


def compare_text(mine: str, theirs: str) -> Difference | None:
    """Equal after undoing X's escaping, NFC and whitespace runs; anything else is an
    edit of what the author wrote (fraud)."""
    if _text_forms(mine) & _text_forms(theirs):
        return None
    a, b = normalise_text(unescape_x(mine)), normalise_text(unescape_x(theirs))
    at = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    return Difference(
        "text", f"{_snippet(a, at)} where X has {_snippet(b, at)} (character {at})", fraud=True
    )


def compare_author_id(mine: int, theirs: int) -> Difference | None:
    """The author is the tweet's identity on X: any other ID is misattribution."""
    if mine == theirs:
        return None
    return Difference("author_id", f"{mine}, X has {theirs}", fraud=True)


def _second(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


def compare_created_at(mine: datetime, theirs: datetime) -> Difference | None:
    """X reports whole seconds and never moves a tweet in time; the structural check only
    holds created_at within a minute of the ID, so this is where a shift shows."""
    if _second(mine) == _second(theirs):
        return None
    shift = (_second(mine) - _second(theirs)).total_seconds()
    return Difference(
        "created_at", f"{shift:+.0f} s from X's {_second(theirs):%Y-%m-%dT%H:%M:%SZ}", fraud=True
    )


def compare_lang(mine: str | None, theirs: str | None) -> Difference | None:
    """X's language tag, exactly, when X reports one (a missing tag and "und" both mean
    undetermined). X tags a tweet once; a different tag is a rewrite."""
    if theirs is None:
        return None
    if (mine or UNDETERMINED_LANG) == theirs:
        return None
    return Difference("lang", f"{mine!r}, X has {theirs!r}", fraud=True)


def compare_reference(name: str, mine: int | None, theirs: int | None) -> Difference | None:
    """Conversation, reply, quote and retweet links are fixed when a tweet is posted:
    exact, and null only where X's is null (a null claims "not a reply")."""
    if mine == theirs:
        return None
    return Difference(name, f"{mine}, X has {theirs}", fraud=True)


def count_slack(theirs: int) -> int:
    """How far above X's current count a miner's may be: max(50, 100 %), in integers (a
    float would round counts near the int64 limit)."""
    return max(COUNT_SLACK, theirs * COUNT_SLACK_PERCENT // 100)


def compare_count(name: str, mine: int | None, theirs: int | None) -> Difference | None:
    """Counts grow after a scrape and can shrink, so a miner's reading is lower than X's
    now (staleness) or at most the slack above it; beyond that it was inflated (fraud). A
    count the miner left out is staleness too: it claims nothing."""
    if theirs is None or mine == theirs:
        return None  # X did not report it (old tweets have no views): nothing to hold it to
    if mine is None:
        return Difference(name, f"not recorded, X has {theirs}", fraud=False)
    if mine > theirs + count_slack(theirs):
        return Difference(
            name, f"{mine}, X has {theirs} (at most {theirs + count_slack(theirs)})", fraud=True
        )
    return Difference(name, f"{mine}, X has {theirs}", fraud=False)


def _hashtag(tag: str) -> str:
    return unicodedata.normalize("NFC", tag).removeprefix("#").casefold()


def _compare_set(
    name: str, mine: set[str], theirs: set[str], theirs_full: bool
) -> Difference | None:
    """An item X does not have was added (fraud); an item X has that the miner lacks is a
    scraper's gap (the web API gives a long post's entities for its first part only) and
    is accepted. When X's list is at the record's cap, it was truncated in X's order and
    a miner's other items prove nothing."""
    extra = sorted(mine - theirs)
    if extra and not theirs_full:
        return Difference(name, f"{extra[0]!r} is not on X ({len(extra)} added)", fraud=True)
    lacking = theirs - mine
    if lacking:
        return Difference(name, f"{len(lacking)} of X's {len(theirs)} not recorded", fraud=False)
    return None


def compare_hashtags(mine: Sequence[str], theirs: Sequence[str]) -> Difference | None:
    """As sets, ignoring case, a leading '#' and Unicode form (X's tag keeps the author's
    case, scrapers may not)."""
    return _compare_set(
        "hashtags",
        {_hashtag(t) for t in mine},
        {_hashtag(t) for t in theirs},
        len(theirs) >= MAX_LIST_ITEMS,
    )


def _own_media_link(tweet_id: int) -> re.Pattern[str]:
    # X API v2 lists the link to a tweet's own photo or video among its URLs, the web API
    # among its media, so a record may carry it or not; the handle in it is whatever it
    # was when posted. It is not a link the author wrote either way.
    return re.compile(
        rf"https?://(?:www\.|mobile\.)?(?:x|twitter)\.com/[^/?#]+/status/{tweet_id}"
        r"/(?:photo|video)/\d+/?",
        re.IGNORECASE,
    )


def compare_urls(tweet_id: int, mine: Sequence[str], theirs: Sequence[str]) -> Difference | None:
    """As sets of expanded URLs, leaving out links to the tweet's own media."""
    own = _own_media_link(tweet_id)
    return _compare_set(
        "urls",
        {u for u in mine if not own.fullmatch(u)},
        {u for u in theirs if not own.fullmatch(u)},
        len(theirs) >= MAX_LIST_ITEMS,
    )


def compare_media_urls(mine: Sequence[str], theirs: Sequence[str]) -> Difference | None:
    """As sets: sources list photos and videos in different orders."""
    return _compare_set("media_urls", set(mine), set(theirs), len(theirs) >= MAX_LIST_ITEMS)


def compare_author_username(mine: str, theirs: str) -> Difference | None:
    """Handles change and X reports only today's, so a different one is staleness here.
    The row's URL is already bound to its own handle by the structural check, so it cannot
    contradict it; author_id is the identity. A sample where most authors differ is a
    rewrite: `too_many_renamed`. Handles are case-insensitive on X."""
    if mine.casefold() == theirs.casefold():
        return None
    return Difference("author_username", f"@{mine}, X has @{theirs}", fraud=False)


def too_many_renamed(renamed: int, authors: int) -> bool:
    """More renamed authors in one sample than renames explain."""
    return renamed >= MIN_RENAMED_AUTHORS and renamed > MAX_RENAMED_SHARE * authors


def compare_row(row: Row, x: TweetRecord) -> list[Difference]:
    """Every rule, in the order a reason should name them (fraud first is the caller's)."""
    found = [
        compare_author_id(row["author_id"], x.author_id),
        compare_text(row["text"], x.text),
        compare_created_at(row["created_at"], x.created_at),
        compare_lang(row["lang"], x.lang),
        *(compare_reference(n, row[n], getattr(x, n)) for n in REFERENCE_FIELDS),
        compare_hashtags(row["hashtags"], x.hashtags),
        compare_urls(x.id, row["urls"], x.urls),
        compare_media_urls(row["media_urls"], x.media_urls),
        *(compare_count(n, row[n], getattr(x, n)) for n in COUNT_FIELDS),
        compare_author_username(row["author_username"], x.author_username),
    ]
    return [d for d in found if d is not None]


async def check_sample(sample: pa.Table, lookup: Lookup) -> SampleVerdict:
    """Compare sampled rows with the records X returns, field by field (compare_row).

    A fraud difference in a field the author fixed when posting marks the tweet altered;
    one only in the counts marks it inflated (not found, not altered: COUNT_SLACK);
    staleness is counted per field and logged, and renamed handles are collected per
    author for the share rule.
    """
    rows = sample.to_pylist()  # a tweet the draw picked twice is counted twice
    answer = await lookup(list(dict.fromkeys(r["id"] for r in rows)))
    altered: list[int] = []
    inflated: list[int] = []
    missing: list[int] = []
    reasons: dict[int, str] = {}
    stale: dict[str, int] = {}
    renamed: dict[int, tuple[str, str]] = {}
    authors: set[int] = set()
    for row in rows:
        tweet_id = row["id"]
        x = answer.found.get(tweet_id)
        if x is None:
            if tweet_id in answer.missing:
                missing.append(tweet_id)
            continue
        differences = compare_row(row, x)
        fraud = [d for d in differences if d.fraud]
        content = [d for d in fraud if d.field not in WITHDRAWABLE_FIELDS]
        if content:
            altered.append(tweet_id)
            reasons[tweet_id] = content[0].reason(tweet_id)
            continue
        if fraud:
            inflated.append(tweet_id)
            reasons[tweet_id] = fraud[0].reason(tweet_id)
            continue
        authors.add(x.author_id)
        for d in differences:
            stale[d.field] = stale.get(d.field, 0) + 1
            logger.debug("accepted difference from X: {}", d.reason(tweet_id))
            if d.field == "author_username":
                renamed.setdefault(x.author_id, (row["author_username"], x.author_username))
    if stale:
        logger.info(
            "sample: accepted (stale) differences from X: {}",
            ", ".join(f"{name} in {n} tweets" for name, n in sorted(stale.items())),
        )
    answered = sum(1 for r in rows if r["id"] in answer.found) + len(missing)
    silent = [
        i
        for i in dict.fromkeys(r["id"] for r in rows)
        if i not in answer.found and i not in answer.missing
    ]
    return SampleVerdict(
        checked=answered,
        altered=altered,
        missing=missing,
        unanswered=len(rows) - answered,
        reasons=reasons,
        stale=stale,
        renamed=renamed,
        authors=len(authors),
        inflated=inflated,
        silent=silent,
        outage=answer.outage,
    )


class LookupBudget:
    """A daily allowance of X look-ups, spent per audit (one miner's sample of a period).

    A token bucket: it refills continuously (daily_budget per 24 h) up to `burst` (an
    hour's worth by default), so a burst of audits cannot spend a whole day at once; an
    audit that finds the allowance short waits for it.
    """

    def __init__(self, daily_budget: int, burst: int | None = None):
        self.daily = max(0, daily_budget)
        self.burst = float(burst if burst is not None else self.daily / 24)
        self.available = self.burst
        self._last: float | None = None

    def spend(self, size: int, now_s: float) -> bool:
        """Take exactly `size` look-ups if the allowance has them (or is full: a larger
        audit runs into debt that later refills pay back); False: wait."""
        if self._last is not None:
            refill = (now_s - self._last) * self.daily / 86_400
            self.available = min(self.burst, self.available + refill)
        self._last = now_s
        if self.available < min(size, self.burst) or self.daily == 0:
            return False
        self.available -= size
        return True

    def refund(self, size: int) -> None:
        """Give back look-ups that were not spent (X gave no answer: the audit waits)."""
        self.available = min(self.burst, self.available + size)
