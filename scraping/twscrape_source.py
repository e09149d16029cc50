"""TweetSource over twscrape: X's own web GraphQL API through a pool of logged-in accounts.

For miners without an X API plan. `twscrape` is an optional extra (`pip install
'd3-subnet[twscrape]'`) and is imported only when a TwscrapeSource is built, so the rest of
D3 never depends on it.

Accounts come from a file, or from the environment variable D3_TWSCRAPE_ACCOUNTS, one per
line as `username:password:email:email_password[:cookies]`. With cookies (a Cookie header
`auth_token=...; ct0=...`, JSON or base64, whatever twscrape accepts) the account is used
as it is and never logs in with its password, which is how most operators run twscrape
today; without, twscrape logs in once (password, e-mail code) and keeps the session in
`db_path`. Everything after the fourth colon is the cookie value, so cookies may contain
colons; the password may not. Accounts already in `db_path` are left as they are.

Rate limits are twscrape's business: its AccountsPool locks an account per GraphQL queue
until X's reset time and rotates to the next one. We only bound how long a call waits for
a free account (`max_wait_s`) and translate "none left" into SourceUnavailable, or into
SourceAuthError when no account is active at all (every one banned or logged out: an
operator has to act).

twscrape 0.20 counts its requests for PostHog telemetry (sent only from its CLI, but
counted and keyed by a hashed machine ID in library use too). It is switched off here
through its documented switch, TWS_TELEMETRY=0, unless `telemetry=True`.

What cannot match X API v2 exactly, and what we do about it:

- Retweets are never recorded. X gives a retweet's text as a truncated "RT @user: …" copy
  and twscrape rewrites it to the full text, so the record would differ from what a
  validator reads from X API v2 and would fail verification. Search counts them as
  rejected; a look-up reports them as failed (no signal either way). The retweeted
  tweet itself is kept with `include_referenced=True`.
- Media URLs are photos, then videos, then GIFs (twscrape groups them by type). Validators
  compare lists as sets and count what a row lacks as staleness (docs/protocol.md), so
  the order cannot cost a miner. twscrape lists a long post's links twice; the one list
  rule (scraping.common.capped) drops repeats before it caps, as for every source.
- A long post's hashtags are read from the page itself (`note_hashtags`): twscrape takes
  them from the entities of the post's first 280 characters only.

Search hits are read from the raw pages (`search_raw`), not from twscrape's `search`:
its parser yields every tweet object in a page, so the tweets a hit quotes came back as
hits of their own, and it drops any tweet that a retweet in the same page points at, even
one the search returned. A hit is a tweet object not nested in another tweet.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
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

EXTRA = "twscrape"  # the pip extra (setup.py) that installs twscrape
INSTALL_HINT = install_hint(EXTRA)
ACCOUNTS_ENV = "D3_TWSCRAPE_ACCOUNTS"
DEFAULT_DB_PATH = Path("~/.d3/twscrape-accounts.db")
# Error text and result types X uses for a tweet that is gone or cannot be seen.
_GONE_MARKERS = ("No status found", "_Missing", "TweetTombstone", "TweetUnavailable")
# GraphQL types of a tweet object; the second wraps the tweet in `tweet`.
_TWEET_TYPES = ("Tweet", "TweetWithVisibilityResults")


@dataclass(frozen=True)
class TwscrapeAccount:
    """One X account for the pool; `cookies` set means cookie login (no password login)."""

    username: str
    password: str
    email: str
    email_password: str
    cookies: str | None = None

    def __repr__(self) -> str:
        # Never print secrets: a repr ends up in logs and tracebacks.
        mode = "cookies" if self.cookies else "password"
        return f"TwscrapeAccount(username={self.username!r}, login={mode})"


def parse_accounts(text: str) -> list[TwscrapeAccount]:
    """Accounts from `username:password:email:email_password[:cookies]` lines.

    Blank lines and lines starting with '#' are skipped. A bad line raises ValueError
    naming its line number only, since the line itself holds a password.
    """
    accounts: list[TwscrapeAccount] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":", 4)
        if len(parts) < 4 or not all(p.strip() for p in parts[:4]):
            raise ValueError(
                f"twscrape accounts line {number}: want "
                "username:password:email:email_password[:cookies]"
            )
        username, password, email, email_password = (p.strip() for p in parts[:4])
        if username.lower() in seen:
            raise ValueError(f"twscrape accounts line {number}: {username} is listed twice")
        seen.add(username.lower())
        cookies = parts[4].strip() if len(parts) == 5 and parts[4].strip() else None
        accounts.append(TwscrapeAccount(username, password, email, email_password, cookies))
    return accounts


class _KeepSinks:
    """Stands in for loguru's logger while twscrape is first imported.

    twscrape's logger module calls `logger.remove()` and adds its own stderr sink at import
    time, which would silently delete the sinks the miner configured (its log file among
    them). Every other call goes to the real logger, so twscrape's messages still reach
    our sinks.
    """

    def __init__(self, real: Any) -> None:
        self._real = real

    def remove(self, *args: Any, **kwargs: Any) -> None:
        return None

    def add(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def import_twscrape() -> ModuleType:
    """The twscrape module, or ImportError with the one line that fixes it."""
    loaded = sys.modules.get("twscrape")
    if loaded is not None:
        return loaded
    import loguru

    real = loguru.logger
    loguru.logger = _KeepSinks(real)  # type: ignore[assignment]
    try:
        import twscrape
    except ImportError:
        raise ImportError(f"the twscrape source needs twscrape: {INSTALL_HINT}") from None
    finally:
        loguru.logger = real
    return twscrape


def is_retweet(tweet: Any) -> bool:
    return getattr(tweet, "retweetedTweet", None) is not None


def tweet_to_record(
    tweet: Any,
    source: str,
    now: datetime | None = None,
    notes: Mapping[int, Sequence[str]] | None = None,
) -> TweetRecord:
    """A twscrape `Tweet` as a record; raises ValueError with the reason.

    Field by field: id, rawContent (a long post's full note text), date, user.id,
    user.username, lang ("" → None), conversationId, inReplyToTweetId, quotedTweet.id,
    retweetedTweet.id, like/retweet/reply/quoteCount, viewCount, hashtags (a long post's
    from `notes`, see `note_hashtags`), links[].url (the expanded URL; never the tweet's
    own photo/video page), media photos[].url + videos[]/animated[].thumbnailUrl (what
    X API v2 calls url / preview_image_url); lists by scraping.common's rule. `url` is
    rebuilt with d3.record.tweet_url.
    """
    try:
        user = tweet.user
        media = tweet.media
        quoted = tweet.quotedTweet
        retweeted = tweet.retweetedTweet
        return TweetRecord(
            id=tweet.id,
            text=tweet.rawContent,
            created_at=tweet.date,
            author_id=user.id,
            author_username=user.username,
            lang=tweet.lang or None,
            conversation_id=tweet.conversationId or None,
            in_reply_to_id=tweet.inReplyToTweetId,
            quoted_id=quoted.id if quoted is not None else None,
            retweeted_id=retweeted.id if retweeted is not None else None,
            like_count=tweet.likeCount or 0,
            retweet_count=tweet.retweetCount or 0,
            reply_count=tweet.replyCount or 0,
            quote_count=tweet.quoteCount or 0,
            view_count=tweet.viewCount,
            hashtags=capped((notes or {}).get(tweet.id, tweet.hashtags or ())),
            urls=capped(
                link.url for link in tweet.links or () if not is_media_page(link.url, tweet.id)
            ),
            media_urls=capped(
                [
                    *(p.url for p in media.photos),
                    *(v.thumbnailUrl for v in media.videos),
                    *(a.thumbnailUrl for a in media.animated),
                ]
            ),
            url=tweet_url(user.username, tweet.id),
            source=source,
            scraped_at=now or datetime.now(UTC),
        )
    except ValidationError as exc:
        raise ValueError(str(first_error(exc))) from None
    except (AttributeError, TypeError) as exc:
        raise ValueError(f"not a twscrape tweet: {exc}") from None


def _tweet_objects(node: Any, nested: bool) -> Iterator[Mapping[str, Any]]:
    """The GraphQL tweet objects in `node`, by `__typename` (X changes the timeline's
    layout, not that), unwrapped from a visibility wrapper; with `nested`, also those
    inside a tweet object (the tweets it quotes or retweets)."""
    if isinstance(node, Mapping):
        kind = node.get("__typename")
        if kind in _TWEET_TYPES:
            tweet = node.get("tweet") if kind == "TweetWithVisibilityResults" else node
            if isinstance(tweet, Mapping):
                yield tweet
            if not nested:
                return
        for value in node.values():
            yield from _tweet_objects(value, nested)
    elif isinstance(node, list):
        for value in node:
            yield from _tweet_objects(value, nested)


def note_hashtags(body: Any) -> dict[int, list[str]]:
    """The hashtags of every long post in a GraphQL body, by tweet ID.

    X's web API gives a long post's `legacy` entities for its first 280 characters only,
    and the whole post's in `note_tweet…entity_set`, which twscrape reads for links but
    not for hashtags; X API v2 gives the whole post's. Without these a long post's
    hashtags would differ between the sources.
    """
    found: dict[int, list[str]] = {}
    for tweet in _tweet_objects(body, nested=True):
        note = (tweet.get("note_tweet") or {}).get("note_tweet_results") or {}
        entities = (note.get("result") or {}).get("entity_set") or {}
        number = parse_id(tweet.get("rest_id"))
        if number is not None and isinstance(entities.get("hashtags"), list):
            found[number] = [h.get("text") for h in entities["hashtags"] if isinstance(h, Mapping)]
    return found


def hit_ids(body: Any) -> list[int]:
    """IDs of the tweets a search page returned, in page order, each once.

    Those are the tweet objects not nested in another tweet object. Everything a tweet
    holds (the tweet it quotes, the one it retweets) is not walked into: it was not
    returned, only referenced. The walk does not rely on the timeline's layout, which X
    changes, only on GraphQL's `__typename`, which twscrape relies on too.
    """
    ids = (parse_id(tweet.get("rest_id")) for tweet in _tweet_objects(body, nested=False))
    return list(dict.fromkeys(number for number in ids if number is not None))


class TwscrapeSource:
    """Search and look-ups on X through twscrape's account pool."""

    def __init__(
        self,
        accounts_file: str | os.PathLike[str] | None = None,
        *,
        accounts: str | None = None,
        db_path: str | os.PathLike[str] = DEFAULT_DB_PATH,
        proxy: str | None = None,
        login: bool = True,
        max_wait_s: float = 900.0,
        lookup_concurrency: int = 4,
        include_referenced: bool = False,
        telemetry: bool = False,
        api: Any = None,
        name: str = "twscrape",
    ) -> None:
        """`accounts` is the file's text (what D3_TWSCRAPE_ACCOUNTS holds); with neither it
        nor `accounts_file`, the environment variable is read, and with that unset too only
        accounts already in `db_path` are used. `login=False` never logs in with a password
        (cookie accounts only). `api` replaces twscrape's API object (tests); it must have
        a `pool` (an AccountsPool) and the methods this class calls."""
        if lookup_concurrency < 1:
            raise ValueError("lookup_concurrency must be >= 1")
        if accounts_file is not None and accounts is not None:
            raise ValueError("give accounts_file or accounts, not both")
        if accounts_file is not None:
            text = Path(accounts_file).expanduser().read_text()
        elif accounts is not None:
            text = accounts
        else:
            text = os.environ.get(ACCOUNTS_ENV, "")
        self._accounts = parse_accounts(text)
        if not telemetry:
            # twscrape reads this switch on every event, so setting it once is enough.
            os.environ["TWS_TELEMETRY"] = "0"
        self._tw = import_twscrape()
        self.name = name
        self.db_path = Path(db_path).expanduser()
        self._login = login
        self._include_referenced = include_referenced
        self._lookup_concurrency = lookup_concurrency
        if api is None:
            pool = self._tw.AccountsPool(
                db_file=str(self.db_path),
                raise_when_no_account=True,
                wait_timeout=max_wait_s,
                wait_interval=min(5.0, max_wait_s),
            )
            api = self._tw.API(pool, proxy=proxy)
        self._api = api
        self._pool = api.pool
        self._ready = False
        self._ready_lock: asyncio.Lock | None = None

    # -- accounts -------------------------------------------------------------------------

    async def ensure_ready(self) -> None:
        """Add the configured accounts to the pool and log in the password ones, once.

        Raises SourceAuthError when no account ends up active.
        """
        if self._ready:
            return
        if self._ready_lock is None:
            self._ready_lock = asyncio.Lock()
        async with self._ready_lock:
            if self._ready:
                return
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            for account in self._accounts:
                if await self._pool.get_account(account.username) is not None:
                    logger.debug("twscrape account {} already in the pool", account.username)
                    continue
                try:
                    await self._pool.add_account(
                        account.username,
                        account.password,
                        account.email,
                        account.email_password,
                        cookies=account.cookies,
                    )
                except ValueError:
                    raise SourceAuthError(
                        f"twscrape account {account.username}: cookies are not readable"
                    ) from None
            if self._login:
                outcome = await self._pool.login_all()
                if outcome.get("total"):
                    logger.info("twscrape logins: {}", outcome)
            active = await self._active_accounts()
            if not active:
                raise SourceAuthError(
                    f"no active twscrape account in {self.db_path}: add accounts with cookies "
                    f"(file or {ACCOUNTS_ENV}) or fix the failed logins"
                )
            logger.info("twscrape pool ready: {} active accounts", active)
            self._ready = True

    async def _active_accounts(self) -> int:
        stats = await self._pool.stats()
        return int(stats.get("active") or 0)

    async def _no_account(self, what: str) -> SourceError:
        """NoAccountError means every account is locked or none is active."""
        if await self._active_accounts() == 0:
            return SourceAuthError(f"twscrape {what}: no account left (banned or logged out)")
        return SourceUnavailable(f"twscrape {what}: every account is rate limited")

    @contextlib.asynccontextmanager
    async def _errors(self, what: str) -> AsyncIterator[None]:
        """twscrape's failures as SourceErrors (ours pass through)."""
        try:
            yield
        except SourceError:
            raise
        except self._tw.NoAccountError:
            raise await self._no_account(what) from None
        except getattr(self._tw, "GqlFeaturesOutdatedError", ()) as exc:  # twscrape >= 0.20
            raise SourceError(f"twscrape {what}: X changed its API, upgrade: {exc}") from None

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
        """Newest first, at most `limit` matching tweets (retweets count, as rejected)."""
        hits = SearchHits(query, limit, since, until, since_id)
        if limit < 1:
            return SearchResult()
        await self.ensure_ready()
        now = datetime.now(UTC)
        pages = self._api.search_raw(bounded_query(query, since, until, since_id), limit=limit)
        async with self._errors("search"), contextlib.aclosing(pages):
            async for page in pages:
                body = page if isinstance(page, Mapping) else page.json()
                notes = note_hashtags(body)
                for tweet in self._page_hits(body):
                    if hits.hit(tweet.id, tweet.date):
                        self._keep(tweet, hits, now, notes)
                if not hits.room:
                    break
        return hits.finish(self.name)

    def _page_hits(self, body: Any) -> Iterator[Any]:
        """The parsed tweets of one search page that the search returned (see `hit_ids`).

        twscrape leaves out of its parse every tweet some retweet in the page points at;
        such a tweet, when it is a hit too, is taken from that retweet's parse instead.
        A hit twscrape could not parse at all is skipped (twscrape logs it).
        """
        parsed: dict[int, Any] = {}
        for tweet in self._tw.parse_tweets(body):
            parsed.setdefault(tweet.id, tweet)
        for tweet in list(parsed.values()):
            if is_retweet(tweet):
                parsed.setdefault(tweet.retweetedTweet.id, tweet.retweetedTweet)
        for tweet_id in hit_ids(body):
            if tweet_id in parsed:
                yield parsed[tweet_id]

    def _keep(
        self, tweet: Any, hits: SearchHits, now: datetime, notes: Mapping[int, Sequence[str]]
    ) -> None:
        """Record a search hit (and, if asked, the tweets it quotes or retweets)."""
        extra = [tweet.quotedTweet, tweet.retweetedTweet] if self._include_referenced else []
        if is_retweet(tweet):
            hits.reject(tweet.id, "a retweet: its text cannot match X's")
        else:
            try:
                hits.keep(tweet_to_record(tweet, self.name, now, notes))
            except ValueError as exc:
                hits.reject(tweet.id, exc)
        for ref in extra:
            if ref is None or is_retweet(ref):
                continue
            with contextlib.suppress(ValueError):  # a bonus tweet; no need to count it
                hits.bonus(tweet_to_record(ref, self.name, now, notes))

    async def lookup(self, ids: Sequence[int]) -> LookupResult:
        """One TweetDetail request per ID, a few at a time; every ID lands in one set."""
        result, wanted = start_lookup(ids)
        if not wanted:
            return result
        await self.ensure_ready()
        gate = asyncio.Semaphore(self._lookup_concurrency)
        now = datetime.now(UTC)

        async def one(tweet_id: int) -> None:
            async with gate:
                await self._lookup_one(tweet_id, result, now)

        await asyncio.gather(*(one(i) for i in wanted))
        return finish_lookup(self.name, result)

    async def _lookup_one(self, tweet_id: int, result: LookupResult, now: datetime) -> None:
        try:
            async with self._errors("lookup"):
                response = await self._api.tweet_details_raw(tweet_id)
        except SourceAuthError:
            raise
        except SourceError as exc:
            logger.warning("twscrape lookup of {} got no answer: {}", tweet_id, exc)
            result.failed.add(tweet_id)
            result.errored.add(tweet_id)
            return
        if response is None:  # twscrape gave up on this request (blocked, aborted)
            result.failed.add(tweet_id)
            result.errored.add(tweet_id)
            return
        body = response if isinstance(response, Mapping) else response.json()
        tweet = self._tw.parse_tweet(body, tweet_id)
        if tweet is None:
            gone = any(marker in str(body) for marker in _GONE_MARKERS)
            (result.missing if gone else result.failed).add(tweet_id)
            return
        # A retweet is returned as one (`retweeted_id` set): retweets earn nothing, so a
        # validator asks about one only when a row claims it is not one, an alteration.
        try:
            result.found[tweet_id] = tweet_to_record(tweet, self.name, now, note_hashtags(body))
        except ValueError as exc:
            logger.debug("lookup of {}: unreadable tweet: {}", tweet_id, exc)
            result.failed.add(tweet_id)


def from_settings(settings: SourceSettings) -> TwscrapeSource:
    """A TwscrapeSource from the neurons' flags (the registry's constructor)."""
    wait = {} if settings.max_wait_s is None else {"max_wait_s": settings.max_wait_s}
    return TwscrapeSource(accounts_file=settings.twscrape_accounts, **wait)


SOURCE = SourceEntry("twscrape", from_settings, extra=EXTRA)
