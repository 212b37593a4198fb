"""Tuning on data as a new user passes it: raw features and raw targets, no scaling by hand.

bench_tune.py standardizes every data set before any method sees it, as a careful user would.
A new user often does not: a wine's proline is in the thousands and its hue near 1, digits'
pixels run 0..16, penguins weigh thousands of grams, diabetes' target is 25..346. This script
gives ``nnhp.tune`` the data as it comes, with ``standardize=False`` (every trial trains on the raw
numbers) and with the default ``standardize=True`` (trials train on standardized features and,
for regression, targets; the models returned still take the raw data), on the same split, seed
and epoch budget:

    python benchmarks/bench_raw.py [--seeds 3] [--datasets wine breast_cancer digits diabetes penguins]
                                   [--epoch-budget 972]

Test score: accuracy, or R² for regression; the median over seeds and every seed's, printed as a
Markdown table for RESULTS.md. The split: 25% test (stratified for classes), then tune's own 20%
validation split of the rest. Budget: ``max_total_epochs`` (timing-free, so the load of the
machine does not change the scores).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # bench_env beside this script
import bench_env  # noqa: E402  (first: this checkout on sys.path)

if __name__ == "__main__":
    bench_env.machine_blas()

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def load(name: str):
    """(X, y, task) of a data set as its package ships it, unscaled."""
    if name == "regression":                      # nnhp's own: features near unit scale, target sd 1.8
        from nnhp.data import make_regression
        data = make_regression()
        return data.X, data.y, "regression"
    if name == "penguins":
        from palmerpenguins import load_penguins
        frame = load_penguins().dropna()
        X = frame[["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]].to_numpy(float)
        return X, frame["body_mass_g"].to_numpy(float), "regression"
    import sklearn.datasets as datasets
    loader = {"wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer,
              "digits": datasets.load_digits, "diabetes": datasets.load_diabetes}[name]
    X, y = loader(return_X_y=True)
    return X.astype(float), y, "regression" if name == "diabetes" else "classification"


def test_score(model, X, y, task: str) -> float:
    """Accuracy under the model's own loss, or R² for regression."""
    import nnhp
    if task == "classification":
        return float(nnhp.evaluate(model, X, y, loss=model.loss_name)["accuracy"])
    prediction = np.asarray(model.predict(X)).ravel()
    return float(1.0 - np.mean((prediction - y) ** 2) / np.var(y))


def run(X, y, task: str, seed: int, standardize: bool, epoch_budget: int) -> tuple[float, float]:
    import nnhp
    from nnhp.data import train_test_split
    X_train, X_test, y_train, y_test = train_test_split(X, y, 0.25, seed=seed, stratify=task == "classification")
    started = time.perf_counter()
    result = nnhp.tune(X_train, y_train, max_total_epochs=epoch_budget, n_trials=None, seed=seed,
                       standardize=standardize, task=task)
    return test_score(result.best_model, X_test, y_test, task), time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--datasets", nargs="+", default=["wine", "breast_cancer", "digits", "diabetes", "penguins"],
                        help="from wine breast_cancer digits diabetes penguins regression")
    parser.add_argument("--epoch-budget", type=int, default=972, help="max_total_epochs per search")
    args = parser.parse_args(argv)
    lines = ["| data set | score | standardize=False: median [seeds] | default (standardize=True): median [seeds] |",
             "|---|---|---|---|"]
    for name in args.datasets:
        X, y, task = load(name)
        scores = {False: [], True: []}
        for seed in range(args.seeds):
            for standardize in (False, True):
                score, seconds = run(X, y, task, seed, standardize, args.epoch_budget)
                scores[standardize].append(score)
                print(f"{name:14s} seed {seed} standardize={standardize!s:5s} test {score:.4f} ({seconds:.0f} s)",
                      file=sys.stderr, flush=True)
        kind = "R²" if task == "regression" else "accuracy"
        cells = [f"{np.median(v):.4f} [{', '.join(f'{s:.3f}' for s in v)}]" for v in (scores[False], scores[True])]
        lines.append(f"| {name} | {kind} | {cells[0]} | {cells[1]} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
