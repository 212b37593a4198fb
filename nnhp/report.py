"""Reports: a stored study as tables and pictures a person would rather look at.

``write_report("study.db", "report/")`` reads every study in an SQLite study file and writes,
per study:

- ``NAME-importance.png``: each hyperparameter's PED-ANOVA importance with its bootstrap interval
  (:mod:`nnhp.search.importance`, seed 0: the numbers ``nnhp importance`` prints);
- ``NAME-best.png``: the best value so far against trials finished, epochs trained and wall time;
- ``NAME-history.png``: each trial's value in order, failed trials marked, and the
  best value so far as a step line (how fast the search found good regions);
- ``NAME-params.png``: value against each numeric hyperparameter (where the good
  regions are; log axes for parameters spanning decades);
- ``NAME-categorical.png``: a box and the points per choice of each categorical hyperparameter;
- ``NAME-parallel.png``: parallel coordinates, one line per trial coloured by value;
- ``NAME-rungs.png``: with budgets (Hyperband, ASHA, BOHB), each trial at its rung and a line
  for each promotion (a trial continued from its parent at a larger budget);
- ``NAME-curves.png``: the intermediate values trials reported (e.g. validation loss
  per epoch), grouped by budget where there are several, else the best trials highlighted;
- ``NAME-trials.csv``: every trial;

and one ``index.html`` holding the summary tables, the pictures and every trial in a table that
sorts by any column (a few lines of JavaScript on the page, nothing fetched), states coloured,
inactive parameters blank, a failed trial's error in its row. Plots need
matplotlib (the ``plot`` extra); without it the tables and CSV files are still written.

Read-only, and robust
---------------------
The study file is opened with SQLite's read-only mode (``SQLiteStorage(read_only=True)``): the
report writes nothing into it, changes neither its bytes nor its journal mode, creates no schema
in an empty file and needs no write permission; trials still running in another process are left
alone. ``NAME`` is the study's name made safe for a file name, with a short hash of the real name
appended whenever the two differ, so ``a b`` and ``a_b`` never share files. Study names and
parameter names are escaped for matplotlib (``$`` starts its math mode) and for HTML. A study that
cannot be read or drawn gets a section saying why; the others are reported all the same.
"""
from __future__ import annotations

import csv
import hashlib
import html
import math
import os
import re

from .search.importance import format_importance, importance
from .search.sqlite import open_storage
from .search.storage import StorageError


def load_studies(path: str) -> list[dict]:
    """Every study in an SQLite study file, read-only: name, direction and trials (as plain records);
    a study whose records cannot be read comes with ``error`` (and no trials) instead."""
    storage = open_storage(os.fspath(path), read_only=True)
    try:
        studies = []
        for name in storage.study_names():
            try:
                study_id, direction, _space = storage.open_study(name, None, None)
                studies.append({"name": name, "direction": direction, "trials": storage.get_trials(study_id)})
            except StorageError as exc:
                studies.append({"name": name, "direction": "unknown", "trials": [], "error": str(exc)})
        return studies
    finally:
        storage.close()


def _ranked(study: dict) -> list:
    complete = [t for t in study["trials"] if t.state == "complete" and t.value is not None]
    return sorted(complete, key=lambda t: t.value, reverse=study["direction"] == "maximize")


def _safe_name(name: str) -> str:
    """A file-name stem for a study: its name where that is safe, else the safe part plus a hash
    of the real name (``a b`` -> ``a_b-5d41402a``), so that two studies never share a stem."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip(".") or "study"
    return safe if safe == name else f"{safe}-{_short_hash(name)}"


def _short_hash(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:8]


def _mathtext_safe(text) -> str:
    """``text`` shown literally by matplotlib, whose ``$...$`` would start math mode."""
    return str(text).replace("$", r"\$")


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def text_table(study: dict, top: int = 10) -> str:
    """The best ``top`` completed trials as a plain-text table."""
    if study.get("error"):
        return f"study {study['name']!r}: cannot be read ({study['error']})"
    ranked = _ranked(study)[:top]
    if not ranked:
        return f"study {study['name']!r}: no completed trials"
    keys = sorted({key for trial in ranked for key in trial.params})
    header = ["rank", "trial", "value", "budget"] + keys
    rows = [[str(i + 1), str(t.id), f"{t.value:.5g}", _format(t.budget) if t.budget is not None else "-"]
            + [_format(t.params.get(key, "")) for key in keys] for i, t in enumerate(ranked)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def compact_table(study: dict, top: int = 10, width: int | None = None) -> str:
    """The best ``top`` completed trials for a terminal: only the parameters that differ among
    those rows get a column (the rest are one line below: the same in every row), blank where a
    parameter is inactive, and columns that would pass ``width`` (default: the terminal's) are left
    out and named."""
    import shutil

    if study.get("error"):
        return f"study {study['name']!r}: cannot be read ({study['error']})"
    ranked = _ranked(study)[:top]
    if not ranked:
        return f"study {study['name']!r}: no completed trials"
    width = width or shutil.get_terminal_size((100, 24)).columns
    keys = sorted({key for trial in ranked for key in trial.params})
    shown = lambda t, key: _format(t.params[key]) if key in t.params else ""
    varying = [key for key in keys if len({shown(t, key) for t in ranked}) > 1]
    constant = [f"{key}={shown(ranked[0], key)}" for key in keys if key not in varying and key in ranked[0].params]
    has_budget = any(t.budget is not None for t in ranked)
    header = ["rank", "trial", "value"] + (["budget"] if has_budget else [])
    rows = [[str(i + 1), str(t.id), f"{t.value:.5g}"] + ([_format(t.budget) if t.budget is not None else ""]
            if has_budget else []) for i, t in enumerate(ranked)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    left_out = []
    for key in varying:
        column = [shown(t, key) for t in ranked]
        column_width = max(len(key), *(len(c) for c in column))
        if sum(widths) + 2 * len(widths) + column_width > width:
            left_out.append(key)
            continue
        header.append(key)
        widths.append(column_width)
        for row, cell in zip(rows, column):
            row.append(cell)
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    if constant:
        lines.append("same in every row: " + ", ".join(constant))
    if left_out:
        lines.append(f"not shown (terminal width {width}): " + ", ".join(left_out))
    return "\n".join(lines)


def write_trials_csv(study: dict, path: str) -> str:
    keys = sorted({key for trial in study["trials"] for key in trial.params})
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "state", "value", "budget", "parent_id", "duration_s", "error"] + keys)
        for t in study["trials"]:
            writer.writerow([t.id, t.state, t.value, t.budget, t.parent_id, t.duration, t.error or ""]
                            + [t.params.get(key, "") for key in keys])
    return path


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(figure, plt, path: str) -> str:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_history(study: dict, path: str) -> str:
    plt = _pyplot()
    trials = study["trials"]
    maximize = study["direction"] == "maximize"
    figure, axes = plt.subplots(figsize=(7, 4))
    done = [(t.id, t.value) for t in trials if t.state == "complete" and t.value is not None]
    if done:
        ids, values = zip(*done)
        axes.scatter(ids, values, s=14, color="tab:blue", label="complete")
        best, line = (-math.inf if maximize else math.inf), []
        for value in values:
            best = max(best, value) if maximize else min(best, value)
            line.append(best)
        axes.step(ids, line, where="post", color="tab:red", label="best so far")
        failed = [t.id for t in trials if t.state == "failed"]
        if failed:
            top = max(values) if not maximize else min(values)
            axes.scatter(failed, [top] * len(failed), marker="x", color="gray", label="failed")
        if min(values) > 0 and max(values) / min(values) > 50:
            axes.set_yscale("log")
    axes.set(xlabel="trial", ylabel="value",
             title=_mathtext_safe(f"{study['name']}: search history ({study['direction']})"))
    axes.legend(fontsize=8)
    return _save(figure, plt, path)


def plot_params(study: dict, path: str, max_params: int = 9) -> str | None:
    plt = _pyplot()
    done = [t for t in study["trials"] if t.state == "complete" and t.value is not None]
    numeric = sorted({key for t in done for key, v in t.params.items()
                      if isinstance(v, (int, float)) and not isinstance(v, bool)})[:max_params]
    if not numeric:
        return None
    columns = min(3, len(numeric))
    rows = -(-len(numeric) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
    for axis, key in zip(axes.flat, numeric):
        points = [(t.params[key], t.value) for t in done if key in t.params]
        xs, ys = zip(*points)
        axis.scatter(xs, ys, s=10)
        if min(xs) > 0 and max(xs) / min(xs) > 100:
            axis.set_xscale("log")
        axis.set(xlabel=_mathtext_safe(key), ylabel="value")
    for axis in list(axes.flat)[len(numeric):]:
        axis.set_visible(False)
    figure.suptitle(_mathtext_safe(f"{study['name']}: value against each numeric hyperparameter"))
    return _save(figure, plt, path)


def plot_curves(study: dict, path: str, highlight: int = 5) -> str | None:
    plt = _pyplot()
    with_curves = [t for t in study["trials"] if t.intermediate]
    if not with_curves:
        return None
    best_ids = {t.id for t in _ranked(study)[:highlight]}
    # With several budgets (Hyperband's rungs) the curves are grouped by budget: one colour each.
    budgets = sorted({t.budget for t in with_curves if t.budget is not None})
    by_budget = len(budgets) > 1
    palette = plt.get_cmap("plasma")
    labelled = set()
    figure, axes = plt.subplots(figsize=(7, 4))
    for trial in with_curves:
        steps = sorted(trial.intermediate, key=float)
        values = [trial.intermediate[s] for s in steps]
        steps = [float(s) for s in steps]
        if by_budget and trial.budget is not None:
            rank = budgets.index(trial.budget)
            label = None if trial.budget in labelled else f"budget {_format(trial.budget)}"
            labelled.add(trial.budget)
            axes.plot(steps, values, color=palette(rank / len(budgets)), alpha=0.5, linewidth=0.9, label=label)
        elif trial.id in best_ids:
            axes.plot(steps, values, linewidth=1.8, label=f"trial {trial.id}")
        else:
            axes.plot(steps, values, color="gray", alpha=0.3, linewidth=0.8)
    axes.set(xlabel="step (epoch)", ylabel="reported value", title=_mathtext_safe(f"{study['name']}: learning curves"))
    if best_ids or labelled:
        axes.legend(fontsize=8)
    return _save(figure, plt, path)


def _categorical_keys(trials) -> list[str]:
    """Parameters drawn per choice: strings, booleans, and numbers with at most six distinct values."""
    keys = sorted({key for t in trials for key in t.params})
    categorical = []
    for key in keys:
        values = [t.params[key] for t in trials if key in t.params]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if not numeric or len({repr(v) for v in values}) <= 6:
            categorical.append(key)
    return categorical


def plot_categorical(study: dict, path: str, max_params: int = 9) -> str | None:
    """One strip-and-box panel per categorical parameter: the value of every trial, per choice."""
    plt = _pyplot()
    done = [t for t in study["trials"] if t.state == "complete" and t.value is not None]
    keys = _categorical_keys(done)[:max_params]
    if not keys:
        return None
    columns = min(3, len(keys))
    rows = -(-len(keys) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
    jitter = _jitter(len(done))
    for axis, key in zip(axes.flat, keys):
        choices = sorted({repr(t.params[key]) for t in done if key in t.params})
        groups = [[t.value for t in done if key in t.params and repr(t.params[key]) == c] for c in choices]
        axis.boxplot(groups, positions=range(len(choices)), widths=0.5, showfliers=False)
        for i, (choice, group) in enumerate(zip(choices, groups)):
            axis.scatter(i + jitter[:len(group)], group, s=9, alpha=0.6)
        axis.set_xticks(range(len(choices)))
        axis.set_xticklabels([_mathtext_safe(c.strip("'")) for c in choices], rotation=20, fontsize=8)
        axis.set(xlabel=_mathtext_safe(key), ylabel="value")
    for axis in list(axes.flat)[len(keys):]:
        axis.set_visible(False)
    figure.suptitle(_mathtext_safe(f"{study['name']}: value per choice of each categorical hyperparameter"))
    return _save(figure, plt, path)


def _jitter(n: int):
    import numpy as np
    return np.random.default_rng(0).uniform(-0.15, 0.15, n)


def plot_parallel(study: dict, path: str) -> str | None:
    """Parallel coordinates: one line per completed trial across every parameter (scaled to [0, 1],
    log where it spans decades, choices as evenly spaced codes), coloured by value; a line skips
    a parameter inactive in its trial."""
    import numpy as np
    plt = _pyplot()
    done = [t for t in study["trials"] if t.state == "complete" and t.value is not None]
    keys = sorted({key for t in done for key in t.params})
    if not done or not keys:
        return None
    columns = []
    for key in keys:
        values = [t.params.get(key) for t in done]
        present = [v for v in values if v is not None]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
            x = np.array([np.nan if v is None else float(v) for v in values])
            if np.nanmin(x) > 0 and np.nanmax(x) / np.nanmin(x) > 100:
                x = np.log10(x)
        else:
            choices = sorted({repr(v) for v in present})
            x = np.array([np.nan if v is None else choices.index(repr(v)) for v in values], dtype=float)
        low, high = np.nanmin(x), np.nanmax(x)
        columns.append((x - low) / (high - low) if high > low else np.full_like(x, 0.5))
    grid = np.array(columns).T                      # trials x params
    value = np.array([t.value for t in done])
    order = np.argsort(-value if study["direction"] == "minimize" else value)   # best drawn last, on top
    colour = plt.get_cmap("viridis_r" if study["direction"] == "minimize" else "viridis")
    norm = plt.Normalize(value.min(), value.max())
    figure, axes = plt.subplots(figsize=(max(6, 1.3 * len(keys)), 4))
    for i in order:
        axes.plot(range(len(keys)), grid[i], color=colour(norm(value[i])), alpha=0.6, linewidth=0.9)
    axes.set_xticks(range(len(keys)))
    axes.set_xticklabels([_mathtext_safe(k) for k in keys], rotation=20, fontsize=8)
    axes.set_yticks([])
    figure.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=colour), ax=axes, label="value")
    axes.set_title(_mathtext_safe(f"{study['name']}: parallel coordinates (a gap: inactive there)"))
    return _save(figure, plt, path)


def plot_rungs(study: dict, path: str) -> str | None:
    """Hyperband/ASHA rungs: each trial at its budget, a line from a parent to the trial that
    continued it at the next rung (a promotion). None without at least two budgets."""
    plt = _pyplot()
    trials = [t for t in study["trials"] if t.budget is not None]
    budgets = sorted({t.budget for t in trials})
    if len(budgets) < 2:
        return None
    by_id = {t.id: t for t in trials}
    figure, axes = plt.subplots(figsize=(7, 4))
    for t in trials:
        parent = by_id.get(t.parent_id)
        if parent is not None and parent.value is not None and t.value is not None:
            axes.plot([parent.budget, t.budget], [parent.value, t.value], color="tab:orange", alpha=0.5, linewidth=0.8)
    done = [t for t in trials if t.value is not None]
    axes.scatter([t.budget for t in done], [t.value for t in done], s=12, color="tab:blue", zorder=3)
    for budget in budgets:
        count = sum(t.budget == budget for t in trials)
        axes.annotate(f"{count}", (budget, 1.0), xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=8)
    axes.set_xscale("log")
    axes.set(xlabel="budget (rung); the numbers: configurations per rung", ylabel="value",
             title=_mathtext_safe(f"{study['name']}: rungs and promotions (orange)"))
    return _save(figure, plt, path)


def _epochs(trial) -> float:
    for source in (trial.attrs.get("epochs"), trial.budget):
        if isinstance(source, (int, float)) and not isinstance(source, bool):
            return float(source)
    return float(len(trial.intermediate) or 1)


def best_so_far(study: dict) -> dict:
    """The best value after each completed trial, against the trial count, the epochs trained in
    all and the wall time since the first trial started (in finishing order)."""
    finished = sorted((t for t in study["trials"] if t.finished is not None), key=lambda t: t.finished)
    if not finished:
        return {"trials": [], "epochs": [], "seconds": [], "best": []}
    start = min(t.started for t in study["trials"])
    maximize = study["direction"] == "maximize"
    best, epochs, series = None, 0.0, {"trials": [], "epochs": [], "seconds": [], "best": []}
    for count, t in enumerate(finished, 1):
        epochs += _epochs(t)
        if t.state == "complete" and t.value is not None:
            if best is None or (t.value > best if maximize else t.value < best):
                best = t.value
        if best is not None:
            series["trials"].append(count)
            series["epochs"].append(epochs)
            series["seconds"].append(t.finished - start)
            series["best"].append(best)
    return series


def plot_best_so_far(study: dict, path: str) -> str | None:
    plt = _pyplot()
    series = best_so_far(study)
    if not series["best"]:
        return None
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.5), sharey=True)
    for axis, key, label in zip(axes, ("trials", "epochs", "seconds"), ("trials finished", "epochs trained", "wall time (s)")):
        axis.step(series[key], series["best"], where="post", color="tab:red")
        axis.set(xlabel=label)
    axes[0].set_ylabel("best value so far")
    figure.suptitle(_mathtext_safe(f"{study['name']}: best so far"))
    return _save(figure, plt, path)


def plot_importance(study: dict, path: str, results=None) -> str | None:
    plt = _pyplot()
    results = [r for r in (results if results is not None else importance(study)) if not math.isnan(r.value)]
    if not results:
        return None
    figure, axes = plt.subplots(figsize=(7, 0.4 * len(results) + 1.2))
    names = [_mathtext_safe(r.name) for r in results][::-1]
    values = [r.value for r in results][::-1]
    # A percentile interval need not contain the estimate (small samples): draw the part that does.
    errors = [[max(0.0, r.value - r.low) for r in results][::-1], [max(0.0, r.high - r.value) for r in results][::-1]]
    axes.barh(names, values, xerr=errors, color="tab:green", capsize=3)
    axes.axvline(0, color="gray", linewidth=0.8)
    axes.set(xlabel="PED-ANOVA importance (95% bootstrap interval)",
             title=_mathtext_safe(f"{study['name']}: hyperparameter importance"))
    return _save(figure, plt, path)


def _study_files(study: dict, stem: str, ranking) -> tuple[list[str], list[str]]:
    """(every file written, the images among them) for one study."""
    written = [write_trials_csv(study, f"{stem}-trials.csv")]
    images = []
    plots = ((plot_importance, "importance"), (plot_best_so_far, "best"), (plot_history, "history"),
             (plot_params, "params"), (plot_categorical, "categorical"), (plot_parallel, "parallel"),
             (plot_rungs, "rungs"), (plot_curves, "curves"))
    try:
        for plot, suffix in plots:
            extra = {"results": ranking} if plot is plot_importance else {}
            image = plot(study, f"{stem}-{suffix}.png", **extra)
            if image:
                images.append(image)
    except ImportError:
        images = []
    return written + images, images


_STATE_COLOURS = {"complete": "#e6f4ea", "failed": "#fce8e6", "pruned": "#fef7e0", "running": "#e8f0fe"}

# A click on a header sorts by that column (again: the other way); numbers as numbers, blanks last.
_SORT_SCRIPT = """<script>
document.querySelectorAll('table.trials th').forEach(function (th, column) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0], rows = Array.from(body.rows);
    var up = th.dataset.order !== 'up'; th.dataset.order = up ? 'up' : 'down';
    function key(row) { var t = row.cells[column].textContent.trim(), n = Number(t);
      return t === '' ? null : (isNaN(n) ? t : n); }
    rows.sort(function (a, b) { var x = key(a), y = key(b);
      if (x === null || y === null) return (x === null) - (y === null);
      var c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === 'number' ? -1 : 1);
      return up ? c : -c; });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
</script>"""


def html_table(study: dict) -> str:
    """Every trial as an HTML table sortable by any column (click a header): one row per trial,
    states coloured, an inactive parameter left blank, a failed trial's error in its row."""
    keys = sorted({key for trial in study["trials"] for key in trial.params})
    header = ["trial", "state", "value", "budget", "parent", "seconds"] + keys + ["error"]
    rows = []
    for t in study["trials"]:
        cells = [t.id, t.state, t.value, t.budget, t.parent_id,
                 None if t.duration is None else round(t.duration, 2)]
        cells += [t.params.get(key) for key in keys] + [t.error]
        text = ["" if c is None else _format(c) for c in cells]
        colour = _STATE_COLOURS.get(t.state, "#ffffff")
        rows.append(f'<tr style="background:{colour}">' + "".join(f"<td>{html.escape(c)}</td>" for c in text) + "</tr>")
    return ('<table class="trials"><thead><tr>' + "".join(f"<th>{html.escape(h)}</th>" for h in header)
            + "</tr></thead><tbody>\n" + "\n".join(rows) + "</tbody></table>")


def _section(study: dict, images: list[str], problem: str | None, ranking=None) -> str:
    counts = {}
    for t in study["trials"]:
        counts[t.state] = counts.get(t.state, 0) + 1
    failures = [t for t in study["trials"] if t.state == "failed"]
    section = [f"<h2>{html.escape(study['name'])}</h2>",
               f"<p>{len(study['trials'])} trials ({html.escape(', '.join(f'{n} {s}' for s, n in counts.items()))}),"
               f" direction {html.escape(str(study['direction']))}.</p>"]
    if study.get("error") or problem:
        section.append(f"<p><strong>Not fully reported:</strong> {html.escape(study.get('error') or problem)}</p>")
    section.append(f"<h3>Best trials</h3><pre>{html.escape(text_table(study))}</pre>")
    if ranking is not None:
        section.append("<h3>Hyperparameter importance (PED-ANOVA, seed 0)</h3>"
                       f"<pre>{html.escape(format_importance(ranking))}</pre>")
    section += [f'<img src="{html.escape(os.path.basename(image))}" alt="{html.escape(os.path.basename(image))}">'
                for image in images]
    section.append("<h3>All trials (click a column to sort)</h3><div class='scroll'>" + html_table(study) + "</div>")
    if failures:
        section.append("<h3>Failed trials</h3><ul>")
        section += [f"<li>trial {t.id}: {html.escape(t.error or 'unknown error')}</li>" for t in failures[:50]]
        section.append("</ul>")
    return "\n".join(section)


def render_page(study_file: str, sections: list[str], refresh: int | None = None) -> str:
    """The whole page; ``refresh`` seconds makes the browser reload it (the ``--serve`` page)."""
    meta = f"<meta http-equiv='refresh' content='{int(refresh)}'>" if refresh else ""
    return ("<!doctype html><meta charset='utf-8'>" + meta + "<title>nnhp report</title>"
            "<style>body{font-family:sans-serif;max-width:1250px;margin:2em auto}"
            "img{max-width:100%;display:block;margin:1em 0}pre{background:#f5f5f5;padding:1em;overflow-x:auto}"
            ".scroll{overflow-x:auto}table.trials{border-collapse:collapse;font-size:12px}"
            "table.trials td,table.trials th{border:1px solid #ddd;padding:2px 6px;text-align:right}"
            "table.trials th{cursor:pointer;background:#eee;position:sticky;top:0}</style>"
            f"<h1>nnhp report: {html.escape(os.path.basename(study_file))}</h1>\n"
            + "\n".join(sections) + _SORT_SCRIPT)


def write_report(study_file: str, out: str, refresh: int | None = None) -> list[str]:
    """Write the report described in the module docstring; returns the files written. ``refresh``:
    seconds after which the page reloads itself (``nnhp report --serve``)."""
    studies = load_studies(study_file)
    if not studies:
        raise ValueError(f"{study_file} holds no studies")
    if os.path.exists(out) and not os.path.isdir(out):
        raise FileExistsError(f"cannot write the report into {out}: it is an existing file, not a folder")
    os.makedirs(out, exist_ok=True)
    written, sections, stems = [], [], set()
    for study in studies:
        images, problem = [], None
        stem = _safe_name(study["name"])
        if stem.lower() in stems:       # "A" and "a": one file on a case-insensitive file system
            stem = f"{stem}-{_short_hash(study['name'])}"
        stems.add(stem.lower())
        ranking = None
        if not study.get("error"):
            try:
                ranking = importance(study)
                files, images = _study_files(study, os.path.join(out, stem), ranking)
                written += files
            except Exception as exc:        # one study that cannot be drawn must not stop the others
                problem = f"{type(exc).__name__}: {exc}"
        sections.append(_section(study, images, problem, ranking))
    index = os.path.join(out, "index.html")
    with open(index, "w", encoding="utf-8") as handle:
        handle.write(render_page(study_file, sections, refresh))
    written.insert(0, index)
    return written


class ReportServer:
    """``nnhp report study.db --serve``: the report on ``http://127.0.0.1:PORT/``, written afresh
    from the study file (read-only, as always) when the page is asked for and the copy is older
    than ``refresh`` seconds; the page reloads itself every ``refresh`` seconds, so a study running
    in another process shows its new trials. Python's standard ``http.server``, one request at a
    time (a rewrite never races a picture being sent); it listens on the loopback address only.

        server = ReportServer("study.db", "report/", port=0)   # port 0: any free port
        server.url; server.serve_forever()  # until Ctrl-C; then server.close()
    """

    def __init__(self, study_file: str, out: str, *, port: int = 8000, refresh: float = 5.0):
        import http.server
        import time

        self.study_file, self.out, self.refresh = study_file, out, float(refresh)
        self._built = -math.inf
        self._clock = time.monotonic
        self.rebuild()
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=server.out, **kwargs)

            def do_GET(self):
                if self.path.split("?")[0] in ("/", "/index.html") and server._clock() - server._built >= server.refresh / 2:
                    server.rebuild()
                super().do_GET()

            def log_message(self, format, *args):      # quiet: the terminal shows the URL, not every request
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", port), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def rebuild(self) -> None:
        write_report(self.study_file, self.out, refresh=max(1, round(self.refresh)))
        self._built = self._clock()

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def close(self) -> None:
        self.httpd.server_close()
