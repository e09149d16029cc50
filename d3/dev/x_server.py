"""A local HTTP server that speaks the slice of X API v2 D3 uses, for tests and local nets.

Endpoints (Bearer token required, 401 otherwise):

- `GET /2/tweets/search/recent` and `/2/tweets/search/all`: `query` (see d3.dev.x_query
  for the supported syntax), `since_id`, `until_id`, `start_time` (inclusive), `end_time`
  (exclusive), `max_results` (10–100; 10–500 for /all), `next_token`; newest first.
  `sort_order` is accepted and ignored; the 7-day window of /recent is not enforced.
- `GET /2/tweets?ids=`: up to 100 IDs; unknown ones come back in `errors`.

Both honour `tweet.fields`, `user.fields`, `media.fields` and the expansions `author_id`,
`referenced_tweets.id`, `referenced_tweets.id.author_id`, `attachments.media_keys`,
`referenced_tweets.id.attachments.media_keys` and `in_reply_to_user_id`, returning only
what was asked for, as X does, so a client that forgets a field finds out here rather than
in production.

Faults for the next N API requests, set with `inject_faults(...)` or
`POST /_admin/faults` (JSON with the same names): `rate_limited` (429 with
`x-rate-limit-reset` `reset_in_s` ahead), `server_errors` (`error_status`, default 503),
`empty_pages` (search answers `result_count: 0`), `partial_errors` (referenced tweets
withheld with "Authorization Error" entries, as X does for protected accounts),
`usage_capped` (429 with X's `UsageCapExceeded` problem: the monthly cap is spent while the
rate-limit headers, reset `reset_in_s` ahead included, look normal), `not_found_by_value`
(look-ups name unknown IDs only in `value`, without `resource_id`, as X often does); and
`latency_s`, a delay on every API request until reset.
`DELETE /_admin/faults` clears them; `POST /_admin/publish {"count": n}` tweets n new
tweets now; `GET /_admin/stats` counts requests.
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from loguru import logger

from d3.dev.x_corpus import Corpus
from d3.dev.x_query import QueryError, compile_query

Json = dict[str, Any]

DEFAULT_TOKEN = "local-x-token"
LOOKUP_MAX_IDS = 100
# fmt: off
TWEET_FIELDS = frozenset((
    "article", "attachments", "author_id", "card_uri", "context_annotations",
    "conversation_id", "created_at", "display_text_range", "edit_controls",
    "edit_history_tweet_ids", "entities", "geo", "id", "in_reply_to_user_id", "lang",
    "media_metadata", "non_public_metrics", "note_tweet", "organic_metrics",
    "possibly_sensitive", "promoted_metrics", "public_metrics", "referenced_tweets",
    "reply_settings", "scopes", "source", "text", "withheld",
))
USER_FIELDS = frozenset((
    "affiliation", "connection_status", "created_at", "description", "entities", "id",
    "location", "most_recent_tweet_id", "name", "pinned_tweet_id", "profile_banner_url",
    "profile_image_url", "protected", "public_metrics", "receives_your_dm", "subscription_type",
    "url", "username", "verified", "verified_type", "withheld",
))
MEDIA_FIELDS = frozenset((
    "alt_text", "duration_ms", "height", "media_key", "non_public_metrics", "organic_metrics",
    "preview_image_url", "promoted_metrics", "public_metrics", "type", "url", "variants",
    "width",
))
EXPANSIONS = frozenset((
    "attachments.media_keys", "attachments.poll_ids", "author_id", "edit_history_tweet_ids",
    "entities.mentions.username", "geo.place_id", "in_reply_to_user_id",
    "referenced_tweets.id", "referenced_tweets.id.attachments.media_keys",
    "referenced_tweets.id.author_id",
))
# fmt: on
_DEFAULT_TWEET = ("id", "text", "edit_history_tweet_ids")
_DEFAULT_USER = ("id", "name", "username")
_DEFAULT_MEDIA = ("media_key", "type")


class BadRequest(ValueError):
    """A parameter X would refuse with 400."""


@dataclass(slots=True)
class Faults:
    """Counters of misbehaviour still to serve; each API request consumes at most one."""

    rate_limited: int = 0
    reset_in_s: float = 60.0
    server_errors: int = 0
    error_status: int = 503
    empty_pages: int = 0
    partial_errors: int = 0
    usage_capped: int = 0
    not_found_by_value: int = 0
    latency_s: float = 0.0  # not a counter: every API request is this slow until changed


_COUNTERS = (
    "rate_limited",
    "server_errors",
    "empty_pages",
    "partial_errors",
    "usage_capped",
    "not_found_by_value",
)


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    method: str
    path: str
    params: dict[str, str]
    status: int
    headers: dict[str, str]


def _problem(status: int, title: str, detail: str, kind: str = "about:blank") -> Json:
    return {"title": title, "detail": detail, "type": kind, "status": status}


def _invalid(message: str) -> Json:
    return {
        "errors": [{"parameters": {}, "message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }


def _field_list(params: dict[str, str], name: str, allowed: frozenset[str]) -> list[str]:
    values = [v for v in params.get(name, "").split(",") if v]
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise BadRequest(
            f"The `{name}` query parameter value [{unknown[0]}] is not one of the allowed values"
        )
    return values


@dataclass(frozen=True, slots=True)
class _Wanted:
    """The fields and expansions a request asked for, checked before any work is done."""

    tweet: list[str]
    user: list[str]
    media: list[str]
    expansions: frozenset[str]

    @classmethod
    def of(cls, params: dict[str, str]) -> _Wanted:
        return cls(
            _field_list(params, "tweet.fields", TWEET_FIELDS),
            _field_list(params, "user.fields", USER_FIELDS),
            _field_list(params, "media.fields", MEDIA_FIELDS),
            frozenset(_field_list(params, "expansions", EXPANSIONS)),
        )


def _int_param(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise BadRequest(f"The `{name}` query parameter value [{raw}] is not valid")
    return int(raw)


def _time_param(params: dict[str, str], name: str) -> int | None:
    """A timestamp parameter as unix seconds."""
    raw = params.get(name)
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(
            f"The `{name}` query parameter value [{raw}] is not a valid time"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def _encode_token(cursor: int) -> str:
    return base64.b32encode(f"d3:{cursor}".encode()).decode().rstrip("=").lower()


def _decode_token(token: str) -> int:
    try:
        raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8)).decode()
        prefix, cursor = raw.split(":")
        if prefix != "d3":
            raise ValueError(prefix)
        return int(cursor)
    except ValueError:
        raise BadRequest(f"The `next_token` query parameter value [{token}] is not valid") from None


def _created_s(tweet: Json) -> int:
    return int(datetime.fromisoformat(tweet["created_at"]).timestamp())


class _Api:
    """The X routes over a corpus: pure request → (status, headers, body), no sockets."""

    def __init__(self, corpus: Corpus, lock: threading.RLock) -> None:
        self.corpus = corpus
        self.lock = lock

    # -- shaping --------------------------------------------------------------------------

    @staticmethod
    def _shape(obj: Json, default: Iterable[str], wanted: Iterable[str]) -> Json:
        keys = (*default, *wanted)
        return {k: obj[k] for k in keys if k in obj}

    def _respond(self, tweets: list[Json], wanted: _Wanted, withhold: bool) -> Json:
        """`data` + `includes` (+ `errors` when referenced tweets are withheld)."""
        tweet_fields, user_fields, media_fields = wanted.tweet, wanted.user, wanted.media
        expansions = wanted.expansions
        corpus = self.corpus
        body: Json = {}
        if tweets:
            body["data"] = [self._shape(t, _DEFAULT_TWEET, tweet_fields) for t in tweets]
        data_ids = {t["id"] for t in tweets}
        included: dict[str, Json] = {}
        errors: list[Json] = []
        if "referenced_tweets.id" in expansions:
            for t in tweets:
                for ref in t.get("referenced_tweets", ()):
                    ref_id = ref["id"]
                    if ref_id in included or any(e["resource_id"] == ref_id for e in errors):
                        continue
                    if withhold and ref_id not in data_ids:
                        errors.append(_withheld(ref_id))
                    else:
                        included[ref_id] = corpus.by_id[int(ref_id)]
        user_ids: dict[str, None] = {}
        if "author_id" in expansions:
            user_ids |= dict.fromkeys(t["author_id"] for t in tweets)
        if "in_reply_to_user_id" in expansions:
            user_ids |= dict.fromkeys(
                t["in_reply_to_user_id"] for t in tweets if "in_reply_to_user_id" in t
            )
        if "referenced_tweets.id.author_id" in expansions:
            user_ids |= dict.fromkeys(t["author_id"] for t in included.values())
        media_keys: dict[str, None] = {}
        with_media = [*(tweets if "attachments.media_keys" in expansions else ())]
        if "referenced_tweets.id.attachments.media_keys" in expansions:
            with_media += included.values()
        for t in with_media:
            media_keys |= dict.fromkeys((t.get("attachments") or {}).get("media_keys", ()))
        includes: Json = {}
        if user_ids:
            includes["users"] = [
                self._shape(corpus.users[u], _DEFAULT_USER, user_fields) for u in user_ids
            ]
        if included:
            includes["tweets"] = [
                self._shape(t, _DEFAULT_TWEET, tweet_fields) for t in included.values()
            ]
        if media_keys:
            includes["media"] = [
                self._shape(corpus.media[k], _DEFAULT_MEDIA, media_fields) for k in media_keys
            ]
        if includes:
            body["includes"] = includes
        if errors:
            body["errors"] = errors
        return body

    # -- routes ---------------------------------------------------------------------------

    def search(
        self, params: dict[str, str], full_archive: bool, empty: bool, withhold: bool
    ) -> Json:
        try:
            matches = compile_query(params.get("query", ""))
        except QueryError as exc:
            raise BadRequest(f"There were errors processing your request: {exc}") from None
        cap = 500 if full_archive else 100
        max_results = _int_param(params, "max_results") or 10
        if not 10 <= max_results <= cap:
            raise BadRequest(
                f"The `max_results` query parameter value [{max_results}] "
                f"is not between 10 and {cap}"
            )
        since_id = _int_param(params, "since_id")
        until_id = _int_param(params, "until_id")
        start_s = _time_param(params, "start_time")
        end_s = _time_param(params, "end_time")
        cursor = _decode_token(params["next_token"]) if "next_token" in params else None
        wanted = _Wanted.of(params)
        if empty:
            return {"meta": {"result_count": 0}}
        corpus = self.corpus
        with self.lock:
            top = len(corpus.ids)
            for bound in (until_id, cursor):
                if bound is not None:
                    top = min(top, corpus.older_than(bound))
            bottom = corpus.newer_than(since_id) if since_id is not None else 0
            page: list[Json] = []
            for index in range(top - 1, bottom - 1, -1):
                tweet = corpus.tweets[index]
                created = _created_s(tweet) if start_s is not None or end_s is not None else 0
                if start_s is not None and created < start_s:
                    break  # IDs and times fall together: nothing older can match
                if end_s is not None and created >= end_s:
                    continue
                if matches(corpus.keys[corpus.ids[index]]):
                    page.append(tweet)
                    if len(page) > max_results:
                        break
            more = len(page) > max_results
            page = page[:max_results]
            body = self._respond(page, wanted, withhold)
        meta: Json = {"result_count": len(page)}
        if page:
            meta |= {"newest_id": page[0]["id"], "oldest_id": page[-1]["id"]}
        if more:
            meta["next_token"] = _encode_token(int(page[-1]["id"]))
        body["meta"] = meta
        return body

    def lookup(self, params: dict[str, str], withhold: bool, by_value: bool = False) -> Json:
        raw = [v for v in params.get("ids", "").split(",") if v]
        if not raw or len(raw) > LOOKUP_MAX_IDS:
            raise BadRequest(f"The `ids` query parameter must hold 1 to {LOOKUP_MAX_IDS} IDs")
        bad = next((v for v in raw if not v.isdigit()), None)
        if bad is not None:
            raise BadRequest(f"The `ids` query parameter value [{bad}] is not valid")
        wanted = _Wanted.of(params)
        ids = [int(v) for v in dict.fromkeys(raw)]
        with self.lock:
            found = [self.corpus.by_id[i] for i in ids if i in self.corpus.by_id]
            missing = [str(i) for i in ids if i not in self.corpus.by_id]
            body = self._respond(found, wanted, withhold)
        if missing:
            not_found = [_not_found(i, with_resource_id=not by_value) for i in missing]
            body["errors"] = [*body.get("errors", ()), *not_found]
        return body


def _not_found(tweet_id: str, *, with_resource_id: bool = True) -> Json:
    """X's entry for an unknown look-up ID; X leaves out `resource_id` now and then, so a
    client has to read the ID from `value` too."""
    error: Json = {
        "value": tweet_id,
        "detail": f"Could not find tweet with ids: [{tweet_id}].",
        "title": "Not Found Error",
        "resource_type": "tweet",
        "parameter": "ids",
        "resource_id": tweet_id,
        "type": "https://api.twitter.com/2/problems/resource-not-found",
    }
    if not with_resource_id:
        del error["resource_id"]
    return error


def _usage_capped() -> Json:
    """X's answer (with status 429) once the plan's monthly post cap is spent."""
    return {
        "account_id": "0",
        "product_name": "standard-basic",
        "title": "UsageCapExceeded",
        "period": "Monthly",
        "scope": "Product",
        "detail": "Usage cap exceeded: Monthly product cap",
        "type": "https://api.twitter.com/2/problems/usage-capped",
    }


def _withheld(tweet_id: str) -> Json:
    return {
        "value": tweet_id,
        "detail": f"Sorry, you are not authorized to see the Tweet with id: [{tweet_id}].",
        "title": "Authorization Error",
        "resource_type": "tweet",
        "parameter": "referenced_tweets.id",
        "resource_id": tweet_id,
        "type": "https://api.twitter.com/2/problems/not-authorized-for-resource",
    }


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections give their thread back

    def do_GET(self) -> None:
        self.server.owner._dispatch(self, "GET")

    def do_POST(self) -> None:
        self.server.owner._dispatch(self, "POST")

    def do_DELETE(self) -> None:
        self.server.owner._dispatch(self, "DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        logger.trace("local x server: " + format, *args)

    def reply(self, status: int, body: Json, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=utf-8")
        self.send_header("content-length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], owner: LocalXServer) -> None:
        super().__init__(address, _Handler)
        self.owner = owner


class LocalXServer:
    """X API v2 on 127.0.0.1 over a seeded corpus; `with LocalXServer() as x: x.base_url`."""

    def __init__(
        self,
        *,
        seed: int = 0,
        size: int = 5000,
        token: str = DEFAULT_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        end: datetime | None = None,
        span: timedelta = timedelta(days=3),
        full_archive: bool = True,
        corpus: Corpus | None = None,
        journal: str | Path | None = None,
    ) -> None:
        """`end` defaults to the current hour, so /recent searches with real times work;
        pass it (or `corpus`) for a corpus identical across runs. `full_archive=False`
        answers /search/all with 403, like an app without full-archive access. With a
        `journal`, every `publish` is appended to it and replayed at the next start, so a
        restarted server (pm2) still has every tweet it ever served (with the same `end`)."""
        if end is None:
            end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        self.corpus = corpus or Corpus.generate(size, seed=seed, end=end, span=span)
        self._journal = Path(journal) if journal is not None else None
        if self._journal is not None and self._journal.exists():
            for line in self._journal.read_text().splitlines():
                count, at_ms = (int(part) for part in line.split())
                self.corpus.mint(count, at_ms=at_ms)
        self.token = token
        self.full_archive = full_archive
        self._address = (host, port)
        self._lock = threading.RLock()
        self._api = _Api(self.corpus, self._lock)
        self._faults = Faults()
        self._requests: list[LoggedRequest] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> Self:
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer(self._address, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        logger.info("local x server on {} ({} tweets)", self.base_url, len(self.corpus.tweets))
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- controls (thread-safe) ---------------------------------------------------------

    def inject_faults(self, **counts: float) -> Faults:
        """Add to the fault counters (`rate_limited=2, reset_in_s=5`, ...); returns them."""
        names = {f.name for f in fields(Faults)}
        unknown = set(counts) - names
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {sorted(names)}")
        with self._lock:
            for name, value in counts.items():
                current = getattr(self._faults, name)
                new = current + value if name in _COUNTERS else value
                setattr(self._faults, name, type(current)(new))
            return Faults(**asdict(self._faults))

    @property
    def faults(self) -> Faults:
        """A snapshot of the faults still to serve."""
        with self._lock:
            return Faults(**asdict(self._faults))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = Faults()

    def publish(self, count: int, at: datetime | None = None) -> list[int]:
        """Mint `count` new tweets (default: now) and return their IDs."""
        at_ms = int((at or datetime.now(UTC)).timestamp() * 1000)
        with self._lock:
            minted = [int(t["id"]) for t in self.corpus.mint(count, at_ms=at_ms)]
            if self._journal is not None:
                with self._journal.open("a") as handle:
                    handle.write(f"{count} {at_ms}\n")
            return minted

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._requests)

    # -- request handling ---------------------------------------------------------------

    def _take(self, name: str) -> Faults | None:
        """Consume one `name` fault; the settings it was served with, or None if none left."""
        with self._lock:
            left = getattr(self._faults, name)
            if left <= 0:
                return None
            setattr(self._faults, name, left - 1)
            return Faults(**asdict(self._faults))

    def _dispatch(self, handler: _Handler, method: str) -> None:
        url = urlsplit(handler.path)
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            status, body, headers = self._route(handler, method, url.path, params)
        except BadRequest as exc:
            status, body, headers = 400, _invalid(str(exc)), {}
        except Exception as exc:  # a server bug must still answer, or the client hangs
            logger.exception("local x server: {} {} failed", method, url.path)
            status, body, headers = 500, _problem(500, "Internal Error", repr(exc)), {}
        with self._lock:
            self._requests.append(LoggedRequest(method, url.path, params, status, headers))
        handler.reply(status, body, headers)

    def _route(
        self, handler: _Handler, method: str, path: str, params: dict[str, str]
    ) -> tuple[int, Json, dict[str, str]]:
        if path.startswith("/_admin/"):
            return self._admin(handler, method, path)
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            return 401, _problem(401, "Unauthorized", "Unauthorized"), {}
        if method != "GET":
            return 405, _problem(405, "Method Not Allowed", f"{method} {path}"), {}
        search = path in ("/2/tweets/search/recent", "/2/tweets/search/all")
        if not search and path != "/2/tweets":
            return 404, _problem(404, "Not Found", f"no route {path}"), {}
        latency = self.faults.latency_s
        if latency > 0:
            time.sleep(latency)
        if fault := self._take("usage_capped"):
            # The rate limit itself is fine; only the body tells the two 429s apart.
            headers = {
                "x-rate-limit-limit": "450",
                "x-rate-limit-remaining": "449",
                "x-rate-limit-reset": str(int(time.time() + fault.reset_in_s)),
            }
            return 429, _usage_capped(), headers
        if fault := self._take("rate_limited"):
            reset = int(time.time() + fault.reset_in_s)
            headers = {
                "x-rate-limit-limit": "450",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(reset),
            }
            return 429, _problem(429, "Too Many Requests", "Too Many Requests"), headers
        if fault := self._take("server_errors"):
            status = fault.error_status
            phrase = HTTPStatus(status).phrase
            return status, _problem(status, phrase, phrase), {}
        if path == "/2/tweets/search/all" and not self.full_archive:
            return 403, _client_forbidden(), {}
        withhold = self._take("partial_errors") is not None
        if search:
            empty = self._take("empty_pages") is not None
            body = self._api.search(params, path.endswith("/all"), empty, withhold)
        else:
            by_value = self._take("not_found_by_value") is not None
            body = self._api.lookup(params, withhold, by_value)
        return 200, body, {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "449"}

    def _admin(self, handler: _Handler, method: str, path: str) -> tuple[int, Json, dict[str, str]]:
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError as exc:
            raise BadRequest(f"body is not JSON: {exc}") from None
        if path == "/_admin/faults" and method == "POST":
            try:
                return 200, asdict(self.inject_faults(**body)), {}
            except (TypeError, ValueError) as exc:
                raise BadRequest(str(exc)) from None
        if path == "/_admin/faults" and method == "DELETE":
            self.clear_faults()
            return 200, asdict(Faults()), {}
        if path == "/_admin/faults" and method == "GET":
            return 200, asdict(self.faults), {}
        if path == "/_admin/publish" and method == "POST":
            count = body.get("count", 1)
            if not isinstance(count, int) or not 0 < count <= 10_000:
                raise BadRequest("count must be an integer from 1 to 10000")
            return 200, {"ids": [str(i) for i in self.publish(count)]}, {}
        if path == "/_admin/stats" and method == "GET":
            with self._lock:
                by_status: dict[str, int] = {}
                for r in self._requests:
                    by_status[str(r.status)] = by_status.get(str(r.status), 0) + 1
                return (
                    200,
                    {
                        "requests": len(self._requests),
                        "by_status": by_status,
                        "tweets": len(self.corpus.ids),
                    },
                    {},
                )
        return 404, _problem(404, "Not Found", f"no admin route {method} {path}"), {}


def _client_forbidden() -> Json:
    return {
        "client_id": "0",
        "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use "
        "keys and tokens from a Twitter developer App that is attached to a Project.",
        "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
        "title": "Client Forbidden",
        "required_enrollment": "Appropriate Level of API Access",
        "reason": "client-not-enrolled",
        "type": "https://api.twitter.com/2/problems/client-forbidden",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m d3.dev.x_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=5000, help="tweets in the corpus")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the Bearer token to accept")
    parser.add_argument(
        "--end",
        type=datetime.fromisoformat,
        default=None,
        help="newest tweet time (ISO, UTC); default: this hour",
    )
    parser.add_argument(
        "--live-rate", type=float, default=0.0, help="new tweets per second while running"
    )
    parser.add_argument(
        "--journal", default=None, help="file that keeps minted tweets across restarts"
    )
    args = parser.parse_args(argv)
    end = args.end.replace(tzinfo=args.end.tzinfo or UTC) if args.end else None
    server = LocalXServer(
        seed=args.seed,
        size=args.size,
        token=args.token,
        host=args.host,
        port=args.port,
        end=end,
        journal=args.journal,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # pm2 and CI stop with SIGTERM
    with server:
        print(server.base_url, flush=True)  # the one line a launcher reads
        try:
            if args.live_rate > 0:
                while not stop.wait(1.0 / args.live_rate):
                    server.publish(1)
            else:
                stop.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
