"""nnhp/_checks.py: the validators the engine shares, and the modules that now use them (issue 12)."""
import numpy as np
import pytest

import nnhp
from nnhp import _checks


@pytest.mark.parametrize("call, error, message", [
    (lambda: _checks.number("0.1", "lr"), TypeError, "lr must be a number, got '0.1'"),
    (lambda: _checks.number(True, "lr"), TypeError, "lr must be a number, got True"),
    (lambda: _checks.number(float("nan"), "lr", low=0.0), ValueError, "lr must be a finite number >= 0.0, got nan"),
    (lambda: _checks.number(2.0, "beta", low=0.0, high=1.0, high_open=True, owner="Adam"), ValueError,
     r"Adam: beta must be a finite number >= 0.0 and < 1.0, got 2.0"),
    (lambda: _checks.number(0, "clip", low=0.0, low_open=True), ValueError, "clip must be a positive number, got 0"),
    (lambda: _checks.integer(2.0, "epochs", low=1), TypeError, "epochs must be an integer >= 1; got 2.0"),
    (lambda: _checks.integer(0, "epochs", low=1), ValueError, "epochs must be an integer >= 1; got 0"),
    (lambda: _checks.integer(70, "n", low=1, high=64), ValueError, "n must be an integer >= 1 and <= 64; got 70"),
    (lambda: _checks.fraction(1.0, "test_size"), ValueError, "test_size must be a fraction strictly between 0 and 1"),
    (lambda: _checks.probability(1.0, "dropout"), ValueError, r"dropout must be in \[0, 1\); got 1.0"),
    (lambda: _checks.one_of("adma", "optimizer", ["adam", "sgd"]), ValueError,
     r"unknown optimizer 'adma' \(did you mean 'adam'\?\); expected one of adam, sgd"),
])
def test_each_check_names_the_value_and_what_was_expected(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_checks_return_canonical_values():
    assert _checks.number(np.float32(0.5), "x") == 0.5 and type(_checks.number(1, "x")) is float
    assert _checks.integer(np.int64(3), "n", low=1) == 3 and type(_checks.integer(np.int64(3), "n")) is int
    assert _checks.one_of("sgd", "optimizer", ["adam", "sgd"]) == "sgd"
    assert _checks.did_you_mean("zzzz", ["adam", "sgd"]) == ""


def test_memory_refuses_what_cannot_fit(monkeypatch):
    monkeypatch.setattr(_checks, "available_memory", lambda: 1_000_000)
    _checks.memory(999_999, "a small thing")
    with pytest.raises(MemoryError, match="a big thing needs 2.0 MB of memory; 1.0 MB is available"):
        _checks.memory(2_000_000, "a big thing")


def test_a_model_too_large_for_memory_is_refused_before_allocation():
    # 10^12 parameters: an overcommitting kernel would "allocate" them and kill the process later.
    with pytest.raises(MemoryError, match=r"a model of 1,000,006,000,002 parameters .* needs 8.0 TB"):
        nnhp.MLP([2, 1_000_000, 1_000_000, 2])


def test_the_engine_modules_share_the_checks():
    # One voice everywhere: the same wording from optim, schedules, data, train and the layers.
    with pytest.raises(ValueError, match=r"SGD: momentum must be a finite number >= 0"):
        nnhp.optim.SGD(momentum=-1)
    with pytest.raises(ValueError, match=r"CosineDecay: T_max must be a positive number"):
        nnhp.schedules.CosineDecay(T_max=0)
    with pytest.raises(ValueError, match=r"n_samples must be an integer >= 2; got 1"):
        nnhp.data.make_moons(n_samples=1)
    with pytest.raises(ValueError, match=r"l2 must be a finite number >= 0"):
        nnhp.fit(nnhp.MLP([2, 2]), np.ones((4, 2)), np.array([0, 1, 0, 1]), l2=-1, epochs=1)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\); got 1.5"):
        nnhp.MLP([2, 3, 2], dropout=1.5)
    with pytest.raises(ValueError, match=r"Dropout rate p must be in \[0, 1\); got 1.5"):
        nnhp.layers.Dropout(1.5)
