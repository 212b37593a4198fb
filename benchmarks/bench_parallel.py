"""Benchmark parallel trials: the README's digits job with 1 and 2 worker processes (and Dask).

    python benchmarks/bench_parallel.py                    # 1 and 2 workers, 2 repeats each
    python benchmarks/bench_parallel.py --dask             # also 2 Dask workers on 127.0.0.1
    python benchmarks/bench_parallel.py --asha --seeds 5   # ASHA against Hyperband, 2 workers each

Each run is ``nnhp tune --data digits --searcher random --trials 30 --max-epochs 27 --workers k``
in a fresh process (start-up and refit included, as a user sees it); the Dask run is the same
command with ``--dask ADDRESS`` of a running ``LocalCluster`` of 2 single-threaded worker processes.
Runs alternate (1, 2, 1, 2, ...), each speed-up against the one-worker run just before it.
Reported: wall seconds, trials per minute, the speed-up over one worker, the 1-minute load
average before each run (other processes share the cores), and the best validation accuracy,
which must not depend on the number of workers (the random searcher proposes the same 30 configs).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# This checkout's nnhp everywhere: in process (--asha), in the CLI runs and in Dask's worker processes.
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
JOB = ["--data", "digits", "--searcher", "random", "--trials", "30", "--max-epochs", "27", "--quiet"]
TRIALS = 30


def idle_share(seconds: float = 3.0) -> float | None:
    """The share of all cores' time spent idle over the next ``seconds`` (Linux ``/proc/stat``;
    None elsewhere). Unlike the load average it says what is free *now*."""
    def sample():
        with open("/proc/stat") as handle:
            fields = [float(x) for x in handle.readline().split()[1:]]
        return fields[3] + fields[4], sum(fields)         # idle + iowait, total
    try:
        idle_before, total_before = sample()
        time.sleep(seconds)
        idle_after, total_after = sample()
    except OSError:
        return None
    return (idle_after - idle_before) / max(total_after - total_before, 1.0)


def wait_for_idle_cores(limit_s: float, wanted: float = 0.9) -> float | None:
    """Wait (up to ``limit_s``) until the cores are ``wanted`` idle; return the idle share seen.

    Linux shares the CPU between *sessions* (``kernel.sched_autogroup_enabled``): while another
    session keeps the cores busy, all the processes of this one together get about one share,
    so a second worker gains nothing -- a speed-up can only be measured on idle cores."""
    deadline = time.monotonic() + limit_s
    while True:
        idle = idle_share()
        if idle is None or idle >= wanted or time.monotonic() >= deadline:
            return idle


def run_cli(workers: int, extra=()) -> tuple[float, float, str]:
    load = os.getloadavg()[0]
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "nnhp", "tune", *JOB, "--workers", str(workers), *extra],
                          capture_output=True, text=True, check=True)
    seconds = time.monotonic() - started
    best = re.search(r"best validation accuracy: ([0-9.]+%)", done.stdout + done.stderr)
    return seconds, load, best.group(1) if best else "?"


def run_dask() -> tuple[float, float, str]:
    """The same CLI job on a LocalCluster of 2 single-threaded worker processes (``--dask ADDRESS``):
    start-up, refit and the data's travel included, the cluster's own start-up not (it is running)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        return run_cli(2, ["--dask", cluster.scheduler_address])


def _digits():
    from nnhp.data import load_digits, train_test_split
    data = load_digits()
    return train_test_split(data.X, data.y, 0.15, seed=0)


def best_so_far(study, started: float) -> list[tuple[float, float]]:
    """``(seconds after started, best value so far)`` at each completed trial that raised the best
    (a maximized accuracy), in finishing order."""
    points, best = [], None
    for trial in sorted(study.trials, key=lambda t: t.finished or float("inf")):
        if trial.state != "complete" or trial.finished is None:
            continue
        if best is None or trial.value > best:
            best = trial.value
            points.append((trial.finished - started, best))
    return points


def seconds_to_reach(curve, target: float) -> float | None:
    """When a best-so-far curve first reaches ``target`` (None: never)."""
    return next((at for at, value in curve if value >= target - 1e-12), None)


def run_asha_against_hyperband(seeds, max_epochs: int = 27, initial_configs="default") -> None:
    """For each seed: Hyperband's one iteration with 2 worker processes, then ASHA with 2 for 1.5
    times Hyperband's wall time. The target is the lower of the two final best validation
    accuracies, a score both reached; reported: each searcher's wall seconds to it (from the
    start of the search). Both start with the same default configuration at the full budget unless
    ``initial_configs`` is None."""
    import nnhp

    X, X_val, y, y_val = _digits()
    print(f"digits, max {max_epochs} epochs, rungs {max_epochs // 27}/{max_epochs // 9}/{max_epochs // 3}/"
          f"{max_epochs} epochs, eta 3, 2 worker processes each, no refit")
    print(f"{'seed':>4} {'HB s':>6} {'HB best':>8} {'ASHA s':>7} {'ASHA best':>9} {'target':>7} "
          f"{'HB to it':>8} {'ASHA to it':>10}  load")
    rows = []
    for seed in seeds:
        load = os.getloadavg()[0]
        started = time.time()
        hyperband = nnhp.tune(X, y, validation_data=(X_val, y_val), searcher="hyperband", max_epochs=max_epochs,
                              seed=seed, n_workers=2, refit=False, initial_configs=initial_configs)
        hb_seconds = time.time() - started
        hb_curve = best_so_far(hyperband.study, started)
        started = time.time()
        asha = nnhp.tune(X, y, validation_data=(X_val, y_val), searcher="asha", max_epochs=max_epochs, seed=seed,
                         n_workers=2, refit=False, timeout=1.5 * hb_seconds, n_trials=None,
                         initial_configs=initial_configs)
        asha_seconds = time.time() - started
        asha_curve = best_so_far(asha.study, started)
        target = min(hb_curve[-1][1], asha_curve[-1][1])
        hb_at, asha_at = seconds_to_reach(hb_curve, target), seconds_to_reach(asha_curve, target)
        rows.append((hb_at, asha_at))
        print(f"{seed:4d} {hb_seconds:6.1f} {100 * hb_curve[-1][1]:7.2f}% {asha_seconds:7.1f} "
              f"{100 * asha_curve[-1][1]:8.2f}% {100 * target:6.2f}% {hb_at:8.1f} {asha_at:10.1f}  {load:.2f}",
              flush=True)
    faster = sum(a < h for h, a in rows)
    hb_median = statistics.median(h for h, _ in rows)
    asha_median = statistics.median(a for _, a in rows)
    print(f"median seconds to the target: Hyperband {hb_median:.1f}, ASHA {asha_median:.1f}; "
          f"ASHA first on {faster} of {len(rows)} seeds")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dask", action="store_true", help="also 2 Dask workers on 127.0.0.1")
    parser.add_argument("--asha", action="store_true", help="only ASHA against Hyperband, 2 workers each")
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the ASHA comparison (0, 1, ...)")
    parser.add_argument("--no-initial-config", action="store_true",
                        help="ASHA comparison: no default configuration first, only the searchers' own trials")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="before each round, wait up to this long for the cores to be 90%% idle")
    args = parser.parse_args(argv)
    if args.asha:
        run_asha_against_hyperband(range(args.seeds), initial_configs=None if args.no_initial_config else "default")
        return
    print(f"{os.cpu_count()} cores; job: nnhp tune {' '.join(JOB)}")
    print(f"{'run':<12} {'wall s':>7} {'trials/min':>10} {'speed-up':>8} {'load':>5}  best   (idle before)")
    runs = [(f"{k} worker{'s' * (k > 1)}", lambda k=k: run_cli(k)) for k in args.workers]
    if args.dask:
        runs.append(("2 dask", run_dask))
    # Rounds of one run each, so that the other jobs on a shared machine weigh on every kind of
    # run alike; a speed-up is against the first kind's run of the same round.
    for _ in range(args.repeats):
        base = None
        for name, run in runs:
            idle = wait_for_idle_cores(args.wait_idle) if args.wait_idle else idle_share()
            seconds, load, best = run()
            print(f"{name:<12} {seconds:7.1f} {60 * TRIALS / seconds:10.1f} "
                  f"{'' if base is None else f'{base / seconds:7.2f}x':>8} {load:5.2f}  {best}"
                  + ("" if idle is None else f"  ({100 * idle:.0f}% idle)"), flush=True)
            base = seconds if base is None else base


if __name__ == "__main__":
    main()
