"""ASHA (nnhp.search.asha): the promotion rule on scripted results, parallel runs, reopening."""
import numpy as np
import pytest

import nnhp
from nnhp.data import make_moons, train_test_split
from nnhp.search import ASHA, Float, Int, Space, Study, make_searcher


def _study(storage=None, seed=0):
    return Study(Space({"x": Float(0.0, 1.0)}), ASHA(max_budget=9, eta=3, min_budget=1, seed=seed),
                 storage=storage, name="asha")


def asha_objective(trial):
    start = 0.0 if trial.checkpoint is None else float(trial.checkpoint["budget"][0])
    trial.save_checkpoint({"budget": np.array([trial.budget])})
    trial.set_attr("continued_from", start)
    return (trial.params["x"] - 0.5) ** 2 + 1.0 / trial.budget


def test_rungs_and_the_promotion_rule_on_scripted_results():
    study = _study()
    assert study.searcher.budgets == [1.0, 3.0, 9.0]
    for value in (0.5, 0.2):                           # fewer than eta results in rung 0: no promotion
        trial = study.ask()
        assert (trial.budget, trial.info["rung"], trial.parent_id) == (1.0, 0, None)
        study.tell(trial, value)
    third = study.ask()
    assert third.info["rung"] == 0 and third.parent_id is None
    study.tell(third, 0.9)
    promoted = study.ask()                             # 3 results: the best one (trial 1) goes up
    assert (promoted.id, promoted.budget, promoted.info["rung"], promoted.parent_id) == (3, 3.0, 1, 1)
    assert promoted.params == study.get_trial(1).params
    fresh = study.ask()                                # trial 1 promoted already (still running): a new one
    assert (fresh.id, fresh.info["rung"], fresh.parent_id) == (4, 0, None)
    study.tell(promoted, 0.1)
    study.tell(fresh, 0.6)                             # rung 0: 4 results, top floor(4/3) = 1 = trial 1, promoted
    fifth = study.ask()
    assert (fifth.id, fifth.info["rung"]) == (5, 0)
    study.tell(fifth, 0.05)                            # trial 5 is now the best of rung 0 ...
    sixth = study.ask()                                # ... and not promoted: it goes up
    assert (sixth.info["rung"], sixth.parent_id) == (1, 5)
    study.tell(sixth, 0.3)
    for value in (0.7,):                               # rung 0: 6 results, top 2 = trials 5 and 1, both up
        t = study.ask()
        assert t.info["rung"] == 0
        study.tell(t, value)
    t = study.ask()                                    # rung 1: 2 results, fewer than eta: nothing to rung 2
    assert t.info["rung"] == 0


def test_the_highest_rung_is_served_first():
    study = _study()
    while True:
        t = study.ask()
        if t.info["rung"] == 2:
            break
        study.tell(t, t.params["x"])                    # the value is x: smaller is better
    ones = [x for x in study.trials if x.info.get("rung") == 1 and x.state == "complete"]
    assert len(ones) == 3                              # the first moment rung 1 has eta results
    assert t.parent_id == min(ones, key=lambda x: x.value).id and t.budget == 9.0
    for one in ones:                                   # each promoted from the top third of rung 0 as it stood
        before = sorted((x for x in study.trials if x.info.get("rung") == 0 and x.id < one.id), key=lambda x: x.value)
        assert one.parent_id in {x.id for x in before[:len(before) // 3]}


def test_parallel_workers_promote_from_checkpoints():
    study = _study()
    study.optimize(asha_objective, n_trials=30, n_workers=2)
    trials = study.trials
    assert len(trials) == 30 and all(t.state == "complete" for t in trials)
    promoted = [t for t in trials if t.parent_id is not None]
    assert promoted and any(t.info["rung"] == 2 for t in trials)
    for t in promoted:
        parent = study.get_trial(t.parent_id)
        assert t.attrs["continued_from"] == parent.budget and t.info["rung"] == parent.info["rung"] + 1


def test_resume_after_reopening_the_study(tmp_path):
    path = str(tmp_path / "asha.db")
    one = _study(path)
    one.optimize(asha_objective, n_trials=12)
    first = [(t.params, t.budget, t.parent_id) for t in one.trials]
    one.storage.close()
    again = _study(path)
    again.optimize(asha_objective, n_trials=8)
    straight = _study()
    straight.optimize(asha_objective, n_trials=20)
    assert [(t.params, t.budget, t.parent_id) for t in again.trials][:12] == first
    assert [(t.params, t.budget, t.parent_id) for t in again.trials] == \
        [(t.params, t.budget, t.parent_id) for t in straight.trials]


def test_by_name_and_in_tune():
    assert isinstance(make_searcher("asha"), ASHA)
    data = make_moons(n_samples=200, noise=0.2, seed=0)
    X, X_val, y, y_val = train_test_split(data.X, data.y, 0.25, seed=0)
    result = nnhp.tune(X, y, validation_data=(X_val, y_val), searcher="asha", n_trials=8, max_epochs=9,
                       space={"n_layers": 1, "units_1": Int(8, 16), "batch_size": 64}, seed=0, refit=False)
    assert len(result.study.trials) == 8
    assert {t.budget for t in result.study.trials} >= {1.0}


def test_bad_settings():
    with pytest.raises(ValueError, match="eta"):
        ASHA(eta=1)
    with pytest.raises(ValueError, match="min_budget"):
        ASHA(max_budget=1, min_budget=3)


def test_cli_asha_space_leaves_the_epochs_to_the_searcher(capsys):
    from nnhp.cli import main

    assert main(["tune", "--data", "moons", "--searcher", "asha", "--show-space"]) == 0
    assert "epochs" not in capsys.readouterr().out
    assert main(["tune", "--data", "moons", "--searcher", "random", "--show-space"]) == 0
    assert "epochs" in capsys.readouterr().out
