"""The default search space, the default configuration, and the epoch budget the data needs.

The rules, each a function of the data's size (or of the time given), so that a call with no
settings adapts to it:

* :func:`default_max_epochs` -- the most epochs a trial trains (the top of Hyperband's rungs),
  lowered by :func:`time_capped_max_epochs` under a short timeout;
* :func:`default_patience` -- an early-stopping patience for ``tune(patience=...)``, from ``max_epochs``;
* :func:`default_space` -- what ``tune`` searches when no space is given;
* :func:`default_params` -- one configuration known to be good on small tabular data: the
  first trial every default search runs at the full budget, and the fixed baseline of
  ``benchmarks/bench_tune.py``.
"""
from __future__ import annotations

from ..search import Choice, Float, Int, Space

__all__ = ["default_space", "default_params", "default_max_epochs", "default_patience", "time_capped_max_epochs",
           "initial_config", "OPTIMIZER_NAMES", "SCHEDULE_NAMES", "MAX_LAYERS", "SAMPLE_PASSES"]

OPTIMIZER_NAMES = ("adamw", "adam", "sgd", "rmsprop")
SCHEDULE_NAMES = ("constant", "cosine", "warmup_cosine", "one_cycle")
MAX_LAYERS = 4

#: The rows a full-budget trial passes through the network (epochs x training rows). A fixed
#: count of examples rather than a fixed count of epochs: a data set of 1,000 rows needs more
#: epochs than one of 50,000 to take as many optimizer steps, and a full-budget trial then costs
#: about the same time whatever the data's size.
SAMPLE_PASSES = 400_000


def default_max_epochs(n_samples: int) -> int:
    """Epochs at the full budget: ``SAMPLE_PASSES / n_samples``, as ``27 k`` with k in 1..9.

    A multiple of 27 so that Hyperband's rungs (eta = 3, four brackets: ``k, 3k, 9k, 27k``)
    are whole epochs; clipped to [27, 243]: below 27 epochs even large data sets lose accuracy
    to a short cosine schedule, above 243 a tiny data set spends the time budget on few trials.
    ``n_samples`` is the number of training rows.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples!r}")
    k = round(SAMPLE_PASSES / n_samples / 27)
    return 27 * min(max(k, 1), 9)


def default_patience(max_epochs: int) -> int:
    """An early-stopping patience for ``tune(patience=...)``: ``max(10, max_epochs / 10)`` epochs --
    a long cosine run may plateau for a while before its rate comes down. ``tune`` uses none by
    default (:mod:`nnhp.tuning.objective`)."""
    return max(10, int(max_epochs) // 10)


def time_capped_max_epochs(max_epochs: int, seconds_per_epoch: float, timeout: float,
                           share: float = 1 / 2) -> int:
    """``max_epochs``, lowered so that a full-budget trial of the default configuration takes at
    most ``share`` of a ``timeout``, leaving the rest to the search. Not lower: on the
    benchmark's small sets long training beat wide search (a 20 s search capped at 27 epochs
    lost to the default configuration trained for 243; RESULTS.md, "Tuning quality").
    Kept a multiple of 27 (Hyperband's rungs) down to 27, then any count >= 3."""
    affordable = int(share * timeout / max(seconds_per_epoch, 1e-9))
    if affordable >= max_epochs:
        return max_epochs
    if affordable >= 27:
        return 27 * (affordable // 27)
    return max(3, affordable)


def _batch_sizes(n_samples: int | None) -> list[int]:
    """32 .. 512, keeping only sizes that leave at least 8 optimizer steps an epoch."""
    sizes = [32, 64, 128, 256, 512]
    if n_samples is None:
        return sizes[:4]
    kept = [b for b in sizes if b * 8 <= n_samples]
    return kept or sizes[:1]


def default_space(task: str = "classification", n_classes: int | None = None, max_epochs: int = 81,
                  max_layers: int = MAX_LAYERS, budgeted: bool = False, *, n_samples: int | None = None,
                  n_features: int | None = None, extended: bool = False) -> Space:
    """The space ``tune`` searches when none is given.

    ==================  ===========================================  ============================
    name                values                                       active when
    ==================  ===========================================  ============================
    n_layers            1 .. max_layers (4) hidden layers
    units               32 .. 1024, log scale (every hidden layer)
    activation          relu, leaky_relu, elu, tanh
    dropout             0 .. 0.5
    optimizer           adamw, adam, sgd, rmsprop
    lr                  1e-4 .. 3e-2, log scale                      optimizer in adamw, adam, rmsprop
    sgd_lr              3e-3 .. 0.3, log scale                       optimizer == sgd
    momentum            0.5 .. 0.99, reverse-log                     optimizer == sgd
    adamw_weight_decay  1e-3 .. 0.3, log scale (decoupled: x lr)     optimizer == adamw
    weight_decay        1e-6 .. 1e-2, log scale (L2 in the gradient) optimizer in adam, sgd, rmsprop
    schedule            constant, cosine, warmup_cosine, one_cycle   (over the trial's epochs)
    batch_size          32 .. 512 with >= 8 steps an epoch
    epochs              max_epochs/4 .. max_epochs, log scale        (absent when budgeted: the
                                                                     searcher sets the epochs)
    loss                cross_entropy or binary_cross_entropy        two classes; mse, huber, mae
                                                                     for regression
    ==================  ===========================================  ============================

    ``extended=True`` adds the hyperparameters that rarely decide the result but that the
    engine has: ``init`` (he/xavier/lecun; otherwise He for the ReLU family and Xavier for
    tanh), ``beta1``/``beta2`` (Adam), ``nesterov`` (SGD), ``penalty`` with ``l1``/``l2``, and
    the ``exponential``/``step`` schedules with ``lr_decay``/``step_gamma``. Any of them can be
    added one by one as overrides to ``tune``'s ``space``.

    Why these ranges. The previous space capped widths at 256 (3 layers), gave weight decay only
    to AdamW, offered no warm-up or one-cycle schedule and stopped at 81 epochs; on a 10-class
    real data set its tuned result ended below a hand-picked 3 x 512 AdamW + cosine network
    (issue 10). Wider and deeper nets, decay for every optimizer, the annealed schedules and the
    longer epoch budget are what that network has. One shared width instead of one per layer, and
    He/Xavier chosen by the activation instead of searched, take the space from 16 to 12
    dimensions, so each result teaches a model-based searcher more. Measured with
    ``python benchmarks/bench_space.py --datasets wine digits many_classes --seeds 3`` (BOHB,
    equal total epochs, refit test accuracy, median of 3 seeds; RESULTS.md)::

        data set       this space   previous space   this space, 81 epochs   no first trial
        wine           1.0000       0.9556           1.0000                  1.0000
        digits         0.9844       0.9778           0.9756                  0.9756
        many_classes   0.8177       0.8211           0.8094                  0.8177

    and at equal wall-clock against Optuna and scikit-learn in ``benchmarks/bench_tune.py``.
    """
    if max_epochs < 1:
        raise ValueError(f"max_epochs must be >= 1, got {max_epochs}")
    adaptive = ["adamw", "adam", "rmsprop"]
    dims = {
        "n_layers": Int(1, max_layers) if max_layers > 1 else 1,
        "units": Int(32, 1024, log=True),
        "activation": Choice(["relu", "leaky_relu", "elu", "tanh"]),
        "dropout": Float(0.0, 0.5),
        "optimizer": Choice(list(OPTIMIZER_NAMES)),
        # Each optimizer family has its own useful range of rates: steps normalized by a running
        # RMS (Adam, AdamW, RMSprop) want ~1e-3, plain SGD ~1e-2..1e-1.
        "lr": Float(1e-4, 3e-2, log=True, when=("optimizer", "in", adaptive)),
        "sgd_lr": Float(3e-3, 3e-1, log=True, when=("optimizer", "==", "sgd")),
        "momentum": Float(0.5, 0.99, reverse_log=True, when=("optimizer", "==", "sgd")),
        # AdamW's decay is decoupled and multiplied by the rate (theta -= lr * wd * theta), so its
        # useful values are ~1e3 times those of an L2 term added to the gradient.
        "adamw_weight_decay": Float(1e-3, 3e-1, log=True, when=("optimizer", "==", "adamw")),
        "weight_decay": Float(1e-6, 1e-2, log=True, when=("optimizer", "in", ["adam", "sgd", "rmsprop"])),
        "schedule": Choice(list(SCHEDULE_NAMES) + (["exponential", "step"] if extended else [])),
        "batch_size": Choice(_batch_sizes(n_samples)),
    }
    if not budgeted:
        low = max(1, max_epochs // 4)
        dims["epochs"] = Int(low, max_epochs, log=True) if low < max_epochs else max_epochs
    if extended:
        dims.update({
            "init": Choice(["he_uniform", "he_normal", "xavier_uniform", "xavier_normal", "lecun_normal"]),
            "beta1": Float(0.8, 0.99, reverse_log=True, when=("optimizer", "in", ["adam", "adamw"])),
            "beta2": Float(0.99, 0.9999, reverse_log=True, when=("optimizer", "in", ["adam", "adamw"])),
            "nesterov": Choice([False, True], when=("optimizer", "==", "sgd")),
            "lr_decay": Float(0.9, 0.999, reverse_log=True, when=("schedule", "==", "exponential")),
            "step_gamma": Float(0.1, 0.7, when=("schedule", "==", "step")),
            "penalty": Choice(["none", "l2", "l1"]),
            "l2": Float(1e-6, 1e-3, log=True, when=("penalty", "==", "l2")),
            "l1": Float(1e-7, 1e-4, log=True, when=("penalty", "==", "l1")),
        })
    if task == "regression":
        dims["loss"] = Choice(["mse", "huber", "mae"])
    elif n_classes == 2:
        dims["loss"] = Choice(["cross_entropy", "binary_cross_entropy"])
    return Space(dims)


def default_params(task: str = "classification", n_classes: int | None = None, n_samples: int = 1000,
                   n_features: int | None = None, max_epochs: int | None = None) -> dict:
    """One good configuration for small tabular data, used as the search's first trial.

    Three hidden layers of 512 ReLU units (He init), dropout 0.2, AdamW (lr 1e-3, decoupled
    weight decay 0.05), cosine decay over ``max_epochs`` (:func:`default_max_epochs` when
    None), batch 128 (smaller where that would leave fewer than 8 steps an epoch): the wide,
    regularized, annealed MLP that practitioners reach for on tabular data.
    """
    epochs = default_max_epochs(n_samples) if max_epochs is None else int(max_epochs)
    params = {"n_layers": 3, "units": 512, "activation": "relu", "dropout": 0.2, "optimizer": "adamw",
              "lr": 1e-3, "adamw_weight_decay": 0.05, "schedule": "cosine",
              "batch_size": max(b for b in _batch_sizes(n_samples) if b <= 128), "epochs": epochs}
    if task == "regression":
        params["loss"] = "mse"
    elif n_classes == 2:
        params["loss"] = "cross_entropy"
    return params


def initial_config(space: Space, defaults: dict, rng) -> dict:
    """``defaults`` fitted into ``space``: each active parameter takes its default value where the
    space allows it, else a random draw (a user who fixed ``optimizer=sgd`` gets SGD with a
    drawn ``sgd_lr``); parameters the space lacks are left out."""
    from ..search import SpaceError

    params = {}
    for name in space.order:
        if not space.is_active(name, params):
            continue
        dim = space[name]
        try:
            params[name] = dim.check(defaults[name])
        except (KeyError, SpaceError):
            params[name] = dim.sample(rng)
    return space.validate(params)
