"""A subset of X's search query language, for the local X server.

Supported (case-insensitive unless noted):

- `word` — a whole word of the text (`gpt-4`, `$tao` and other non-word terms match as
  substrings); `"exact phrase"` — a substring of the text
- `#hashtag`, `@mention`, `from:user`, `to:user`, `conversation_id:ID`, `url:part`
- `lang:xx`, `is:retweet|reply|quote`, `has:media|links|hashtags|mentions`
- implicit AND between terms, `OR` (upper case) between terms, AND binds tighter than OR,
  `( … )` grouping, `-` negating a term or group

As on X, a query needs at least one positive "standalone" term (not just `lang:`/`is:`/
`has:`), and unknown operators are errors rather than silently ignored. The length limit
is the one every source and query plan holds (`scraping.common.check_query`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from scraping.common import check_query


class QueryError(ValueError):
    """The query is not valid; X answers such queries with 400."""


@dataclass(frozen=True, slots=True)
class TweetKeys:
    """What queries match on, computed once per tweet instead of once per query."""

    text: str
    words: frozenset[str]
    hashtags: frozenset[str]
    mentions: frozenset[str]
    urls: str
    author: str
    author_id: str
    reply_to: str
    lang: str
    conversation_id: str
    is_retweet: bool
    is_reply: bool
    is_quote: bool
    has_media: bool


Predicate = Callable[[TweetKeys], bool]

_WORD = re.compile(r"\w+")
_TOKEN = re.compile(r'\s*(-?"[^"]*"|-?\(|\)|[^\s()"]+)')
_OPERATOR = re.compile(r"^([a-z_]+):(.+)$")


def index_tweet(tweet: Mapping[str, Any], usernames: Mapping[str, str]) -> TweetKeys:
    """Keys of one full X v2 tweet object; `usernames` maps user ID → username."""
    text = ((tweet.get("note_tweet") or {}).get("text") or tweet["text"]).lower()
    entities = tweet.get("entities") or {}
    refs = {r["type"] for r in tweet.get("referenced_tweets") or ()}
    return TweetKeys(
        text=text,
        words=frozenset(_WORD.findall(text)),
        hashtags=frozenset(h["tag"].lower() for h in entities.get("hashtags") or ()),
        mentions=frozenset(m["username"].lower() for m in entities.get("mentions") or ()),
        urls=" ".join(u.get("expanded_url", "") for u in entities.get("urls") or ()).lower(),
        author=usernames.get(tweet["author_id"], "").lower(),
        author_id=tweet["author_id"],
        reply_to=usernames.get(tweet.get("in_reply_to_user_id", ""), "").lower(),
        lang=tweet.get("lang", ""),
        conversation_id=tweet.get("conversation_id", ""),
        is_retweet="retweeted" in refs,
        is_reply="replied_to" in refs,
        is_quote="quoted" in refs,
        has_media=bool((tweet.get("attachments") or {}).get("media_keys")),
    )


def _is(value: str) -> Predicate:
    flags: dict[str, Predicate] = {
        "retweet": lambda k: k.is_retweet,
        "reply": lambda k: k.is_reply,
        "quote": lambda k: k.is_quote,
    }
    if value not in flags:
        raise QueryError(f"unsupported operator value is:{value}")
    return flags[value]


def _has(value: str) -> Predicate:
    flags: dict[str, Predicate] = {
        "media": lambda k: k.has_media,
        "links": lambda k: bool(k.urls),
        "hashtags": lambda k: bool(k.hashtags),
        "mentions": lambda k: bool(k.mentions),
    }
    if value not in flags:
        raise QueryError(f"unsupported operator value has:{value}")
    return flags[value]


def _atom(term: str) -> tuple[Predicate, bool]:
    """A predicate for one term, and whether the term may stand alone in a query."""
    low = term.lower()
    if len(term) >= 2 and term[0] == term[-1] == '"':
        phrase = low[1:-1]
        if not phrase.strip():
            raise QueryError("empty quoted phrase")
        return (lambda k: phrase in k.text), True
    if low.startswith("#") and len(low) > 1:
        tag = low[1:]
        return (lambda k: tag in k.hashtags), True
    if low.startswith("@") and len(low) > 1:
        name = low[1:]
        return (lambda k: name in k.mentions), True
    op = _OPERATOR.match(low)
    if op is not None:
        name, value = op.groups()
        standalone: dict[str, Predicate] = {
            "from": lambda k: value in (k.author, k.author_id),
            "to": lambda k: k.reply_to == value,
            "conversation_id": lambda k: k.conversation_id == value,
            "url": lambda k: value in k.urls,
        }
        if name in standalone:
            return standalone[name], True
        if name == "lang":
            return (lambda k: k.lang == value), False
        if name == "is":
            return _is(value), False
        if name == "has":
            return _has(value), False
        raise QueryError(f"Reference to invalid operator '{name}'")
    if _WORD.fullmatch(low):
        return (lambda k: low in k.words), True
    return (lambda k: low in k.text), True


class _Parser:
    def __init__(self, query: str) -> None:
        self.tokens = self._tokenize(query)
        self.pos = 0

    @staticmethod
    def _tokenize(query: str) -> list[str]:
        tokens: list[str] = []
        pos = 0
        while pos < len(query):
            if query[pos:].strip() == "":
                break
            match = _TOKEN.match(query, pos)
            if match is None:
                raise QueryError(f"unbalanced quote at position {pos}")
            tokens.append(match.group(1))
            pos = match.end()
        return tokens

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def parse(self) -> tuple[Predicate, bool]:
        pred, anchored = self._or()
        if self._peek() is not None:
            raise QueryError(f"unexpected {self._peek()!r}")
        return pred, anchored

    def _or(self) -> tuple[Predicate, bool]:
        branches = [self._and()]
        while self._peek() == "OR":
            self.pos += 1
            branches.append(self._and())
        if len(branches) == 1:
            return branches[0]
        preds = [p for p, _ in branches]
        return (lambda k: any(p(k) for p in preds)), all(a for _, a in branches)

    def _and(self) -> tuple[Predicate, bool]:
        items: list[tuple[Predicate, bool]] = []
        while self._peek() not in (None, ")", "OR"):
            items.append(self._unary())
        if not items:
            raise QueryError("empty group or dangling OR")
        if len(items) == 1:
            return items[0]
        preds = [p for p, _ in items]
        return (lambda k: all(p(k) for p in preds)), any(a for _, a in items)

    def _unary(self) -> tuple[Predicate, bool]:
        token = self.tokens[self.pos]
        self.pos += 1
        negated = token.startswith("-") and len(token) > 1
        body = token[1:] if negated else token
        if body == "(":
            pred, anchored = self._or()
            if self._peek() != ")":
                raise QueryError("missing closing parenthesis")
            self.pos += 1
        else:
            pred, anchored = _atom(body)
        if negated:
            return (lambda k: not pred(k)), False
        return pred, anchored


def compile_query(query: str) -> Predicate:
    """A predicate over TweetKeys; raises QueryError as X would answer 400."""
    try:
        check_query(query)
    except ValueError as error:
        raise QueryError(str(error)) from None
    pred, anchored = _Parser(query).parse()
    if not anchored:
        raise QueryError("query needs at least one standalone term (keyword, #tag, from:, …)")
    return pred
