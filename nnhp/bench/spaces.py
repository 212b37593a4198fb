"""Each optimizer's own search space, and its PyTorch defaults.

An equal tuning budget is only fair if each optimizer searches over *its own* hyperparameters:
Adam's betas and eps, RMSprop's alpha, Adadelta's rho, SGD's momentum -- not a learning rate
alone, which favours whichever method is least sensitive to the rest (Choi et al., 2019, "On
empirical comparisons of optimizers"; Schmidt et al., 2021). Every space also holds the weight
decay and the learning-rate schedule:

* ``constant``: the base rate throughout;
* ``cosine``: ``lr(s) = lr (1 + cos(pi s / S)) / 2`` over the run's ``S`` steps;
* ``warmup_cosine``: a linear warm-up over the first 5% of the steps, then cosine to zero.

Schedules count mini-batch steps, so a run's rate falls smoothly, not once an epoch.

Scales: learning rates, eps and weight decay log-uniform; momenta, betas, alpha and rho
reverse-log (equal mass per decade of ``1 - beta``: 0.9, 0.99, 0.999 are equally far apart).

The *defaults* entry of each optimizer is PyTorch's (``torch.optim``), untuned, with a
constant rate: Crowded Valley's "one-shot" setting (Schmidt, Schneider & Hennig, ICML 2021).
``torch.optim.SGD`` defaults to lr=1e-3; "momentum" and "nesterov" are SGD with momentum 0.9,
the value every paper uses, since PyTorch's default momentum is 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import _checks, optim, schedules
from ..search import Choice, Float

__all__ = ["OptimizerSpec", "OPTIMIZERS", "DEFAULT_OPTIMIZERS", "SCHEDULES", "get_spec", "build_optimizer",
           "build_schedule"]

SCHEDULES = ("constant", "cosine", "warmup_cosine")
WARMUP_FRACTION = 0.05

_SCHEDULE = Choice(list(SCHEDULES))


def _weight_decay(low: float = 1e-6, high: float = 1e-2) -> Float:
    return Float(low, high, log=True)


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer as the benchmark knows it: nnhp's class, options fixed by the variant, the
    space of its own hyperparameters, and PyTorch's defaults."""

    name: str
    base: str                           # the name nnhp.optim.get knows
    space: dict                         # hyperparameter -> Dimension (the schedule included)
    defaults: dict                      # PyTorch's defaults, in the space's parameter names
    fixed: dict = field(default_factory=dict)     # options the variant sets (momentum for "nesterov")

    def tuning_space(self) -> dict:
        return dict(self.space)

    def defaults_params(self) -> dict:
        return {**self.defaults, "schedule": "constant"}


_ADAM_SPACE = {"lr": Float(1e-4, 3e-2, log=True), "beta1": Float(0.5, 0.99, reverse_log=True),
               "beta2": Float(0.9, 0.9999, reverse_log=True), "eps": Float(1e-10, 1e-4, log=True)}

OPTIMIZERS = {spec.name: spec for spec in (
    OptimizerSpec("sgd", "sgd", {"lr": Float(1e-3, 3.0, log=True), "weight_decay": _weight_decay(),
                                 "schedule": _SCHEDULE},
                  {"lr": 1e-3, "weight_decay": 0.0}),
    OptimizerSpec("momentum", "sgd", {"lr": Float(1e-4, 1.0, log=True),
                                      "momentum": Float(0.5, 0.999, reverse_log=True),
                                      "weight_decay": _weight_decay(), "schedule": _SCHEDULE},
                  {"lr": 1e-3, "momentum": 0.9, "weight_decay": 0.0}),
    OptimizerSpec("nesterov", "sgd", {"lr": Float(1e-4, 1.0, log=True),
                                      "momentum": Float(0.5, 0.999, reverse_log=True),
                                      "weight_decay": _weight_decay(), "schedule": _SCHEDULE},
                  {"lr": 1e-3, "momentum": 0.9, "weight_decay": 0.0}, fixed={"nesterov": True}),
    OptimizerSpec("adagrad", "adagrad", {"lr": Float(1e-3, 1.0, log=True), "eps": Float(1e-10, 1e-4, log=True),
                                         "weight_decay": _weight_decay(), "schedule": _SCHEDULE},
                  {"lr": 1e-2, "eps": 1e-10, "weight_decay": 0.0}),
    OptimizerSpec("adadelta", "adadelta", {"lr": Float(1e-2, 10.0, log=True),
                                           "rho": Float(0.5, 0.999, reverse_log=True),
                                           "eps": Float(1e-8, 1e-3, log=True),
                                           "weight_decay": _weight_decay(), "schedule": _SCHEDULE},
                  {"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0}),
    OptimizerSpec("rmsprop", "rmsprop", {"lr": Float(1e-5, 1e-2, log=True),
                                         "alpha": Float(0.8, 0.9999, reverse_log=True),
                                         "eps": Float(1e-10, 1e-4, log=True),
                                         "weight_decay": _weight_decay(), "schedule": _SCHEDULE},
                  {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0}),
    OptimizerSpec("adam", "adam", {**_ADAM_SPACE, "weight_decay": _weight_decay(), "schedule": _SCHEDULE},
                  {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}),
    OptimizerSpec("adamw", "adamw", {**_ADAM_SPACE, "weight_decay": Float(1e-4, 0.5, log=True),
                                     "schedule": _SCHEDULE},
                  {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 1e-2}),
)}

#: Compared by default: every optimizer nnhp has, SGD with and without (Nesterov) momentum.
DEFAULT_OPTIMIZERS = tuple(OPTIMIZERS)


def get_spec(name: str) -> OptimizerSpec:
    """An optimizer's spec by name (the nearest name is suggested for a typo)."""
    return OPTIMIZERS[_checks.one_of(name, "optimizer", OPTIMIZERS)]


def build_optimizer(name: str, params: dict):
    """The nnhp optimizer ``name`` with the hyperparameters in ``params`` (the schedule and any
    other key outside the optimizer's own are ignored)."""
    spec = get_spec(name)
    options = dict(spec.fixed)
    for key, value in params.items():
        if key in ("beta1", "beta2", "schedule", "seed"):
            continue
        options[key] = value
    if "beta1" in params:
        options["betas"] = (params["beta1"], params["beta2"])
    return optim.get(spec.base, **options)


def build_schedule(name: str, total_steps: int):
    """The schedule ``name`` (one of :data:`SCHEDULES`) for a run of ``total_steps`` mini-batch steps."""
    _checks.one_of(name, "schedule", SCHEDULES)
    if name == "constant":
        return None
    if name == "cosine":
        return schedules.CosineDecay(T_max=max(int(total_steps), 1), unit="batch")
    warmup = max(1, int(round(WARMUP_FRACTION * total_steps)))
    return schedules.WarmupCosine(warmup_steps=warmup, T_max=max(int(total_steps), warmup + 1), unit="batch")
