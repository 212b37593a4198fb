"""The benchmark's arithmetic against numbers worked out by hand."""
import math

import pytest

from nnhp.bench import metrics

INF = math.inf


def test_time_to_target_on_a_scripted_curve():
    steps = [10, 20, 30, 40, 50]
    errors = [0.50, 0.20, 0.09, 0.12, 0.05]
    assert metrics.time_to_target(steps, errors, 0.10) == 30          # the first point at or below
    assert metrics.time_to_target(steps, errors, 0.09) == 30          # "at" counts
    assert metrics.time_to_target(steps, errors, 0.50) == 10
    assert metrics.time_to_target(steps, errors, 0.01) == INF         # a miss
    assert metrics.time_to_target(steps, [0.5, math.nan, 0.01, 0.01, 0.01], 0.1) == 30   # NaN is no hit
    assert metrics.time_to_target([], [], 0.1) == INF
    with pytest.raises(ValueError, match="differ in length: 2 and 1"):
        metrics.time_to_target([1, 2], [0.1], 0.1)


def test_algoperf_tuning_rule_fastest_trial_then_median_over_studies():
    studies = [[120, INF, 80], [INF, INF], [200, 60]]
    times = [metrics.study_time(trials) for trials in studies]
    assert times == [80, INF, 60]
    assert metrics.workload_time(times) == 80
    assert metrics.workload_time([80, INF, INF]) == INF                # most studies missed: a miss
    assert metrics.workload_time([]) == INF
    assert metrics.study_time([]) == INF


def test_target_is_the_best_median_over_seeds():
    target = metrics.derive_target({"sgd": [0.05, 0.04, 0.09], "adam": [0.03, 0.06, 0.045], "bad": [INF]})
    assert target == pytest.approx(0.045)
    assert math.isnan(metrics.derive_target({"sgd": []}))


# A hand-worked example with ties and misses. Steps to target:
#            w1    w2    w3    w4 (nobody)
#   A        10    20    inf   inf
#   B        20    20    30    inf
#   C        inf   40    inf   inf
# best:      10    20    30    inf
# ratios A:  1     1     inf   inf      B: 2  1  1  inf      C: inf  2  inf  inf
TIMES = {"A": {"w1": 10, "w2": 20, "w3": INF, "w4": INF},
         "B": {"w1": 20, "w2": 20, "w3": 30, "w4": INF},
         "C": {"w1": INF, "w2": 40, "w3": INF, "w4": INF}}


def test_performance_ratios_with_ties_and_misses():
    ratios = metrics.performance_ratios(TIMES)
    assert ratios == {"A": {"w1": 1.0, "w2": 1.0, "w3": INF, "w4": INF},
                      "B": {"w1": 2.0, "w2": 1.0, "w3": 1.0, "w4": INF},
                      "C": {"w1": INF, "w2": 2.0, "w3": INF, "w4": INF}}


def test_performance_profile_by_hand():
    profile = metrics.performance_profile(metrics.performance_ratios(TIMES), [1.0, 1.5, 2.0, 4.0, 100.0])
    assert profile["A"] == [0.5, 0.5, 0.5, 0.5, 0.5]      # tied best on w1 and w2
    assert profile["B"] == [0.5, 0.5, 0.75, 0.75, 0.75]
    assert profile["C"] == [0.0, 0.0, 0.25, 0.25, 0.25]


def test_algoperf_score_by_hand():
    scores = metrics.algoperf_score(metrics.performance_ratios(TIMES))
    # Each workload with r <= 4 adds (4 - r) / 3 / 4.
    assert scores["A"] == pytest.approx((3 + 3) / 12)                 # 0.5
    assert scores["B"] == pytest.approx((2 + 3 + 3) / 12)             # 0.6667
    assert scores["C"] == pytest.approx(2 / 12)                       # 0.1667


def test_score_is_the_integral_of_the_profile():
    ratios = metrics.performance_ratios(TIMES)
    taus = [1 + 3 * (k + 0.5) / 30000 for k in range(30000)]        # midpoint rule
    for name, rho in metrics.performance_profile(ratios, taus).items():
        assert sum(rho) / len(rho) == pytest.approx(metrics.algoperf_score(ratios)[name], abs=1e-3)


def test_fastest_everywhere_scores_one_and_never_within_four_scores_zero():
    scores = metrics.algoperf_score(metrics.performance_ratios({"fast": {"w": 10}, "slow": {"w": 50}}))
    assert scores == {"fast": 1.0, "slow": 0.0}


def test_mismatched_workloads_are_refused():
    with pytest.raises(ValueError, match="optimizer 'b' has times for"):
        metrics.performance_ratios({"a": {"w1": 1}, "b": {"w2": 1}})
    with pytest.raises(ValueError, match="tau_max must exceed 1, got 1"):
        metrics.algoperf_score({}, tau_max=1)


def test_median_iqr():
    assert metrics.median_iqr([1, 2, 3, 4, 5]) == (3.0, 2.0, 4.0)
    assert metrics.median_iqr([1, INF, 3]) == (2.0, 1.5, 2.5)          # misses left out
    assert all(math.isnan(v) for v in metrics.median_iqr([]))
