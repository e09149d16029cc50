"""What every tweet source does the same way, written once so one tweet makes one record.

Each source reads its own format (X API v2 JSON in `scraping/normalize.py`, twscrape's
parsed tweets, Apify Actor items). Everything after the reading is here:

- IDs: `parse_id` reads a tweet ID as any format writes it, or says it cannot be one;
  `optional_id` reads a reference (conversation, reply, quote); `start_lookup` sets
  aside, as missing, the IDs no tweet can have before a look-up asks for any.
- Lists: `capped` is the one rule for `hashtags`, `urls` and `media_urls`.
- Links: `is_media_page` recognises the link X gives a tweet's attached media, which is
  no link its author wrote and so never one of its `urls`.
- Queries: `check_query` holds X's length limit (`MAX_QUERY_CHARS`, also what a query
  plan may build); `bounded_query` writes the search bounds as X search operators, for
  the sources that search through X's web search.
- Results: `SearchHits` checks a search's query and bounds and turns its hits into a
  `SearchResult`; `finish_lookup` logs a look-up's `LookupResult`: the same rules and
  the same log line for every source.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable
from datetime import datetime

from loguru import logger

from d3.record import INT64_MAX, MAX_LIST_ITEMS, TweetRecord
from scraping.source import LookupResult, SearchResult, SourceError, in_bounds, require_aware

MAX_QUERY_CHARS = 512  # X's query length limit for search on the common API tiers

# A tweet's own media page, the link X gives attached media; group 1 is the tweet's ID.
_MEDIA_PAGE = re.compile(
    r"https?://(?:www\.|mobile\.)?(?:x|twitter)\.com/[^/?#]+/status/(\d+)/(?:photo|video)/\d+/?",
    re.IGNORECASE,
)


# -- IDs ------------------------------------------------------------------------------


def parse_id(value: object) -> int | None:
    """A tweet ID as a source writes it (an int, or a string of decimal digits), or None
    when `value` cannot be one: anything else, zero, or beyond int64 (a snowflake)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        number = int(value)
    else:
        return None
    return number if 0 < number <= INT64_MAX else None


def optional_id(value: object) -> int | None:
    """A reference to another tweet (conversation, reply, quote): None when absent (None
    or ""), else the ID; an unreadable one raises ValueError, so the record is rejected
    rather than silently losing the reference. The record checks the range."""
    if value is None or value == "":
        return None
    if isinstance(value, int | str):
        return int(value)
    raise ValueError(f"not a tweet ID: {value!r}")


def start_lookup(ids: Iterable[int]) -> tuple[LookupResult, list[int]]:
    """A look-up's result so far and the IDs to ask about, each once, in the order given.

    An ID no tweet can have (zero, negative, beyond int64) is `missing` at once: asking
    for it would fail a whole batch (X answers 400), and no tweet has it anyway.
    """
    result = LookupResult()
    wanted: list[int] = []
    for number in dict.fromkeys(map(operator.index, ids)):
        if 0 < number <= INT64_MAX:
            wanted.append(number)
        else:
            result.missing.add(number)
    return result, wanted


def finish_lookup(source: str, result: LookupResult) -> LookupResult:
    """`result`, logged the same way for every source."""
    logger.info(
        "{} lookup: {} found, {} missing, {} failed",
        source,
        len(result.found),
        len(result.missing),
        len(result.failed),
    )
    return result


# -- lists and links ------------------------------------------------------------------


def capped(items: Iterable[object]) -> list[str]:
    """The list rule for `hashtags`, `urls` and `media_urls`, the same for every source.

    Items as strings in the order the source gives them; empty ones, and repeats of an
    earlier one, left out; then the first MAX_LIST_ITEMS (the record's cap) kept.
    Repeats go before the cap, so a source that lists a link twice (twscrape does, for a
    long post's links) keeps the same items as one that lists it once; cutting rather
    than rejecting keeps a hashtag-stuffed but real tweet.
    """
    out: dict[str, None] = {}
    for item in items:
        if len(out) >= MAX_LIST_ITEMS:
            break
        if item:
            out.setdefault(str(item))
    return list(out)


def is_media_page(url: str | None, tweet: int) -> bool:
    """Whether `url` is tweet `tweet`'s own photo/video page (`…/status/<id>/photo/1`):
    the link X gives its attached media, not one its author wrote. Another tweet's media
    page is a link like any other."""
    match = _MEDIA_PAGE.fullmatch(url or "")
    return match is not None and int(match.group(1)) == tweet


# -- queries --------------------------------------------------------------------------


def check_query(query: str) -> None:
    """Raise ValueError, naming the problem, unless X would take `query`: not blank and
    at most MAX_QUERY_CHARS characters."""
    if not query.strip():
        raise ValueError("query is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise ValueError(f"query is {len(query)} characters; X allows {MAX_QUERY_CHARS}")


def bounded_query(
    query: str, since: datetime | None, until: datetime | None, since_id: int | None
) -> str:
    """`query` with the X search operators for the bounds (since_time/until_time take unix
    seconds; until_time is exclusive like X API v2's end_time)."""
    parts = [f"({query})" if " OR " in query else query]
    if since_id is not None:
        parts.append(f"since_id:{since_id}")
    if since is not None:
        parts.append(f"since_time:{int(since.timestamp())}")
    if until is not None:
        parts.append(f"until_time:{int(until.timestamp())}")
    return " ".join(parts)


# -- search results -------------------------------------------------------------------


class SearchHits:
    """One search's `SearchResult`, assembled by the same rules for every source.

    A hit is a tweet the search returned. Each counts once, only inside the bounds
    (applied again client-side: scrapers honour X's operators loosely), and at most
    `limit` of them. `newest_id` is the newest hit, recorded or rejected, so the next
    search's `since_id` moves past a tweet that cannot become a record instead of asking
    for it forever. Records come newest first; a tweet a hit references (`bonus`) never
    replaces a hit's own record.

    Built before the first request: naive bounds raise ValueError, and a query X would
    refuse raises SourceError, as X's own refusal (400) would, without spending a request.
    """

    def __init__(
        self,
        query: str,
        limit: int,
        since: datetime | None = None,
        until: datetime | None = None,
        since_id: int | None = None,
    ) -> None:
        require_aware(since, until)
        try:
            check_query(query)
        except ValueError as error:
            raise SourceError(f"search refused: {error}") from None
        self.query = query
        self.limit = limit
        self._bounds = (since, until, since_id)
        self._hits: set[int] = set()
        self._records: dict[int, TweetRecord] = {}
        self.rejected = 0

    @property
    def room(self) -> int:
        """How many more hits the search may take."""
        return max(0, self.limit - len(self._hits))

    def hit(self, tweet: int, created_at: datetime | None = None) -> bool:
        """Count `tweet` as a hit, if it is new, inside the bounds and there is room.

        Without `created_at` only the ID bound is checked (for a source whose server
        applies the time bounds exactly, as X API v2 does).
        """
        since, until, since_id = self._bounds
        if tweet in self._hits or not self.room:
            return False
        if created_at is not None and not in_bounds(tweet, created_at, since, until, since_id):
            return False
        if since_id is not None and tweet <= since_id:
            return False
        self._hits.add(tweet)
        return True

    def keep(self, record: TweetRecord) -> None:
        """A hit's record."""
        self._records[record.id] = record

    def bonus(self, record: TweetRecord) -> None:
        """A tweet a hit replies to, quotes or retweets: real, and paid for anyway."""
        self._records.setdefault(record.id, record)

    def reject(self, tweet: object, reason: object) -> None:
        """A hit that cannot become a record: counted, never raised."""
        self.rejected += 1
        logger.debug("rejected tweet {}: {}", tweet, reason)

    def finish(self, source: str) -> SearchResult:
        """The result, logged the same way for every source."""
        result = SearchResult(
            records=sorted(self._records.values(), key=lambda r: r.id, reverse=True),
            newest_id=max(self._hits, default=None),
            rejected=self.rejected,
        )
        logger.info(
            "{} search {!r}: {} tweets, {} rejected, newest {}",
            source,
            self.query,
            len(result.records),
            result.rejected,
            result.newest_id,
        )
        return result
