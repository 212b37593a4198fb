"""What each tunable name means: its type, the values it may take, and when the engine reads it.

:mod:`nnhp.tuning.build` turns a params dict into an MLP, an optimizer and a schedule; the
names it reads are the only names a space given to ``tune`` may hold. This module lists them
(:data:`CATALOGUE`), and :func:`check_space` holds a space to them before any trial runs:

* an unknown name is an error that lists the valid ones, with the nearest match
  (``learning_rate`` -> did you mean ``lr``?), instead of a parameter that is drawn, ignored
  and reported among the best params;
* every value a dimension can take (a fixed value, each option of a choice, both ends of a range)
  is checked against the name's type and range: ``epochs=0``, ``batch_size=0``, ``lr=-1`` and
  ``units_1="abc"`` are refused up front instead of failing every trial;
* a name the engine reads only sometimes (``momentum`` only for SGD and RMSprop, ``units_3`` only
  with three or more layers, ``beta1`` only for Adam/AdamW) gets that condition, so a trial
  where it is not used does not carry it, and a best trial never reports a parameter that had
  no effect. When the condition can never hold (``n_layers=1`` with ``units_2``; ``momentum``
  while the optimizer stays at its default, Adam), that is an error naming both.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass

from .. import _checks
from ..search import Choice, Condition, Fixed, Float, Int, Space, SpaceError

__all__ = ["Hyperparameter", "CATALOGUE", "lookup", "valid_names", "check_space", "check_name"]

_OPTIMIZERS = ("sgd", "adagrad", "adadelta", "rmsprop", "adam", "adamw")
_DECAYED = ("adamw", "adam", "sgd", "rmsprop", "adagrad")          # build_optimizer passes weight_decay
_SCHEDULES = ("constant", "none", "cosine", "warmup_cosine", "one_cycle", "exponential", "step")
_LOSSES = ("cross_entropy", "binary_cross_entropy", "mse", "mae", "huber")
_ACTIVATIONS = ("relu", "leaky_relu", "elu", "tanh", "sigmoid", "identity")
_INITS = ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "lecun_normal", "uniform", "normal")

# The value a parent takes when the space leaves it out (what build.py falls back to). Without
# ``penalty`` build.py reads both l1 and l2, so they need no condition then.
_ENGINE_DEFAULTS = {"optimizer": "adam", "schedule": "constant", "n_layers": 1}


@dataclass(frozen=True)
class Hyperparameter:
    """One tunable name: ``kind`` "int", "float", "bool", "choice" or "hidden" (the sizes as one
    string, "128,64"); bounds for numbers; ``options`` for a choice; ``when`` the condition under
    which build.py reads it (None: always)."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    options: tuple = ()
    when: tuple | None = None

    def check(self, value):
        """``value`` in canonical form, or ValueError naming this parameter and what it expects."""
        what = f"parameter {self.name!r}"
        if self.kind == "choice":
            return _checks.one_of(value, self.name, self.options)
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{what} must be true or false; got {value!r}")
            return value
        if self.kind == "hidden":
            sizes = value.split(",") if isinstance(value, str) else [value]
            for size in sizes:
                if not (isinstance(size, int) and not isinstance(size, bool) or str(size).strip().isdigit()) \
                        or int(size) < 1:
                    raise ValueError(f"{what} must be positive layer widths like '128,64'; got {value!r}")
            return value
        if self.kind == "int":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            return _checks.integer(value, what, low=self.low, high=self.high, error=ValueError)
        return _checks.number(value, what, low=self.low, high=self.high, low_open=self.low_open,
                              high_open=self.high_open, error=ValueError)


def _catalogue() -> dict[str, Hyperparameter]:
    H = Hyperparameter
    entries = [
        H("n_layers", "int", 1, 64),
        H("units", "int", 1),
        H("hidden", "hidden"),
        H("activation", "choice", options=_ACTIVATIONS),
        H("dropout", "float", 0.0, 1.0, high_open=True),
        H("init", "choice", options=_INITS),
        H("optimizer", "choice", options=_OPTIMIZERS),
        H("lr", "float", 0.0, low_open=True),
        H("momentum", "float", 0.0, 1.0, high_open=True, when=("optimizer", "in", ["sgd", "rmsprop"])),
        H("nesterov", "bool", when=("optimizer", "==", "sgd")),
        H("beta1", "float", 0.0, 1.0, high_open=True, when=("optimizer", "in", ["adam", "adamw"])),
        H("beta2", "float", 0.0, 1.0, high_open=True, when=("optimizer", "in", ["adam", "adamw"])),
        H("weight_decay", "float", 0.0, when=("optimizer", "in", list(_DECAYED))),
        H("schedule", "choice", options=_SCHEDULES),
        H("lr_decay", "float", 0.0, 1.0, low_open=True, when=("schedule", "==", "exponential")),
        H("step_gamma", "float", 0.0, 1.0, low_open=True, when=("schedule", "==", "step")),
        H("penalty", "choice", options=("none", "l1", "l2")),
        H("l1", "float", 0.0, when=("penalty", "==", "l1")),
        H("l2", "float", 0.0, when=("penalty", "==", "l2")),
        H("batch_size", "int", 1),
        H("epochs", "int", 1),
        H("loss", "choice", options=_LOSSES),
    ]
    entries += [H(f"{name}_lr", "float", 0.0, low_open=True, when=("optimizer", "==", name)) for name in _OPTIMIZERS]
    entries += [H(f"{name}_weight_decay", "float", 0.0, when=("optimizer", "==", name)) for name in _DECAYED]
    return {entry.name: entry for entry in entries}


CATALOGUE = _catalogue()
_UNITS_K = re.compile(r"units_([1-9][0-9]*)$")


def lookup(name) -> Hyperparameter | None:
    """The catalogue entry for ``name`` (``units_<k>`` included), or None."""
    if not isinstance(name, str):
        return None
    if name in CATALOGUE:
        return CATALOGUE[name]
    match = _UNITS_K.match(name)
    if match:
        return Hyperparameter(name, "int", 1, when=("n_layers", ">=", int(match.group(1))))
    return None


def valid_names() -> list[str]:
    return [*CATALOGUE, "units_1", "units_2", "..."]


# Names other libraries use for ours, for the "did you mean" of an unknown name.
_SYNONYMS = {"learning_rate": "lr", "lr_schedule": "schedule", "scheduler": "schedule", "layers": "n_layers",
             "num_layers": "n_layers", "hidden_layers": "n_layers", "hidden_units": "units", "width": "units",
             "epoch": "epochs", "max_epochs": "epochs", "batch": "batch_size", "batchsize": "batch_size",
             "activation_function": "activation", "drop_rate": "dropout", "decay": "weight_decay",
             "l2_penalty": "l2", "alpha": "l2", "solver": "optimizer", "initializer": "init"}


def check_name(name, where: str = "the space") -> Hyperparameter:
    """The entry for ``name``, or ValueError listing the valid names with the nearest match."""
    entry = lookup(name)
    if entry is None:
        synonym = _SYNONYMS.get(str(name).lower().replace("-", "_"))
        suggestion = f" (did you mean {synonym!r}?)" if synonym else \
            _checks.did_you_mean(name, [*CATALOGUE, "units_1", "units_2", "units_3"])
        raise ValueError(f"unknown hyperparameter {name!r} in {where}{suggestion}; nnhp tunes "
                         f"{', '.join(valid_names())} (units_<k>: the width of hidden layer k)")
    return entry


def _values_to_check(dim) -> list:
    """The values of a dimension that stand for all of them: a range's two ends, every option."""
    if isinstance(dim, Fixed):
        return [dim.value]
    if isinstance(dim, Choice):
        return list(dim.options)
    return [dim.low, dim.high]


def _check_dimension(entry: Hyperparameter, dim) -> None:
    if isinstance(dim, Float) and entry.kind == "int":
        raise ValueError(f"parameter {entry.name!r} takes integers; give it an Int range "
                         f"({{low = {int(dim.low)}, high = {int(dim.high)}}}), not a Float one")
    if isinstance(dim, (Float, Int)) and entry.kind in ("choice", "bool", "hidden"):
        raise ValueError(f"parameter {entry.name!r} takes names or flags, not a range of numbers")
    for value in _values_to_check(dim):
        entry.check(value)


def _with_condition(name: str, dim, entry: Hyperparameter, dims: dict):
    """``dim`` carrying the condition under which the engine reads ``name`` (module docstring)."""
    if entry.when is None or dim.when:
        return dim
    parent, op, value = entry.when
    condition = Condition(parent, op, value)
    if parent in dims:
        return _conditioned(dim, condition)
    if parent not in _ENGINE_DEFAULTS:
        return dim
    default = _ENGINE_DEFAULTS[parent]
    if not condition.holds(default):
        raise ValueError(f"parameter {name!r} is used only when {condition}, but the space leaves "
                         f"{parent!r} at its default {default!r}, so it would have no effect; "
                         f"add {parent!r} to the space or leave {name!r} out")
    return dim


def _shared_units(dims: dict, explicit) -> dict:
    """``units`` sizes the hidden layers that have no ``units_<k>`` of their own: with units_1 ..
    units_m given it matters only when n_layers > m. Where it can never matter it goes (an error
    when the user named it)."""
    given = 0
    while f"units_{given + 1}" in dims:
        given += 1
    if "units" not in dims or given == 0 or dims["units"].when:
        return dims
    layers = dims.get("n_layers", Fixed(_ENGINE_DEFAULTS["n_layers"]))
    values = layers.finite_values() or [layers.high]
    if max(values) > given:
        return {**dims, "units": _conditioned(dims["units"], Condition("n_layers", ">", given))}
    if "units" in explicit:
        raise ValueError(f"parameter 'units' has no effect: units_1 .. units_{given} size every hidden layer "
                         f"(n_layers is at most {max(values)})")
    return {name: dim for name, dim in dims.items() if name != "units"}


def _conditioned(dim, condition: Condition):
    dim = copy.copy(dim)
    dim.when = (condition,)
    return dim


def check_space(space: Space, where: str = "the space", explicit=()) -> Space:
    """``space`` with every name known, every value valid and every conditional name conditioned
    (module docstring); ValueError naming the first problem. ``explicit``: the names the user
    gave (a default name that can never matter is dropped; a named one is an error)."""
    dims = dict(space.dims)
    for name, dim in dims.items():
        _check_dimension(check_name(name, where), dim)
    conditioned = {name: _with_condition(name, dim, lookup(name), dims) for name, dim in dims.items()}
    conditioned = _shared_units(conditioned, set(explicit))
    try:
        return Space(conditioned)
    except SpaceError as exc:
        raise ValueError(f"{where}: {exc}") from None


def check_loss_fits(space: Space, task: str, n_classes: int | None) -> None:
    """Every loss the space may choose fits the task (a classification loss for labels, ...)."""
    if "loss" not in space:
        return
    from .. import losses
    for loss in _values_to_check(space["loss"]):
        classification = losses.get(loss).classification
        if classification != (task == "classification"):
            fits = "a regression target" if task == "regression" else "class labels"
            raise ValueError(f"loss {loss!r} does not fit {fits}; the {task} losses are "
                             + ", ".join(name for name in _LOSSES
                                         if losses.get(name).classification == (task == "classification")))
        if loss == "binary_cross_entropy" and n_classes is not None and n_classes != 2:
            raise ValueError(f"loss 'binary_cross_entropy' needs two classes; the labels hold {n_classes}")

