"""Where a study keeps its trials: in memory, or in an SQLite file that survives the process.

Both backends implement the same small interface (:class:`Storage`); a :class:`~nnhp.search.Study`
only ever talks to that interface, so searchers and objectives never know which one is in use.

SQLite (standard library ``sqlite3``)
-------------------------------------
* Write-ahead logging (``journal_mode=WAL``): readers never block the writer and a commit is one
  append to the log. Every state change of a trial (created, intermediate value, attribute,
  checkpoint, finished) is its own transaction, so a process killed with SIGKILL loses at most
  the change it was in the middle of -- never a trial that had been told. (``synchronous=NORMAL``:
  durable against a crashed or killed process; a power cut may lose the last few commits.)
* Trial numbers are allocated inside ``BEGIN IMMEDIATE`` transactions, so several processes may
  share one study.
* Checkpoints are stored as ``.npz`` blobs (``np.savez`` into memory, read back with
  ``allow_pickle=False``): arrays only, nothing executable.
* Searchers read every trial on every ask. The parsed trials are kept, and handed out as
  copies, until the file changes -- by a commit of this connection (counted) or of any other
  connection or process (SQLite's ``PRAGMA data_version``); then only the rows that changed are
  parsed again.
* A file holds any number of studies, told apart by name. A file that is not SQLite, or an
  SQLite database that was not made by nnhp, is refused with a message saying so.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import sqlite3
import threading
import time

import numpy as np

from .trial import COMPLETE, FAILED, PRUNED, RUNNING, Trial

__all__ = ["Storage", "InMemoryStorage", "SQLiteStorage", "StorageError", "open_storage"]

SCHEMA_NAME = "nnhp-study"
SCHEMA_VERSION = 1


class StorageError(RuntimeError):
    """A storage that cannot be used: not a study database, a direction clash, a missing trial."""


class Storage:
    """The interface a Study uses. ``study_id`` is whatever ``open_study`` returned."""

    def open_study(self, name: str, direction: str | None, space: dict | None) -> tuple[object, str, dict | None]:
        """Create the study ``name`` or load it; returns (study_id, direction, stored space dict)."""
        raise NotImplementedError

    def study_names(self) -> list[str]:
        raise NotImplementedError

    def create_trial(self, study_id, params: dict, budget, parent_id, info: dict) -> Trial:
        raise NotImplementedError

    def finish_trial(self, study_id, trial_id: int, state: str, value, error) -> Trial:
        raise NotImplementedError

    def report(self, study_id, trial_id: int, step: int, value: float) -> None:
        raise NotImplementedError

    def set_trial_attr(self, study_id, trial_id: int, key: str, value) -> None:
        raise NotImplementedError

    def get_trials(self, study_id) -> list[Trial]:
        raise NotImplementedError

    def get_trial(self, study_id, trial_id: int) -> Trial:
        raise NotImplementedError

    def save_checkpoint(self, study_id, trial_id: int, arrays: dict) -> None:
        raise NotImplementedError

    def load_checkpoint(self, study_id, trial_id: int) -> dict | None:
        raise NotImplementedError

    def delete_checkpoint(self, study_id, trial_id: int) -> None:
        raise NotImplementedError

    def fail_running(self, study_id, error: str) -> list[int]:
        """Mark every trial still ``running`` as failed with ``error``; returns their ids."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def _check_direction(name: str, stored: str, asked: str | None) -> str:
    if asked is not None and asked != stored:
        raise StorageError(f"study {name!r} was created with direction={stored!r}; it cannot be "
                           f"reopened with direction={asked!r}")
    return stored


# --------------------------------------------------------------------------------------------
# In memory
# --------------------------------------------------------------------------------------------
class InMemoryStorage(Storage):
    """Trials in a dict, gone with the process. Thread-safe; hands out copies (``Trial.copy``)
    so that the record in storage changes only through the interface, as in SQLite."""

    def __init__(self):
        self._studies: dict[str, dict] = {}
        self._lock = threading.RLock()

    def __getstate__(self) -> dict:
        return {"_studies": self._studies}          # the lock belongs to one process

    def __setstate__(self, state: dict) -> None:
        self._studies = state["_studies"]
        self._lock = threading.RLock()

    def open_study(self, name, direction, space):
        with self._lock:
            if name in self._studies:
                study = self._studies[name]
                return name, _check_direction(name, study["direction"], direction), study["space"]
            self._studies[name] = {"direction": direction or "minimize", "space": space,
                                   "trials": [], "checkpoints": {}}
            return name, direction or "minimize", space

    def study_names(self):
        return list(self._studies)

    def _trial(self, study_id, trial_id) -> Trial:
        trials = self._studies[study_id]["trials"]
        if not 0 <= trial_id < len(trials):
            raise StorageError(f"study {study_id!r} has no trial {trial_id}")
        return trials[trial_id]

    def create_trial(self, study_id, params, budget, parent_id, info):
        with self._lock:
            trials = self._studies[study_id]["trials"]
            trial = Trial(len(trials), copy.deepcopy(params), budget=budget, parent_id=parent_id,
                          info=copy.deepcopy(info))
            trials.append(trial)
            return trial.copy()

    def finish_trial(self, study_id, trial_id, state, value, error):
        with self._lock:
            trial = self._trial(study_id, trial_id)
            trial.state, trial.value, trial.error, trial.finished = state, value, error, time.time()
            return trial.copy()

    def report(self, study_id, trial_id, step, value):
        with self._lock:
            self._trial(study_id, trial_id).intermediate[step] = value

    def set_trial_attr(self, study_id, trial_id, key, value):
        with self._lock:
            self._trial(study_id, trial_id).attrs[key] = copy.deepcopy(value)

    def get_trials(self, study_id):
        with self._lock:
            return [trial.copy() for trial in self._studies[study_id]["trials"]]

    def get_trial(self, study_id, trial_id):
        with self._lock:
            return self._trial(study_id, trial_id).copy()

    def save_checkpoint(self, study_id, trial_id, arrays):
        with self._lock:
            self._trial(study_id, trial_id)
            self._studies[study_id]["checkpoints"][trial_id] = {k: np.array(v) for k, v in arrays.items()}

    def load_checkpoint(self, study_id, trial_id):
        with self._lock:
            stored = self._studies[study_id]["checkpoints"].get(trial_id)
            return None if stored is None else {k: v.copy() for k, v in stored.items()}

    def delete_checkpoint(self, study_id, trial_id):
        with self._lock:
            self._studies[study_id]["checkpoints"].pop(trial_id, None)

    def fail_running(self, study_id, error):
        with self._lock:
            stale = [t for t in self._studies[study_id]["trials"] if t.state == RUNNING]
            for trial in stale:
                trial.state, trial.error, trial.finished = FAILED, error, time.time()
            return [t.id for t in stale]


# --------------------------------------------------------------------------------------------
# SQLite
# --------------------------------------------------------------------------------------------
_SQLITE_HEADER = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nnhp_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, direction TEXT NOT NULL,
    space TEXT, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    study_id INTEGER NOT NULL REFERENCES studies(id), number INTEGER NOT NULL,
    params TEXT NOT NULL, budget REAL, parent_id INTEGER, info TEXT NOT NULL, attrs TEXT NOT NULL,
    state TEXT NOT NULL, value REAL, error TEXT, started REAL NOT NULL, finished REAL,
    PRIMARY KEY (study_id, number));
CREATE TABLE IF NOT EXISTS intermediate (
    study_id INTEGER NOT NULL, number INTEGER NOT NULL, step INTEGER NOT NULL, value REAL,
    PRIMARY KEY (study_id, number, step));
CREATE TABLE IF NOT EXISTS checkpoints (
    study_id INTEGER NOT NULL, number INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (study_id, number));
"""


def _nan_to_none(value):
    return None if value is None or value != value else float(value)


def _none_to_nan(value):
    return float("nan") if value is None else value


class SQLiteStorage(Storage):
    """Trials in an SQLite file; see the module docstring."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._check_file_kind()
        self._lock = threading.RLock()
        self._commits = 0                 # transactions this connection committed
        self._parsed = {}                 # study_id -> (file version, parsed trials): see get_trials
        # autocommit mode (isolation_level=None): we open every transaction ourselves.
        self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._prepare_schema()
        except StorageError:
            self._db.close()
            raise
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StorageError(f"{self.path!r} cannot be used as an nnhp study database: {exc}") from None

    def __repr__(self) -> str:
        return f"SQLiteStorage({self.path!r})"

    def __getstate__(self) -> dict:
        return {"path": self.path}                  # a connection cannot travel; the file is the record

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])

    def _check_file_kind(self):
        if os.path.isdir(self.path):
            raise StorageError(f"{self.path!r} is a directory, not an nnhp study database")
        if os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            with open(self.path, "rb") as handle:
                header = handle.read(len(_SQLITE_HEADER))
            if header != _SQLITE_HEADER:
                raise StorageError(f"{self.path!r} is not an SQLite database (so not an nnhp study); "
                                   "choose another file name for storage")

    def _prepare_schema(self):
        with self._transaction():
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and "nnhp_meta" not in tables:
                raise StorageError(f"{self.path!r} is an SQLite database but not an nnhp study database "
                                   f"(it has the tables {sorted(tables)}); choose another file name for storage")
            if not tables:
                    # executescript() would commit on its own; run the statements inside our transaction.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute("INSERT OR IGNORE INTO nnhp_meta VALUES ('format', ?), ('version', ?)",
                                 (SCHEMA_NAME, str(SCHEMA_VERSION)))
            meta = dict(self._db.execute("SELECT key, value FROM nnhp_meta"))
        if meta.get("format") != SCHEMA_NAME:
            raise StorageError(f"{self.path!r} has an nnhp_meta table but is not marked as an nnhp study database")
        if int(meta.get("version", 0)) > SCHEMA_VERSION:
            raise StorageError(f"{self.path!r} was written by a newer nnhp (schema version {meta['version']}, "
                               f"this one reads up to {SCHEMA_VERSION})")

    @contextlib.contextmanager
    def _transaction(self):
        """One write transaction. IMMEDIATE takes the write lock at once, so two processes (or
        threads) never interleave inside one; anything raised inside rolls it back."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._commits += 1

    def _read(self, sql, args=()):
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- studies -----------------------------------------------------------------------------
    def open_study(self, name, direction, space):
        with self._transaction() as db:
            row = db.execute("SELECT id, direction, space FROM studies WHERE name = ?", (name,)).fetchone()
            if row is None:
                cursor = db.execute("INSERT INTO studies (name, direction, space, created) VALUES (?, ?, ?, ?)",
                                    (name, direction or "minimize",
                                     None if space is None else json.dumps(space), time.time()))
                return cursor.lastrowid, direction or "minimize", space
        study_id, stored_direction, stored_space = row
        return study_id, _check_direction(name, stored_direction, direction), \
            None if stored_space is None else json.loads(stored_space)

    def study_names(self):
        return [row[0] for row in self._read("SELECT name FROM studies ORDER BY id")]

    # --- trials ------------------------------------------------------------------------------
    def create_trial(self, study_id, params, budget, parent_id, info):
        started = time.time()
        with self._transaction() as db:
            number = db.execute("SELECT COALESCE(MAX(number) + 1, 0) FROM trials WHERE study_id = ?",
                                (study_id,)).fetchone()[0]
            db.execute("INSERT INTO trials (study_id, number, params, budget, parent_id, info, attrs, state, "
                       "started) VALUES (?, ?, ?, ?, ?, ?, '{}', ?, ?)",
                       (study_id, number, json.dumps(params), budget, parent_id, json.dumps(info), RUNNING, started))
        return Trial(number, params, budget=budget, parent_id=parent_id, info=info, started=started)

    def finish_trial(self, study_id, trial_id, state, value, error):
        with self._transaction() as db:
            cursor = db.execute("UPDATE trials SET state = ?, value = ?, error = ?, finished = ? "
                                "WHERE study_id = ? AND number = ?",
                                (state, _nan_to_none(value), error, time.time(), study_id, trial_id))
            if cursor.rowcount != 1:
                raise StorageError(f"study {study_id} has no trial {trial_id}")
        return self.get_trial(study_id, trial_id)

    def report(self, study_id, trial_id, step, value):
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO intermediate VALUES (?, ?, ?, ?)",
                       (study_id, trial_id, step, _nan_to_none(value)))

    def set_trial_attr(self, study_id, trial_id, key, value):
        with self._transaction() as db:
            row = db.execute("SELECT attrs FROM trials WHERE study_id = ? AND number = ?",
                             (study_id, trial_id)).fetchone()
            if row is None:
                raise StorageError(f"study {study_id} has no trial {trial_id}")
            attrs = json.loads(row[0])
            attrs[key] = value
            db.execute("UPDATE trials SET attrs = ? WHERE study_id = ? AND number = ?",
                       (json.dumps(attrs), study_id, trial_id))

    _TRIAL_COLUMNS = "number, params, budget, parent_id, info, attrs, state, value, error, started, finished"

    @staticmethod
    def _row_to_trial(row, intermediate) -> Trial:
        number, params, budget, parent_id, info, attrs, state, value, error, started, finished = row
        if state == COMPLETE or (state == PRUNED and value is not None):
            value = _none_to_nan(value)
        return Trial(number, json.loads(params), budget=budget, parent_id=parent_id, info=json.loads(info),
                     state=state, value=value, error=error, intermediate=intermediate,
                     attrs=json.loads(attrs), started=started, finished=finished)

    def _version(self):
        """Changes whenever the file may have: after a commit of ours, or of any other
        connection (``data_version`` counts only the others')."""
        return self._commits, self._db.execute("PRAGMA data_version").fetchone()[0]

    def get_trials(self, study_id):
        with self._lock:
            version = self._version()
            version_parsed, parsed = self._parsed.get(study_id, (None, {}))
            if version_parsed != version:
                parsed = self._read_trials(study_id, parsed)
                self._parsed[study_id] = (version, parsed)
        return [trial.copy() for _, trial in parsed.values()]

    def _read_trials(self, study_id, parsed: dict) -> dict:
        """``{number: (record, Trial)}`` for the study's trials, in order. A record (the row and
        its intermediate values) equal to the one in ``parsed`` keeps its parsed Trial: between
        two reads usually only the latest trial changed, and parsing JSON is the bulk of a read."""
        rows = self._db.execute(f"SELECT {self._TRIAL_COLUMNS} FROM trials WHERE study_id = ? ORDER BY number",
                                (study_id,)).fetchall()
        steps = self._db.execute("SELECT number, step, value FROM intermediate WHERE study_id = ? "
                                 "ORDER BY number, step", (study_id,)).fetchall()
        steps_of: dict[int, list] = {}
        for number, step, value in steps:
            steps_of.setdefault(number, []).append((step, value))
        fresh = {}
        for row in rows:
            record = (row, tuple(steps_of.get(row[0], ())))
            known = parsed.get(row[0])
            if known is None or known[0] != record:
                intermediate = {step: _none_to_nan(value) for step, value in record[1]}
                known = (record, self._row_to_trial(row, intermediate))
            fresh[row[0]] = known
        return fresh

    def get_trial(self, study_id, trial_id):
        with self._lock:
            row = self._db.execute(f"SELECT {self._TRIAL_COLUMNS} FROM trials WHERE study_id = ? AND number = ?",
                                   (study_id, trial_id)).fetchone()
            steps = self._db.execute("SELECT step, value FROM intermediate WHERE study_id = ? AND number = ?",
                                     (study_id, trial_id)).fetchall()
        if row is None:
            raise StorageError(f"study {study_id} has no trial {trial_id}")
        return self._row_to_trial(row, {step: _none_to_nan(value) for step, value in steps})

    def fail_running(self, study_id, error):
        with self._transaction() as db:
            stale = [row[0] for row in db.execute("SELECT number FROM trials WHERE study_id = ? AND state = ?",
                                                  (study_id, RUNNING))]
            db.execute("UPDATE trials SET state = ?, error = ?, finished = ? WHERE study_id = ? AND state = ?",
                       (FAILED, error, time.time(), study_id, RUNNING))
        return stale

    # --- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, study_id, trial_id, arrays):
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)",
                       (study_id, trial_id, sqlite3.Binary(buffer.getvalue())))

    def load_checkpoint(self, study_id, trial_id):
        rows = self._read("SELECT data FROM checkpoints WHERE study_id = ? AND number = ?", (study_id, trial_id))
        if not rows:
            return None
        with np.load(io.BytesIO(rows[0][0]), allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}

    def delete_checkpoint(self, study_id, trial_id):
        with self._transaction() as db:
            db.execute("DELETE FROM checkpoints WHERE study_id = ? AND number = ?", (study_id, trial_id))

    def close(self):
        with self._lock:
            self._db.close()


def open_storage(storage) -> Storage:
    """None -> a fresh InMemoryStorage; a path (str or PathLike) -> SQLiteStorage; a Storage -> itself."""
    if storage is None:
        return InMemoryStorage()
    if isinstance(storage, Storage):
        return storage
    if isinstance(storage, (str, os.PathLike)):
        path = os.fspath(storage)
        if path.startswith("sqlite:///"):
            path = path[len("sqlite:///"):]
        return SQLiteStorage(path)
    raise TypeError(f"storage must be None, a file path or a Storage, got {storage!r}")
