"""Tests for nnhp/search/gp.py: GP regression, its marginal likelihood, EI, and GPSearch."""
import math

import numpy as np
import pytest

pytest.importorskip("scipy")

from nnhp.search import gp as gpmod  # noqa: E402
from nnhp.search.gp import (GaussianProcess, GPSearch, KernelPrior, acquisition_and_grad,  # noqa: E402
                            expected_improvement, log_expected_improvement, log_h,
                            log_marginal_likelihood, matern52)


def _data(n=12, dim=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, dim))
    y = np.sin(4 * X[:, 0]) + X[:, 1] ** 2 - 0.5 * X[:, 2]
    return X, y


def _matern_by_loops(a, b, length_scales, signal_var):
    r = math.sqrt(sum((ai - bi) ** 2 / l ** 2 for ai, bi, l in zip(a, b, length_scales)))
    return signal_var * (1 + math.sqrt(5) * r + 5 / 3 * r * r) * math.exp(-math.sqrt(5) * r)


def test_matern52_matches_the_formula_entry_by_entry():
    X, _ = _data(5)
    ls = np.array([0.3, 1.5, 0.7])
    K = matern52(X, X[:3], ls, 2.0)
    for i in range(5):
        for j in range(3):
            assert K[i, j] == pytest.approx(_matern_by_loops(X[i], X[j], ls, 2.0), rel=1e-12)
    assert np.allclose(np.diag(matern52(X, X, ls, 2.0)), 2.0)


def test_posterior_mean_and_variance_match_dense_inverse():
    X, y = _data()
    gp = GaussianProcess(theta=np.array([-1.0, 0.2, 0.5, 0.3, math.log(1e-3)]), optimize=False).fit(X, y)
    Xs = np.random.default_rng(1).random((7, 3))
    mean, var = gp.predict(Xs)
    # Direct dense computation with an explicit inverse, in the units of y.
    ls, s2, noise = np.exp([-1.0, 0.2, 0.5]), math.exp(0.3), 1e-3
    y_mean, y_std = y.mean(), y.std()
    K = matern52(X, X, ls, s2) + (noise + gpmod.JITTER) * np.eye(len(X))
    K_inv = np.linalg.inv(K)
    k_star = matern52(Xs, X, ls, s2)
    dense_mean = y_mean + y_std * (k_star @ K_inv @ ((y - y_mean) / y_std))
    dense_var = y_std ** 2 * (s2 - np.einsum("ai,ij,aj->a", k_star, K_inv, k_star))
    np.testing.assert_allclose(mean, dense_mean, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(var, dense_var, rtol=1e-7, atol=1e-12)


def test_posterior_interpolates_noise_free_data_and_reverts_to_prior_far_away():
    X, y = _data()
    gp = GaussianProcess(theta=np.array([-1.0, -1.0, -1.0, 0.0, math.log(1e-6)]), optimize=False).fit(X, y)
    mean, var = gp.predict(X)
    np.testing.assert_allclose(mean, y, atol=1e-3)
    assert np.all(var < 1e-4 * y.var())
    _, far_var = gp.predict(np.full((1, 3), 50.0))
    assert far_var[0] == pytest.approx(y.var() * math.exp(0.0), rel=1e-6)


def test_log_marginal_likelihood_gradient_matches_finite_differences():
    X, y = _data(15)
    y = (y - y.mean()) / y.std()
    for theta in (np.array([-1.0, 0.3, 0.5, 0.2, math.log(1e-2)]),
                  np.array([0.5, -2.0, 1.0, -0.7, math.log(0.3)])):
        lml, grad = log_marginal_likelihood(theta, X, y)
        h = 1e-6
        numeric = np.array([(log_marginal_likelihood(theta + e, X, y, return_grad=False)
                             - log_marginal_likelihood(theta - e, X, y, return_grad=False)) / (2 * h)
                            for e in np.eye(len(theta)) * h])
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)


def test_log_marginal_likelihood_equals_gaussian_log_density():
    X, y = _data(8)
    theta = np.array([-0.5, 0.1, 0.4, 0.2, math.log(0.05)])
    ls, s2, noise = np.exp(theta[:3]), math.exp(theta[3]), math.exp(theta[4])
    K = matern52(X, X, ls, s2) + (noise + gpmod.JITTER) * np.eye(len(X))
    sign, logdet = np.linalg.slogdet(K)
    dense = -0.5 * y @ np.linalg.inv(K) @ y - 0.5 * logdet - 0.5 * len(y) * math.log(2 * math.pi)
    assert log_marginal_likelihood(theta, X, y, return_grad=False) == pytest.approx(dense, rel=1e-10)


def test_prior_gradient_matches_finite_differences():
    prior = KernelPrior(4)
    theta = np.random.default_rng(0).normal(size=6)
    _, grad = prior.log_density(theta)
    h = 1e-6
    numeric = [(prior.log_density(theta + e)[0] - prior.log_density(theta - e)[0]) / (2 * h)
               for e in np.eye(6) * h]
    np.testing.assert_allclose(grad, numeric, rtol=1e-6)


def test_fit_recovers_relevant_and_irrelevant_dimensions():
    rng = np.random.default_rng(0)
    X = rng.random((40, 2))
    y = np.sin(6 * X[:, 0])           # the second input does not matter
    gp = GaussianProcess(seed=0).fit(X, y)
    assert gp.length_scales[1] > 5 * gp.length_scales[0]


def test_expected_improvement_closed_form_cases():
    # At mean == best, z = 0 and EI = sigma * phi(0) = sigma / sqrt(2 pi).
    assert expected_improvement(1.0, 2.0, 1.0) == pytest.approx(2.0 / math.sqrt(2 * math.pi))
    # EI = E[max(best - f, 0)] by Monte Carlo for f ~ N(0.3, 0.5^2), best 0.
    f = np.random.default_rng(0).normal(0.3, 0.5, size=2_000_000)
    assert expected_improvement(0.3, 0.5, 0.0) == pytest.approx(np.maximum(-f, 0).mean(), rel=5e-3)
    # Far below the best, EI -> best - mean.
    assert expected_improvement(-10.0, 0.1, 0.0) == pytest.approx(10.0, rel=1e-12)


def test_log_ei_agrees_with_log_of_ei_where_ei_is_representable():
    mean = np.array([0.0, 0.5, 1.0, 3.0, 8.0, -2.0])
    std = np.array([1.0, 0.3, 2.0, 0.5, 0.9, 0.1])
    np.testing.assert_allclose(log_expected_improvement(mean, std, 0.2),
                               np.log(expected_improvement(mean, std, 0.2)), rtol=1e-10)


def test_log_ei_is_finite_and_accurate_for_huge_negative_z():
    z = np.array([-40.0, -1e2, -1e3 + 1e-9, -1e3 - 1e-9, -1e5, -1e10, -1e150])
    values = log_h(z)
    assert np.all(np.isfinite(values))
    # Asymptotics: h(z) ~ phi(z) / z^2 for z -> -inf.
    expected = -0.5 * z ** 2 - 0.5 * math.log(2 * math.pi) - 2 * np.log(-z)
    np.testing.assert_allclose(values[1:], expected[1:], rtol=1e-6)
    # Monotone increasing, also across the branch switch points (-1 and -1e3).
    grid = np.concatenate([np.linspace(-1100, -900, 401), np.linspace(-1.5, -0.5, 401)])
    assert np.all(np.diff(log_h(grid)) > 0)
    # Continuous across the branches.
    for z0 in (-1.0, -1e3):
        assert log_h(np.array([z0 - 1e-9]))[0] == pytest.approx(log_h(np.array([z0 + 1e-9]))[0], rel=1e-7)


@pytest.mark.parametrize("kind", ["log_ei", "ucb"])
def test_acquisition_gradient_matches_finite_differences(kind):
    X, y = _data(20)
    gp = GaussianProcess(seed=0).fit(X, y)
    U = np.random.default_rng(3).random((6, 3))
    best = float(gp.y_norm.min())
    _, grad = acquisition_and_grad(gp, U, best, kind)
    h = 1e-6
    numeric = np.stack([(acquisition_and_grad(gp, U + e, best, kind, return_grad=False)
                         - acquisition_and_grad(gp, U - e, best, kind, return_grad=False)) / (2 * h)
                        for e in np.eye(3) * h], axis=1)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- GPSearch

from nnhp.search import Choice, Float, Int, Space, Study  # noqa: E402


def _branin(x1, x2):
    return ((x2 - 5.1 / (4 * math.pi ** 2) * x1 ** 2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


def test_gp_search_finds_branins_minimum():
    study = Study(Space({"x1": Float(-5, 10), "x2": Float(0, 15)}), searcher=GPSearch(seed=0))
    study.optimize(lambda t: _branin(**t.params), n_trials=35)
    assert study.best_value - 0.397887 < 0.05
    # The first n_initial trials are the quasi-random design, the rest model-based.
    phases = [t.info["phase"] for t in study.trials]
    assert phases[:10] == ["initial"] * 10 and set(phases[10:]) == {"model"}


MIXED_SPACE = {
    "lr": Float(1e-4, 1e-1, log=True),
    "units": Int(32, 512, step=32),
    "layers": Int(1, 4),
    "width": Int(2, 300, log=True),
    "activation": Choice(["relu", "tanh", "sigmoid"]),
    "momentum": Float(0.5, 0.99, when=("optimizer", "==", "sgd")),
    "optimizer": Choice(["sgd", "adam"]),
}


def _mixed_objective(p):
    value = (math.log10(p["lr"]) + 2.5) ** 2 + (p["units"] - 200) ** 2 / 1e4 + 0.3 * p["layers"]
    value += {"relu": 0.0, "tanh": 0.5, "sigmoid": 1.0}[p["activation"]] + 0.01 * abs(p["width"] - 40)
    return value + (abs(p["momentum"] - 0.9) if p["optimizer"] == "sgd" else 0.2)


def test_integer_choice_and_conditional_proposals_are_always_valid_and_distinct():
    space = Space(MIXED_SPACE)
    for seed in range(6):
        study = Study(space, searcher=GPSearch(seed=seed, n_initial=5))
        for _ in range(16):
            trial = study.ask()
            p = trial.params
            assert space.validate(p) == p                      # in range, on the step grid
            assert isinstance(p["units"], int) and p["units"] % 32 == 0
            assert isinstance(p["layers"], int) and isinstance(p["width"], int)
            assert p["activation"] in ("relu", "tanh", "sigmoid")
            assert ("momentum" in p) == (p["optimizer"] == "sgd")
            study.tell(trial, _mixed_objective(p))
        keys = [space.key(t.params) for t in study.trials]
        assert len(set(keys)) == len(keys)


def test_gp_search_improves_on_a_mixed_space():
    study = Study(Space(MIXED_SPACE), searcher=GPSearch(seed=0))
    study.optimize(lambda t: _mixed_objective(t.params), n_trials=40)
    initial_best = min(t.value for t in study.trials[:10])
    assert study.best_value < initial_best


def test_constant_liar_gives_distinct_pending_proposals():
    space = Space({"x": Float(0, 1), "y": Float(0, 1)})
    study = Study(space, searcher=GPSearch(seed=0, n_initial=5))
    study.optimize(lambda t: (t.params["x"] - 0.2) ** 2 + (t.params["y"] - 0.7) ** 2, n_trials=8)
    pending = [study.ask() for _ in range(6)]         # six asks before any tell
    points = np.array([[t.params["x"], t.params["y"]] for t in pending])
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)[np.triu_indices(6, 1)]
    assert distances.min() > 1e-3
    assert all(t.info["phase"] == "model" for t in pending)


def test_failed_trials_are_left_out_and_the_search_goes_on():
    space = Space({"x": Float(0, 1), "y": Float(0, 1)})
    study = Study(space, searcher=GPSearch(seed=0, n_initial=4))

    def objective(trial):
        x, y = trial.params["x"], trial.params["y"]
        if x > 0.6:
            raise FloatingPointError("diverged")
        return (x - 0.3) ** 2 + (y - 0.5) ** 2

    study.optimize(objective, n_trials=25)
    states = [t.state for t in study.trials]
    assert len(states) == 25 and "failed" in states
    assert study.best_value < 0.01
    keys = [space.key(t.params) for t in study.trials]
    assert len(set(keys)) == len(keys)


def test_all_failed_initial_trials_do_not_stall():
    study = Study(Space({"x": Float(0, 1)}), searcher=GPSearch(seed=0, n_initial=3))
    calls = []

    def objective(trial):
        calls.append(trial.params["x"])
        if len(calls) <= 5:
            raise RuntimeError("boom")
        return trial.params["x"]

    study.optimize(objective, n_trials=12)
    assert len(study.trials) == 12 and len(set(calls)) == 12


def test_maximize_direction_and_ucb():
    space = Space({"x": Float(-2, 2)})
    for acquisition in ("log_ei", "ucb"):
        study = Study(space, searcher=GPSearch(seed=1, acquisition=acquisition, n_initial=4),
                      direction="maximize")
        study.optimize(lambda t: -(t.params["x"] - 0.7) ** 2, n_trials=15)
        assert abs(study.best_params["x"] - 0.7) < 0.05


def test_small_finite_space_is_exhausted_without_duplicates():
    space = Space({"a": Int(0, 2), "b": Choice(["p", "q"])})
    study = Study(space, searcher=GPSearch(seed=0, n_initial=2))
    study.optimize(lambda t: t.params["a"] + (t.params["b"] == "q"), n_trials=6)
    keys = [space.key(t.params) for t in study.trials]
    assert len(set(keys)) == 6


def test_unknown_acquisition_is_rejected():
    with pytest.raises(ValueError, match="acquisition"):
        GPSearch(acquisition="pi")


def test_yeo_johnson_matches_scipy_and_warping_keeps_the_order():
    stats = pytest.importorskip("scipy.stats")
    y = np.random.default_rng(0).lognormal(size=40) - 1.5
    for lam in (-1.5, 0.0, 0.5, 1.0, 2.0, 2.5):
        np.testing.assert_allclose(gpmod.yeo_johnson(y, lam), stats.yeojohnson(y, lam), rtol=1e-12, atol=1e-12)
    heavy = np.concatenate([np.linspace(0, 1, 30), [50.0, 400.0, 3000.0]])   # a few exploding losses
    warped = gpmod.warp_outputs(heavy)
    assert np.array_equal(np.argsort(warped), np.argsort(heavy))
    spread = (warped[29] - warped[0]) / (warped.max() - warped.min())
    assert spread > 10 * (heavy[29] - heavy[0]) / (heavy.max() - heavy.min())   # the good part is resolved


def test_initial_design_is_a_latin_hypercube():
    space = Space({"a": Float(0, 1), "b": Float(0, 1), "c": Float(0, 1)})
    study = Study(space, searcher=GPSearch(seed=3, n_initial=8))
    study.optimize(lambda t: sum(t.params.values()), n_trials=8)
    points = np.array([space.encode(t.params) for t in study.trials])
    for column in points.T:                       # each of the 8 strata of each axis hit once
        assert sorted(np.floor(column * 8).astype(int)) == list(range(8))


def test_no_proposal_closer_than_min_distance():
    space = Space({"x": Float(0, 1), "y": Float(0, 1)})
    study = Study(space, searcher=GPSearch(seed=0, n_initial=5, min_distance=0.02))
    study.optimize(lambda t: (t.params["x"] - 1.0) ** 2 + (t.params["y"] - 0.3) ** 2, n_trials=25)
    points = np.array([space.encode(t.params) for t in study.trials])
    gaps = np.abs(points[:, None] - points[None]).max(axis=-1)[np.triu_indices(len(points), 1)]
    assert gaps.min() >= 0.02


# --- the same seed, the same search; a reopened study continues it -------------------------------
def _branin_objective(trial):
    return _branin(**trial.params)


def _branin_study(seed=0, storage=None, **kwargs):
    return Study(Space({"x1": Float(-5, 10), "x2": Float(0, 15)}),
                 searcher=GPSearch(seed=seed, n_initial=4, **kwargs), storage=storage, name="gp")


def _proposed(trials):
    return [(t.params, t.info) for t in trials]       # info: the phase, and the fitted theta


def test_the_same_seed_proposes_the_same_sequence_and_another_seed_another():
    runs = {}
    for key, seed in (("a", 3), ("again", 3), ("other", 4)):
        study = _branin_study(seed)
        study.optimize(_branin_objective, n_trials=9)
        runs[key] = _proposed(study.trials)
    assert runs["a"] == runs["again"]
    assert [p for p, _ in runs["other"]][0] != [p for p, _ in runs["a"]][0]
    assert runs["other"][4:] != runs["a"][4:]        # the model-based part diverges too


# Stopped inside the initial design, right after it, and between model-based trials (after 6, the
# reopened fit goes wrong unless it warm-starts from the theta recorded with trial 5); the second
# searcher is past full_refit_until, where only every third fit restarts from scratch.
@pytest.mark.parametrize("refits", [{}, {"full_refit_until": 5, "full_refit_every": 3}])
@pytest.mark.parametrize("stopped_after", [2, 4, 6, 9])
def test_a_reopened_study_proposes_what_the_uninterrupted_one_would(tmp_path, stopped_after, refits):
    total = 12                                  # n_initial = 4, then 8 proposals from the GP
    first = _branin_study(storage=str(tmp_path / "study.db"), **refits)
    first.optimize(_branin_objective, n_trials=stopped_after)
    first.storage.close()
    again = _branin_study(storage=str(tmp_path / "study.db"), **refits)    # a new process: a new searcher
    again.optimize(_branin_objective, n_trials=total - stopped_after)
    uninterrupted = _branin_study(**refits)
    uninterrupted.optimize(_branin_objective, n_trials=total)
    assert _proposed(again.trials) == _proposed(uninterrupted.trials)    # exact floats


def test_seed_none_is_resolved_once_to_a_seed_that_replays_the_search():
    searcher = GPSearch(seed=None, n_initial=3)
    assert isinstance(searcher.seed, int)
    space = Space({"x": Float(0, 1), "y": Float(0, 1)})
    first, replay = Study(space, searcher=searcher), Study(space, searcher=GPSearch(seed=searcher.seed, n_initial=3))
    for study in (first, replay):
        study.optimize(lambda t: (t.params["x"] - 0.3) ** 2 + t.params["y"], n_trials=5)
    assert _proposed(first.trials) == _proposed(replay.trials)


def test_nnhp_tune_with_gp_resumed_from_storage_matches_an_uninterrupted_run(tmp_path, capsys):
    from nnhp.cli import main

    def tune(trials, db):
        assert main(["tune", "--data", "moons", "--searcher", "gp", "--trials", str(trials), "--max-epochs", "2",
                     "--set", "n_layers=1", "--storage", str(tmp_path / db), "--quiet"]) == 0

    tune(14, "whole.db")                  # the default config and 9 more initial trials, then 4 from the GP
    tune(12, "resumed.db")                # stopped after the first GP trial ...
    tune(14, "resumed.db")                # ... and run again: the same command continues the study
    capsys.readouterr()
    whole, resumed = (Study(storage=tmp_path / db, name="tune").trials for db in ("whole.db", "resumed.db"))
    assert [t.info.get("phase") for t in resumed] == [None] + ["initial"] * 9 + ["model"] * 4
    assert [(t.params, t.info, t.value) for t in resumed] == [(t.params, t.info, t.value) for t in whole]
