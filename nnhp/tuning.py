"""``nnhp.tune``: search an MLP's hyperparameters on a data set -- the main job of nnhp.

::

    result = nnhp.tune(X, y, validation_data=(X_val, y_val), searcher="random", n_trials=30)
    result.best_params, result.best_value, result.best_model.predict(X_test)

It is the bridge between the search layer and the engine: it builds a :class:`~nnhp.search.Study`
whose objective turns a params dict into an MLP, an optimizer and a schedule, trains it with
:func:`nnhp.fit` (early stopping on the validation set) and returns the validation metric.

The default space
-----------------
:func:`default_space` covers every hyperparameter the engine has (see its table). Any entry can
be fixed, narrowed, removed or added by passing a dict as ``space``::

    nnhp.tune(X, y, space={"optimizer": "adam",                    # fixed
                           "lr": Float(1e-4, 1e-2, log=True),      # narrowed
                           "dropout": None})                       # removed (its default, 0, is used)

A :class:`~nnhp.search.Space` instead of a dict replaces the default space entirely; names it
does not use take the engine's defaults.

Budgets and checkpoints (Hyperband)
-----------------------------------
A trial's epochs are ``trial.budget`` when the searcher gives one, else the ``epochs`` parameter,
else ``max_epochs``. When the searcher promotes a configuration, ``trial.checkpoint`` holds the
parent trial's weights, optimizer state and epoch count (``nnhp.train.checkpoint_state``); the
objective restores them and trains only from that epoch up to the new budget. Every trial with
a budget saves its checkpoint; without budgets only the best trial so far keeps one (it is the
``best_model`` at the end).

What counts as "best"
---------------------
Classification: validation accuracy (maximized); regression: validation mean squared error
(minimized) -- the same yardstick whatever training loss a trial used. ``metric="loss"`` makes
classification use the validation loss instead (then the training loss is fixed, so that the
numbers compare).
"""
from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .search import Choice, Float, Int, Space, Study
from .search.searcher import make_searcher
from .search.trial import COMPLETE, RUNNING

__all__ = ["tune", "TuneResult", "default_space", "build_model", "build_optimizer", "build_schedule",
           "ProgressLine", "OPTIMIZER_NAMES", "SCHEDULE_NAMES"]

OPTIMIZER_NAMES = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
SCHEDULE_NAMES = ("constant", "cosine", "exponential", "step")
MAX_LAYERS = 3


def default_space(task: str = "classification", n_classes: int | None = None, max_epochs: int = 81,
                  max_layers: int = MAX_LAYERS, budgeted: bool = False) -> Space:
    """The space ``tune`` searches when none is given.

    ============  ==============================================  ===========================
    name          values                                          active when
    ============  ==============================================  ===========================
    n_layers      1 .. max_layers hidden layers
    units_k       32 .. 256, log scale                            n_layers >= k
    activation    relu, leaky_relu, elu, tanh
    dropout       0 .. 0.3
    init          he_uniform, he_normal, xavier_uniform,
                  xavier_normal, lecun_normal
    optimizer     adam, adamw, sgd, rmsprop, adagrad
    lr            1e-4 .. 1e-2, log scale                         optimizer in adam, adamw, rmsprop
    sgd_lr        3e-3 .. 0.3, log scale                          optimizer == sgd
    adagrad_lr    3e-3 .. 0.3, log scale                          optimizer == adagrad
    momentum      0.5 .. 0.99, reverse-log (1 - momentum log)     optimizer == sgd
    nesterov      False, True                                     optimizer == sgd
    beta1, beta2  0.8 .. 0.99, 0.99 .. 0.9999, reverse-log        optimizer in adam, adamw
    weight_decay  1e-5 .. 0.1, log scale                          optimizer == adamw
    schedule      constant, cosine, exponential, step
    lr_decay      0.9 .. 0.999 per epoch, reverse-log             schedule == exponential
    step_gamma    0.1 .. 0.7, every ~epochs/4 epochs              schedule == step
    batch_size    32, 64, 128
    epochs        max_epochs/4 .. max_epochs, log scale           (absent when budgeted: the
                                                                  searcher sets the epochs)
    penalty       none, l2, l1
    l2 / l1       1e-6 .. 1e-3 / 1e-7 .. 1e-4, log scale          penalty == l2 / l1
    loss          cross_entropy or binary_cross_entropy (two      binary classification
                  classes); mse, huber, mae (regression)
    ============  ==============================================  ===========================
    """
    if max_epochs < 1:
        raise ValueError(f"max_epochs must be >= 1, got {max_epochs}")
    dims = {
        "n_layers": Int(1, max_layers) if max_layers > 1 else 1,
        "units_1": Int(32, 256, log=True),
    }
    for k in range(2, max_layers + 1):
        dims[f"units_{k}"] = Int(32, 256, log=True, when=("n_layers", ">=", k))
    dims.update({
        "activation": Choice(["relu", "leaky_relu", "elu", "tanh"]),
        "dropout": Float(0.0, 0.3),
        "init": Choice(["he_uniform", "he_normal", "xavier_uniform", "xavier_normal", "lecun_normal"]),
        "optimizer": Choice(list(OPTIMIZER_NAMES)),
        # Each optimizer family has its own useful range of rates: steps normalized by a running
        # RMS (Adam, AdamW, RMSprop) want ~1e-3, plain SGD ~1e-2..1e-1, Adagrad in between.
        "lr": Float(1e-4, 1e-2, log=True, when=("optimizer", "in", ["adam", "adamw", "rmsprop"])),
        "sgd_lr": Float(3e-3, 3e-1, log=True, when=("optimizer", "==", "sgd")),
        "adagrad_lr": Float(3e-3, 3e-1, log=True, when=("optimizer", "==", "adagrad")),
        "momentum": Float(0.5, 0.99, reverse_log=True, when=("optimizer", "==", "sgd")),
        "nesterov": Choice([False, True], when=("optimizer", "==", "sgd")),
        "beta1": Float(0.8, 0.99, reverse_log=True, when=("optimizer", "in", ["adam", "adamw"])),
        "beta2": Float(0.99, 0.9999, reverse_log=True, when=("optimizer", "in", ["adam", "adamw"])),
        "weight_decay": Float(1e-5, 1e-1, log=True, when=("optimizer", "==", "adamw")),
        "schedule": Choice(list(SCHEDULE_NAMES)),
        "lr_decay": Float(0.9, 0.999, reverse_log=True, when=("schedule", "==", "exponential")),
        "step_gamma": Float(0.1, 0.7, when=("schedule", "==", "step")),
        "batch_size": Choice([32, 64, 128]),
    })
    if not budgeted:
        low = max(1, max_epochs // 4)
        dims["epochs"] = Int(low, max_epochs, log=True) if low < max_epochs else max_epochs
    dims.update({
        "penalty": Choice(["none", "l2", "l1"]),
        "l2": Float(1e-6, 1e-3, log=True, when=("penalty", "==", "l2")),
        "l1": Float(1e-7, 1e-4, log=True, when=("penalty", "==", "l1")),
    })
    if task == "regression":
        dims["loss"] = Choice(["mse", "huber", "mae"])
    elif n_classes == 2:
        dims["loss"] = Choice(["cross_entropy", "binary_cross_entropy"])
    return Space(dims)


# --------------------------------------------------------------------------------------------
# From a params dict to the engine's objects
# --------------------------------------------------------------------------------------------
def _hidden_sizes(params: dict) -> list[int]:
    if "hidden" in params:                        # a user space may give the sizes as one string "128,64"
        hidden = params["hidden"]
        return [int(h) for h in (hidden.split(",") if isinstance(hidden, str) else [hidden])]
    n_layers = int(params.get("n_layers", 1))
    return [int(params.get(f"units_{k}", params.get("units", 64))) for k in range(1, n_layers + 1)]


def _n_outputs(task: str, loss: str, y: np.ndarray, n_classes: int | None) -> int:
    if task == "classification":
        if loss == "binary_cross_entropy":
            return 1 if y.ndim == 1 else y.shape[1]
        return n_classes if y.ndim == 1 else y.shape[1]
    return 1 if y.ndim == 1 else y.shape[1]


def build_model(params: dict, n_inputs: int, n_outputs: int, seed=0, dtype="float32", backend=None):
    """The MLP a params dict describes (engine defaults for the names it leaves out)."""
    from .model import MLP

    return MLP([n_inputs, *_hidden_sizes(params), n_outputs], activation=params.get("activation", "relu"),
               dropout=float(params.get("dropout", 0.0)), init=params.get("init", "xavier_uniform"),
               seed=seed, dtype=dtype, backend=backend)


def build_optimizer(params: dict):
    """The optimizer a params dict describes: its name, rate, momentum/betas, weight decay."""
    from . import optim

    name = params.get("optimizer", "adam")
    kwargs = {}
    lr = params.get(f"{name}_lr", params.get("lr"))         # "sgd_lr", "adagrad_lr", else "lr"
    if lr is not None:
        kwargs["lr"] = float(lr)
    if name in ("sgd", "rmsprop") and "momentum" in params:     # (rmsprop: from a user's space)
        kwargs["momentum"] = float(params["momentum"])
    if name == "sgd" and "nesterov" in params:
        kwargs["nesterov"] = bool(params["nesterov"]) and kwargs.get("momentum", 0.0) > 0
    if name in ("adam", "adamw") and ("beta1" in params or "beta2" in params):
        kwargs["betas"] = (float(params.get("beta1", 0.9)), float(params.get("beta2", 0.999)))
    if "weight_decay" in params and name in ("adamw", "adam", "sgd", "rmsprop", "adagrad"):
        kwargs["weight_decay"] = float(params["weight_decay"])
    return optim.get(name, **kwargs)


def build_schedule(params: dict, total_epochs: int):
    """The learning-rate schedule (per epoch) a params dict describes; None for constant.

    cosine: from the base rate down to 0 over ``total_epochs``; exponential: ``lr_decay`` per
    epoch; step: multiply by ``step_gamma`` every quarter of ``total_epochs``.
    """
    from . import schedules

    name = params.get("schedule", "constant")
    if name in (None, "constant", "none"):
        return None
    if name == "cosine":
        return schedules.CosineDecay(T_max=max(int(total_epochs), 1))
    if name == "exponential":
        return schedules.ExponentialDecay(decay_rate=float(params.get("lr_decay", 0.97)))
    if name == "step":
        return schedules.StepDecay(step_size=max(int(total_epochs) // 4, 1),
                                   gamma=float(params.get("step_gamma", 0.3)))
    return schedules.get(name)


def _penalties(params: dict) -> tuple[float, float]:
    penalty = params.get("penalty")
    l1 = float(params.get("l1", 0.0)) if penalty in (None, "l1") else 0.0
    l2 = float(params.get("l2", 0.0)) if penalty in (None, "l2") else 0.0
    return l1, l2


# --------------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------------
class ProgressLine:
    """A study callback printing ``trial k/n  value  best  elapsed`` after every trial.

    On a terminal the line is rewritten in place (carriage return); elsewhere (logs, pipes)
    one line per trial is printed.
    """

    def __init__(self, n_trials: int | None, metric: str, stream=None):
        self.n_trials, self.metric = n_trials, metric
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()

    def __call__(self, study, trial) -> None:
        # k counts the study's finished trials (a reopened study goes on from its count),
        # leaving out interrupted ones (a killed process's, or Ctrl-C's).
        count = sum(t.state != RUNNING and not t.interrupted for t in study.trials)
        total = f"/{self.n_trials}" if self.n_trials is not None else ""
        if trial.state == COMPLETE:
            outcome = f"{self.metric} {trial.value:.4f}"
        else:
            outcome = trial.state + (f" ({_short(trial.error)})" if trial.error else "")
        try:
            best = study.best_trial
            best_text = f"best {best.value:.4f} (trial {best.id})"
        except ValueError:
            best_text = "best -"
        line = (f"trial {count}{total}  {outcome}  {best_text}  "
                f"elapsed {time.monotonic() - self.started:.1f}s")
        if self.live:
            self.stream.write("\r\x1b[2K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()


def _short(text: str, width: int = 60) -> str:
    text = text.splitlines()[0] if text else ""
    return text if len(text) <= width else text[:width - 3] + "..."


# --------------------------------------------------------------------------------------------
# tune
# --------------------------------------------------------------------------------------------
@dataclass
class TuneResult:
    """What ``tune`` found: the study (every trial), the best params and value, and the best
    model (restored from its checkpoint, or retrained with the best params and the same seed)."""

    study: Study
    best_params: dict
    best_model: object
    best_value: float
    metric: str
    best_trial: object = field(repr=False, default=None)

    @property
    def epochs_spent(self) -> int:
        """Epochs trained over the whole search, all trials together. A promoted (continued)
        trial counts only the epochs it added to its parent's, so this is the search's real cost."""
        return sum(int(t.attrs.get("epochs_trained", 0)) for t in self.study.trials)

    def __repr__(self) -> str:
        return (f"TuneResult(best_value={self.best_value:.6g} ({self.metric}), best_params={self.best_params}, "
                f"trials={len(self.study.trials)}, epochs_spent={self.epochs_spent})")


def _infer_task(y: np.ndarray, loss) -> str:
    if loss is not None:
        from . import losses
        return "classification" if losses.get(loss).classification else "regression"
    if y.ndim == 1 and (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)):
        return "classification"
    return "regression"


def _is_budgeted(searcher) -> bool:
    return getattr(searcher, "max_budget", None) is not None


def _make_searcher(searcher, seed, max_epochs):
    if not isinstance(searcher, str):
        return make_searcher(searcher)
    key = searcher.lower()
    if key == "grid":
        return make_searcher(key)
    if key in ("hyperband", "successive_halving", "successivehalving"):
        from .search import hyperband
        cls = hyperband.Hyperband if key == "hyperband" else hyperband.SuccessiveHalving
        return cls(max_budget=max_epochs, seed=seed)
    return make_searcher(key, seed=seed)


def tune(X, y, validation_data=None, loss=None, space=None, searcher="hyperband", n_trials: int = 50,
         max_epochs: int = 81, storage=None, seed=0, *, validation_split: float | None = None,
         name: str = "tune", metric: str | None = None, patience: int = 10, timeout: float | None = None,
         n_workers: int = 1, verbose: bool = False, callbacks=(), dtype="float32", backend=None,
         blas_threads: int | None = 1) -> TuneResult:
    """Search MLP hyperparameters on (X, y); see the module docstring.

    Parameters
    ----------
    X, y : training data (``y``: integer labels, one-hot rows, or float targets)
    validation_data : (X_val, y_val); else ``validation_split`` (default 0.2) of (X, y) is held out
        (stratified for labels) with ``seed``
    loss : a loss name to fix it; None lets the task decide (and the space choose where it can)
    space : None (the default space), a dict of overrides to it, or a full Space
    searcher : "hyperband" (default) | "random" | "grid" | "gp" | a searcher object
    n_trials : the number of trials the study holds when done: a study reopened from ``storage``
        runs only the missing ones (interrupted trials -- left running by a killed process, or
        stopped by Ctrl-C -- are not counted; Hyperband runs them again)
    max_epochs : the most epochs any trial trains (the top of ``epochs`` and Hyperband's budget)
    storage : None (memory) or an SQLite path, under study ``name``
    seed : one seed for the split, the searcher, and every trial's weights and shuffling
    metric : "accuracy" (classification default) or "loss" (regression default: validation MSE)
    patience : early-stopping patience on the validation loss, in epochs
    timeout : seconds after which no new trial starts
    n_workers : trials run at once (threads)
    verbose : print a progress line after each trial (see ProgressLine)
    callbacks : extra ``callback(study, trial)`` functions
    blas_threads : BLAS threads while tuning (None: leave them alone). The matrices of a small MLP
        are too small to split across cores -- on a busy 2-core machine one thread trained digits
        networks up to 30x faster than two -- so tune uses one per trial and gets parallelism
        from ``n_workers`` instead. Needs ``threadpoolctl`` (installed with scikit-learn);
        without it this setting is ignored.
    """
    from . import losses
    from .data import check_X, train_test_split
    from .train import EarlyStopping, checkpoint_state, evaluate, fit, restore_checkpoint

    X = check_X(X)
    y = np.asarray(y)
    task = _infer_task(y, loss)
    if validation_data is None:
        split = 0.2 if validation_split is None else validation_split
        stratify = task == "classification" and y.ndim == 1
        X, X_val, y, y_val = train_test_split(X, y, split, seed=seed, stratify=stratify)
    elif validation_split is not None:
        raise ValueError("give validation_data or validation_split, not both")
    else:
        X_val, y_val = validation_data
        X_val, y_val = check_X(X_val, "validation X", n_features=X.shape[1]), np.asarray(y_val)
    n_classes = None
    if task == "classification" and y.ndim == 1:
        n_classes = int(max(y.max(), y_val.max())) + 1
    metric = metric or ("accuracy" if task == "classification" else "loss")
    if metric not in ("accuracy", "loss"):
        raise ValueError(f"metric must be 'accuracy' or 'loss', got {metric!r}")
    if metric == "accuracy" and task != "classification":
        raise ValueError("metric='accuracy' needs a classification task (integer labels or a classification loss)")
    direction = "maximize" if metric == "accuracy" else "minimize"
    # One yardstick for every trial: the fixed loss, else cross-entropy or MSE.
    metric_loss = loss or ("cross_entropy" if task == "classification" else "mse")

    search = _make_searcher(searcher, seed, max_epochs)
    budgeted = _is_budgeted(search)
    if isinstance(space, Space):
        tuned_space = space
    else:
        base = default_space(task, n_classes, max_epochs, budgeted=budgeted)
        if loss is not None or (metric == "loss" and task == "classification"):
            base = base.with_overrides({"loss": loss or "cross_entropy"})
        tuned_space = base.with_overrides(space)
    study = Study(tuned_space, search, direction=direction, storage=storage, name=name)

    best_lock = threading.Lock()
    best_so_far = {"value": None, "trial": None}

    def objective(trial):
        params = trial.params
        trial_loss = params.get("loss", metric_loss)
        if losses.get(trial_loss).classification != (task == "classification"):
            raise ValueError(f"loss {trial_loss!r} does not fit a {task} task")
        epochs = int(round(trial.budget)) if trial.budget is not None else int(params.get("epochs", max_epochs))
        model = build_model(params, X.shape[1], _n_outputs(task, trial_loss, y, n_classes), seed, dtype, backend)
        optimizer = build_optimizer(params)
        # Budgeted searches stretch a schedule over max_epochs, so that continuing a trial from a
        # checkpoint follows the same curve an uninterrupted run would.
        schedule = build_schedule(params, max_epochs if trial.budget is not None else epochs)
        initial_epoch = 0
        if trial.checkpoint is not None:
            initial_epoch = min(restore_checkpoint(trial.checkpoint, model, optimizer), epochs)
        l1, l2 = _penalties(params)

        def report(epoch, logs):
            key = "val_accuracy" if metric == "accuracy" else "val_loss"
            if key in logs:
                trial.report(logs[key], epoch)

        # A search tries learning rates that diverge; fit catches the non-finite loss and
        # the trial is recorded as failed with the reason below, so NumPy's overflow
        # warnings on the way would only scatter noise through the progress output.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            history = fit(model, X, y, loss=trial_loss, optimizer=optimizer,
                          schedule=schedule, epochs=epochs, batch_size=int(params.get("batch_size", 32)),
                          validation_data=(X_val, y_val),
                          # A budgeted trial's end state is a checkpoint a promotion continues from:
                          # its weights must belong with the optimizer state and epoch count saved
                          # beside them, so they are not swapped for the best epoch's.
                          early_stopping=EarlyStopping(monitor="val_loss", patience=patience,
                                                       restore_best=trial.budget is None),
                          l1=l1, l2=l2, seed=seed, initial_epoch=initial_epoch, callbacks=[report])
        epochs_trained = len(history.history.get("loss", []))
        epochs_run = initial_epoch + epochs_trained
        trial.set_attr("epochs_run", epochs_run)
        trial.set_attr("epochs_trained", epochs_trained)   # this trial's own epochs (a promotion's extra ones)
        trial.set_attr("stop_reason", history.stop_reason)
        if history.stop_reason == "non_finite_loss":
            raise FloatingPointError(f"training diverged (non-finite loss) in epoch {epochs_run + 1}")
        # Classification trials are judged by their own loss's accuracy (comparable across losses);
        # regression trials all by the validation MSE.
        scores = evaluate(model, X_val, y_val,
                          loss="mse" if task == "regression" else trial_loss)
        trial.set_attr("val_loss", scores["loss"])
        if "accuracy" in scores:
            trial.set_attr("val_accuracy", scores["accuracy"])
        value = scores[metric]
        if not math.isfinite(value):
            raise FloatingPointError(f"validation {metric} is {value}")

        if trial.budget is not None:
            trial.save_checkpoint(checkpoint_state(model, optimizer, epochs_run))
        else:
            with best_lock:
                previous = best_so_far["value"]
                if previous is None or (value > previous if direction == "maximize" else value < previous):
                    trial.save_checkpoint(checkpoint_state(model, optimizer, epochs_run))
                    if best_so_far["trial"] is not None:
                        study.storage.delete_checkpoint(study.study_id, best_so_far["trial"])
                    best_so_far.update(value=value, trial=trial.id)
        return value

    done = [t for t in study.trials if not t.interrupted]
    remaining = max(n_trials - len(done), 0)
    complete = [t for t in done if t.state == COMPLETE]
    if complete and not budgeted:                  # reopened: the stored best keeps its checkpoint
        best = study.best_trial
        best_so_far.update(value=best.value, trial=best.id)
    progress = ProgressLine(n_trials, metric) if verbose else None
    all_callbacks = [*callbacks, *([progress] if progress else [])]
    with _blas_thread_limit(blas_threads):
        try:
            study.optimize(objective, n_trials=remaining, timeout=timeout, n_workers=n_workers,
                           callbacks=all_callbacks)
        finally:
            if progress is not None:
                progress.close()
        best = study.best_trial
        best_model = _best_model(study, best, X, y, task, n_classes, metric_loss, seed, dtype, backend, objective,
                                 forget_best=lambda: best_so_far.update(value=None, trial=None))
    return TuneResult(study, dict(best.params), best_model, best.value, metric, best)


def _blas_thread_limit(n_threads):
    """A context that caps BLAS threads (threadpoolctl), or does nothing."""
    if n_threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=int(n_threads), user_api="blas")


def _best_model(study, best, X, y, task, n_classes, metric_loss, seed, dtype, backend, objective, forget_best):
    """Restore the best trial's model from its checkpoint; retrain it when there is none."""
    from .train import restore_checkpoint

    trial_loss = best.params.get("loss", metric_loss)
    checkpoint = study.storage.load_checkpoint(study.study_id, best.id)
    model = build_model(best.params, X.shape[1], _n_outputs(task, trial_loss, y, n_classes), seed, dtype, backend)
    if checkpoint is None:
        # No checkpoint (e.g. a user's searcher raced two workers): train it again, as a trial of its own.
        forget_best()
        retrain = study.ask(best.params, budget=best.budget)
        retrain.set_attr("retrain_of", best.id)
        study.tell(retrain, objective(retrain))
        checkpoint = study.storage.load_checkpoint(study.study_id, retrain.id)
    if checkpoint is not None:
        restore_checkpoint(checkpoint, model, build_optimizer(best.params))
    model.loss_name = trial_loss
    return model
