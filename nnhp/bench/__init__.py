"""Optimizer benchmarks a researcher can publish: DeepOBS's and AlgoPerf's protocol, on a CPU, in minutes.

::

    from nnhp.bench import benchmark_optimizers
    result = benchmark_optimizers(optimizers=["sgd", "momentum", "adam"], storage="bench.db")
    print(ranking_table(result)); write_report(result, "bench-out/")

or ``nnhp bench optimizers --out bench-out/``. Files, one idea each:

* ``workloads.py``: the fixed problems (data, architecture, loss, batch, epochs, target);
* ``spaces.py``: each optimizer's own search space, and its PyTorch defaults;
* ``objective.py``: one training run, recording its validation curve against steps and seconds;
* ``protocol.py``: the studies -- equal tuning budgets, seed reruns, defaults, the rate sweep;
* ``metrics.py``: time to target, AlgoPerf's tuning rule, performance profiles, the score;
* ``results.py``: the numbers per workload and submission, and the ranking;
* ``report.py``: Markdown, CSV, JSON and plots.
"""
from __future__ import annotations

from .protocol import QUICK, Budget, run_protocol
from .report import markdown, ranking_table, write_report
from .results import BenchmarkResult, summarize
from .spaces import DEFAULT_OPTIMIZERS, OPTIMIZERS
from .workloads import DEFAULT_WORKLOADS, WORKLOADS, Workload, get_workload, user_workload

__all__ = ["benchmark_optimizers", "Budget", "QUICK", "BenchmarkResult", "Workload", "WORKLOADS",
           "DEFAULT_WORKLOADS", "OPTIMIZERS", "DEFAULT_OPTIMIZERS", "get_workload", "user_workload",
           "run_protocol", "summarize", "markdown", "ranking_table", "write_report", "QUICK_EPOCH_FRACTION",
           "QUICK_OPTIMIZERS"]

#: ``quick=True`` trains each workload for this fraction of its epochs (its fixed target then
#: no longer applies and is derived from the run).
QUICK_EPOCH_FRACTION = 0.5


#: ``quick=True`` without a list of optimizers compares these: plain SGD, SGD with momentum, Adam, AdamW.
QUICK_OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")


def benchmark_optimizers(workloads=DEFAULT_WORKLOADS, optimizers=None, budget: Budget | None = None,
                         *, quick: bool = False, storage=None, workers: int = 1, seed: int = 0,
                         progress=None) -> BenchmarkResult:
    """Run (or, with the same ``storage``, resume) the benchmark and summarize it.

    ``workloads``: names in :data:`WORKLOADS` or :class:`Workload` objects; ``optimizers``:
    names in :data:`OPTIMIZERS` (default: all, or :data:`QUICK_OPTIMIZERS` with ``quick=True``); ``budget``: studies, trials, seeds, rate sweep and searcher
    (default :class:`Budget`, or :data:`QUICK` with ``quick=True``, which also halves the
    epochs); ``storage``: an SQLite path to record every run (resumable) or None (memory);
    ``workers``: trials run side by side in worker processes; ``progress(message)``: hears
    about each study.
    """
    workloads = [w if isinstance(w, Workload) else get_workload(w) for w in workloads]
    if not workloads:
        raise ValueError("no workloads to run; name at least one of " + ", ".join(WORKLOADS))
    optimizers = list(optimizers if optimizers is not None else QUICK_OPTIMIZERS if quick else DEFAULT_OPTIMIZERS)
    if not optimizers:
        raise ValueError("no optimizers to compare; name at least one of " + ", ".join(OPTIMIZERS))
    if len(set(optimizers)) != len(optimizers):
        raise ValueError(f"optimizers listed twice: {optimizers}")
    if quick:
        workloads = [w.with_epochs(max(1, round(w.epochs * QUICK_EPOCH_FRACTION))) for w in workloads]
    budget = budget or (QUICK if quick else Budget())
    records = run_protocol(workloads, optimizers, budget, storage=storage, workers=workers, seed=seed,
                           progress=progress)
    settings = {"workloads": [w.name for w in workloads], "optimizers": optimizers, "studies": budget.studies,
                "trials": budget.trials, "seeds": budget.seeds, "searcher": budget.searcher,
                "lr_factors": list(budget.lr_factors), "seed": seed, "quick": quick, "workers": workers}
    return summarize(records, workloads, optimizers, settings)
