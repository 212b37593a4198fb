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
    from nnhp.train import checkpoint_state, restore_checkpoint

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
