"""Quasi-random search: a scrambled Halton sequence that covers the space evenly, deterministically."""
import numpy as np
import pytest

from nnhp.search import Choice, Float, Int, QuasiRandomSearch, Space, Study, make_searcher
from nnhp.search.quasirandom import first_primes, halton


def star_discrepancy_2d(points: np.ndarray) -> float:
    """The largest gap between the fraction of points in a box [0, a) x [0, b) and its area,
    over boxes anchored at the points' own coordinates (a lower bound on the star discrepancy)."""
    worst = 0.0
    corners = np.concatenate([points, np.ones((1, 2))])
    for a in corners[:, 0]:
        for b in corners[:, 1]:
            inside = np.mean((points[:, 0] < a) & (points[:, 1] < b))
            worst = max(worst, abs(inside - a * b))
    return worst


def test_first_primes():
    assert first_primes(8) == [2, 3, 5, 7, 11, 13, 17, 19]


def test_plain_halton_is_the_radical_inverse():
    points = halton(range(5), 2, seed=None)
    np.testing.assert_allclose(points[:, 0], [0, 0.5, 0.25, 0.75, 0.125])
    np.testing.assert_allclose(points[:, 1], [0, 1 / 3, 2 / 3, 1 / 9, 4 / 9])


def test_scrambled_points_stay_in_the_unit_cube_and_are_stratified():
    points = halton(range(64), 3, seed=5)
    assert points.shape == (64, 3) and points.min() >= 0.0 and points.max() < 1.0
    # Base 2: each run of 2^k consecutive points puts one in each interval of width 2^-k.
    for k in (1, 2, 3, 4):
        cells = np.floor(points[: 2 ** k, 0] * 2 ** k)
        assert sorted(cells) == list(range(2 ** k))


def test_lower_discrepancy_than_random_draws():
    n = 64
    quasi = star_discrepancy_2d(halton(range(n), 2, seed=0))
    random = np.median([star_discrepancy_2d(np.random.default_rng(s).random((n, 2))) for s in range(10)])
    assert quasi < 0.6 * random, (quasi, random)


def test_the_same_seed_gives_the_same_points_and_another_seed_other_points():
    np.testing.assert_array_equal(halton(range(20), 4, seed=3), halton(range(20), 4, seed=3))
    assert not np.allclose(halton(range(20), 4, seed=3), halton(range(20), 4, seed=4))


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="indices must be >= 0, got -1"):
        halton([-1], 2)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        QuasiRandomSearch(seed=-2)


SPACE = {"lr": Float(1e-4, 1e-1, log=True), "units": Int(8, 64),
         "schedule": Choice(["constant", "cosine", "warmup_cosine"]), "epochs": 5,
         "momentum": Float(0.5, 0.99, when=("schedule", "==", "cosine"))}


def run_study(seed, n_trials=12):
    study = Study(SPACE, searcher=QuasiRandomSearch(seed=seed), direction="minimize")
    study.optimize(lambda trial: trial.params["lr"], n_trials=n_trials)
    return study


def test_a_study_gets_valid_deterministic_points_covering_every_choice():
    first, again = run_study(0), run_study(0)
    assert [t.params for t in first.trials] == [t.params for t in again.trials]
    params = [t.params for t in first.trials]
    assert {p["schedule"] for p in params} == {"constant", "cosine", "warmup_cosine"}
    assert all(p["epochs"] == 5 and 8 <= p["units"] <= 64 and 1e-4 <= p["lr"] <= 1e-1 for p in params)
    assert all(("momentum" in p) == (p["schedule"] == "cosine") for p in params)
    # A log-scaled rate: the 12 points fall in all three decades.
    assert {int(np.floor(np.log10(p["lr"]))) for p in params} == {-4, -3, -2}
    assert [t.info["sequence_index"] for t in first.trials] == list(range(12))


def test_an_interrupted_trial_gets_its_point_back(tmp_path):
    path = str(tmp_path / "qr.db")
    study = Study(SPACE, searcher=QuasiRandomSearch(seed=1), direction="minimize", storage=path, name="s")
    study.optimize(lambda trial: trial.params["lr"], n_trials=3)
    study.ask()                                        # a 4th trial left running: its process "dies"
    reopened = Study(SPACE, searcher=QuasiRandomSearch(seed=1), direction="minimize", storage=path, name="s")
    assert reopened.trials[3].interrupted
    reopened.optimize(lambda trial: trial.params["lr"], n_trials=2)
    live = [t for t in reopened.trials if not t.interrupted]
    assert [t.params for t in live] == [t.params for t in run_study(1, n_trials=5).trials]


def test_registered_by_name():
    assert isinstance(make_searcher("quasirandom", seed=2), QuasiRandomSearch)
    assert isinstance(make_searcher("quasi-random"), QuasiRandomSearch)


def test_ask_ahead_gives_the_next_free_points_as_asks_would():
    space = Space({"x": Float(0.0, 1.0), "n": Int(1, 5)})
    study = Study(space, QuasiRandomSearch(seed=2))
    study.tell(study.ask(), 0.0)
    ahead = study.searcher.ask_ahead(study, 4)
    assert [p.info["sequence_index"] for p in ahead] == [1, 2, 3, 4]
    for proposal in ahead:
        trial = study.ask()
        assert trial.params == proposal.params and trial.info == proposal.info
        study.tell(trial, 0.0)
