"""Benchmark tuning quality: nnhp.tune against Optuna, scikit-learn and a fixed MLP, on real data.

The suite (nothing is downloaded at run time):

    iris, wine, breast_cancer, digits   scikit-learn's bundled classification sets
    diabetes                            scikit-learn's bundled regression set
    penguins                            palmerpenguins' CSV (regression: body mass), when installed
    many_classes                        synthetic: 12 classes in 2 clusters each, 12 informative,
                                        12 redundant and 16 noise features, 5% flipped labels
    friedman                            synthetic regression: Friedman #1 with noise, 5 redundant
                                        and 15 noise features

Protocol, for every data set and seed s: split off 25% as the test set (stratified for labels),
then 20% of the rest as the validation set, with seed s; standardize X with the training rows'
mean and std (regression targets too, so every engine sees y on one scale). Every method gets
the same split and one of two budgets:

    time     each search runs ``--budget-seconds`` of wall-clock time, then refits its best
             configuration on train + validation rows (the refit is reported in the time);
    epochs   each search trains at most ``--epoch-budget`` x max_epochs epochs in all (max_epochs:
             nnhp's choice for the data's size, nnhp.tuning.default_max_epochs).

Methods:

    nnhp <searcher>      nnhp.tune with searcher random / gp / hyperband / bohb; the one named by
                         nnhp.tuning.DEFAULT_SEARCHER is "default nnhp.tune"
    fixed MLP            nnhp.tuning.default_params trained on train + validation rows, no search
    Optuna TPE+HB        Optuna's TPE sampler with its HyperbandPruner, tuning the same nnhp MLP
                         over the same Space (translated to define-by-run suggestions), reporting
                         the validation score every epoch; the best config is refit like nnhp's.
                         Same engine, same space: the difference is the search algorithm alone.
    sklearn Halving      scikit-learn's HalvingRandomSearchCV over MLPClassifier/MLPRegressor
                         (resource = max_iter, factor 3) on train + validation rows with a
                         PredefinedSplit, refit=True, max_resources = nnhp's max_epochs for the
                         budget. It has no time or epoch limit of its own: its candidate count
                         is sized from timing fits (time budget; not counted) or from the halving
                         schedule's epoch count (epoch budget); its actual time and epochs are
                         reported.

Under a time budget nnhp.tune lowers max_epochs so that a full trial of the default
configuration takes at most half of the budget (it times an epoch first); Optuna's and
scikit-learn's runs use the same cap.

Test score: accuracy for classification, R^2 for regression (the regression searches rank their
trials by validation MSE, which R^2 orders the same way). Reported per data set and method:
median over seeds with the inter-quartile range, median time, median epochs trained. And the
BOHB-vs-Hyperband statistic: in each equal-epochs run pair, the total epochs Hyperband needed
to first reach its own best validation score and the epochs BOHB needed to reach that same
score (trials in the order they ran, each counting the epochs it trained: a promoted trial only
its epochs beyond its parent's, as ``result.epochs_spent`` counts them). Two readings of "best":
the score of the model the search returns (the best trial at the largest budget), reached by a
trial at that budget; and the best score of any trial at any budget.

    python benchmarks/bench_tune.py --quick      # smoke run: iris and wine, 2 seeds, 2 s budgets, 5 methods
    python benchmarks/bench_tune.py              # 4 sets x 5 seeds x 7 methods, 10 s budgets (~45 min)
    python benchmarks/bench_tune.py --full --json runs.json --resume     # 8 sets, 20 s budgets (~3 h)
    python benchmarks/bench_tune.py --from-json runs.json --write-results    # re-table, no runs

(Times on 2 cores.) A long run can be split: ``--datasets`` picks data sets, ``--json`` saves each
record as it finishes, ``--resume`` reruns only what that file lacks, and ``--from-json`` takes
several files and tables them together.

Runs go to a process pool of ``--workers`` (one BLAS thread each); the time budget is wall
clock, so do not run more workers than idle cores. ``--write-results`` replaces the section
"## Tuning quality (bench_tune.py)" of benchmarks/RESULTS.md (keeping its "### Notes") and
writes benchmarks/bench_tune.png (``--plot-dir`` puts it elsewhere).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # bench_env beside this script
import bench_env  # noqa: E402  (first: this checkout on sys.path)

if __name__ == "__main__":
    bench_env.machine_blas(one_thread=True)   # the runs go to worker processes

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

HERE = bench_env.HERE

from results_md import machine_description  # noqa: E402,F401  (bench_space.py reads it here)
from results_md import write_results_section as write_results_section_as  # noqa: E402

SECTION = "## Tuning quality (bench_tune.py)"

SEARCHERS = ("random", "gp", "hyperband", "bohb")
SEARCHER_LABELS = {"random": "random", "gp": "GP", "hyperband": "Hyperband", "bohb": "BOHB"}
FIXED = "fixed MLP"
OPTUNA = "Optuna TPE+HB"
SKLEARN = "sklearn Halving"
PEERS = (OPTUNA, SKLEARN)          # the other tuners the default nnhp.tune must match or beat
ETA = 3                            # halving rate of every successive-halving method here


def nnhp_method(searcher: str) -> str:
    return f"nnhp {SEARCHER_LABELS.get(searcher, searcher)}"


def default_searcher() -> str:
    import nnhp.tuning
    return str(getattr(nnhp.tuning, "DEFAULT_SEARCHER", "bohb")).lower()


def all_methods() -> list[str]:
    searchers = list(SEARCHERS)
    if default_searcher() not in searchers:
        searchers.append(default_searcher())
    return [nnhp_method(s) for s in searchers] + [FIXED, OPTUNA, SKLEARN]


def method_searcher(method: str) -> str | None:
    """'nnhp BOHB' -> 'bohb'; None for the methods that are not nnhp.tune."""
    if not method.startswith("nnhp "):
        return None
    label = method[len("nnhp "):]
    return next((s for s, text in SEARCHER_LABELS.items() if text == label), label)


# ============================================================================ the data sets

@dataclass
class DataSet:
    name: str
    task: str                # "classification" | "regression"
    X: np.ndarray
    y: np.ndarray
    source: str


def _sklearn_loader(function_name, task):
    def load():
        import sklearn.datasets
        bunch = getattr(sklearn.datasets, function_name)()
        y = bunch.target.astype(np.int64 if task == "classification" else np.float64)
        return bunch.data.astype(np.float64), y
    return load


def _penguins():
    """Body mass (g) from the other measurements, species, island and sex; rows with a gap dropped.

    The CSV ships inside the palmerpenguins wheel. It is read without importing the package,
    whose loader module needs pandas and pyjanitor."""
    import csv
    import importlib.util
    spec = importlib.util.find_spec("palmerpenguins")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("palmerpenguins is not installed (pip install palmerpenguins)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "penguins.csv")
    with open(path, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if "NA" not in r.values() and "" not in r.values()]
    categories = {key: sorted({r[key] for r in rows}) for key in ("species", "island", "sex")}
    numeric = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm")
    X = [[float(r[k]) for k in numeric] + [float(r[key] == value) for key, values in categories.items()
                                           for value in values] for r in rows]
    y = [float(r["body_mass_g"]) for r in rows]
    return np.array(X), np.array(y)


def make_many_classes(n_samples=2400, n_classes=12, clusters_per_class=2, n_informative=12, n_redundant=12,
                      n_noise=16, flip=0.05, separation=1.2, seed=20260):
    """Many classes, each a mixture of Gaussian clusters in an informative subspace; redundant
    features are noisy linear mixtures of the informative ones; noise features carry nothing;
    a fraction ``flip`` of the labels is replaced by a random class. Columns are shuffled."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, separation, size=(n_classes * clusters_per_class, n_informative))
    cluster = rng.integers(0, len(centres), n_samples)
    informative = centres[cluster] + rng.normal(size=(n_samples, n_informative))
    mixing = rng.normal(size=(n_informative, n_redundant))
    redundant = informative @ mixing / np.sqrt(n_informative) + 0.3 * rng.normal(size=(n_samples, n_redundant))
    noise = rng.normal(size=(n_samples, n_noise))
    X = np.hstack([informative, redundant, noise])[:, rng.permutation(n_informative + n_redundant + n_noise)]
    y = cluster % n_classes
    flipped = rng.random(n_samples) < flip
    y[flipped] = rng.integers(0, n_classes, flipped.sum())
    return X, y.astype(np.int64)


def make_friedman(n_samples=2000, n_redundant=5, n_noise=15, noise=1.0, seed=20261):
    """Friedman #1: y = 10 sin(pi x1 x2) + 20 (x3 - 1/2)^2 + 10 x4 + 5 x5 + N(0, noise^2), x ~ U[0, 1],
    plus redundant features (noisy mixtures of x1..x5) and pure-noise features, columns shuffled."""
    rng = np.random.default_rng(seed)
    x = rng.random((n_samples, 5))
    y = (10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2 + 10 * x[:, 3] + 5 * x[:, 4]
         + noise * rng.normal(size=n_samples))
    redundant = x @ rng.normal(size=(5, n_redundant)) + 0.1 * rng.normal(size=(n_samples, n_redundant))
    X = np.hstack([x, redundant, rng.random((n_samples, n_noise))])
    return X[:, rng.permutation(X.shape[1])], y


# name -> (task, loader, source); in the order the tables list them
SUITE = {
    "iris": ("classification", _sklearn_loader("load_iris", "classification"), "scikit-learn"),
    "wine": ("classification", _sklearn_loader("load_wine", "classification"), "scikit-learn"),
    "breast_cancer": ("classification", _sklearn_loader("load_breast_cancer", "classification"), "scikit-learn"),
    "digits": ("classification", _sklearn_loader("load_digits", "classification"), "scikit-learn"),
    "many_classes": ("classification", make_many_classes, "synthetic"),
    "diabetes": ("regression", _sklearn_loader("load_diabetes", "regression"), "scikit-learn"),
    "penguins": ("regression", _penguins, "palmerpenguins"),
    "friedman": ("regression", make_friedman, "synthetic"),
}

_LOADED: dict[str, DataSet] = {}


def load_dataset(name: str) -> DataSet:
    if name not in _LOADED:
        task, loader, source = SUITE[name]
        X, y = loader()
        _LOADED[name] = DataSet(name, task, X, y, source)
    return _LOADED[name]


def dataset_available(name: str) -> str | None:
    """None when ``name`` loads; else why not."""
    try:
        load_dataset(name)
        return None
    except ImportError as exc:
        return str(exc)


@dataclass
class Split:
    task: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self) -> int | None:
        if self.task != "classification":
            return None
        return int(max(self.y_train.max(), self.y_val.max(), self.y_test.max())) + 1

    @property
    def X_train_val(self):
        return np.vstack([self.X_train, self.X_val])

    @property
    def y_train_val(self):
        return np.concatenate([self.y_train, self.y_val])


def make_split(data: DataSet, seed: int, test_size: float = 0.25, val_size: float = 0.2) -> Split:
    """Test 25% (stratified for labels), then validation 20% of the rest; X (and regression y)
    standardized with the training rows' statistics."""
    from nnhp.data import train_test_split
    stratify = data.task == "classification"
    X_rest, X_test, y_rest, y_test = train_test_split(data.X, data.y, test_size, seed=seed, stratify=stratify)
    X_train, X_val, y_train, y_val = train_test_split(X_rest, y_rest, val_size, seed=seed, stratify=stratify)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)          # a constant column stays 0 instead of dividing by 0
    X_train, X_val, X_test = ((X - mean) / std for X in (X_train, X_val, X_test))
    if data.task == "regression":
        y_mean, y_std = y_train.mean(), y_train.std() or 1.0
        y_train, y_val, y_test = ((y - y_mean) / y_std for y in (y_train, y_val, y_test))
    return Split(data.task, X_train, y_train, X_val, y_val, X_test, y_test)


def max_epochs_for(split: Split) -> int:
    """The most epochs one trial trains: nnhp's rule for the training rows' count."""
    from nnhp.tuning import default_max_epochs
    return int(default_max_epochs(len(split.X_train)))


def time_capped_max_epochs_for(split: Split, timeout: float, seed: int) -> int:
    """The max_epochs nnhp.tune picks under a ``timeout``: :func:`max_epochs_for`, lowered so that
    a full trial of the default configuration takes at most half of the timeout (its
    second epoch timed, as tune times it). The peers' time-budget runs use it too, so that all
    search the same budgets."""
    from nnhp.tuning import default_params, seconds_per_epoch, time_capped_max_epochs

    params = default_params(split.task, split.n_classes, *split.X_train.shape)
    seconds = seconds_per_epoch(params, split.X_train, split.y_train, seed=seed, n_classes=split.n_classes)
    return int(time_capped_max_epochs(max_epochs_for(split), seconds, timeout))


# ============================================================================ scores

def r2_score(y_true, y_pred) -> float:
    y_true = np.asarray(y_true, dtype=float).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=float).reshape(-1)
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    return 1.0 - float(np.sum((y_true - y_pred) ** 2)) / total if total > 0 else float("nan")


def nnhp_test_score(model, split: Split) -> float:
    """Test accuracy (classification) or R^2 (regression) of an nnhp model."""
    import nnhp
    if split.task == "classification":
        return float(nnhp.evaluate(model, split.X_test, split.y_test)["accuracy"])
    return r2_score(split.y_test, np.asarray(model.predict(split.X_test)))


# ============================================================================ epochs accounting

def trial_epochs(trials) -> list[int]:
    """Epochs each trial trained, in the given order.

    ``attrs["epochs_trained"]`` when the objective recorded it (early stopping may end a trial
    before its budget); else the budget, less the parent's budget for a promoted trial (it
    continued from its parent's checkpoint; nnhp.search.hyperband.budget_spent counts the same)."""
    trials = list(trials)
    by_id = {t.id: t for t in trials}
    spent = []
    for t in trials:
        attrs = getattr(t, "attrs", None) or {}
        if "epochs_trained" in attrs:
            spent.append(int(attrs["epochs_trained"]))
            continue
        budget = t.budget if t.budget is not None else attrs.get("epochs_run", 0)
        parent = by_id.get(t.parent_id) if t.parent_id is not None else None
        start = parent.budget if parent is not None and parent.budget is not None else 0
        spent.append(int(round(max(budget - start, 0))))
    return spent


def search_curve(trials) -> list[list]:
    """``[[total epochs after the trial, its value or None, its budget], ...]``, trials in the order
    they ran (by id: the runs here use one worker, so ids are the running order). None: not
    complete."""
    trials = sorted(trials, key=lambda t: t.id)
    curve, total = [], 0
    for t, epochs in zip(trials, trial_epochs(trials)):
        total += epochs
        value = t.value if t.state == "complete" and t.value is not None and math.isfinite(t.value) else None
        curve.append([total, value, t.budget])
    return curve


def _at_budget(curve, budget) -> list:
    """The curve's points, or only those of trials at ``budget`` (None: all; a point recorded
    without its budget counts as at every budget)."""
    return [point for point in curve if budget is None or len(point) < 3 or point[2] == budget]


def top_budget(curve):
    """The largest budget a complete trial of the curve reached (None when the curve has no budgets)."""
    budgets = [point[2] for point in curve if len(point) > 2 and point[1] is not None and point[2] is not None]
    return max(budgets) if budgets else None


def best_of(curve, direction: str, budget=None) -> float | None:
    """The best value of the curve, or of its trials at ``budget``."""
    values = [point[1] for point in _at_budget(curve, budget) if point[1] is not None]
    if not values:
        return None
    return max(values) if direction == "maximize" else min(values)


def epochs_to_reach(curve, target: float, direction: str, tol: float = 1e-12, budget=None) -> float:
    """Total epochs spent when a trial (at ``budget``, when given) first scored ``target`` or
    better; inf if none did."""
    for point in _at_budget(curve, budget):
        epochs, value = point[0], point[1]
        if value is None:
            continue
        if (value >= target - tol) if direction == "maximize" else (value <= target + tol):
            return float(epochs)
    return math.inf


# ============================================================================ Space -> Optuna

def reverse_log_name(name: str) -> str:
    """The Optuna name of a reverse-log Float, whose suggested value is ``1 - value``."""
    return f"one_minus_{name}"


def suggest_params(trial, space) -> dict:
    """Ask an Optuna trial for one point of an nnhp Space, define-by-run.

    Parameters are visited in the space's dependency order and suggested only when their
    conditions hold for the values already drawn, so Optuna sees a conditional parameter only
    in the trials that use it. Fixed values are taken as they are (not suggested). A reverse-log
    Float (momentum, betas: log-uniform in 1 - x) is suggested as ``1 - x`` on a log scale over
    ``[1 - high, 1 - low]``, under the name ``one_minus_<name>``. Returns the params in the
    space's declaration order, as ``space.sample`` would."""
    from nnhp.search import Choice, Fixed, Float, Int

    params = {}
    for name in space.order:
        if not space.is_active(name, params):
            continue
        dim = space[name]
        if isinstance(dim, Fixed):
            params[name] = dim.value
        elif isinstance(dim, Float) and dim.reverse_log:
            complement = trial.suggest_float(reverse_log_name(name), 1.0 - dim.high, 1.0 - dim.low, log=True)
            params[name] = min(max(1.0 - complement, dim.low), dim.high)
        elif isinstance(dim, Float):
            params[name] = trial.suggest_float(name, dim.low, dim.high, log=dim.log)
        elif isinstance(dim, Int):
            params[name] = trial.suggest_int(name, dim.low, dim.high, step=dim.step, log=dim.log)
        elif isinstance(dim, Choice):
            params[name] = trial.suggest_categorical(name, list(dim.options))
        else:
            raise TypeError(f"parameter {name!r}: no Optuna translation for {type(dim).__name__}")
    return {name: params[name] for name in space.names if name in params}


# ============================================================================ the methods

def _budget_kwargs(budget: str, budget_value: float) -> dict:
    if budget == "time":
        return {"timeout": float(budget_value)}
    if budget == "epochs":
        return {"max_total_epochs": int(budget_value)}
    raise ValueError(f"budget must be 'time' or 'epochs', got {budget!r}")


def previous_patience(split: Split) -> int:
    """The patience nnhp.tune used by default before 2026-12-03 (each trial stopped on the validation
    loss and scored at its lowest-loss epoch): ``default_patience`` of the data set's uncapped
    max_epochs."""
    from nnhp.tuning import default_patience
    return default_patience(max_epochs_for(split))


def run_nnhp(split: Split, searcher: str, budget: str, budget_value: float, seed: int,
             early_stopping: bool = False) -> dict:
    """nnhp.tune with its defaults; ``early_stopping``: with :func:`previous_patience`."""
    import nnhp
    patience = previous_patience(split) if early_stopping else None
    start = time.perf_counter()
    result = nnhp.tune(split.X_train, split.y_train, validation_data=(split.X_val, split.y_val),
                       searcher=searcher, n_trials=None, refit=True, seed=seed, patience=patience,
                       **_budget_kwargs(budget, budget_value))
    seconds = time.perf_counter() - start
    trials = result.study.trials
    direction = "maximize" if split.task == "classification" else "minimize"
    return {"test_score": nnhp_test_score(result.best_model, split), "val_score": float(result.best_value),
            "seconds": seconds, "search_seconds": getattr(result, "search_seconds", None),
            "epochs": int(result.epochs_spent), "n_trials": len(trials), "max_epochs": result.max_epochs,
            "direction": direction, "curve": search_curve(trials), "best_params": dict(result.best_params)}


def run_fixed(split: Split, seed: int) -> dict:
    """nnhp's fixed default MLP trained on train + validation rows (no search, no early stopping)."""
    from nnhp.tuning import default_params, fit_params
    params = default_params(split.task, split.n_classes, len(split.X_train), split.X_train.shape[1])
    start = time.perf_counter()
    model = fit_params(params, split.X_train_val, split.y_train_val, seed=seed, n_classes=split.n_classes)
    seconds = time.perf_counter() - start
    return {"test_score": nnhp_test_score(model, split), "seconds": seconds, "epochs": int(params["epochs"]),
            "max_epochs": int(params["epochs"]), "n_trials": 0, "best_params": params}


def _train_trial(params, split: Split, max_epochs: int, seed: int, on_epoch):
    """Train the nnhp MLP ``params`` describes on the training rows as a budgeted nnhp.tune trial
    does (nnhp.tuning.objective): the same model, optimizer, schedule stretched over max_epochs,
    early stopping on the validation loss with tune's patience, the last epoch's weights kept.
    ``on_epoch(epochs_done, validation_value)`` runs after each epoch and stops training by
    returning True. Returns (epochs trained, last validation value)."""
    import nnhp
    from nnhp.train import EarlyStopping
    from nnhp.tuning import build_model, build_optimizer, build_schedule, default_patience
    from nnhp.tuning.build import n_outputs, penalties

    classification = split.task == "classification"
    loss = params.get("loss", "cross_entropy" if classification else "mse")
    model = build_model(params, split.X_train.shape[1], n_outputs(split.task, loss, split.y_train, split.n_classes),
                        seed)
    l1, l2 = penalties(params)
    last = {"value": None}

    def report(epoch, logs):
        # Classification is judged by validation accuracy; regression by validation MSE whatever
        # the training loss (mse/huber/mae), as nnhp.tune judges its trials.
        if classification:
            value = logs["val_accuracy"]
        else:
            value = float(np.mean((np.asarray(model.predict(split.X_val)).reshape(split.y_val.shape)
                                   - split.y_val) ** 2))
        last["value"] = value
        return bool(on_epoch(epoch + 1, value))

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        history = nnhp.fit(model, split.X_train, split.y_train, loss=loss, optimizer=build_optimizer(params),
                           schedule=build_schedule(params, max_epochs), epochs=max_epochs,
                           batch_size=int(params.get("batch_size", 32)), validation_data=(split.X_val, split.y_val),
                           early_stopping=EarlyStopping(monitor="val_loss", patience=default_patience(max_epochs),
                                                        restore_best=False),
                           l1=l1, l2=l2, seed=seed, callbacks=[report])
    epochs = len(history.history.get("loss", []))
    if history.stop_reason == "non_finite_loss":
        raise FloatingPointError("training diverged (non-finite loss)")
    return epochs, last["value"]


def optuna_enqueue_params(space, params: dict) -> dict:
    """``params`` as ``suggest_params`` asks Optuna for them (for ``study.enqueue_trial``): Fixed
    entries left out, a reverse-log Float as ``one_minus_<name>: 1 - value``."""
    from nnhp.search import Fixed, Float

    enqueued = {}
    for name, value in params.items():
        dim = space[name]
        if isinstance(dim, Fixed):
            continue
        if isinstance(dim, Float) and dim.reverse_log:
            enqueued[reverse_log_name(name)] = 1.0 - value
        else:
            enqueued[name] = value
    return enqueued


def run_optuna(split: Split, budget: str, budget_value: float, seed: int) -> dict:
    """Optuna TPE + HyperbandPruner tuning the nnhp MLP over the space nnhp.tune searches.

    As in nnhp.tune: under a time budget an epoch is timed first to cap max_epochs (on the
    budget's clock), the default configuration runs first (enqueued), trials stop early on the
    validation loss, the time budget stops new trials from starting (the running one finishes),
    the epoch budget likewise, and the best configuration is refit on train + validation rows for
    the epochs it trained, with its schedule spanning max_epochs."""
    import optuna
    from nnhp.tuning import default_params, default_space, fit_params
    from nnhp.tuning.space import initial_config

    optuna.logging.set_verbosity(optuna.logging.ERROR)   # not a line per diverged trial
    start = time.perf_counter()
    classification = split.task == "classification"
    direction = "maximize" if classification else "minimize"
    # Under a time budget nnhp.tune times an epoch first (on its clock) to cap max_epochs; so here.
    max_epochs = (time_capped_max_epochs_for(split, budget_value, seed) if budget == "time"
                  else max_epochs_for(split))
    n_train, n_features = split.X_train.shape
    space = default_space(split.task, split.n_classes, max_epochs, budgeted=True, n_samples=n_train,
                          n_features=n_features)
    # A fixed study name: HyperbandPruner assigns trials to brackets by a hash of it, and the
    # default name is a random UUID, which would make equal-epochs runs differ from run to run.
    study = optuna.create_study(
        study_name=f"bench_tune-{seed}", direction=direction, sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(min_resource=max(1, round(max_epochs / 27)), max_resource=max_epochs,
                                              reduction_factor=ETA))
    start_params = initial_config(space, default_params(split.task, split.n_classes, n_train, n_features,
                                                        max_epochs=max_epochs),
                                  np.random.default_rng([seed, 7919, 0]))
    study.enqueue_trial(optuna_enqueue_params(space, start_params))
    epochs_of_trial = {}             # trial number -> epochs trained (pruned trials included)

    def objective(trial):
        params = suggest_params(trial, space)
        trial.set_user_attr("params", params)
        pruned = {"flag": False}

        def on_epoch(epochs_done, value):
            epochs_of_trial[trial.number] = epochs_done
            trial.report(value, epochs_done)
            pruned["flag"] = trial.should_prune()
            return pruned["flag"]

        epochs, value = _train_trial(params, split, max_epochs, seed, on_epoch)
        trial.set_user_attr("epochs", epochs)
        if pruned["flag"]:
            raise optuna.TrialPruned()
        if value is None or not math.isfinite(value):
            raise FloatingPointError(f"validation value {value}")
        return value

    def stop_at_budget(study, trial):
        if budget == "epochs" and sum(epochs_of_trial.values()) >= budget_value:
            study.stop()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        timeout = max(budget_value - (time.perf_counter() - start), 0.0) if budget == "time" else None
        study.optimize(objective, timeout=timeout,
                       callbacks=[stop_at_budget], catch=(FloatingPointError,))
    search_seconds = time.perf_counter() - start
    complete = optuna.trial.TrialState.COMPLETE
    curve, total = [], 0
    for t in study.trials:
        total += epochs_of_trial.get(t.number, 0)
        curve.append([total, t.value if t.state == complete else None])
    record = {"search_seconds": search_seconds, "epochs": int(total), "n_trials": len(study.trials),
              "max_epochs": max_epochs, "direction": direction, "curve": curve}
    if not any(t.state == complete for t in study.trials):
        record.update(test_score=float("nan"), seconds=search_seconds, error="no trial completed")
        return record
    best = study.best_trial
    params = best.user_attrs["params"]
    model = fit_params(params, split.X_train_val, split.y_train_val, epochs=int(best.user_attrs["epochs"]),
                       schedule_epochs=max_epochs, seed=seed, n_classes=split.n_classes)
    record.update(test_score=nnhp_test_score(model, split), val_score=float(study.best_value),
                  seconds=time.perf_counter() - start, best_params=params)
    return record


# --- scikit-learn -----------------------------------------------------------------------

_SKLEARN_FIT_EPOCHS: list[int] = []          # n_iter_ of every MLP fit in this process (last: the refit)


def _counting_estimators():
    """MLPClassifier / MLPRegressor that record the epochs each fit ran (n_iter_)."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    class CountingMLPClassifier(MLPClassifier):
        def fit(self, X, y):
            super().fit(X, y)
            _SKLEARN_FIT_EPOCHS.append(int(self.n_iter_))
            return self

    class CountingMLPRegressor(MLPRegressor):
        def fit(self, X, y):
            super().fit(X, y)
            _SKLEARN_FIT_EPOCHS.append(int(self.n_iter_))
            return self

    return CountingMLPClassifier, CountingMLPRegressor


def sklearn_space(n_samples: int) -> dict:
    from scipy.stats import loguniform
    batch_sizes = [b for b in (32, 64, 128, 256) if 8 * b <= n_samples] or [32]
    return {"hidden_layer_sizes": [(64,), (128,), (256,), (512,), (128, 128), (256, 256), (512, 256),
                                   (256, 256, 256)],
            "activation": ["relu", "tanh"],
            "alpha": loguniform(1e-6, 1e-1),
            "learning_rate_init": loguniform(1e-4, 3e-2),
            "batch_size": batch_sizes}


def first_rung(max_epochs: int, factor: int = ETA, rungs: int = 4) -> int:
    """The iterations a halving candidate starts with: ``max_epochs / factor^(rungs-1)``, as nnhp's
    Hyperband (four rungs, eta = 3)."""
    return max(1, int(max_epochs // factor ** (rungs - 1)))


def halving_schedule(n_candidates: int, min_resources: int, max_resources: int, factor: int = ETA):
    """(epochs, fits) HalvingRandomSearchCV spends on ``n_candidates`` (its rule: rungs while both
    the candidates and the resources allow, ``ceil(n / factor)`` kept each time), at most: a fit
    that converges early spends fewer epochs."""
    n_required = 1 + int(math.floor(math.log(n_candidates, factor) + 1e-9))
    n_possible = 1 + int(math.floor(math.log(max_resources // min_resources, factor) + 1e-9))
    epochs = fits = 0
    candidates = n_candidates
    for rung in range(min(n_required, n_possible)):
        fits += candidates
        epochs += candidates * min_resources * factor ** rung
        candidates = math.ceil(candidates / factor)
    return epochs, fits


def halving_plan(budget: float, max_epochs: int, seconds_per_epoch: float | None = None,
                 seconds_per_fit: float = 0.0, max_candidates: int = 2000) -> tuple[int, int]:
    """(n_candidates, min_resources): the most candidates whose halving schedule fits ``budget``
    -- epochs, or seconds when ``seconds_per_epoch`` is given (a fit costs ``seconds_per_fit +
    seconds_per_epoch * epochs``); at least ``ETA`` (one halving)."""
    min_resources = first_rung(max_epochs)

    def cost(n):
        epochs, fits = halving_schedule(n, min_resources, max_epochs)
        return epochs if seconds_per_epoch is None else seconds_per_epoch * epochs + seconds_per_fit * fits

    n = ETA
    while n < max_candidates and cost(n + 1) <= budget:
        n += 1
    return n, min_resources


def sklearn_costs(estimator_cls, space: dict, split: Split, max_epochs: int, seed: int,
                  n_probes: int = 4) -> tuple[float, float]:
    """(seconds per planned epoch, seconds per fit) of the halving search's candidates.

    A candidate's fit and score cost ``a + b * n_iter``; ``n_probes`` candidates drawn from
    ``space`` are timed at ``max_iter`` 1 and at the first rung's to estimate ``a`` and ``b``
    (after an untimed warm-up fit). The probes at the first rung also tell the fraction ``rho``
    of ``max_iter`` that scikit-learn's own convergence test lets a fit run: a planned epoch
    costs ``rho * b``. Sizes the time-budget search; not counted in its reported time."""
    from sklearn.model_selection import ParameterSampler

    rung_epochs = max(first_rung(max_epochs), 2)
    seconds, iterations = {1: 0.0, rung_epochs: 0.0}, {1: 0, rung_epochs: 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator_cls(hidden_layer_sizes=(16,), max_iter=1, random_state=seed).fit(split.X_train, split.y_train)
        for params in ParameterSampler(space, n_probes, random_state=seed + 10_000):
            for max_iter in seconds:
                started = time.perf_counter()
                model = estimator_cls(max_iter=max_iter, random_state=seed, **params).fit(split.X_train, split.y_train)
                model.score(split.X_val, split.y_val)
                seconds[max_iter] += time.perf_counter() - started
                iterations[max_iter] += model.n_iter_
    per_epoch = max((seconds[rung_epochs] - seconds[1]) / max(iterations[rung_epochs] - iterations[1], 1), 1e-6)
    per_fit = max(seconds[1] / n_probes - per_epoch, 0.0)
    run_fraction = iterations[rung_epochs] / (n_probes * rung_epochs)
    return run_fraction * per_epoch, per_fit


def run_sklearn(split: Split, budget: str, budget_value: float, seed: int) -> dict:
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingRandomSearchCV, PredefinedSplit

    classifier_cls, regressor_cls = _counting_estimators()
    estimator_cls = classifier_cls if split.task == "classification" else regressor_cls
    # The most iterations a candidate gets: the max_epochs nnhp.tune searches with this budget.
    max_epochs = (time_capped_max_epochs_for(split, budget_value, seed) if budget == "time"
                  else max_epochs_for(split))
    space = sklearn_space(len(split.X_train))
    if budget == "time":
        per_epoch, per_fit = sklearn_costs(estimator_cls, space, split, max_epochs, seed)
        n_candidates, min_resources = halving_plan(budget_value, max_epochs, per_epoch, per_fit)
    else:
        n_candidates, min_resources = halving_plan(budget_value, max_epochs)
    folds = np.r_[np.full(len(split.X_train), -1), np.zeros(len(split.X_val))]
    search = HalvingRandomSearchCV(estimator_cls(random_state=seed), space, n_candidates=n_candidates,
                                   factor=ETA, resource="max_iter", min_resources=min_resources,
                                   max_resources=max_epochs, cv=PredefinedSplit(folds), refit=True,
                                   random_state=seed, n_jobs=1, error_score=np.nan)
    _SKLEARN_FIT_EPOCHS.clear()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(split.X_train_val, split.y_train_val)
    seconds = time.perf_counter() - start
    model = search.best_estimator_
    if split.task == "classification":
        test_score = float(np.mean(model.predict(split.X_test) == split.y_test))
    else:
        test_score = r2_score(split.y_test, model.predict(split.X_test))
    return {"test_score": test_score, "val_score": float(search.best_score_), "seconds": seconds,
            "search_seconds": seconds - float(getattr(search, "refit_time_", 0.0)),
            "epochs": int(sum(_SKLEARN_FIT_EPOCHS[:-1])), "n_trials": len(search.cv_results_["params"]),
            "max_epochs": max_epochs, "n_candidates": n_candidates,
            "best_params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in search.best_params_.items()}}


METHOD_MODULES = {OPTUNA: "optuna", SKLEARN: "sklearn"}


def _available(method: str) -> bool:
    import importlib.util
    module = METHOD_MODULES.get(method)
    return module is None or importlib.util.find_spec(module) is not None


# ============================================================================ jobs

def make_jobs(datasets, methods, seeds, budgets, budget_seconds, epoch_budget) -> list[dict]:
    """One job per (data set, seed, method, budget); the fixed MLP, which has no budget, once per
    (data set, seed). ``epoch_budget`` is a multiple of each data set's max_epochs, resolved in the
    worker."""
    jobs = []
    for seed in seeds:
        for dataset in datasets:
            for method in methods:
                if method == FIXED:
                    jobs.append({"dataset": dataset, "seed": seed, "method": method, "budget": "none"})
                    continue
                for budget in budgets:
                    value = budget_seconds if budget == "time" else epoch_budget
                    jobs.append({"dataset": dataset, "seed": seed, "method": method, "budget": budget,
                                 "budget_value": value})
    return jobs


def _init_worker():
    warnings.filterwarnings("ignore")
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:
        pass


def run_job(job: dict) -> dict:
    """Run one job; returns its record (the job's fields plus the method's results, or an error)."""
    _init_worker()
    record = dict(job)
    data = load_dataset(job["dataset"])
    split = make_split(data, job["seed"])
    record["task"] = data.task
    method, seed = job["method"], job["seed"]
    budget, value = job["budget"], job.get("budget_value")
    if budget == "epochs":          # a multiple of max_epochs -> epochs
        value = record["budget_epochs"] = int(round(value * max_epochs_for(split)))
    try:
        if method == FIXED:
            record.update(run_fixed(split, seed))
        elif method == OPTUNA:
            record.update(run_optuna(split, budget, value, seed))
        elif method == SKLEARN:
            record.update(run_sklearn(split, budget, value, seed))
        else:
            record.update(run_nnhp(split, method_searcher(method), budget, value, seed,
                                   early_stopping=job.get("early_stopping", False)))
    except Exception as exc:          # one failed run is reported, the benchmark goes on
        record.update(test_score=float("nan"), error=f"{type(exc).__name__}: {exc}")
    return record


# ============================================================================ tables

def quartiles(values) -> tuple[float, float, float]:
    """(median, q1, q3) of the finite values; NaNs if there are none."""
    values = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if values.size == 0:
        return (math.nan,) * 3
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return float(median), float(q1), float(q3)


def summarize(records, budget: str) -> dict:
    """(dataset, method) -> {median, q1, q3, seconds, epochs, n, failed} over the seeds, for the runs
    with this budget (the fixed MLP's budget-free runs join every budget's table)."""
    groups = {}
    for r in records:
        if r["budget"] not in (budget, "none"):
            continue
        groups.setdefault((r["dataset"], r["method"]), []).append(r)
    summary = {}
    for key, runs in groups.items():
        median, q1, q3 = quartiles([r.get("test_score") for r in runs])
        summary[key] = {"median": median, "q1": q1, "q3": q3,
                        "seconds": quartiles([r.get("seconds") for r in runs])[0],
                        "search_seconds": quartiles([r.get("search_seconds", 0.0) for r in runs])[0],
                        "epochs": quartiles([r.get("epochs") for r in runs])[0],
                        "max_epochs": quartiles([r.get("max_epochs") for r in runs])[0],
                        "n": len(runs), "failed": sum("error" in r for r in runs),
                        "task": runs[0].get("task")}
    return summary


def _ordered(keys, order):
    rank = {name: i for i, name in enumerate(order)}
    return sorted(keys, key=lambda k: (rank.get(k, len(rank)), k))


def results_table(summary, default_method: str) -> str:
    lines = ["| data set | method | test score: median [IQR] | search s | total s | epochs | max_epochs | runs |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    datasets = _ordered({d for d, _ in summary}, list(SUITE))
    for dataset in datasets:
        methods = _ordered([m for d, m in summary if d == dataset], all_methods_order(default_method))
        for method in methods:
            s = summary[(dataset, method)]
            metric = "acc" if s["task"] == "classification" else "R²"
            score = (f"{metric} {s['median']:.4f} [{s['q1']:.4f}, {s['q3']:.4f}]"
                     if math.isfinite(s["median"]) else "failed")
            name = f"**{method}** (default)" if method == default_method else method
            runs = f"{s['n']}" + (f" ({s['failed']} failed)" if s["failed"] else "")
            epochs, max_epochs = (f"{s[key]:.0f}" if math.isfinite(s[key]) else "-" for key in ("epochs", "max_epochs"))
            lines.append(f"| {dataset} | {name} | {score} | {s['search_seconds']:.1f} | {s['seconds']:.1f} | "
                         f"{epochs} | {max_epochs} | {runs} |")
    return "\n".join(lines)


def all_methods_order(default_method: str) -> list[str]:
    names = [nnhp_method(s) for s in SEARCHERS]
    if default_method not in names:
        names.append(default_method)
    return names + [FIXED, OPTUNA, SKLEARN]


def default_verdict(summary, default_method: str) -> tuple[list[str], dict]:
    """Per data set: does the default nnhp.tune's median match or beat every peer's, and beat the
    fixed MLP's? Returns (lines, counts)."""
    lines, counts = [], {"datasets": 0, "beats_peers": 0, "beats_fixed": 0}
    for dataset in _ordered({d for d, _ in summary}, list(SUITE)):
        own = summary.get((dataset, default_method))
        if own is None or not math.isfinite(own["median"]):
            continue
        counts["datasets"] += 1
        peers = {m: summary[(dataset, m)]["median"] for m in PEERS if (dataset, m) in summary}
        behind = [f"{m} {v:.4f}" for m, v in peers.items() if math.isfinite(v) and v > own["median"]]
        fixed = summary.get((dataset, FIXED))
        beats_fixed = fixed is not None and math.isfinite(fixed["median"]) and own["median"] > fixed["median"]
        counts["beats_peers"] += not behind
        counts["beats_fixed"] += beats_fixed
        fixed_text = f"{fixed['median']:.4f}" if fixed is not None else "not run"
        lines.append(f"- {dataset}: default {own['median']:.4f}; "
                     + ("at least every peer's" if not behind else "behind " + ", ".join(behind))
                     + f"; fixed MLP {fixed_text} ({'beaten' if beats_fixed else 'not beaten'})")
    return lines, counts


def bohb_vs_hyperband(records, budget: str, incumbent: bool = False) -> tuple[list[str], dict]:
    """For each (data set, seed) with both runs under ``budget``: epochs Hyperband needed to reach
    its own best validation score, and epochs BOHB needed to reach that score (inf: never).

    ``incumbent=False``: the best value of any trial, at any budget. ``incumbent=True``: the value
    of the model the search returns (``nnhp.tuning.incumbent``: the best trial at the largest
    budget reached), reached by a trial at that budget; a few-epoch trial that scores high by
    luck is never returned, so it does not count."""
    hb, bohb = nnhp_method("hyperband"), nnhp_method("bohb")
    runs = {(r["dataset"], r["seed"], r["method"]): r for r in records
            if r["budget"] == budget and r["method"] in (hb, bohb) and "curve" in r}
    per_dataset = {}
    for (dataset, seed, method), r in runs.items():
        if method != hb or (dataset, seed, bohb) not in runs:
            continue
        direction = r.get("direction", "maximize")
        at = top_budget(r["curve"]) if incumbent else None
        if incumbent and at is None:
            continue                                  # recorded before curves carried budgets
        target = best_of(r["curve"], direction, at)
        if target is None:
            continue
        hb_epochs = epochs_to_reach(r["curve"], target, direction, budget=at)
        bohb_epochs = epochs_to_reach(runs[(dataset, seed, bohb)]["curve"], target, direction, budget=at)
        per_dataset.setdefault(dataset, []).append((seed, target, hb_epochs, bohb_epochs))
    lines = ["| data set | seeds | Hyperband: epochs to its best (median) | BOHB: epochs to that score "
             "(median) | seeds BOHB fewer / equal / more |", "|---|---:|---:|---:|---:|"]
    counts = {"datasets": len(per_dataset), "bohb_fewer": 0, "bohb_not_more": 0, "seeds_fewer": 0,
              "seeds_equal": 0, "seeds_more": 0}
    for dataset in _ordered(per_dataset, list(SUITE)):
        rows = sorted(per_dataset[dataset])
        hb_median = float(np.median([row[2] for row in rows]))
        bohb_median = float(np.median([row[3] for row in rows]))      # inf when most seeds never reached it
        seeds_fewer = sum(row[3] < row[2] for row in rows)
        seeds_equal = sum(row[3] == row[2] for row in rows)
        seeds_more = len(rows) - seeds_fewer - seeds_equal
        counts["bohb_fewer"] += bohb_median < hb_median
        counts["bohb_not_more"] += bohb_median <= hb_median
        counts["seeds_fewer"] += seeds_fewer
        counts["seeds_equal"] += seeds_equal
        counts["seeds_more"] += seeds_more
        lines.append(f"| {dataset} | {len(rows)} | {hb_median:.0f} | "
                     f"{'not reached' if math.isinf(bohb_median) else f'{bohb_median:.0f}'} | "
                     f"{seeds_fewer} / {seeds_equal} / {seeds_more} |")
    return lines, counts


# ============================================================================ plot

def plot_scores(summaries, default_method: str, path: str) -> None:
    """Per data set, the test score of each method: median with IQR bars, one marker per budget."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install nnhp[plot])")
        return
    datasets = _ordered({d for s in summaries.values() for d, _ in s}, list(SUITE))
    if not datasets:
        return
    columns = min(4, len(datasets))
    rows = -(-len(datasets) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.3 * columns, 2.9 * rows), squeeze=False)
    markers = {"time": ("o", "equal time"), "epochs": ("s", "equal epochs")}
    for ax, dataset in zip(axes.flat, datasets):
        methods = _ordered({m for s in summaries.values() for d, m in s if d == dataset},
                           all_methods_order(default_method))
        for k, (budget, summary) in enumerate(summaries.items()):
            offset = (k - (len(summaries) - 1) / 2) * 0.25
            for i, method in enumerate(methods):
                s = summary.get((dataset, method))
                if s is None or not math.isfinite(s["median"]):
                    continue
                colour = "C3" if method == default_method else "C0" if method.startswith("nnhp") else "C7"
                ax.errorbar(s["median"], i + offset, xerr=[[s["median"] - s["q1"]], [s["q3"] - s["median"]]],
                            fmt=markers[budget][0], color=colour, ms=4, capsize=2)
        ax.set_yticks(range(len(methods)))
        ax.set_yticklabels(methods, fontsize=7)
        ax.invert_yaxis()
        task = next((s[(dataset, m)]["task"] for s in summaries.values() for m in methods if (dataset, m) in s), "")
        ax.set_title(f"{dataset} ({'accuracy' if task == 'classification' else 'R²'})", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(datasets):]:
        ax.axis("off")
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], marker=markers[b][0], color="k", ls="", ms=4, label=markers[b][1]) for b in summaries]
    fig.legend(handles=handles, loc="upper right", ncol=len(handles), fontsize=7, frameon=False)
    fig.suptitle("test score, median and IQR over seeds (red: default nnhp.tune)", fontsize=9, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ============================================================================ RESULTS.md

def write_results_section(text, path=None):
    """This script's section of RESULTS.md (see results_md.py)."""
    write_results_section_as(text, SECTION, **({} if path is None else {"path": path}))


def _version(module):
    try:
        return __import__(module).__version__
    except (ImportError, AttributeError):
        return "absent"


def report(records, settings: dict, default_method: str) -> tuple[str, dict]:
    """The markdown text (tables and verdicts) and the per-budget summaries."""
    budgets = [b for b in ("time", "epochs") if any(r["budget"] == b for r in records)]
    summaries = {b: summarize(records, b) for b in budgets}
    parts = [f"Command: `{settings['command']}`  ",
             f"Machine: {settings['machine']}; {settings['date']}; load average at start {settings['load']}; "
             f"numpy {_version('numpy')}, scikit-learn {_version('sklearn')}, optuna {_version('optuna')}",
             f"Data sets: {', '.join(settings['datasets'])}; seeds {settings['seeds']}; test 25%, validation 20% "
             f"of the rest. Test score: accuracy (classification), R² (regression). Default nnhp.tune: "
             f"{default_method}. Budgets: {settings['budget_seconds']:g} s of search per run (then the refit), "
             f"or {settings['epoch_budget']:g} x max_epochs total epochs. "
             f"max_epochs: the most epochs one trial trains (nnhp's choice for the data and budget). "
             f"Search s: the search alone; total s: search and refit (scikit-learn: its fit, whose timing "
             f"probe is not counted). Times and epochs are medians over seeds; epochs count the search's "
             f"training (the fixed MLP's: its one training on train + val)."]
    if settings.get("skipped"):
        parts.append("Skipped: " + "; ".join(settings["skipped"]))
    titles = {"time": f"### Equal wall-clock budget ({settings['budget_seconds']:g} s per search)",
              "epochs": f"### Equal total epochs ({settings['epoch_budget']:g} x max_epochs per search)"}
    for budget in budgets:
        parts += [titles[budget], results_table(summaries[budget], default_method)]
        lines, counts = default_verdict(summaries[budget], default_method)
        parts.append(f"Default nnhp.tune ({default_method}) at this budget: median test score at least every "
                     f"peer's ({', '.join(PEERS)}) on {counts['beats_peers']}/{counts['datasets']} data sets, "
                     f"above the fixed MLP's on {counts['beats_fixed']}/{counts['datasets']}.\n\n"
                     + "\n".join(lines))
    stat_budget = "epochs" if "epochs" in budgets else (budgets[0] if budgets else None)
    if stat_budget is not None:
        kind = "equal-epochs" if stat_budget == "epochs" else "equal-time"
        for incumbent, title, rule in (
                (True, "the validation score of the model Hyperband returns", "a score is reached when a "
                 "complete trial at the largest budget (where the returned model comes from) scores at least "
                 "that"),
                (False, "Hyperband's best validation score of any trial", "a score is reached when any "
                 "complete trial, at any budget, scores at least that")):
            lines, counts = bohb_vs_hyperband(records, stat_budget, incumbent=incumbent)
            if not counts["datasets"]:
                continue
            parts += [f"### BOHB vs Hyperband: epochs to reach {title} ({kind} runs)", "\n".join(lines),
                      f"BOHB needed fewer epochs (median over seeds) on {counts['bohb_fewer']}/{counts['datasets']} "
                      f"data sets, at most as many on {counts['bohb_not_more']}/{counts['datasets']}; per run "
                      f"fewer / equal / more: {counts['seeds_fewer']} / {counts['seeds_equal']} / "
                      f"{counts['seeds_more']}. Epochs count every trial's own training, a promoted trial only "
                      f"its epochs beyond its parent's; {rule}."]
    parts.append("![test score per method](bench_tune.png)")
    failures = [r for r in records if "error" in r]
    if failures:
        parts.append("Failed runs: " + "; ".join(f"{r['dataset']}/{r['method']}/{r['budget']}/seed {r['seed']}: "
                                                 f"{r['error'][:120]}" for r in failures[:10]))
    parts.append(f"Total wall time: {settings.get('wall_seconds', 0):.0f} s")
    return "\n\n".join(parts), summaries


# ============================================================================ main

MODES = {   # datasets, seeds, budget seconds, epoch budget (x max_epochs), methods (None: all)
    "quick": (["iris", "wine"], 2, 2.0, 1.0, [nnhp_method("hyperband"), nnhp_method("bohb"), FIXED, OPTUNA, SKLEARN]),
    "default": (["iris", "wine", "breast_cancer", "diabetes"], 5, 10.0, 4.0, None),
    "full": (list(SUITE), 5, 20.0, 4.0, None),
}


def job_key(job: dict) -> tuple:
    """What identifies a run: a record with the same key can stand in for it (``--resume``)."""
    return (job["dataset"], job["seed"], job["method"], job["budget"], job.get("budget_value"),
            job.get("early_stopping", False))


def load_records(paths) -> tuple[list, dict, str | None]:
    """Records, settings and default method of one or more ``--json`` files, merged: settings of
    the first, with the data sets, skips and wall time of all."""
    records, settings, default_method = [], None, None
    for path in paths:
        with open(path) as handle:
            saved = json.load(handle)
        records += saved["records"]
        default_method = default_method or saved.get("default_method")
        if settings is None:
            settings = dict(saved["settings"])
            continue
        settings["datasets"] = list(dict.fromkeys(settings["datasets"] + saved["settings"]["datasets"]))
        settings["skipped"] = list(dict.fromkeys(settings.get("skipped", []) + saved["settings"].get("skipped", [])))
        settings["wall_seconds"] = settings.get("wall_seconds", 0) + saved["settings"].get("wall_seconds", 0)
        settings["command"] += f"`, `{saved['settings']['command']}"
    return records, settings, default_method


def save_records(path, settings, default_method, records) -> None:
    with open(path + ".tmp", "w") as handle:
        json.dump({"settings": settings, "default_method": default_method, "records": records}, handle,
                  indent=1, default=float)
    os.replace(path + ".tmp", path)          # a run killed mid-write leaves the previous file


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="modes: " + "; ".join(
                                         f"--{name}: {len(m[0])} data sets, {m[1]} seeds, {m[2]:g} s, "
                                         f"{m[3]:g} x max_epochs" for name, m in MODES.items()))
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="iris and wine, 2 seeds, 2 s budgets, no random/GP (about a minute)")
    mode.add_argument("--full", action="store_true", help="every data set, 5 seeds, 20 s budgets")
    parser.add_argument("--datasets", nargs="*", default=None, help=f"subset of {list(SUITE)}")
    parser.add_argument("--methods", nargs="*", default=None, help="subset of the methods (names as in the table)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (0, 1, ...)")
    parser.add_argument("--budget-seconds", type=float, default=None, help="wall-clock budget per search")
    parser.add_argument("--epoch-budget", type=float, default=None,
                        help="total-epochs budget per search, as a multiple of the data set's max_epochs")
    parser.add_argument("--budgets", nargs="*", default=["time", "epochs"], choices=["time", "epochs"])
    parser.add_argument("--workers", type=int, default=2, help="processes running the runs (one BLAS thread each)")
    parser.add_argument("--early-stopping", action="store_true",
                        help="nnhp methods stop each trial on the validation loss (patience max(10, max_epochs/10)) "
                             "and score its lowest-loss epoch, as nnhp.tune did by default before 2026-12-03")
    parser.add_argument("--json", default=None, help="write every run's record here (after each run)")
    parser.add_argument("--resume", action="store_true",
                        help="with --json: reuse the runs that file already holds (same job, no error)")
    parser.add_argument("--from-json", nargs="+", default=None,
                        help="table the records of earlier --json files (merged); run nothing")
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--plot-dir", default=None,
                        help="where bench_tune.png goes (default: benchmarks/ with --write-results, else no plot)")
    args = parser.parse_args(argv)
    mode_name = "quick" if args.quick else "full" if args.full else "default"
    mode_datasets, mode_seeds, mode_seconds, mode_epochs, mode_methods = MODES[mode_name]
    datasets = list(args.datasets or mode_datasets)
    unknown = [d for d in datasets if d not in SUITE]
    if unknown:
        parser.error(f"unknown data sets {unknown}; choose from {list(SUITE)}")
    seeds = list(range(args.seeds if args.seeds is not None else mode_seeds))
    budget_seconds = args.budget_seconds if args.budget_seconds is not None else mode_seconds
    epoch_budget = args.epoch_budget if args.epoch_budget is not None else mode_epochs
    default_method = nnhp_method(default_searcher())
    methods = list(args.methods or mode_methods or all_methods())
    unknown = [m for m in methods if m not in all_methods()]
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {all_methods()}")
    plot_dir = args.plot_dir or (HERE if args.write_results else None)
    command = "python benchmarks/bench_tune.py " + " ".join(argv if argv is not None else sys.argv[1:])
    settings = {"command": command.strip(), "machine": machine_description(),
                "date": datetime.date.today().isoformat(),
                "load": " ".join(f"{x:.1f}" for x in os.getloadavg()), "budget_seconds": budget_seconds,
                "epoch_budget": epoch_budget, "seeds": len(seeds), "datasets": datasets, "skipped": []}

    started = time.perf_counter()
    if args.from_json:
        records, settings, saved_default = load_records(args.from_json)
        default_method = saved_default or default_method
    else:
        for dataset in list(datasets):
            why = dataset_available(dataset)
            if why:
                print(f"skipping data set {dataset}: {why}", flush=True)
                settings["skipped"].append(f"data set {dataset} ({why})")
                datasets.remove(dataset)
        for method in list(methods):
            if not _available(method):
                print(f"skipping {method}: {METHOD_MODULES[method]} is not installed", flush=True)
                settings["skipped"].append(f"{method} ({METHOD_MODULES[method]} not installed)")
                methods.remove(method)
        settings["datasets"] = datasets
        jobs = make_jobs(datasets, methods, seeds, args.budgets, budget_seconds, epoch_budget)
        if args.early_stopping:
            for job in jobs:
                if method_searcher(job["method"]) is not None:
                    job["early_stopping"] = True
        done = {}
        if args.resume and args.json and os.path.exists(args.json):
            done = {job_key(r): r for r in load_records([args.json])[0] if "error" not in r}
        todo = [job for job in jobs if job_key(job) not in done]
        floor = sum(job["budget_value"] for job in todo if job["budget"] == "time") / max(args.workers, 1)
        reused = f" ({len(jobs) - len(todo)} reused from {args.json})" if done else ""
        print(f"{len(jobs)} runs{reused}, {args.workers} workers; "
              f"the time-budget searches alone take {floor / 60:.1f} min, refits and epoch-budget runs add "
              f"to that", flush=True)
        finished = dict(done)
        with ProcessPoolExecutor(args.workers) as pool:
            for r in pool.map(run_job, todo):
                finished[job_key(r)] = r
                outcome = (f"error {r['error']}" if "error" in r else
                           f"test {r['test_score']:.4f}  {r['seconds']:.1f} s  {r.get('epochs', 0)} epochs")
                print(f"{r['dataset']:13s} seed {r['seed']}  {r['method']:16s} {r['budget']:6s}  {outcome}",
                      flush=True)
                if args.json:
                    settings["wall_seconds"] = time.perf_counter() - started
                    save_records(args.json, settings, default_method, list(finished.values()))
        records = [finished[job_key(job)] for job in jobs]
        settings["wall_seconds"] = time.perf_counter() - started
        if args.json:
            save_records(args.json, settings, default_method, records)
    text, summaries = report(records, settings, default_method)
    if plot_dir:
        plot_scores(summaries, default_method, os.path.join(plot_dir, "bench_tune.png"))
    if args.write_results:
        write_results_section(text)
    print(text)


if __name__ == "__main__":
    main()
