"""Where the wall time of a parallel search goes: a timing breakdown of the README's digits job.

    python benchmarks/profile_parallel.py --workers 1 2       # worker processes
    python benchmarks/profile_parallel.py --workers 2 --dask  # a LocalCluster of 2 processes too
                                                              # (with and without Dask's profiler)

Runs ``nnhp.tune`` (random searcher, 30 trials, 27 epochs, digits) in this process with each
objective call timed where it runs (inside the worker), and splits the wall time into:

* ``start-up``: from ``tune()`` until the first trial starts computing (workers spawned,
  numpy/nnhp imported there, the first task sent);
* ``trials``: the search, from the first trial's start to the last one's result;
* ``refit``: the best configuration retrained after the search (serial by nature);
* per trial, summed over trials: ``compute`` (the objective inside the worker, wall and CPU
  seconds), ``to worker`` (created in the study until it starts computing: pickling, the pipe,
  waiting for a free worker) and ``back`` (computed until the driver has told the study);
* ``busy``: the share of the search's wall time the workers spent computing.

After a one-worker run it also prints how long the same trials would take on two workers with
no overhead at all (each worker taking the next trial when free): the best a second worker can do
for the search part, whatever the speed of the machinery.

It also prints the workers' idle time (between trials, and at the end while the last trial
finishes) and the BLAS threads a trial saw inside its worker (threadpoolctl).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# This checkout's nnhp, not an installed one: here, in the worker processes (spawn passes sys.path
# on) and in Dask's (they read PYTHONPATH).
ROOT = str(Path(__file__).resolve().parents[1])
sys.path.insert(0, ROOT)
os.environ["PYTHONPATH"] = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")

import nnhp  # noqa: E402
import nnhp.tuning.tuner as tuner  # noqa: E402
from nnhp.tuning.objective import TrialObjective  # noqa: E402

TRIALS, MAX_EPOCHS = 30, 27


class TimedObjective(TrialObjective):
    """The tune objective, with where and how long each call ran recorded in the trial's attrs."""

    def __call__(self, trial):
        wall, cpu = time.time(), time.process_time()
        try:
            return super().__call__(trial)
        finally:
            trial.set_attr("t_begin", wall)
            trial.set_attr("t_end", time.time())
            trial.set_attr("t_cpu", time.process_time() - cpu)
            trial.set_attr("pid", os.getpid())
            trial.set_attr("blas_threads", _blas_threads())


def _blas_threads():
    try:
        import threadpoolctl
    except ImportError:
        return None
    return [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]


def _digits():
    """The rows ``nnhp tune --data digits`` searches on: its split (test 25%, then validation 15%), standardized."""
    from nnhp.cli.common import DATA_DEFAULTS, load_split
    args = argparse.Namespace(**{**DATA_DEFAULTS, "data": "digits", "seed": 0})
    _, (X, y), (X_val, y_val), _ = load_split(args)
    return X, X_val, y, y_val


def greedy_makespan(durations, n_workers: int) -> float:
    """When ``n_workers`` would finish trials of these durations, each taking the next trial in
    turn as soon as it is free (what the study does): the search time with no overhead at all."""
    free_at = [0.0] * n_workers
    for seconds in durations:
        free_at[free_at.index(min(free_at))] += seconds
    return max(free_at)


def profile(n_workers: int, executor=None, label: str | None = None) -> None:
    X, X_val, y, y_val = _digits()
    tuner.TrialObjective = TimedObjective
    load = os.getloadavg()[0]
    started = time.time()
    result = nnhp.tune(X, y, validation_data=(X_val, y_val), searcher="random", n_trials=TRIALS,
                       max_epochs=MAX_EPOCHS, seed=0, n_workers=n_workers, executor=executor)
    wall = time.time() - started
    trials = sorted(result.study.trials, key=lambda t: t.attrs["t_begin"])
    first = trials[0].attrs["t_begin"]
    last = max(t.finished for t in trials)
    compute = sum(t.attrs["t_end"] - t.attrs["t_begin"] for t in trials)
    cpu = sum(t.attrs["t_cpu"] for t in trials)
    to_worker = sum(t.attrs["t_begin"] - t.started for t in trials)
    back = sum(t.finished - t.attrs["t_end"] for t in trials)
    search = last - first
    pids = sorted({t.attrs["pid"] for t in trials})
    # A worker's idle gaps: from the end of one of its trials to the start of its next one.
    gaps, tail = 0.0, 0.0
    for pid in pids:
        own = [t for t in trials if t.attrs["pid"] == pid]
        gaps += sum(b.attrs["t_begin"] - a.attrs["t_end"] for a, b in zip(own, own[1:]))
        tail += last - own[-1].attrs["t_end"]
    longest = max(t.attrs["t_end"] - t.attrs["t_begin"] for t in trials)
    print(f"{label or f'{n_workers} worker(s)'}: wall {wall:.2f} s (load {load:.2f}); "
          f"start-up {first - started:.2f} s, trials {search:.2f} s, refit {result.refit_seconds:.2f} s, "
          f"rest {wall - (last - started) - result.refit_seconds:.2f} s")
    print(f"  per trial (sum over {len(trials)}): compute {compute:.2f} s wall / {cpu:.2f} s CPU "
          f"(first trial {trials[0].attrs['t_end'] - first:.2f} s, longest {longest:.2f} s), "
          f"to worker {to_worker:.3f} s, back {back:.3f} s")
    print(f"  workers: {len(pids)}, busy {compute / (search * len(pids)):.0%} of the search; idle between "
          f"trials {gaps:.3f} s, idle at the end (waiting for the last trial) {tail:.2f} s, all workers summed; "
          f"BLAS threads seen in a trial {trials[0].attrs['blas_threads']}", flush=True)
    if n_workers == 1:
        in_order = sorted(trials, key=lambda t: t.id)
        wall_s = [t.attrs["t_end"] - t.attrs["t_begin"] for t in in_order]
        cpu_s = [t.attrs["t_cpu"] for t in in_order]        # what they would take on a free core
        print(f"  these trials on 2 workers with no overhead at all: {greedy_makespan(wall_s, 2):.2f} s "
              f"(half of their {sum(wall_s):.2f} s: {sum(wall_s) / 2:.2f} s); by CPU seconds "
              f"{greedy_makespan(cpu_s, 2):.2f} s of {sum(cpu_s):.2f} s", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dask", action="store_true", help="also 2 Dask workers (LocalCluster, processes)")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, nnhp from {os.path.dirname(nnhp.__file__)}")
    for k in args.workers:
        profile(k)
    if args.dask:
        import dask
        from distributed import Client, LocalCluster
        # Dask's defaults, then without its statistical profiler (a thread in every worker that
        # samples the stacks of the running task every 10 ms).
        for label, config in (("2 dask workers", {}),
                              ("2 dask workers, profiler off", {"distributed.worker.profile.enabled": False})):
            with dask.config.set(config), \
                    LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                 dashboard_address=None) as cluster, Client(cluster) as client:
                profile(2, executor=client, label=label)


if __name__ == "__main__":
    main()
