"""A study's trials in an SQLite file (standard library ``sqlite3``) that survives the process.

* Write-ahead logging (``journal_mode=WAL``): readers never block the writer and a commit is one
  append to the log. Every state change of a trial (created, intermediate value, attribute,
  checkpoint, finished) is its own transaction, so a process killed with SIGKILL loses at most
  the change it was in the middle of -- never a trial that had been told. (``synchronous=NORMAL``:
  durable against a crashed or killed process; a power cut may lose the last few commits.)
* Trial numbers are allocated inside ``BEGIN IMMEDIATE`` transactions, so several processes may
  share one study. Every write is such a transaction: it takes the file's write lock before it
  reads what it will change, so a read-then-write (the next trial number, a trial's attributes)
  is never interleaved with another process's.
* Under contention a writer *waits* for the lock, up to ``timeout`` seconds (default 60; SQLite's
  busy timeout, which retries with short sleeps), instead of failing at once with "database is
  locked". A lock held longer than that is a :class:`StorageError` naming the file and the
  timeout. (SQLite does not wait on its own for one thing: switching a file to WAL while another
  connection is writing it in rollback-journal mode -- a file made or converted by other tools;
  that switch is retried here until the same timeout.)
* Checkpoints are stored as ``.npz`` blobs (``np.savez`` into memory, read back with
  ``allow_pickle=False``): arrays only, nothing executable.
* Searchers read every trial on every ask. The parsed trials are kept, and handed out as
  copies, until the file changes -- by a commit of this connection (counted) or of any other
  connection or process (SQLite's ``PRAGMA data_version``); then only the rows that changed are
  parsed again.
* A file holds any number of studies, told apart by name, each with the *identity* it was
  created with (what data it was built on; see :class:`~nnhp.search.Study`).

Files that are not study databases are left exactly as they were
-----------------------------------------------------------------
Before anything is written, the file is inspected through a read-only connection: a file that
is not SQLite, an SQLite database that nnhp did not make, one written by a newer nnhp, or one
too damaged to read is refused with a :class:`StorageError` naming the file, and its bytes and
journal mode stay as they were. Any SQLite error later (a page found damaged while reading a
trial or a checkpoint) is a StorageError too, never a raw ``sqlite3`` exception.

Read-only
---------
``SQLiteStorage(path, read_only=True)`` (what ``nnhp report`` uses) opens the file with SQLite's
``mode=ro`` URI and never writes: no schema, no journal-mode change, no migration. On a WAL
database whose log is absent (no writer has it open) it opens the file as ``immutable``, so not
even the ``-wal``/``-shm`` side files are created. An empty file, a foreign one or a missing one
is reported plainly.
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import sqlite3
import threading
import time
import urllib.parse

import numpy as np

from .storage import SCHEMA_NAME, SCHEMA_VERSION, InMemoryStorage, Storage, StorageError
from .trial import COMPLETE, FAILED, INTERRUPTED, PRUNED, RUNNING, Trial

__all__ = ["SQLiteStorage", "open_storage"]

_SQLITE_HEADER = b"SQLite format 3\x00"

#: Seconds a write waits for another connection's write lock before it fails (SQLite's busy timeout).
DEFAULT_TIMEOUT = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nnhp_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, direction TEXT NOT NULL,
    space TEXT, created REAL NOT NULL, identity TEXT);
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
CREATE TABLE IF NOT EXISTS heartbeats (
    study_id INTEGER NOT NULL, number INTEGER NOT NULL, beat REAL NOT NULL,
    PRIMARY KEY (study_id, number));
"""
_HEARTBEATS = _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS heartbeats"):].rstrip().rstrip(";")
# Trials whose failure says nothing about their params (see Trial.interrupted) do not count
# towards a study's total.
_COUNTED = "NOT (state = 'failed' AND error IS NOT NULL AND (error = ? OR error LIKE 'interrupted (%'))"

# Programming errors (a closed connection, a wrong number of arguments) are bugs, not a damaged file.
_NOT_THE_FILE = (sqlite3.ProgrammingError, sqlite3.InterfaceError)
# What SQLite raises on a damaged file: its own errors, and (for an error message or text holding
# bytes that are not UTF-8) Python's decoding error.
_DAMAGE = (sqlite3.DatabaseError, UnicodeDecodeError)


def _nan_to_none(value):
    return None if value is None or value != value else float(value)


def _none_to_nan(value):
    return float("nan") if value is None else value


def _file_errors(method):
    """Turn an SQLite error raised inside ``method`` into a StorageError naming the file."""

    @functools.wraps(method)
    def checked(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except _NOT_THE_FILE:
            raise
        except _DAMAGE as exc:
            raise StorageError(self._damaged(exc)) from None
    return checked


def _read_only_uri(path: str) -> str:
    """The ``file:`` URI that opens ``path`` read-only; immutable when it is a WAL database whose
    log does not exist (then a reader would otherwise create the -wal and -shm files)."""
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
    with open(path, "rb") as handle:
        header = handle.read(20)
    wal_mode = len(header) == 20 and header[18] == 2
    if wal_mode and not os.path.exists(path + "-wal"):
        uri += "&immutable=1"
    return uri


class SQLiteStorage(Storage):
    """Trials in an SQLite file; see the module docstring."""

    def __init__(self, path: str | os.PathLike, *, read_only: bool = False, timeout: float = DEFAULT_TIMEOUT):
        self.path = os.fspath(path)
        self.read_only = bool(read_only)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
            raise ValueError(f"timeout must be a non-negative number of seconds, got {timeout!r}")
        self.timeout = float(timeout)
        self._lock = threading.RLock()
        self._commits = 0                 # transactions this connection committed
        self._parsed = {}                 # study_id -> (file version, parsed trials): see get_trials
        exists = self._check_file_kind()
        self._has_identity = True
        if exists:
            self._inspect()               # read-only: refuse a foreign or damaged file untouched
        if self.read_only:
            self._db = self._connect(_read_only_uri(self.path), uri=True)
            self._has_identity = "identity" in self._study_columns()
            return
        # autocommit mode (isolation_level=None): we open every transaction ourselves.
        self._db = self._connect(self.path)
        try:
            self._use_wal()
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._prepare_schema()
        except StorageError:
            self._db.close()
            raise
        except _DAMAGE as exc:
            self._db.close()
            raise StorageError(self._damaged(exc)) from None

    def __repr__(self) -> str:
        return f"SQLiteStorage({self.path!r}{', read_only=True' if self.read_only else ''})"

    def __getstate__(self) -> dict:
        # A connection cannot travel (a fitted nnhp.sklearn estimator carries its study): the file is the record.
        return {"path": self.path, "read_only": self.read_only, "timeout": self.timeout}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], read_only=state["read_only"], timeout=state.get("timeout", DEFAULT_TIMEOUT))

    def _use_wal(self) -> None:
        """Put the file in WAL mode (a no-op when it already is). SQLite answers "database is
        locked" at once, without its busy timeout, when another connection is writing the file in
        rollback-journal mode (its write lock blocks the switch, and SQLite does not wait for it), so
        the switch is retried here, with short sleeps, for the same ``timeout``."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(0.01)

    def _damaged(self, exc) -> str:
        if "locked" in str(exc) or "busy" in str(exc):
            return (f"study file {self.path!r}: {exc} -- another connection held it for longer than the "
                    f"busy timeout of {self.timeout:g} s (SQLiteStorage(timeout=...))")
        if "readonly" in str(exc) or "read-only" in str(exc):
            return f"study file {self.path!r}: {exc} (no permission to write it)"
        return f"study file {self.path!r} cannot be read as an nnhp study database: {exc}"

    def _connect(self, target: str, uri: bool = False):
        try:
            return sqlite3.connect(target, timeout=self.timeout, isolation_level=None, check_same_thread=False,
                                   uri=uri)
        except _DAMAGE as exc:
            raise StorageError(f"study file {self.path!r} cannot be opened: {exc}") from None

    def _check_file_kind(self) -> bool:
        """Whether the file exists with content; refuses what cannot be a study database."""
        if os.path.isdir(self.path):
            raise StorageError(f"{self.path!r} is a directory, not an nnhp study database")
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise StorageError(f"cannot create the study file {self.path!r}: the folder {folder!r} does not exist")
        if not os.path.exists(self.path):
            if self.read_only:
                raise FileNotFoundError(f"study file not found: {self.path}")
            return False
        try:
            with open(self.path, "rb") as handle:
                header = handle.read(len(_SQLITE_HEADER))
        except OSError as exc:
            raise StorageError(f"study file {self.path!r} cannot be read: {exc.strerror or exc}") from None
        if not header:
            if self.read_only:
                raise StorageError(f"{self.path!r} is an empty file: it holds no nnhp study")
            return False
        if header != _SQLITE_HEADER:
            raise StorageError(f"{self.path!r} is not an SQLite database (so not an nnhp study); "
                               "choose another file name for storage")
        return True

    def _inspect(self) -> None:
        """Check, through a read-only connection, that the existing file is an nnhp study database
        this version can use; nothing is written, whatever the outcome."""
        try:
            db = sqlite3.connect(_read_only_uri(self.path), uri=True, timeout=self.timeout)
        except _DAMAGE as exc:
            raise StorageError(f"study file {self.path!r} cannot be opened: {exc}") from None
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not tables and not self.read_only:
                return          # no tables yet (another process may be creating the study right now)
            if "nnhp_meta" not in tables:
                raise StorageError(f"{self.path!r} is an SQLite database but not an nnhp study database "
                                   f"(it has the tables {sorted(tables)}); choose another file name for storage")
            meta = dict(db.execute("SELECT key, value FROM nnhp_meta").fetchall())
            missing = {"studies", "trials", "intermediate", "checkpoints"} - tables
            if missing:
                raise StorageError(f"study file {self.path!r} lacks the tables {sorted(missing)}; "
                                   "it is damaged or was not written by nnhp")
        except _DAMAGE as exc:
            raise StorageError(self._damaged(exc)) from None
        finally:
            db.close()
        if meta.get("format") != SCHEMA_NAME:
            raise StorageError(f"{self.path!r} has an nnhp_meta table but is not marked as an nnhp study database")
        try:
            version = int(meta.get("version", 0))
        except ValueError:
            raise StorageError(f"study file {self.path!r} has an unreadable schema version "
                               f"{meta.get('version')!r}") from None
        if version > SCHEMA_VERSION:
            raise StorageError(f"{self.path!r} was written by a newer nnhp (schema version {version}, "
                               f"this one reads up to {SCHEMA_VERSION})")

    def _study_columns(self) -> set:
        return {row[1] for row in self._read("PRAGMA table_info(studies)")}

    def _prepare_schema(self):
        with self._transaction():
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not tables:
                # executescript() would commit on its own; run the statements inside our transaction.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute("INSERT OR IGNORE INTO nnhp_meta VALUES ('format', ?), ('version', ?)",
                                 (SCHEMA_NAME, str(SCHEMA_VERSION)))
            self._db.execute(_HEARTBEATS)         # (added with several processes per study; no version change)
            if "identity" not in {row[1] for row in self._db.execute("PRAGMA table_info(studies)")}:
                # Schema 1 -> 2: studies record their identity (old ones have none: NULL).
                self._db.execute("ALTER TABLE studies ADD COLUMN identity TEXT")
                self._db.execute("UPDATE nnhp_meta SET value = ? WHERE key = 'version'", (str(SCHEMA_VERSION),))

    @contextlib.contextmanager
    def _transaction(self):
        """One write transaction. IMMEDIATE takes the write lock at once, so two processes (or
        threads) never interleave inside one; anything raised inside rolls it back."""
        if self.read_only:
            raise StorageError(f"study file {self.path!r} was opened read-only")
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

    def _json(self, text, what: str):
        try:
            return json.loads(text)
        except (TypeError, ValueError, RecursionError):
            raise StorageError(f"study file {self.path!r}: {what} is damaged (not JSON: {str(text)[:40]!r})") from None

    # --- studies -----------------------------------------------------------------------------
    @_file_errors
    def open_study(self, name, direction, space, identity=None):
        if self.read_only:
            row = self._read("SELECT id, direction, space FROM studies WHERE name = ?", (name,))
            if not row:
                raise StorageError(f"study file {self.path!r} holds no study named {name!r}")
            study_id, stored_direction, stored_space = row[0]
        else:
            with self._transaction() as db:
                row = db.execute("SELECT id, direction, space FROM studies WHERE name = ?", (name,)).fetchone()
                if row is None:
                    cursor = db.execute("INSERT INTO studies (name, direction, space, created, identity) "
                                        "VALUES (?, ?, ?, ?, ?)",
                                        (name, direction or "minimize", None if space is None else json.dumps(space),
                                         time.time(), None if identity is None else json.dumps(identity)))
                    return cursor.lastrowid, direction or "minimize", space
            study_id, stored_direction, stored_space = row
        if stored_direction not in ("minimize", "maximize"):
            raise StorageError(f"study file {self.path!r}: study {name!r} has a damaged direction {stored_direction!r}")
        return study_id, stored_direction, \
            None if stored_space is None else self._json(stored_space, f"the space of study {name!r}")

    @_file_errors
    def study_identity(self, study_id):
        if not self._has_identity:
            return None
        rows = self._read("SELECT identity FROM studies WHERE id = ?", (study_id,))
        if not rows or rows[0][0] is None:
            return None
        identity = self._json(rows[0][0], "a study's identity")
        if not isinstance(identity, dict):
            raise StorageError(f"study file {self.path!r}: a study's identity is damaged")
        return identity

    @_file_errors
    def adopt_identity(self, study_id, identity):
        with self._transaction() as db:
            db.execute("UPDATE studies SET identity = ? WHERE id = ? AND identity IS NULL",
                       (json.dumps(identity), study_id))

    @_file_errors
    def study_names(self):
        return [row[0] for row in self._read("SELECT name FROM studies ORDER BY id")]

    # --- trials ------------------------------------------------------------------------------
    @_file_errors
    def create_trial(self, study_id, params, budget, parent_id, info, *, limit=None):
        started = time.time()
        with self._transaction() as db:
            if limit is not None:
                held = db.execute(f"SELECT COUNT(*) FROM trials WHERE study_id = ? AND {_COUNTED}",
                                  (study_id, INTERRUPTED)).fetchone()[0]
                if held >= limit:
                    return None
            number = db.execute("SELECT COALESCE(MAX(number) + 1, 0) FROM trials WHERE study_id = ?",
                                (study_id,)).fetchone()[0]
            db.execute("INSERT INTO trials (study_id, number, params, budget, parent_id, info, attrs, state, "
                       "started) VALUES (?, ?, ?, ?, ?, ?, '{}', ?, ?)",
                       (study_id, number, json.dumps(params), budget, parent_id, json.dumps(info), RUNNING, started))
        return Trial(number, params, budget=budget, parent_id=parent_id, info=info, started=started)

    @_file_errors
    def finish_trial(self, study_id, trial_id, state, value, error):
        with self._transaction() as db:
            cursor = db.execute("UPDATE trials SET state = ?, value = ?, error = ?, finished = ? "
                                "WHERE study_id = ? AND number = ?",
                                (state, _nan_to_none(value), error, time.time(), study_id, trial_id))
            if cursor.rowcount != 1:
                raise StorageError(f"study {study_id} has no trial {trial_id}")
        return self.get_trial(study_id, trial_id)

    @_file_errors
    def report(self, study_id, trial_id, step, value):
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO intermediate VALUES (?, ?, ?, ?)",
                       (study_id, trial_id, step, _nan_to_none(value)))

    @_file_errors
    def set_trial_attr(self, study_id, trial_id, key, value):
        with self._transaction() as db:
            row = db.execute("SELECT attrs FROM trials WHERE study_id = ? AND number = ?",
                             (study_id, trial_id)).fetchone()
            if row is None:
                raise StorageError(f"study {study_id} has no trial {trial_id}")
            attrs = self._json(row[0], f"the attributes of trial {trial_id}")
            attrs[key] = value
            db.execute("UPDATE trials SET attrs = ? WHERE study_id = ? AND number = ?",
                       (json.dumps(attrs), study_id, trial_id))

    _TRIAL_COLUMNS = "number, params, budget, parent_id, info, attrs, state, value, error, started, finished"

    def _row_to_trial(self, row, intermediate) -> Trial:
        number, params, budget, parent_id, info, attrs, state, value, error, started, finished = row
        what = f"the record of trial {number}"
        params, info, attrs = (self._json(params, what), self._json(info, what), self._json(attrs, what))
        if not (isinstance(params, dict) and isinstance(info, dict) and isinstance(attrs, dict)):
            raise StorageError(f"study file {self.path!r}: {what} is damaged")
        if state == COMPLETE or (state == PRUNED and value is not None):
            value = _none_to_nan(value)
        try:
            return Trial(number, params, budget=budget, parent_id=parent_id, info=info, state=state, value=value,
                         error=error, intermediate=intermediate, attrs=attrs, started=started, finished=finished)
        except (TypeError, ValueError) as exc:
            raise StorageError(f"study file {self.path!r}: {what} is damaged ({exc})") from None

    def _version(self):
        """Changes whenever the file may have: after a commit of ours, or of any other
        connection (``data_version`` counts only the others')."""
        return self._commits, self._db.execute("PRAGMA data_version").fetchone()[0]

    @_file_errors
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

    @_file_errors
    def get_trial(self, study_id, trial_id):
        with self._lock:
            row = self._db.execute(f"SELECT {self._TRIAL_COLUMNS} FROM trials WHERE study_id = ? AND number = ?",
                                   (study_id, trial_id)).fetchone()
            steps = self._db.execute("SELECT step, value FROM intermediate WHERE study_id = ? AND number = ?",
                                     (study_id, trial_id)).fetchall()
        if row is None:
            raise StorageError(f"study {study_id} has no trial {trial_id}")
        return self._row_to_trial(row, {step: _none_to_nan(value) for step, value in steps})

    @_file_errors
    def fail_running(self, study_id, error):
        with self._transaction() as db:
            stale = [row[0] for row in db.execute("SELECT number FROM trials WHERE study_id = ? AND state = ?",
                                                  (study_id, RUNNING))]
            db.execute("UPDATE trials SET state = ?, error = ?, finished = ? WHERE study_id = ? AND state = ?",
                       (FAILED, error, time.time(), study_id, RUNNING))
        return stale

    @_file_errors
    def heartbeat(self, study_id, trial_ids):
        now = time.time()
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO heartbeats VALUES (?, ?, ?)",
                           [(study_id, int(number), now) for number in trial_ids])

    @_file_errors
    def fail_stale(self, study_id, error, grace):
        with self._transaction() as db:
            before = time.time() - grace
            stale = [row[0] for row in db.execute(
                "SELECT t.number FROM trials t LEFT JOIN heartbeats h ON h.study_id = t.study_id AND "
                "h.number = t.number WHERE t.study_id = ? AND t.state = ? AND COALESCE(h.beat, t.started) < ?",
                (study_id, RUNNING, before))]
            db.executemany("UPDATE trials SET state = ?, error = ?, finished = ? WHERE study_id = ? AND number = ?",
                           [(FAILED, error, time.time(), study_id, number) for number in stale])
        return stale

    # --- checkpoints ---------------------------------------------------------------------------
    @_file_errors
    def save_checkpoint(self, study_id, trial_id, arrays):
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)",
                       (study_id, trial_id, sqlite3.Binary(buffer.getvalue())))

    @_file_errors
    def load_checkpoint(self, study_id, trial_id):
        rows = self._read("SELECT data FROM checkpoints WHERE study_id = ? AND number = ?", (study_id, trial_id))
        if not rows:
            return None
        from ..checkpoint import read_npz
        try:
            return read_npz(io.BytesIO(rows[0][0]), f"the checkpoint of trial {trial_id}", "checkpoint")
        except ValueError as exc:
            raise StorageError(f"study file {self.path!r}: {exc}") from None

    @_file_errors
    def delete_checkpoint(self, study_id, trial_id):
        with self._transaction() as db:
            db.execute("DELETE FROM checkpoints WHERE study_id = ? AND number = ?", (study_id, trial_id))

    def close(self):
        with self._lock:
            self._db.close()


def open_storage(storage, *, read_only: bool = False) -> Storage:
    """None -> a fresh InMemoryStorage; a path (str or PathLike) -> SQLiteStorage (``read_only``:
    opened with SQLite's ``mode=ro``, see above); a Storage -> itself. What a ``storage=`` argument names."""
    if storage is None:
        return InMemoryStorage()
    if isinstance(storage, Storage):
        return storage
    if isinstance(storage, (str, os.PathLike)):
        path = os.fspath(storage)
        if path.startswith("sqlite:///"):
            path = path[len("sqlite:///"):]
        return SQLiteStorage(path, read_only=read_only)
    raise TypeError(f"storage must be None, a file path or a Storage, got {storage!r}")
