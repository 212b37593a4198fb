"""Training: the loop that turns data, a loss and an optimizer into weights.

One epoch of ``fit`` is::

    shuffle the rows (seeded by (seed, epoch))
    for each mini-batch (x, y):
        out   = model.forward(x)                      # logits
        loss  = loss.forward(out, y) + l1 |W| + l2 W^2
        grad  = loss.backward()                        # dL/d(out)
        model.backward(grad)                           # fills model.grads
        grads += l1 sign(W) + 2 l2 W                   # penalty gradients (weights only)
        clip the global gradient norm to clip_norm     # optional
        optimizer.step(params, grads)                  # one vectorized update of the flat buffer
    then validation metrics, the schedule, early stopping and callbacks.

Batches are contiguous slices of a shuffled copy of the data made once per epoch,
so a batch costs no gather. The last batch may be smaller (ragged); every batch is
weighted by its size in the epoch's mean loss.
"""
from __future__ import annotations

import math
import sys
import time

import numpy

from . import _checks, fused, losses
from .backend import array_module, to_numpy
from .data import check_fraction, check_positive_int, check_same_length, check_X, train_test_split

STOP_REASONS = ("completed", "early_stopping", "non_finite_loss", "callback")


class History:
    """What ``fit`` returns: per-epoch metrics and why training stopped.

    ``history``: dict of lists, one entry per epoch run: "loss" (training objective, penalty
    included), "val_loss" (data loss on the validation set), "accuracy"/"val_accuracy"
    (classification), "lr" (the rate used in that epoch; for per-batch schedules, at its
    first batch). ``epoch``: the epoch numbers. ``stop_reason``: "completed",
    "early_stopping", "non_finite_loss" or "callback". ``best_epoch``: the epoch whose
    weights early stopping kept (None without early stopping).
    """

    def __init__(self):
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []
        self.stop_reason = "completed"
        self.best_epoch = None
        self.params: dict = {}

    def record(self, epoch: int, logs: dict) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        last = {k: v[-1] for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, stop_reason={self.stop_reason!r}, last={last})"


class EarlyStopping:
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``mode`` "min" or "max"; "auto" picks "max" for accuracies and "min" otherwise.
    ``restore_best`` puts back the weights of the best epoch when training stops (and
    when it completes without stopping).
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 restore_best: bool = True, mode: str = "auto"):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping mode must be 'auto', 'min' or 'max'; got {mode!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping patience must be an integer >= 0; got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"EarlyStopping min_delta must be >= 0; got {min_delta!r}")
        self.monitor, self.patience, self.min_delta = monitor, patience, float(min_delta)
        self.restore_best = restore_best
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.reset()

    def reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.best_params = None
        self.wait = 0

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, epoch: int, value: float, model) -> bool:
        """Record this epoch's monitored value; True when training should stop."""
        if self.improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_params = model.flat_params.copy()
            return False
        self.wait += 1
        # Keras's rule: stop once `patience` epochs in a row brought no improvement.
        return self.wait >= self.patience

    def restore(self, model) -> None:
        if self.restore_best and self.best_params is not None:
            model.flat_params[...] = self.best_params


class Callback:
    """Hooks into ``fit``. Override what you need; ``on_epoch_end`` returning True stops training."""

    def on_train_begin(self, history: History) -> None: ...
    def on_epoch_begin(self, epoch: int) -> None: ...
    def on_batch_end(self, step: int, loss) -> None:
        """``loss``: the batch's loss, a float on the CPU (a 0-d device array on the GPU,
        where reading it would wait for the device)."""
    def on_epoch_end(self, epoch: int, logs: dict) -> bool | None: ...
    def on_train_end(self, history: History) -> None: ...


class _FunctionCallback(Callback):
    """A plain function ``f(epoch, logs)`` used as an end-of-epoch callback."""

    def __init__(self, function):
        self.function = function

    def on_epoch_end(self, epoch, logs):
        return self.function(epoch, logs)


def _as_callbacks(callbacks) -> list[Callback]:
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback) or callable(callbacks):
        callbacks = [callbacks]
    return [c if isinstance(c, Callback) else _FunctionCallback(c) for c in callbacks]


def _prepare(model, loss_fn, X, y, name: str):
    """Validate one (X, y) pair and move it to the model's device, in its dtype."""
    backend = model.backend
    X = check_X(X, name=f"{name} X".strip(), n_features=model.n_inputs, dtype=backend.dtype)
    y = numpy.asarray(to_numpy(y))
    check_same_length(X, y, names=(f"{name} X".strip(), f"{name} y".strip()))
    targets = loss_fn.prepare_targets(y, model.n_outputs, backend.xp, backend.dtype)
    return backend.asarray(X), targets


def _penalty(model, l1: float, l2: float):
    """l1 * sum |W| + l2 * sum W^2 over the weight matrices (biases are not penalized).

    A float64 scalar on the model's device: summed there, read by the caller when it wants.
    """
    xp = model.backend.xp
    total = xp.zeros((), dtype=xp.float64)
    for W in model.weights:
        if l1:
            total += l1 * xp.abs(W).sum(dtype=xp.float64)
        if l2:
            total += l2 * xp.vdot(W.ravel(), W.ravel()).astype(xp.float64)
    return total


def _sync_each_batch(backend) -> bool:
    """Whether fit reads each batch's loss on the host as it goes.

    On the CPU a scalar read is free, so fit checks every batch's loss and stops at the
    first non-finite one. On a GPU a read waits for the device, so the epoch's sums
    stay there and are read once at its end (a non-finite epoch is caught then; either
    way the weights go back to the epoch's start).
    """
    return backend.name == "numpy"


def _add_penalty_gradients(model, l1: float, l2: float) -> None:
    """dL/dW += l1 sign(W) + 2 l2 W."""
    xp = model.backend.xp
    for W, dW in zip(model.weights, model.weight_grads):
        if l2:
            dW += W.dtype.type(2.0 * l2) * W
        if l1:
            dW += W.dtype.type(l1) * xp.sign(W)


def clip_grad_norm(flat_grads, max_norm: float) -> float:
    """Scale gradients so their global L2 norm is at most ``max_norm`` (PyTorch's rule:
    multiply by max_norm / (norm + 1e-6) when that is below 1). Returns the norm before:
    a float on the CPU, a 0-d device array on a GPU (where reading it would wait for the
    device, so the scale is computed and applied there)."""
    xp = array_module(flat_grads)
    if xp is not numpy:
        norm = xp.sqrt(xp.vdot(flat_grads, flat_grads).astype(xp.float64))
        flat_grads *= xp.minimum(max_norm / (norm + 1e-6), 1.0).astype(flat_grads.dtype)
        return norm
    norm = float(xp.sqrt(xp.vdot(flat_grads, flat_grads)))
    coefficient = max_norm / (norm + 1e-6)
    if coefficient < 1.0:
        flat_grads *= flat_grads.dtype.type(coefficient)
    return norm


def _get_optimizer(optimizer):
    from . import optim
    if optimizer is None:
        return optim.get("adam")
    if isinstance(optimizer, str):
        return optim.get(optimizer)
    if not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"optimizer must be a name or an object with step(params, grads); got {optimizer!r}")
    return optimizer


def _check_regularization(l1, l2, clip_norm):
    for name, value in (("l1", l1), ("l2", l2)):
        _checks.number(value, name, low=0.0, error=ValueError)
    if clip_norm is not None:
        _checks.number(clip_norm, "clip_norm", low=0.0, low_open=True, error=ValueError)


def fit(model, X, y, loss="cross_entropy", optimizer="adam", schedule=None, epochs: int = 100,
        batch_size: int = 32, shuffle: bool = True, validation_data=None, validation_split=None,
        early_stopping=None, l1: float = 0.0, l2: float = 0.0, clip_norm=None, seed=0,
        verbose=False, callbacks=(), *, initial_epoch: int = 0) -> History:
    """Train ``model`` on (X, y); returns a ``History``. See the module docstring for the loop.

    ``initial_epoch=k`` continues an earlier run at epoch k (epochs k .. epochs-1 run):
    with the model's and optimizer's state restored, the result is bit-identical to an
    uninterrupted run, because each epoch's shuffle is seeded by (seed, epoch).
    """
    loss_fn = losses.get(loss)
    optimizer = _get_optimizer(optimizer)
    epochs = check_positive_int(epochs, "epochs", 0)
    batch_size = check_positive_int(batch_size, "batch_size", 1)
    initial_epoch = check_positive_int(initial_epoch, "initial_epoch", 0)
    if initial_epoch > epochs:
        raise ValueError(f"initial_epoch ({initial_epoch}) is past epochs ({epochs})")
    _check_regularization(l1, l2, clip_norm)
    if validation_data is not None and validation_split is not None:
        raise ValueError("give validation_data or validation_split, not both")
    if early_stopping is True:
        early_stopping = EarlyStopping()
    callbacks = _as_callbacks(callbacks)

    if validation_split is not None:
        check_fraction(validation_split, "validation_split")
        X_host = check_X(X, n_features=model.n_inputs)
        y_host = numpy.asarray(to_numpy(y))
        check_same_length(X_host, y_host)
        stratify = loss_fn.classification and y_host.ndim == 1
        X, X_val, y, y_val = train_test_split(X_host, y_host, validation_split, seed=seed, stratify=stratify,
                                              name="validation_split")
        validation_data = (X_val, y_val)
    X, y = _prepare(model, loss_fn, X, y, "")
    validation = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (X_val, y_val)")
        validation = _prepare(model, loss_fn, *validation_data, "validation")
    if early_stopping is not None:
        if early_stopping.monitor.startswith("val_") and validation is None:
            raise ValueError(f"early stopping monitors {early_stopping.monitor!r} but there is no "
                             "validation data; pass validation_data or validation_split")
        early_stopping.reset()

    # Every name fit will record, so that a monitor it never records fails now, not after an epoch.
    recorded = {"loss", "lr"} | ({"accuracy"} if loss_fn.classification else set())
    if validation is not None:
        recorded |= {f"val_{key}" for key in recorded - {"lr"}}
    plateau_monitor = getattr(schedule, "monitor", None) or ("val_loss" if validation is not None else "loss")
    for owner, monitor in (("early stopping", getattr(early_stopping, "monitor", None)),
                           ("the schedule", plateau_monitor if hasattr(schedule, "observe") else None)):
        if monitor is not None and monitor not in recorded:
            raise ValueError(f"{owner} monitors {monitor!r}, which fit does not record here; "
                             f"available: {', '.join(sorted(recorded))}")

    xp = model.backend.xp
    model.loss_name = loss_fn.name
    # The loss and the update as the model's ``jit`` setting says: fused where it pays.
    loss_step = fused.loss_step(loss_fn, model.jit)
    optimizer_step = fused.optimizer_step(optimizer, model.jit)
    n = X.shape[0]
    n_batches = -(-n // batch_size)
    base_lr = getattr(optimizer, "initial_lr", optimizer.lr)
    unit = getattr(schedule, "unit", "epoch")
    X_epoch, y_epoch = (xp.empty_like(X), xp.empty_like(y)) if shuffle else (X, y)
    sync_each_batch = _sync_each_batch(model.backend)
    history = History()
    history.params = {"epochs": epochs, "batch_size": batch_size, "n_samples": n, "loss": loss_fn.name}
    for callback in callbacks:
        callback.on_train_begin(history)
    started = time.perf_counter()

    for epoch in range(initial_epoch, epochs):
        epoch_started = time.perf_counter()
        for callback in callbacks:
            callback.on_epoch_begin(epoch)
        if schedule is not None and unit == "epoch":
            optimizer.lr = schedule(epoch, base_lr)
        epoch_lr = optimizer.lr
        if shuffle:
            order = numpy.random.default_rng(None if seed is None else [seed, epoch]).permutation(n)
            order = xp.asarray(order)
            # NumPy's take buffers the whole output when mode="raise" (its default) and
            # out= is given: 4x slower here. A permutation's indices are always in range.
            gather = {"mode": "clip"} if xp is numpy else {}
            xp.take(X, order, axis=0, out=X_epoch, **gather)
            xp.take(y, order, axis=0, out=y_epoch, **gather)
        weights_at_epoch_start = model.flat_params.copy()
        loss_sum, correct, finite = 0.0, 0.0, True
        if not sync_each_batch:   # float64 accumulators on the device, read at the epoch's end
            loss_sum, correct = xp.zeros((), xp.float64), xp.zeros((), xp.float64)
        for batch in range(n_batches):
            x_batch = X_epoch[batch * batch_size:(batch + 1) * batch_size]
            y_batch = y_epoch[batch * batch_size:(batch + 1) * batch_size]
            if schedule is not None and unit == "batch":
                optimizer.lr = schedule(epoch * n_batches + batch, base_lr)
                if batch == 0:
                    epoch_lr = optimizer.lr
            out = model._forward(x_batch, True)
            batch_loss = xp.asarray(loss_step.forward(out, y_batch), dtype=xp.float64)
            if l1 or l2:
                batch_loss = batch_loss + _penalty(model, l1, l2)
            if sync_each_batch:
                batch_loss = float(batch_loss)
                if not math.isfinite(batch_loss):
                    finite = False
                    break
            model.backward(loss_step.backward(), need_input_grad=False)
            if l1 or l2:
                _add_penalty_gradients(model, l1, l2)
            if clip_norm is not None:
                clip_grad_norm(model.flat_grads, clip_norm)
            optimizer_step.step([model.flat_params], [model.flat_grads])
            loss_sum += batch_loss * x_batch.shape[0]
            if loss_fn.classification:
                correct += loss_fn.correct(out, y_batch)
            for callback in callbacks:
                callback.on_batch_end(epoch * n_batches + batch, batch_loss)
        loss_sum, correct = float(loss_sum), float(correct)
        if finite and not math.isfinite(loss_sum):
            finite = False
        if finite and not bool(xp.isfinite(model.flat_params).all()):
            # The epoch's last step overflowed the weights themselves (the loss was still
            # finite when it was computed): the next epoch would start from inf/NaN.
            finite = False
        if not finite:
            # The loss overflowed: go back to the last weights that gave a finite epoch
            # rather than hand back garbage, and say why training stopped.
            model.flat_params[...] = weights_at_epoch_start
            history.stop_reason = "non_finite_loss"
            if verbose:
                print(f"epoch {epoch + 1}/{epochs}: loss is not finite; stopped "
                      "(weights restored to the start of this epoch)", file=sys.stderr, flush=True)
            break

        logs = {"loss": loss_sum / n}
        if loss_fn.classification:
            logs["accuracy"] = correct / n
        if validation is not None:
            val = _evaluate_prepared(model, loss_fn, *validation)
            logs.update({f"val_{key}": value for key, value in val.items()})
        logs["lr"] = float(epoch_lr)
        history.record(epoch, logs)

        if schedule is not None and hasattr(schedule, "observe"):
            schedule.observe(logs[plateau_monitor])
        stop = False
        if early_stopping is not None:
            if early_stopping.update(epoch, logs[early_stopping.monitor], model):
                history.stop_reason, stop = "early_stopping", True
        for callback in callbacks:
            if callback.on_epoch_end(epoch, logs):
                if not stop:
                    history.stop_reason = "callback"
                stop = True
        if verbose:
            _print_epoch(epoch, epochs, logs, time.perf_counter() - epoch_started)
        if stop:
            break

    if early_stopping is not None:
        early_stopping.restore(model)
        history.best_epoch = early_stopping.best_epoch
    history.params["seconds"] = time.perf_counter() - started
    for callback in callbacks:
        callback.on_train_end(history)
    if verbose and history.stop_reason != "completed":
        print(f"stopped: {history.stop_reason}"
              + (f" (best epoch {history.best_epoch + 1})" if history.best_epoch is not None else ""),
              file=sys.stderr, flush=True)
    return history


def _print_epoch(epoch: int, epochs: int, logs: dict, seconds: float) -> None:
    width = len(str(epochs))
    parts = [f"epoch {epoch + 1:>{width}}/{epochs}"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if key in logs:
            parts.append(f"{key} {logs[key]:.4f}")
    parts.append(f"lr {logs['lr']:.3g}")
    parts.append(f"{seconds:.2f}s")
    print("  ".join(parts), file=sys.stderr, flush=True)


def _evaluate_prepared(model, loss_fn, X, y, batch_size: int = 4096) -> dict:
    n = X.shape[0]
    loss_step = fused.loss_step(loss_fn, model.jit)
    loss_sum, correct = 0.0, 0.0
    for start in range(0, n, batch_size):
        x_batch, y_batch = X[start:start + batch_size], y[start:start + batch_size]
        out = model._forward(x_batch, False)
        loss_sum += float(loss_step.forward(out, y_batch)) * x_batch.shape[0]
        if loss_fn.classification:
            correct += float(loss_fn.correct(out, y_batch))
    result = {"loss": loss_sum / n}
    if loss_fn.classification:
        result["accuracy"] = correct / n
    return result


def evaluate(model, X, y, loss=None, batch_size: int = 4096) -> dict:
    """Mean loss (no penalty) and, for classification, accuracy of ``model`` on (X, y).

    ``loss`` defaults to the loss the model was trained with, else cross-entropy.
    """
    loss_fn = losses.get(loss or model.loss_name or "cross_entropy")
    batch_size = check_positive_int(batch_size, "batch_size", 1)
    return _evaluate_prepared(model, loss_fn, *_prepare(model, loss_fn, X, y, ""), batch_size=batch_size)
