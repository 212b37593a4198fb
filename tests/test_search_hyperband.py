"""Tests for nnhp/search/hyperband.py: the bracket schedule, promotions, warm-started training."""
from collections import Counter

import numpy as np
import pytest

from nnhp.search import Float, Space, Study
from nnhp.search.hyperband import (Hyperband, SuccessiveHalving, budget_spent, hyperband_brackets,
                                   max_bracket)

# Li et al. (JMLR 2018), Table 1: R = 81, eta = 3; (n_i, r_i) per rung, bracket by bracket.
PAPER_TABLE_1 = {
    4: [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
    3: [(34, 3), (11, 9), (3, 27), (1, 81)],
    2: [(15, 9), (5, 27), (1, 81)],
    1: [(8, 27), (2, 81)],
    0: [(5, 81)],
}


def test_bracket_table_equals_the_papers_table_1():
    brackets = hyperband_brackets(max_budget=81, eta=3, min_budget=1)
    assert brackets == [PAPER_TABLE_1[s] for s in (4, 3, 2, 1, 0)]


def test_schedule_edge_cases():
    assert max_bracket(243, 3, 1) == 5             # float log_3(243) = 4.999...
    assert max_bracket(80, 3, 1) == 3
    assert hyperband_brackets(1, 3, 1) == [[(1, 1)]]
    assert [rungs[-1][1] for rungs in hyperband_brackets(100, 3, 1)] == [100] * 5
    # min_budget sets the smallest rung: R/r_min = 9 -> s_max = 2, first rung at 3 epochs.
    assert hyperband_brackets(27, 3, 3)[0] == [(9, 3), (3, 9), (1, 27)]
    with pytest.raises(ValueError):
        hyperband_brackets(81, 1)
    with pytest.raises(ValueError):
        hyperband_brackets(1, 3, 2)


def _toy_study(searcher, direction="minimize"):
    return Study(Space({"x": Float(0.0, 1.0)}), searcher=searcher, direction=direction)


def _toy_objective(trial):
    # Configurations nearer x = 0.3 are better; more budget helps every configuration.
    return (trial.params["x"] - 0.3) ** 2 + 1.0 / trial.budget


def test_one_iteration_runs_exactly_the_brackets_rungs_with_parents():
    study = _toy_study(Hyperband(max_budget=81, eta=3, seed=0, max_iterations=1))
    study.optimize(_toy_objective)
    trials = study.trials
    assert len(trials) == sum(n for rungs in PAPER_TABLE_1.values() for n, _ in rungs) == 206
    counts = Counter((t.info["s"], t.info["rung"], t.budget) for t in trials)
    for s, rungs in PAPER_TABLE_1.items():
        for rung, (n, r) in enumerate(rungs):
            assert counts[(s, rung, r)] == n
    by_id = {t.id: t for t in trials}
    for t in trials:
        if t.info["rung"] == 0:
            assert t.parent_id is None
        else:                       # a promotion continues its parent, same params, eta x the budget
            parent = by_id[t.parent_id]
            assert parent.params == t.params
            assert parent.info["rung"] == t.info["rung"] - 1 and parent.info["bracket"] == t.info["bracket"]
            assert t.budget == 3 * parent.budget
    # Fresh trials pay their budget, continued ones only the extra epochs.
    expected = sum(n * r for rungs in PAPER_TABLE_1.values() for n, r in rungs[:1])
    expected += sum(n * (r - rungs[i - 1][1]) for rungs in PAPER_TABLE_1.values()
                    for i, (n, r) in enumerate(rungs) if i)
    assert budget_spent(trials) == expected


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_promotions_pick_the_best_by_value(direction):
    sign = 1 if direction == "minimize" else -1
    study = _toy_study(SuccessiveHalving(n_configs=27, max_budget=9, eta=3, seed=1), direction)
    failing = set()

    def objective(trial):
        if trial.budget == 1 and len(failing) < 3 and trial.params["x"] < 0.3:
            failing.add(trial.id)
            raise RuntimeError("diverged")        # failed trials are never promoted
        return sign * _toy_objective(trial)

    study.optimize(objective)
    trials = study.trials
    assert [sum(t.budget == b for t in trials) for b in (1, 3, 9)] == [27, 9, 3]
    for budget, next_budget in ((1, 3), (3, 9)):
        rung = [t for t in trials if t.budget == budget and t.state == "complete"]
        ranked = sorted(rung, key=lambda t: sign * t.value)
        promoted = {t.parent_id for t in trials if t.budget == next_budget}
        assert promoted == {t.id for t in ranked[:len(promoted)]}
        assert not promoted & failing
    assert study.searcher.is_finished(study)


def test_several_iterations_when_trials_allow_and_fresh_configs_each_time():
    study = _toy_study(Hyperband(max_budget=9, eta=3, seed=0))
    # R=9, eta=3: brackets 9@1,3@3,1@9 | 5@3,1@9 | 3@9 -> 22 trials per iteration.
    study.optimize(_toy_objective, n_trials=50)
    trials = study.trials
    assert len(trials) == 50
    assert Counter(t.info["iteration"] for t in trials) == {0: 22, 1: 22, 2: 6}
    first = {t.params["x"] for t in trials if t.info["iteration"] == 0}
    second = {t.params["x"] for t in trials if t.info["iteration"] == 1}
    assert not first & second


def test_parallel_workers_never_stall_on_a_rung():
    study = _toy_study(Hyperband(max_budget=9, eta=3, seed=0, max_iterations=1))
    study.optimize(_toy_objective, n_workers=3)
    trials = study.trials
    assert len(trials) == 22 and all(t.state == "complete" for t in trials)


@pytest.mark.parametrize("storage", ["memory", "sqlite"])
def test_resumed_training_matches_uninterrupted_training_bit_for_bit(tmp_path, storage):
    import nnhp
    from nnhp.checkpoint import checkpoint_state, restore_checkpoint

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(np.int64)

    def build(params):
        model = nnhp.MLP([6, 16, 2], dropout=0.1, seed=3)
        return model, nnhp.optim.Adam(lr=params["lr"])

    def objective(trial):
        model, optimizer = build(trial.params)
        start = 0
        if trial.checkpoint is not None:
            start = restore_checkpoint(trial.checkpoint, model, optimizer)
        nnhp.fit(model, X, y, optimizer=optimizer, epochs=int(trial.budget), initial_epoch=start,
                 batch_size=16, seed=5)
        trial.save_checkpoint(checkpoint_state(model, optimizer, int(trial.budget)))
        trial.set_attr("weights", model.flat_params.tolist())
        return float(nnhp.evaluate(model, X, y)["loss"])

    study = Study(Space({"lr": Float(1e-3, 1e-2, log=True)}),
                  searcher=SuccessiveHalving(n_configs=3, max_budget=9, eta=3, seed=0),
                  storage=None if storage == "memory" else str(tmp_path / "study.db"))
    study.optimize(objective)
    final = [t for t in study.trials if t.budget == 9]
    assert len(final) == 1 and final[0].parent_id is not None
    assert budget_spent(study.trials) == 3 * 1 + 1 * 2 + 1 * 6

    model, optimizer = build(final[0].params)          # the same configuration, 9 epochs in one go
    nnhp.fit(model, X, y, optimizer=optimizer, epochs=9, batch_size=16, seed=5)
    np.testing.assert_array_equal(np.asarray(final[0].attrs["weights"], dtype=np.float32),
                                  model.flat_params)


# --- stopping and reopening ------------------------------------------------------------------------
def _make(kind, seed=0, **kwargs):
    if kind == "hyperband":               # R=9, eta=3: 9@1,3@3,1@9 | 5@3,1@9 | 3@9 -> 22 trials per iteration
        return Hyperband(max_budget=9, eta=3, seed=seed, **kwargs)
    return SuccessiveHalving(n_configs=9, max_budget=9, eta=3, seed=seed, **kwargs)


def _history(trials):
    """What was proposed, in order, with interrupted trials left out and parents named by their
    place in that order (an interrupted trial takes an id, shifting the ids after it)."""
    kept = [t for t in trials if not t.interrupted]
    place = {t.id: i for i, t in enumerate(kept)}
    return [(t.params, t.budget, None if t.parent_id is None else place[t.parent_id],
             t.info["bracket"], t.info["rung"], t.info["config"], t.value) for t in kept]


def _uninterrupted(kind, n_trials):
    study = _toy_study(_make(kind))
    study.optimize(_toy_objective, n_trials=n_trials)
    return study.trials


def _reopen(path, kind, **kwargs):
    return Study(Space({"x": Float(0.0, 1.0)}), searcher=_make(kind, **kwargs), storage=str(path), name="hb")


# Stopped mid-rung, at the end of a rung (9, 12), at the end of a bracket (13, 22), mid-promotions.
@pytest.mark.parametrize("kind, total, stopped_after",
                         [("hyperband", 40, n) for n in (1, 7, 9, 11, 12, 13, 22, 25)]
                         + [("successive_halving", 13, n) for n in (1, 7, 9, 11, 12)])
def test_a_reopened_study_proposes_what_the_uninterrupted_one_would(tmp_path, kind, total, stopped_after):
    first = _reopen(tmp_path / "study.db", kind)
    first.optimize(_toy_objective, n_trials=stopped_after)
    first.storage.close()
    again = _reopen(tmp_path / "study.db", kind)      # a new process: a new searcher, same seed
    again.optimize(_toy_objective, n_trials=total - stopped_after)
    assert _history(again.trials) == _history(_uninterrupted(kind, total))


@pytest.mark.parametrize("kind, total", [("hyperband", 30), ("successive_halving", 13)])
@pytest.mark.parametrize("stopped_in", [4, 10, 12])     # a fresh configuration, a promotion, a last rung
def test_a_trial_a_killed_process_left_running_is_run_again(tmp_path, kind, total, stopped_in):
    first = _reopen(tmp_path / "study.db", kind)
    first.optimize(_toy_objective, n_trials=stopped_in)
    lost = first.ask()                           # the process dies inside this trial
    first.storage.close()
    again = _reopen(tmp_path / "study.db", kind)      # marks the lost trial failed (interrupted)
    assert again.get_trial(lost.id).interrupted
    again.optimize(_toy_objective, n_trials=total - stopped_in)
    trials = again.trials
    rerun = trials[lost.id + 1]
    assert (rerun.params, rerun.budget, rerun.parent_id) == (lost.params, lost.budget, lost.parent_id)
    assert _history(trials) == _history(_uninterrupted(kind, total))


def test_a_trial_stopped_with_ctrl_c_is_run_again_by_the_same_searcher():
    searcher = _make("hyperband")
    study = _toy_study(searcher)

    def objective(trial):
        if trial.id == 10:
            raise KeyboardInterrupt
        return _toy_objective(trial)

    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, n_trials=30)
    stopped = study.trials[10]
    assert stopped.error == "interrupted (KeyboardInterrupt)" and stopped.interrupted
    study.optimize(_toy_objective, n_trials=30 - 10)
    assert study.trials[11].params == stopped.params and study.trials[11].parent_id == stopped.parent_id
    assert _history(study.trials) == _history(_uninterrupted("hyperband", 30))


def test_fresh_configurations_are_drawn_from_seed_bracket_and_index():
    study = _toy_study(_make("hyperband", seed=7))
    study.optimize(_toy_objective, n_trials=30)
    fresh = [t for t in study.trials if t.parent_id is None]
    for trial in fresh:
        rng = np.random.default_rng([7, trial.info["bracket"], trial.info["config"]])
        assert trial.params == study.space.sample(rng)
    assert len({t.params["x"] for t in fresh}) == len(fresh)
    other = _toy_study(_make("hyperband", seed=8))
    other.optimize(_toy_objective, n_trials=5)
    assert other.trials[0].params != study.trials[0].params


def test_two_processes_sharing_a_study_split_its_brackets(tmp_path):
    # Each process reads the bracket state from the shared storage on every ask, so the two
    # together run one Hyperband (not two copies of bracket 0).
    one = _reopen(tmp_path / "study.db", "hyperband")
    two = Study(searcher=_make("hyperband"), storage=str(tmp_path / "study.db"), name="hb", fail_stale=False)
    for i in range(30):
        study = (one, two)[i % 2]
        trial = study.ask()
        study.tell(trial, _toy_objective(trial))
    assert _history(one.trials) == _history(_uninterrupted("hyperband", 30))


def test_reopening_with_another_schedule_is_a_clear_error(tmp_path):
    first = _reopen(tmp_path / "study.db", "hyperband")
    first.optimize(_toy_objective, n_trials=3)
    first.storage.close()
    again = Study(searcher=Hyperband(max_budget=27, eta=3, seed=0), storage=str(tmp_path / "study.db"), name="hb")
    with pytest.raises(ValueError, match="max_budget"):
        again.ask()
