import csv
import io
import json
import math
import threading
import time

import numpy as np
import pytest

from nnhp.search import (Choice, Float, GridSearch, Int, Proposal, RandomSearch, SearchExhausted, Searcher, Space,
                         Study, TrialPruned)


def space():
    return Space({"x": Float(-5.0, 5.0), "n": Int(1, 4), "act": Choice(["relu", "tanh"])})


def quadratic(trial):
    return (trial.params["x"] - 1.0) ** 2 + trial.params["n"]


def test_optimize_runs_n_trials_and_finds_the_best():
    study = Study(space(), RandomSearch(seed=0))
    study.optimize(quadratic, n_trials=30)
    trials = study.trials
    assert len(trials) == 30 and all(t.state == "complete" for t in trials)
    assert study.best_trial.value == min(t.value for t in trials)
    assert study.best_params == study.best_trial.params
    assert [t.value for t in study.ranked_trials()] == sorted(t.value for t in trials)


def test_maximize_picks_the_largest():
    study = Study(space(), RandomSearch(seed=0), direction="max")
    study.optimize(quadratic, n_trials=10)
    assert study.direction == "maximize"
    assert study.best_value == max(t.value for t in study.trials)
    with pytest.raises(ValueError, match="direction"):
        Study(space(), direction="up")


def test_failed_trials_are_recorded_and_the_search_goes_on():
    def objective(trial):
        kind = trial.id % 5
        if kind == 0:
            raise RuntimeError(f"diverged at trial {trial.id}")
        if kind == 1:
            return float("nan")
        if kind == 2:
            return "0.5"
        if kind == 3:
            return math.inf
        return np.float32(trial.id)              # NumPy scalars are numbers

    study = Study(space(), RandomSearch(seed=0))
    study.optimize(objective, n_trials=10)
    trials = study.trials
    assert len(trials) == 10
    assert [t.state for t in trials[:5]] == ["failed", "failed", "failed", "failed", "complete"]
    assert trials[0].error == "RuntimeError: diverged at trial 0"
    assert "Traceback" in trials[0].attrs["traceback"]
    assert trials[1].error == "objective returned nan"
    assert trials[2].error == "objective returned '0.5' (str), expected a number"
    assert trials[3].error == "objective returned inf"
    assert trials[4].value == 4.0 and study.best_trial.id == 4
    summary = study.failure_summary()
    assert summary.startswith("8 of 10 trials failed:")
    assert "2 x objective returned nan" in summary and "1 x RuntimeError: diverged at trial 5" in summary


def test_no_completed_trial_is_a_clear_error():
    study = Study(space(), RandomSearch(seed=0))
    study.optimize(lambda trial: None, n_trials=2)
    with pytest.raises(ValueError, match="no completed trial yet. 2 of 2 trials failed"):
        study.best_trial
    assert "None (NoneType), expected a number" in study.trials[0].error


def test_pruned_trials():
    def objective(trial):
        trial.report(1.0, 0)
        if trial.id % 2:
            raise TrialPruned("poor after one epoch")
        return 1.0

    study = Study(space(), RandomSearch(seed=0))
    study.optimize(objective, n_trials=4)
    assert [t.state for t in study.trials] == ["complete", "pruned", "complete", "pruned"]
    assert study.trials[1].error == "poor after one epoch"
    assert study.failure_summary() == "no failed trials (of 4)"


def test_ask_and_tell_by_hand():
    study = Study(space(), RandomSearch(seed=1))
    trial = study.ask()
    assert trial.state == "running" and trial.id == 0
    assert study.trials[0].state == "running"
    finished = study.tell(trial, 2.5)
    assert trial.state == finished.state == "complete" and finished.value == 2.5
    with pytest.raises(ValueError, match="already complete"):
        study.tell(trial, 1.0)
    mine = study.ask({"x": 0.5, "n": 2, "act": "tanh"})
    study.tell(mine.id, ZeroDivisionError("x"))
    assert study.trials[1].error == "ZeroDivisionError: x"
    with pytest.raises(ValueError, match="outside"):
        study.ask({"x": 50.0, "n": 2, "act": "tanh"})
    pruned = study.ask()
    study.tell(pruned, 0.7, state="pruned")
    assert study.trials[2].state == "pruned" and study.trials[2].value == 0.7


def test_keyboard_interrupt_fails_the_running_trial_and_stops():
    def objective(trial):
        if trial.id == 2:
            raise KeyboardInterrupt
        return 1.0

    study = Study(space(), RandomSearch(seed=0))
    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, n_trials=10)
    assert [t.state for t in study.trials] == ["complete", "complete", "failed"]
    assert study.trials[2].error == "interrupted (KeyboardInterrupt)"


def test_timeout_stops_starting_new_trials():
    study = Study(space(), RandomSearch(seed=0))
    start = time.monotonic()
    study.optimize(lambda t: time.sleep(0.05) or 1.0, timeout=0.3)
    assert time.monotonic() - start < 1.0
    assert 3 <= len(study.trials) <= 8


def test_exhausted_searcher_stops_optimize_and_ask_says_so():
    study = Study(Space({"a": Choice([1, 2, 3])}), GridSearch())
    study.optimize(lambda t: t.params["a"], n_trials=100)
    assert [t.params["a"] for t in study.trials] == [1, 2, 3]
    with pytest.raises(SearchExhausted):
        study.ask()


def test_callbacks_see_each_finished_trial():
    seen = []
    study = Study(space(), RandomSearch(seed=0))
    study.optimize(quadratic, n_trials=3, callbacks=[lambda s, t: seen.append((t.id, t.state))])
    assert seen == [(0, "complete"), (1, "complete"), (2, "complete")]


def test_parallel_workers_run_trials_concurrently():
    running, peak, lock = [0], [0], threading.Lock()

    def objective(trial):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return quadratic(trial)

    study = Study(space(), RandomSearch(seed=0))
    study.optimize(objective, n_trials=12, n_workers=4, executor="threads")
    trials = study.trials
    assert len(trials) == 12 and all(t.state == "complete" for t in trials)
    assert peak[0] > 1
    assert len({study.space.key(t.params) for t in trials}) == 12


def test_workers_wait_when_the_searcher_needs_results_first():
    class TwoRounds(Searcher):
        """Proposes 3 points, then (once all three are done) 3 more: like a Hyperband rung."""

        def ask(self, study):
            trials = study.trials
            if len(trials) < 3:
                return Proposal({"a": len(trials)})
            if len(trials) < 6 and all(t.state != "running" for t in trials):
                return Proposal({"a": len(trials)}, budget=2)
            return None

    study = Study(Space({"a": Int(0, 9)}), TwoRounds())
    study.optimize(lambda t: time.sleep(0.02) or t.params["a"], n_workers=3, executor="threads")
    assert [t.params["a"] for t in study.trials] == [0, 1, 2, 3, 4, 5]
    assert [t.budget for t in study.trials] == [None] * 3 + [2.0] * 3


def test_searcher_learns_from_tell_and_sees_running_trials():
    class Recorder(Searcher):
        def __init__(self):
            self.told, self.running_seen = [], []

        def ask(self, study):
            self.running_seen.append(sum(t.state == "running" for t in study.trials))
            return Proposal({"x": 0.0, "n": 1, "act": "relu"}, info={"round": 1})

        def tell(self, study, trial):
            self.told.append((trial.id, trial.state))

    searcher = Recorder()
    study = Study(space(), searcher)
    first = study.ask()
    study.ask()                                        # the first is still running
    assert searcher.running_seen == [0, 1]
    study.tell(first, RuntimeError("x"))
    assert searcher.told == [(0, "failed")]
    assert study.trials[0].info == {"round": 1}


def test_export_csv_and_json(tmp_path):
    study = Study(Space({"n": Int(1, 2), "u": Int(8, 16, when=("n", "==", 2)), "lr": Float(0.1, 1.0)}),
                  RandomSearch(seed=4))

    def objective(trial):
        trial.set_attr("accuracy", 0.5)
        if trial.id == 1:
            raise ValueError("bad, \"quoted\", value")
        trial.report(0.25, 0)
        return trial.params["lr"]

    study.optimize(objective, n_trials=6)
    text = study.to_csv(tmp_path / "trials.csv")
    assert (tmp_path / "trials.csv").read_text() == text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["id", "state", "value", "budget", "parent_id", "duration_s", "error", "n", "u", "lr",
                             "attr_accuracy"]
    for row, trial in zip(rows, study.trials):
        assert int(row["id"]) == trial.id and row["state"] == trial.state
        assert row["u"] == ("" if trial.params["n"] == 1 else str(trial.params["u"]))
        if trial.state == "complete":
            assert float(row["value"]) == trial.value == float(row["lr"])
    assert rows[1]["error"] == 'ValueError: bad, "quoted", value'

    document = json.loads(study.to_json(tmp_path / "trials.json"))
    assert json.loads((tmp_path / "trials.json").read_text()) == document
    assert document["direction"] == "minimize" and Space.from_dict(document["space"]) == study.space
    assert len(document["trials"]) == 6
    assert document["trials"][0]["intermediate"] == [[0, 0.25]]
    assert document["trials"][1]["value"] is None and "Traceback" in document["trials"][1]["attrs"]["traceback"]


def test_bad_optimize_arguments():
    study = Study(space())
    with pytest.raises(ValueError, match="n_workers"):
        study.optimize(quadratic, n_trials=1, n_workers=0)
    with pytest.raises(ValueError, match="n_trials"):
        study.optimize(quadratic, n_trials=-1)
    with pytest.raises(ValueError, match="unknown searcher"):
        Study(space(), searcher="annealing")
    with pytest.raises(ValueError, match="needs a space"):
        Study(name="nothing stored")


def test_enqueued_params_run_before_the_searchers_and_are_checked_at_once():
    from nnhp.search import Float, RandomSearch, Space, SpaceError, Study
    study = Study(Space({"x": Float(0.0, 1.0)}), searcher=RandomSearch(seed=0))
    study.enqueue({"x": 0.25}, info={"why": "a guess"})
    with pytest.raises(SpaceError):
        study.enqueue({"x": 2.0})
    study.optimize(lambda trial: trial.params["x"], n_trials=3)
    first, *rest = study.trials
    assert first.params == {"x": 0.25} and first.info == {"why": "a guess"}
    assert len(rest) == 2 and all(t.params != {"x": 0.25} for t in rest)


def test_stop_from_a_callback_ends_the_search_after_the_running_trial():
    from nnhp.search import Float, RandomSearch, Space, Study
    study = Study(Space({"x": Float(0.0, 1.0)}), searcher=RandomSearch(seed=0))

    def stop_after_three(study, trial):
        if len(study.trials) == 3:
            study.stop()

    study.optimize(lambda trial: trial.params["x"], n_trials=10, callbacks=[stop_after_three])
    assert len(study.trials) == 3
    study.optimize(lambda trial: trial.params["x"], n_trials=2)     # a new optimize starts afresh
    assert len(study.trials) == 5


# --- a study is bound to what it was built on (issue 12) --------------------------------------------
def test_reopening_a_stored_study_with_another_space_is_refused(tmp_path):
    from nnhp.search import StudyMismatchError
    path = str(tmp_path / "s.db")
    Study(space(), storage=path, name="digits").optimize(quadratic, n_trials=2)
    other = Space({"x": Float(-1.0, 1.0), "n": Int(1, 4), "lr": Float(1e-3, 1e-1, log=True)})
    with pytest.raises(StudyMismatchError, match="space: 'lr' added, 'act' removed, 'x' was Float") as info:
        Study(other, storage=path, name="digits")
    assert info.value.suggested_name == "digits-2" and "name='digits-2'" in str(info.value)
    assert len(Study(storage=path, name="digits").trials) == 2          # reading it back still works
    Study(space(), storage=path, name="digits")                         # the same space continues


def test_reopening_with_another_identity_names_each_difference(tmp_path):
    from nnhp.search import StudyMismatchError
    path = str(tmp_path / "s.db")
    Study(space(), storage=path, name="s", identity={"data": "abc", "seed": 0})
    Study(space(), storage=path, name="s-2")
    with pytest.raises(StudyMismatchError) as info:
        Study(space(), storage=path, name="s", identity={"data": "xyz", "seed": 0})
    assert info.value.differences == ["data='abc' when created, data='xyz' now"]
    assert info.value.suggested_name == "s-3"                           # s-2 is taken
    assert Study(space(), storage=path, name="s", identity={"data": "abc", "seed": 0}).identity["data"] == "abc"
    assert Study(storage=path, name="s").identity == {"data": "abc", "seed": 0}


def test_an_in_memory_storage_compares_identities_too():
    from nnhp.search import InMemoryStorage, StudyMismatchError
    storage = InMemoryStorage()
    Study(space(), storage=storage, name="s", direction="maximize", identity={"metric": "accuracy"})
    with pytest.raises(StudyMismatchError, match="direction='maximize' when created, direction='minimize' now; "
                                                 "metric='accuracy' when created, metric='loss' now"):
        Study(space(), storage=storage, name="s", direction="minimize", identity={"metric": "loss"})


# --- a parallel search starts its costliest trials first ----------------------------------------

class CostedObjective:
    """An objective that can estimate its trials' cost (here: x itself, made positive)."""

    def estimated_cost(self, params, budget):
        return params["x"] + 5.0

    def __call__(self, trial):
        time.sleep(0.002)
        return quadratic(trial)


def _started(study):
    """Params of the trials in the order they were created (= started)."""
    return [t.params for t in study.trials]


def test_two_workers_start_the_costliest_proposals_first_after_the_enqueued_ones():
    one, two = Study(space(), RandomSearch(seed=4)), Study(space(), RandomSearch(seed=4))
    for study in (one, two):
        study.enqueue({"x": -4.5, "n": 1, "act": "relu"})
    one.optimize(CostedObjective(), n_trials=13)
    two.optimize(CostedObjective(), n_trials=13, n_workers=2, executor="threads")
    started = _started(two)
    assert started[0] == {"x": -4.5, "n": 1, "act": "relu"}         # enqueued: first, whatever its cost
    xs = [p["x"] for p in started[1:]]
    assert xs == sorted(xs, reverse=True)
    key = lambda p: (p["x"], p["n"], p["act"])                        # noqa: E731
    assert sorted(map(key, started[1:])) == sorted(map(key, _started(one)[1:]))   # the same draws
    assert two._ahead == []


def test_costs_do_not_reorder_one_worker_a_timeout_or_an_objective_without_costs():
    def order(**kwargs):
        study = Study(space(), RandomSearch(seed=4))
        objective = kwargs.pop("objective", CostedObjective())
        study.optimize(objective, **kwargs)
        return _started(study)

    drawn = order(n_trials=8)
    xs = [p["x"] for p in drawn]
    assert xs != sorted(xs, reverse=True)                     # the draws themselves are not sorted
    assert order(n_trials=8, n_workers=2, executor="threads", timeout=60) == drawn
    assert order(n_trials=8, n_workers=2, executor="threads", objective=quadratic) == drawn
    assert order(n_trials=8, n_workers=2, executor="threads") != drawn


def test_a_search_stopped_part_way_drops_the_drawn_trials_it_did_not_start():
    study = Study(space(), RandomSearch(seed=4))
    objective = CostedObjective()

    def stop_after_three(study, trial):
        if len(study.trials) >= 3:
            study.stop()

    study.optimize(objective, n_trials=10, n_workers=2, executor="threads", callbacks=[stop_after_three])
    assert 3 <= len(study.trials) <= 4 and study._ahead == []
    study.optimize(objective, n_trials=2)                     # continues with the searcher's own asks
    assert len(study.trials) <= 6 and len({(p["x"], p["n"]) for p in _started(study)}) == len(study.trials)
