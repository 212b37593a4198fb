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
