"""A request that fails while the look-up's others are answered is asked again in halves
(d3/validator/x_lookup.py): a passing 503 costs no miner anything, and an ID that makes
every request carrying it fail fails only itself."""

from __future__ import annotations

import math
from collections.abc import Sequence

from d3.dev.x_server import LocalXServer
from d3.validator.x_lookup import source_lookup
from scraping.source import LookupResult
from tests.scraping.support import SourceFactory, run


def test_a_passing_503_on_one_batch_is_asked_again_and_costs_nothing(
    server: LocalXServer, make_source: SourceFactory
) -> None:
    """150 IDs, two requests of X API v2 `GET /2/tweets`; the first gets a 503 (no
    retries here): its 100 IDs are asked again, in two halves, and all are found."""
    ids = server.corpus.ids[:150]
    lookup = source_lookup(make_source(max_retries=0))
    before = len(server.requests)
    server.inject_faults(server_errors=1)
    answer = run(lookup(ids))
    assert set(answer.found) == set(ids) and not answer.failed and not answer.outage
    asked = [len(r.params["ids"].split(",")) for r in server.requests[before:]]
    assert asked == [100, 50, 50, 50]
    assert [r.status for r in server.requests[before:]] == [503, 200, 200, 200]


class Poisoned:
    """A source whose every request that carries `poison` fails (after its retries),
    batched 100 IDs a request like X API v2; `down_after` requests, every one fails."""

    name = "poisoned"

    def __init__(self, known: set[int], poison: int, down_after: int | None = None):
        self.known, self.poison, self.down_after = known, poison, down_after
        self.requests: list[int] = []  # IDs per request

    async def search(self, *args, **kwargs):  # pragma: no cover - never searched
        raise NotImplementedError

    async def lookup(self, ids: Sequence[int]) -> LookupResult:
        result = LookupResult()
        for start in range(0, len(ids), 100):
            batch = list(ids[start : start + 100])
            self.requests.append(len(batch))
            down = self.down_after is not None and len(self.requests) > self.down_after
            if down or self.poison in batch:
                result.failed.update(batch)
                result.errored.update(batch)
                continue
            for i in batch:
                if i in self.known:
                    result.missing.add(i)  # "not found" is an answer too
            result.settle(batch)
        return result


def test_a_poison_id_fails_only_itself_in_about_2_log2_n_more_requests() -> None:
    ids = list(range(1, 201))
    poison = 37
    source = Poisoned(set(ids) - {poison}, poison)
    answer = run(source_lookup(source)(ids))
    assert answer.failed == {poison}  # silence of its own: no other ID pays for it
    assert answer.missing == set(ids) - {poison}
    extra = len(source.requests) - 2
    assert extra <= 2 * math.ceil(math.log2(100)) + 1


def test_when_both_halves_fail_whole_x_is_down_and_it_stops_asking() -> None:
    ids = list(range(1, 201))
    source = Poisoned(set(ids), poison=-1, down_after=1)  # the first request only
    answer = run(source_lookup(source)(ids))
    assert answer.failed == set(range(101, 201))  # left to the audit's outage rules
    assert source.requests == [100, 100, 50, 50]
