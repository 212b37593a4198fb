"""Benchmark parallel trials: the README's digits job with 1 and 2 worker processes (and Dask).

    python benchmarks/bench_parallel.py                    # 1 and 2 workers, 2 repeats each
    python benchmarks/bench_parallel.py --dask             # also 2 Dask workers on 127.0.0.1
    python benchmarks/bench_parallel.py --asha             # ASHA against Hyperband, 2 workers each

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


def run_asha_against_hyperband(max_epochs: int = 27) -> None:
    """Hyperband (one iteration) with 2 worker processes, then ASHA with 2 until it reaches
    Hyperband's best validation accuracy (or twice Hyperband's time): wall seconds to that score."""
    import nnhp

    X, X_val, y, y_val = _digits()
    load = os.getloadavg()[0]
    started = time.monotonic()
    hyperband = nnhp.tune(X, y, validation_data=(X_val, y_val), searcher="hyperband", max_epochs=max_epochs,
                          seed=0, n_workers=2, refit=False)
    hb_seconds = time.monotonic() - started
    target = hyperband.best_value
    reached = {}

    def until_target(study, trial):
        if trial.state == "complete" and trial.value >= target and "at" not in reached:
            reached["at"] = time.monotonic() - started
            study.stop()

    load_asha = os.getloadavg()[0]
    started = time.monotonic()
    asha = nnhp.tune(X, y, validation_data=(X_val, y_val), searcher="asha", max_epochs=max_epochs, seed=0,
                     n_workers=2, refit=False, timeout=2 * hb_seconds, n_trials=10_000, callbacks=[until_target])
    print(f"hyperband: {len(hyperband.study.trials)} trials, best {100 * target:.2f}% in {hb_seconds:.1f} s "
          f"(load {load:.2f})")
    print(f"asha:      {len(asha.study.trials)} trials, best {100 * asha.best_value:.2f}%, "
          + (f"reached {100 * target:.2f}% after {reached['at']:.1f} s" if reached
             else f"did not reach {100 * target:.2f}% in {2 * hb_seconds:.1f} s") + f" (load {load_asha:.2f})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dask", action="store_true", help="also 2 Dask workers on 127.0.0.1")
    parser.add_argument("--asha", action="store_true", help="only ASHA against Hyperband, 2 workers each")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="before each round, wait up to this long for the cores to be 90%% idle")
    args = parser.parse_args(argv)
    if args.asha:
        run_asha_against_hyperband()
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
