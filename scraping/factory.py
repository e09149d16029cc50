"""One place that turns a source kind and its credentials into a `TweetSource`.

Miners scrape through it and validators look tweets up through it, so both accept the
same kinds and fail the same way: a `SourceConfigError` naming the flag that is missing.
"""

from __future__ import annotations

from typing import Literal

from scraping.source import TweetSource

SourceKind = Literal["x_api", "twscrape", "apify"]


class SourceConfigError(ValueError):
    """The source cannot be built as configured; the message names what to change."""


def build_source(
    kind: SourceKind,
    *,
    flag_prefix: str,
    x_bearer_token: str = "",
    x_api_base_url: str | None = None,
    twscrape_accounts: str | None = None,
    apify_token: str = "",
    max_wait_s: float | None = None,
) -> TweetSource:
    """`flag_prefix` (e.g. "--source" or "--verify") makes the error name the real flag."""
    env = "D3_" + flag_prefix.strip("-").upper()
    if kind == "x_api":
        if not x_bearer_token:
            raise SourceConfigError(
                f"{flag_prefix}.x_bearer_token (or {env}_X_BEARER_TOKEN) is required"
            )
        from scraping.x_api import XApiSource

        extra = {} if max_wait_s is None else {"max_wait_s": max_wait_s}
        return XApiSource(x_bearer_token, api_base_url=x_api_base_url, **extra)
    if kind == "twscrape":
        try:
            from scraping.twscrape_source import TwscrapeSource

            return TwscrapeSource(accounts_file=twscrape_accounts)
        except ImportError as error:
            raise SourceConfigError(str(error)) from None
    if kind == "apify":
        if not apify_token:
            raise SourceConfigError(f"{flag_prefix}.apify_token (or {env}_APIFY_TOKEN) is required")
        try:
            from scraping.apify_source import ApifySource

            return ApifySource(apify_token)
        except ImportError as error:
            raise SourceConfigError(str(error)) from None
    raise SourceConfigError(f"unknown source kind {kind!r}")
