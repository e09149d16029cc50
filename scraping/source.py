"""The one interface every tweet source offers: miners search, validators look up.

Keeping both behind one protocol means the validator checks a miner's tweets with the same
normaliser that produced them, so a difference in a record is a difference on X, not in
our code.

A source module also declares a `SourceEntry`: its kind (the `--source.kind` choice), the
pip extra its dependencies come from, and how to build it from the neurons' flags
(`SourceSettings`). `scraping/factory.py` lists the entries; that list is the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from d3.record import TweetRecord


class SourceConfigError(ValueError):
    """The source cannot be built as configured; the message names what to change."""


class SourceError(Exception):
    """A source could not answer; subclasses say whether retrying later can help."""


class SourceAuthError(SourceError):
    """The credentials were refused (401/403): retrying cannot help, an operator must act."""


class SourceUnavailable(SourceError):
    """An outage or a rate limit outlasted our retries: try again later."""


class SourceUsageCapped(SourceError):
    """The plan's usage cap is spent (X's monthly post cap): unlike a rate limit it does not
    reset in minutes, so retrying soon cannot help; it lifts when the cap's period rolls
    over or an operator raises the plan. Not SourceUnavailable, whose callers retry soon."""


def require_aware(*bounds: datetime | None) -> None:
    """Search bounds are instants: a naive datetime would silently mean local time."""
    if any(b is not None and b.tzinfo is None for b in bounds):
        raise ValueError("since/until must be timezone-aware (UTC)")


def in_bounds(
    tweet_id: int,
    created_at: datetime,
    since: datetime | None,
    until: datetime | None,
    since_id: int | None,
) -> bool:
    """The search bounds applied again, client-side: scrapers honour X's operators loosely
    (and pages carry quoted tweets), and a cursor must never move past an unseen tweet."""
    if since_id is not None and tweet_id <= since_id:
        return False
    if since is not None and created_at < since:
        return False
    return until is None or created_at < until


@dataclass(slots=True)
class SearchResult:
    """Tweets from one search, newest first.

    `newest_id` is what the next search passes as `since_id`; None when nothing came back,
    in which case the caller keeps its previous `since_id`.
    """

    records: list[TweetRecord] = field(default_factory=list)
    newest_id: int | None = None
    rejected: int = 0


@dataclass(slots=True)
class LookupResult:
    """The answer to a look-up, split so a validator never blames a miner for our outage.

    `missing`: X says the tweet does not exist, was deleted, or cannot be seen.
    `failed`: no usable answer (outage, rate limit, unreadable tweet): no signal either way.
    `errored`: those of `failed` whose request itself failed (after its retries), rather
    than being answered without them: a validator asks them again in smaller requests,
    so that one failing request costs no miner anything.
    """

    found: dict[int, TweetRecord] = field(default_factory=dict)
    missing: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    errored: set[int] = field(default_factory=set)

    def settle(self, asked: Iterable[int]) -> None:
        """Every asked ID neither found nor missing is failed: no answer is no signal."""
        self.failed |= set(asked) - self.found.keys() - self.missing


@runtime_checkable
class TweetSource(Protocol):
    name: str

    async def search(
        self,
        query: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        since_id: int | None = None,
        limit: int = 100,
    ) -> SearchResult:
        """Newest first, at most `limit` tweets matching `query` (X search syntax)."""
        ...

    async def lookup(self, ids: Sequence[int]) -> LookupResult:
        """Every ID lands in exactly one of found / missing / failed."""
        ...


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """What the neurons' flags give a source; each kind reads the part it needs.

    `flag_prefix` ("--source" for a miner, "--verify" for a validator) is where those
    flags live, so an error names the flag the operator actually has to set.
    `max_wait_s` bounds a single wait for a rate limit or a free account (None: the
    source's own default).
    """

    flag_prefix: str = "--source"
    x_bearer_token: str = ""
    x_api_base_url: str | None = None
    twscrape_accounts: str | None = None
    apify_token: str = ""
    max_wait_s: float | None = None

    @classmethod
    def of(cls, section: Any, flag_prefix: str, max_wait_s: float | None = None) -> SourceSettings:
        """The settings in a neuron's config section (the miner's `--source.*`, the
        validator's `--verify.*`: the same field names), secrets unwrapped."""

        def plain(value: Any) -> Any:
            return value.get_secret_value() if hasattr(value, "get_secret_value") else value

        return cls(
            flag_prefix=flag_prefix,
            x_bearer_token=plain(section.x_bearer_token),
            x_api_base_url=section.x_api_base_url,
            twscrape_accounts=section.twscrape_accounts,
            apify_token=plain(section.apify_token),
            max_wait_s=max_wait_s,
        )

    def required(self, name: str) -> str:
        """The setting `name`, or SourceConfigError naming its flag and variable."""
        value = getattr(self, name)
        if not value:
            env = "D3_" + self.flag_prefix.strip("-").upper() + "_" + name.upper()
            raise SourceConfigError(f"{self.flag_prefix}.{name} (or {env}) is required")
        return value


@dataclass(frozen=True, slots=True)
class SourceEntry:
    """One kind of source, as a source module declares it for the registry.

    `extra` is the pip extra (setup.py's `extras_require`) that installs what the kind
    imports beyond D3's own requirements, None when it needs nothing more; `build`
    raises SourceConfigError for a missing setting, and ImportError naming
    `install_hint(extra)` when the extra is not installed.
    """

    kind: str
    build: Callable[[SourceSettings], TweetSource]
    extra: str | None = None


def install_hint(extra: str) -> str:
    """The command that installs pip extra `extra` of D3."""
    return f"pip install 'd3-subnet[{extra}]'"
