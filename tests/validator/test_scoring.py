import pytest

from d3.validator.scoring import (
    ScoringParams,
    exponential_weights,
    score_miners,
    update_credibility,
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
