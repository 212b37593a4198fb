"""nnhp/init.py: sample statistics of every initializer against its formula, the activation
gains (torch.nn.init.calculate_gain), and the gain a model picks for each Dense layer.

Large matrices (600,000 draws) make the sample standard deviation accurate to about
0.1%, so a 1% tolerance only fails when the scale is actually wrong.
"""
import math

import numpy as np
import pytest

import nnhp
from nnhp import init, layers

FAN_IN, FAN_OUT = 1000, 600
STD_RTOL = 0.01


def draw(name, gain):
    return init.get(name)(FAN_IN, FAN_OUT, np.random.default_rng(0), gain)


def assert_uniform(W, bound):
    """W looks like U(-bound, bound): inside the bound, reaching it, std bound/sqrt(3), mean 0."""
    assert np.abs(W).max() <= bound * (1 + 1e-6)
    assert np.abs(W).max() > bound * 0.99
    assert W.std() == pytest.approx(bound / math.sqrt(3), rel=STD_RTOL)
    assert abs(W.mean()) < 5 * bound / math.sqrt(3) / math.sqrt(W.size)


def assert_normal(W, std):
    assert W.std() == pytest.approx(std, rel=STD_RTOL)
    assert abs(W.mean()) < 5 * std / math.sqrt(W.size)
    # Not truncated (as in PyTorch): about 0.27% of draws lie beyond 3 std.
    beyond = float((np.abs(W) > 3 * std).mean())
    assert 0.002 < beyond < 0.0035


GAINS = {"relu": math.sqrt(2), "tanh": 5 / 3, "sigmoid": 1.0, "identity": 1.0,
         "leaky_relu": math.sqrt(2 / (1 + 0.01 ** 2))}


@pytest.mark.parametrize("activation, expected", sorted(GAINS.items()))
def test_gain_matches_calculate_gain(activation, expected):
    assert init.gain(activation) == pytest.approx(expected, rel=1e-15)


def test_leaky_relu_gain_uses_the_slope_squared():
    assert init.gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04), rel=1e-15)


def test_gain_for_unknown_activation_is_an_error():
    with pytest.raises(ValueError, match="no gain known for activation 'softplus'"):
        init.gain("softplus")


@pytest.mark.parametrize("activation", sorted(GAINS))
def test_xavier_uniform_bound_is_gain_sqrt_6_over_fan_sum(activation):
    gain = GAINS[activation]
    assert_uniform(draw("xavier_uniform", gain), gain * math.sqrt(6 / (FAN_IN + FAN_OUT)))


@pytest.mark.parametrize("activation", sorted(GAINS))
def test_xavier_normal_std_is_gain_sqrt_2_over_fan_sum(activation):
    gain = GAINS[activation]
    assert_normal(draw("xavier_normal", gain), gain * math.sqrt(2 / (FAN_IN + FAN_OUT)))


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_he_uniform_bound_is_sqrt3_gain_over_sqrt_fan_in(activation):
    gain = GAINS[activation]
    assert_uniform(draw("he_uniform", gain), math.sqrt(3) * gain / math.sqrt(FAN_IN))


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_he_normal_std_is_gain_over_sqrt_fan_in(activation):
    gain = GAINS[activation]
    assert_normal(draw("he_normal", gain), gain / math.sqrt(FAN_IN))


def test_he_defaults_to_the_relu_gain():
    W = init.he_normal(FAN_IN, FAN_OUT, np.random.default_rng(0))
    assert_normal(W, math.sqrt(2) / math.sqrt(FAN_IN))


def test_lecun_normal_std_is_one_over_sqrt_fan_in_whatever_the_gain():
    assert_normal(draw("lecun_normal", 5 / 3), 1 / math.sqrt(FAN_IN))


def test_plain_uniform_bound_is_one_over_sqrt_fan_in():
    assert_uniform(draw("uniform", 1.0), 1 / math.sqrt(FAN_IN))


def test_plain_normal_std_is_one_hundredth():
    assert_normal(draw("normal", 1.0), 0.01)


@pytest.mark.parametrize("name", init.INITIALIZERS)
def test_initializers_have_the_dense_weight_shape_and_follow_the_seed(name):
    first = init.get(name)(7, 3, np.random.default_rng(5), 1.0)
    again = init.get(name)(7, 3, np.random.default_rng(5), 1.0)
    other = init.get(name)(7, 3, np.random.default_rng(6), 1.0)
    assert first.shape == (7, 3)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_unknown_init_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown init 'orthogonal'"):
        init.get("orthogonal")
    with pytest.raises(ValueError, match="unknown init"):
        nnhp.MLP([4, 3, 2], init="orthogonal")


# --- the gain a model picks ---------------------------------------------------------------
def dense_layers(model):
    return [layer for layer in model.layers if isinstance(layer, layers.Dense)]


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu", "identity"])
def test_mlp_xavier_uses_the_following_activations_gain(activation):
    model = nnhp.MLP([800, 700, 10], activation=activation, init="xavier_uniform", seed=0, dtype="float64")
    hidden, output = dense_layers(model)
    assert_uniform(np.asarray(hidden.W), GAINS[activation] * math.sqrt(6 / (800 + 700)))
    # The output layer feeds the loss, not an activation: gain 1.
    W_out = np.asarray(output.W)
    assert np.abs(W_out).max() <= math.sqrt(6 / (700 + 10)) * (1 + 1e-12)
    assert np.abs(W_out).max() > 0.99 * math.sqrt(6 / (700 + 10))


def test_mlp_he_normal_with_leaky_relu_uses_the_leaky_gain():
    model = nnhp.MLP([1000, 600, 5], activation="leaky_relu", init="he_normal", seed=0, dtype="float64")
    assert_normal(np.asarray(dense_layers(model)[0].W), GAINS["leaky_relu"] / math.sqrt(1000))


def test_sequential_skips_dropout_and_reads_the_activations_own_slope():
    model = nnhp.Sequential([layers.Dense(900, 700, init="he_uniform"), layers.Dropout(0.3),
                             layers.LeakyReLU(0.3),
                             layers.Dense(700, 800, init="xavier_normal"), layers.Tanh(),
                             layers.Dense(800, 3, init="xavier_normal")], seed=1, dtype="float64")
    first, second, _ = dense_layers(model)
    assert_uniform(np.asarray(first.W), math.sqrt(3) * math.sqrt(2 / (1 + 0.3 ** 2)) / math.sqrt(900))
    assert_normal(np.asarray(second.W), 5 / 3 * math.sqrt(2 / (800 + 700)))


def test_explicit_dense_gain_overrides_the_activation():
    model = nnhp.Sequential([layers.Dense(1000, 600, init="xavier_normal", gain=3.0), layers.ReLU(),
                             layers.Dense(600, 2)], seed=0, dtype="float64")
    assert_normal(np.asarray(dense_layers(model)[0].W), 3.0 * math.sqrt(2 / 1600))


@pytest.mark.parametrize("name", init.INITIALIZERS)
def test_model_biases_start_at_zero(name):
    model = nnhp.MLP([6, 5, 4, 3], init=name, seed=0)
    biases = [layer.b for layer in dense_layers(model)]
    assert all(np.all(np.asarray(b) == 0) for b in biases)
    assert all(np.any(np.asarray(layer.W) != 0) for layer in dense_layers(model))
