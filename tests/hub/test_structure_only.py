"""A structure-only validator (no look-ups on X) credits every well-formed first-committed
tweet: the hub holds them all once the chain is settled past their period, and its card
says in bold that nothing was checked on X."""

from __future__ import annotations

import bittensor as bt
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pytest

from d3.hub.builder import HubBuilder
from d3.hub.decisions import audit_passed
from d3.hub.errors import LedgerError
from d3.validator.audit import AuditResult
from d3.validator.verifier import MAX_MISSING_SHARE
from tests.support.datasets import TruthLookup
from tests.support.net import run
from tests.support.runner import make_runner

from .support import SCORING, play


def test_structure_only_hubs_publish_settled_periods_and_say_so(net, redis_url, tmp_path):
    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            world, chains = await play(net, client, TruthLookup())
            runner = make_runner(chains["va"], redis_url, None, scoring=SCORING)
            await runner.process(await chains["va"].metagraph())
            hub = HubBuilder.for_runner(tmp_path / "hub", runner)
            unsettled = await hub.update()
            early = await hub.update(settled_through=await chains["va"].block())
            net.dev.advance(2 * SCORING.period_blocks)  # past period 1, nothing new on chain
            await runner.process(await chains["va"].metagraph())
            settled = await hub.update(settled_through=await chains["va"].block())
            hub.close()
            audited = make_runner(chains["va"], redis_url, TruthLookup(), scoring=SCORING)
            with pytest.raises(LedgerError, match=r"audited=False, not .* audited=True"):
                HubBuilder.for_runner(tmp_path / "hub", audited)  # another rule set
            return world, unsettled, early, settled

    world, unsettled, early, settled = run(body())
    assert unsettled.applied == 7 and unsettled.rows == 0  # applied, not yet published
    assert list(early.published) == [0]  # period 1 is not over yet
    assert settled.applied == 0 and settled.rows == 240 + 30 + 20
    table = pads.dataset(tmp_path / "hub" / "data").to_table()
    assert pc.count_distinct(table["id"]).as_py() == table.num_rows == settled.rows
    owners = set(table["miner_hotkey"].to_pylist())
    assert world.hotkeys["fabricator"] in owners and world.hotkeys["copier"] not in owners
    assert (
        "**ran structure-only (no look-ups on X)**" in (tmp_path / "hub" / "README.md").read_text()
    )


def test_the_audit_rule_is_the_validators():
    assert audit_passed(AuditResult(10, 10, 0))
    assert not audit_passed(AuditResult(10, 10, 1))  # an altered tweet
    assert not audit_passed(AuditResult(0, 0, 0))  # nothing checkable
    allowed = int(MAX_MISSING_SHARE * 100)
    assert audit_passed(AuditResult(100, 100 - allowed, 0))  # deletions within the allowance
    assert not audit_passed(AuditResult(100, 100 - allowed - 1, 0))
