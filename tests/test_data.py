"""nnhp/data.py: input validation messages, CSV loading, splits, standardization, data sets."""
import subprocess
import sys

import numpy as np
import pytest

from nnhp import data
from nnhp.data import (Standardizer, check_labels, check_X, load_csv, make_moons, make_regression,
                       make_spirals, standardize, train_test_split)


# --- check_X --------------------------------------------------------------------------------
def test_check_X_accepts_lists_and_ints_as_float64():
    X = check_X([[1, 2], [3, 4]])
    assert X.dtype == np.float64 and X.shape == (2, 2)
    assert check_X(np.ones((2, 2), dtype=np.float32)).dtype == np.float32
    assert check_X(np.ones((2, 2)), dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("X, error, message", [
    (np.ones(5), ValueError, r"X must be 2-D \(n_samples, n_features\); got shape \(5,\).*reshape\(-1, 1\)"),
    (np.ones((2, 3, 4)), ValueError, r"must be 2-D .*got shape \(2, 3, 4\)"),
    (np.ones((0, 3)), ValueError, "X has no samples"),
    (np.ones((3, 0)), ValueError, "X has no features"),
    (np.array([["a", "b"]]), TypeError, "X must be numeric; got dtype <U1"),
    (np.array([[1 + 2j]]), TypeError, "real-valued"),
    (np.array([[1.0, None]], dtype=object), TypeError, "must be numeric"),
])
def test_check_X_rejects_bad_arrays_with_named_problem(X, error, message):
    with pytest.raises(error, match=message):
        check_X(X)


def test_check_X_reports_how_many_non_finite_values_and_where():
    X = np.zeros((4, 3))
    X[2, 1] = np.nan
    X[3, 0] = np.nan
    X[3, 2] = -np.inf
    with pytest.raises(ValueError, match=r"train X contains 2 NaN and 1 infinite value\(s\) \(first at row 2, column 1\)"):
        check_X(X, name="train X")


def test_check_X_checks_the_feature_count():
    with pytest.raises(ValueError, match="X has 3 features but the model expects 4"):
        check_X(np.ones((2, 3)), n_features=4)


# --- check_labels ------------------------------------------------------------------------------
def test_check_labels_accepts_whole_floats_and_bools():
    np.testing.assert_array_equal(check_labels(np.array([0.0, 2.0, 1.0]), 3), [0, 2, 1])
    assert check_labels(np.array([0.0, 2.0])).dtype == np.int64
    np.testing.assert_array_equal(check_labels(np.array([True, False])), [1, 0])


@pytest.mark.parametrize("y, n_classes, error, message", [
    (np.array([0, 1, 3]), 3, ValueError, r"y has label 3, out of range for a model with 3 outputs \(labels must be in \[0, 3\)\)"),
    (np.array([0, -2, 1]), 3, ValueError, r"y has label -2; labels must be in \[0, 3\)"),
    (np.array([0.0, 1.5]), 3, ValueError, "whole numbers; got e.g. 1.5"),
    (np.array([0.0, np.nan]), 3, ValueError, "y contains 1 NaN"),
    (np.array(["cat", "dog"]), 3, TypeError, "labels must be integers"),
    (np.zeros((3, 2), dtype=int), 3, ValueError, r"must be 1-D \(n,\); got shape \(3, 2\)"),
])
def test_check_labels_rejects_bad_labels_with_named_problem(y, n_classes, error, message):
    with pytest.raises(error, match=message):
        check_labels(y, n_classes)


def test_check_targets_and_small_validators():
    with pytest.raises(ValueError, match="y has shape \\(4, 3\\); expected \\(n, 2\\)"):
        data.check_targets(np.zeros((4, 3)), 2)
    with pytest.raises(ValueError, match="y contains 1 infinite"):
        data.check_targets(np.array([0.0, np.inf]), 1)
    with pytest.raises(ValueError, match="X has 3 samples but y has 2"):
        data.check_same_length(np.zeros((3, 1)), np.zeros(2))
    with pytest.raises(ValueError, match="n must be an integer >= 1; got True"):
        data.check_positive_int(True, "n")
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        data.check_fraction(1.0, "f")


# --- CSV ----------------------------------------------------------------------------------------
def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_load_csv_float_target_is_regression(tmp_path):
    rows = "\n".join(f"{i},{i * 0.5},{i * 1.1 + 0.3}" for i in range(6))
    dataset = load_csv(write(tmp_path, "reg.csv", "a,b,price\n" + rows + "\n"), target="price")
    assert dataset.task == "regression"
    assert dataset.feature_names == ["a", "b"]
    np.testing.assert_allclose(dataset.X[:, 1], np.arange(6) * 0.5)
    np.testing.assert_allclose(dataset.y, np.arange(6) * 1.1 + 0.3)


def test_load_csv_integer_target_is_classification(tmp_path):
    labels = [5, 7, 9] * 5
    rows = "\n".join(f"{label},{i},{i * 2}" for i, label in enumerate(labels))
    dataset = load_csv(write(tmp_path, "cls.csv", "kind,x,y2\n" + rows + "\n"), target="kind")
    assert dataset.task == "classification"
    assert dataset.class_names == ["5", "7", "9"]
    np.testing.assert_array_equal(dataset.y, [0, 1, 2] * 5)
    assert dataset.n_classes == 3
    assert dataset.X.shape == (15, 2) and dataset.feature_names == ["x", "y2"]


def test_load_csv_string_labels_map_to_sorted_classes(tmp_path):
    text = "x1,x2,species\n1,2,versicolor\n3,4,setosa\n5,6,versicolor\n7,8,virginica\n"
    dataset = load_csv(write(tmp_path, "iris.csv", text))   # default target: last column
    assert dataset.task == "classification"
    assert dataset.class_names == ["setosa", "versicolor", "virginica"]
    np.testing.assert_array_equal(dataset.y, [1, 0, 1, 2])


def test_load_csv_target_by_index_and_tsv(tmp_path):
    text = "label\tf\n0.5\t1\n1.5\t2\n2.25\t3\n"
    dataset = load_csv(write(tmp_path, "d.tsv", text), target=0)
    assert dataset.task == "regression"
    np.testing.assert_allclose(dataset.y, [0.5, 1.5, 2.25])
    np.testing.assert_allclose(dataset.X[:, 0], [1, 2, 3])


@pytest.mark.parametrize("text, target, message", [
    ("a,b,t\n1,2,0\n3,4\n", None, "line 3: 2 fields but the header has 3"),
    ("a,b,t\n1,2,0\n3,four,1\n", None, "line 3, column 'b': 'four' is not a number"),
    ("a,b,t\n1,,0\n3,4,1\n", None, "line 2, column 'b': '' is not a number"),
    ("a,b,t\n1,2,0\n", "label", "no column named 'label'; columns are a, b, t"),
], ids=["field_count", "non_numeric_feature", "missing_feature", "unknown_target"])
def test_load_csv_bad_files_name_the_line_and_column(tmp_path, text, target, message):
    with pytest.raises(ValueError, match=message):
        load_csv(write(tmp_path, "bad.csv", text), target=target)


def test_load_csv_needs_a_data_row(tmp_path):
    with pytest.raises(ValueError, match="header row and at least one data row"):
        load_csv(write(tmp_path, "empty.csv", "a,b,t\n"))


def test_load_csv_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="CSV file not found"):
        load_csv(str(tmp_path / "nope.csv"))


def test_load_dataset_by_name_or_path(tmp_path):
    assert data.load_dataset("moons").name == "moons"
    path = write(tmp_path, "d.csv", "a,t\n1,0.5\n2,1.5\n")
    assert data.load_dataset(path, target="t").task == "regression"
    with pytest.raises(ValueError, match="unknown data set 'mnist'"):
        data.load_dataset("mnist")


# --- splits and scaling ----------------------------------------------------------------------------
def test_stratified_split_keeps_class_proportions():
    y = np.repeat([0, 1, 2], [200, 60, 20])
    X = np.arange(len(y), dtype=float).reshape(-1, 1)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, seed=0)
    assert np.bincount(y_test).tolist() == [50, 15, 5]
    assert np.bincount(y_train).tolist() == [150, 45, 15]
    # A partition: every row lands on exactly one side, still paired with its label.
    assert sorted(np.concatenate([X_train[:, 0], X_test[:, 0]]).tolist()) == list(range(len(y)))
    np.testing.assert_array_equal(y[X_test[:, 0].astype(int)], y_test)


def test_unstratified_split_sizes_and_seed():
    X, y = np.arange(40.0).reshape(-1, 1), np.linspace(0, 1, 40)
    first = train_test_split(X, y, test_size=0.3, seed=1, stratify=False)
    again = train_test_split(X, y, test_size=0.3, seed=1, stratify=False)
    other = train_test_split(X, y, test_size=0.3, seed=2, stratify=False)
    assert len(first[1]) == 12 and len(first[0]) == 28
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1], other[1])


def test_split_rejects_bad_sizes():
    X, y = np.zeros((10, 1)), np.zeros(10, dtype=int)
    with pytest.raises(ValueError, match="test_size must be a fraction"):
        train_test_split(X, y, test_size=1.5)
    with pytest.raises(ValueError, match="leaves an empty side"):
        train_test_split(X[:2], y[:2], test_size=0.1, stratify=False)
    with pytest.raises(ValueError, match="X has 10 samples but y has 9"):
        train_test_split(X, y[:9])


def test_standardizer_uses_training_statistics():
    rng = np.random.default_rng(0)
    X_train = rng.normal(loc=[3.0, -1.0, 7.0], scale=[2.0, 0.5, 0.0], size=(500, 3))
    X_test = rng.normal(loc=[3.0, -1.0, 7.0], scale=[2.0, 0.5, 0.0], size=(50, 3))
    scaler = Standardizer().fit(X_train)
    Z = scaler.transform(X_train)
    np.testing.assert_allclose(Z[:, :2].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z[:, :2].std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(Z[:, 2], 0.0)   # constant feature: centred, not divided by 0
    np.testing.assert_allclose(scaler.transform(X_test), (X_test - X_train.mean(0)) / scaler.std, rtol=1e-12)
    train_scaled, test_scaled = standardize(X_train, X_test)
    np.testing.assert_allclose(test_scaled, scaler.transform(X_test), rtol=1e-12)
    np.testing.assert_allclose(standardize(X_train), Z, rtol=1e-12)


def test_standardizer_leaves_a_column_constant_up_to_rounding_unscaled():
    # A constant column someone standardized before keeps a std of rounding's residue (~1e-17).
    residue = 0.05 + np.tile([0.0, 1e-17], 150)
    assert 0 < residue.std() < 1e-16
    tiny = 1e-10 * np.arange(300.0)                  # small units, real spread: scaled
    scaler = Standardizer().fit(np.column_stack([residue, tiny]))
    assert scaler.std[0] == 1.0 and scaler.std[1] == pytest.approx(tiny.std())


def test_standardizer_errors():
    with pytest.raises(RuntimeError, match="before fit"):
        Standardizer().transform(np.ones((2, 2)))
    with pytest.raises(ValueError, match="has 3 features but the model expects 2"):
        Standardizer().fit(np.ones((3, 2))).transform(np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        Standardizer().fit(np.array([[np.nan, 1.0]]))


# --- built-in data sets --------------------------------------------------------------------------
@pytest.mark.parametrize("make, kwargs, n_features, n_classes", [
    (make_moons, {"n_samples": 301}, 2, 2),
    (make_spirals, {"n_samples": 301, "n_classes": 4}, 2, 4),
])
def test_classification_sets_have_the_asked_shape_and_balanced_classes(make, kwargs, n_features, n_classes):
    dataset = make(**kwargs, seed=0)
    assert dataset.X.shape == (301, n_features) and dataset.y.shape == (301,)
    assert dataset.task == "classification" and dataset.n_classes == n_classes
    counts = np.bincount(dataset.y)
    assert counts.max() - counts.min() <= 1


def test_regression_set_shape_and_formula():
    dataset = make_regression(400, n_features=6, noise=0.0, seed=0)
    assert dataset.X.shape == (400, 6) and dataset.y.shape == (400,) and dataset.task == "regression"
    X = dataset.X
    expected = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2 + X[:, 0] * X[:, 2] - np.tanh(X[:, 3])
    np.testing.assert_allclose(dataset.y, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="n_features must be an integer >= 4"):
        make_regression(10, n_features=3)


@pytest.mark.parametrize("make", [make_moons, make_spirals, make_regression])
def test_data_sets_are_deterministic_by_seed(make):
    a, b, c = make(seed=3), make(seed=3), make(seed=4)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)


def test_moons_noise_spreads_the_points():
    clean = make_moons(200, noise=0.0, seed=0)
    # Without noise every point lies on one of the two unit half circles.
    outer = clean.y == 0
    np.testing.assert_allclose(np.hypot(*clean.X[outer].T), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.hypot(clean.X[~outer, 0] - 1, clean.X[~outer, 1] - 0.5), 1.0, rtol=1e-12)
    noisy = make_moons(200, noise=0.2, seed=0)
    assert not np.allclose(np.hypot(*noisy.X[noisy.y == 0].T), 1.0, atol=0.05)


def test_digits_loads_when_scikit_learn_is_installed():
    pytest.importorskip("sklearn")
    digits = data.load_digits()
    assert digits.X.shape == (1797, 64) and digits.y.shape == (1797,)
    assert digits.n_classes == 10 and digits.X.min() == 0 and digits.X.max() == 16


def test_digits_are_scikit_learns_and_load_without_importing_it():
    """Read from scikit-learn's own file: the same numbers, without its 2 s import (issue 11)."""
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    code = ("import sys; from nnhp.data import load_digits; d = load_digits(); "
            "print(d.X.shape, [m for m in ('sklearn', 'scipy') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "(1797, 64) []"
    ours, theirs = data.load_digits(), sklearn_datasets.load_digits()
    np.testing.assert_array_equal(ours.X, theirs.data)
    np.testing.assert_array_equal(ours.y, theirs.target)
    assert ours.X.dtype == np.float64 and ours.y.dtype == np.int64


# --- the CSV target rule (issue 12) --------------------------------------------------------------------
def rows(values, features=2):
    return "".join(",".join([str(i)] * features + [str(v)]) + "\n" for i, v in enumerate(values))


def test_an_empty_target_is_an_error_naming_its_line(tmp_path):
    text = "a,b,t\n" + rows(["x", "y"] * 5) + "\n" + "11,11,\n"      # a blank line before it
    with pytest.raises(ValueError, match=r"empty.csv, line 13: the target 't' is empty"):
        load_csv(write(tmp_path, "empty.csv", text))


def test_a_blank_cell_in_a_float_target_is_an_error_not_a_flood_of_classes(tmp_path):
    text = "a,b,t\n" + rows([0.5 + i / 7 for i in range(59)]) + "1,1,\n"
    with pytest.raises(ValueError, match="line 61: the target 't' is empty"):
        load_csv(write(tmp_path, "f.csv", text))


def test_a_nan_label_names_the_csv_line_not_a_shuffled_row(tmp_path):
    text = "a,b,t\n" + rows([0, 1] * 14 + [1]) + "3,3,NaN\n"
    with pytest.raises(ValueError, match="line 31: the target 't' is 'NaN'"):
        load_csv(write(tmp_path, "nan.csv", text))


def test_minus_one_and_plus_one_labels_are_classes(tmp_path):
    dataset = load_csv(write(tmp_path, "pm.csv", "a,b,t\n" + rows([-1, 1] * 10)))
    assert dataset.task == "classification" and dataset.class_names == ["-1", "1"]
    np.testing.assert_array_equal(dataset.y, [0, 1] * 10)


@pytest.mark.parametrize("values, task", [
    ([0, 1] * 2, "classification"),                        # two values: always labels
    ([0, 1, 2] * 5, "classification"),                     # three values, 5 rows each
    ([0, 1, 2] * 4, "regression"),                         # too few rows per value to be classes
    (list(range(21)) * 10, "regression"),                  # more than 20 distinct whole numbers
    ([0.5, 1.5] * 20, "regression"),                       # not whole numbers
])
def test_the_documented_task_rule(tmp_path, values, task):
    assert data.target_task(np.array(values, dtype=float)) == task
    assert load_csv(write(tmp_path, "d.csv", "a,b,t\n" + rows(values))).task == task


def test_task_overrides_the_rule(tmp_path):
    path = write(tmp_path, "d.csv", "a,b,t\n" + rows([0, 1, 2] * 4))
    assert load_csv(path).task == "regression"
    dataset = load_csv(path, task="classification")
    assert dataset.task == "classification" and dataset.n_classes == 3
    assert load_csv(write(tmp_path, "p.csv", "a,b,t\n" + rows([-1, 1] * 5)), task="regression").task == "regression"
    with pytest.raises(ValueError, match="line 2: the target 't' is 'cat', not a number, but task is regression"):
        load_csv(write(tmp_path, "s.csv", "a,b,t\n" + rows(["cat", "dog"])), task="regression")
    with pytest.raises(ValueError, match="unknown task 'regresion' \\(did you mean 'regression'\\?\\)"):
        load_csv(path, task="regresion")
    with pytest.raises(ValueError, match="'moons' is a classification problem"):
        data.load_dataset("moons", task="regression")


def test_a_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefflabel,x\n0,1\n1,2\n".encode("utf-8"))
    dataset = load_csv(str(path), target="label")
    assert dataset.feature_names == ["x"]


def test_non_finite_features_and_unreadable_files_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="line 3, column 'b': 'inf' is not a finite number"):
        load_csv(write(tmp_path, "i.csv", "a,b,t\n1,2,0\n3,inf,1\n"))
    with pytest.raises(ValueError, match="is a directory, not a CSV file"):
        (tmp_path / "dir.csv").mkdir()
        load_csv(str(tmp_path / "dir.csv"))
    (tmp_path / "latin.csv").write_bytes(b"a,t\n\xe9,0\n")
    with pytest.raises(ValueError, match="not a UTF-8 text file"):
        load_csv(str(tmp_path / "latin.csv"))


# --- float32 overflow (issue 12) ---------------------------------------------------------------------------
def test_values_that_overflow_float32_are_named_as_such():
    X = np.ones((4, 3))
    X[2, 1] = 1e39
    with pytest.raises(ValueError, match=r"X has 1 value\(s\) too large for float32 \(first 1e\+39 at row 2, "
                                         r"column 1; float32 holds magnitudes up to 3.403e\+38\)"):
        check_X(X, dtype=np.float32)
    assert check_X(X, dtype=np.float64)[2, 1] == 1e39


def test_predict_and_fit_refuse_input_that_overflows_the_models_float32():
    import nnhp
    model = nnhp.MLP([3, 4, 2], seed=0)
    X = np.random.default_rng(0).normal(size=(6, 3)) * 1e39     # finite in float64
    with pytest.raises(ValueError, match="too large for float32"):
        model.predict(X)                                         # returned inf/NaN before issue 12
    with pytest.raises(ValueError, match="too large for float32"):
        nnhp.fit(model, X, np.array([0, 1] * 3), epochs=1)
    assert np.isfinite(nnhp.MLP([3, 4, 2], dtype="float64").predict(X)).all()    # float64 holds them
