"""nnhp/layers.py: every layer's backward against finite differences, plus dropout's statistics.

A layer's gradient is checked through the scalar L = sum(forward(x) * R) for a fixed
random R: then dL/dout = R, so ``backward(R)`` must equal the numeric dL/dx (and, for
Dense, dL/dW and dL/db).
"""
import math

import numpy as np
import pytest

from nnhp import layers, philox

ACTIVATION_LAYERS = {
    "relu": lambda: layers.ReLU(),
    "leaky_relu": lambda: layers.LeakyReLU(0.1),
    "elu": lambda: layers.ELU(0.7),
    "tanh": lambda: layers.Tanh(),
    "sigmoid": lambda: layers.Sigmoid(),
    "identity": lambda: layers.Identity(),
}


def away_from_zero(rng, shape, low=0.1, high=2.0):
    """Values with |x| in [low, high] and random signs: no kink of ReLU/LeakyReLU/ELU nearby."""
    return rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)


def bound_dense(n_in, n_out, rng, dtype=np.float64):
    """A Dense layer given its own (non-zero) weights and gradient arrays."""
    dense = layers.Dense(n_in, n_out)
    W = rng.normal(size=(n_in, n_out)).astype(dtype)
    b = rng.normal(size=n_out).astype(dtype)
    dense.bind([W, b], [np.zeros_like(W), np.zeros_like(b)])
    return dense


# --- Dense ------------------------------------------------------------------------------
@pytest.mark.parametrize("training", [False, True])
def test_dense_gradients_match_finite_differences(gradcheck, rng, training):
    dense = bound_dense(5, 4, rng)
    x = rng.normal(size=(7, 5))
    R = rng.normal(size=(7, 4))

    def objective():
        return float((dense.forward(x, training=training) * R).sum())

    dense.forward(x, training=training)
    grad_x = dense.backward(R).copy()
    dW, db = (g.copy() for g in dense.grads)
    W, b = dense.params
    gradcheck.assert_close(dW, gradcheck.numeric(objective, W), "dW")
    gradcheck.assert_close(db, gradcheck.numeric(objective, b), "db")
    gradcheck.assert_close(grad_x, gradcheck.numeric(objective, x), "dX")


def test_dense_forward_is_affine_map(rng):
    dense = bound_dense(3, 2, rng)
    x = rng.normal(size=(4, 3))
    W, b = dense.params
    np.testing.assert_allclose(dense.forward(x), x @ W + b, rtol=1e-12)
    np.testing.assert_allclose(dense.forward(x, training=True), x @ W + b, rtol=1e-12)


def test_dense_backward_writes_into_bound_gradient_arrays(rng):
    dense = bound_dense(3, 2, rng)
    dW, db = dense.grads
    x = rng.normal(size=(4, 3))
    R = rng.normal(size=(4, 2))
    dense.forward(x)
    dense.backward(R)
    np.testing.assert_allclose(dW, x.T @ R, rtol=1e-12)
    np.testing.assert_allclose(db, R.sum(axis=0), rtol=1e-12)


def test_dense_skips_input_gradient_when_not_needed(rng):
    dense = bound_dense(3, 2, rng)
    dense.forward(rng.normal(size=(4, 3)))
    assert dense.backward(rng.normal(size=(4, 2)), need_input_grad=False) is None


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4"])
def test_dense_rejects_non_positive_or_non_integer_sizes(bad):
    with pytest.raises(ValueError, match="positive integer"):
        layers.Dense(bad, 3)


def test_dense_rejects_unknown_init_name():
    with pytest.raises(ValueError, match="unknown init 'glorot_magic'"):
        layers.Dense(3, 2, init="glorot_magic")


# --- activations --------------------------------------------------------------------------
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("name", sorted(ACTIVATION_LAYERS))
def test_activation_gradient_matches_finite_differences(gradcheck, rng, name, training):
    layer = gradcheck.through(ACTIVATION_LAYERS[name]())
    x = away_from_zero(rng, (6, 5))
    R = rng.normal(size=(6, 5))

    def objective():
        return float((layer.forward(x, training=training) * R).sum())

    layer.forward(x, training=training)
    grad_x = np.array(layer.backward(R), copy=True)
    gradcheck.assert_close(grad_x, gradcheck.numeric(objective, x), name)


@pytest.mark.parametrize("name, formula", [
    ("relu", lambda x: np.maximum(x, 0)),
    ("leaky_relu", lambda x: np.where(x > 0, x, 0.1 * x)),
    ("elu", lambda x: np.where(x > 0, x, 0.7 * (np.exp(x) - 1))),
    ("tanh", np.tanh),
    ("sigmoid", lambda x: 1 / (1 + np.exp(-x))),
    ("identity", lambda x: x),
])
def test_activation_forward_matches_its_formula(rng, name, formula):
    x = rng.normal(scale=3.0, size=(5, 4))
    np.testing.assert_allclose(ACTIVATION_LAYERS[name]().forward(x), formula(x), rtol=1e-12, atol=1e-15)


def test_sigmoid_and_elu_do_not_overflow_for_extreme_inputs():
    x = np.array([[-1e4, -800.0, 0.0, 800.0, 1e4]])
    with np.errstate(all="raise"):
        sig = layers.Sigmoid().forward(x)
        elu = layers.ELU().forward(x)
    np.testing.assert_allclose(sig, [[0.0, 0.0, 0.5, 1.0, 1.0]], atol=1e-300)
    np.testing.assert_allclose(elu, [[-1.0, -1.0, 0.0, 800.0, 1e4]])


def test_activation_by_name_and_unknown_name_error():
    assert isinstance(layers.activation("ReLU"), layers.ReLU)
    assert isinstance(layers.activation("leaky_relu", negative_slope=0.2), layers.LeakyReLU)
    with pytest.raises(ValueError, match="unknown activation 'swishy'"):
        layers.activation("swishy")


def test_activation_parameters_are_validated():
    with pytest.raises(ValueError, match="negative_slope"):
        layers.LeakyReLU(-0.1)
    with pytest.raises(ValueError, match="alpha"):
        layers.ELU(0.0)


def test_activation_results_do_not_depend_on_an_earlier_batch(rng):
    """A second batch of another shape gives its own values, whatever came before."""
    layer = layers.Tanh()
    x1, x2 = rng.normal(size=(4, 3)), rng.normal(size=(2, 3))
    out1 = layer.forward(x1, training=True).copy()
    out2 = layer.forward(x2, training=True)
    np.testing.assert_array_equal(out1, np.tanh(x1))
    np.testing.assert_array_equal(out2, np.tanh(x2))


# --- dropout ---------------------------------------------------------------------------------
def seeded_dropout(p, seed):
    layer = layers.Dropout(p)
    layer.rng = np.random.default_rng(seed)
    return layer


def test_dropout_gradient_with_fixed_mask_matches_finite_differences(gradcheck, rng):
    layer = layers.Dropout(0.4)
    step = gradcheck.through(layer)
    x = rng.normal(size=(8, 6))
    R = rng.normal(size=(8, 6))

    def objective():
        layer.rng = np.random.default_rng(99)   # the same mask on every evaluation
        return float((step.forward(x, training=True) * R).sum())

    objective()
    grad_x = np.array(step.backward(R), copy=True)
    numeric = gradcheck.numeric(objective, x)
    gradcheck.assert_close(grad_x, numeric, "dropout")
    # The gradient is the mask itself times R: zero exactly where units were dropped. The
    # mask is a function of the step's key (a fused kernel recomputes it rather than store it).
    mask = philox.keep_mask(layer.key, x.shape, 0.6) / 0.6
    if layer.mask is not None:                    # the NumPy path stores the same one
        np.testing.assert_array_equal(layer.mask, mask)
    assert 0 < (mask == 0).sum() < mask.size
    np.testing.assert_allclose(grad_x, R * mask, rtol=1e-12)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_keeps_expected_activation(p):
    n = 200_000
    x = np.random.default_rng(3).uniform(0.5, 1.5, size=(400, n // 400))
    out = seeded_dropout(p, 11).forward(x, training=True)
    # out_i = x_i B_i / (1-p), B_i ~ Bernoulli(1-p): E[out_i] = x_i and
    # Var[mean(out)] = sum x_i^2 p / (1-p) / N^2.
    std_of_mean = math.sqrt((x ** 2).sum() * p / (1 - p)) / x.size
    assert abs(out.mean() - x.mean()) < 5 * std_of_mean
    dropped = float((out == 0).mean())
    assert abs(dropped - p) < 5 * math.sqrt(p * (1 - p) / x.size)
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-12)


def test_dropout_is_identity_at_inference(rng):
    x = rng.normal(size=(5, 7))
    layer = seeded_dropout(0.5, 0)
    out = layer.forward(x, training=False)
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), np.ones_like(x))


def test_dropout_with_zero_rate_is_identity_in_training(rng):
    x = rng.normal(size=(5, 7))
    np.testing.assert_array_equal(seeded_dropout(0.0, 0).forward(x, training=True), x)


def test_dropout_masks_are_reproducible_by_seed(rng):
    x = rng.normal(size=(50, 40))
    first = seeded_dropout(0.5, 5).forward(x, training=True).copy()
    again = seeded_dropout(0.5, 5).forward(x, training=True).copy()
    other = seeded_dropout(0.5, 6).forward(x, training=True).copy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_dropout_draws_a_new_mask_each_training_call(rng):
    layer = seeded_dropout(0.5, 5)
    x = np.ones((30, 30))
    first = layer.forward(x, training=True).copy()
    second = layer.forward(x, training=True).copy()
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, True, "0.5"])
def test_dropout_rejects_rates_outside_zero_one(p):
    with pytest.raises(ValueError, match=r"Dropout rate p must be in \[0, 1\)"):
        layers.Dropout(p)


def test_dropout_keeps_float32_dtype():
    x = np.ones((10, 10), dtype=np.float32)
    out = seeded_dropout(0.3, 0).forward(x, training=True)
    assert out.dtype == np.float32


# --- configs --------------------------------------------------------------------------------
@pytest.mark.parametrize("layer", [layers.Dense(3, 4, init="he_normal", gain=2.0), layers.LeakyReLU(0.3),
                                   layers.ELU(0.5), layers.Dropout(0.25), layers.Tanh(), layers.Sigmoid(),
                                   layers.ReLU(), layers.Identity()], ids=repr)
def test_layer_rebuilds_from_its_config(layer):
    rebuilt = layers.from_config(type(layer).__name__, layer.config())
    assert type(rebuilt) is type(layer)
    assert rebuilt.config() == layer.config()


def test_from_config_rejects_unknown_layer_type():
    with pytest.raises(ValueError, match="unknown layer type 'Conv2D'"):
        layers.from_config("Conv2D", {})
