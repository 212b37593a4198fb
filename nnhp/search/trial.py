"""A trial: one evaluation of the objective at one point of the space.

A trial is a plain record -- id, params, budget, state, value, error -- plus a handful of
methods an objective calls while it runs, each of which goes straight to the study's storage
(so a trial reported in one process is visible to another reading the same SQLite file):

* ``trial.report(value, step)``: an intermediate value (e.g. the validation loss of epoch ``step``);
* ``trial.set_attr(key, value)``: any JSON-able fact worth keeping (accuracy, epochs run, ...);
* ``trial.checkpoint``: the checkpoint saved by the trial's *parent* (``trial.parent_id``), so a
  searcher such as Hyperband can continue training a promoted configuration instead of starting
  over; None when there is no parent or it saved nothing;
* ``trial.save_checkpoint(arrays)``: keep a ``dict[str, np.ndarray]`` with this trial.

States: ``running`` (asked, not yet told), ``complete``, ``failed`` (the objective raised or
returned something that is not a finite number; ``error`` says what), ``pruned`` (stopped early
on purpose: the objective raised :class:`TrialPruned`).

An *interrupted* trial (``trial.interrupted``) failed because its run was cut short, not because
of its parameters: its process died (a Study reopening the storage marks it with
:data:`INTERRUPTED`), or KeyboardInterrupt/SystemExit stopped it (``"interrupted
(KeyboardInterrupt)"``). Its failure says nothing about the configuration, so Hyperband runs it
again and ``nnhp.tune`` does not count it among its trials.
"""
from __future__ import annotations

import copy
import math
import re
import time
from typing import Any

import numpy as np

__all__ = ["Trial", "TrialPruned", "STATES", "RUNNING", "COMPLETE", "FAILED", "PRUNED", "INTERRUPTED",
           "interrupted_error"]

RUNNING, COMPLETE, FAILED, PRUNED = "running", "complete", "failed", "pruned"
STATES = (RUNNING, COMPLETE, FAILED, PRUNED)

INTERRUPTED = "interrupted: the process running this trial stopped before it finished"
_INTERRUPTED_BY = re.compile(r"interrupted \(\w+\)(: .*)?", re.DOTALL)


def stale_error(grace: float) -> str:
    """The error of a running trial whose heartbeat stopped more than ``grace`` seconds ago."""
    return f"interrupted (stale): no heartbeat for {grace:g} s; the process running it stopped"


def interrupted_error(exc: BaseException) -> str:
    """The error of a trial stopped by ``exc`` (KeyboardInterrupt, SystemExit): "interrupted (KeyboardInterrupt)"."""
    return f"interrupted ({type(exc).__name__})"


class TrialPruned(Exception):
    """Raise inside an objective to stop a trial early on purpose (state "pruned", not "failed")."""


class Trial:
    """One evaluation; see the module docstring."""

    def __init__(self, id: int, params: dict, *, budget: float | None = None, parent_id: int | None = None,
                 info: dict | None = None, state: str = RUNNING, value: float | None = None,
                 error: str | None = None, intermediate: dict | None = None, attrs: dict | None = None,
                 started: float | None = None, finished: float | None = None):
        self.id = int(id)
        self.params = dict(params)
        self.budget = budget
        self.parent_id = parent_id
        self.info = dict(info or {})
        self.state = state
        self.value = value
        self.error = error
        self.intermediate = dict(intermediate or {})    # step -> value
        self.attrs = dict(attrs or {})
        self.started = time.time() if started is None else started
        self.finished = finished
        self._study = None                              # set by the Study that hands the trial out
        self._parent_checkpoint = None
        self._parent_checkpoint_loaded = False

    # --- the record ---------------------------------------------------------------------------
    @property
    def duration(self) -> float | None:
        """Seconds from ask to tell (None while running)."""
        return None if self.finished is None else self.finished - self.started

    @property
    def is_finished(self) -> bool:
        return self.state != RUNNING

    @property
    def interrupted(self) -> bool:
        """Failed because its run was cut short, not because of its params (module docstring)."""
        return self.state == FAILED and self.error is not None and (
            self.error == INTERRUPTED or _INTERRUPTED_BY.fullmatch(self.error) is not None)

    def copy(self) -> "Trial":
        """A copy, not attached to any study, that shares nothing mutable with this trial.

        Storages hand these out on every read of ``study.trials``, so they are made cheaply:
        the record's dicts and lists are copied container by container and its numbers and
        strings, which cannot change, are shared (``copy.deepcopy`` took five times as long).
        """
        return Trial(self.id, _fresh_dict(self.params), budget=self.budget, parent_id=self.parent_id,
                     info=_fresh_dict(self.info), state=self.state, value=self.value, error=self.error,
                     intermediate=self.intermediate, attrs=_fresh_dict(self.attrs),     # (step -> float)
                     started=self.started, finished=self.finished)

    def to_dict(self) -> dict:
        """JSON-ready (non-finite numbers become None)."""
        return {"id": self.id, "state": self.state, "value": _finite_or_none(self.value),
                "params": dict(self.params), "budget": self.budget, "parent_id": self.parent_id,
                "info": dict(self.info), "attrs": dict(self.attrs), "error": self.error,
                "intermediate": [[step, _finite_or_none(v)] for step, v in sorted(self.intermediate.items())],
                "started": self.started, "finished": self.finished, "duration": self.duration}

    def __repr__(self) -> str:
        budget = "" if self.budget is None else f", budget={self.budget:g}"
        value = "" if self.value is None else f", value={self.value:.6g}"
        error = "" if not self.error else f", error={self.error!r}"
        return f"Trial(id={self.id}, state={self.state!r}{value}{budget}, params={self.params}{error})"

    # --- calls an objective makes while running ----------------------------------------------------
    def _storage_call(self, method: str, *args):
        if self._study is None:
            raise RuntimeError(f"trial {self.id} is not attached to a study (get trials from study.ask())")
        return getattr(self._study.storage, method)(self._study.study_id, self.id, *args)

    def report(self, value: float, step: int | None = None) -> None:
        """Record an intermediate value (step defaults to the next unused integer)."""
        step = len(self.intermediate) if step is None else int(step)
        value = float(value)
        self._storage_call("report", step, value)
        self.intermediate[step] = value

    def set_attr(self, key: str, value: Any) -> None:
        """Keep a JSON-able fact with the trial (shown in exports and the CLI's table)."""
        if isinstance(value, np.generic):
            value = value.item()
        self._storage_call("set_trial_attr", str(key), value)
        self.attrs[str(key)] = value

    def should_prune(self) -> bool:
        """Ask the study's searcher whether to stop now (searchers without an opinion say no)."""
        searcher = None if self._study is None else self._study.searcher
        judge = getattr(searcher, "should_prune", None)
        return bool(judge(self._study, self)) if judge is not None else False

    @property
    def checkpoint(self) -> dict | None:
        """The parent trial's saved checkpoint (loaded once), or None."""
        if not self._parent_checkpoint_loaded and self.parent_id is not None and self._study is not None:
            self._parent_checkpoint = self._study.storage.load_checkpoint(self._study.study_id, self.parent_id)
            self._parent_checkpoint_loaded = True
        return self._parent_checkpoint

    def save_checkpoint(self, arrays: dict) -> None:
        """Store ``arrays`` (``dict[str, np.ndarray]``, no object arrays) with this trial,
        replacing any earlier checkpoint of it."""
        self._storage_call("save_checkpoint", check_checkpoint(arrays))

    def load_checkpoint(self, trial_id: int | None = None) -> dict | None:
        """The checkpoint saved by ``trial_id`` (default: this trial), or None."""
        if self._study is None:
            raise RuntimeError(f"trial {self.id} is not attached to a study")
        return self._study.storage.load_checkpoint(self._study.study_id, self.id if trial_id is None else trial_id)


_IMMUTABLE = (str, int, float, type(None))     # (bool and NumPy's float64 are subclasses)


def _fresh(value):
    """``value`` copied as far down as it holds anything mutable."""
    if isinstance(value, _IMMUTABLE):
        return value
    if type(value) is dict:
        return _fresh_dict(value)
    if type(value) is list:
        return [_fresh(item) for item in value]
    return copy.deepcopy(value)


def _fresh_dict(mapping: dict) -> dict:
    fresh = dict(mapping)
    for key, value in fresh.items():
        if not isinstance(value, _IMMUTABLE):      # most values are numbers or strings: no call
            fresh[key] = _fresh(value)
    return fresh


def _finite_or_none(value):
    return value if value is None or (isinstance(value, (int, float)) and math.isfinite(value)) else None


def check_checkpoint(arrays: dict) -> dict[str, np.ndarray]:
    """Host NumPy copies of a checkpoint's arrays, refusing what an npz without pickle cannot hold."""
    from nnhp.backend import to_numpy

    if not isinstance(arrays, dict):
        raise TypeError(f"a checkpoint is a dict[str, np.ndarray], got {type(arrays).__name__}")
    checked = {}
    for key, array in arrays.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"checkpoint keys must be non-empty strings, got {key!r}")
        array = np.array(to_numpy(array), copy=True)
        if array.dtype == object:
            raise TypeError(f"checkpoint entry {key!r} is an object array, which cannot be stored without "
                            "pickle; store numbers (and strings as np.str_ arrays) only")
        checked[key] = array
    return checked
