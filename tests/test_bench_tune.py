"""benchmarks/bench_tune.py: the bookkeeping behind its tables, without tuning anything.

The medians and IQRs of the tables, the epochs a search spent before it first reached a score
(the BOHB-vs-Hyperband statistic), the translation of an nnhp Space into Optuna suggestions,
the split, and the RESULTS.md section are pinned here on made-up records and fake trials.
"""
import importlib.util
import json
import math
import os
import pathlib
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from nnhp.search import Choice, Float, Int, Space

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "bench_tune.py"


def load_benchmark():
    """The benchmark as a module (it lives outside the package, so by path)."""
    spec = importlib.util.spec_from_file_location("bench_tune", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_tune"] = module          # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = load_benchmark()


def fake_trial(id, value=None, budget=None, parent_id=None, state="complete", **attrs):
    return SimpleNamespace(id=id, value=value, budget=budget, parent_id=parent_id, state=state, attrs=attrs)


def record(dataset, method, seed, score, budget="time", **extra):
    return {"dataset": dataset, "method": method, "seed": seed, "test_score": score, "budget": budget,
            "task": "classification", "seconds": 1.0 + seed, "epochs": 10 * (seed + 1), **extra}


# --- importing ------------------------------------------------------------------------------
def test_importing_the_benchmark_leaves_the_blas_environment_alone():
    code = (f"import importlib.util, os, sys\n"
            f"spec = importlib.util.spec_from_file_location('bench_tune', {str(SCRIPT)!r})\n"
            f"module = importlib.util.module_from_spec(spec); sys.modules['bench_tune'] = module\n"
            f"spec.loader.exec_module(module)\n"
            f"print('imported', os.environ.get('OPENBLAS_CORETYPE'))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "OPENBLAS_CORETYPE": "Haswell"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported Haswell"


# --- medians, IQRs, tables ----------------------------------------------------------------------
def test_quartiles_are_median_and_interquartile_range_of_the_finite_values():
    assert bench.quartiles([1, 2, 3, 4, 5]) == (3.0, 2.0, 4.0)
    assert bench.quartiles([1, 2, 3, 4, 5, math.nan, None]) == (3.0, 2.0, 4.0)
    assert all(math.isnan(v) for v in bench.quartiles([math.nan]))


def test_summary_groups_by_dataset_and_method_and_the_fixed_mlp_joins_every_budget():
    records = [record("wine", "nnhp BOHB", s, score) for s, score in enumerate([0.9, 0.8, 1.0, 0.95, 0.85])]
    records += [record("wine", "nnhp BOHB", 0, 0.1, budget="epochs")]
    records += [record("wine", bench.FIXED, s, 0.7, budget="none") for s in range(2)]
    records += [record("wine", bench.OPTUNA, 0, math.nan, error="boom")]
    summary = bench.summarize(records, "time")
    bohb = summary[("wine", "nnhp BOHB")]
    assert (bohb["median"], bohb["q1"], bohb["q3"], bohb["n"]) == (0.9, 0.85, 0.95, 5)
    assert bohb["seconds"] == 3.0 and bohb["epochs"] == 30
    assert summary[("wine", bench.FIXED)]["n"] == 2
    assert bench.summarize(records, "epochs")[("wine", bench.FIXED)]["n"] == 2
    assert summary[("wine", bench.OPTUNA)]["failed"] == 1

    table = bench.results_table(summary, "nnhp BOHB")
    assert "| wine | **nnhp BOHB** (default) | acc 0.9000 [0.8500, 0.9500] | 0.0 | 3.0 | 30 | - | 5 |" in table
    assert f"| wine | {bench.OPTUNA} | failed |" in table and "1 (1 failed)" in table


def test_default_verdict_counts_data_sets_where_the_default_matches_every_peer_and_beats_fixed():
    records = [record("wine", "nnhp BOHB", 0, 0.9), record("wine", bench.OPTUNA, 0, 0.9),
               record("wine", bench.SKLEARN, 0, 0.8), record("wine", bench.FIXED, 0, 0.85, budget="none"),
               record("iris", "nnhp BOHB", 0, 0.9), record("iris", bench.OPTUNA, 0, 0.95),
               record("iris", bench.FIXED, 0, 0.9, budget="none")]
    lines, counts = bench.default_verdict(bench.summarize(records, "time"), "nnhp BOHB")
    assert counts == {"datasets": 2, "beats_peers": 1, "beats_fixed": 1}
    assert any(line.startswith("- iris") and f"behind {bench.OPTUNA} 0.9500" in line and "not beaten" in line
               for line in lines)


# --- epochs spent, epochs to reach a score ----------------------------------------------------
def test_trial_epochs_count_a_promotion_beyond_its_parent_budget_only():
    trials = [fake_trial(0, 0.5, budget=3), fake_trial(1, 0.6, budget=3),
              fake_trial(2, 0.7, budget=9, parent_id=1), fake_trial(3, 0.8, budget=27, parent_id=2)]
    assert bench.trial_epochs(trials) == [3, 3, 6, 18]


def test_trial_epochs_prefer_the_epochs_the_objective_recorded():
    # Early stopping ended trial 1 after 2 of its 6 extra epochs.
    trials = [fake_trial(0, 0.5, budget=3, epochs_trained=3), fake_trial(1, 0.6, budget=9, parent_id=0,
                                                                         epochs_trained=2)]
    assert bench.trial_epochs(trials) == [3, 2]


def test_search_curve_is_cumulative_and_leaves_failed_trials_without_a_value():
    trials = [fake_trial(1, None, budget=3, state="failed"), fake_trial(0, 0.5, budget=3),
              fake_trial(2, 0.7, budget=9, parent_id=0)]
    assert bench.search_curve(trials) == [[3, 0.5, 3], [6, None, 3], [12, 0.7, 9]]


@pytest.mark.parametrize("direction, target, expected", [
    ("maximize", 0.7, 12), ("maximize", 0.6, 12), ("maximize", 0.5, 3), ("maximize", 0.9, math.inf),
    ("minimize", 0.5, 3), ("minimize", 0.6, 3)])
def test_epochs_to_reach_is_the_total_when_a_trial_first_scores_the_target_or_better(direction, target, expected):
    curve = [[3, 0.5], [6, None], [12, 0.7]]
    assert bench.epochs_to_reach(curve, target, direction) == expected


def test_bohb_vs_hyperband_compares_epochs_to_hyperbands_best():
    hb, bohb = bench.nnhp_method("hyperband"), bench.nnhp_method("bohb")

    def run(method, seed, curve, dataset="wine", direction="maximize"):
        return {"dataset": dataset, "method": method, "seed": seed, "budget": "epochs", "curve": curve,
                "direction": direction}

    records = [
        run(hb, 0, [[10, 0.8], [40, 0.9], [90, 0.85]]), run(bohb, 0, [[10, 0.7], [25, 0.95]]),   # 25 < 40
        run(hb, 1, [[10, 0.9]]), run(bohb, 1, [[10, 0.8], [30, 0.9]]),                          # 30 > 10
        run(hb, 2, [[50, 0.9]]), run(bohb, 2, [[10, 0.9]]),                                     # 10 < 50
        # regression: smaller is better; BOHB never reaches Hyperband's 0.2
        run(hb, 0, [[5, 0.3], [20, 0.2]], "diabetes", "minimize"),
        run(bohb, 0, [[5, 0.25]], "diabetes", "minimize"),
    ]
    lines, counts = bench.bohb_vs_hyperband(records, "epochs")
    assert counts == {"datasets": 2, "bohb_fewer": 1, "bohb_not_more": 1, "seeds_fewer": 2, "seeds_equal": 0,
                      "seeds_more": 2}
    assert "| wine | 3 | 40 | 25 | 2 / 0 / 1 |" in lines
    assert "| diabetes | 1 | 20 | not reached | 0 / 0 / 1 |" in lines
    # Curves without budgets have no incumbent to compare.
    assert bench.bohb_vs_hyperband(records, "epochs", incumbent=True)[1]["datasets"] == 0


def test_bohb_vs_hyperband_at_the_incumbent_counts_only_trials_at_the_largest_budget():
    hb, bohb = bench.nnhp_method("hyperband"), bench.nnhp_method("bohb")

    def run(method, seed, curve):
        return {"dataset": "wine", "method": method, "seed": seed, "budget": "epochs", "curve": curve,
                "direction": "maximize"}

    records = [
        # Hyperband's best of any trial is a lucky 9-epoch 0.99; the model it returns scored 0.9 at 81.
        run(hb, 0, [[81, 0.85, 81], [90, 0.99, 9], [200, 0.9, 81]]),
        run(bohb, 0, [[81, 0.85, 81], [100, 0.95, 9], [150, 0.92, 81]]),     # 150 < 200 at 81 epochs
        run(hb, 1, [[81, 0.9, 81], [150, None, 81]]),
        run(bohb, 1, [[81, 0.9, 81], [90, 0.95, 27]]),                         # equal: the shared first trial
    ]
    lines, counts = bench.bohb_vs_hyperband(records, "epochs", incumbent=True)
    assert "| wine | 2 | 140 | 116 | 1 / 1 / 0 |" in lines
    assert counts["bohb_fewer"] == 1 and counts["bohb_not_more"] == 1
    # Over every trial, Hyperband's lucky 0.99 is never reached by BOHB.
    lines, counts = bench.bohb_vs_hyperband(records, "epochs")
    assert "| wine | 2 | 86 | not reached | 0 / 1 / 1 |" in lines


# --- Space -> Optuna ---------------------------------------------------------------------------
def small_space():
    return Space({
        "optimizer": Choice(["adam", "sgd"]),
        "lr": Float(1e-4, 1e-1, log=True, when=("optimizer", "==", "adam")),
        "momentum": Float(0.5, 0.99, reverse_log=True, when=("optimizer", "==", "sgd")),
        "n_layers": Int(1, 3),
        "units": Int(16, 256, log=True),
        "batch_size": 64,
    })


def test_suggest_params_asks_only_for_active_parameters_and_undoes_reverse_log():
    optuna = pytest.importorskip("optuna")
    space = small_space()
    sgd = {"optimizer": "sgd", "one_minus_momentum": 0.1, "n_layers": 2, "units": 32}
    params = bench.suggest_params(optuna.trial.FixedTrial(sgd), space)
    assert params == {"optimizer": "sgd", "momentum": pytest.approx(0.9), "n_layers": 2, "units": 32,
                      "batch_size": 64}
    assert list(params) == [n for n in space.names if n in params]      # declaration order
    # FixedTrial raises for a parameter it was not given: an inactive one is never asked for.
    adam = {"optimizer": "adam", "lr": 1e-3, "n_layers": 1, "units": 128}
    assert bench.suggest_params(optuna.trial.FixedTrial(adam), space)["lr"] == 1e-3


def test_suggested_points_are_valid_points_of_the_space():
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = small_space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = []

    def objective(trial):
        params = bench.suggest_params(trial, space)
        assert space.validate(params) == params
        seen.append(params["optimizer"])
        return 0.0

    study.optimize(objective, n_trials=30)
    assert set(seen) == {"adam", "sgd"}
    distribution = study.trials[0].distributions
    assert all(d.log for name, d in distribution.items() if name in ("lr", "one_minus_momentum", "units"))


def test_enqueued_params_come_back_from_suggest_params_unchanged():
    optuna = pytest.importorskip("optuna")
    space = small_space()
    params = {"optimizer": "sgd", "momentum": 0.95, "n_layers": 3, "units": 64, "batch_size": 64}
    enqueued = bench.optuna_enqueue_params(space, params)
    assert "batch_size" not in enqueued and enqueued["one_minus_momentum"] == pytest.approx(0.05)
    assert bench.suggest_params(optuna.trial.FixedTrial(enqueued), space) == pytest.approx(params)


# --- data, split, sklearn plan ----------------------------------------------------------------
def test_split_sizes_and_training_statistics():
    data = bench.DataSet("toy", "classification", np.random.default_rng(0).normal(3.0, 2.0, (200, 3)),
                         np.repeat([0, 1], 100), "test")
    split = bench.make_split(data, seed=1)
    assert (len(split.X_test), len(split.X_val), len(split.X_train)) == (50, 30, 120)
    np.testing.assert_allclose(split.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(split.X_train.std(axis=0), 1.0)
    assert np.bincount(split.y_test).tolist() == [25, 25]            # stratified
    again = bench.make_split(data, seed=1)
    np.testing.assert_array_equal(split.X_val, again.X_val)


def test_regression_targets_are_standardized_with_training_statistics():
    rng = np.random.default_rng(0)
    data = bench.DataSet("toy", "regression", rng.normal(size=(100, 2)), rng.normal(50.0, 10.0, 100), "test")
    split = bench.make_split(data, seed=0)
    assert abs(split.y_train.mean()) < 1e-12 and split.y_train.std() == pytest.approx(1.0)
    assert split.n_classes is None


def test_synthetic_sets_are_fixed_and_shaped_as_documented():
    X, y = bench.make_many_classes()
    assert X.shape == (2400, 40) and set(np.unique(y)) == set(range(12))
    np.testing.assert_array_equal(bench.make_many_classes()[0], X)
    X, y = bench.make_friedman()
    assert X.shape == (2000, 25) and y.shape == (2000,)


def test_r2_score():
    assert bench.r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 1.0
    assert bench.r2_score([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]) == 0.0


def test_halving_schedule_follows_scikit_learns_rungs():
    # 27 @ 9, 9 @ 27, 3 @ 81, 1 @ 243: four rungs of 243 epochs each.
    assert bench.halving_schedule(27, 9, 243) == (4 * 243, 27 + 9 + 3 + 1)
    # Too few candidates for four rungs: 5 @ 9, 2 @ 27 (ceil(5 / 3)), then one left: stop.
    assert bench.halving_schedule(5, 9, 243) == (5 * 9 + 2 * 27, 7)
    # Resources cap the rungs: 100 @ 9 and 34 @ 27 only when max_resources is 27.
    assert bench.halving_schedule(100, 9, 27) == (100 * 9 + 34 * 27, 134)


def test_halving_plan_takes_the_most_candidates_within_the_budget():
    assert bench.halving_plan(4 * 243, 243) == (27, 9)
    n, _ = bench.halving_plan(4 * 243 + 50, 243)
    assert bench.halving_schedule(n, 9, 243)[0] <= 4 * 243 + 50 < bench.halving_schedule(n + 1, 9, 243)[0]
    assert bench.halving_plan(1, 243)[0] == 3                      # at least one halving
    # In seconds: 0.01 s an epoch and 0.5 s a fit leave room for fewer candidates than epochs alone.
    by_time, _ = bench.halving_plan(10.0, 243, seconds_per_epoch=0.01, seconds_per_fit=0.5)
    assert by_time < bench.halving_plan(1000, 243)[0]


# --- jobs, RESULTS.md, re-tabling ------------------------------------------------------------
def test_jobs_run_the_fixed_mlp_once_per_seed_and_every_other_method_per_budget():
    jobs = bench.make_jobs(["wine"], ["nnhp BOHB", bench.FIXED], [0, 1], ["time", "epochs"], 5.0, 2.0)
    assert len(jobs) == 2 * (2 + 1)
    assert sorted({j["budget"] for j in jobs if j["method"] == bench.FIXED}) == ["none"]
    assert {(j["budget"], j["budget_value"]) for j in jobs if j["method"] == "nnhp BOHB"} == {("time", 5.0),
                                                                                              ("epochs", 2.0)}


def test_write_results_section_replaces_its_section_and_keeps_the_notes(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text("# results\n\n## Other\n\nkeep\n\n" + bench.SECTION + "\n\nold table\n\n"
                    "### Notes\n\nhand-written\n\n## Last\n\nalso kept\n")
    bench.write_results_section("new table", path=str(path))
    text = path.read_text()
    assert "old table" not in text and "new table" in text
    assert text.index("new table") < text.index("hand-written") < text.index("## Last")
    assert "keep" in text and "also kept" in text
    fresh = tmp_path / "NEW.md"
    bench.write_results_section("first", path=str(fresh))
    assert bench.SECTION + "\n\nfirst" in fresh.read_text()


def test_from_json_re_tables_saved_records_without_running(tmp_path, capsys):
    hb, bohb = bench.nnhp_method("hyperband"), bench.nnhp_method("bohb")
    records = [record("wine", m, s, 0.9 + 0.01 * s, budget=b, curve=[[10, 0.8], [20, 0.9]], direction="maximize")
               for m in (hb, bohb, bench.OPTUNA) for s in range(3) for b in ("time", "epochs")]
    records += [record("wine", bench.FIXED, s, 0.85, budget="none") for s in range(3)]
    settings = {"command": "python benchmarks/bench_tune.py --quick", "machine": "test", "date": "today",
                "load": "0.0", "budget_seconds": 2.0, "epoch_budget": 1.0, "seeds": 3, "datasets": ["wine"],
                "skipped": [], "wall_seconds": 1.0}
    saved = tmp_path / "runs.json"
    saved.write_text(json.dumps({"settings": settings, "default_method": bohb, "records": records}))
    bench.main(["--from-json", str(saved), "--plot-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "### Equal wall-clock budget (2 s per search)" in out and "### Equal total epochs" in out
    assert "on 1/1 data sets, above the fixed MLP's on 1/1" in out
    assert "| wine | 3 | 20 | 20 | 0 / 3 / 0 |" in out
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "bench_tune.png").stat().st_size > 0


def test_resume_reuses_the_saved_runs_and_runs_nothing_else(tmp_path, capsys):
    saved = tmp_path / "runs.json"
    done = record("wine", bench.FIXED, 0, 0.9, budget="none")
    settings = {"command": "earlier", "machine": "test", "date": "today", "load": "0.0", "budget_seconds": 2.0,
                "epoch_budget": 1.0, "seeds": 1, "datasets": ["wine"], "skipped": []}
    saved.write_text(json.dumps({"settings": settings, "default_method": "nnhp BOHB", "records": [done]}))
    bench.main(["--datasets", "wine", "--seeds", "1", "--methods", bench.FIXED, "--json", str(saved), "--resume"])
    assert "1 runs (1 reused from" in capsys.readouterr().out
    assert json.loads(saved.read_text())["records"] == [done]


def test_from_json_merges_several_files(tmp_path):
    paths = []
    for dataset in ("wine", "iris"):
        settings = {"command": f"run {dataset}", "datasets": [dataset], "skipped": [], "wall_seconds": 10.0}
        path = tmp_path / f"{dataset}.json"
        path.write_text(json.dumps({"settings": settings, "default_method": "nnhp BOHB",
                                    "records": [record(dataset, bench.FIXED, 0, 0.9, budget="none")]}))
        paths.append(str(path))
    records, settings, default_method = bench.load_records(paths)
    assert [r["dataset"] for r in records] == ["wine", "iris"]
    assert settings["datasets"] == ["wine", "iris"] and settings["wall_seconds"] == 20.0
    assert default_method == "nnhp BOHB"
