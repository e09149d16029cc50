"""TweetSource over an Apify tweet-scraper Actor, through the optional `apify-client`.

For miners who would rather pay per result than run X accounts. `apify-client` is an
optional dependency (`pip install 'd3-subnet[apify]'`) imported only when an ApifySource
is built. Each search or look-up is one Actor run: start it, wait for it to finish, read its
default dataset.

The Actor is `apidojo/tweet-scraper` ("Tweet Scraper V2") unless `actor_id` says
otherwise. Input we send: `searchTerms` (one X search query, with X's `since_id:`,
`since_time:` and `until_time:` operators for the bounds), `sort: "Latest"`, `maxItems`;
for look-ups `startUrls` of `https://x.com/i/status/<id>`. `extra_input` is merged in for
Actor-specific options. The run is also started with `maxItems`, which caps what a
pay-per-result Actor can charge.

Output items are mapped field by field (`item_to_record`):

| TweetRecord       | Actor item field                                                |
| ----------------- | --------------------------------------------------------------- |
| id                | `id` (string or number)                                         |
| text              | `fullText` if present, else `text`                              |
| created_at        | `createdAt`: X's "Fri Nov 24 17:49:36 +0000 2023" or ISO 8601    |
| author_id         | `author.id`                                                     |
| author_username   | `author.userName` (or `author.username` / `author.screen_name`) |
| lang              | `lang`                                                          |
| conversation_id   | `conversationId`                                                |
| in_reply_to_id    | `inReplyToId`                                                   |
| quoted_id         | `quote.id` / `quoted_tweet.id`, else `quoteId`                  |
| retweeted_id      | `retweet.id` / `retweeted_tweet.id`                             |
| like/retweet/reply/quote counts | `likeCount`, `retweetCount`, `replyCount`, `quoteCount` |
| view_count        | `viewCount`                                                     |
| hashtags          | `entities.hashtags[].text`                                      |
| urls              | `entities.urls[].expanded_url` (else `.url`), less the media's  |
|                   | own link (see scraping.normalize)                               |
| media_urls        | `extendedEntities.media[].media_url_https` (a video's is its    |
|                   | thumbnail, the same URL X API v2 calls preview_image_url)       |
| url               | rebuilt with d3.record.tweet_url (items may carry twitter.com)  |

Items that are not tweets (`noResults` markers, `type` other than "tweet") are skipped.
Retweets are never recorded, as in scraping.twscrape_source: a retweet's text is a
truncated copy that scrapers render differently from X API v2, so the record could fail a
validator's check; the retweeted tweet is kept with `include_referenced=True`.

Failures: a refused token (401/403) or an unpaid account (402) is SourceAuthError; an
unknown Actor (404) is SourceError; anything else (network, 5xx after the client's own
retries, a run that failed or timed out) is SourceUnavailable. A search whose run did not
succeed raises rather than returning part of the results, so a caller's `since_id` never
skips tweets; a look-up keeps what it got and reports the rest as failed, since an Actor
cannot tell a deleted tweet from one it failed to reach.
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

from loguru import logger
from pydantic import ValidationError

from d3.errors import first_error
from d3.record import TweetRecord, tweet_url
from scraping.common import (
    SearchHits,
    bounded_query,
    capped,
    finish_lookup,
    is_media_page,
    optional_id,
    parse_id,
    start_lookup,
)
from scraping.source import (
    LookupResult,
    SearchResult,
    SourceAuthError,
    SourceEntry,
    SourceError,
    SourceSettings,
    SourceUnavailable,
    install_hint,
)

EXTRA = "apify"  # the pip extra (setup.py) that installs apify-client
INSTALL_HINT = install_hint(EXTRA)
DEFAULT_ACTOR = "apidojo/tweet-scraper"
LOOKUP_BATCH = 100  # tweet URLs per look-up run
Json = Mapping[str, Any]


def import_apify_client() -> ModuleType:
    """The apify_client module, or ImportError with the one line that fixes it."""
    try:
        import apify_client
    except ImportError:
        raise ImportError(f"the Apify source needs apify-client: {INSTALL_HINT}") from None
    return apify_client


def _created_at(raw: Any) -> datetime:
    """X's legacy format (what most Actors pass through) or ISO 8601."""
    if not isinstance(raw, str) or not raw:
        raise ValueError("no createdAt")
    if raw[:1].isdigit():
        return datetime.fromisoformat(raw)
    return email.utils.parsedate_to_datetime(raw)


def _ref_id(item: Json, *keys: str) -> int | None:
    for key in keys:
        ref = item.get(key)
        if isinstance(ref, Mapping) and (number := optional_id(ref.get("id"))) is not None:
            return number
    return None


def _written_links(item: Json, tweet_id: int) -> Iterable[str]:
    """`entities.urls` less the attached media's link, should an Actor list it there: by
    its t.co form (the one in `entities.media` / `extendedEntities.media`), `media_key`,
    or the tweet's own photo/video page it expands to."""
    entities = item.get("entities") or {}
    media = [
        *((item.get("extendedEntities") or {}).get("media") or ()),
        *(entities.get("media") or ()),
    ]
    media_tco = {m.get("url") for m in media if isinstance(m, Mapping) and m.get("url")}
    for entry in entities.get("urls") or ():
        link = entry.get("expanded_url") or entry.get("url")
        if entry.get("media_key") or entry.get("url") in media_tco:
            continue
        if link and not is_media_page(str(link), tweet_id):
            yield link


def is_tweet_item(item: Any) -> bool:
    """Whether a dataset item is a tweet at all (Actors also push 'no results' markers)."""
    return (
        isinstance(item, Mapping)
        and not item.get("noResults")
        and item.get("type", "tweet") == "tweet"
        and item.get("id") is not None
    )


def is_retweet_item(item: Json) -> bool:
    return bool(item.get("isRetweet")) or _ref_id(item, "retweet", "retweeted_tweet") is not None


def item_to_record(item: Json, source: str = "apify", now: datetime | None = None) -> TweetRecord:
    """One Actor output item as a record (mapping in the module docstring); raises
    ValueError with the reason."""
    try:
        author = item.get("author") or {}
        username = author.get("userName") or author.get("username") or author.get("screen_name")
        if not username or author.get("id") is None:
            raise ValueError("no author id or userName")
        tweet_id = parse_id(item.get("id"))
        if tweet_id is None:
            raise ValueError(f"id {item.get('id')!r} is not a tweet ID")
        entities = item.get("entities") or {}
        media = (item.get("extendedEntities") or {}).get("media") or ()
        quoted = _ref_id(item, "quote", "quoted_tweet")
        return TweetRecord(
            id=tweet_id,
            text=item.get("fullText") or item.get("text") or "",
            created_at=_created_at(item.get("createdAt")),
            author_id=int(author["id"]),
            author_username=username,
            lang=item.get("lang") or None,
            conversation_id=optional_id(item.get("conversationId")),
            in_reply_to_id=optional_id(item.get("inReplyToId")),
            quoted_id=quoted if quoted is not None else optional_id(item.get("quoteId")),
            retweeted_id=_ref_id(item, "retweet", "retweeted_tweet"),
            like_count=item.get("likeCount") or 0,
            retweet_count=item.get("retweetCount") or 0,
            reply_count=item.get("replyCount") or 0,
            quote_count=item.get("quoteCount") or 0,
            view_count=item.get("viewCount"),
            hashtags=capped(h.get("text") or h.get("tag") for h in entities.get("hashtags") or ()),
            urls=capped(_written_links(item, tweet_id)),
            media_urls=capped(m.get("media_url_https") for m in media),
            url=tweet_url(username, tweet_id),
            source=source,
            scraped_at=now or datetime.now(UTC),
        )
    except ValidationError as exc:
        raise ValueError(str(first_error(exc))) from None
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from None


class ApifySource:
    """Search and look-ups through runs of an Apify tweet-scraper Actor."""

    def __init__(
        self,
        token: str,
        *,
        actor_id: str = DEFAULT_ACTOR,
        api_url: str | None = None,
        run_timeout_s: float = 600.0,
        extra_input: Mapping[str, Any] | None = None,
        include_referenced: bool = False,
        max_retries: int = 4,
        retry_delay_s: float = 0.5,
        client: Any = None,
        name: str = "apify",
    ) -> None:
        """`api_url` points the client at another Apify API server (tests: a local one);
        `run_timeout_s` bounds each Actor run (and our wait for it); `max_retries` and
        `retry_delay_s` are the client's own retry policy for API requests."""
        if not token and client is None:
            raise SourceAuthError("no Apify API token configured")
        self._apify = import_apify_client()
        self.name = name
        self.actor_id = actor_id
        self._run_timeout = timedelta(seconds=run_timeout_s)
        self._extra_input = dict(extra_input or {})
        self._include_referenced = include_referenced
        if client is None:
            options: dict[str, Any] = {
                "max_retries": max_retries,
                "min_delay_between_retries": timedelta(seconds=retry_delay_s),
            }
            if api_url is not None:
                options |= {"api_url": api_url, "api_public_url": api_url}
            client = self._apify.ApifyClientAsync(token, **options)
        self._client = client

    # -- runs -----------------------------------------------------------------------------

    async def _run(self, what: str, run_input: dict[str, Any], max_items: int) -> list[Any]:
        """Run the Actor to completion and return its dataset items.

        Raises SourceUnavailable when the run did not succeed: a partial dataset is never
        mistaken for a complete answer.
        """
        errors = self._apify.errors
        run_input = {**run_input, **self._extra_input}
        try:
            run = await self._client.actor(self.actor_id).call(
                run_input=run_input,
                max_items=max_items,
                run_timeout=self._run_timeout,
                # Grace for the platform to stop a run that hit its own timeout.
                wait_duration=self._run_timeout + timedelta(seconds=60),
                logger=None,
            )
            if run is None:
                raise SourceUnavailable(f"apify {what}: the run vanished")
            if run.status != "SUCCEEDED":
                raise SourceUnavailable(
                    f"apify {what}: run {run.id} ended {run.status}"
                    + (f" ({run.status_message})" if run.status_message else "")
                )
            dataset = self._client.dataset(run.default_dataset_id)
            items = [item async for item in dataset.iterate_items(limit=max_items)]
        except SourceError:
            raise
        except (errors.UnauthorizedError, errors.ForbiddenError) as exc:
            raise SourceAuthError(f"Apify refused the token ({exc.status_code}): {exc}") from None
        except errors.NotFoundError as exc:
            raise SourceError(f"apify {what}: Actor {self.actor_id!r} not found: {exc}") from None
        except errors.ApifyApiError as exc:
            if exc.status_code == 402:
                raise SourceAuthError(f"Apify account cannot pay for the run: {exc}") from None
            raise SourceUnavailable(f"apify {what}: API error {exc.status_code}: {exc}") from None
        except Exception as exc:  # the HTTP layer (impit) has its own error types
            raise SourceUnavailable(f"apify {what}: {type(exc).__name__}: {exc}") from None
        logger.debug("apify {}: run {} gave {} items", what, run.id, len(items))
        return items

    # -- TweetSource ----------------------------------------------------------------------

    async def search(
        self,
        query: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        since_id: int | None = None,
        limit: int = 100,
    ) -> SearchResult:
        """One Actor run; newest first, at most `limit` tweets (retweets count, as rejected)."""
        hits = SearchHits(query, limit, since, until, since_id)
        if limit < 1:
            return SearchResult()
        run_input = {
            "searchTerms": [bounded_query(query, since, until, since_id)],
            "sort": "Latest",
            "maxItems": limit,
        }
        items = await self._run("search", run_input, limit)
        now = datetime.now(UTC)
        for item in items:
            if not hits.room:
                break
            if not is_tweet_item(item):
                continue
            number = parse_id(item.get("id"))
            if number is None:
                hits.reject(item.get("id"), "no tweet ID")
                continue
            try:
                created: datetime | None = _created_at(item.get("createdAt"))
            except ValueError:
                created = None  # a hit all the same; the record below is rejected
            if not hits.hit(number, created):
                continue
            if is_retweet_item(item):
                hits.reject(number, "a retweet: its text cannot match X's")
            else:
                try:
                    hits.keep(item_to_record(item, self.name, now))
                except ValueError as exc:
                    hits.reject(number, exc)
            if self._include_referenced:
                self._add_referenced(item, hits, now)
        return hits.finish(self.name)

    def _add_referenced(self, item: Json, hits: SearchHits, now: datetime) -> None:
        for key in ("quote", "quoted_tweet", "retweet", "retweeted_tweet"):
            ref = item.get(key)
            if not is_tweet_item(ref) or is_retweet_item(ref):
                continue
            try:
                hits.bonus(item_to_record(ref, self.name, now))
            except ValueError:
                continue  # nested copies are often partial; a bonus, not a loss

    async def lookup(self, ids: Sequence[int]) -> LookupResult:
        """One run per 100 IDs. IDs the Actor did not return are `failed`, not `missing`."""
        result, wanted = start_lookup(ids)
        now = datetime.now(UTC)
        for start in range(0, len(wanted), LOOKUP_BATCH):
            batch = wanted[start : start + LOOKUP_BATCH]
            run_input = {
                "startUrls": [f"https://x.com/i/status/{i}" for i in batch],
                "maxItems": len(batch),
            }
            try:
                items = await self._run("lookup", run_input, len(batch))
            except SourceAuthError:
                raise
            except SourceError as exc:
                logger.warning("apify lookup of {} IDs got no answer: {}", len(batch), exc)
                result.failed.update(batch)
                result.errored.update(batch)
                continue
            asked = set(batch)
            for item in items:
                # A retweet is returned as one (`retweeted_id` set): retweets earn nothing,
                # so a validator asks about one only when a row claims it is not one.
                if not is_tweet_item(item):
                    continue
                try:
                    record = item_to_record(item, self.name, now)
                except ValueError as exc:
                    logger.debug("apify lookup: unreadable item {}: {}", item.get("id"), exc)
                    continue
                if record.id in asked:
                    result.found[record.id] = record
            result.settle(asked)
        return finish_lookup(self.name, result)


def from_settings(settings: SourceSettings) -> ApifySource:
    """An ApifySource from the neurons' flags (the registry's constructor)."""
    return ApifySource(settings.required("apify_token"))


SOURCE = SourceEntry("apify", from_settings, extra=EXTRA)
