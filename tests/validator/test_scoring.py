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


def test_each_ten_percent_less_score_halves_the_weight():
    weights = exponential_weights({0: 100.0, 1: 110.0, 2: 121.0, 3: 0.0}, decay=0.5)
    assert weights[2] == pytest.approx(2 * weights[1]) and weights[1] == pytest.approx(
        2 * weights[0]
    )
    assert weights[3] == 0.0
    assert sum(weights.values()) == pytest.approx(1.0)


def test_equal_scores_get_equal_weights_and_all_zero_gives_nothing():
    weights = exponential_weights({0: 5.0, 1: 5.0, 2: 1.0}, decay=0.5)
    assert weights[0] == weights[1] and weights[2] < weights[0] / 1000
    assert exponential_weights({0: 0.0, 1: 0.0}, decay=0.5) == {0: 0.0, 1: 0.0}


def test_near_equal_scores_get_near_equal_weights():
    """The curve is continuous: 1 % of sampling noise is a few % of weight, not a rank."""
    weights = exponential_weights({0: 100.0, 1: 99.0}, decay=0.5)
    assert weights[0] / weights[1] == pytest.approx((100 / 99) ** (math.log(2) / math.log(1.1)))
    assert weights[0] / weights[1] < 1.08


def test_spreading_data_over_more_hotkeys_earns_less():
    """One operator's data on one hotkey or split over four, against the same field."""
    field = {uid: 1000.0 for uid in range(10, 30)}
    alone = exponential_weights({0: 8000.0, **field}, decay=0.5)[0]
    split = exponential_weights({i: 2000.0 for i in range(4)} | field, decay=0.5)
    assert sum(split[i] for i in range(4)) < alone


def test_rolling_window_and_registration():
    per_period = {0: 5, 1: 7, 2: 11, 3: 13, 4: 17}
    # Block 450 is period 4: the window holds periods 2, 3 and 4.
    assert windowed_unique(per_period, 450, registered_block=0, params=P) == 11 + 13 + 17
    # Registered in period 3: earlier credit is not counted.
    assert windowed_unique(per_period, 450, registered_block=320, params=P) == 13 + 17


def test_credibility_ema():
    c = 1.0
    c = update_credibility(c, 0.0)
    assert c == pytest.approx(0.8)
    c = update_credibility(c, 1.0)
    assert c == pytest.approx(0.84)


def test_score_miners_ignores_replaced_hotkeys():
    neurons = [(0, "alice", 0), (1, "newbie", 440), (2, "bob", 0)]
    credits = {"alice": {4: 100}, "bob": {4: 100}, "gone": {4: 1_000_000}, "newbie": {4: 50}}
    scores = score_miners(neurons, credits, {"bob": 0.5}, current_block=450, params=P)
    by_hotkey = {s.hotkey: s for s in scores}
    assert [s.uid for s in scores] == [0, 1, 2]
    assert by_hotkey["alice"].score == 100 and by_hotkey["bob"].score == 50
    assert by_hotkey["newbie"].unique == 50
    assert by_hotkey["bob"].weight == by_hotkey["newbie"].weight  # both score 50
    assert by_hotkey["alice"].weight > 0.98  # twice their score: 7.3 ranks above them
    assert "gone" not in by_hotkey


def test_bad_params():
    with pytest.raises(ValueError, match="decay"):
        ScoringParams(decay=1.5)


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
    # Two of 31 missing: 935 credited, 847 at the bound: 1000 / 847 is 1.74 ranks.
    assert alice.weight / bob.weight == pytest.approx(
        (1000 / bob.score) ** (math.log(2) / math.log(1.1))
    )


def test_repeated_picks_of_one_tweet_add_no_evidence():
    """40 picks that fell on 10 distinct tweets (a small commitment picked often): the found
    share is the picks', its noise is that of 10 checks, not 40."""
    per_period, factors = {4: 1000}, {4: (30, 40)}
    picks = windowed_noise(per_period, 450, 0, P, factors)
    distinct = windowed_noise(per_period, 450, 0, P, factors, {4: 10})
    assert picks == pytest.approx(1000 * math.sqrt(0.75 * 0.25 / 40))
    assert distinct == pytest.approx(1000 * math.sqrt(0.75 * 0.25 / 10))
