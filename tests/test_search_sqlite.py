"""The SQLite study file (nnhp/search/sqlite.py): read-only opening, damaged and foreign files (issue 12)."""
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time

import numpy as np
import pytest

from nnhp import report
from nnhp.search import Float, SQLiteStorage, StorageError, Study


def digest(path) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def make_study(path, name="s", n_trials=3, checkpoint=False):
    study = Study({"x": Float(0.0, 1.0)}, storage=str(path), name=name)
    for i in range(n_trials):
        trial = study.ask()
        trial.report(0.5, 0)
        if checkpoint:
            trial.save_checkpoint({"w": np.arange(200.0) + i})
        study.tell(trial, 0.1 * i)
    study.storage.close()
    return study


# --- read-only --------------------------------------------------------------------------------------
def test_a_report_leaves_a_rollback_journal_database_byte_for_byte_alone(tmp_path):
    path = tmp_path / "journal.db"
    make_study(path)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=DELETE")
    before, files = digest(path), sorted(os.listdir(tmp_path))
    report.write_report(str(path), str(tmp_path / "out"))
    assert digest(path) == before                         # it used to change, switched to WAL
    assert sorted(os.listdir(tmp_path)) == sorted(files + ["out"])
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_report_on_a_closed_wal_database_creates_no_side_files(tmp_path):
    path = tmp_path / "wal.db"
    make_study(path)
    assert not os.path.exists(f"{path}-wal")
    before = digest(path)
    [study] = report.load_studies(str(path))
    assert len(study["trials"]) == 3
    assert digest(path) == before and sorted(os.listdir(tmp_path)) == ["wal.db"]


def test_read_only_storage_refuses_to_write(tmp_path):
    path = tmp_path / "s.db"
    make_study(path)
    storage = SQLiteStorage(path, read_only=True)
    study_id, direction, _ = storage.open_study("s", None, None)
    assert direction == "minimize" and len(storage.get_trials(study_id)) == 3
    with pytest.raises(StorageError, match="opened read-only"):
        storage.create_trial(study_id, {"x": 0.5}, None, None, {})
    with pytest.raises(StorageError, match="holds no study named 'other'"):
        storage.open_study("other", None, None)


def test_read_only_storage_reports_empty_missing_and_foreign_files_plainly(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(StorageError, match="empty file: it holds no nnhp study"):
        report.load_studies(str(empty))
    assert empty.stat().st_size == 0                     # a 45 KB schema was written here before
    with pytest.raises(FileNotFoundError, match="study file not found"):
        report.load_studies(str(tmp_path / "nowhere.db"))
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE customers (id INTEGER)")
    before = digest(foreign)
    with pytest.raises(StorageError, match="not an nnhp study database"):
        report.load_studies(str(foreign))
    assert digest(foreign) == before


def _make_unwritable(path) -> bool:
    """Make ``path`` unwritable even for root (the immutable attribute), or by mode for others."""
    if os.geteuid() != 0:
        os.chmod(path, 0o444)
        os.chmod(os.path.dirname(path), 0o555)
        return True
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0


def _make_writable(path) -> None:
    if os.geteuid() != 0:
        os.chmod(os.path.dirname(path), 0o755)
        os.chmod(path, 0o644)
    else:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_a_report_needs_no_permission_to_write_the_study_file(tmp_path, journal):
    folder = tmp_path / "locked"
    folder.mkdir()
    path = folder / "s.db"
    make_study(path)
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA journal_mode={journal}")
    if not _make_unwritable(path):
        pytest.skip("cannot make a file unwritable here")
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):     # the file really is unwritable
            with sqlite3.connect(path) as db:
                db.execute("CREATE TABLE probe (x)")
        [study] = report.load_studies(str(path))        # "attempt to write a readonly database" before
        assert len(study["trials"]) == 3
    finally:
        _make_writable(path)


# --- damaged and foreign files ---------------------------------------------------------------------
def test_a_truncated_study_file_is_a_storage_error_and_stays_as_it_was(tmp_path):
    path = tmp_path / "s.db"
    make_study(path, n_trials=20, checkpoint=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    before = digest(path)
    with pytest.raises(StorageError, match="cannot be read as an nnhp study database"):
        Study({"x": Float(0.0, 1.0)}, storage=str(path), name="s")
    assert digest(path) == before


def test_a_damaged_checkpoint_is_a_storage_error_naming_the_trial(tmp_path):
    path = tmp_path / "s.db"
    make_study(path, checkpoint=True)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE checkpoints SET data = zeroblob(length(data)) WHERE number = 1")
    study = Study(storage=str(path), name="s")
    assert study.storage.load_checkpoint(study.study_id, 0)["w"][0] == 0.0
    with pytest.raises(StorageError, match="the checkpoint of trial 1 is not a readable checkpoint"):
        study.storage.load_checkpoint(study.study_id, 1)


def test_a_damaged_trial_record_is_a_storage_error(tmp_path):
    path = tmp_path / "s.db"
    make_study(path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE trials SET params = '{not json' WHERE number = 2")
    with pytest.raises(StorageError, match="the record of trial 2 is damaged"):
        Study(storage=str(path), name="s").trials


def test_a_study_file_in_a_missing_folder_is_named(tmp_path):
    with pytest.raises(StorageError, match="the folder .*nodir.* does not exist"):
        Study({"x": Float(0.0, 1.0)}, storage=str(tmp_path / "nodir" / "s.db"))


def test_a_schema_1_file_is_migrated_and_its_studies_adopt_an_identity(tmp_path):
    path = tmp_path / "old.db"
    make_study(path)
    with sqlite3.connect(path) as db:                    # what nnhp wrote before identities
        db.execute("ALTER TABLE studies DROP COLUMN identity")
        db.execute("UPDATE nnhp_meta SET value = '1' WHERE key = 'version'")
    [old] = report.load_studies(str(path))              # read-only: read as it is
    assert len(old["trials"]) == 3
    study = Study({"x": Float(0.0, 1.0)}, storage=str(path), name="s", identity={"data": "a"})
    assert len(study.trials) == 3 and study.storage.study_identity(study.study_id) == {"data": "a"}
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM nnhp_meta WHERE key = 'version'").fetchone()[0] == "2"
        assert json.loads(db.execute("SELECT identity FROM studies").fetchone()[0]) == {"data": "a"}


# --- several processes writing one file (issue 11) --------------------------------------------------
# A child process: open the study, say "ready", wait for "go", then create, report on and finish
# trials as fast as it can; print the trial numbers it got and its slowest write.
WRITER = """
import json, sys, time
from nnhp.search import SQLiteStorage
storage = SQLiteStorage(sys.argv[1], timeout=float(sys.argv[2]))
study_id, _, _ = storage.open_study("shared", "minimize", None)
print("ready", flush=True)
sys.stdin.readline()
numbers, slowest = [], 0.0
for i in range(int(sys.argv[3])):
    started = time.monotonic()
    trial = storage.create_trial(study_id, {"i": i}, None, None, {})
    slowest = max(slowest, time.monotonic() - started)
    for step in range(3):
        storage.report(study_id, trial.id, step, 0.1 * step)
    storage.set_trial_attr(study_id, trial.id, "writer", sys.argv[4])
    storage.finish_trial(study_id, trial.id, "complete", float(i), None)
    numbers.append(trial.id)
print(json.dumps({"numbers": numbers, "slowest": slowest}), flush=True)
"""


def test_writers_in_several_processes_wait_out_a_held_lock_and_every_write_lands(tmp_path):
    """Four processes create a new study file together, then write while another connection
    holds the write lock for 2 s (1 s less than their busy timeout): they wait, none fails."""
    import sys
    path, n_writers, n_trials, timeout, hold = tmp_path / "shared.db", 4, 15, 3.0, 2.0
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(timeout), str(n_trials), f"w{k}"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for k in range(n_writers)]
    try:
        for writer in writers:                      # all opened the file (racing to create it) without error
            assert writer.stdout.readline().strip() == "ready", writer.communicate(timeout=30)[1]
        locker = sqlite3.connect(path, isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")
        for writer in writers:
            writer.stdin.write("go\n")
            writer.stdin.flush()
        time.sleep(hold)
        locker.execute("COMMIT")
        outputs = [writer.communicate(timeout=60) for writer in writers]
    finally:
        for writer in writers:
            writer.kill()
    for writer, (out, err) in zip(writers, outputs):
        assert writer.returncode == 0 and "locked" not in err, err
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert max(result["slowest"] for result in results) >= hold - 0.5     # they really waited for the lock
    numbers = sorted(n for result in results for n in result["numbers"])
    assert numbers == list(range(n_writers * n_trials))                  # unique, none lost
    storage = SQLiteStorage(path, read_only=True)
    study_id, _, _ = storage.open_study("shared", None, None)
    trials = storage.get_trials(study_id)
    assert len(trials) == n_writers * n_trials
    assert all(t.state == "complete" and t.intermediate == {0: 0.0, 1: 0.1, 2: 0.2} for t in trials)
    assert sorted(t.attrs["writer"] for t in trials) == sorted(f"w{k}" for k in range(n_writers) for _ in range(n_trials))


def test_a_lock_held_past_the_timeout_is_a_storage_error_naming_the_file_and_the_timeout(tmp_path):
    path = tmp_path / "s.db"
    storage = SQLiteStorage(path, timeout=0.3)
    study_id, _, _ = storage.open_study("s", "minimize", None)
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with pytest.raises(StorageError, match=r"s\.db'.*database is locked.*busy timeout of 0\.3 s") as caught:
        storage.create_trial(study_id, {}, None, None, {})
    assert time.monotonic() - started >= 0.25                               # it waited before giving up
    assert not isinstance(caught.value, sqlite3.Error)
    assert storage.get_trials(study_id) == []                               # reads go on meanwhile (WAL)
    locker.execute("COMMIT")
    assert storage.create_trial(study_id, {}, None, None, {}).id == 0


def test_a_file_another_connection_is_writing_in_rollback_mode_is_waited_for(tmp_path):
    """SQLite refuses at once, without its busy timeout, to switch a file to WAL while another
    connection writes it in rollback-journal mode (the sqlite3 shell, say); opening it waits instead."""
    import threading
    path = tmp_path / "new.db"
    locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN IMMEDIATE")
    threading.Timer(0.5, locker.execute, ("COMMIT",)).start()
    started = time.monotonic()
    storage = SQLiteStorage(path, timeout=5.0)
    assert time.monotonic() - started >= 0.4
    assert storage._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    study_id, _, _ = storage.open_study("s", "minimize", None)
    assert storage.create_trial(study_id, {}, None, None, {}).id == 0


def test_the_busy_timeout_is_checked_and_travels_with_a_pickled_storage(tmp_path):
    import pickle
    with pytest.raises(ValueError, match="timeout must be a non-negative number of seconds, got -1"):
        SQLiteStorage(tmp_path / "s.db", timeout=-1)
    assert pickle.loads(pickle.dumps(SQLiteStorage(tmp_path / "s.db", timeout=7.5))).timeout == 7.5
