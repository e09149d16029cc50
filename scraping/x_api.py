"""TweetSource over the official X API v2, through tweepy.

tweepy's Client is synchronous and has no timeout; each call runs in a worker thread
(`asyncio.to_thread`) so the event loop never blocks, and a transport adapter gives every
request a timeout. Retries are ours, not tweepy's (`wait_on_rate_limit=False`): a 429 waits
until `x-rate-limit-reset` (plus RESET_SPREAD) only while that stays under `max_wait_s`, 5xx
and network errors (and a 429 without a reset time) back off by RETRY_BACKOFF for a bounded
number of tries, and refused credentials fail at once.
A 429 whose body is X's `UsageCapExceeded` problem (the plan's monthly post cap is spent)
also fails at once, as SourceUsageCapped: its rate-limit headers look like an ordinary
window that resets in minutes, but the cap does not.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from ipaddress import ip_address
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
import tweepy
from loguru import logger
from requests.adapters import HTTPAdapter

from d3.record import TweetRecord
from d3.retry import Backoff
from scraping.common import SearchHits, finish_lookup, parse_id, start_lookup
from scraping.normalize import (
    EXPANSIONS,
    MEDIA_FIELDS,
    REFERENCED_EXPANSIONS,
    TWEET_FIELDS,
    USER_FIELDS,
    normalize_payload,
)
from scraping.source import (
    LookupResult,
    SearchResult,
    SourceAuthError,
    SourceEntry,
    SourceError,
    SourceSettings,
    SourceUnavailable,
    SourceUsageCapped,
)

X_API_HOST = "https://api.twitter.com"
USAGE_CAPPED_TYPE = "https://api.twitter.com/2/problems/usage-capped"
PAGE_MAX = 100  # max_results cap of recent search and of look-ups
PAGE_MIN = 10  # X refuses max_results below 10
# Between tries after a 5xx or a network error; `backoff_s` replaces the base, `max_wait_s`
# bounds each wait.
RETRY_BACKOFF = Backoff(1.0, jitter=0.5)
# Past a rate-limit reset, so clients limited together do not all come back at one instant.
RESET_SPREAD = Backoff(1.0, jitter=0.5)
Sleep = Callable[[float], Awaitable[None]]


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class _XAdapter(HTTPAdapter):
    """Adds a default timeout, and optionally sends api.twitter.com requests elsewhere."""

    def __init__(self, base_url: str | None, timeout_s: float) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout_s = timeout_s

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        url = request.url or ""
        if self.base_url and url.startswith(X_API_HOST + "/"):
            request.url = self.base_url + url[len(X_API_HOST) :]
            if _is_loopback(self.base_url):
                # Proxies were chosen for api.twitter.com; a loopback server must bypass them.
                kwargs["proxies"] = {}
        return super().send(request, **kwargs)


def redirect_session(
    client_or_session: tweepy.Client | requests.Session,
    base_url: str | None,
    *,
    timeout_s: float = 30.0,
) -> requests.Session:
    """Mount the X adapter on a tweepy client's session (or a session) and return it.

    With `base_url`, requests tweepy makes to https://api.twitter.com go to `base_url`
    instead (a local X server); without, only the timeout is added.
    """
    session = (
        client_or_session.session
        if isinstance(client_or_session, tweepy.Client)
        else client_or_session
    )
    session.mount(X_API_HOST + "/", _XAdapter(base_url, timeout_s))
    return session


def _status(exc: tweepy.HTTPException) -> int:
    return getattr(exc.response, "status_code", 0)


def _error_ids(error: dict[str, Any]) -> set[int]:
    """The tweet IDs an entry of a look-up's `errors` is about.

    `resource_id` when X gives one; else `value`, but only on `parameter: "ids"`, where the
    value is one of the IDs we asked for (X often leaves `resource_id` out there). On other
    parameters (`referenced_tweets.id`, ...) `value` need not be a tweet we asked about.
    """
    ids: set[int] = set()
    resource_id = str(error.get("resource_id", ""))
    if resource_id.isdigit():
        ids.add(int(resource_id))
    value = str(error.get("value", ""))
    if error.get("parameter") == "ids" and value.isdigit():
        ids.add(int(value))
    return ids


def _describe(exc: tweepy.HTTPException) -> str:
    """tweepy's message on one line: status, reason, then X's own messages."""
    head = f"{_status(exc)} {getattr(exc.response, 'reason', '')}".strip()
    messages = "; ".join(" ".join(str(m).split()) for m in exc.api_messages)
    return f"{head}: {messages}" if messages else head


def _usage_cap(exc: tweepy.TooManyRequests) -> str | None:
    """X's description of the spent cap when this 429 is the usage cap, else None.

    Only the body tells the two 429s apart (tweepy keeps no `title`/`type` of a problem
    without `errors`), so it is read again here; an unreadable body is a rate limit.
    """
    try:
        body = exc.response.json()
    except (ValueError, AttributeError):
        return None
    if not isinstance(body, dict):
        return None
    if body.get("type") != USAGE_CAPPED_TYPE and body.get("title") != "UsageCapExceeded":
        return None
    detail = " ".join(str(body.get("detail") or "Usage cap exceeded").split())
    product = body.get("product_name")
    return f"{detail} (product {product})" if product else detail


class XApiSource:
    """Search and look-ups on X API v2 with an app bearer token."""

    def __init__(
        self,
        bearer_token: str,
        *,
        session: requests.Session | None = None,
        api_base_url: str | None = None,
        search_endpoint: Literal["recent", "all"] = "recent",
        max_retries: int = 4,
        max_wait_s: float = 900.0,
        backoff_s: float = RETRY_BACKOFF.base_s,
        timeout_s: float = 30.0,
        include_referenced: bool = False,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        name: str = "x_api",
    ) -> None:
        """`max_wait_s` bounds any single wait (X's rate windows are 15 minutes);
        `backoff_s` is the wait after the first failure of a call (RETRY_BACKOFF);
        `include_referenced` also returns the replied-to/quoted/retweeted tweets that
        searches pull in; `sleep`, `clock` and `rng` exist so tests need not wait."""
        if search_endpoint not in ("recent", "all"):
            raise ValueError(f"search_endpoint must be 'recent' or 'all', not {search_endpoint!r}")
        if not bearer_token:
            raise SourceAuthError("no X bearer token configured")
        self.name = name
        self._client = tweepy.Client(
            bearer_token=bearer_token, return_type=dict, wait_on_rate_limit=False
        )
        if session is not None:
            self._client.session = session
        redirect_session(self._client, api_base_url, timeout_s=timeout_s)
        self._search = (
            self._client.search_all_tweets
            if search_endpoint == "all"
            else self._client.search_recent_tweets
        )
        self._max_retries = max_retries
        self._max_wait_s = max_wait_s
        self._backoff = dataclasses.replace(RETRY_BACKOFF, base_s=backoff_s, rng=rng)
        self._reset_spread = dataclasses.replace(RESET_SPREAD, rng=rng)
        self._include_referenced = include_referenced
        self._sleep = sleep
        self._clock = clock
        self._fields: dict[str, Any] = {
            "expansions": [*EXPANSIONS, *(REFERENCED_EXPANSIONS if include_referenced else ())],
            "tweet_fields": list(TWEET_FIELDS),
            "user_fields": list(USER_FIELDS),
            "media_fields": list(MEDIA_FIELDS),
        }

    async def search(
        self,
        query: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        since_id: int | None = None,
        limit: int = 100,
    ) -> SearchResult:
        """Pages through results newest first until `limit` tweets or the end.

        A page that fails after retries fails the whole search, so a caller resuming from
        its previous `since_id` never skips the tweets that page would have held.
        """
        hits = SearchHits(query, limit, since, until, since_id)
        params: dict[str, Any] = {
            "query": query,
            "since_id": since_id,
            "start_time": since,
            "end_time": until,
            **self._fields,
        }
        taken = 0
        # Pages without tweets still carry a token now and then; don't follow them forever.
        max_pages = -(-limit // PAGE_MIN) + 2
        for _ in range(max_pages):
            if taken >= limit:
                break
            params["max_results"] = max(PAGE_MIN, min(PAGE_MAX, limit - taken))
            payload = await self._call("search", self._search, params)
            data = (payload.get("data") or [])[: limit - taken]
            taken += len(data)
            page = normalize_payload(
                {**payload, "data": data}, self.name, include_referenced=self._include_referenced
            )
            # X applies the bounds itself, exactly: only the ID bound is checked again.
            hit: set[int] = set()
            for tweet in data:
                number = parse_id(tweet.get("id")) if isinstance(tweet, dict) else None
                if number is not None and hits.hit(number):
                    hit.add(number)
            for record in page.records:
                if record.id in hit:
                    hits.keep(record)
                else:  # a referenced tweet from includes (include_referenced)
                    hits.bonus(record)
            hits.rejected += page.rejected
            token = (payload.get("meta") or {}).get("next_token")
            if not token:
                break
            params["next_token"] = token
        return hits.finish(self.name)

    async def lookup(self, ids: Sequence[int]) -> LookupResult:
        """Batches of 100; an outage fails only the batches it hit (into `failed`).

        Refused credentials and a spent usage cap raise instead: every later batch would
        fail the same way, and the caller should hear it once, not once per batch.
        """
        result, wanted = start_lookup(ids)
        for start in range(0, len(wanted), PAGE_MAX):
            batch = wanted[start : start + PAGE_MAX]
            try:
                payload = await self._call(
                    "lookup", self._client.get_tweets, {"ids": batch, **self._fields}
                )
            except (SourceAuthError, SourceUsageCapped):
                raise
            except SourceError as exc:
                logger.warning("x lookup of {} IDs got no answer: {}", len(batch), exc)
                result.failed.update(batch)
                result.errored.update(batch)
                continue
            self._sort_lookup(batch, payload, result)
        return finish_lookup(self.name, result)

    def _sort_lookup(self, batch: list[int], payload: dict[str, Any], result: LookupResult) -> None:
        asked = set(batch)
        page = normalize_payload(payload, self.name)
        found: dict[int, TweetRecord] = {r.id: r for r in page.records if r.id in asked}
        # Errors also name referenced tweets we did not ask for; only ours count as missing.
        missing = {
            tweet_id
            for e in payload.get("errors") or ()
            if isinstance(e, dict)
            for tweet_id in _error_ids(e)
            if tweet_id in asked
        } - found.keys()
        result.found.update(found)
        result.missing |= missing
        result.settle(asked)  # unreadable answers, IDs X stayed silent about

    async def _call(
        self, what: str, method: Callable[..., Any], params: dict[str, Any]
    ) -> dict[str, Any]:
        """One API call with our retry policy; the raw JSON payload."""
        failures = 0
        while True:
            try:
                return await asyncio.to_thread(method, **params)
            except (tweepy.Unauthorized, tweepy.Forbidden) as exc:
                raise SourceAuthError(
                    f"X API refused the request ({_describe(exc)}); check the bearer token "
                    "and that the account's plan allows this endpoint"
                ) from None
            except tweepy.TooManyRequests as exc:
                if (cap := _usage_cap(exc)) is not None:
                    raise SourceUsageCapped(
                        f"X API {what} refused, 429 {cap}: the cap lifts only when its period "
                        "rolls over or the plan is raised, so not retrying"
                    ) from None
                failures += 1
                wait, why = self._rate_limit_wait(exc, failures), "rate limited (429)"
            except tweepy.TwitterServerError as exc:
                failures += 1
                wait, why = self._backoff_wait(failures), f"server error {_status(exc)}"
            except tweepy.HTTPException as exc:
                raise SourceError(f"X API {what} failed: {_describe(exc)}") from None
            except requests.RequestException as exc:
                failures += 1
                wait, why = self._backoff_wait(failures), f"network error {type(exc).__name__}"
            if failures > self._max_retries:
                raise SourceUnavailable(f"X API {what}: {why}, gave up after {failures} tries")
            logger.warning(
                "x {}: {}; retry {}/{} in {:.1f}s", what, why, failures, self._max_retries, wait
            )
            await self._sleep(wait)

    def _backoff_wait(self, failures: int) -> float:
        return min(self._backoff.delay(failures), self._max_wait_s)

    def _rate_limit_wait(self, exc: tweepy.TooManyRequests, failures: int) -> float:
        """Seconds until the window resets, then a spread; past `max_wait_s` is an outage.

        The reset time, when X gives one, wins over the backoff: retrying earlier would
        only be refused again. Without one, the 429 backs off like a server error.
        """
        reset = exc.reset_time
        if reset is None:
            header = exc.response.headers.get("x-rate-limit-reset", "")
            reset = int(header) if header.isdigit() else None
        if reset is None:
            return self._backoff_wait(failures)
        wait = max(0.0, reset - self._clock()) + self._reset_spread.delay(1)
        if wait > self._max_wait_s:
            raise SourceUnavailable(
                f"X API rate limit resets in {wait:.0f}s, beyond max_wait_s={self._max_wait_s:.0f}"
            )
        return wait


def from_settings(settings: SourceSettings) -> XApiSource:
    """An XApiSource from the neurons' flags (the registry's constructor)."""
    token = settings.required("x_bearer_token")
    wait = {} if settings.max_wait_s is None else {"max_wait_s": settings.max_wait_s}
    return XApiSource(token, api_base_url=settings.x_api_base_url, **wait)


SOURCE = SourceEntry("x_api", from_settings)
