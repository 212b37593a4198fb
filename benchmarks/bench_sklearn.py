"""nnhp.sklearn.MLPClassifier against sklearn.neural_network.MLPClassifier: test accuracy and fit time.

The same network and training on scikit-learn's bundled data sets (digits, wine, breast cancer):

    hidden layers   (100,) ReLU (both libraries' default), softmax / logistic output
    training        Adam, learning rate 1e-3, batch min(200, n) (scikit-learn's "auto"), shuffled,
                    exactly ``--epochs`` epochs (scikit-learn's loss-plateau stop is switched off:
                    n_iter_no_change = epochs), L2 alpha = 1e-4 (scikit-learn's default; nnhp
                    l2 = alpha / (2 batch), the same penalty in nnhp's form)
    data            for each seed s: 25% stratified test split with seed s, StandardScaler fitted
                    on the training rows (outside the timing)

Each library runs as a user would run it: nnhp's estimator with its defaults (float32, one BLAS
thread, numba's fused kernels where installed and measured faster), scikit-learn's with its
defaults (float64, as many BLAS threads as the machine has). Two more rows tell where the
difference comes from: scikit-learn limited to one BLAS thread (threadpoolctl), and nnhp in
float64.

Timing: the wall-clock time of ``fit`` alone. Every method fits once untimed first (nnhp's first
fit in a process loads its compiled kernels; that time is printed). Then, seed by seed and data set
by data set, the methods take turns in an order shuffled per round, so a slow patch of a shared
machine hits them alike; the figure is the median over seeds of the per-round ratio
scikit-learn time / nnhp time (above 1: nnhp is faster).

    python benchmarks/bench_sklearn.py                      # 3 data sets x 5 seeds x 4 methods (~20 s on 2 idle cores)
    python benchmarks/bench_sklearn.py --write-results      # also the section in RESULTS.md

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the environment before NumPy loads, so
OpenBLAS tunes itself for the machine it runs on.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # bench_env beside this script
import bench_env  # noqa: E402  (first: this checkout on sys.path)

if __name__ == "__main__":
    bench_env.machine_blas()

import argparse  # noqa: E402
import datetime  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

HERE = bench_env.HERE

from results_md import machine_description, write_results_section  # noqa: E402

SECTION = "## scikit-learn estimators (bench_sklearn.py)"
DATASETS = ("digits", "wine", "breast_cancer")
NNHP, SKLEARN, SKLEARN_1T, NNHP_F64 = "nnhp", "scikit-learn", "scikit-learn, 1 BLAS thread", "nnhp, float64"
METHODS = (NNHP, SKLEARN, SKLEARN_1T, NNHP_F64)
HIDDEN = (100,)
LEARNING_RATE = 1e-3
ALPHA = 1e-4          # scikit-learn's default L2 strength
AUTO_BATCH = 200      # scikit-learn's batch_size="auto": min(200, n)


def load(name: str):
    from sklearn import datasets
    loader = {"digits": datasets.load_digits, "wine": datasets.load_wine,
              "breast_cancer": datasets.load_breast_cancer}[name]
    return loader(return_X_y=True)


def split(X, y, seed: int):
    """25% stratified test rows; features standardized with the training rows' statistics."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def make_estimator(method: str, epochs: int, n_train: int, seed: int):
    """The estimator and the context its fit runs in, for one method."""
    import contextlib
    batch = min(AUTO_BATCH, n_train)
    if method in (NNHP, NNHP_F64):
        from nnhp.sklearn import MLPClassifier
        return MLPClassifier(hidden_layer_sizes=HIDDEN, learning_rate=LEARNING_RATE, batch_size=batch, epochs=epochs,
                             l2=ALPHA / (2 * batch), random_state=seed,
                             dtype="float64" if method == NNHP_F64 else "float32"), contextlib.nullcontext()
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits
    estimator = MLPClassifier(hidden_layer_sizes=HIDDEN, solver="adam", learning_rate_init=LEARNING_RATE,
                              batch_size=batch, max_iter=epochs, n_iter_no_change=epochs, alpha=ALPHA,
                              random_state=seed)
    limit = threadpool_limits(limits=1, user_api="blas") if method == SKLEARN_1T else contextlib.nullcontext()
    return estimator, limit


def run_one(method: str, data, epochs: int, seed: int) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    X_train, X_test, y_train, y_test = data
    estimator, context = make_estimator(method, epochs, len(X_train), seed)
    with warnings.catch_warnings(), context:
        warnings.simplefilter("ignore", ConvergenceWarning)     # scikit-learn: "max_iter reached"
        started = time.perf_counter()
        estimator.fit(X_train, y_train)
        seconds = time.perf_counter() - started
    return {"method": method, "seed": seed, "seconds": seconds, "epochs": int(estimator.n_iter_),
            "accuracy": float(estimator.score(X_test, y_test))}


def warm_up(methods, epochs: int) -> dict:
    """One untimed fit per method (on digits); returns the seconds each took."""
    data = split(*load("digits"), seed=0)
    return {method: run_one(method, data, epochs, seed=0)["seconds"] for method in methods}


def run(datasets, methods, seeds, epochs: int, verbose: bool = True) -> list[dict]:
    records = []
    for seed in seeds:
        order = np.random.default_rng([seed, 17]).permutation(len(methods))
        for name in datasets:
            data = split(*load(name), seed=seed)
            for index in order:
                record = {"dataset": name, **run_one(methods[index], data, epochs, seed)}
                records.append(record)
                if verbose:
                    print(f"seed {seed}  {name:<14} {record['method']:<28} acc {record['accuracy']:.4f}  "
                          f"{record['seconds']:.3f} s  {record['epochs']} epochs", flush=True)
    return records


def summarize(records, datasets, methods) -> list[dict]:
    """Per data set and method: median accuracy and time, and the per-round time ratio to nnhp."""
    rows = []
    for name in datasets:
        nnhp_time = {r["seed"]: r["seconds"] for r in records if r["dataset"] == name and r["method"] == NNHP}
        for method in methods:
            mine = [r for r in records if r["dataset"] == name and r["method"] == method]
            if not mine:
                continue
            accuracy = np.array([r["accuracy"] for r in mine])
            ratios = [r["seconds"] / nnhp_time[r["seed"]] for r in mine if r["seed"] in nnhp_time]
            rows.append({"dataset": name, "method": method, "accuracy": float(np.median(accuracy)),
                         "accuracy_min": float(accuracy.min()), "accuracy_max": float(accuracy.max()),
                         "seconds": float(np.median([r["seconds"] for r in mine])),
                         "epochs": int(np.median([r["epochs"] for r in mine])),
                         "ratio": float(np.median(ratios)) if ratios else float("nan"), "runs": len(mine)})
    return rows


def table(rows) -> str:
    lines = ["| data set | method | test accuracy: median [min, max] | fit s (median) | time / nnhp's "
             "(median of per-round ratios) | epochs | runs |",
             "|---|---|---|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['dataset']} | {row['method']} | {row['accuracy']:.4f} [{row['accuracy_min']:.4f}, "
                     f"{row['accuracy_max']:.4f}] | {row['seconds']:.3f} | {row['ratio']:.2f}x | {row['epochs']} "
                     f"| {row['runs']} |")
    return "\n".join(lines)


def verdict(rows) -> str:
    """One line per data set: nnhp against scikit-learn as each runs by default."""
    lines = []
    for name in dict.fromkeys(row["dataset"] for row in rows):
        mine = {row["method"]: row for row in rows if row["dataset"] == name}
        if NNHP not in mine or SKLEARN not in mine:
            continue
        ours, theirs = mine[NNHP], mine[SKLEARN]
        difference = ours["accuracy"] - theirs["accuracy"]
        same_or_better = "same or better" if difference >= 0 else "lower"
        faster = "faster" if theirs["ratio"] > 1 else "slower"
        lines.append(f"- {name}: nnhp's median test accuracy {ours['accuracy']:.4f} vs scikit-learn's "
                     f"{theirs['accuracy']:.4f} ({difference:+.4f}, {same_or_better}); fit {faster}: "
                     f"scikit-learn takes {theirs['ratio']:.2f}x nnhp's time "
                     f"({theirs['seconds']:.3f} s vs {ours['seconds']:.3f} s)")
    return "\n".join(lines)


def versions() -> str:
    import sklearn
    parts = [f"numpy {np.__version__}", f"scikit-learn {sklearn.__version__}"]
    try:
        import numba
        parts.append(f"numba {numba.__version__}")
    except ImportError:
        parts.append("no numba")
    return ", ".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=200, help="epochs for both (scikit-learn's max_iter default)")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)
    if NNHP not in args.methods:
        parser.error(f"the ratios are to {NNHP!r}: keep it among --methods")
    command = "python benchmarks/bench_sklearn.py " + " ".join(argv if argv is not None else sys.argv[1:])
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    began = time.perf_counter()
    first = warm_up(args.methods, args.epochs)
    records = run(args.datasets, args.methods, list(range(args.seeds)), args.epochs)
    rows = summarize(records, args.datasets, args.methods)
    load_end = " ".join(f"{x:.2f}" for x in os.getloadavg())
    text = "\n\n".join([
        f"Command: `{command.strip()}`  ",
        f"Machine: {machine_description()}; {datetime.date.today().isoformat()}; {versions()}; load average "
        f"(1, 5, 15 min) {load_start} at the start, {load_end} at the end (the machine is shared: the ratios, "
        f"measured in turns within one run, are the figure; absolute times move with the load).",
        f"MLP {HIDDEN[0]} ReLU units, Adam lr {LEARNING_RATE:g}, batch min(200, n), {args.epochs} epochs, L2 alpha "
        f"{ALPHA:g}; {args.seeds} seeds, 25% stratified test split per seed. Warm-up fits (untimed, digits): "
        + ", ".join(f"{method} {seconds:.2f} s" for method, seconds in first.items())
        + f". Total {time.perf_counter() - began:.0f} s.",
        table(rows),
        verdict(rows)])
    print("\n" + text)
    if args.write_results:
        write_results_section(text, SECTION)


if __name__ == "__main__":
    main()
