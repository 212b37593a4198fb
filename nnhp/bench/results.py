"""From the protocol's trials to the benchmark's numbers: targets, times, metrics, profiles, the ranking.

Each optimizer enters twice, as two *submissions*: ``adam`` (tuned: the protocol's studies and
the best configuration's seed reruns) and ``adam@defaults`` (PyTorch's defaults, untuned).

Per workload and submission (:attr:`BenchmarkResult.rows`):

* ``target``: the workload's (its registry value, else derived from this run's tuned studies
  by the AlgoPerf rule of :mod:`nnhp.bench.metrics`);
* ``steps_to_target`` / ``seconds_to_target``: tuned, AlgoPerf's external-tuning time (each
  study's fastest trial, the median over studies, a miss is ``inf``); defaults, the median
  over the seeds (each seed a study of one trial);
* ``val`` and ``test``: the final validation and test metrics of the seed reruns, median and
  IQR (for defaults, of the defaults runs);
* ``seconds_per_step`` and ``overhead_vs_sgd``: seconds per training step, measured with every
  optimizer side by side in one process (:mod:`nnhp.bench.overhead`), and its ratio to SGD's.

* ``lr_window`` (tuned only): how many of the sweep's learning rates (the best configuration's
  rate times 1/8 .. 8) end within 25% of the target, of ``lr_points``: DeepOBS's tunability --
  a wide window forgives a rate chosen roughly.

Aggregates over workloads: the performance ratios and profiles on *steps* to target (steps
are deterministic, so one seed gives one answer; seconds are reported beside them), the
AlgoPerf score per submission, and the ranking by score.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from . import metrics
from .workloads import Workload

__all__ = ["BenchmarkResult", "summarize", "DEFAULTS_SUFFIX"]

DEFAULTS_SUFFIX = "@defaults"
#: The learning-rate window counts the sweep's rates that end within this factor of the target.
WINDOW = 1.25


@dataclass
class BenchmarkResult:
    """Everything a report needs; :mod:`nnhp.bench.report` writes it out."""

    settings: dict
    workloads: list                         # dicts: name, description, metric, epochs, target, target_source
    rows: list                              # one dict per (workload, submission)
    ratios: dict                            # submission -> workload -> r
    scores: dict                            # submission -> AlgoPerf score
    ranking: list                           # submissions, best first
    curves: dict = field(default_factory=dict)      # (workload, submission) -> list of curves (seed runs)
    sweeps: dict = field(default_factory=dict)      # (workload, optimizer) -> [(lr, factor, final), ...]
    trials: dict = field(default_factory=dict)      # (workload, optimizer) -> [(lr, final), ...] every tuning trial

    def row(self, workload: str, submission: str) -> dict:
        return next(r for r in self.rows if r["workload"] == workload and r["submission"] == submission)


def _finite_or_inf(value) -> float:
    return math.inf if value is None or not math.isfinite(value) else float(value)


def _time(trial: dict, target: float, clock: str) -> float:
    curve = trial.get("curve") or {}
    return metrics.time_to_target(curve.get(clock, []), curve.get("val", []), target)


def _median(values) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(values) if values else None


def summarize(records: dict, workloads: list[Workload], optimizers: list[str], settings: dict) -> BenchmarkResult:
    """The numbers of the module docstring from :func:`nnhp.bench.protocol.run_protocol`'s records."""
    submissions = [*optimizers, *(name + DEFAULTS_SUFFIX for name in optimizers)]
    rows, described, curves, sweeps, tried = [], [], {}, {}, {}
    steps_by_submission = {name: {} for name in submissions}
    for workload in workloads:
        by_optimizer = records[workload.name]
        rerun_finals = {name: [_finite_or_inf(t["value"]) for t in by_optimizer[name]["seeds"]]
                        for name in optimizers}
        if workload.target is not None:
            target, source = float(workload.target), "registry"
        else:
            target, source = metrics.derive_target(rerun_finals), "derived from this run (AlgoPerf rule)"
        described.append({"name": workload.name, "description": workload.description, "metric": workload.metric,
                          "epochs": workload.epochs, "batch_size": workload.batch_size, "target": target,
                          "target_source": source,
                          "derived_target": metrics.derive_target(rerun_finals)})
        seconds_per_step = {name: by_optimizer[name].get("step_seconds") for name in optimizers}
        sgd_speed = seconds_per_step.get("sgd")
        for name in optimizers:
            entry = by_optimizer[name]
            sweeps[(workload.name, name)] = [(t["params"]["lr"], t["factor"], t["value"]) for t in entry["lr_sweep"]]
            tried[(workload.name, name)] = [(t["params"]["lr"], t["value"]) for s in entry["tune"] for t in s]
            overhead = (seconds_per_step[name] / sgd_speed
                        if sgd_speed and seconds_per_step[name] is not None else None)
            for submission, runs, studies in (
                    (name, entry["seeds"], entry["tune"]),
                    (name + DEFAULTS_SUFFIX, entry["defaults"], [[run] for run in entry["defaults"]])):
                steps = metrics.workload_time([metrics.study_time(_time(t, target, "steps") for t in study)
                                               for study in studies])
                seconds = metrics.workload_time([metrics.study_time(_time(t, target, "seconds") for t in study)
                                                 for study in studies])
                steps_by_submission[submission][workload.name] = steps
                val = metrics.median_iqr([_finite_or_inf(t["value"]) for t in runs])
                test = metrics.median_iqr([t.get("test") for t in runs if t["state"] == "complete"])
                rows.append({
                    "workload": workload.name, "submission": submission, "optimizer": name,
                    "tuned": submission == name, "metric": workload.metric, "target": target,
                    "steps_to_target": steps, "seconds_to_target": seconds,
                    "studies_reaching_target": sum(
                        metrics.study_time(_time(t, target, "steps") for t in study) < math.inf for study in studies),
                    "studies": len(studies),
                    "trials": sum(len(study) for study in studies) if submission == name else len(runs),
                    "seed_runs": len(runs),
                    "seed_steps_to_target": _median(_time(t, target, "steps") for t in runs),
                    "val_median": val[0], "val_q25": val[1], "val_q75": val[2],
                    "test_median": test[0], "test_q25": test[1], "test_q75": test[2],
                    "diverged_runs": sum(t["state"] != "complete" for t in runs),
                    "seconds_per_step": seconds_per_step[name], "overhead_vs_sgd": overhead,
                    "lr_window": sum(t["value"] is not None and t["value"] <= WINDOW * target
                                     for t in entry["lr_sweep"]) if submission == name else None,
                    "lr_points": len(entry["lr_sweep"]) if submission == name else None,
                    "config": entry["best"] if submission == name else
                    {key: value for key, value in runs[0]["params"].items() if key != "seed"} if runs else None})
                curves[(workload.name, submission)] = [t["curve"] for t in runs if t.get("curve")]
    ratios = metrics.performance_ratios(steps_by_submission)
    scores = metrics.algoperf_score(ratios)
    reached = {name: sum(math.isfinite(t) for t in steps_by_submission[name].values()) for name in submissions}
    ranking = sorted(submissions, key=lambda name: (-round(scores[name], 12), -reached[name], submissions.index(name)))
    return BenchmarkResult(settings, described, rows, ratios, scores, ranking, curves, sweeps, tried)
