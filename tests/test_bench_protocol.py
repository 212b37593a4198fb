"""The benchmark protocol: equal budgets, equal starts, determinism, and resuming after a kill."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy
import pytest

from nnhp.bench import Budget, Workload, benchmark_optimizers, objective, run_protocol
from nnhp.bench.protocol import best_config
from nnhp.search import SQLiteStorage, Study

TINY = Workload("tiny", "moons, 8 tanh units", "moons", (8,), activation="tanh", batch_size=32, epochs=3,
                data_options=(("n_samples", 200), ("noise", 0.2)))
BUDGET = Budget(studies=2, trials=3, seeds=2, lr_factors=(0.5, 1.0, 2.0))


def without_clock(rows):
    """Rows with the wall-clock numbers left out (they differ between any two runs)."""
    return [{k: v for k, v in row.items() if "seconds" not in k and k != "overhead_vs_sgd"} for row in rows]


@pytest.fixture(scope="module")
def result():
    return benchmark_optimizers([TINY], ["sgd", "adam", "rmsprop"], BUDGET)


def test_every_optimizer_gets_exactly_the_same_trials_and_epochs():
    records = run_protocol([TINY], ["sgd", "adam", "rmsprop"], BUDGET)["tiny"]
    for name, entry in records.items():
        assert [len(study) for study in entry["tune"]] == [3, 3], name
        for trial in (t for study in entry["tune"] for t in study):
            if trial["state"] == "complete":
                assert trial["curve"]["steps"] == [4, 8, 12], name        # 3 epochs of 120/32 -> 4 batches
            else:
                assert trial["error"].startswith("diverged")
        assert [t["seed"] for t in entry["seeds"]] == [100, 101]
        assert [t["seed"] for t in entry["defaults"]] == [100, 101]
        assert [t["factor"] for t in entry["lr_sweep"]] == [0.5, 1.0, 2.0]


def test_the_result_counts_the_budget(result):
    for row in result.rows:
        if row["tuned"]:
            assert (row["trials"], row["studies"], row["seed_runs"]) == (6, 2, 2)
        else:
            assert (row["trials"], row["studies"], row["seed_runs"]) == (2, 2, 2)
    assert set(result.ranking) == {"sgd", "adam", "rmsprop", "sgd@defaults", "adam@defaults", "rmsprop@defaults"}
    assert result.scores[result.ranking[0]] == max(result.scores.values())


def test_the_best_configuration_has_the_lowest_final_metric():
    studies = [[{"state": "complete", "value": 0.3, "params": {"lr": 1}},
                {"state": "failed", "value": None, "params": {"lr": 9}}],
               [{"state": "complete", "value": 0.1, "params": {"lr": 2}},
                {"state": "complete", "value": 0.1, "params": {"lr": 3}}]]
    assert best_config(studies) == {"lr": 2}
    assert best_config([[{"state": "failed", "value": None, "params": {}}]]) is None


def test_same_seed_same_results(result):
    again = benchmark_optimizers([TINY], ["sgd", "adam", "rmsprop"], BUDGET)
    assert without_clock(again.rows) == without_clock(result.rows)
    assert again.scores == result.scores and again.ranking == result.ranking


def test_another_seed_other_trials(result):
    other = benchmark_optimizers([TINY], ["adam"], BUDGET, seed=1)
    mine = result.row("tiny", "adam")["config"]
    assert other.row("tiny", "adam")["config"] != mine


def test_every_optimizer_starts_from_the_same_weights(monkeypatch):
    starts = {}
    original = objective.fit

    def recording_fit(model, *args, seed=None, **kwargs):
        starts.setdefault(seed, []).append(model.flat_params.copy())
        return original(model, *args, seed=seed, **kwargs)

    monkeypatch.setattr(objective, "fit", recording_fit)
    run_protocol([TINY], ["sgd", "momentum", "adam"], Budget(studies=2, trials=2, seeds=2, lr_factors=(1.0,)))
    assert sorted(starts) == [0, 1, 100, 101]          # studies 0 and 1; reruns 100 and 101
    for seed, weights in starts.items():
        assert len(weights) >= 6
        for start in weights[1:]:
            numpy.testing.assert_array_equal(start, weights[0])


def test_parallel_workers_give_the_same_results(result):
    parallel = benchmark_optimizers([TINY], ["sgd", "adam", "rmsprop"], BUDGET, workers=2)
    assert without_clock(parallel.rows) == without_clock(result.rows)


def test_bad_budgets_are_refused():
    with pytest.raises(ValueError, match="trials must be an integer >= 1; got 0"):
        Budget(trials=0)
    with pytest.raises(ValueError, match="searcher 'hyperband' cannot keep the equal budget"):
        Budget(searcher="hyperband")
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        benchmark_optimizers([TINY], ["lion"], BUDGET)
    with pytest.raises(ValueError, match="unknown workload 'digit_mlp'.*digits_mlp"):
        benchmark_optimizers(["digit_mlp"], ["sgd"], BUDGET)


# --- resuming -----------------------------------------------------------------------------------
KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    from nnhp.bench import Budget, Workload, benchmark_optimizers, objective

    original = objective.TrainingRun.__call__

    def dying(self, trial):
        # The third trial of adam's second study: the process dies in the middle of the benchmark.
        if self.optimizer == "adam" and self.seed == 1 and trial.id == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, trial)

    objective.TrainingRun.__call__ = dying
    TINY = Workload("tiny", "moons, 8 tanh units", "moons", (8,), activation="tanh", batch_size=32, epochs=3,
                    data_options=(("n_samples", 200), ("noise", 0.2)))
    benchmark_optimizers([TINY], ["sgd", "adam", "rmsprop"],
                         Budget(studies=2, trials=3, seeds=2, lr_factors=(0.5, 1.0, 2.0)), storage=sys.argv[1])
""")


def stored_trials(path):
    """{study name: [(id, params, state, value, started), ...]}, read without changing anything."""
    storage = SQLiteStorage(path)
    trials = {}
    for name in storage.study_names():
        study = Study(storage=storage, name=name, fail_stale=False)       # leaves running trials as they are
        trials[name] = [(t.id, t.params, t.state, t.value, t.started) for t in study.trials]
    storage.close()
    return trials


def test_a_killed_benchmark_resumes_where_it_stopped(tmp_path, result):
    path = str(tmp_path / "bench.db")
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, path], env=env, capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    before = stored_trials(path)
    assert [t[2] for t in before["tiny/adam/tune-1"]] == ["complete", "complete", "running"]                      # cut off inside adam's second study
    assert "tiny/rmsprop/tune-0" not in before

    resumed = benchmark_optimizers([TINY], ["sgd", "adam", "rmsprop"], BUDGET, storage=path)
    after = stored_trials(path)
    finished = [name for name in before if name.startswith("tiny/sgd/") or name == "tiny/adam/tune-0"]
    assert finished and all(after[name] == before[name] for name in finished)       # not run again
    states = [t[2] for t in after["tiny/adam/tune-1"]]
    assert states[:2] == ["complete", "complete"] and len(states) == 4               # + the rerun of the killed one
    assert after["tiny/adam/tune-1"][3][1] == after["tiny/adam/tune-1"][2][1]         # the same point again
    assert without_clock(resumed.rows) == without_clock(result.rows)                  # = uninterrupted
    assert resumed.scores == result.scores

    reopened = benchmark_optimizers([TINY], ["sgd", "adam", "rmsprop"], BUDGET, storage=path)
    assert stored_trials(path) == after                       # a finished benchmark runs nothing more
    assert without_clock(reopened.rows) == without_clock(result.rows)
