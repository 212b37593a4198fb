"""The benchmark written out: a Markdown report, CSV, JSON and three plots.

* ``results.md``: the ranking (AlgoPerf score, workloads whose target was reached, the
  learning-rate window, steps to target per workload), then one table per workload (final validation and test metric as
  median [IQR], steps and seconds to target, overhead per step against SGD, the best
  configuration);
* ``results.csv``: one row per workload and submission, every number of ``results.md``;
* ``results.json``: the settings, workloads and targets, rows, performance ratios, scores,
  ranking, the seed runs' curves and the learning-rate sweeps;
* ``profiles.png``: the performance profiles rho(tau) (matplotlib, when installed);
* ``curves.png``: validation metric against steps, median over seeds with an IQR band;
* ``lr_sensitivity.png``: final validation metric against the learning rate -- the sweep around
  the best configuration (lines) and every tuning trial (dots).
"""
from __future__ import annotations

import csv
import json
import math
import os

import numpy

from .metrics import TAU_MAX, performance_profile
from .results import DEFAULTS_SUFFIX, BenchmarkResult

__all__ = ["ranking_table", "markdown", "write_report", "plot_profiles", "plot_curves", "plot_lr_sensitivity"]


def _number(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "miss"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _spread(row: dict, key: str) -> str:
    return (f"{_number(row[key + '_median'])} [{_number(row[key + '_q25'])}, {_number(row[key + '_q75'])}]"
            if row[key + "_median"] is not None and not math.isnan(row[key + "_median"]) else "-")


def ranking_table(result: BenchmarkResult) -> str:
    """The ranking as a Markdown table: score, workloads reached, the learning-rate window (sweep
    rates ending within 25% of the target, over all workloads), steps to target on each workload."""
    names = [w["name"] for w in result.workloads]
    lines = ["| rank | submission | AlgoPerf score | targets reached | lr window | "
             + " | ".join(names) + " |",
             "|---:|---|---:|---:|---:|" + "---:|" * len(names)]
    for rank, submission in enumerate(result.ranking, 1):
        rows = [result.row(name, submission) for name in names]
        steps = [row["steps_to_target"] for row in rows]
        reached = sum(math.isfinite(s) for s in steps)
        window = (f"{sum(row['lr_window'] for row in rows)}/{sum(row['lr_points'] for row in rows)}"
                  if rows[0]["lr_window"] is not None else "-")
        lines.append(f"| {rank} | {submission} | {result.scores[submission]:.3f} | {reached}/{len(names)} | "
                     f"{window} | " + " | ".join(_number(s) for s in steps) + " |")
    return "\n".join(lines)


def _workload_table(result: BenchmarkResult, workload: dict) -> str:
    metric = "error" if workload["metric"] == "error" else "loss"
    lines = [f"| submission | val {metric} median [IQR] | test {metric} median [IQR] | steps to target "
             f"| studies reaching | seconds to target | s/step vs SGD | configuration |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for submission in result.ranking:
        row = result.row(workload["name"], submission)
        config = ", ".join(f"{k}={_number(v, 3)}" for k, v in (row["config"] or {}).items())
        lines.append(f"| {submission} | {_spread(row, 'val')} | {_spread(row, 'test')} | "
                     f"{_number(row['steps_to_target'])} | {row['studies_reaching_target']}/{row['studies']} | "
                     f"{_number(row['seconds_to_target'], 3)} | {_number(row['overhead_vs_sgd'], 3)} | {config} |")
    return "\n".join(lines)


def markdown(result: BenchmarkResult) -> str:
    """The whole report as Markdown (``results.md``)."""
    settings = result.settings
    parts = ["# Optimizer benchmark", "",
             f"{len(result.workloads)} workloads, {len(settings['optimizers'])} optimizers; each tuned in "
             f"{settings['studies']} studies of {settings['trials']} trials ({settings['searcher']} search over "
             f"its own hyperparameters), the best configuration rerun with {settings['seeds']} seeds; "
             f"`@defaults`: PyTorch's defaults, untuned. Times are steps to the target (AlgoPerf rule: "
             f"fastest trial per study, median over studies; 'miss' = never reached). Score: the integral of "
             f"the performance profile over [1, {TAU_MAX:g}], divided by {TAU_MAX - 1:g}.", "",
             "## Ranking", "", ranking_table(result), "", "## Workloads", ""]
    for workload in result.workloads:
        parts += [f"### {workload['name']}: {workload['description']}", "",
                  f"{workload['epochs']} epochs, batch {workload['batch_size']}; target: validation "
                  f"{workload['metric']} <= {_number(workload['target'])} ({workload['target_source']}; "
                  f"the rule on this run gives {_number(workload['derived_target'])}).", "",
                  _workload_table(result, workload), ""]
    return "\n".join(parts)


def _plain(value):
    """JSON has no inf/nan: write them as strings that say what they are."""
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else "-inf" if value < 0 else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write_report(result: BenchmarkResult, folder: str) -> list[str]:
    """Write the files of the module docstring into ``folder``; returns their paths."""
    os.makedirs(folder, exist_ok=True)
    written = []
    path = os.path.join(folder, "results.md")
    with open(path, "w") as handle:
        handle.write(markdown(result) + "\n")
    written.append(path)
    path = os.path.join(folder, "results.csv")
    columns = [key for key in result.rows[0] if key != "config"] + ["score", "config"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in result.rows:
            writer.writerow({**row, "score": round(result.scores[row["submission"]], 6),
                             "config": json.dumps(row["config"], sort_keys=True)})
    written.append(path)
    path = os.path.join(folder, "results.json")
    document = {"settings": result.settings, "workloads": result.workloads, "ranking": result.ranking,
                "scores": result.scores, "ratios": result.ratios, "rows": result.rows,
                "curves": {f"{w}/{s}": c for (w, s), c in result.curves.items()},
                "lr_sweeps": {f"{w}/{o}": [{"lr": lr, "factor": f, "final": v} for lr, f, v in sweep]
                              for (w, o), sweep in result.sweeps.items()}}
    with open(path, "w") as handle:
        json.dump(_plain(document), handle, indent=1)
    written.append(path)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return written
    for plot, name in ((plot_profiles, "profiles.png"), (plot_curves, "curves.png"),
                       (plot_lr_sensitivity, "lr_sensitivity.png")):
        written.append(plot(result, os.path.join(folder, name)))
    return written


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _style(submission: str, colors: dict) -> dict:
    optimizer = submission.removesuffix(DEFAULTS_SUFFIX)
    return {"color": colors[optimizer], "linestyle": "--" if submission.endswith(DEFAULTS_SUFFIX) else "-"}


def _colors(result: BenchmarkResult) -> dict:
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf"]
    return {name: palette[i % len(palette)] for i, name in enumerate(result.settings["optimizers"])}


def plot_profiles(result: BenchmarkResult, path: str) -> str:
    """rho(tau) per submission (dashed: defaults), tau from 1 to TAU_MAX, with the scores in the legend."""
    plt = _pyplot()
    colors = _colors(result)
    taus = numpy.linspace(1.0, TAU_MAX, 301)
    profile = performance_profile(result.ratios, taus)
    figure, axes = plt.subplots(figsize=(7, 4.2))
    for submission in result.ranking:
        axes.step(taus, profile[submission], where="post", linewidth=1.6,
                  label=f"{submission} ({result.scores[submission]:.2f})", **_style(submission, colors))
    axes.set(xlabel="tau (steps to target / best steps)", ylabel="fraction of workloads within tau",
             title="Performance profiles (AlgoPerf score in brackets)", xlim=(1, TAU_MAX), ylim=(-0.02, 1.02))
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _grid(plt, count: int, width: float = 4.0, height: float = 3.2):
    columns = min(count, 3)
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    for extra in axes.flat[count:]:
        extra.set_visible(False)
    return figure, axes.flat


def plot_curves(result: BenchmarkResult, path: str) -> str:
    """Per workload: the validation metric against steps of each tuned submission's seed runs
    (median line, IQR band) and of the defaults (dashed median), with the target."""
    plt = _pyplot()
    colors = _colors(result)
    figure, axes = _grid(plt, len(result.workloads))
    for axis, workload in zip(axes, result.workloads):
        for submission in result.ranking:
            runs = result.curves.get((workload["name"], submission), [])
            if not runs:
                continue
            length = min(len(c["val"]) for c in runs)
            if length == 0:
                continue
            values = numpy.array([c["val"][:length] for c in runs], dtype=float)
            steps = runs[0]["steps"][:length]
            low, median, high = numpy.nanpercentile(values, [25, 50, 75], axis=0)
            style = _style(submission, colors)
            axis.plot(steps, median, linewidth=1.2, label=submission, **style)
            if not submission.endswith(DEFAULTS_SUFFIX):
                axis.fill_between(steps, low, high, color=style["color"], alpha=0.15)
        if math.isfinite(workload["target"]):
            axis.axhline(workload["target"], color="black", linewidth=0.8, linestyle=":")
        axis.set(title=workload["name"], xlabel="steps", ylabel=f"validation {workload['metric']}", yscale="log")
    axes[0].legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def plot_lr_sensitivity(result: BenchmarkResult, path: str) -> str:
    """Per workload: final validation metric against the learning rate (DeepOBS's tunability):
    lines, the sweep of the best configuration's rate; dots, every tuning trial."""
    plt = _pyplot()
    colors = _colors(result)
    figure, axes = _grid(plt, len(result.workloads))
    for axis, workload in zip(axes, result.workloads):
        for optimizer in result.settings["optimizers"]:
            color = colors[optimizer]
            trials = [(lr, v) for lr, v in result.trials.get((workload["name"], optimizer), []) if v is not None]
            if trials:
                axis.scatter(*zip(*trials), s=6, color=color, alpha=0.35)
            sweep = [(lr, v) for lr, _, v in result.sweeps.get((workload["name"], optimizer), []) if v is not None]
            if sweep:
                axis.plot(*zip(*sorted(sweep)), marker="o", markersize=3, color=color, label=optimizer)
        if math.isfinite(workload["target"]):
            axis.axhline(workload["target"], color="black", linewidth=0.8, linestyle=":")
        axis.set(title=workload["name"], xlabel="learning rate", ylabel=f"final validation {workload['metric']}",
                 xscale="log", yscale="log")
        if workload["metric"] == "loss" and math.isfinite(workload["target"]) and workload["target"] > 0:
            # A nearly diverged run's loss of 1e9 would flatten everything that matters.
            axis.set_ylim(top=min(axis.get_ylim()[1], 100 * workload["target"]))
    axes[0].legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path
