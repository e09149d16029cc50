"""What a miner searches for and how often, from a TOML or JSON file.

```toml
[defaults]              # optional; every query inherits these unless it sets its own
languages = ["en"]
exclude_retweets = true
interval_s = 900
limit = 100             # tweets per run

[[queries]]
name = "bittensor"      # optional; keys the schedule and the since_id cursor
keywords = ["bittensor", "decentralized AI"]   # a keyword with spaces is an exact phrase
hashtags = ["bittensor", "TAO"]
accounts = ["opentensor"]
interval_s = 300
```

becomes `(bittensor OR "decentralized AI" OR #bittensor OR #TAO OR from:opentensor)
lang:en -is:retweet`. A bad file fails at load with one line naming the file and field.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from d3.errors import first_error
from scraping.common import check_query

MIN_INTERVAL_S = 10.0
MAX_INTERVAL_S = 7 * 24 * 3600.0

_HASHTAG = re.compile(r"^\w{1,100}$")
_ACCOUNT = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z]{2,4})?$")
_KEYWORD_FORBIDDEN = re.compile(r'["():]')

Interval = Annotated[float, Field(ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S)]
Limit = Annotated[int, Field(ge=1, le=10_000)]


class QueryPlanError(ValueError):
    """A plan file that cannot be used; the message is one line."""


def _keyword(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError("keyword is blank")
    if _KEYWORD_FORBIDDEN.search(value) or value.startswith("-") or value in ("OR", "AND"):
        raise ValueError(
            f"keyword {value!r} holds search syntax; use hashtags/accounts/languages instead"
        )
    return value


def _hashtag(value: str) -> str:
    tag = value.removeprefix("#")
    if not _HASHTAG.match(tag):
        raise ValueError(f"hashtag {value!r} must be letters, digits or _")
    return tag


def _account(value: str) -> str:
    name = value.removeprefix("@")
    if not _ACCOUNT.match(name):
        raise ValueError(f"account {value!r} is not an X handle (1-15 of A-Z, 0-9, _)")
    return name


def _language(value: str) -> str:
    code = value.strip().lower()
    if not _LANGUAGE.match(code):
        raise ValueError(f"language {value!r} is not a language code like 'en' or 'pt'")
    return code


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    languages: list[str] = Field(default_factory=lambda: ["en"])
    exclude_retweets: bool = True
    interval_s: Interval = 900.0
    limit: Limit = 100

    @field_validator("languages")
    @classmethod
    def _languages(cls, values: list[str]) -> list[str]:
        return [_language(v) for v in values]


class QuerySpec(BaseModel):
    """One query as written in the file; unset fields come from the plan's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, min_length=1, max_length=64)
    keywords: list[str] = Field(default_factory=list)
    hashtags: list[str] = Field(default_factory=list)
    accounts: list[str] = Field(default_factory=list)
    languages: list[str] | None = None
    exclude_retweets: bool | None = None
    interval_s: Interval | None = None
    limit: Limit | None = None

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, values: list[str]) -> list[str]:
        return [_keyword(v) for v in values]

    @field_validator("hashtags")
    @classmethod
    def _hashtags(cls, values: list[str]) -> list[str]:
        return [_hashtag(v) for v in values]

    @field_validator("accounts")
    @classmethod
    def _accounts(cls, values: list[str]) -> list[str]:
        return [_account(v) for v in values]

    @field_validator("languages")
    @classmethod
    def _languages(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else [_language(v) for v in values]


@dataclass(frozen=True, slots=True)
class PlannedQuery:
    """A query ready to run: its name, the X search string, and its cadence."""

    name: str
    query: str
    interval_s: float
    limit: int


def _any_of(terms: list[str]) -> str:
    return terms[0] if len(terms) == 1 else f"({' OR '.join(terms)})"


def build_query(spec: QuerySpec, defaults: Defaults) -> str:
    """The X search string for `spec`, e.g. `(#ai OR from:x) lang:en -is:retweet`."""
    terms = [f'"{k}"' if " " in k else k for k in spec.keywords]
    terms += [f"#{h}" for h in spec.hashtags]
    terms += [f"from:{a}" for a in spec.accounts]
    if not terms:
        raise ValueError("a query needs at least one keyword, hashtag or account")
    parts = [_any_of(terms)]
    languages = defaults.languages if spec.languages is None else spec.languages
    if languages:
        parts.append(_any_of([f"lang:{code}" for code in languages]))
    exclude = defaults.exclude_retweets if spec.exclude_retweets is None else spec.exclude_retweets
    if exclude:
        parts.append("-is:retweet")
    query = " ".join(parts)
    check_query(query)  # the limit every source holds too
    return query


class QueryPlan(BaseModel):
    # The file's key is `queries`; the attribute is `specs` so `queries()` can be the strings.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    defaults: Defaults = Field(default_factory=Defaults)
    specs: list[QuerySpec] = Field(alias="queries", min_length=1)

    def planned(self) -> list[PlannedQuery]:
        """Every query with defaults applied; names are unique (checked at load)."""
        out = []
        for spec in self.specs:
            query = build_query(spec, self.defaults)
            out.append(
                PlannedQuery(
                    name=spec.name or query,
                    query=query,
                    interval_s=spec.interval_s or self.defaults.interval_s,
                    limit=spec.limit or self.defaults.limit,
                )
            )
        return out

    def queries(self) -> Iterator[str]:
        """The X search strings, in file order."""
        for planned in self.planned():
            yield planned.query

    def due(self, last_run: Mapping[str, float], now: float) -> list[PlannedQuery]:
        """Queries whose interval has passed since `last_run[name]` (same clock as `now`);
        never-run queries first, then the most overdue."""

        def overdue(p: PlannedQuery) -> float:
            last = last_run.get(p.name)
            return float("inf") if last is None else now - last - p.interval_s

        ready = [p for p in self.planned() if overdue(p) >= 0]
        return sorted(ready, key=overdue, reverse=True)

    def seconds_until_due(self, last_run: Mapping[str, float], now: float) -> float:
        """How long a scheduler may sleep before some query is due (0 if one is now)."""
        waits = [
            0.0 if p.name not in last_run else last_run[p.name] + p.interval_s - now
            for p in self.planned()
        ]
        return max(0.0, min(waits))


def _check(plan: QueryPlan) -> QueryPlan:
    """Rules across queries, which field validators cannot see."""
    seen: set[str] = set()
    for index, spec in enumerate(plan.specs):
        try:
            planned = build_query(spec, plan.defaults)
        except ValueError as exc:
            raise QueryPlanError(f"queries[{index}]: {exc}") from None
        name = spec.name or planned
        if name in seen:
            raise QueryPlanError(f"queries[{index}]: duplicate query name {name!r}")
        seen.add(name)
    return plan


def parse_plan(data: Any, where: str = "query plan") -> QueryPlan:
    """A plan from already-decoded TOML/JSON; QueryPlanError names `where` and the field."""
    try:
        return _check(QueryPlan.model_validate(data))
    except ValidationError as exc:
        raise QueryPlanError(f"{where}: {first_error(exc)}") from None
    except QueryPlanError as exc:
        raise QueryPlanError(f"{where}: {exc}") from None


def load_plan(path: str | Path) -> QueryPlan:
    """A plan from a .toml or .json file."""
    path = Path(path).expanduser()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise QueryPlanError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(raw.decode())
        elif path.suffix == ".json":
            data = json.loads(raw)
        else:
            raise QueryPlanError(f"{path}: unknown format; use .toml or .json")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise QueryPlanError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from None
    return parse_plan(data, str(path))


def default_plan() -> QueryPlan:
    """Broad AI and tech queries: a miner that configures nothing still finds tweets."""
    return parse_plan(
        {
            "queries": [
                {
                    "name": "ai",
                    "keywords": ["artificial intelligence", "machine learning"],
                    "hashtags": ["AI", "MachineLearning"],
                },
                {
                    "name": "llm",
                    "keywords": ["LLM", "large language model", "open weights"],
                    "hashtags": ["LLM", "GenAI"],
                },
                {
                    "name": "decentralized_ai",
                    "keywords": ["decentralized AI", "bittensor"],
                    "hashtags": ["bittensor", "DeAI"],
                },
                {
                    "name": "open_source",
                    "keywords": ["open source"],
                    "hashtags": ["opensource", "python", "rustlang"],
                },
                {
                    "name": "data",
                    "keywords": ["dataset", "data science"],
                    "hashtags": ["DataScience", "BigData"],
                },
            ]
        },
        "default query plan",
    )
