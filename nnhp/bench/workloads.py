"""Workloads: the fixed problems optimizers are compared on.

A workload fixes everything but the optimizer -- data and its split, architecture, loss, batch
size, epoch budget, the validation metric and the target -- so that two optimizers run on it
differ in nothing else (DeepOBS's "test problems", AlgoPerf's "workloads").

The metric is always minimized: the validation *error rate* (1 - accuracy) for classifiers,
the validation loss (mean squared error) for regression. Every workload splits its data
60/20/20 into train, validation and test (stratified for classifiers, seed 0) and standardizes
features with the training part's statistics; the test part is touched only by the final
reruns.

The registry (:data:`WORKLOADS`):

=================  =========================================================================
digits_mlp         8x8 digits, 64-128-64-10 ReLU: the small MLP most comparisons start from
regression_mlp     a smooth nonlinear target of 8 features, 64-64 ReLU, MSE
deep_tanh          3 interleaved spirals, eight tanh layers of 16 units: deep, narrow and
                   saturating, so badly conditioned (gradients shrink layer by layer)
wide_mlp           digits through one hidden layer of 1024 ReLU units: many parameters, easy
noisy_digits       digits with 30% of the *training* labels replaced by another class
                   (validation and test stay clean): rewards optimizers that do not memorize
=================  =========================================================================

Targets (the AlgoPerf rule)
---------------------------
A workload's target is the validation metric a tuned optimizer should reach. It is set the
AlgoPerf way, from the best tuned result: for each optimizer, the median over the seed reruns
of its best tuned configuration's final validation metric; the target is the best (lowest) of
these over the optimizers (:func:`nnhp.bench.metrics.derive_target`). The registry's targets
were derived once with that rule from the default suite (``nnhp bench optimizers``, 8
optimizers, 3 studies of 16 trials, 5 seeds; benchmarks/RESULTS.md), so that results stay
comparable between runs on other optimizer sets, as AlgoPerf fixes its targets in advance;
each is the derived value rounded up at its fourth significant digit (an error rate of 6/360
computes as 0.0166666666666667 and must still count as reached).
``target=None`` (a user's CSV, a changed epoch budget such as ``--quick``'s) derives it from
the run itself, by the same rule.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass

import numpy

from .. import _checks, data

__all__ = ["Workload", "WORKLOADS", "DEFAULT_WORKLOADS", "Splits", "get_workload", "load_splits",
           "user_workload"]


@dataclass(frozen=True)
class Workload:
    """One problem; see the module docstring. Frozen (hashable), so its data loads once per process."""

    name: str
    description: str
    data: str                           # a built-in data set's name, or a CSV file's path
    hidden: tuple
    activation: str = "relu"
    loss: str = "cross_entropy"
    batch_size: int = 64
    epochs: int = 20
    target: float | None = None         # the validation metric to reach; None: derived from the run
    label_noise: float = 0.0            # fraction of training labels replaced by another class
    data_options: tuple = ()            # (name, value) pairs for the data set's generator
    csv_target: str | None = None       # a CSV's label column
    task: str | None = None             # a CSV's task, when the automatic rule is not wanted

    @property
    def classification(self) -> bool:
        return self.loss in ("cross_entropy", "binary_cross_entropy")

    @property
    def metric(self) -> str:
        """What is minimized: ``"error"`` (1 - accuracy) or ``"loss"`` (the validation loss)."""
        return "error" if self.classification else "loss"

    def with_epochs(self, epochs: int) -> "Workload":
        """The same workload on another epoch budget; its fixed target no longer applies."""
        if epochs == self.epochs:
            return self
        return dataclasses.replace(self, epochs=int(epochs), target=None)

    def identity(self) -> dict:
        """What defines the workload's runs, for a stored study to check on reopening."""
        described = {key: value for key, value in dataclasses.asdict(self).items()
                     if key not in ("description", "target")}
        described["hidden"] = list(self.hidden)
        described["data_options"] = [list(pair) for pair in self.data_options]
        if os.path.exists(self.data):
            dataset = _dataset(self)          # a file: its content, not only its path
            described["data"] = data.fingerprint(dataset.X, dataset.y)
        return described


WORKLOADS = {workload.name: workload for workload in (
    Workload("digits_mlp", "digits, 64-128-64-10 ReLU, cross-entropy", "digits", (128, 64), epochs=20,
             target=0.01667),
    Workload("regression_mlp", "8 features -> smooth nonlinear target, 64-64 ReLU, MSE", "regression",
             (64, 64), loss="mse", batch_size=32, epochs=30, target=0.07664,
             data_options=(("n_samples", 1000), ("n_features", 8), ("noise", 0.1))),
    Workload("deep_tanh", "3 spirals, 8 tanh layers of 16 units (ill-conditioned)", "spirals", (16,) * 8,
             activation="tanh", batch_size=32, epochs=20, target=0.006667,
             data_options=(("n_samples", 1500), ("n_classes", 3), ("noise", 0.4))),
    Workload("wide_mlp", "digits, one hidden layer of 1024 ReLU units", "digits", (1024,), epochs=15,
             target=0.01389),
    Workload("noisy_digits", "digits, 30% of training labels flipped, 64-128-64-10 ReLU", "digits", (128, 64),
             epochs=20, label_noise=0.3, target=0.06112),
)}

#: The default suite: every registered workload.
DEFAULT_WORKLOADS = tuple(WORKLOADS)


def get_workload(name: str) -> Workload:
    """A registered workload by name (the nearest name is suggested for a typo)."""
    return WORKLOADS[_checks.one_of(name, "workload", WORKLOADS)]


def user_workload(path_or_name: str, *, hidden=(128, 64), activation: str = "relu", epochs: int = 20,
                  batch_size: int = 64, target_column: str | None = None, task: str | None = None,
                  target: float | None = None) -> Workload:
    """A workload on a user's CSV file (or a built-in data set by name), with the loss its task calls for."""
    dataset = data.load_dataset(path_or_name, target=target_column, task=task)
    name = os.path.splitext(os.path.basename(str(path_or_name)))[0]
    loss = "cross_entropy" if dataset.task == "classification" else "mse"
    return Workload(name, f"{path_or_name}, {'-'.join(map(str, hidden)) or 'linear'} {activation}, {loss}",
                    str(path_or_name), tuple(int(h) for h in hidden), activation=activation, loss=loss,
                    batch_size=int(batch_size), epochs=int(epochs), target=target, csv_target=target_column,
                    task=task)


@dataclass
class Splits:
    """A workload's data, split and standardized (module docstring)."""

    X_train: numpy.ndarray
    y_train: numpy.ndarray
    X_val: numpy.ndarray
    y_val: numpy.ndarray
    X_test: numpy.ndarray
    y_test: numpy.ndarray
    n_outputs: int


@functools.lru_cache(maxsize=16)
def _dataset(workload: Workload) -> data.Dataset:
    if workload.data in data.BUILTIN:
        return data.BUILTIN[workload.data](**dict(workload.data_options))
    return data.load_dataset(workload.data, target=workload.csv_target, task=workload.task)


def _flip_labels(y: numpy.ndarray, fraction: float, n_classes: int, seed: int = 0) -> numpy.ndarray:
    """``y`` with ``round(fraction n)`` labels, chosen at random, moved to another class at random."""
    rng = numpy.random.default_rng([seed, 0x0153])
    noisy = y.copy()
    chosen = rng.choice(len(y), size=int(round(fraction * len(y))), replace=False)
    noisy[chosen] = (y[chosen] + rng.integers(1, n_classes, size=len(chosen))) % n_classes
    return noisy


@functools.lru_cache(maxsize=16)
def load_splits(workload: Workload) -> Splits:
    """The workload's train/validation/test parts (cached: each process loads a workload once)."""
    dataset = _dataset(workload)
    classification = workload.classification
    if classification and dataset.task != "classification":
        raise ValueError(f"workload {workload.name!r}: loss {workload.loss!r} needs class labels, but "
                         f"{workload.data} is a {dataset.task} data set")
    X_train, X_rest, y_train, y_rest = data.train_test_split(dataset.X, dataset.y, 0.4, seed=0,
                                                             stratify=classification)
    X_val, X_test, y_val, y_test = data.train_test_split(X_rest, y_rest, 0.5, seed=0, stratify=classification)
    X_train, X_val, X_test = data.standardize(X_train, X_val, X_test)
    n_outputs = int(dataset.y.max()) + 1 if classification else 1
    if workload.label_noise:
        y_train = _flip_labels(y_train, workload.label_noise, n_outputs)
    return Splits(X_train, y_train, X_val, y_val, X_test, y_test, n_outputs)
