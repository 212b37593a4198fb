"""Reports: a stored study as tables and pictures a person would rather look at.

``write_report("study.db", "report/")`` reads every study in an SQLite study file and writes,
per study:

- ``NAME-history.png``: each trial's value in order, failed trials marked, and the
  best value so far as a step line (how fast the search found good regions);
- ``NAME-params.png``: value against each numeric hyperparameter (where the good
  regions are; log axes for parameters spanning decades);
- ``NAME-curves.png``: the intermediate values trials reported (e.g. validation loss
  per epoch), best trials highlighted;
- ``NAME-trials.csv``: every trial;

and one ``index.html`` holding the summary tables and the pictures. Plots need
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
    figure, axes = plt.subplots(figsize=(7, 4))
    for trial in with_curves:
        steps = sorted(trial.intermediate, key=float)
        values = [trial.intermediate[s] for s in steps]
        steps = [float(s) for s in steps]
        if trial.id in best_ids:
            axes.plot(steps, values, linewidth=1.8, label=f"trial {trial.id}")
        else:
            axes.plot(steps, values, color="gray", alpha=0.3, linewidth=0.8)
    axes.set(xlabel="step (epoch)", ylabel="reported value", title=_mathtext_safe(f"{study['name']}: learning curves"))
    if best_ids:
        axes.legend(fontsize=8)
    return _save(figure, plt, path)


def _study_files(study: dict, stem: str) -> tuple[list[str], list[str]]:
    """(every file written, the images among them) for one study."""
    written = [write_trials_csv(study, f"{stem}-trials.csv")]
    images = []
    try:
        for plot, suffix in ((plot_history, "history"), (plot_params, "params"), (plot_curves, "curves")):
            image = plot(study, f"{stem}-{suffix}.png")
            if image:
                images.append(image)
    except ImportError:
        images = []
    return written + images, images


def _section(study: dict, images: list[str], problem: str | None) -> str:
    counts = {}
    for t in study["trials"]:
        counts[t.state] = counts.get(t.state, 0) + 1
    failures = [t for t in study["trials"] if t.state == "failed"]
    section = [f"<h2>{html.escape(study['name'])}</h2>",
               f"<p>{len(study['trials'])} trials ({html.escape(', '.join(f'{n} {s}' for s, n in counts.items()))}),"
               f" direction {html.escape(str(study['direction']))}.</p>"]
    if study.get("error") or problem:
        section.append(f"<p><strong>Not fully reported:</strong> {html.escape(study.get('error') or problem)}</p>")
    section.append(f"<pre>{html.escape(text_table(study))}</pre>")
    section += [f'<img src="{html.escape(os.path.basename(image))}" alt="{html.escape(os.path.basename(image))}">'
                for image in images]
    if failures:
        section.append("<h3>Failed trials</h3><ul>")
        section += [f"<li>trial {t.id}: {html.escape(t.error or 'unknown error')}</li>" for t in failures[:50]]
        section.append("</ul>")
    return "\n".join(section)


def write_report(study_file: str, out: str) -> list[str]:
    """Write the report described in the module docstring; returns the files written."""
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
        if not study.get("error"):
            try:
                files, images = _study_files(study, os.path.join(out, stem))
                written += files
            except Exception as exc:        # one study that cannot be drawn must not stop the others
                problem = f"{type(exc).__name__}: {exc}"
        sections.append(_section(study, images, problem))
    index = os.path.join(out, "index.html")
    with open(index, "w", encoding="utf-8") as handle:
        handle.write("<!doctype html><meta charset='utf-8'><title>nnhp report</title>"
                     "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
                     "img{max-width:100%;display:block;margin:1em 0}pre{background:#f5f5f5;padding:1em;"
                     "overflow-x:auto}</style>"
                     f"<h1>nnhp report: {html.escape(os.path.basename(study_file))}</h1>\n"
                     + "\n".join(sections))
    written.insert(0, index)
    return written
