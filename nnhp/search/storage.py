"""Where a study keeps its trials: in memory, or in an SQLite file that survives the process.

Both backends implement the same small interface (:class:`Storage`); a :class:`~nnhp.search.Study`
only ever talks to that interface, so searchers and objectives never know which one is in use.
:class:`InMemoryStorage` lives here; :class:`~nnhp.search.sqlite.SQLiteStorage` (crash safety,
several processes, read-only opening for reports) in ``sqlite.py``.

A study is stored with its *identity*: a JSON dict of what defines it (``nnhp.tune`` records
the data's fingerprint, the split, the seed, the metric and the loss), which a Study reopening
it compares with its own (see :class:`~nnhp.search.Study`).
"""
from __future__ import annotations

import copy
import threading
import time

import numpy as np

from .trial import FAILED, RUNNING, Trial

__all__ = ["Storage", "InMemoryStorage", "StorageError"]

SCHEMA_NAME = "nnhp-study"
SCHEMA_VERSION = 2      # 2: studies record their identity


class StorageError(RuntimeError):
    """A storage that cannot be used: not a study database, a damaged one, a study reopened with other
    settings than it was created with, a missing trial."""


class Storage:
    """The interface a Study uses. ``study_id`` is whatever ``open_study`` returned."""

    def open_study(self, name: str, direction: str | None, space: dict | None,
                   identity: dict | None = None) -> tuple[object, str, dict | None]:
        """Create the study ``name`` (with ``direction``, ``space`` and ``identity``) or load it;
        returns (study_id, stored direction, stored space dict). Comparing is the Study's job."""
        raise NotImplementedError

    def study_identity(self, study_id) -> dict | None:
        """The identity the study was created with (None: it was created without one)."""
        return None

    def adopt_identity(self, study_id, identity: dict) -> None:
        """Record ``identity`` for a study that has none yet (one made by an older nnhp)."""

    def study_names(self) -> list[str]:
        raise NotImplementedError

    def create_trial(self, study_id, params: dict, budget, parent_id, info: dict, *, limit=None) -> Trial | None:
        """A new running trial; None (nothing created) when ``limit`` is given and the study
        already holds that many trials, not counting interrupted ones -- checked and created in
        one step, so processes sharing a study never overshoot."""
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

    def heartbeat(self, study_id, trial_ids) -> None:
        """Record that the running trials ``trial_ids`` are alive now (their process is)."""

    def fail_stale(self, study_id, error: str, grace: float) -> list[int]:
        """Mark failed (with ``error``) every running trial whose last heartbeat -- or start, if
        it has none -- is more than ``grace`` seconds old; returns their ids. A storage that
        only one process uses has no stale trials but those :meth:`fail_running` finds."""
        return []

    def close(self) -> None:
        pass


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

    def open_study(self, name, direction, space, identity=None):
        with self._lock:
            if name in self._studies:
                study = self._studies[name]
                return name, study["direction"], copy.deepcopy(study["space"])
            self._studies[name] = {"direction": direction or "minimize", "space": copy.deepcopy(space),
                                   "identity": copy.deepcopy(identity), "trials": [], "checkpoints": {}}
            return name, direction or "minimize", space

    def study_identity(self, study_id):
        with self._lock:
            return copy.deepcopy(self._studies[study_id]["identity"])

    def adopt_identity(self, study_id, identity):
        with self._lock:
            if self._studies[study_id]["identity"] is None:
                self._studies[study_id]["identity"] = copy.deepcopy(identity)

    def study_names(self):
        return list(self._studies)

    def _trial(self, study_id, trial_id) -> Trial:
        trials = self._studies[study_id]["trials"]
        if not 0 <= trial_id < len(trials):
            raise StorageError(f"study {study_id!r} has no trial {trial_id}")
        return trials[trial_id]

    def create_trial(self, study_id, params, budget, parent_id, info, *, limit=None):
        with self._lock:
            trials = self._studies[study_id]["trials"]
            if limit is not None and sum(not t.interrupted for t in trials) >= limit:
                return None
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
