"""Each optimizer's own search space, its PyTorch defaults, and the optimizers and schedules built from them."""
import pytest

from nnhp import optim, schedules
from nnhp.bench.spaces import OPTIMIZERS, build_optimizer, build_schedule, get_spec
from nnhp.search import Space

OWN = {"sgd": {"lr", "weight_decay"}, "momentum": {"lr", "momentum", "weight_decay"},
       "nesterov": {"lr", "momentum", "weight_decay"}, "adagrad": {"lr", "eps", "weight_decay"},
       "adadelta": {"lr", "rho", "eps", "weight_decay"}, "rmsprop": {"lr", "alpha", "eps", "weight_decay"},
       "adam": {"lr", "beta1", "beta2", "eps", "weight_decay"},
       "adamw": {"lr", "beta1", "beta2", "eps", "weight_decay"}}


def test_each_optimizer_searches_its_own_hyperparameters_and_the_schedule():
    assert set(OPTIMIZERS) == set(OWN)
    for name, spec in OPTIMIZERS.items():
        space = Space(spec.tuning_space())
        assert set(space.names) == OWN[name] | {"schedule"}, name
        assert space["schedule"].options == ["constant", "cosine", "warmup_cosine"]
        assert space["lr"].log


def test_defaults_are_pytorchs():
    expected = {"sgd": dict(lr=1e-3, momentum=0.0), "adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
                "adamw": dict(lr=1e-3, weight_decay=1e-2), "rmsprop": dict(lr=1e-2, alpha=0.99, eps=1e-8),
                "adagrad": dict(lr=1e-2, eps=1e-10), "adadelta": dict(lr=1.0, rho=0.9, eps=1e-6),
                "momentum": dict(lr=1e-3, momentum=0.9, nesterov=False), "nesterov": dict(momentum=0.9, nesterov=True)}
    for name, options in expected.items():
        spec = get_spec(name)
        built = build_optimizer(name, spec.defaults_params())
        assert spec.defaults_params()["schedule"] == "constant"
        for key, value in options.items():
            assert getattr(built, key) == value, (name, key)


def test_every_sampled_point_builds_an_optimizer_of_the_right_class():
    for name, spec in OPTIMIZERS.items():
        space = Space(spec.tuning_space())
        for seed in range(5):
            params = space.sample(seed)
            built = build_optimizer(name, params)
            assert isinstance(built, optim.OPTIMIZERS[spec.base])
            assert built.lr == params["lr"]
    adam = build_optimizer("adam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-7, "weight_decay": 0.0,
                                    "schedule": "cosine", "seed": 3})
    assert adam.betas == (0.8, 0.99) and adam.eps == 1e-7


def test_schedules_count_steps():
    assert build_schedule("constant", 100) is None
    cosine = build_schedule("cosine", 100)
    assert isinstance(cosine, schedules.CosineDecay) and cosine.unit == "batch"
    assert cosine(0, 1.0) == 1.0 and cosine(50, 1.0) == pytest.approx(0.5) and cosine(100, 1.0) == pytest.approx(0)
    warm = build_schedule("warmup_cosine", 100)
    assert warm.warmup_steps == 5 and warm(4, 1.0) < 1.0 and warm(5, 1.0) == 1.0
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        build_schedule("linear", 10)


def test_unknown_optimizer_suggests_the_nearest():
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamm' \(did you mean 'adam'\?\)"):
        get_spec("adamm")
