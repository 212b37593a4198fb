"""nnhp/losses.py: values against textbook formulas, gradients against finite differences,
stability for huge logits, and target validation."""
import numpy as np
import pytest

from nnhp import losses


def log_softmax_naive(z):
    """log softmax straight from the definition (fine for the small logits used here)."""
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def check_loss_gradient(gradcheck, loss, out, y):
    name, loss = loss.name, gradcheck.through(loss)

    def objective():
        return loss.forward(out, y)

    loss.forward(out, y)
    analytic = np.array(loss.backward(), copy=True)
    assert analytic.shape == out.shape
    gradcheck.assert_close(analytic, gradcheck.numeric(objective, out), name)


# --- cross-entropy ------------------------------------------------------------------------
def test_cross_entropy_with_integer_labels_value_and_gradient(gradcheck, rng):
    loss = losses.get("cross_entropy")
    out = rng.normal(scale=2.0, size=(6, 4))
    y = loss.prepare_targets(np.array([0, 3, 1, 2, 3, 0]), 4, dtype=np.float64)
    assert y.dtype.kind == "i"
    expected = -log_softmax_naive(out)[np.arange(6), y].mean()
    np.testing.assert_allclose(loss.forward(out, y), expected, rtol=1e-12)
    check_loss_gradient(gradcheck, loss, out, y)


def test_cross_entropy_with_one_hot_rows_equals_integer_labels(gradcheck, rng):
    loss = losses.get("cross_entropy")
    out = rng.normal(size=(5, 3))
    labels = np.array([2, 0, 1, 1, 2])
    one_hot = np.eye(3)[labels]
    by_label = loss.forward(out, labels)
    grad_label = loss.backward().copy()
    by_row = loss.forward(out, loss.prepare_targets(one_hot, 3, dtype=np.float64))
    np.testing.assert_allclose(by_row, by_label, rtol=1e-12)
    np.testing.assert_allclose(loss.backward(), grad_label, rtol=1e-12, atol=1e-15)
    check_loss_gradient(gradcheck, loss, out, one_hot)


def test_cross_entropy_with_probability_rows_value_and_gradient(gradcheck, rng):
    loss = losses.get("cross_entropy")
    out = rng.normal(size=(5, 4))
    targets = rng.dirichlet(np.ones(4), size=5)
    targets = loss.prepare_targets(targets, 4, dtype=np.float64)
    expected = -(targets * log_softmax_naive(out)).sum(axis=1).mean()
    np.testing.assert_allclose(loss.forward(out, targets), expected, rtol=1e-12)
    check_loss_gradient(gradcheck, loss, out, targets)


def test_cross_entropy_is_stable_for_huge_logits():
    loss = losses.get("cross_entropy")
    out = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4 - 2.0, 1e4], [3e4, 3e4, 3e4]])
    y = np.array([1, 1, 2])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss.forward(out, y)
        grad = loss.backward()
    assert np.isfinite(value) and np.isfinite(grad).all()
    # Softmax is shift-invariant: subtracting each row's maximum gives the same numbers,
    # and for those shifted logits the naive formula is safe.
    shifted = out - out.max(axis=1, keepdims=True)
    expected = -log_softmax_naive(shifted)[np.arange(3), y].mean()
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    expected_grad = (np.exp(log_softmax_naive(shifted)) - np.eye(3)[y]) / 3
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-300)
    # Row 0 puts the whole mass on class 0 while the label is 1: loss 1e4 for that row.
    np.testing.assert_allclose(expected, (1e4 + 2.0 + np.log1p(np.exp(-2.0)) + np.log(3)) / 3, rtol=1e-12)


def test_cross_entropy_gradient_rows_sum_to_zero(rng):
    loss = losses.get("cross_entropy")
    loss.forward(rng.normal(size=(8, 5)), rng.integers(0, 5, 8))
    np.testing.assert_allclose(loss.backward().sum(axis=1), 0.0, atol=1e-15)


def test_cross_entropy_output_transform_is_softmax(rng):
    out = rng.normal(size=(4, 3))
    probabilities = losses.get("cross_entropy").output_transform(out.copy())
    np.testing.assert_allclose(probabilities, np.exp(log_softmax_naive(out)), rtol=1e-12)
    assert np.isfinite(losses.get("cross_entropy").output_transform(np.array([[1e4, -1e4]]))).all()


def test_cross_entropy_counts_correct_predictions():
    out = np.array([[2.0, 1.0], [0.0, 3.0], [5.0, -1.0]])
    assert losses.get("cross_entropy").correct(out, np.array([0, 1, 1])) == 2
    assert losses.get("cross_entropy").correct(out, np.eye(2)[[0, 1, 1]]) == 2


def test_cross_entropy_target_validation():
    loss = losses.get("cross_entropy")
    with pytest.raises(ValueError, match="at least 2 outputs"):
        loss.prepare_targets(np.array([0, 1]), 1)
    with pytest.raises(ValueError, match="summing to 1"):
        loss.prepare_targets(np.array([[0.5, 0.7], [1.0, 0.0]]), 2)
    with pytest.raises(ValueError, match="summing to 1"):
        loss.prepare_targets(np.array([[1.5, -0.5], [1.0, 0.0]]), 2)
    with pytest.raises(ValueError, match="out of range"):
        loss.prepare_targets(np.array([0, 3]), 3)


# --- binary cross-entropy --------------------------------------------------------------------
def bce_naive(z, t):
    s = 1 / (1 + np.exp(-z))
    return -(t * np.log(s) + (1 - t) * np.log(1 - s)).mean()


def test_binary_cross_entropy_single_output_value_and_gradient(gradcheck, rng):
    loss = losses.get("binary_cross_entropy")
    out = rng.normal(scale=2.0, size=(7, 1))
    y = loss.prepare_targets(np.array([0, 1, 1, 0, 1, 0, 0]), 1, dtype=np.float64)
    assert y.shape == (7, 1)
    np.testing.assert_allclose(loss.forward(out, y), bce_naive(out, y), rtol=1e-12)
    check_loss_gradient(gradcheck, loss, out, y)


def test_binary_cross_entropy_multi_output_soft_targets(gradcheck, rng):
    loss = losses.get("binary_cross_entropy")
    out = rng.normal(size=(5, 3))
    y = rng.uniform(0, 1, size=(5, 3))
    np.testing.assert_allclose(loss.forward(out, y), bce_naive(out, y), rtol=1e-12)
    check_loss_gradient(gradcheck, loss, out, y)


def test_binary_cross_entropy_is_stable_for_huge_logits():
    loss = losses.get("binary_cross_entropy")
    out = np.array([[1e4], [-1e4], [1e4], [-1e4]])
    y = np.array([[1.0], [0.0], [0.0], [1.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss.forward(out, y)
        grad = loss.backward()
    # Two confident right answers cost 0; two confident wrong ones cost 1e4 each.
    np.testing.assert_allclose(value, 2e4 / 4, rtol=1e-12)
    np.testing.assert_allclose(grad, (np.array([[1.0], [0.0], [1.0], [0.0]]) - y) / 4)


def test_binary_cross_entropy_rejects_targets_outside_unit_interval():
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        losses.get("binary_cross_entropy").prepare_targets(np.array([0.0, 2.0]), 1)


def test_binary_cross_entropy_accuracy_per_output():
    out = np.array([[1.0, -1.0], [-2.0, -3.0]])
    y = np.array([[1.0, 1.0], [0.0, 0.0]])
    assert losses.get("bce").correct(out, y) == pytest.approx(1.5)


# --- regression losses ---------------------------------------------------------------------
def test_mse_value_and_gradient(gradcheck, rng):
    loss = losses.get("mse")
    out, y = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    np.testing.assert_allclose(loss.forward(out, y), ((out - y) ** 2).mean(), rtol=1e-12)
    check_loss_gradient(gradcheck, loss, out, y)


def test_mae_value_and_gradient_away_from_zero_residuals(gradcheck, rng):
    loss = losses.get("mae")
    y = rng.normal(size=(6, 2))
    out = y + rng.uniform(0.1, 1.0, size=y.shape) * rng.choice([-1.0, 1.0], size=y.shape)
    np.testing.assert_allclose(loss.forward(out, y), np.abs(out - y).mean(), rtol=1e-12)
    check_loss_gradient(gradcheck, loss, out, y)


def test_huber_value_and_gradient_in_both_regions(gradcheck, rng):
    delta = 0.8
    loss = losses.get("huber", delta=delta)
    y = rng.normal(size=(8, 3))
    magnitude = np.concatenate([rng.uniform(0.05, 0.7, size=(4, 3)),     # quadratic part
                                rng.uniform(0.9, 3.0, size=(4, 3))])     # linear part
    out = y + magnitude * rng.choice([-1.0, 1.0], size=y.shape)
    d = np.abs(out - y)
    expected = np.where(d <= delta, 0.5 * d ** 2, delta * (d - 0.5 * delta)).mean()
    np.testing.assert_allclose(loss.forward(out, y), expected, rtol=1e-12)
    check_loss_gradient(gradcheck, loss, out, y)


def test_regression_losses_accept_one_dimensional_targets_for_one_output():
    targets = losses.get("mse").prepare_targets(np.array([1.0, 2.0, 3.0]), 1, dtype=np.float64)
    assert targets.shape == (3, 1)
    with pytest.raises(ValueError, match="expected shape \\(n, 2\\)"):
        losses.get("mse").prepare_targets(np.array([1.0, 2.0, 3.0]), 2)


def test_regression_losses_have_no_accuracy():
    with pytest.raises(NotImplementedError, match="not a classification loss"):
        losses.get("mse").correct(np.zeros((2, 1)), np.zeros((2, 1)))


# --- names ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, cls", [("cross_entropy", losses.CrossEntropy), ("ce", losses.CrossEntropy),
                                       ("bce", losses.BinaryCrossEntropy), ("mse", losses.MeanSquaredError),
                                       ("mean_absolute_error", losses.MeanAbsoluteError),
                                       ("huber", losses.Huber)])
def test_get_returns_losses_by_name_and_alias(name, cls):
    assert isinstance(losses.get(name), cls)


def test_get_passes_instances_through():
    huber = losses.Huber(delta=2.0)
    assert losses.get(huber) is huber


def test_unknown_loss_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        losses.get("hinge")


def test_huber_delta_must_be_positive():
    with pytest.raises(ValueError, match="delta must be positive"):
        losses.Huber(delta=0.0)


@pytest.mark.parametrize("name", ["mse", "mae", "huber", "binary_cross_entropy"])
def test_single_output_losses_take_flat_targets_without_broadcasting(name):
    """(n,) targets against (n, 1) outputs must not broadcast into an (n, n) loss."""
    out = np.array([[0.5], [-1.0], [2.0]])
    y = np.array([1.0, 0.0, 1.0])
    loss = losses.get(name)
    assert loss.forward(out, y) == pytest.approx(loss.forward(out, y.reshape(-1, 1)), rel=1e-15)
    assert loss.backward().shape == out.shape


@pytest.mark.parametrize("name", ["mse", "mae", "huber", "binary_cross_entropy", "cross_entropy"])
def test_targets_of_the_wrong_shape_are_a_clear_error(name):
    out = np.zeros((4, 2))
    with pytest.raises(ValueError, match="do not match outputs|labels for"):
        losses.get(name).forward(out, np.zeros((3, 2)) if name != "cross_entropy" else np.zeros(3, dtype=int))
