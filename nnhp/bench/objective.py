"""One benchmark run: train a workload's network with one optimizer configuration, and record its curve.

:class:`TrainingRun` is the objective every study of the benchmark optimizes. It is a
module-level class holding only names and numbers, so it pickles and runs in a worker process
(``Study.optimize(n_workers=k)``); each process loads a workload's data once.

What a run records (as trial attributes, so they live in the study's storage):

* ``curve``: at the end of every epoch, ``steps`` (mini-batch updates so far), ``seconds``
  (training time so far, evaluation excluded) and ``val`` (the validation metric);
* ``test``: the test metric of the final weights;
* ``seconds_per_step``: training seconds over steps;
* ``stop_reason``: fit's (``"non_finite_loss"`` when the run diverged).

Its value -- what a study minimizes -- is the final validation metric. A run whose loss
overflowed fails, with an error that says so: it used its share of the budget and reached
nothing (its curve up to the overflow is kept).

Same start for every optimizer: the weights are drawn by ``MLP(..., seed=seed)`` and the
batches shuffled by ``fit(..., seed=seed)``, neither of which depends on the optimizer, so with
one seed every optimizer starts from the same weights and sees the same batches.
"""
from __future__ import annotations

import time

import numpy

from ..model import MLP
from ..train import Callback, evaluate, fit
from .spaces import build_optimizer, build_schedule
from .workloads import Workload, load_splits

__all__ = ["TrainingRun", "train_once"]


class _Clock(Callback):
    """Training seconds per epoch: from the epoch's start to its last update (evaluation excluded)."""

    def __init__(self):
        self.seconds: list[float] = []
        self._total = 0.0
        self._epoch_start = 0.0
        self._last_update = 0.0

    def on_epoch_begin(self, epoch):
        self._epoch_start = self._last_update = time.perf_counter()

    def on_batch_end(self, step, loss):
        self._last_update = time.perf_counter()

    def on_epoch_end(self, epoch, logs):
        self._total += self._last_update - self._epoch_start
        self.seconds.append(self._total)


def _metric(workload: Workload, logs: dict, prefix: str = "val_") -> float:
    if workload.metric == "error":
        return 1.0 - float(logs[f"{prefix}accuracy"])
    return float(logs[f"{prefix}loss"])


def train_once(workload: Workload, optimizer: str, params: dict, seed: int) -> dict:
    """Train from the seed's initial weights; return the record of the module docstring plus
    ``final`` (the last validation metric; None if no epoch finished)."""
    splits = load_splits(workload)
    model = MLP([splits.X_train.shape[1], *workload.hidden, splits.n_outputs], activation=workload.activation,
                seed=seed)
    n_batches = -(-splits.X_train.shape[0] // workload.batch_size)
    total_steps = n_batches * workload.epochs
    clock = _Clock()
    with numpy.errstate(over="ignore", invalid="ignore"):     # a diverging run says so in stop_reason
        history = fit(model, splits.X_train, splits.y_train, loss=workload.loss,
                      optimizer=build_optimizer(optimizer, params),
                      schedule=build_schedule(params.get("schedule", "constant"), total_steps),
                      epochs=workload.epochs, batch_size=workload.batch_size,
                      validation_data=(splits.X_val, splits.y_val), seed=seed, callbacks=[clock])
    epochs_run = len(history.epoch)
    val_key = "val_accuracy" if workload.metric == "error" else "val_loss"
    values = history.history.get(val_key, [])
    curve = {"steps": [n_batches * (epoch + 1) for epoch in range(epochs_run)],
             "seconds": [round(s, 6) for s in clock.seconds[:epochs_run]],
             "val": [1.0 - v if workload.metric == "error" else float(v) for v in values]}
    with numpy.errstate(over="ignore", invalid="ignore"):
        test = _metric(workload, evaluate(model, splits.X_test, splits.y_test, loss=workload.loss), prefix="")
    steps = n_batches * epochs_run
    return {"curve": curve, "test": test, "final": curve["val"][-1] if curve["val"] else None,
            "seconds_per_step": (clock.seconds[-1] / steps) if steps else None,
            "stop_reason": history.stop_reason, "epochs_run": epochs_run}


class TrainingRun:
    """The objective: ``trial.params`` holds the optimizer's hyperparameters (and, for reruns, a
    ``seed``; otherwise ``seed`` given here is used). See the module docstring."""

    def __init__(self, workload: Workload, optimizer: str, seed: int):
        self.workload = workload
        self.optimizer = optimizer
        self.seed = int(seed)

    def __call__(self, trial) -> float:
        params = dict(trial.params)
        seed = int(params.pop("seed", self.seed))
        record = train_once(self.workload, self.optimizer, params, seed)
        for key in ("curve", "test", "seconds_per_step", "stop_reason"):
            trial.set_attr(key, record[key])
        trial.set_attr("seed", seed)
        if record["stop_reason"] == "non_finite_loss":
            raise FloatingPointError(f"diverged: the loss overflowed in epoch {record['epochs_run'] + 1} "
                                     f"of {self.workload.epochs}")
        return record["final"]
