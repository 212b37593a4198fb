import numpy as np
import pytest

from nnhp.search import (Choice, Float, GridSearch, Int, RandomSearch, SearchExhausted, Space, Study,
                         make_searcher)


def ask_all(study, limit=10_000):
    study.optimize(lambda trial: 0.0, n_trials=limit)
    return [t.params for t in study.trials]


# --- grid ---------------------------------------------------------------------------------------
def test_grid_is_the_full_cross_product_in_order():
    space = Space({"lr": Float(1e-3, 1e-1, log=True), "act": Choice(["relu", "tanh"]), "n": Int(1, 2),
                   "epochs": 5})
    points = ask_all(Study(space, GridSearch(points_per_dim=3)))
    expected = [{"lr": lr, "act": act, "n": n, "epochs": 5}
                for lr in (1e-3, 1e-2, 1e-1) for act in ("relu", "tanh") for n in (1, 2)]
    assert points == expected


def test_grid_stops_when_exhausted():
    study = Study(Space({"a": Choice(["x", "y"])}), GridSearch())
    study.optimize(lambda t: 0.0, n_trials=50)
    assert len(study.trials) == 2


def test_grid_respects_conditions():
    space = Space({"n_layers": Int(1, 3),
                   "units_2": Choice([32, 64], when=("n_layers", ">=", 2)),
                   "units_3": Choice([32, 64], when=("n_layers", ">=", 3))})
    points = ask_all(Study(space, GridSearch()))
    assert len(points) == 1 + 2 + 4
    assert points[0] == {"n_layers": 1}
    assert points[-1] == {"n_layers": 3, "units_2": 64, "units_3": 64}
    assert len({Space.key(space, p) for p in points}) == 7


def test_grid_grids_large_int_ranges_and_reverse_log_floats():
    space = Space({"units": Int(16, 1024, log=True), "beta": Float(0.9, 0.999, reverse_log=True)})
    points = ask_all(Study(space, GridSearch(points_per_dim=3, max_int_values=16)))
    assert sorted({p["units"] for p in points}) == [16, 128, 1024]
    assert sorted({p["beta"] for p in points}) == pytest.approx([0.9, 0.99, 0.999])
    assert len(points) == 9


def test_grid_resumes_a_reopened_study_where_it_stopped(tmp_path):
    space = Space({"a": Int(1, 3), "b": Choice(["x", "y"])})
    first = Study(space, GridSearch(), storage=tmp_path / "g.db")
    first.optimize(lambda t: 0.0, n_trials=4)
    again = Study(space, GridSearch(), storage=tmp_path / "g.db")
    again.optimize(lambda t: 0.0)
    points = [(t.params["a"], t.params["b"]) for t in again.trials]
    assert points == [(a, b) for a in (1, 2, 3) for b in ("x", "y")]


def test_grid_refuses_an_enormous_grid():
    space = Space({f"x{i}": Float(0, 1) for i in range(8)})
    with pytest.raises(ValueError, match="more than 1000 points"):
        Study(space, GridSearch(points_per_dim=5, max_points=1000)).ask()


# --- random -------------------------------------------------------------------------------------
def test_random_search_is_deterministic_under_a_seed():
    space = Space({"lr": Float(1e-4, 1e-1, log=True), "n": Int(1, 8), "act": Choice(["relu", "tanh", "elu"])})
    a = ask_all(Study(space, RandomSearch(seed=5)), limit=20)
    b = ask_all(Study(space, RandomSearch(seed=5)), limit=20)
    c = ask_all(Study(space, RandomSearch(seed=6)), limit=20)
    assert a == b and a != c


def test_random_search_never_repeats_in_a_small_discrete_space_then_stops():
    space = Space({"n": Int(1, 3), "act": Choice(["relu", "tanh"])})
    points = ask_all(Study(space, RandomSearch(seed=0)), limit=100)
    assert len(points) == 6
    assert len({space.key(p) for p in points}) == 6


def test_random_search_continues_a_reopened_study_without_replaying(tmp_path):
    space = Space({"lr": Float(1e-4, 1e-1, log=True)})
    first = Study(space, RandomSearch(seed=1), storage=tmp_path / "r.db")
    first.optimize(lambda t: 0.0, n_trials=3)
    again = Study(space, RandomSearch(seed=1), storage=tmp_path / "r.db")
    again.optimize(lambda t: 0.0, n_trials=3)
    in_one_go = ask_all(Study(space, RandomSearch(seed=1)), limit=6)
    assert [t.params for t in again.trials] == in_one_go


def test_random_search_respects_scales_and_conditions():
    space = Space({"lr": Float(1e-5, 1e-1, log=True), "opt": Choice(["sgd", "adam"]),
                   "momentum": Float(0.5, 0.999, reverse_log=True, when=("opt", "==", "sgd"))})
    points = ask_all(Study(space, RandomSearch(seed=0)), limit=400)
    decades = np.floor(np.log10([p["lr"] for p in points]))
    assert set(decades) == {-5, -4, -3, -2}
    assert all(("momentum" in p) == (p["opt"] == "sgd") for p in points)


def test_make_searcher_by_name():
    assert isinstance(make_searcher("grid", points_per_dim=2), GridSearch)
    assert make_searcher("random", seed=3).seed == 3
    searcher = RandomSearch(seed=1)
    assert make_searcher(searcher) is searcher
    with pytest.raises(TypeError, match="ask"):
        make_searcher(object())


# --- ask_ahead: the next n proposals at once, as n asks would give them -----------------------

def _asked_one_by_one(searcher, space, n, held=0):
    """(ask_ahead's n proposals, the params of n asks each made a trial before the next), after
    ``held`` earlier trials."""
    study = Study(space, searcher)
    for _ in range(held):
        study.tell(study.ask(), 0.0)
    ahead = searcher.ask_ahead(study, n)
    asked = []
    for _ in range(n):
        try:
            trial = study.ask()
        except SearchExhausted:
            break
        asked.append(trial.params)
        study.tell(trial, 0.0)
    return ahead, asked


@pytest.mark.parametrize("held", [0, 3])
def test_random_ask_ahead_gives_what_asks_one_by_one_give(held):
    space = Space({"x": Float(1e-3, 1.0, log=True), "n": Int(1, 4), "act": Choice(["relu", "tanh"])})
    ahead, asked = _asked_one_by_one(RandomSearch(seed=5), space, 12, held)
    assert [p.params for p in ahead] == asked
    assert len(ahead) == 12


def test_random_ask_ahead_avoids_repeats_and_stops_at_a_small_spaces_end():
    space = Space({"n": Int(1, 3), "act": Choice(["relu", "tanh"])})     # 6 points
    ahead, asked = _asked_one_by_one(RandomSearch(seed=1), space, 10)
    assert [p.params for p in ahead] == asked
    assert len(ahead) == 6 and len({(p.params["n"], p.params["act"]) for p in ahead}) == 6


def test_grid_ask_ahead_gives_the_next_points_and_stops_at_the_end():
    space = Space({"n": Int(1, 3), "x": Float(0.0, 1.0)})
    ahead, asked = _asked_one_by_one(GridSearch(points_per_dim=2), space, 10, held=2)
    assert [p.params for p in ahead] == asked
    assert len(ahead) == 4                                   # 6 points, 2 held


def test_searchers_that_learn_cannot_ask_ahead():
    space = Space({"x": Float(0.0, 1.0)})
    for name in ("gp", "hyperband", "bohb", "asha"):
        assert make_searcher(name).ask_ahead(Study(space, make_searcher(name)), 3) is None
