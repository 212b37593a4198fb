"""Tests for nnhp/tuning/scaling.py: tune trains on standardized data and returns raw-data models."""
import numpy as np
import pytest

import nnhp
from nnhp.data import make_spirals, train_test_split
from nnhp.model import MLP
from nnhp.search import Int, StudyMismatchError
from nnhp.train import evaluate
from nnhp.tuning.scaling import Standardizer

SMALL = {"n_layers": 1, "units_1": Int(16, 32), "epochs": 6, "batch_size": 64}
SETTINGS = dict(searcher="random", space=SMALL, n_trials=3, max_epochs=6, seed=0, refit=False)


def _raw_features(X, rng):
    """X with each feature moved and stretched by its own amount: 1e-3 .. 1e3 scales, offsets."""
    scales = 10.0 ** rng.uniform(-3, 3, X.shape[1])
    return X * scales + rng.normal(0, 100, X.shape[1])


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 5))
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=240)
    return X[:180], y[:180], X[180:], y[180:]


def test_folding_makes_the_model_take_raw_inputs_and_give_raw_targets():
    rng = np.random.default_rng(1)
    X_raw = _raw_features(rng.normal(size=(50, 4)), rng)
    y_raw = 300.0 + 50.0 * rng.normal(size=(50, 2))
    scaler = Standardizer.fit(X_raw, y_raw, scale_targets=True)
    model = MLP([4, 7, 2], activation="tanh", seed=0, dtype="float64")
    expected = model.predict(scaler.transform_X(X_raw)) * scaler.y_scale + scaler.y_mean
    scaler.fold_into(model)
    np.testing.assert_allclose(model.predict(X_raw), expected, rtol=1e-9, atol=1e-9)


def test_targets_get_one_scale_so_the_mse_converts_exactly():
    y = np.column_stack([np.arange(10.0), 100 * np.arange(10.0)])
    scaler = Standardizer.fit(np.zeros((10, 1)), y, scale_targets=True)
    assert scaler.y_scale == pytest.approx(np.sqrt(np.mean(y.var(axis=0))))
    np.testing.assert_allclose(scaler.y_mean, y.mean(axis=0))
    prediction = y + np.array([1.0, -2.0])
    raw_mse = np.mean((prediction - y) ** 2)
    scaled_mse = np.mean((scaler.transform_y(prediction) - scaler.transform_y(y)) ** 2)
    assert raw_mse == pytest.approx(scaled_mse * scaler.mse_factor)


def test_a_constant_feature_is_centred_not_divided_by_zero():
    X = np.column_stack([np.full(8, 5.0), np.arange(8.0)])
    scaler = Standardizer.fit(X, np.arange(8) % 2, scale_targets=False)
    assert scaler.x_scale[0] == 1.0 and scaler.y_scale is None
    assert np.all(np.isfinite(scaler.transform_X(X))) and np.all(scaler.transform_X(X)[:, 0] == 0)


def test_a_feature_constant_up_to_rounding_counts_as_constant_but_a_small_one_does_not():
    # A constant column after someone else's standardization: its std is rounding's residue.
    residue = 0.05 + np.tile([0.0, 1e-17], 150)
    assert 0 < np.std(residue) < 1e-16
    tiny = 1e-10 * np.arange(300.0)                        # small units, real variation
    scaler = Standardizer.fit(np.column_stack([residue, tiny]), None, scale_targets=False)
    assert scaler.x_scale[0] == 1.0
    assert scaler.x_scale[1] == pytest.approx(np.std(tiny))


def test_a_tuned_model_on_pre_standardized_data_with_dead_features_predicts_sanely():
    """Digits' always-blank pixels, standardized by the user first, keep ~1e-17 spreads."""
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
    result = nnhp.tune(X[:400], y[:400], validation_data=(X[400:600], y[400:600]),
                       **{**SETTINGS, "space": {**SMALL, "loss": "cross_entropy"}})
    assert np.all(np.abs(result.best_model.layers[0].W) < 1e3)
    assert evaluate(result.best_model, X[400:600], y[400:600])["accuracy"] == pytest.approx(result.best_value)


def test_the_search_does_not_depend_on_the_features_scales():
    """Standardizing first makes each feature's unit irrelevant: the same trials score the same."""
    X, X_val, y, y_val = train_test_split(*_spirals(), 0.25, seed=0)
    rng = np.random.default_rng(3)
    scales, offsets = 10.0 ** rng.uniform(-3, 3, X.shape[1]), rng.normal(0, 100, X.shape[1])
    plain = nnhp.tune(X, y, validation_data=(X_val, y_val), **SETTINGS)
    moved = nnhp.tune(X * scales + offsets, y, validation_data=(X_val * scales + offsets, y_val), **SETTINGS)
    np.testing.assert_allclose([t.value for t in moved.study.trials], [t.value for t in plain.study.trials],
                               atol=1e-2)
    # ... and the model returned takes the moved features directly.
    accuracy = evaluate(moved.best_model, X_val * scales + offsets, y_val)["accuracy"]
    assert accuracy == pytest.approx(moved.best_value)


def _spirals():
    data = make_spirals(n_samples=300, n_classes=3, noise=0.1, seed=0)
    return data.X, data.y


def test_regression_values_and_models_are_in_the_targets_own_units(regression):
    X, y, X_val, y_val = regression
    plain = nnhp.tune(X, y, validation_data=(X_val, y_val), **SETTINGS)
    shifted = nnhp.tune(X, 1000.0 * y + 5e4, validation_data=(X_val, 1000.0 * y_val + 5e4), **SETTINGS)
    # Same training on the standardized targets; MSEs a million times larger in raw units.
    np.testing.assert_allclose([t.value for t in shifted.study.trials],
                               [1e6 * t.value for t in plain.study.trials], rtol=1e-3)
    raw_mse = evaluate(shifted.search_model, X_val, 1000.0 * y_val + 5e4, loss="mse")["loss"]
    assert raw_mse == pytest.approx(shifted.best_value, rel=1e-4)
    # The refit model predicts raw targets too: the plain refit's errors, a thousand times larger.
    refits = [nnhp.tune(X, a * y + b, validation_data=(X_val, a * y_val + b), **{**SETTINGS, "refit": True})
              for a, b in ((1.0, 0.0), (1000.0, 5e4))]
    assert all(result.refit for result in refits)
    errors = [evaluate(result.best_model, X_val, a * y_val + b, loss="mse")["loss"]
              for result, (a, b) in zip(refits, ((1.0, 0.0), (1000.0, 5e4)))]
    assert errors[1] == pytest.approx(1e6 * errors[0], rel=1e-3)


def test_standardize_false_trains_on_the_data_as_given(regression):
    X, y, X_val, y_val = regression
    on = nnhp.tune(X, 1000.0 * y + 5e4, validation_data=(X_val, 1000.0 * y_val + 5e4), **SETTINGS)
    off = nnhp.tune(X, 1000.0 * y + 5e4, validation_data=(X_val, 1000.0 * y_val + 5e4), standardize=False,
                    **SETTINGS)
    assert off.standardizer is None and on.standardizer is not None
    # Six epochs from outputs near 0 do not reach targets around 50,000; standardized, they start there.
    assert on.best_value < np.var(1000.0 * y_val) < 0.01 * off.best_value


def test_a_stored_study_remembers_whether_it_was_standardized(tmp_path, regression):
    X, y, X_val, y_val = regression
    path = tmp_path / "s.db"
    nnhp.tune(X, y, validation_data=(X_val, y_val), storage=path, **{**SETTINGS, "n_trials": 1})
    with pytest.raises(StudyMismatchError, match="standardize"):
        nnhp.tune(X, y, validation_data=(X_val, y_val), storage=path, standardize=False, **SETTINGS)
