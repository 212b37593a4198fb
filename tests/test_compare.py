"""Optimizer head-to-head: the protocol (equal budget, same start, seeds) and its outputs."""
import json
import math

import numpy
import pytest

from nnhp import compare
from nnhp.data import make_moons, train_test_split


@pytest.fixture(scope="module")
def moons():
    data = make_moons(300, noise=0.15, seed=0)
    X_train, X_val, y_train, y_val = train_test_split(data.X, data.y, 0.3, seed=0)
    return X_train, y_train, (X_val, y_val)


@pytest.fixture(scope="module")
def comparison(moons):
    X, y, validation = moons
    return compare.compare_optimizers(X, y, validation, optimizers=("sgd", "adam"), hidden=(16,),
                                      epochs=4, batch_size=32, n_lr=3, n_seeds=2, target_accuracy=0.8)


def test_every_optimizer_gets_the_same_budget_spread_over_its_range(comparison):
    for result in comparison.results:
        low, high = compare.LR_RANGES[result.name]
        rates = [lr for lr, _ in result.tried]
        assert len(rates) == 3
        # one rate per third of the log range
        slices = [int(3 * (math.log(lr) - math.log(low)) / (math.log(high) - math.log(low))) for lr in rates]
        assert sorted(slices) == [0, 1, 2]


def test_the_best_rate_is_the_one_with_the_lowest_validation_loss(comparison):
    for result in comparison.results:
        assert result.best_lr == min(result.tried, key=lambda pair: pair[1])[0]
        assert len(result.final_val_loss) == len(result.curves) == len(result.epochs_to_target) == 2


def test_seeds_change_the_runs(comparison):
    for result in comparison.results:
        assert result.curves[0] != result.curves[1]


def test_the_tuning_runs_share_initial_weights(moons, monkeypatch):
    X, y, validation = moons
    starts = []
    original_fit = compare.fit

    def recording_fit(model, *args, **kwargs):
        starts.append(model.flat_params.copy())
        return original_fit(model, *args, **kwargs)

    monkeypatch.setattr(compare, "fit", recording_fit)
    compare.compare_optimizers(X, y, validation, optimizers=("sgd", "momentum"), hidden=(8,), epochs=1,
                               n_lr=2, n_seeds=1)
    tuning_starts = starts[0:2] + starts[3:5]     # per optimizer: 2 rates, then 1 seed run
    for start in tuning_starts[1:]:
        numpy.testing.assert_array_equal(start, tuning_starts[0])


def test_table_and_files(comparison, tmp_path):
    table = comparison.table()
    assert "sgd" in table and "adam" in table and "epochs to 80%" in table
    paths = comparison.write(str(tmp_path))
    summary = json.loads((tmp_path / "results.json").read_text())
    assert {r["optimizer"] for r in summary["results"]} == {"sgd", "adam"}
    assert (tmp_path / "results.csv").read_text().startswith("optimizer,best_lr")
    assert any(path.endswith(".csv") for path in paths)


def test_unknown_optimizer_and_bad_budget_are_clear_errors(moons):
    X, y, validation = moons
    with pytest.raises(ValueError, match="unknown optimizer.*'lion'"):
        compare.compare_optimizers(X, y, validation, optimizers=("lion",))
    with pytest.raises(ValueError, match="n_lr must be an integer >= 1"):
        compare.compare_optimizers(X, y, validation, n_lr=0)


def test_cli_bench_optimizers_prints_a_table(tmp_path, capsys):
    from nnhp.cli import main
    code = main(["bench", "optimizers", "--data", "moons", "--optimizers", "sgd", "--epochs", "2",
                 "--lrs", "2", "--seeds", "1", "--hidden", "8", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "sgd" in out and "wrote" in out
    assert (tmp_path / "results.csv").exists()


def test_zero_epochs_is_refused_instead_of_nan_results():
    import numpy as np
    from nnhp.compare import compare_optimizers
    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    with pytest.raises(ValueError, match="epochs must be an integer >= 1; got 0"):
        compare_optimizers(X, y, (X, y), optimizers=["sgd"], epochs=0)
