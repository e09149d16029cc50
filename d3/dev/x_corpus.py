"""A seeded corpus of realistic X API v2 tweet objects for the local X server.

Truthful by construction: IDs are snowflakes minted at the tweet's time, replies, quotes
and retweets point at earlier tweets of the same corpus, and every mention, hashtag and
link has the entity X would report. Tests compare what a source returns with this corpus,
so anything the source drops or mangles shows up.
"""

from __future__ import annotations

import bisect
import random
import re
import string
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from d3.dev.x_query import TweetKeys, index_tweet
from d3.snowflake import id_to_ms, ms_to_id

Json = dict[str, Any]

# topic → (terms, hashtags); terms are comma-separated so some can be phrases.
_TOPICS: dict[str, tuple[list[str], list[str]]] = {
    name: (terms.split(", "), tags.split())
    for name, terms, tags in (
        (
            "ai",
            "model, LLM, agents, inference, fine-tuning, benchmark, tokens, transformer, "
            "dataset, GPU, reasoning, eval, embeddings, open weights",
            "AI MachineLearning LLM GenAI DeepLearning",
        ),
        (
            "crypto",
            "bittensor, subnet, validator, miner, stake, emission, TAO, chain, wallet, "
            "consensus, block, decentralized AI, incentives",
            "bittensor TAO crypto DeAI web3",
        ),
        (
            "dev",
            "python, rust, compiler, release, bug, refactor, tests, API, database, "
            "kubernetes, latency, open source, PR, docs",
            "python rustlang opensource programming devops",
        ),
        (
            "science",
            "paper, telescope, experiment, climate, protein, physics, data, results, "
            "preprint, quantum, genome",
            "science research physics space",
        ),
        (
            "life",
            "coffee, morning, weekend, music, trip, book, city, dinner, rain, photos, team, game",
            "coffee travel music photography",
        ),
    )
}
_TEMPLATES_EN = (
    "Just shipped {a} with {b}, {c} next",
    "Hot take: {a} matters more than {b}",
    "Reading about {a} and {b} today",
    "Why does nobody talk about {a}? {b} gets all the attention",
    "New {a} results look wild, {b} is next",
    "Spent the whole day on {a}. {b} tomorrow",
    "{a} + {b} = {c}",
    "Thread on {a}, {b} and what we learned about {c}",
    "Is {a} overrated or is it just me",
    "Finally got {a} working with {b}",
)
_TEMPLATES_OTHER = {
    "es": ("Hoy aprendí sobre {a} y {b}", "¿Alguien usa {a} con {b}?", "Nuevo {a}, gran {b}"),
    "ja": ("今日は{a}と{b}について勉強した", "{a}の新しい{b}がすごい", "{a}を試してみた"),
    "de": ("Heute über {a} und {b} gelesen", "Neues {a} mit {b} ausprobiert", "{a} ist super"),
    "fr": ("Aujourd'hui j'ai testé {a} avec {b}", "Le {a} et le {b}, enfin", "Vive le {a}"),
    "pt": ("Hoje estudei {a} e {b}", "Alguém já usou {a} com {b}?", "Novo {a} chegou"),
}
_LANGS = ("en",) * 14 + ("es", "ja", "de", "fr", "pt")
# fmt: off
_NAME_A = ("data", "neo", "alpha", "code", "byte", "deep", "open", "quant", "tensor", "pixel",
           "lunar", "solar", "crypto", "night", "blue", "iron", "happy", "quiet", "rapid")
_NAME_B = ("fox", "owl", "dev", "labs", "miner", "wizard", "nerd", "cat", "builder", "ape",
           "smith", "rider", "coder", "pilot", "hacker")
_DOMAINS = ("github.com", "arxiv.org", "huggingface.co", "blog.example.org", "news.example.com",
            "docs.python.org", "youtube.com")
# fmt: on
_TCO = re.compile(r"https://t\.co/\w+")
_HASHTAG = re.compile(r"(?<![\w#])#(\w+)")
_MENTION = re.compile(r"(?<![\w@])@(\w{1,15})")
_ALNUM = string.ascii_letters + string.digits
SHORT_TEXT_CHARS = 280


def _iso(ms: int) -> str:
    """X's created_at: second precision, rendered with a .000Z fraction."""
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class Corpus:
    """Users, media and tweets as full X v2 objects (every field X could return).

    `tweets` is oldest first; `by_id` and `keys` index it. `mint` adds newer tweets, the
    local stand-in for the world tweeting while a miner polls.
    """

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self.users: dict[str, Json] = {}
        self.media: dict[str, Json] = {}
        self.tweets: list[Json] = []
        self.ids: list[int] = []
        self.by_id: dict[int, Json] = {}
        self.keys: dict[int, TweetKeys] = {}
        self._usernames: dict[str, str] = {}
        self._ids_by_name: dict[str, str] = {}
        self._tco: dict[str, Json] = {}
        self._user_ids: list[str] = []

    @classmethod
    def generate(
        cls, size: int, seed: int = 0, end: datetime | None = None, span: timedelta | None = None
    ) -> Corpus:
        """`size` tweets spread over `span` (default 3 days) before `end`."""
        end = end or datetime(2026, 1, 1, tzinfo=UTC)
        span = span or timedelta(days=3)
        corpus = cls(seed)
        corpus._make_users(max(50, size // 10))
        end_ms = int(end.timestamp() * 1000)
        span_ms = int(span.total_seconds() * 1000)
        rng = corpus._rng
        times = sorted(end_ms - rng.randrange(span_ms) for _ in range(size))
        corpus._add_all(times)
        return corpus

    def mint(self, count: int, at: datetime | None = None, at_ms: int | None = None) -> list[Json]:
        """`count` new tweets in the second up to `at` (or `at_ms`; default now), all newer
        than every existing tweet and none from the future. The same calls on the same
        corpus mint the same tweets (a journal of them restores a corpus)."""
        if at_ms is None:
            at_ms = int((at or datetime.now(UTC)).timestamp() * 1000)
        low = max(at_ms - 1000, id_to_ms(self.ids[-1]) if self.ids else 0)
        high = max(at_ms, low)
        return self._add_all(sorted(self._rng.randint(low, high) for _ in range(count)))

    def post(self, words: Sequence[str], at: datetime | None = None) -> Json:
        """Add one hand-written post, newer than every tweet so far, for edge cases in tests.

        `words` are joined by spaces; each URL among them is written as a t.co link, as
        X shortens it. Hashtags, mentions of the corpus's users and links get their
        entities as in generated tweets, and a text over 280 characters is a long post
        (its whole text and entities in `note_tweet`). Not journaled: a server's journal
        replays what it minted, so post to a server without one.
        """
        at_ms = int((at or datetime.now(UTC)).timestamp() * 1000)
        at_ms = max(at_ms, id_to_ms(self.ids[-1]) if self.ids else 0)
        [tweet] = self._add_all([at_ms], lambda tweet_id: self._make_post(tweet_id, words))
        return tweet

    def username(self, user_id: str) -> str:
        return self._usernames[user_id]

    # -- generation ---------------------------------------------------------------------

    def _make_users(self, count: int) -> None:
        rng = self._rng
        while len(self.users) < count:
            name = f"{rng.choice(_NAME_A)}{rng.choice(('', '_'))}{rng.choice(_NAME_B)}"
            if rng.random() < 0.5:
                name += str(rng.randrange(1, 10_000))
            name = name[:15]
            if name.lower() in self._ids_by_name:
                continue
            created = datetime(2008, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(6500))
            if created.year >= 2013:
                user_id = str(ms_to_id(int(created.timestamp() * 1000), rng.randrange(1 << 22)))
            else:
                user_id = str(rng.randrange(10**5, 10**9))
            self.users[user_id] = {
                "id": user_id,
                "name": name.replace("_", " ").title(),
                "username": name,
                "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "description": f"{rng.choice(_NAME_A)} things and {rng.choice(_NAME_B)}s",
                "protected": False,
                "verified": rng.random() < 0.05,
                "public_metrics": {
                    "followers_count": min(int(rng.paretovariate(0.8)) * 10, 10**9),
                    "following_count": rng.randrange(2000),
                    "tweet_count": rng.randrange(50_000),
                    "listed_count": rng.randrange(100),
                },
            }
            self._usernames[user_id] = name
            self._ids_by_name[name.lower()] = user_id
        self._user_ids = list(self.users)

    def _add_all(
        self, times_ms: Iterable[int], make: Callable[[int], Json] | None = None
    ) -> list[Json]:
        added = []
        for ms in times_ms:
            tweet_id = ms_to_id(ms, self._rng.randrange(1 << 22))
            if self.ids and tweet_id <= self.ids[-1]:
                # Same millisecond as the previous tweet: X hands out the next sequence.
                tweet_id = self.ids[-1] + 1
            tweet = (make or self._make_tweet)(tweet_id)
            self.tweets.append(tweet)
            self.ids.append(tweet_id)
            self.by_id[tweet_id] = tweet
            self.keys[tweet_id] = index_tweet(tweet, self._usernames)
            added.append(tweet)
        return added

    def _tco_link(self, expanded: str, media_key: str | None = None) -> str:
        short = "https://t.co/" + "".join(self._rng.choices(_ALNUM, k=10))
        entity: Json = {
            "url": short,
            "expanded_url": expanded,
            "display_url": expanded.removeprefix("https://")[:30],
        }
        if media_key:
            # X shows an attached media's link as pic.x.com/<code>, and marks it media_key.
            entity |= {
                "display_url": "pic.x.com/" + short.rsplit("/", 1)[1],
                "media_key": media_key,
            }
        self._tco[short] = entity
        return short

    def _sentence(self, lang: str, topic: str) -> str:
        rng = self._rng
        words, _ = _TOPICS[topic]
        templates = _TEMPLATES_EN if lang == "en" else _TEMPLATES_OTHER[lang]
        a, b, c = rng.sample(words, 3)
        return rng.choice(templates).format(a=a, b=b, c=c)

    def _body(self, lang: str, topic: str, long: bool) -> str:
        rng = self._rng
        parts = [self._sentence(lang, topic)]
        while long and sum(map(len, parts)) < SHORT_TEXT_CHARS + 200:
            parts.append(self._sentence(lang, topic))
        text = ". ".join(parts)
        if rng.random() < 0.15:
            text = f"{text} cc @{self._usernames[rng.choice(self._user_ids)]}"
        tags = rng.sample(_TOPICS[topic][1], rng.choice((0, 0, 1, 1, 2, 3)))
        if tags:
            text += " " + " ".join(f"#{t}" for t in tags)
        if rng.random() < 0.2:
            path = "".join(rng.choices(string.ascii_lowercase, k=8))
            text += " " + self._tco_link(f"https://{rng.choice(_DOMAINS)}/{path}")
        return text

    def _entities(self, text: str) -> Json:
        entities: Json = {}
        tags = [
            {"start": m.start(), "end": m.end(), "tag": m.group(1)} for m in _HASHTAG.finditer(text)
        ]
        mentions = [
            {
                "start": m.start(),
                "end": m.end(),
                "username": m.group(1),
                "id": self._ids_by_name[m.group(1).lower()],
            }
            for m in _MENTION.finditer(text)
            if m.group(1).lower() in self._ids_by_name
        ]
        urls = [
            {"start": m.start(), "end": m.end(), **self._tco[m.group(0)]}
            for m in _TCO.finditer(text)
            if m.group(0) in self._tco
        ]
        for key, items in (("hashtags", tags), ("mentions", mentions), ("urls", urls)):
            if items:
                entities[key] = items
        return entities

    def _add_media(self, tweet_id: int, author: str) -> tuple[list[str], str]:
        rng = self._rng
        kind = rng.choices(("photo", "video", "animated_gif"), weights=(8, 2, 1))[0]
        keys = []
        for n in range(rng.randint(1, 4) if kind == "photo" else 1):
            media_id = tweet_id - rng.randrange(1, 1 << 30) - n
            code = "".join(rng.choices(_ALNUM, k=15))
            item: Json = {"type": kind, "width": 1200, "height": 675}
            if kind == "photo":
                item |= {
                    "media_key": f"3_{media_id}",
                    "url": f"https://pbs.twimg.com/media/{code}.jpg",
                }
            elif kind == "video":
                item |= {
                    "media_key": f"7_{media_id}",
                    "preview_image_url": (
                        f"https://pbs.twimg.com/ext_tw_video_thumb/{media_id}/pu/img/{code}.jpg"
                    ),
                    "duration_ms": rng.randrange(2_000, 140_000),
                }
            else:
                item |= {
                    "media_key": f"16_{media_id}",
                    "preview_image_url": f"https://pbs.twimg.com/tweet_video_thumb/{code}.jpg",
                }
            self.media[item["media_key"]] = item
            keys.append(item["media_key"])
        link = self._tco_link(
            f"https://x.com/{author}/status/{tweet_id}/{'photo' if kind == 'photo' else 'video'}/1",
            keys[0],
        )
        return keys, link

    def _metrics(self, retweet: bool) -> Json:
        rng = self._rng
        if retweet:
            return {
                "retweet_count": 0,
                "reply_count": 0,
                "like_count": 0,
                "quote_count": 0,
                "bookmark_count": 0,
                "impression_count": 0,
            }
        likes = min(int(rng.paretovariate(1.1) * 4) - 4, 10_000_000)
        return {
            "retweet_count": likes // rng.randint(3, 20),
            "reply_count": likes // rng.randint(5, 30),
            "like_count": likes,
            "quote_count": likes // rng.randint(20, 100),
            "bookmark_count": likes // rng.randint(5, 50),
            "impression_count": likes * rng.randint(20, 200) + rng.randrange(500),
        }

    def _earlier(self) -> Json:
        """A recent earlier tweet: conversations cluster in time."""
        n = len(self.tweets)
        return self.tweets[self._rng.randrange(max(0, n - 500), n)]

    @staticmethod
    def _skeleton(tweet_id: int, author_id: str, lang: str) -> Json:
        return {
            "id": str(tweet_id),
            "author_id": author_id,
            "created_at": _iso(id_to_ms(tweet_id)),
            "conversation_id": str(tweet_id),
            "edit_history_tweet_ids": [str(tweet_id)],
            "lang": lang,
            "possibly_sensitive": False,
            "reply_settings": "everyone",
        }

    def _with_text(self, tweet: Json, text: str, long: bool) -> Json:
        """`tweet` with its text, entities and metrics; a long post's in note_tweet."""
        if long:
            # A long post: the top level carries a stub, note_tweet the whole text.
            tweet["note_tweet"] = {"text": text, "entities": self._entities(text)}
            text = text[: SHORT_TEXT_CHARS - 1].rstrip() + "…"
        tweet["text"] = text
        entities = self._entities(text)
        if entities:
            tweet["entities"] = entities
        tweet["public_metrics"] = self._metrics(retweet=False)
        return tweet

    def _make_post(self, tweet_id: int, words: Sequence[str]) -> Json:
        tweet = self._skeleton(tweet_id, self._rng.choice(self._user_ids), "en")
        text = " ".join(
            self._tco_link(w) if w.startswith(("http://", "https://")) else w for w in words
        )
        return self._with_text(tweet, text, long=len(text) > SHORT_TEXT_CHARS)

    def _make_tweet(self, tweet_id: int) -> Json:
        rng = self._rng
        author_id = rng.choice(self._user_ids)
        author = self._usernames[author_id]
        lang = rng.choice(_LANGS)
        topic = rng.choice(tuple(_TOPICS))
        kind = rng.choices(("post", "reply", "quote", "retweet"), weights=(62, 20, 8, 10))[0]
        if not self.tweets:
            kind = "post"
        tweet = self._skeleton(tweet_id, author_id, lang)
        if kind == "retweet":
            original = self._earlier()
            for ref in original.get("referenced_tweets", ()):
                if ref["type"] == "retweeted":  # a retweet of a retweet points at the original
                    original = self.by_id[int(ref["id"])]
            text = f"RT @{self._usernames[original['author_id']]}: {original['text']}"
            tweet["referenced_tweets"] = [{"type": "retweeted", "id": original["id"]}]
            tweet["lang"] = original["lang"]
            tweet |= {"text": text, "public_metrics": self._metrics(retweet=True)}
            entities = self._entities(text)
            if entities:
                tweet["entities"] = entities
            return tweet
        long = lang == "en" and kind == "post" and rng.random() < 0.04
        text = self._body(lang, topic, long)
        if kind == "reply":
            parent = self._earlier()
            text = f"@{self._usernames[parent['author_id']]} {text}"
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": parent["id"]}]
            tweet["in_reply_to_user_id"] = parent["author_id"]
            tweet["conversation_id"] = parent["conversation_id"]
        elif kind == "quote":
            tweet["referenced_tweets"] = [{"type": "quoted", "id": self._earlier()["id"]}]
        if rng.random() < 0.15:
            keys, link = self._add_media(tweet_id, author)
            tweet["attachments"] = {"media_keys": keys}
            text = f"{text} {link}"
        return self._with_text(tweet, text, long)

    # -- queries ------------------------------------------------------------------------

    def newer_than(self, tweet_id: int) -> int:
        """Index of the first tweet with an ID above `tweet_id`."""
        return bisect.bisect_right(self.ids, tweet_id)

    def older_than(self, tweet_id: int) -> int:
        """Index one past the last tweet with an ID below `tweet_id`."""
        return bisect.bisect_left(self.ids, tweet_id)
