"""The look-up budget against the audits it must pay for: a validator whose daily budget
cannot cover one period's audit per period never finishes one, and since a period counts
for nobody until its audit is done, its window would empty. It must refuse to start."""

from __future__ import annotations

import pytest

from d3.errors import FatalError
from d3.validator.audit import AuditParams, budget_shortfall
from d3.validator.neuron import ValidatorConfig, build_runner
from d3.validator.verifier import LookupBudget


def test_a_budget_without_a_quarter_to_spare_is_refused():
    params = AuditParams()  # 8,000 look-ups a period
    assert budget_shortfall(10_000, params, 7200) is None  # the default: 25 % to spare
    # Exactly enough never catches up: a one-day outage would take months to repay.
    reason = budget_shortfall(9_999, params, 7200)
    assert budget_shortfall(8_000, params, 7200) is not None
    assert reason == (
        "--verify.daily_budget 9,999 gives 9,999 look-ups per period (7200 blocks of 12 s), "
        "less than 1.25 x the 8,000 a period's audit asks for (--verify.audit_lookups 8,000, "
        "--verify.audit_min 8 x 256 miners): this validator could not finish its audits and "
        "catch up after an outage, and a period counts only once audited; set "
        "--verify.daily_budget to at least 10,000 (docs/validator.md, Requirements)"
    )
    # Periods are blocks of 12 s: a half-day period needs twice the budget a day.
    assert budget_shortfall(19_999, params, 3600) is not None
    assert budget_shortfall(20_000, params, 3600) is None
    # Minimums for a full subnet can ask for more than audit_lookups.
    assert "at least 32,000" in budget_shortfall(20_000, AuditParams(min_per_miner=100), 7200)


def test_the_validator_refuses_to_start_on_a_budget_it_cannot_audit_with():
    config = ValidatorConfig(netuid=3, verify={"daily_budget": 5_000})
    with pytest.raises(FatalError, match=r"^--verify.daily_budget 5,000 gives 5,000 look-ups"):
        build_runner(config, chain=None, redis=None)  # refused before touching either
    # Structure-only validation spends no look-ups: nothing to refuse.
    config = ValidatorConfig(netuid=3, verify={"daily_budget": 5_000, "structure_only": True})
    with pytest.raises(AttributeError):  # it goes on to build, and needs a real chain
        build_runner(config, chain=None, redis=None)


def test_the_bucket_holds_an_hour_and_a_larger_audit_runs_into_debt():
    """The capacity the docs state: an hour's worth of the daily budget, full at start;
    an audit larger than that runs on a full bucket and is paid back by later refills."""
    bucket = LookupBudget(24_000)
    assert bucket.burst == 1_000 and bucket.available == 1_000
    assert bucket.spend(1_001, 0.0)  # a full bucket pays any one audit
    assert bucket.available == -1
    assert not bucket.spend(1, 0.0)  # in debt: the next audit waits
    assert bucket.spend(1, 3.6 * 2)  # 2 look-ups refilled (24,000 a day = 1 per 3.6 s)
