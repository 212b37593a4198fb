"""The workload registry: fixed problems, split and standardized once, noisy labels only where meant."""
import dataclasses

import numpy
import pytest

from nnhp.bench import workloads
from nnhp.bench.workloads import WORKLOADS, Workload, get_workload, load_splits, user_workload


def test_the_registry_holds_at_least_five_distinct_workloads():
    assert len(WORKLOADS) >= 5
    assert {"digits_mlp", "regression_mlp", "deep_tanh", "wide_mlp", "noisy_digits"} <= set(WORKLOADS)
    for name, workload in WORKLOADS.items():
        assert workload.name == name and workload.epochs >= 1 and workload.batch_size >= 1
    assert WORKLOADS["regression_mlp"].metric == "loss" and WORKLOADS["digits_mlp"].metric == "error"
    assert len(WORKLOADS["deep_tanh"].hidden) >= 6 and WORKLOADS["deep_tanh"].activation == "tanh"
    assert WORKLOADS["wide_mlp"].hidden[0] >= 1024


def test_splits_are_60_20_20_standardized_on_training_data():
    splits = load_splits(WORKLOADS["regression_mlp"])
    sizes = [len(splits.X_train), len(splits.X_val), len(splits.X_test)]
    assert sizes == [600, 200, 200]
    numpy.testing.assert_allclose(splits.X_train.mean(axis=0), 0, atol=1e-9)
    numpy.testing.assert_allclose(splits.X_train.std(axis=0), 1, atol=1e-9)
    assert splits.n_outputs == 1
    assert load_splits(WORKLOADS["regression_mlp"]) is splits            # loaded once per process


def test_noisy_labels_touch_only_the_training_part():
    clean, noisy = load_splits(WORKLOADS["digits_mlp"]), load_splits(WORKLOADS["noisy_digits"])
    flipped = numpy.mean(clean.y_train != noisy.y_train)
    assert flipped == pytest.approx(0.3, abs=0.005)
    numpy.testing.assert_array_equal(clean.y_val, noisy.y_val)
    numpy.testing.assert_array_equal(clean.y_test, noisy.y_test)
    numpy.testing.assert_array_equal(clean.X_train, noisy.X_train)


def test_another_epoch_budget_drops_the_fixed_target():
    workload = dataclasses.replace(WORKLOADS["digits_mlp"], target=0.03)
    assert workload.with_epochs(workload.epochs) is workload
    shorter = workload.with_epochs(5)
    assert shorter.epochs == 5 and shorter.target is None


def test_identity_names_what_defines_the_runs_but_not_the_target():
    workload = WORKLOADS["deep_tanh"]
    identity = workload.identity()
    assert identity["hidden"] == [16] * 8 and identity["epochs"] == workload.epochs
    assert "target" not in identity
    assert dataclasses.replace(workload, target=0.5).identity() == identity


def test_a_user_csv_becomes_a_workload(tmp_path):
    rng = numpy.random.default_rng(0)
    X = rng.normal(size=(90, 3))
    y = (X[:, 0] > 0).astype(int)
    path = tmp_path / "mine.csv"
    path.write_text("a,b,c,label\n" + "\n".join(f"{a},{b},{c},{t}" for (a, b, c), t in zip(X, y)))
    workload = user_workload(str(path), hidden=(8,), epochs=4, target_column="label")
    assert (workload.name, workload.loss, workload.hidden, workload.epochs) == ("mine", "cross_entropy", (8,), 4)
    assert workload.identity()["data"].startswith("90x3 float64")     # the file's content, not its path
    splits = load_splits(workload)
    assert len(splits.X_train) == 54 and splits.n_outputs == 2


def test_unknown_workload_suggests_the_nearest():
    with pytest.raises(ValueError, match=r"unknown workload 'digits' \(did you mean 'digits_mlp'\?\)"):
        get_workload("digits")


def test_a_classification_loss_on_regression_data_is_refused():
    workload = Workload("bad", "", "regression", (4,), data_options=(("n_samples", 50),))
    with pytest.raises(ValueError, match="workload 'bad': loss 'cross_entropy' needs class labels"):
        workloads.load_splits(workload)
