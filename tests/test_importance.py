"""PED-ANOVA importance: right order on a synthetic study, intervals, determinism, API == CLI."""

import numpy as np
import pytest

from nnhp.cli import main
from nnhp.search import Choice, Float, RandomSearch, Study
from nnhp.search.importance import format_importance, importance


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """One parameter drives the value, one matters a little, three are noise (one log, one categorical)."""
    path = str(tmp_path_factory.mktemp("importance") / "study.db")
    space = {"drives": Float(-1, 1), "little": Float(-1, 1), "noise": Float(0, 1),
             "noise_log": Float(1e-4, 1e-1, log=True), "noise_choice": Choice(["relu", "tanh", "elu"]),
             "momentum": Float(0, 1, when=("noise_choice", "==", "relu"))}
    study = Study(space, searcher=RandomSearch(seed=0), storage=path, name="synthetic")
    rng = np.random.default_rng(1)
    study.optimize(lambda t: 10 * t.params["drives"] ** 2 + 2 * t.params["little"] ** 2 + 0.1 * rng.normal(),
                   n_trials=300)
    return path, study


def test_importance_ranks_the_driving_parameter_first_and_noise_near_zero(synthetic):
    _, study = synthetic
    results = {r.name: r for r in importance(study, n_bootstrap=60, seed=0)}
    assert [r.name for r in importance(study, n_bootstrap=60, seed=0)][:2] == ["drives", "little"]
    assert results["drives"].value > 1.5 * results["little"].value
    noise = ("noise", "noise_log", "noise_choice", "momentum")
    assert results["little"].low > max(results[name].high for name in noise)
    for name in noise:
        assert results[name].low <= 0 <= results[name].high, results[name]


def test_importance_measures_conditional_parameters_where_active(synthetic):
    _, study = synthetic
    results = {r.name: r for r in importance(study, n_bootstrap=10, seed=0)}
    relu = sum(t.params.get("noise_choice") == "relu" for t in study.trials)
    assert results["momentum"].n_active == relu < results["drives"].n_active == len(study.trials)


def test_importance_same_seed_same_numbers(synthetic):
    _, study = synthetic
    assert importance(study, n_bootstrap=20, seed=3) == importance(study, n_bootstrap=20, seed=3)
    assert importance(study, n_bootstrap=20, seed=3) != importance(study, n_bootstrap=20, seed=4)


def test_importance_cli_prints_the_api_numbers(synthetic, capsys):
    path, study = synthetic
    assert main(["importance", path, "--bootstrap", "20", "--seed", "5"]) == 0
    printed = capsys.readouterr().out
    assert format_importance(importance(study, n_bootstrap=20, seed=5)) in printed


def test_importance_needs_enough_trials():
    study = Study({"x": Float(0, 1)}, name="few")
    study.optimize(lambda t: t.params["x"], n_trials=3)
    assert importance(study) == []
    assert "too few" in format_importance([])
    with pytest.raises(ValueError, match="gamma"):
        importance(study, gamma=1.5)


def test_report_shows_the_numbers_the_api_and_cli_give(synthetic, tmp_path, monkeypatch):
    from nnhp import report
    for name in [name for name in dir(report) if name.startswith("plot_")]:      # the table is the point
        monkeypatch.setattr(report, name, lambda study, path, **options: None)
    path, study = synthetic
    report.write_report(path, str(tmp_path / "out"))
    page = (tmp_path / "out" / "index.html").read_text()
    [loaded] = report.load_studies(path)
    assert format_importance(importance(loaded)) in page.replace("&#x27;", "'")
    assert importance(loaded) == importance(study)
