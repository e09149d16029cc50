"""The source registry: one place that turns a source kind and the flags into a source.

Miners scrape through it and validators look tweets up through it, so both accept the
same kinds and fail the same way: a `SourceConfigError` naming the flag that is missing,
or the extra to install. Each source module declares its `SourceEntry` (kind, pip extra,
constructor); `SOURCES` lists them, and the neurons' `--source.kind` and
`--verify.lookup_kind` choices are its keys. A new source is a module with its entry and
one line here (docs/extending.md).

Only real sources are listed: the local X server is reached through `x_api` with a base
URL (a dev-only flag), and the dishonest sources of a local network are in
`d3/dev/adversaries.py`, chosen with the miner's dev-only `--source.adversary`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from scraping import apify_source, twscrape_source, x_api
from scraping.source import (
    SourceConfigError,
    SourceEntry,
    SourceSettings,
    TweetSource,
    install_hint,
)

SOURCES: Mapping[str, SourceEntry] = MappingProxyType(
    {entry.kind: entry for entry in (x_api.SOURCE, twscrape_source.SOURCE, apify_source.SOURCE)}
)
# The kinds as a type, so a config field's choices are the registry's (and --help lists them).
SourceKind = Literal[tuple(SOURCES)]  # type: ignore[valid-type]


def build_source(kind: str, settings: SourceSettings) -> TweetSource:
    """The source of `kind`; SourceConfigError says which flag to set or what to install."""
    entry = SOURCES.get(kind)
    if entry is None:
        raise SourceConfigError(f"unknown source kind {kind!r}; one of: {', '.join(SOURCES)}")
    try:
        return entry.build(settings)
    except ImportError as error:  # the kind's extra is not (fully) installed
        message = str(error)
        if entry.extra is not None and install_hint(entry.extra) not in message:
            message = f"source kind {kind} needs its extra ({message}): {install_hint(entry.extra)}"
        raise SourceConfigError(message) from None
