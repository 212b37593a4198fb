import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from nnhp.search import Float, InMemoryStorage, Int, RandomSearch, SQLiteStorage, Space, StorageError, Study
from nnhp.search.study import INTERRUPTED

REPO = Path(__file__).resolve().parents[1]


def space():
    return Space({"x": Float(-5.0, 5.0), "n": Int(1, 4)})


def quadratic(trial):
    return (trial.params["x"] - 1.0) ** 2 + trial.params["n"]


@pytest.fixture(params=["memory", "sqlite"])
def storage(request, tmp_path):
    return InMemoryStorage() if request.param == "memory" else SQLiteStorage(tmp_path / "study.db")


# --- both backends behave the same --------------------------------------------------------------
def test_trials_round_trip_through_storage(storage):
    study = Study(space(), RandomSearch(seed=0), storage=storage, name="s")
    trial = study.ask()
    trial.report(3.5, 0)
    trial.report(2.5, 1)
    trial.set_attr("accuracy", np.float32(0.5))
    study.tell(trial, 1.25)
    failed = study.ask()
    study.tell(failed, ValueError("bad"))
    stored = study.trials
    assert [t.state for t in stored] == ["complete", "failed"]
    assert stored[0].value == 1.25 and stored[0].intermediate == {0: 3.5, 1: 2.5}
    assert stored[0].attrs == {"accuracy": 0.5}
    assert stored[0].params == trial.params and stored[0].duration >= 0
    assert stored[1].error == "ValueError: bad" and stored[1].value is None


def test_trials_handed_out_are_copies_the_caller_may_change(storage):
    study = Study(space(), RandomSearch(seed=0), storage=storage, name="s")
    trial = study.ask()
    trial.report(0.5, 0)
    trial.set_attr("curve", [[1.0, 2.0], {"best": 1.0}])
    study.tell(trial, 1.0)
    for _ in range(2):                         # the second read is served from what the first parsed
        mine = study.trials[0]
        mine.params["x"] = 99.0
        mine.attrs["curve"][0].append(3.0)
        mine.attrs["curve"][1]["best"] = 0.0
        mine.info["mine"] = True
        mine.intermediate[1] = 0.25
        mine.state, mine.value = "failed", None
        again = study.trials[0]
        assert again.params == trial.params and again.attrs == {"curve": [[1.0, 2.0], {"best": 1.0}]}
        assert again.info == {} and again.intermediate == {0: 0.5}
        assert (again.state, again.value) == ("complete", 1.0)
        assert study.get_trial(0).attrs == again.attrs


def test_sqlite_reads_see_what_other_connections_commit(tmp_path):
    path = tmp_path / "study.db"
    study = Study(space(), RandomSearch(seed=0), storage=path, name="s")
    study.optimize(quadratic, n_trials=3)
    assert [t.state for t in study.trials] == ["complete"] * 3
    other = Study(storage=path, name="s", fail_stale=False)         # another process, say
    late = other.ask()
    assert [t.state for t in study.trials] == ["complete"] * 3 + ["running"]
    other.tell(late, 0.5)
    assert study.trials[3].value == 0.5
    other.storage.report(other.study_id, 1, 0, 7.0)
    other.storage.report(other.study_id, 1, 0, 8.0)                # the same step, replaced
    with sqlite3.connect(path) as raw:                                # not even nnhp
        raw.execute("UPDATE trials SET error = 'edited' WHERE number = 2")
    trials = study.trials
    assert trials[1].intermediate == {0: 8.0} and trials[2].error == "edited"
    assert [t.value for t in trials[:3]] == [t.value for t in other.trials[:3]]


def test_checkpoints_round_trip_and_reach_the_child_trial(storage):
    study = Study(space(), RandomSearch(seed=0), storage=storage)
    parent = study.ask()
    arrays = {"weights": np.arange(6, dtype=np.float32).reshape(2, 3), "step": np.array(7),
              "name": np.array("adam")}
    parent.save_checkpoint(arrays)
    study.tell(parent, 1.0)
    child = study.ask(parent.params, budget=9)
    assert child.checkpoint is None                     # no parent given
    from nnhp.search import Proposal

    class Promote:
        def ask(self, study):
            return Proposal(dict(parent.params), budget=9, parent_id=parent.id)

    study.searcher = Promote()
    promoted = study.ask()
    assert promoted.parent_id == parent.id and promoted.budget == 9
    loaded = promoted.checkpoint
    assert loaded.keys() == arrays.keys()
    for key in arrays:
        np.testing.assert_array_equal(loaded[key], arrays[key])
        assert loaded[key].dtype == arrays[key].dtype
    loaded["weights"][:] = -1                           # a copy: storage keeps the original
    np.testing.assert_array_equal(promoted.load_checkpoint(parent.id)["weights"], arrays["weights"])
    storage.delete_checkpoint(study.study_id, parent.id)
    assert promoted.load_checkpoint(parent.id) is None


def test_object_arrays_are_refused_in_checkpoints(storage):
    study = Study(space(), storage=storage)
    trial = study.ask()
    with pytest.raises(TypeError, match="object array"):
        trial.save_checkpoint({"bad": np.array([{"a": 1}], dtype=object)})


def test_a_pickled_study_keeps_its_trials_and_goes_on_searching(storage):
    """A fitted nnhp.sklearn estimator is pickled with its study: the copy reads the same trials
    (SQLite: by reopening the file) and can run more."""
    import pickle
    study = Study(space(), RandomSearch(seed=0), storage=storage, name="pickled")
    study.optimize(quadratic, n_trials=4)
    copy = pickle.loads(pickle.dumps(study))
    assert [(t.params, t.value) for t in copy.trials] == [(t.params, t.value) for t in study.trials]
    copy.optimize(quadratic, n_trials=2)
    assert len(copy.trials) == 6 and copy.best_trial.value <= study.best_trial.value


def test_two_study_names_stay_separate(storage):
    a = Study(space(), RandomSearch(seed=0), storage=storage, name="a")
    b = Study(space(), RandomSearch(seed=1), storage=storage, name="b", direction="maximize")
    a.optimize(quadratic, n_trials=3)
    b.optimize(quadratic, n_trials=5)
    assert len(a.trials) == 3 and len(b.trials) == 5
    assert [t.id for t in b.trials] == [0, 1, 2, 3, 4]
    assert set(storage.study_names()) == {"a", "b"}
    assert Study(storage=storage, name="b").direction == "maximize"


def test_reopening_with_another_direction_is_an_error(storage):
    Study(space(), storage=storage, name="s", direction="minimize")
    with pytest.raises(StorageError, match="direction='minimize'.*direction='maximize'"):
        Study(space(), storage=storage, name="s", direction="maximize")


# --- SQLite specifics ------------------------------------------------------------------------------
def test_reopened_sqlite_study_continues(tmp_path):
    path = tmp_path / "study.db"
    first = Study(space(), RandomSearch(seed=3), storage=path, name="digits")
    first.optimize(quadratic, n_trials=4)
    first.storage.close()
    again = Study(searcher=RandomSearch(seed=3), storage=str(path), name="digits")   # space read back
    assert again.space == space()
    assert [t.id for t in again.trials] == [0, 1, 2, 3]
    again.optimize(quadratic, n_trials=3)
    trials = again.trials
    assert [t.id for t in trials] == list(range(7))
    assert len({again.space.key(t.params) for t in trials}) == 7       # continued, not replayed


def test_sqlite_uses_write_ahead_logging(tmp_path):
    storage = SQLiteStorage(tmp_path / "study.db")
    assert storage._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    with pytest.raises(StorageError, match="SQLite database but not an nnhp study.*customers"):
        Study(space(), storage=path)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, not a database\n" * 10)
    with pytest.raises(StorageError, match="not an SQLite database"):
        Study(space(), storage=path)
    with pytest.raises(StorageError, match="directory"):
        Study(space(), storage=tmp_path)
    assert path.read_text().startswith("hello")                        # untouched


def test_an_empty_file_becomes_a_study_database(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    study = Study(space(), storage=path)
    study.optimize(quadratic, n_trials=2)
    assert len(Study(storage=path).trials) == 2


# --- SIGKILL in the middle of optimize ----------------------------------------------------------------
CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from nnhp.search import Float, Int, RandomSearch, Space, Study

    path, ready, hang_at = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    space = Space({"x": Float(-5.0, 5.0), "n": Int(1, 4)})

    def objective(trial):
        if trial.id == hang_at:
            ready.write_text("running")          # the parent kills us while this trial runs
            time.sleep(600)
        trial.report(float(trial.id), 0)
        time.sleep(0.01)
        return (trial.params["x"] - 1.0) ** 2 + trial.params["n"]

    study = Study(space, RandomSearch(seed=0), storage=path, name="killed")
    study.optimize(objective, n_trials=100)
""")


def run_child(tmp_path, hang_at):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    ready = tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, str(script), str(tmp_path / "study.db"), str(ready), str(hang_at)],
                             env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, "the child never reached the trial to be killed in"
        time.sleep(0.02)
    return child


def test_sigkill_mid_study_loses_no_completed_trial(tmp_path):
    child = run_child(tmp_path, hang_at=6)
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL

    study = Study(space(), RandomSearch(seed=0), storage=tmp_path / "study.db", name="killed")
    trials = study.trials
    assert [t.id for t in trials] == list(range(7))
    assert [t.state for t in trials] == ["complete"] * 6 + ["failed"]
    for trial in trials[:6]:                       # every completed trial, with its value and reports
        assert trial.value == pytest.approx(quadratic(trial))
        assert trial.intermediate == {0: float(trial.id)}
    assert trials[6].error == INTERRUPTED

    study.optimize(quadratic, n_trials=20 - 6)      # finish the rest: 20 completed in all
    trials = study.trials
    assert sum(t.state == "complete" for t in trials) == 20
    assert len({study.space.key(t.params) for t in trials}) == len(trials)


def test_sigkill_at_random_moments_keeps_the_database_consistent(tmp_path):
    # no staged hang: kill whenever, several times over the same file
    for delay in [0.4, 0.7, 0.55]:
        script = tmp_path / "child.py"
        script.write_text(CHILD)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        child = subprocess.Popen([sys.executable, str(script), str(tmp_path / "study.db"),
                                  str(tmp_path / "unused"), "100000"], env=env)
        deadline = time.monotonic() + 60
        while not (tmp_path / "study.db").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay + 0.5)                         # past start-up, into the trials
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        study = Study(space(), storage=tmp_path / "study.db", name="killed")
        trials = study.trials
        assert [t.id for t in trials] == list(range(len(trials)))
        assert all(t.state in ("complete", "failed") for t in trials)
        for trial in trials:
            if trial.state == "complete":
                assert trial.value == pytest.approx(quadratic(trial))
            else:
                assert trial.error == INTERRUPTED
        study.storage.close()
    assert sum(t.state == "complete" for t in trials) > 0


def test_a_process_joining_a_live_study_leaves_its_running_trials_alone(tmp_path):
    path = tmp_path / "shared.db"
    first = Study(space(), RandomSearch(seed=0), storage=path, name="shared")
    running = first.ask()
    joined = Study(space(), RandomSearch(seed=1), storage=path, name="shared", fail_stale=False)
    assert joined.trials[0].state == "running"
    extra = joined.ask()
    joined.tell(extra, 2.0)
    first.tell(running, 1.0)
    assert [t.state for t in first.trials] == ["complete", "complete"]


def test_a_trial_marked_interrupted_that_still_finishes_keeps_its_result(tmp_path):
    path = tmp_path / "shared.db"
    first = Study(space(), RandomSearch(seed=0), storage=path, name="shared")
    running = first.ask()
    Study(space(), storage=path, name="shared")               # marks it failed (interrupted)
    assert first.trials[0].error == INTERRUPTED
    first.tell(running, 1.5)
    assert first.trials[0].state == "complete" and first.trials[0].value == 1.5
