"""Reports from stored studies: read-only, tables, CSV, plots, HTML."""
import csv
import math

import pytest

from nnhp import report
from nnhp.search import Float, Int, Study, RandomSearch


@pytest.fixture
def study_file(tmp_path):
    path = str(tmp_path / "study.db")
    study = Study({"lr": Float(1e-4, 1e-1, log=True), "units": Int(8, 64)}, searcher=RandomSearch(seed=0),
                  storage=path, name="demo")

    def objective(trial):
        if trial.params["units"] > 56:
            raise RuntimeError("too many units for this test")
        for epoch in range(3):
            trial.report(abs(math.log10(trial.params["lr"]) + 2) + 1.0 / (epoch + 1), epoch)
        return abs(math.log10(trial.params["lr"]) + 2) + trial.params["units"] / 1000

    study.optimize(objective, n_trials=12)
    return path, study


def test_report_tables_rank_trials_best_first(study_file):
    path, study = study_file
    [loaded] = report.load_studies(path)
    table = report.text_table(loaded, top=3)
    lines = table.splitlines()
    assert len(lines) == 4 and "lr" in lines[0] and "units" in lines[0]
    assert lines[1].split()[1] == str(study.best_trial.id)


def test_report_writes_html_csv_and_plots(study_file, tmp_path):
    path, study = study_file
    out = tmp_path / "report"
    written = report.write_report(path, str(out))
    assert written[0].endswith("index.html")
    page = (out / "index.html").read_text()
    assert "demo" in page and "Failed trials" in page and "too many units" in page
    with open(out / "demo-trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(study.trials)
    assert {row["state"] for row in rows} <= {"complete", "failed"}
    pytest.importorskip("matplotlib")
    for suffix in ("history", "params", "curves"):
        image = out / f"demo-{suffix}.png"
        assert image.exists() and image.read_bytes()[:4] == b"\x89PNG"


def test_report_leaves_running_trials_alone(tmp_path):
    path = str(tmp_path / "live.db")
    study = Study({"x": Float(0, 1)}, storage=path, name="live")
    study.tell(study.ask(), 0.5)
    running = study.ask()                     # still running, as in another process
    report.write_report(path, str(tmp_path / "out"))
    assert study.get_trial(running.id).state == "running"


def test_report_on_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="study file not found"):
        report.write_report(str(tmp_path / "nope.db"), str(tmp_path / "out"))


def test_cli_report(study_file, tmp_path, capsys):
    from nnhp.cli import main
    path, _ = study_file
    assert main(["report", path, "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "study 'demo'" in out and "index.html" in out


# --- file names, escaping, one bad study (issue 12) -------------------------------------------------------
def _small_study(path, name, direction="minimize"):
    study = Study({"lr": Float(1e-4, 1e-1, log=True)}, storage=path, name=name, direction=direction)
    for i in range(3):
        trial = study.ask()
        trial.report(0.5 + i, 0)
        study.tell(trial, 0.1 * (i + 1))
    return study


def test_similar_study_names_get_their_own_files(tmp_path):
    path = str(tmp_path / "s.db")
    for name in ("a b", "a_b", "a/b"):
        _small_study(path, name)
    written = report.write_report(path, str(tmp_path / "out"))
    csvs = sorted(p.name for p in (tmp_path / "out").glob("*-trials.csv"))
    assert len(csvs) == 3 and "a_b-trials.csv" in csvs                 # a clean name keeps its own
    assert len(set(written)) == len(written)


def test_names_are_escaped_for_matplotlib_and_html(tmp_path):
    pytest.importorskip("matplotlib")
    path = str(tmp_path / "s.db")
    _small_study(path, r"$\frac$ <script>alert(1)</script>")             # broke matplotlib before
    _small_study(path, "plain", direction="maximize")
    report.write_report(path, str(tmp_path / "out"))
    page = (tmp_path / "out" / "index.html").read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page     # only the sort script runs
    assert "Not fully reported" not in page                              # both studies drawn
    assert len(list((tmp_path / "out").glob("*-history.png"))) == 2


def test_one_study_that_cannot_be_drawn_does_not_stop_the_others(tmp_path, monkeypatch):
    path = str(tmp_path / "s.db")
    _small_study(path, "first")
    _small_study(path, "second")
    real = report.plot_history

    def breaks_on_first(study, image):
        if study["name"] == "first":
            raise RuntimeError("cannot draw <this>")
        return real(study, image)

    monkeypatch.setattr(report, "plot_history", breaks_on_first)
    report.write_report(path, str(tmp_path / "out"))
    page = (tmp_path / "out" / "index.html").read_text()
    assert "Not fully reported:</strong> RuntimeError: cannot draw &lt;this&gt;" in page
    assert (tmp_path / "out" / "second-trials.csv").exists()


def test_a_damaged_study_is_reported_as_such_and_the_others_in_full(tmp_path):
    import sqlite3
    path = str(tmp_path / "s.db")
    _small_study(path, "good")
    _small_study(path, "bad")
    _small_study(path, "worse")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE studies SET direction = '<b>sideways</b>' WHERE name = 'bad'")
        db.execute("UPDATE trials SET attrs = 'not json' WHERE study_id = (SELECT id FROM studies WHERE name = 'worse')")
    studies = {study["name"]: study for study in report.load_studies(path)}
    assert "damaged direction" in studies["bad"]["error"] and "is damaged" in studies["worse"]["error"]
    report.write_report(path, str(tmp_path / "out"))
    page = (tmp_path / "out" / "index.html").read_text()
    assert "<b>sideways</b>" not in page and "damaged direction" in page
    assert (tmp_path / "out" / "good-trials.csv").exists()


def test_report_html_table_has_one_row_per_trial_and_blanks_for_inactive_params(tmp_path):
    from nnhp.search import Choice
    path = str(tmp_path / "cond.db")
    space = {"optimizer": Choice(["sgd", "adam"]), "momentum": Float(0, 1, when=("optimizer", "==", "sgd"))}
    study = Study(space, searcher=RandomSearch(seed=1), storage=path, name="cond")

    def objective(trial):
        if trial.id == 3:
            raise RuntimeError("diverged <nan>")
        return trial.params.get("momentum", 0.5)

    study.optimize(objective, n_trials=10)
    [loaded] = report.load_studies(path)
    table = report.html_table(loaded)
    rows = table.split("<tbody>")[1].split("</tr>")[:-1]
    assert len(rows) == len(study.trials) == 10
    header = [cell.split("</th>")[0] for cell in table.split("<th>")[1:]]
    column = header.index("momentum")
    for trial, row in zip(study.trials, rows):
        cells = [cell.split("</td>")[0] for cell in row.split("<td>")[1:]]
        assert (cells[column] == "") == ("momentum" not in trial.params)
        assert cells[header.index("state")] == trial.state
    assert "diverged &lt;nan&gt;" in table and "#fce8e6" in table      # the error, escaped, on a red row
    page = (lambda out: (report.write_report(path, out), open(f"{out}/index.html").read())[1])(str(tmp_path / "r"))
    assert "<script>" in page and "http" not in page.split("<script>")[1]       # sorting needs no CDN


def test_best_so_far_counts_trials_epochs_and_seconds(study_file):
    path, study = study_file
    [loaded] = report.load_studies(path)
    series = report.best_so_far(loaded)
    assert series["best"] == sorted(series["best"], reverse=True)           # minimize: never worse
    assert series["best"][-1] == study.best_value
    assert series["trials"] == sorted(series["trials"]) and series["epochs"] == sorted(series["epochs"])


def test_report_draws_categorical_parallel_rungs_and_importance(tmp_path):
    pytest.importorskip("matplotlib")
    from nnhp.search import Choice, Hyperband
    path = str(tmp_path / "hb.db")
    space = {"lr": Float(1e-4, 1e-1, log=True), "act": Choice(["relu", "tanh"])}
    study = Study(space, searcher=Hyperband(min_budget=1, max_budget=9, seed=0), storage=path, name="hb")

    def objective(trial):
        value = abs(math.log10(trial.params["lr"]) + 2) + (0.3 if trial.params["act"] == "tanh" else 0)
        for epoch in range(int(trial.budget)):
            trial.report(value + 1 / (epoch + 1), epoch)
        return value + 1 / trial.budget

    study.optimize(objective, n_trials=30)
    out = tmp_path / "report"
    report.write_report(path, str(out))
    for suffix in ("importance", "best", "categorical", "parallel", "rungs", "curves"):
        assert (out / f"hb-{suffix}.png").read_bytes()[:4] == b"\x89PNG"
    page = (out / "index.html").read_text()
    assert "Hyperparameter importance" in page and "Not fully reported" not in page


def test_compact_table_shows_only_varying_columns_and_fits_the_width(tmp_path):
    from nnhp.search import Choice
    space = {"optimizer": Choice(["adam"]), "lr": Float(1e-4, 1e-1, log=True), "units": Int(8, 64),
             "momentum": Float(0, 1, when=("units", ">", 30))}
    study = Study(space, searcher=RandomSearch(seed=0), name="wide")
    study.optimize(lambda t: t.params["lr"], n_trials=20)
    loaded = {"name": study.name, "direction": study.direction, "trials": study.trials}
    table = report.compact_table(loaded, top=5, width=200)
    header = table.splitlines()[0].split()
    assert header == ["rank", "trial", "value", "lr", "momentum", "units"]
    assert "same in every row: optimizer=adam" in table
    narrow = report.compact_table(loaded, top=5, width=40)
    assert all(len(line) <= 40 for line in narrow.splitlines()[:6])
    assert "not shown (terminal width 40)" in narrow
