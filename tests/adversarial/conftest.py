"""Fixtures for the adversarial suite: captured validator logs, and a real local X server
with tweets scraped from it through the X API client, which the validator's look-ups also
use. The dev chain (`net`) is the one of tests/conftest.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from loguru import logger

from d3.dev.x_server import LocalXServer
from d3.record import records_to_table
from d3.validator.verifier import Lookup
from d3.validator.x_lookup import source_lookup
from scraping.x_api import XApiSource
from tests.adversarial.support import CORPUS_END, LogBook


@pytest.fixture
def logs() -> Iterator[LogBook]:
    book = LogBook()
    sink = logger.add(lambda message: book.records.append(message.record), level="DEBUG")
    yield book
    logger.remove(sink)


@dataclass
class XWorld:
    server: LocalXServer
    # Every corpus tweet as a scraper normalised it, sorted by id: the ones that earn
    # credit, and the retweets, which earn nothing (d3/earning.py).
    tweets: pa.Table
    retweets: pa.Table

    def lookup(self) -> Lookup:
        """The validator's look-up: XApiSource (tweepy) against the local X server."""
        return source_lookup(
            XApiSource(self.server.token, api_base_url=self.server.base_url, max_retries=0)
        )


@pytest.fixture(scope="session")
def x_world() -> Iterator[XWorld]:
    with LocalXServer(seed=23, size=600, end=CORPUS_END) as server:
        source = XApiSource(server.token, api_base_url=server.base_url, max_retries=0)
        scraped = asyncio.run(source.lookup(server.corpus.ids))
        assert len(scraped.found) == len(server.corpus.ids)
        table = records_to_table(sorted(scraped.found.values(), key=lambda r: r.id))
        retweet = pc.is_valid(table["retweeted_id"])
        yield XWorld(server, table.filter(pc.invert(retweet)), table.filter(retweet))
