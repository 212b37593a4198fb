"""From a params dict to the engine's objects: the MLP, its optimizer, its schedule, its penalties.

Names a dict leaves out take the engine's defaults, so a user's space may tune any subset. The
names read here are the catalogue of what ``tune`` can tune (``default_space`` lists the ranges).
"""
from __future__ import annotations

import numpy as np

__all__ = ["build_model", "build_optimizer", "build_schedule", "penalties", "hidden_sizes", "n_outputs",
           "infer_task", "as_labels", "default_init"]


def hidden_sizes(params: dict) -> list[int]:
    """The hidden widths: ``hidden`` ("128,64"), else ``units_k`` per layer, else one ``units``."""
    if "hidden" in params:                        # a user space may give the sizes as one string "128,64"
        hidden = params["hidden"]
        return [int(h) for h in (hidden.split(",") if isinstance(hidden, str) else [hidden])]
    n_layers = int(params.get("n_layers", 1))
    shared = params.get("units", 64)
    return [int(params.get(f"units_{k}", shared)) for k in range(1, n_layers + 1)]


def as_labels(y) -> np.ndarray | None:
    """``y`` as integer class labels (n,) when it holds labels in a form ``tune`` accepts, else None:

    * integer or boolean labels (n,) -- or (n, 1);
    * floats that are all 0.0 or 1.0 (binary labels read from a file or made by a comparison);
    * one-hot rows (n, k), k >= 2: every entry 0 or 1, exactly one 1 per row.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 1:
        if np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_):
            return y.astype(np.int64)
        if np.issubdtype(y.dtype, np.floating) and y.size and np.isin(y, (0.0, 1.0)).all():
            return y.astype(np.int64)
        return None
    if y.ndim == 2 and y.shape[1] >= 2 and (np.issubdtype(y.dtype, np.number) or y.dtype == bool) and y.size:
        if np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all():
            return np.argmax(y, axis=1).astype(np.int64)
    return None


def infer_task(y: np.ndarray, loss: str | None = None) -> str:
    """"classification" or "regression": the loss's kind when one is named, else classification
    for class labels in any form :func:`as_labels` reads (integer labels, 0.0/1.0 floats, one-hot
    rows) and regression for anything else."""
    if loss is not None:
        from .. import losses
        return "classification" if losses.get(loss).classification else "regression"
    return "classification" if as_labels(y) is not None else "regression"


def n_outputs(task: str, loss: str, y: np.ndarray, n_classes: int | None) -> int:
    """Output units: one per class (one for a binary BCE), one per regression target."""
    if task == "classification" and loss != "binary_cross_entropy" and y.ndim == 1:
        return n_classes
    return 1 if y.ndim == 1 else y.shape[1]


def default_init(activation: str) -> str:
    """He for the ReLU family (keeps the variance of rectified units), Xavier for tanh/sigmoid."""
    return "he_uniform" if activation in ("relu", "leaky_relu", "elu") else "xavier_uniform"


def build_model(params: dict, n_inputs: int, n_outputs: int, seed=0, dtype="float32", backend=None):
    """The MLP a params dict describes (init: ``params["init"]``, else :func:`default_init`)."""
    from ..model import MLP

    activation = params.get("activation", "relu")
    return MLP([n_inputs, *hidden_sizes(params), n_outputs], activation=activation,
               dropout=float(params.get("dropout", 0.0)), init=params.get("init", default_init(activation)),
               seed=seed, dtype=dtype, backend=backend)


def _per_family(params: dict, name: str, key: str):
    """``params["<optimizer>_<key>"]`` when present (``sgd_lr``), else ``params[key]``."""
    return params.get(f"{name}_{key}", params.get(key))


def build_optimizer(params: dict):
    """The optimizer a params dict describes: its name, rate, momentum/betas, weight decay.

    The rate and the weight decay may be given per family (``sgd_lr``, ``adamw_weight_decay``)
    so that each family searches its own range; the plain name serves the rest.
    """
    from .. import optim

    name = params.get("optimizer", "adam")
    kwargs = {}
    lr = _per_family(params, name, "lr")
    if lr is not None:
        kwargs["lr"] = float(lr)
    if name in ("sgd", "rmsprop") and "momentum" in params:     # (rmsprop: from a user's space)
        kwargs["momentum"] = float(params["momentum"])
    if name == "sgd" and "nesterov" in params:
        kwargs["nesterov"] = bool(params["nesterov"]) and kwargs.get("momentum", 0.0) > 0
    if name in ("adam", "adamw") and ("beta1" in params or "beta2" in params):
        kwargs["betas"] = (float(params.get("beta1", 0.9)), float(params.get("beta2", 0.999)))
    weight_decay = _per_family(params, name, "weight_decay")
    if weight_decay is not None and name in ("adamw", "adam", "sgd", "rmsprop", "adagrad"):
        kwargs["weight_decay"] = float(weight_decay)
    return optim.get(name, **kwargs)


def build_schedule(params: dict, total_epochs: int):
    """The learning-rate schedule (per epoch) a params dict describes; None for constant.

    Every schedule spans ``total_epochs``:

    * cosine: from the base rate down to 0;
    * warmup_cosine: linear warm-up over the first 5% of the epochs (at least one), then cosine;
    * one_cycle: PyTorch's OneCycleLR with the base rate as its peak (30% up, then down to
      peak / 25e4);
    * exponential: ``lr_decay`` per epoch; step: multiply by ``step_gamma`` every quarter.
    """
    from .. import schedules

    name = params.get("schedule", "constant")
    total = max(int(total_epochs), 1)
    if name in (None, "constant", "none"):
        return None
    if name == "cosine":
        return schedules.CosineDecay(T_max=total)
    if name == "warmup_cosine":
        warmup = max(1, round(0.05 * total)) if total > 1 else 0
        return schedules.WarmupCosine(warmup_steps=warmup, T_max=total)
    if name == "one_cycle":
        peak = build_optimizer(params).lr         # the rate the optimizer is given is the cycle's peak
        return schedules.OneCycle(total_steps=total, max_lr=peak)
    if name == "exponential":
        return schedules.ExponentialDecay(decay_rate=float(params.get("lr_decay", 0.97)))
    if name == "step":
        return schedules.StepDecay(step_size=max(total // 4, 1), gamma=float(params.get("step_gamma", 0.3)))
    return schedules.get(name)


def penalties(params: dict) -> tuple[float, float]:
    """(l1, l2) penalty strengths: ``penalty`` picks one of them; without it both are read."""
    penalty = params.get("penalty")
    l1 = float(params.get("l1", 0.0)) if penalty in (None, "l1") else 0.0
    l2 = float(params.get("l2", 0.0)) if penalty in (None, "l2") else 0.0
    return l1, l2
