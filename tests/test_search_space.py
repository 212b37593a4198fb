import math

import numpy as np
import pytest

from nnhp.search import Choice, Fixed, Float, Int, Space, SpaceError

N = 20_000


def draws(dim, n=N, seed=0):
    space = Space({"x": dim})
    rng = np.random.default_rng(seed)
    return np.array([space.sample(rng)["x"] for _ in range(n)])


def ks_statistic(samples, cdf):
    """Kolmogorov-Smirnov distance between the empirical CDF of ``samples`` and ``cdf``."""
    x = np.sort(samples)
    model = cdf(x)
    n = len(x)
    above = np.arange(1, n + 1) / n - model
    below = model - np.arange(0, n) / n
    return max(above.max(), below.max())


# 1.63 / sqrt(n) is the KS critical value at the 1% level.
KS_LIMIT = 1.63 / math.sqrt(N)


# --- sampling distributions ---------------------------------------------------------------------
def test_linear_float_is_uniform():
    x = draws(Float(-2.0, 3.0))
    assert x.min() >= -2.0 and x.max() <= 3.0
    assert ks_statistic(x, lambda v: (v + 2.0) / 5.0) < KS_LIMIT


def test_log_float_is_log_uniform():
    x = draws(Float(1e-5, 1e-1, log=True))
    assert x.min() >= 1e-5 and x.max() <= 1e-1
    assert ks_statistic(x, lambda v: (np.log10(v) + 5.0) / 4.0) < KS_LIMIT
    # and, concretely, each of the four decades gets a quarter of the draws
    counts = np.histogram(np.log10(x), bins=[-5, -4, -3, -2, -1])[0]
    assert np.all(np.abs(counts / N - 0.25) < 0.015)


def test_linear_float_is_not_log_uniform():
    # the KS check above has teeth: a plain uniform draw on the same range fails it
    x = draws(Float(1e-5, 1e-1))
    assert ks_statistic(x, lambda v: (np.log10(v) + 5.0) / 4.0) > 10 * KS_LIMIT


def test_reverse_log_float_has_equal_mass_per_decade_of_one_minus_x():
    x = draws(Float(0.9, 0.9999, reverse_log=True))
    assert x.min() >= 0.9 and x.max() <= 0.9999
    one_minus = np.log10(1.0 - x)                # uniform on [-4, -1]
    counts = np.histogram(one_minus, bins=[-4, -3, -2, -1])[0]
    assert np.all(np.abs(counts / N - 1 / 3) < 0.015)
    assert ks_statistic(-one_minus, lambda v: (v - 1.0) / 3.0) < KS_LIMIT


def test_int_is_uniform_over_its_steps():
    x = draws(Int(32, 512, step=32))
    values, counts = np.unique(x, return_counts=True)
    assert list(values) == list(range(32, 513, 32))
    assert np.all(np.abs(counts / N - 1 / 16) < 0.01)


def test_log_int_favours_small_values_like_a_log_scale():
    x = draws(Int(1, 1000, log=True))
    assert x.dtype.kind == "i" and x.min() >= 1 and x.max() <= 1000
    # log-uniform on [low - 1/2, high + 1/2], then rounded: each integer owns the reals that round to it
    edges = np.array([0.5, 9.5, 99.5, 1000.5])
    expected = np.diff(np.log(edges)) / np.log(1000.5 / 0.5)       # about 0.39, 0.30, 0.31
    counts = np.histogram(x, bins=edges)[0] / N
    assert np.all(np.abs(counts - expected) < 0.015)
    assert x[x <= 9].size > 100 * x[x == 500].size                   # far from uniform over 1..1000


def test_choice_is_uniform_and_keeps_types():
    x = draws(Choice(["relu", 3, None, True]), n=8000)
    for option in ["relu", 3, None, True]:
        share = sum(1 for v in x if v == option and type(v) is type(option)) / len(x)
        assert abs(share - 0.25) < 0.03


def test_fixed_values_are_always_present():
    space = Space({"lr": Float(0.1, 0.2), "epochs": 50, "name": Fixed("adam")})
    for seed in range(5):
        params = space.sample(seed)
        assert params["epochs"] == 50 and params["name"] == "adam"


def test_sampling_is_seeded():
    space = Space({"lr": Float(1e-4, 1e-1, log=True), "n": Int(1, 4), "act": Choice(["relu", "tanh"])})
    assert [space.sample(np.random.default_rng(7)) for _ in range(3)] == \
           [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert space.sample(7) == space.sample(7)
    assert space.sample(7) != space.sample(8)


# --- conditions ---------------------------------------------------------------------------------
def conditional_space():
    return Space({
        "n_layers": Int(1, 3),
        "units_1": Int(16, 256, log=True),
        "units_2": Int(16, 256, log=True, when=("n_layers", ">=", 2)),
        "units_3": Int(16, 256, log=True, when=("n_layers", ">=", 3)),
        "optimizer": Choice(["sgd", "adam", "rmsprop"]),
        "momentum": Float(0.5, 0.99, reverse_log=True, when=("optimizer", "in", ["sgd", "rmsprop"])),
        "nesterov": Choice([False, True], when=[("optimizer", "==", "sgd"), ("momentum", ">", 0.8)]),
        "beta1": Float(0.8, 0.99, reverse_log=True, when=("optimizer", "==", "adam")),
    })


def test_conditional_parameters_appear_only_when_active():
    space = conditional_space()
    rng = np.random.default_rng(0)
    seen_layers = set()
    for _ in range(2000):
        p = space.sample(rng)
        seen_layers.add(p["n_layers"])
        assert ("units_2" in p) == (p["n_layers"] >= 2)
        assert ("units_3" in p) == (p["n_layers"] >= 3)
        assert ("momentum" in p) == (p["optimizer"] in ("sgd", "rmsprop"))
        assert ("beta1" in p) == (p["optimizer"] == "adam")
        assert ("nesterov" in p) == (p["optimizer"] == "sgd" and p["momentum"] > 0.8)
        assert space.validate(p) == p
    assert seen_layers == {1, 2, 3}


def test_conditions_on_a_float_that_can_hold_are_accepted():
    space = Space({"x": Float(0, 1), "y": Int(1, 2, when=("x", "==", 0.5)), "z": Int(1, 2, when=("x", "<", 0.01))})
    assert space.validate({"x": 0.5, "y": 1}) == {"x": 0.5, "y": 1}
    assert space.validate({"x": 0.005, "z": 2}) == {"x": 0.005, "z": 2}


def test_condition_on_a_later_parameter_is_ordered_after_it():
    space = Space({"units_2": Int(8, 16, when=("n_layers", "==", 2)), "n_layers": Int(1, 2)})
    assert space.order == ["n_layers", "units_2"]
    assert list(space.sample(3)) in (["n_layers"], ["units_2", "n_layers"])   # declaration order kept


def test_validate_names_the_offending_parameter():
    space = conditional_space()
    good = {"n_layers": 1, "units_1": 32, "optimizer": "adam", "beta1": 0.9}
    assert space.validate(good) == good
    with pytest.raises(SpaceError, match="units_2.*inactive"):
        space.validate({**good, "units_2": 32})
    with pytest.raises(SpaceError, match="'beta1' is missing"):
        space.validate({k: v for k, v in good.items() if k != "beta1"})
    with pytest.raises(SpaceError, match="units_1.*outside"):
        space.validate({**good, "units_1": 1000})
    with pytest.raises(SpaceError, match="optimizer.*not one of"):
        space.validate({**good, "optimizer": "lbfgs"})
    with pytest.raises(SpaceError, match="unknown parameter"):
        space.validate({**good, "colour": "red"})


# --- the unit cube ------------------------------------------------------------------------------
def test_unit_cube_round_trip():
    space = conditional_space()
    rng = np.random.default_rng(1)
    for _ in range(500):
        p = space.sample(rng)
        u = space.encode(p)
        assert u.shape == (space.n_encoded,)
        assert np.all((u >= 0) & (u <= 1))
        back = space.decode(u)
        assert back.keys() == p.keys()
        for name in p:
            if isinstance(p[name], float):
                assert back[name] == pytest.approx(p[name], rel=1e-12)
            else:
                assert back[name] == p[name]


def test_any_point_of_the_cube_decodes_to_a_valid_point():
    space = conditional_space()
    rng = np.random.default_rng(2)
    for _ in range(500):
        u = rng.uniform(-0.2, 1.2, space.n_encoded)    # even outside: decode clips
        assert space.validate(space.decode(u)) is not None
    with pytest.raises(ValueError, match="coordinates"):
        space.decode(np.zeros(space.n_encoded + 1))
    with pytest.raises(ValueError, match="non-finite"):
        space.decode(np.full(space.n_encoded, np.nan))


def test_encoded_dims_describe_each_coordinate():
    space = Space({"lr": Float(1e-3, 1.0, log=True), "n": Int(1, 4), "act": Choice(["relu", "tanh", "elu"]),
                   "epochs": 10, "m": Float(0.5, 0.9, when=("act", "==", "relu"))})
    kinds = [(d.param, d.kind, d.n_values, d.option) for d in space.encoded_dims]
    assert kinds == [("lr", "continuous", None, None), ("n", "integer", 4, None),
                     ("act", "onehot", 3, "relu"), ("act", "onehot", 3, "tanh"), ("act", "onehot", 3, "elu"),
                     ("m", "continuous", None, None)]
    assert space.encoded_dims[3].group == (2, 3, 4)
    assert space.n_encoded == 6
    p = {"lr": 0.01, "n": 2, "act": "tanh", "epochs": 10}
    assert list(space.active_mask(p)) == [True] * 5 + [False]
    u = space.encode(p)
    assert u[0] == pytest.approx(1 / 3)                 # 0.01 is a third of the way in log10 [-3, 0]
    assert u[1] == pytest.approx(1.5 / 4)               # index 1 of 4: the centre of its bin
    assert list(u[2:5]) == [0, 1, 0]
    assert u[5] == 0.5                                  # inactive: neutral


def test_integer_bins_give_every_value_equal_width():
    dim = Int(0, 9)
    values = [Space({"x": dim}).decode([u])["x"] for u in np.linspace(0, 1, 1001)]
    counts = np.bincount(values)
    assert len(counts) == 10 and counts.min() >= 99 and counts.max() <= 101


def test_reverse_log_encoding_is_uniform_in_log_one_minus_x():
    space = Space({"beta": Float(0.9, 0.999, reverse_log=True)})
    assert space.encode({"beta": 0.99})[0] == pytest.approx(0.5)
    assert space.decode([0.5])["beta"] == pytest.approx(0.99)
    assert space.decode([0.0])["beta"] == 0.9 and space.decode([1.0])["beta"] == 0.999


# --- impossible spaces ------------------------------------------------------------------------------
@pytest.mark.parametrize("make, message", [
    (lambda: Float(1.0, 1.0), "low < high"),
    (lambda: Float(2.0, 1.0), "low < high"),
    (lambda: Float(0.0, 1.0, log=True), "log=True\\) needs low > 0"),
    (lambda: Float(-1.0, 1.0, log=True), "needs low > 0"),
    (lambda: Float(0.9, 1.0, reverse_log=True), "needs high < 1"),
    (lambda: Float(0.1, 0.5, log=True, reverse_log=True), "exclude each other"),
    (lambda: Float(0.0, math.inf), "finite"),
    (lambda: Float("a", 1.0), "numbers"),
    (lambda: Int(5, 5), "low < high"),
    (lambda: Int(10, 1), "low < high"),
    (lambda: Int(0, 10, step=3), "step does not fit"),
    (lambda: Int(0, 10, step=0), "step >= 1"),
    (lambda: Int(0, 10, log=True), "needs low >= 1"),
    (lambda: Int(1, 9, step=2, log=True), "exclude each other"),
    (lambda: Int(1.5, 3), "integer"),
    (lambda: Choice([]), "at least one option"),
    (lambda: Choice(["a", "b", "a"]), "listed twice"),
    (lambda: Choice("abc"), "list of options"),
    (lambda: Choice([[1, 2]]), "options must be"),
])
def test_impossible_dimensions_are_clear_errors(make, message):
    with pytest.raises(SpaceError, match=message):
        make()


@pytest.mark.parametrize("params, message", [
    (lambda: {}, "non-empty dict"),
    (lambda: {"units": Int(8, 16, when=("layers", ">=", 2))}, "'units'.*names 'layers', which is not in the space"),
    (lambda: {"n": Int(1, 4), "units": Int(8, 16, when=("n", ">=", 5))}, "'units'.*n >= 5 can never hold"),
    (lambda: {"opt": Choice(["sgd"]), "m": Float(0.1, 0.9, when=("opt", "==", "adam"))}, "'m'.*can never hold"),
    (lambda: {"x": Float(0, 1), "y": Float(0, 1, when=("x", ">", 2.0))}, "'y'.*can never hold"),
    (lambda: {"x": Float(0, 1), "y": Float(0, 1, when=("x", "==", 2.0))}, "'y'.*can never hold"),
    (lambda: {"a": Int(1, 2, when=("b", "==", 1)), "b": Int(1, 2, when=("a", "==", 1))}, "cycle"),
    (lambda: {"a": Int(1, 2, when=("a", "==", 1))}, "refers to itself"),
    (lambda: {"a": Int(1, 2, when=("a", "~", 1))}, "unknown condition operator"),
    (lambda: {"a": Int(1, 2), "b": Int(1, 2, when=("a", "in", 1))}, "needs a list"),
    (lambda: {"a": [1, 2]}, "'a'.*Choice"),
    (lambda: {"a": object()}, "'a'"),
])
def test_impossible_spaces_are_clear_errors(params, message):
    with pytest.raises(SpaceError, match=message):
        Space(params())


# --- grids, sizes, overrides, serialization -------------------------------------------------------
def test_float_grid_respects_the_scale():
    assert Float(1e-4, 1e-1, log=True).grid(4, 16) == [1e-4, 1e-3, 1e-2, 1e-1]
    assert Float(0.9, 0.999, reverse_log=True).grid(3, 16) == pytest.approx([0.9, 0.99, 0.999])
    assert Float(0.0, 1.0).grid(5, 16) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert Float(0.0, 1.0).grid(1, 16) == [0.5]


def test_int_grid_enumerates_small_ranges_and_grids_large_ones():
    assert Int(1, 4).grid(3, 16) == [1, 2, 3, 4]
    assert Int(0, 1000, step=10).grid(3, 16) == [0, 500, 1000]
    assert Int(1, 10_000, log=True).grid(5, 16) == [1, 10, 100, 1000, 10_000]


def test_grid_skips_inactive_parameters():
    space = Space({"n": Int(1, 2), "u2": Choice(["a", "b"], when=("n", "==", 2)), "c": Choice([0, 1])})
    assert list(space.grid()) == [{"n": 1, "c": 0}, {"n": 1, "c": 1},
                                  {"n": 2, "u2": "a", "c": 0}, {"n": 2, "u2": "a", "c": 1},
                                  {"n": 2, "u2": "b", "c": 0}, {"n": 2, "u2": "b", "c": 1}]
    assert space.size() == 6
    assert Space({"x": Float(0, 1)}).size() == math.inf


def test_overrides_fix_narrow_or_remove_entries():
    space = conditional_space()
    narrowed = space.with_overrides({"optimizer": Choice(["sgd"]), "units_1": 64, "beta1": None,
                                     "units_3": Int(8, 16)})
    assert narrowed["units_1"].value == 64
    assert "beta1" not in narrowed
    assert narrowed["units_3"].when == space["units_3"].when       # the condition carries over
    for seed in range(20):
        p = narrowed.sample(seed)
        assert p["optimizer"] == "sgd" and p["units_1"] == 64 and "momentum" in p
    assert space["units_1"].name == "units_1" and "beta1" in space    # the original is untouched


def test_overrides_drop_parameters_they_make_unreachable():
    space = conditional_space()
    one_layer = space.with_overrides({"n_layers": 1})
    assert "units_2" not in one_layer and "units_3" not in one_layer
    no_optimizer = space.with_overrides({"optimizer": None})
    assert not {"momentum", "nesterov", "beta1"} & set(no_optimizer)      # nesterov via momentum
    with pytest.raises(SpaceError, match="'units_3'.*can never hold"):
        space.with_overrides({"n_layers": 1, "units_3": Int(8, 16)})


def test_space_round_trips_through_a_dict():
    space = conditional_space()
    assert Space.from_dict(space.to_dict()) == space
    assert Space.from_dict(space.to_dict()).sample(3) == space.sample(3)
