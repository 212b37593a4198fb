"""Weight initializers: how the first weights are drawn, and why the scale matters.

A Dense weight ``W`` has shape ``(fan_in, fan_out)``: ``fan_in`` inputs feed each unit.
If weights are too small the signal shrinks layer after layer; too large and it
explodes. Each scheme picks the variance that keeps activations (and gradients) at a
steady scale through the network:

==================  =======================================================
xavier_uniform      U(-a, a),  a = gain * sqrt(6 / (fan_in + fan_out))
xavier_normal       N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out))
he_uniform          U(-a, a),  a = sqrt(3) * gain / sqrt(fan_in)
he_normal           N(0, s^2), s = gain / sqrt(fan_in)
lecun_normal        N(0, s^2), s = 1 / sqrt(fan_in)
uniform             U(-a, a),  a = 1 / sqrt(fan_in)   (Glorot & Bengio's "standard" heuristic)
normal              N(0, s^2), s = 0.01               (the small-random baseline)
==================  =======================================================

Xavier/Glorot (Glorot & Bengio, 2010) balances forward and backward variance; He
(He et al., 2015) corrects for ReLU zeroing half its inputs; LeCun (1998) keeps unit
variance for self-normalizing units. ``gain`` scales for the activation that follows,
as in PyTorch's ``torch.nn.init.calculate_gain``. Normal draws are not truncated (as in
PyTorch). Every function returns a float64 NumPy array drawn from ``rng``; the model
casts it to its dtype and device.
"""
from __future__ import annotations

import math

import numpy

INITIALIZERS = ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal",
                "lecun_normal", "uniform", "normal")


def gain(activation: str, negative_slope: float = 0.01) -> float:
    """The recommended gain for an activation (torch.nn.init.calculate_gain).

    linear/identity/sigmoid: 1; tanh: 5/3; relu: sqrt(2); leaky_relu: sqrt(2 / (1 + slope^2));
    elu: 1 (PyTorch has no entry; like SELU-style units it is treated as linear near 0).
    """
    activation = activation.lower()
    if activation in ("identity", "linear", "sigmoid", "elu"):
        return 1.0
    if activation == "tanh":
        return 5.0 / 3.0
    if activation == "relu":
        return math.sqrt(2.0)
    if activation == "leaky_relu":
        return math.sqrt(2.0 / (1.0 + negative_slope ** 2))
    raise ValueError(f"no gain known for activation {activation!r}")


def xavier_uniform(fan_in: int, fan_out: int, rng, gain: float = 1.0) -> numpy.ndarray:
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=(fan_in, fan_out))


def xavier_normal(fan_in: int, fan_out: int, rng, gain: float = 1.0) -> numpy.ndarray:
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return rng.normal(0.0, std, size=(fan_in, fan_out))


def he_uniform(fan_in: int, fan_out: int, rng, gain: float = math.sqrt(2.0)) -> numpy.ndarray:
    bound = math.sqrt(3.0) * gain / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=(fan_in, fan_out))


def he_normal(fan_in: int, fan_out: int, rng, gain: float = math.sqrt(2.0)) -> numpy.ndarray:
    std = gain / math.sqrt(fan_in)
    return rng.normal(0.0, std, size=(fan_in, fan_out))


def lecun_normal(fan_in: int, fan_out: int, rng, gain: float = 1.0) -> numpy.ndarray:
    # LeCun's scheme has no gain: unit variance is its whole point. ``gain`` is accepted
    # (and ignored) so every initializer shares one signature.
    std = 1.0 / math.sqrt(fan_in)
    return rng.normal(0.0, std, size=(fan_in, fan_out))


def uniform(fan_in: int, fan_out: int, rng, gain: float = 1.0, *, scale: float | None = None) -> numpy.ndarray:
    bound = 1.0 / math.sqrt(fan_in) if scale is None else scale
    return rng.uniform(-bound, bound, size=(fan_in, fan_out))


def normal(fan_in: int, fan_out: int, rng, gain: float = 1.0, *, std: float = 0.01) -> numpy.ndarray:
    return rng.normal(0.0, std, size=(fan_in, fan_out))


def uses_activation_gain(name: str) -> bool:
    """Whether ``name`` scales by the activation's gain (Xavier does; He uses the ReLU family's)."""
    return name in ("xavier_uniform", "xavier_normal")


def he_gain(activation: str, negative_slope: float = 0.01) -> float:
    """He initialization's gain: the leaky-ReLU formula for leaky_relu, sqrt(2) otherwise.

    He et al. derived sqrt(2) for rectifiers; PyTorch's kaiming_* default
    (nonlinearity="leaky_relu", a=0) gives the same sqrt(2).
    """
    return gain("leaky_relu", negative_slope) if activation == "leaky_relu" else math.sqrt(2.0)


def get(name: str):
    """The initializer function called ``name``."""
    if not isinstance(name, str) or name not in INITIALIZERS:
        raise ValueError(f"unknown init {name!r}; expected one of {', '.join(INITIALIZERS)}")
    return globals()[name]
