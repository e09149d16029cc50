import math

import pytest

from d3.validator.scoring import (
    ScoringParams,
    exponential_weights,
    miner_score,
    score_miners,
    update_credibility,
    windowed_noise,
    windowed_unique,
)

P = ScoringParams(period_blocks=100, window_periods=3, decay=0.5)


def test_exponential_curve_top_takes_most():
    weights = exponential_weights({0: 10.0, 1: 30.0, 2: 20.0, 3: 0.0}, decay=0.5)
    assert weights[1] == pytest.approx(4 / 7)
    assert weights[2] == pytest.approx(2 / 7)
    assert weights[0] == pytest.approx(1 / 7)
    assert weights[3] == 0.0
    assert sum(weights.values()) == pytest.approx(1.0)


def test_ties_share_a_rank_and_all_zero_gives_nothing():
    weights = exponential_weights({0: 5.0, 1: 5.0, 2: 1.0}, decay=0.5)
    # Competition ranking (1, 1, 3): a tie does not lift the next miner.
    assert weights[0] == weights[1] == pytest.approx(4 * weights[2])
    assert exponential_weights({0: 0.0, 1: 0.0}, decay=0.5) == {0: 0.0, 1: 0.0}


def test_rolling_window_and_registration():
    per_period = {0: 5, 1: 7, 2: 11, 3: 13, 4: 17}
    # Block 450 is period 4: the window holds periods 2, 3 and 4.
    assert windowed_unique(per_period, 450, registered_block=0, params=P) == 11 + 13 + 17
    # Registered in period 3: earlier credit is not counted.
    assert windowed_unique(per_period, 450, registered_block=320, params=P) == 13 + 17


def test_credibility_ema():
    c = 1.0
    c = update_credibility(c, verified=False)
    assert c == pytest.approx(0.8)
    c = update_credibility(c, verified=True)
    assert c == pytest.approx(0.84)


def test_score_miners_ignores_replaced_hotkeys():
    neurons = [(0, "alice", 0), (1, "newbie", 440), (2, "bob", 0)]
    credits = {"alice": {4: 100}, "bob": {4: 100}, "gone": {4: 1_000_000}, "newbie": {4: 50}}
    scores = score_miners(neurons, credits, {"bob": 0.5}, current_block=450, params=P)
    by_hotkey = {s.hotkey: s for s in scores}
    assert [s.uid for s in scores] == [0, 1, 2]
    assert by_hotkey["alice"].score == 100 and by_hotkey["bob"].score == 50
    assert by_hotkey["newbie"].unique == 50
    assert by_hotkey["alice"].weight == pytest.approx(1 / 2)
    assert by_hotkey["bob"].weight == by_hotkey["newbie"].weight == pytest.approx(1 / 4)
    assert "gone" not in by_hotkey


def test_bad_params():
    with pytest.raises(ValueError, match="decay"):
        ScoringParams(decay=1.5)


def test_miners_within_the_tolerance_share_a_rank():
    # 95 is within 10 % of 100: both rank 0; 60 has both above it by more than 10 %.
    weights = exponential_weights({0: 100.0, 1: 95.0, 2: 60.0}, 0.5, 0.10)
    assert weights[0] == weights[1] == pytest.approx(4 * weights[2])
    # Ranks are not transitive ties: 104 is within 10 % of 100 and of 110, but 110 is more
    # than 10 % above 99, which is outranked by it alone.
    weights = exponential_weights({0: 110.0, 1: 104.0, 2: 99.0}, 0.5, 0.10)
    assert weights[0] == weights[1] == pytest.approx(2 * weights[2])
    assert exponential_weights({0: 100.0, 1: 111.0}, 0.5, 0.10)[1] == pytest.approx(2 / 3)


def test_noise_is_the_binomial_standard_error_of_the_audited_credit():
    per_period = {3: 1000, 4: 2000}
    factors = {3: (30, 31), 4: (8, 8)}  # one missing of 31; none of 8
    noise = windowed_noise(per_period, 450, 0, P, factors)
    assert noise == pytest.approx(math.sqrt(1000**2 * 30 * 1 / 31**3))
    assert windowed_noise(per_period, 450, 0, P, None) == 0.0  # no audits, no sampling
    unique = windowed_unique(per_period, 450, 0, P, factors)
    assert unique == 1000 * 30 // 31 + 2000
    assert miner_score(unique, noise, 0.5, P) == pytest.approx((unique - 2 * noise) * 0.5)
    assert miner_score(10, 100.0, 1.0, P) == 0.0


def test_score_miners_reports_the_lower_bound():
    neurons = [(0, "alice", 0), (1, "bob", 0)]
    credits = {"alice": {4: 1000}, "bob": {4: 1000}}
    factors = {"alice": {4: (31, 31)}, "bob": {4: (29, 31)}}
    scores = score_miners(neurons, credits, {}, 450, P, factors)
    alice, bob = scores
    assert alice.noise == 0 and alice.score == 1000
    assert bob.unique == 1000 * 29 // 31 and bob.noise > 0
    assert bob.score == pytest.approx(bob.unique - 2 * bob.noise)
    # Two of 31 missing: 935 credited, 847 at the bound, more than 10 % below alice.
    assert alice.weight == pytest.approx(2 * bob.weight)
