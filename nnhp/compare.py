"""Optimizers head to head, under one fair protocol.

Comparing optimizers is easy to do unfairly: give one a tuned learning rate and the
other a default, and the table says more about the tuning than the method. The
protocol here follows the optimizer benchmarks of the literature (DeepOBS, AlgoPerf):

1. **Equal tuning budget.** Every optimizer gets the same number of learning rates,
   drawn log-uniformly (one per equal slice of the log range) from the range that
   suits it, each trained from the *same*
   initial weights on the same data for the same epochs.
2. **Best by validation.** The rate with the lowest final validation loss wins.
3. **Several seeds.** The winner is retrained with ``n_seeds`` seeds (initial weights,
   dropout and shuffling all change); we report the final validation loss and accuracy
   as mean and standard deviation, and the epochs needed to reach ``target_accuracy``.

``compare_optimizers`` returns a ``Comparison`` with one row per optimizer, the
per-epoch curves of every seed, and helpers to print a table or draw the curves.

This is the small version: one data set, the learning rate alone. The full benchmark --
a workload suite, each optimizer tuned over its own hyperparameters in equal studies,
time to target, performance profiles and the AlgoPerf score, resumable -- is
:mod:`nnhp.bench` (``nnhp bench optimizers``).
"""
from __future__ import annotations

import csv
import json
import math
import os
import statistics
import time
from dataclasses import dataclass, field

import numpy

from . import _checks, optim
from .model import MLP
from .train import fit

# Log-uniform learning-rate ranges per optimizer: wide enough to hold each one's
# usual optimum (SGD and Adadelta want far larger rates than Adam).
LR_RANGES = {"sgd": (1e-3, 1.0), "momentum": (1e-4, 0.3), "nesterov": (1e-4, 0.3),
             "adagrad": (1e-3, 1.0), "adadelta": (1e-2, 10.0), "rmsprop": (1e-5, 1e-2),
             "adam": (1e-5, 1e-2), "adamw": (1e-5, 1e-2)}
# Named variants: SGD with momentum is the method most papers compare against.
VARIANTS = {"momentum": ("sgd", {"momentum": 0.9}), "nesterov": ("sgd", {"momentum": 0.9, "nesterov": True})}


def make_optimizer(name: str, lr: float):
    base, options = VARIANTS.get(name, (name, {}))
    return optim.get(base, lr=lr, **options)


@dataclass
class OptimizerResult:
    name: str
    best_lr: float
    tried: list                         # (lr, final val_loss) for every rate of the budget
    final_val_loss: list                # one per seed
    final_val_accuracy: list
    epochs_to_target: list              # None where the target was never reached
    seconds: list
    curves: list = field(default_factory=list)   # per seed: the val_loss history

    def summary(self) -> dict:
        def mean_std(values):
            values = [v for v in values if v is not None and math.isfinite(v)]
            if not values:
                return float("nan"), float("nan")
            return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)
        loss_mean, loss_std = mean_std(self.final_val_loss)
        acc_mean, acc_std = mean_std(self.final_val_accuracy)
        reached = [e for e in self.epochs_to_target if e is not None]
        return {"optimizer": self.name, "best_lr": self.best_lr,
                "val_loss_mean": loss_mean, "val_loss_std": loss_std,
                "val_accuracy_mean": acc_mean, "val_accuracy_std": acc_std,
                "reached_target": f"{len(reached)}/{len(self.epochs_to_target)}",
                "median_epochs_to_target": statistics.median(reached) if reached else None,
                "seconds_per_run": statistics.fmean(self.seconds)}


@dataclass
class Comparison:
    results: list
    target_accuracy: float
    settings: dict

    def table(self) -> str:
        """A plain-text table, best mean validation loss first."""
        rows = sorted((r.summary() for r in self.results), key=lambda s: s["val_loss_mean"])
        lines = [f"{'optimizer':<10} {'best lr':>9} {'val loss':>17} {'val accuracy':>17} "
                 f"{'reached':>8} {'epochs to ' + format(self.target_accuracy, '.0%'):>14} {'s/run':>6}"]
        for s in rows:
            epochs = "-" if s["median_epochs_to_target"] is None else f"{s['median_epochs_to_target']:g}"
            lines.append(f"{s['optimizer']:<10} {s['best_lr']:>9.2e} "
                         f"{s['val_loss_mean']:>8.4f} ± {s['val_loss_std']:<6.4f} "
                         f"{100 * s['val_accuracy_mean']:>7.2f}% ± {100 * s['val_accuracy_std']:<5.2f} "
                         f"{s['reached_target']:>8} {epochs:>14} {s['seconds_per_run']:>6.2f}")
        return "\n".join(lines)

    def write(self, folder: str) -> list[str]:
        """Write results.csv, results.json and (with matplotlib) curves.png; returns the paths."""
        os.makedirs(folder, exist_ok=True)
        written = []
        summaries = [r.summary() for r in self.results]
        path = os.path.join(folder, "results.csv")
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(summaries[0]))
            writer.writeheader()
            writer.writerows(summaries)
        written.append(path)
        path = os.path.join(folder, "results.json")
        with open(path, "w") as handle:
            json.dump({"settings": self.settings, "target_accuracy": self.target_accuracy,
                       "results": [dict(r.summary(), tried=r.tried, final_val_loss=r.final_val_loss,
                                        final_val_accuracy=r.final_val_accuracy,
                                        epochs_to_target=r.epochs_to_target, curves=r.curves)
                                   for r in self.results]}, handle, indent=1)
        written.append(path)
        try:
            written.append(self.plot(os.path.join(folder, "curves.png")))
        except ImportError:
            pass
        return written

    def plot(self, path: str) -> str:
        """Validation loss per epoch (mean over seeds, band = min..max) for each optimizer."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        figure, axes = plt.subplots(1, 2, figsize=(11, 4))
        for result in self.results:
            length = min(len(curve) for curve in result.curves)
            curves = numpy.array([curve[:length] for curve in result.curves])
            epochs = numpy.arange(1, length + 1)
            line, = axes[0].plot(epochs, curves.mean(axis=0), label=f"{result.name} (lr {result.best_lr:.1e})")
            axes[0].fill_between(epochs, curves.min(axis=0), curves.max(axis=0), color=line.get_color(), alpha=0.15)
            lrs, losses = zip(*result.tried)
            axes[1].scatter(lrs, losses, color=line.get_color(), s=14, label=result.name)
        axes[0].set(xlabel="epoch", ylabel="validation loss", yscale="log",
                    title="best rate, mean over seeds (band: min..max)")
        axes[1].set(xlabel="learning rate", ylabel="final validation loss", xscale="log", yscale="log",
                    title="tuning budget: every rate tried")
        axes[0].legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        plt.close(figure)
        return path


def _final(history, key):
    values = history.history.get(key, [])
    return values[-1] if values else float("nan")


def compare_optimizers(X, y, validation_data, optimizers=("sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw"),
                       hidden=(128, 64), activation="relu", loss="cross_entropy", epochs: int = 20,
                       batch_size: int = 64, n_lr: int = 6, n_seeds: int = 5, target_accuracy: float = 0.95,
                       seed: int = 0, progress=None) -> Comparison:
    """Run the protocol of the module docstring; ``progress(message)`` hears about each run."""
    X = numpy.asarray(X)
    for name, value in (("n_lr", n_lr), ("n_seeds", n_seeds), ("epochs", epochs), ("batch_size", batch_size)):
        _checks.integer(value, name, low=1, error=ValueError)      # epochs=0 would report NaN results
    unknown = [name for name in optimizers if name not in LR_RANGES]
    if unknown:
        raise ValueError(f"unknown optimizer(s) {', '.join(map(repr, unknown))}; expected some of "
                         f"{', '.join(LR_RANGES)}")
    n_outputs = int(numpy.max(y)) + 1 if loss == "cross_entropy" else 1
    sizes = [X.shape[1], *hidden, n_outputs]
    rng = numpy.random.default_rng(seed)
    results = []
    for name in optimizers:
        low, high = LR_RANGES[name]
        # Stratified log-uniform draws: one rate in each of n_lr equal slices of the log
        # range, so a small budget still spans the whole range instead of clustering.
        slices = (numpy.arange(n_lr) + rng.uniform(0.0, 1.0, n_lr)) / n_lr
        rates = numpy.exp(math.log(low) + slices * (math.log(high) - math.log(low)))
        tried = []
        for lr in sorted(rates):
            model = MLP(sizes, activation=activation, seed=seed)   # the same start for every rate
            history = fit(model, X, y, loss=loss, optimizer=make_optimizer(name, lr), epochs=epochs,
                          batch_size=batch_size, validation_data=validation_data, seed=seed)
            value = _final(history, "val_loss")
            tried.append((float(lr), value if math.isfinite(value) else float("inf")))
            if progress:
                progress(f"{name}: lr {lr:.2e} -> val_loss {value:.4f}")
        best_lr = min(tried, key=lambda pair: pair[1])[0]
        result = OptimizerResult(name, best_lr, tried, [], [], [], [])
        for run in range(n_seeds):
            model = MLP(sizes, activation=activation, seed=seed + 1000 + run)
            started = time.perf_counter()
            history = fit(model, X, y, loss=loss, optimizer=make_optimizer(name, best_lr), epochs=epochs,
                          batch_size=batch_size, validation_data=validation_data, seed=seed + 1000 + run)
            result.seconds.append(time.perf_counter() - started)
            result.final_val_loss.append(_final(history, "val_loss"))
            result.final_val_accuracy.append(_final(history, "val_accuracy"))
            accuracies = history.history.get("val_accuracy", [])
            reached = next((epoch + 1 for epoch, acc in enumerate(accuracies) if acc >= target_accuracy), None)
            result.epochs_to_target.append(reached)
            result.curves.append(history.history.get("val_loss", []))
        if progress:
            progress(f"{name}: best lr {best_lr:.2e}, {n_seeds} seeds done")
        results.append(result)
    settings = {"hidden": list(hidden), "activation": activation, "loss": loss, "epochs": epochs,
                "batch_size": batch_size, "n_lr": n_lr, "n_seeds": n_seeds, "seed": seed}
    return Comparison(results, target_accuracy, settings)
