"""Benchmark the searchers: nnhp's GP against Optuna and scikit-optimize; Hyperband on digits.

(a) Standard test functions (minimized; regret = best value found - global minimum):
    Branin (2-D), Hartmann-6 (6-D), Rosenbrock-5 (5-D on [-2, 2]^5).
    For each of ``--seeds`` seeds, 50 evaluations by: random search, nnhp GPSearch,
    Optuna TPE, Optuna GPSampler and scikit-optimize gp_minimize (peers that are not
    installed are skipped). Reports median and inter-quartile range of the regret after
    20 and 50 evaluations, and the time one suggestion takes with 50/100/200 observations.
(b) Tuning an MLP on digits (nnhp.tune, same space for all): best validation accuracy
    against total epochs trained, for grid, random, GP and Hyperband (R = ``--max-epochs``,
    eta = 3, promotions warm-started from checkpoints).

    python benchmarks/bench_search.py              # quick: 3 seeds, ~6 min on 2 cores
    python benchmarks/bench_search.py --full       # the recorded run: 10 seeds, 10 digits seeds, ~8 min
    flock /tmp/nnhp_bench.lock python benchmarks/bench_search.py --full --write-results

Runs go to a process pool of ``--workers`` (each process single-threaded BLAS); the
timings of (a) run afterwards, alone. ``--write-results`` replaces the section
"## Search (bench_search.py)" of benchmarks/RESULTS.md (keeping its "### Notes") and
writes the plots benchmarks/bench_search_regret.png and benchmarks/bench_search_digits.png
(``--plot-dir`` puts them elsewhere).
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

import numpy as np  # noqa: E402

HERE = bench_env.HERE

from results_md import write_results_section as write_results_section_as  # noqa: E402

N_EVALS = 50
CHECKPOINTS = (20, 50)


# ------------------------------------------------------------------ test functions

def branin(x):
    x1, x2 = x
    return ((x2 - 5.1 / (4 * math.pi ** 2) * x1 ** 2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(x):
    x = np.asarray(x, dtype=float)
    return float(-np.sum(_H6_ALPHA * np.exp(-np.sum(_H6_A * (x - _H6_P) ** 2, axis=1))))


def rosenbrock(x):
    x = np.asarray(x, dtype=float)
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


# name -> (function, bounds, global minimum)
FUNCTIONS = {
    "branin": (branin, [(-5.0, 10.0), (0.0, 15.0)], 0.397887357729738),
    "hartmann6": (hartmann6, [(0.0, 1.0)] * 6, -3.32236801141551),
    "rosenbrock5": (rosenbrock, [(-2.0, 2.0)] * 5, 0.0),
}


TIMING_FUNCTION = FUNCTIONS["hartmann6"]      # suggestion times are taken on Hartmann-6 always


# ------------------------------------------------------------------ one run per method

def run_random(fn, bounds, seed, n):
    rng = np.random.default_rng(seed)
    low, high = np.array(bounds).T
    return [fn(low + rng.random(len(bounds)) * (high - low)) for _ in range(n)]


def _space(bounds):
    from nnhp.search import Float, Space
    return Space({f"x{i}": Float(lo, hi) for i, (lo, hi) in enumerate(bounds)})


def run_nnhp_gp(fn, bounds, seed, n):
    from nnhp.search import Study
    from nnhp.search.gp import GPSearch

    study = Study(_space(bounds), searcher=GPSearch(seed=seed))
    values = []

    def objective(trial):
        values.append(fn([trial.params[f"x{i}"] for i in range(len(bounds))]))
        return values[-1]

    study.optimize(objective, n_trials=n)
    return values


def _optuna_run(sampler, fn, bounds, n):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=sampler)
    values = []

    def objective(trial):
        values.append(fn([trial.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(bounds)]))
        return values[-1]

    study.optimize(objective, n_trials=n)
    return values


def run_optuna_tpe(fn, bounds, seed, n):
    import optuna
    return _optuna_run(optuna.samplers.TPESampler(seed=seed), fn, bounds, n)


def run_optuna_gp(fn, bounds, seed, n):
    import optuna
    return _optuna_run(optuna.samplers.GPSampler(seed=seed), fn, bounds, n)


def run_skopt(fn, bounds, seed, n):
    from skopt import gp_minimize
    values = []

    def objective(x):
        values.append(fn(x))
        return values[-1]

    gp_minimize(objective, bounds, n_calls=n, random_state=seed)
    return values


METHODS = {
    "random": (run_random, None),
    "nnhp GP": (run_nnhp_gp, "scipy"),
    "Optuna TPE": (run_optuna_tpe, "optuna"),
    "Optuna GP": (run_optuna_gp, "optuna"),
    "skopt gp_minimize": (run_skopt, "skopt"),
}


def _available(module):
    if module is None:
        return True
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def _init_worker():
    warnings.filterwarnings("ignore")
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass


def _one_run(job):
    function_name, method, seed = job
    _init_worker()
    fn, bounds, _ = FUNCTIONS[function_name]
    start = time.perf_counter()
    values = METHODS[method][0](fn, bounds, seed, N_EVALS)
    return job, values[:N_EVALS], time.perf_counter() - start


# ------------------------------------------------------------------ suggestion timing

def time_suggestions(method, n_obs, repeats=3, seed=0):
    """Seconds (wall, CPU) for one suggestion (model fit + acquisition) given n_obs random
    observations of Hartmann-6; median of ``repeats`` (each adds one more observation)."""
    fn, bounds, _ = TIMING_FUNCTION
    rng = np.random.default_rng(seed)
    X = rng.random((n_obs + repeats, len(bounds)))
    y = [fn(x) for x in X]
    times, cpu_times = [], []

    class _Clock:           # wall-clock and process CPU time of one suggestion
        def __enter__(self):
            self.wall, self.cpu = time.perf_counter(), time.process_time()

        def __exit__(self, *exc):
            times.append(time.perf_counter() - self.wall)
            cpu_times.append(time.process_time() - self.cpu)

    clock = _Clock()
    if method == "nnhp GP":
        from nnhp.search import Study
        from nnhp.search.gp import GPSearch
        study = Study(_space(bounds), searcher=GPSearch(seed=seed))
        for x, v in zip(X[:n_obs], y[:n_obs]):
            study.tell(study.ask({f"x{i}": float(xi) for i, xi in enumerate(x)}), v)
        warm_up = study.ask()        # in a running study the previous fit is there to start from
        study.tell(warm_up, fn([warm_up.params[f"x{i}"] for i in range(len(bounds))]))
        for k in range(repeats):
            with clock:
                trial = study.ask()
            study.tell(trial, fn([trial.params[f"x{i}"] for i in range(len(bounds))]))
    elif method in ("Optuna GP", "Optuna TPE"):
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = (optuna.samplers.GPSampler(seed=seed) if method == "Optuna GP"
                   else optuna.samplers.TPESampler(seed=seed))
        study = optuna.create_study(sampler=sampler)
        distributions = {f"x{i}": optuna.distributions.FloatDistribution(0.0, 1.0) for i in range(6)}
        study.add_trials([optuna.trial.create_trial(params={f"x{i}": float(xi) for i, xi in enumerate(x)},
                                                    distributions=distributions, value=v)
                          for x, v in zip(X[:n_obs], y[:n_obs])])
        for k in range(repeats):
            with clock:
                trial = study.ask(distributions)
            study.tell(trial, fn([trial.params[f"x{i}"] for i in range(6)]))
    elif method == "skopt gp_minimize":
        from skopt import Optimizer
        optimizer = Optimizer(bounds, random_state=seed)
        optimizer.tell([list(x) for x in X[:n_obs - 1]], y[:n_obs - 1])
        last_x, last_y = list(X[n_obs - 1]), y[n_obs - 1]
        for k in range(repeats):      # skopt fits its GP in tell: time tell(one point) + ask
            with clock:
                optimizer.tell(last_x, last_y)
                x = optimizer.ask()
            last_x, last_y = x, fn(x)
    else:
        raise ValueError(method)
    return float(np.median(times)), float(np.median(cpu_times))


# ------------------------------------------------------------------ (b) digits

def _digits_split(seed=0):
    from nnhp.data import load_digits, standardize, train_test_split
    data = load_digits()
    X_train, X_val, y_train, y_val = train_test_split(data.X, data.y, 0.25, seed=seed, stratify=True)
    X_train, X_val = standardize(X_train, X_val)
    return X_train, X_val, y_train, y_val


def digits_space(max_epochs, budgeted):
    from nnhp.search import Choice, Float, Int, Space
    dims = {
        "n_layers": Int(1, 2),
        "units_1": Int(16, 256, log=True),
        "units_2": Int(16, 256, log=True, when=("n_layers", ">=", 2)),
        "activation": Choice(["relu", "tanh"]),
        "dropout": Float(0.0, 0.5),
        "optimizer": Choice(["adam", "sgd"]),
        "lr": Float(1e-4, 3e-1, log=True),
        "batch_size": 64,
        "schedule": "constant",
        "penalty": "l2",
        "l2": Float(1e-6, 1e-2, log=True),
    }
    if not budgeted:
        dims["epochs"] = max_epochs
    return Space(dims)


def _epochs_of(trials):
    """Epochs each trial actually trained: epochs_run minus its parent's (continued trials)."""
    by_id = {t.id: t for t in trials}
    spent = []
    for t in trials:
        run = t.attrs.get("epochs_run", 0)
        parent = by_id.get(t.parent_id)
        spent.append(max(run - (parent.attrs.get("epochs_run", 0) if parent else 0), 0))
    return spent


def _one_digits_run(job):
    method, seed, max_epochs, n_trials, storage_dir = job
    _init_worker()
    import nnhp
    from nnhp.search import GridSearch
    from nnhp.search.gp import GPSearch
    from nnhp.search.hyperband import Hyperband

    X_train, X_val, y_train, y_val = _digits_split(seed)
    searcher = {"grid": lambda: GridSearch(points_per_dim=3),
                "random": lambda: "random",
                "GP": lambda: GPSearch(seed=seed),
                "Hyperband": lambda: Hyperband(max_budget=max_epochs, eta=3, seed=seed)}[method]()
    budgeted = method == "Hyperband"
    # SQLite storage: checkpoints of promoted trials round-trip through npz blobs.
    storage = os.path.join(storage_dir, f"digits-{method}-{seed}.db")
    if os.path.exists(storage):
        os.remove(storage)
    start = time.perf_counter()
    result = nnhp.tune(X_train, y_train, validation_data=(X_val, y_val), loss="cross_entropy",
                       space=digits_space(max_epochs, budgeted), searcher=searcher, n_trials=n_trials,
                       max_epochs=max_epochs, storage=storage, seed=seed, patience=max_epochs,
                       initial_configs=None, refit=False)     # the searchers alone, as they propose
    seconds = time.perf_counter() - start
    trials = sorted(result.study.trials, key=lambda t: t.id)
    epochs = np.cumsum(_epochs_of(trials))
    accuracy = [t.value if t.state == "complete" else -np.inf for t in trials]
    best = np.maximum.accumulate(accuracy)
    os.remove(storage)
    return job, epochs.tolist(), best.tolist(), seconds


# ------------------------------------------------------------------ reporting

def _quartiles(values):
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return median, q1, q3


def _fmt(x):
    return f"{x:.2e}" if (x != 0 and (abs(x) < 1e-2 or abs(x) >= 1e3)) else f"{x:.3f}"


def regret_table(regrets, methods):
    lines = ["| function | method | regret @20: median [IQR] | regret @50: median [IQR] | s/run |",
             "|---|---|---|---|---|"]
    for function_name in FUNCTIONS:
        for method in methods:
            if (function_name, method) not in regrets:
                continue
            curves, seconds = regrets[(function_name, method)]
            cells = []
            for k in CHECKPOINTS:
                median, q1, q3 = _quartiles(curves[:, k - 1])
                cells.append(f"{_fmt(median)} [{_fmt(q1)}, {_fmt(q3)}]")
            lines.append(f"| {function_name} | {method} | {cells[0]} | {cells[1]} | {np.mean(seconds):.1f} |")
    return "\n".join(lines)


def plot_regret(regrets, methods, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install nnhp[plot])")
        return
    fig, axes = plt.subplots(1, len(FUNCTIONS), figsize=(11, 3.2), squeeze=False)
    axes = axes[0]
    evals = np.arange(1, N_EVALS + 1)
    for ax, function_name in zip(axes, FUNCTIONS):
        for method in methods:
            if (function_name, method) not in regrets:
                continue
            curves = np.maximum(regrets[(function_name, method)][0], 1e-8)
            median, q1, q3 = np.percentile(curves, [50, 25, 75], axis=0)
            line, = ax.plot(evals, median, label=method, lw=1.5 if method == "nnhp GP" else 1)
            ax.fill_between(evals, q1, q3, color=line.get_color(), alpha=0.12)
        ax.set_yscale("log")
        ax.set_title(function_name)
        ax.set_xlabel("evaluations")
    axes[0].set_ylabel("regret (median, IQR)")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)


def plot_digits(digits, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for method, runs in digits.items():
        for i, (epochs, best, _) in enumerate(runs):
            ax.step(epochs, 100 * np.asarray(best), where="post", alpha=0.7,
                    color={"grid": "C0", "random": "C1", "GP": "C2", "Hyperband": "C3"}[method],
                    label=method if i == 0 else None)
    ax.set_xlabel("total epochs trained")
    ax.set_ylabel("best val accuracy (%)")
    ax.set_xscale("log")
    ax.set_ylim(90, 100)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)


def digits_table(digits, max_epochs):
    lines = ["| searcher | trials | epochs trained: median | best val acc % (median, per seed) | s/run |",
             "|---|---|---|---|---|"]
    for method, runs in digits.items():
        per_seed = [100 * best[-1] for _, best, _ in runs]
        lines.append(f"| {method} | {len(runs[0][0])} | {np.median([e[-1] for e, _, _ in runs]):.0f} | "
                     f"{np.median(per_seed):.2f} ({', '.join(f'{a:.2f}' for a in per_seed)}) | "
                     f"{np.mean([s for _, _, s in runs]):.0f} |")
    # Target: Hyperband reaches random's best (within 0.5 points) with <= 1/3 of random's epochs.
    target_lines = []
    for (r_epochs, r_best, _), (h_epochs, h_best, _) in zip(digits.get("random", []), digits.get("Hyperband", [])):
        goal = r_best[-1] - 0.005
        reached = [e for e, b in zip(h_epochs, h_best) if b >= goal]
        if reached:
            target_lines.append(f"{reached[0]:.0f} / {r_epochs[-1]:.0f} = {reached[0] / r_epochs[-1]:.2f}")
        else:
            target_lines.append(f"not reached (Hyperband best {100 * h_best[-1]:.2f} vs random {100 * r_best[-1]:.2f})")
    return "\n".join(lines), target_lines




def write_results_section(text, path=None):
    """This script's section of RESULTS.md (see results_md.py)."""
    write_results_section_as(text, "## Search (bench_search.py)", **({} if path is None else {"path": path}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true",
                        help="the recorded configuration: --seeds 10 --digits-seeds 10 (~8 min on 2 cores)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per function and method in (a) "
                                                               "(default 3; 10 with --full)")
    parser.add_argument("--workers", type=int, default=2, help="processes running the runs")
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--functions", nargs="*", default=list(FUNCTIONS))
    parser.add_argument("--skip-a", action="store_true")
    parser.add_argument("--skip-b", action="store_true")
    parser.add_argument("--digits-seeds", type=int, default=None, help="default 2; 10 with --full")
    parser.add_argument("--max-epochs", type=int, default=27)
    parser.add_argument("--digits-trials", type=int, default=40, help="trials for grid/random/GP")
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--cache", default=None,
                        help="JSON file of finished runs of (a), reused when present (for development; "
                             "the recorded results are a fresh run without it)")
    parser.add_argument("--plot-dir", default=None,
                        help="where the PNGs go (default: benchmarks/ with --write-results, else no plots)")
    args = parser.parse_args(argv)
    plot_dir = args.plot_dir or (HERE if args.write_results else None)
    if args.seeds is None:
        args.seeds = 10 if args.full else 3
    if args.digits_seeds is None:
        args.digits_seeds = 10 if args.full else 2
    for name in list(FUNCTIONS):
        if name not in args.functions:
            del FUNCTIONS[name]
    methods = [m for m in args.methods if _available(METHODS[m][1])]
    skipped = [m for m in args.methods if m not in methods]
    report = []
    command = "python benchmarks/bench_search.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report.append(f"Command: `{command.strip()}`  \nMachine: 2-core AMD EPYC, 24 GiB, no GPU; "
                  f"{datetime.date.today().isoformat()}; load average at start "
                  f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; numpy {np.__version__}"
                  + "".join(f"; {m} {_version(m)}" for m in ("scipy", "optuna", "skopt")))
    if skipped:
        report.append(f"Skipped (not installed): {', '.join(skipped)}")
    started = time.perf_counter()

    if not args.skip_a:
        cache = {}
        if args.cache and os.path.exists(args.cache):
            with open(args.cache) as handle:
                cache = json.load(handle)
        jobs = [(f, m, s) for f in FUNCTIONS for m in methods for s in range(args.seeds)]
        results = {}
        with ProcessPoolExecutor(args.workers) as pool:
            todo = [job for job in jobs if "|".join(map(str, job)) not in cache]
            for (f, m, s), values, seconds in pool.map(_one_run, todo):
                cache["|".join(map(str, (f, m, s)))] = (values, seconds)
                print(f"{f:12s} {m:18s} seed {s:2d}: best {min(values):.4g} ({seconds:.1f} s)", flush=True)
                if args.cache:
                    with open(args.cache, "w") as handle:
                        json.dump(cache, handle)
        for f, m, s in jobs:
            values, seconds = cache["|".join(map(str, (f, m, s)))]
            results.setdefault((f, m), []).append((values, seconds))
        regrets = {}
        for (f, m), runs in results.items():
            f_min = FUNCTIONS[f][2]
            curves = np.array([np.minimum.accumulate(v) - f_min for v, _ in runs])
            regrets[(f, m)] = (np.maximum(curves, 0.0), [s for _, s in runs])
        table = regret_table(regrets, methods)
        print(table)
        if plot_dir:
            plot_regret(regrets, methods, os.path.join(plot_dir, "bench_search_regret.png"))
        timing = ["| method (wall / CPU time) | 50 obs | 100 obs | 200 obs |", "|---|---|---|---|"]
        for m in methods:
            if m == "random":
                continue
            _init_worker()
            cells = ["%.0f / %.0f ms" % tuple(1e3 * t for t in time_suggestions(m, n)) for n in (50, 100, 200)]
            timing.append(f"| {m} | " + " | ".join(cells) + " |")
            print(timing[-1], flush=True)
        report += [f"### (a) Test functions: regret after 20 and 50 evaluations, {args.seeds} seeds",
                   table, "![regret vs evaluations](bench_search_regret.png)",
                   "### Time per suggestion (Hartmann-6, one process, single-threaded BLAS)", "\n".join(timing)]

    if not args.skip_b:
        import tempfile
        storage_dir = tempfile.mkdtemp(prefix="nnhp-bench-search-")
        R = args.max_epochs
        hyperband_trials = sum(n for rungs in _brackets(R) for n, _ in rungs)
        jobs = [(m, s, R, hyperband_trials if m == "Hyperband" else args.digits_trials, storage_dir)
                for m in ("grid", "random", "GP", "Hyperband") for s in range(args.digits_seeds)]
        digits = {}
        with ProcessPoolExecutor(args.workers) as pool:
            for (m, s, *_), epochs, best, seconds in pool.map(_one_digits_run, jobs):
                digits.setdefault(m, []).append((epochs, best, seconds))
                print(f"digits {m:10s} seed {s}: best {100 * best[-1]:.2f}% after {epochs[-1]:.0f} epochs "
                      f"({seconds:.0f} s)", flush=True)
        table, target = digits_table(digits, R)
        print(table)
        print("Hyperband epochs to reach random's best - 0.5 pt / random's epochs:", target)
        if plot_dir:
            plot_digits(digits, os.path.join(plot_dir, "bench_search_digits.png"))
        report += [f"### (b) MLP on digits: best validation accuracy vs epochs trained "
                   f"(R = {R} epochs, eta = 3; {args.digits_seeds} seeds)", table,
                   "Hyperband: epochs until it reached random search's best accuracy (within 0.5 points), "
                   "over random's total epochs, per seed: " + "; ".join(target),
                   "![best val accuracy vs epochs](bench_search_digits.png)"]
    report.append(f"Total wall time: {time.perf_counter() - started:.0f} s")
    text = "\n\n".join(report)
    if args.write_results:
        write_results_section(text)
    print(text)


def _brackets(max_epochs):
    from nnhp.search.hyperband import hyperband_brackets
    return hyperband_brackets(max_epochs, 3, 1)


def _version(module):
    try:
        return __import__(module).__version__
    except (ImportError, AttributeError):
        return "absent"


if __name__ == "__main__":
    main()
