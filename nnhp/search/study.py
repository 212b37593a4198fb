"""A study: runs a search, recording every trial in its storage.

::

    study = Study(space, searcher=RandomSearch(seed=0), direction="minimize",
                  storage="study.db", name="digits")       # storage=None: in memory
    study.optimize(objective, n_trials=50, timeout=600)
    study.best_trial, study.trials, study.failure_summary()

or, driving the loop yourself (ask-and-tell)::

    trial = study.ask()
    study.tell(trial, objective(trial))          # a number, or the exception it raised

Judging what an objective returned
----------------------------------
A finite real number completes the trial. An exception, NaN/inf, or anything that is not a real
number fails it, with the reason kept as ``trial.error``; the search goes on. Raising
:class:`~nnhp.search.TrialPruned` marks it pruned. ``KeyboardInterrupt`` fails the running trial
and then stops the search.

Reopening
---------
A study's trials answer one question: this space, this direction, and (``identity``) this data,
split, seed, metric and loss. Reopening it with any of them different would mix answers to two
questions -- a best trial scored on other data, a checkpoint of another architecture -- so it is
refused with a :class:`StudyMismatchError` that names each difference and a free name for a new
study. ``Study(storage=..., name=...)`` without a space or identity reads the stored ones.

``Study(storage="study.db", name="digits")`` on a file that already holds ``digits`` continues
it: the searcher sees the old trials, and trials left ``running`` by a process that died are
marked failed with the error :data:`INTERRUPTED` (their process is gone, nobody will tell them).
Such a trial stays in the record, and ``trial.interrupted`` tells it from a real failure (as it
does a trial stopped by Ctrl-C): Hyperband proposes it again, ``nnhp.tune`` does not count it. A
process *joining* a study that another process is working on right now passes
``fail_stale=False``; and should a trial marked failed that way still finish after all, its real
result replaces the mark.

Parallel trials
---------------
``optimize(..., n_workers=k)`` runs ``k`` trials at once in worker processes (spawned; each
limits its BLAS to its share of the cores). The study and its storage stay in this process:
a trial's params (and a promoted trial's parent checkpoint) go out with its task, and its
value, reports, attributes and checkpoint come back with its result (:mod:`nnhp.search.workers`),
so the objective must pickle -- one that does not is refused with an error naming it.
``executor="threads"`` runs them in threads instead (for objectives that release the GIL), and
``executor=`` any ``concurrent.futures.Executor`` -- a ``ProcessPoolExecutor``, a Dask cluster's
``Client`` or ``Client.get_executor()`` -- runs them there. Asking and telling stay serialized,
so searchers need not be thread-safe, and a searcher that does not learn from results (random,
grid) proposes the same params whatever the number of workers (when the objective can estimate
their cost, they are drawn at once and start costliest first: ``optimize``). A worker that dies
mid-trial fails that trial only (``"worker failed: ..."``) and the search goes on; the trial is
run again ``max_retries`` times (default 1; the retry's ``info["retry_of"]`` names it).
``trial_timeout`` stops a trial that runs too long. Ctrl-C stops the workers and marks their
trials interrupted.

Several processes on one study
------------------------------
Processes that share an SQLite study (``nnhp tune --storage study.db`` started twice) open it
with ``fail_stale=<grace seconds>`` instead of True: each sends heartbeats for the trials it runs
(every quarter of the grace period), so another process's live trial is never marked failed; a
running trial whose heartbeat is older than the grace period -- its process died -- is failed
as *interrupted (stale)* and run again (by the searcher itself when it re-proposes interrupted
trials, as Hyperband does; else from the queue, with ``info["retry_of"]``).
``optimize(total_trials=n)`` stops when the study holds ``n`` trials, interrupted ones aside,
whichever process ran them: the check and the creation of each new trial are one SQLite write
transaction, so the processes never overshoot.
"""
from __future__ import annotations

import csv
import io
import json
import math
import numbers
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import Executor, ThreadPoolExecutor

import numpy as np

from .searcher import Proposal, make_searcher
from .space import Space, dimension_from_dict
from .sqlite import open_storage
from .storage import StorageError
from .trial import (COMPLETE, FAILED, INTERRUPTED, PRUNED, RUNNING, Trial, TrialPruned, interrupted_error,
                    stale_error)

__all__ = ["Study", "SearchExhausted", "StudyMismatchError", "INTERRUPTED"]

_DIRECTIONS = {"minimize": "minimize", "min": "minimize", "maximize": "maximize", "max": "maximize"}


class SearchExhausted(RuntimeError):
    """``study.ask()`` found the searcher with nothing left to propose."""


class StudyMismatchError(StorageError):
    """A stored study reopened with other settings than it was created with. ``differences`` lists
    them; ``suggested_name`` is a name the storage does not use yet, for a new study."""

    def __init__(self, name: str, storage, differences: list[str]):
        self.study_name, self.differences = name, list(differences)
        taken = set(storage.study_names())
        number = 2
        while f"{name}-{number}" in taken:
            number += 1
        self.suggested_name = f"{name}-{number}"
        where = f" in {storage.path}" if hasattr(storage, "path") else ""
        super().__init__(f"study {name!r}{where} was created with other settings, so its trials do not apply "
                         f"here: {'; '.join(self.differences)}. Start a new study under another name "
                         f"(e.g. name={self.suggested_name!r}) or in another storage file")


def _space_differences(stored: dict, given: dict) -> str:
    """Which parameters a space added, removed or changed, against the stored one."""
    parts = [f"{name!r} added" for name in given if name not in stored]
    parts += [f"{name!r} removed" for name in stored if name not in given]
    parts += [f"{name!r} was {_describe(stored[name])}, now {_describe(given[name])}"
              for name in given if name in stored and stored[name] != given[name]]
    return ", ".join(parts[:4]) + (f" and {len(parts) - 4} more" if len(parts) > 4 else "") if parts else \
        "the order of its parameters changed"


def _describe(spec) -> str:
    try:
        return repr(dimension_from_dict(spec))
    except Exception:                                   # a damaged stored entry: show it raw
        return repr(spec)


def _parse_direction(direction):
    if direction is None:
        return None
    key = str(direction).lower()
    if key not in _DIRECTIONS:
        raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
    return _DIRECTIONS[key]


def judge(outcome) -> tuple[str, float | None, str | None]:
    """(state, value, error) for what an objective returned or raised."""
    if isinstance(outcome, TrialPruned):
        return PRUNED, None, str(outcome) or None
    if isinstance(outcome, BaseException):
        return FAILED, None, f"{type(outcome).__name__}: {outcome}"
    if isinstance(outcome, np.ndarray) and outcome.size == 1:
        outcome = outcome.reshape(()).item()
    if isinstance(outcome, numbers.Real) and not isinstance(outcome, bool):
        value = float(outcome)
        if math.isfinite(value):
            return COMPLETE, value, None
        return FAILED, None, f"objective returned {value}"
    text = repr(outcome)
    text = text if len(text) <= 80 else text[:77] + "..."
    return FAILED, None, f"objective returned {text} ({type(outcome).__name__}), expected a number"


class Study:
    """A search in progress; see the module docstring.

    Parameters
    ----------
    space : Space or dict (None when reopening a stored study: its stored space is used)
    searcher : a Searcher, a name ("grid", "random", "gp", "hyperband") or None (random search)
    direction : "minimize" or "maximize" (None: "minimize", or the stored direction when reopening)
    storage : None (memory), a path to an SQLite file, or a Storage
    name : the study's name inside the storage
    fail_stale : True: mark trials left ``running`` in the storage as failed (see Reopening);
        False: leave them; a number of seconds, the *grace period*: this process sends heartbeats for
        its running trials, and a running trial whose heartbeat is older than that (its process
        died) is failed as stale -- now and while ``optimize`` runs -- and retried (see "Several
        processes on one study")
    identity : a JSON-able dict of what else defines the study (``nnhp.tune`` gives the data's
        fingerprint, the split, the seed, the metric and the loss); stored when the study is
        created, compared when it is reopened (see Reopening)
    """

    def __init__(self, space=None, searcher=None, direction=None, storage=None, name: str = "default", *,
                 fail_stale: bool = True, identity: dict | None = None):
        self.storage = open_storage(storage)
        self.name = str(name)
        space = None if space is None else Space(space)
        direction = _parse_direction(direction)
        # JSON round trip: what a reopening reads back (tuples become lists) is what is compared.
        space_dict = None if space is None else json.loads(json.dumps(space.to_dict()))
        identity = None if identity is None else json.loads(json.dumps(identity))
        if space is None and self.name not in self.storage.study_names():
            held = self.storage.study_names()
            raise ValueError(f"study {self.name!r} needs a space: {self.storage!r} holds no study of that name"
                             + (f" (it holds {', '.join(map(repr, held[:10]))})" if held else ""))
        self.study_id, self.direction, stored_space = self.storage.open_study(self.name, direction, space_dict,
                                                                              identity)
        stored_identity = self.storage.study_identity(self.study_id)
        differences = []
        if direction is not None and direction != self.direction:
            differences.append(f"direction={self.direction!r} when created, direction={direction!r} now")
        if space_dict is not None and stored_space is not None and space_dict != stored_space:
            differences.append("space: " + _space_differences(stored_space, space_dict))
        if identity is not None and stored_identity is not None:
            differences += [f"{key}={stored_identity.get(key)!r} when created, {key}={identity.get(key)!r} now"
                            for key in {**stored_identity, **identity} if stored_identity.get(key) != identity.get(key)]
        if differences:
            raise StudyMismatchError(self.name, self.storage, differences)
        if identity is not None and stored_identity is None:
            self.storage.adopt_identity(self.study_id, identity)     # a study from before identities
        if space is None:
            if stored_space is None:
                raise ValueError(f"study {self.name!r} needs a space (none is stored for it)")
            try:
                space = Space.from_dict(stored_space)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise StorageError(f"{self.storage!r}: the stored space of study {self.name!r} is damaged "
                                   f"({type(exc).__name__}: {exc})") from None
        self.space = space
        self.identity = identity if identity is not None else stored_identity
        self.searcher = make_searcher(searcher)
        self._lock = threading.RLock()
        self._trial_ended = threading.Condition(self._lock)
        self._queue: list[Proposal] = []          # enqueue()d proposals, asked before the searcher's
        self._ahead: list[Proposal] = []          # drawn in advance, costliest first (optimize())
        self._stop_requested = False
        self._mine: set[int] = set()              # trials this process runs now (heartbeats)
        self.stale_after = None
        if fail_stale is True:
            self.storage.fail_running(self.study_id, INTERRUPTED)
        elif fail_stale is not False and fail_stale is not None:
            if not isinstance(fail_stale, numbers.Real) or not fail_stale > 0:
                raise ValueError(f"fail_stale must be True, False or a grace period in seconds, got {fail_stale!r}")
            self.stale_after = float(fail_stale)
            self._retry_stale()

    def __repr__(self) -> str:
        return (f"Study(name={self.name!r}, direction={self.direction!r}, searcher={self.searcher!r}, "
                f"storage={self.storage!r}, trials={len(self.trials)})")

    # Pickling (a fitted nnhp.sklearn estimator carries its study): locks belong to one process,
    # so they are left out and made anew.
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_lock"], state["_trial_ended"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_mine", set())          # (pickled before heartbeats)
        self.__dict__.setdefault("stale_after", None)
        self.__dict__.setdefault("_ahead", [])
        self._lock = threading.RLock()
        self._trial_ended = threading.Condition(self._lock)

    # --- several processes --------------------------------------------------------------------
    def _beat(self) -> None:
        with self._lock:
            mine = sorted(self._mine)
        if mine:
            self.storage.heartbeat(self.study_id, mine)

    def _retry_stale(self) -> list[int]:
        """Fail the trials whose heartbeat stopped more than ``stale_after`` s ago; queue a retry of
        each (unless the searcher proposes interrupted trials again itself)."""
        with self._lock:
            stale = self.storage.fail_stale(self.study_id, stale_error(self.stale_after), self.stale_after)
            if not getattr(self.searcher, "reproposes_interrupted", False):
                for trial_id in stale:
                    trial = self.storage.get_trial(self.study_id, trial_id)
                    info = {**trial.info, "retry_of": trial.id, "retries": int(trial.info.get("retries", 0)) + 1}
                    self._queue.append(Proposal(dict(trial.params), trial.budget, trial.parent_id, info=info))
            if stale:
                self._trial_ended.notify_all()
            return stale

    def _heartbeat_loop(self, stop: threading.Event) -> None:
        interval = max(min(self.stale_after / 4.0, 10.0), 0.05)
        while not stop.wait(interval):
            try:
                self._beat()
                self._retry_stale()
            except Exception:                      # a busy file: the next beat tries again
                pass

    # --- reading -------------------------------------------------------------------------------
    def _attach(self, trial: Trial) -> Trial:
        trial._study = self
        return trial

    @property
    def trials(self) -> list[Trial]:
        """Every trial so far, in order of creation (fresh copies from storage)."""
        return [self._attach(t) for t in self.storage.get_trials(self.study_id)]

    def get_trial(self, trial_id: int) -> Trial:
        return self._attach(self.storage.get_trial(self.study_id, trial_id))

    def trials_in(self, *states: str) -> list[Trial]:
        return [t for t in self.trials if t.state in states]

    def _better(self, a: float, b: float) -> bool:
        return a < b if self.direction == "minimize" else a > b

    def ranked_trials(self) -> list[Trial]:
        """Completed trials, best first."""
        complete = self.trials_in(COMPLETE)
        return sorted(complete, key=lambda t: t.value, reverse=self.direction == "maximize")

    @property
    def best_trial(self) -> Trial:
        """The completed trial with the best value (the earliest among equals)."""
        best = None
        for trial in self.trials_in(COMPLETE):
            if best is None or self._better(trial.value, best.value):
                best = trial
        if best is None:
            raise ValueError(f"study {self.name!r} has no completed trial yet. {self.failure_summary()}")
        return best

    @property
    def best_value(self) -> float:
        return self.best_trial.value

    @property
    def best_params(self) -> dict:
        return self.best_trial.params

    def failure_summary(self) -> str:
        """How many trials failed, grouped by error text."""
        trials = self.trials
        failed = [t for t in trials if t.state == FAILED]
        if not failed:
            return f"no failed trials (of {len(trials)})"
        counts = Counter(t.error or "unknown error" for t in failed)
        lines = [f"{len(failed)} of {len(trials)} trials failed:"]
        lines += [f"  {n} x {error}" for error, n in counts.most_common()]
        return "\n".join(lines)

    def summary(self) -> str:
        trials = self.trials
        counts = Counter(t.state for t in trials)
        states = ", ".join(f"{counts[s]} {s}" for s in (COMPLETE, PRUNED, FAILED, RUNNING) if counts[s])
        text = f"study {self.name!r} ({self.direction}): {len(trials)} trials ({states or 'none yet'})"
        if counts[COMPLETE]:
            best = self.best_trial
            text += f"\nbest: trial {best.id}, value {best.value:.6g}, params {best.params}"
        if counts[FAILED]:
            text += "\n" + self.failure_summary()
        return text

    # --- ask and tell -------------------------------------------------------------------------
    def enqueue(self, params: dict, *, budget: float | None = None, info: dict | None = None) -> None:
        """Have the next ``ask()`` start these params (checked now) before any of the searcher's.

        For configurations worth trying first: a known-good default, a user's guess. Queued
        proposals live in this Study object only (a reopened study has none queued).
        """
        self.space.validate(params)
        with self._lock:
            self._queue.append(Proposal(dict(params), budget, info=dict(info or {})))

    def stop(self) -> None:
        """Make ``optimize`` start no new trial (running ones finish), e.g. from a callback."""
        with self._lock:
            self._stop_requested = True
            self._trial_ended.notify_all()

    def ask(self, params: dict | None = None, *, budget: float | None = None) -> Trial:
        """Start a trial: the given ``params`` (checked against the space), else the next enqueued
        proposal, else the searcher's. Raises SearchExhausted when the searcher has nothing to propose."""
        return self._ask(params, budget)

    def _ask(self, params=None, budget=None, limit: int | None = None) -> Trial | None:
        """ask(); None (no trial made) when ``limit`` is given and the study already holds that many."""
        with self._lock:
            if params is not None:
                proposal = Proposal(params, budget)
            elif self._queue:
                proposal = self._queue.pop(0)
            elif self._ahead:
                proposal = self._ahead.pop(0)
            else:
                proposal = self.searcher.ask(self)
                if proposal is None:
                    raise SearchExhausted(f"{self.searcher!r} has nothing more to propose")
                if isinstance(proposal, dict):
                    proposal = Proposal(proposal)
            params = self.space.validate(proposal.params)
            budget = None if proposal.budget is None else float(proposal.budget)
            if limit is None:
                trial = self.storage.create_trial(self.study_id, params, budget, proposal.parent_id,
                                                  dict(proposal.info))
            else:
                trial = self.storage.create_trial(self.study_id, params, budget, proposal.parent_id,
                                                  dict(proposal.info), limit=limit)
                if trial is None:
                    return None
            self._mine.add(trial.id)
            return self._attach(trial)

    def tell(self, trial, value=None, *, state: str | None = None, error: str | None = None) -> Trial:
        """Finish a trial with what the objective returned (a number) or raised (the exception).
        ``state="pruned"`` (or "failed", with ``error``) may be given explicitly."""
        trial_id = trial.id if isinstance(trial, Trial) else int(trial)
        with self._lock:
            record = self.storage.get_trial(self.study_id, trial_id)
            marked_stale = record.state == FAILED and record.error == INTERRUPTED
            if record.state != RUNNING and not marked_stale:
                raise ValueError(f"trial {trial_id} is already {record.state}; a trial is told once")
            if state is None:
                state, value, error = judge(value)
            elif state == PRUNED:
                value = None if value is None or judge(value)[0] != COMPLETE else float(value)
            elif state == FAILED:
                value, error = None, error or "marked failed"
            elif state == COMPLETE:
                state, value, error = judge(value)
            else:
                raise ValueError(f"tell() takes state 'complete', 'failed' or 'pruned', got {state!r}")
            finished = self._attach(self.storage.finish_trial(self.study_id, trial_id, state, value, error))
            self._mine.discard(trial_id)
            if isinstance(trial, Trial):
                trial.state, trial.value, trial.error, trial.finished = state, value, error, finished.finished
            self.searcher.tell(self, finished)
            self._trial_ended.notify_all()
            return finished

    # --- the loop -----------------------------------------------------------------------------
    def optimize(self, objective, n_trials: int | None = None, timeout: float | None = None,
                 n_workers: int = 1, callbacks=(), catch: tuple = (Exception,), *, executor=None,
                 trial_timeout: float | None = None, max_retries: int = 1, total_trials: int | None = None) -> None:
        """Run ``objective(trial) -> float`` on the searcher's proposals.

        Stops after ``n_trials`` more trials, when ``timeout`` seconds have passed (no new trial
        starts after that; running ones finish), when :meth:`stop` is called, or when the
        searcher has nothing left.
        ``callbacks``: functions ``callback(study, trial)`` called after each trial ends.
        ``catch``: exception types that fail a trial instead of stopping the search (in this
        process; in a worker any Exception fails its trial).
        ``n_workers``: trials at once. With ``n_workers > 1`` and no ``executor`` they run in
        worker processes (see "Parallel trials"; the objective must pickle).
        ``executor``: "processes", "threads", or a ``concurrent.futures.Executor`` (e.g. a Dask
        ``Client.get_executor()``; a ``dask.distributed.Client`` is accepted as it is).
        ``trial_timeout``: seconds after which a running trial is stopped and failed (worker
        processes of nnhp's own pool are ended; with another executor the trial is failed and
        its late result ignored).
        ``max_retries``: how often a trial whose worker died is run again (the retry's
        ``info["retry_of"]`` names the trial it repeats).
        ``total_trials``: stop when the *study* holds this many trials (interrupted ones aside),
        whichever processes ran them: each new trial is claimed in one step with that check, so
        several processes sharing an SQLite study end with exactly this many.

        Costliest first: with ``n_workers > 1``, ``n_trials`` and neither ``timeout`` nor
        ``total_trials``, a searcher whose proposals do not depend on results (``ask_ahead``: grid,
        random, quasi-random) and an objective that can estimate a trial's cost
        (``objective.estimated_cost(params, budget) -> float``, in any unit; ``nnhp.tune``'s can),
        the proposals still to run are drawn at once and started costliest first, after any
        enqueued ones. In the order they were drawn, a long trial that comes last leaves one
        worker running it alone while the others idle; started longest first, the last trials
        are the short ones that fill the gaps (Graham's LPT rule). The same trials run as with one
        worker; their numbers follow the order they start in.
        """
        if n_trials is not None and (not isinstance(n_trials, numbers.Integral) or n_trials < 0):
            raise ValueError(f"n_trials must be a non-negative integer or None, got {n_trials!r}")
        if not isinstance(n_workers, numbers.Integral) or n_workers < 1:
            raise ValueError(f"n_workers must be a positive integer, got {n_workers!r}")
        if trial_timeout is not None and not trial_timeout > 0:
            raise ValueError(f"trial_timeout must be a positive number of seconds or None, got {trial_timeout!r}")
        if not isinstance(max_retries, numbers.Integral) or max_retries < 0:
            raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}")
        if executor is None:
            executor = "processes" if n_workers > 1 or trial_timeout is not None else "threads"
        if isinstance(executor, str) and executor not in ("threads", "processes"):
            raise ValueError(f"executor must be 'threads', 'processes' or a concurrent.futures.Executor, "
                             f"got {executor!r}")
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        progress = {"started": 0, "running": 0, "stop": False}
        self._stop_requested = False
        cost = getattr(objective, "estimated_cost", None)
        plan_ahead = (cost is not None and n_workers > 1 and n_trials is not None and timeout is None
                      and total_trials is None)

        def next_trial(block: bool = True) -> Trial | None:
            nonlocal plan_ahead
            with self._lock:
                while True:
                    if progress["stop"] or self._stop_requested:
                        return None
                    retry = self._queue and "retry_of" in self._queue[0].info
                    if n_trials is not None and progress["started"] >= n_trials and not retry:
                        return None
                    if plan_ahead and not self._queue:   # once, when the searcher's turn comes
                        plan_ahead = False
                        self._ahead = self._costliest_first(n_trials - progress["started"], cost)
                    if deadline is not None and time.monotonic() >= deadline:
                        return None
                    is_finished = getattr(self.searcher, "is_finished", None)
                    if not self._queue and is_finished is not None and is_finished(self):
                        return None
                    try:
                        trial = self._ask(limit=total_trials)
                        if trial is None:
                            return None
                    except SearchExhausted:
                        if progress["running"] == 0 or not block:
                            return None
                        # A running trial may unlock new proposals (a Hyperband rung): wait for one.
                        wait = None if deadline is None else max(deadline - time.monotonic(), 0.0)
                        self._trial_ended.wait(wait)
                        continue
                    if not retry:
                        progress["started"] += 1
                    progress["running"] += 1
                    return trial

        if executor != "threads":
            from .workers import check_picklable
            check_picklable(objective)
        beating = threading.Event()
        if self.stale_after is not None:
            threading.Thread(target=self._heartbeat_loop, args=(beating,), name="nnhp-heartbeat", daemon=True).start()
        try:
            if executor != "threads":
                self._optimize_remote(objective, next_trial, progress, executor, n_workers, callbacks,
                                      trial_timeout, max_retries)
            else:
                self._optimize_here(objective, next_trial, progress, n_workers, callbacks, catch)
        finally:
            beating.set()
            with self._lock:
                self._ahead = []                   # drawn but not started (a stop): not this study's

    def _costliest_first(self, n: int, cost) -> list[Proposal]:
        """The searcher's next ``n`` proposals, costliest first by ``cost(params, budget)`` (ties in
        the order drawn); none when the searcher cannot tell them in advance."""
        ask_ahead = getattr(self.searcher, "ask_ahead", None)
        proposals = None if ask_ahead is None else ask_ahead(self, n)
        if not proposals:
            return []
        proposals = [Proposal(p) if isinstance(p, dict) else p for p in proposals]
        costs = [float(cost(p.params, p.budget)) for p in proposals]
        order = sorted(range(len(proposals)), key=lambda i: -costs[i])
        return [proposals[i] for i in order]

    def _optimize_here(self, objective, next_trial, progress, n_workers, callbacks, catch) -> None:
        """optimize() in this process: one loop, or ``n_workers`` threads."""

        def run_one(trial: Trial) -> None:
            try:
                outcome = objective(trial)
            except TrialPruned as exc:
                outcome = exc
            except catch as exc:
                outcome = exc
                trial.set_attr("traceback", traceback.format_exc())
            except BaseException as exc:           # KeyboardInterrupt, SystemExit: record, then stop
                with self._lock:
                    progress["stop"] = True
                    progress["running"] -= 1
                    self.tell(trial, state=FAILED, error=interrupted_error(exc))
                raise
            with self._lock:
                progress["running"] -= 1
                finished = self.tell(trial, outcome)
                for callback in callbacks:
                    callback(self, finished)

        def worker() -> None:
            while (trial := next_trial()) is not None:
                run_one(trial)

        if n_workers == 1:
            worker()
            return
        with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="nnhp-trial") as pool:
            futures = [pool.submit(worker) for _ in range(n_workers)]
            try:
                for future in futures:
                    future.result()
            finally:
                with self._lock:
                    progress["stop"] = True
                    self._trial_ended.notify_all()

    def _optimize_remote(self, objective, next_trial, progress, executor, n_workers, callbacks,
                         trial_timeout, max_retries) -> None:
        """optimize() with each trial a task on an executor: this process asks, submits, waits,
        writes back what the trial recorded, and tells (see :mod:`nnhp.search.workers`)."""
        from concurrent.futures import FIRST_COMPLETED, wait

        from .workers import ProcessPool, install_objective, make_task, run_installed_task, run_task, send_once

        # The objective (with nnhp.tune's, the data set) goes to each worker once, not with every task.
        own_pool = executor == "processes"
        if own_pool:
            pool = ProcessPool(n_workers, initializer=install_objective, initargs=(objective,))
        elif isinstance(executor, Executor):
            pool = executor
        elif hasattr(executor, "get_executor"):
            pool = executor.get_executor()         # a dask.distributed.Client
        else:
            raise TypeError(f"executor must be 'threads', 'processes', a concurrent.futures.Executor or a "
                            f"dask.distributed.Client, got {type(executor).__name__}")
        sent = None if own_pool else send_once(objective, executor)

        def submit(task: dict):
            return pool.submit(run_installed_task, task) if own_pool else pool.submit(run_task, sent, task)

        running: dict = {}                         # future -> (trial, submitted at)
        abandoned: set = set()
        try:
            while True:
                while len(running) < n_workers and (trial := next_trial(block=False)) is not None:
                    parent = None if trial.parent_id is None else self.storage.load_checkpoint(
                        self.study_id, trial.parent_id)
                    blas = pool.blas_threads if own_pool else 1
                    future = submit(make_task(trial, parent, blas))
                    running[future] = (trial, time.monotonic())
                if not running:
                    return
                wait_s = None
                if trial_timeout is not None:
                    oldest = min(started for _, started in running.values())
                    wait_s = max(oldest + trial_timeout - time.monotonic(), 0.0) + 0.01
                if self.stale_after is not None:     # a stale trial's retry may be waiting in the queue
                    wait_s = min(wait_s if wait_s is not None else 1.0, 1.0)
                done, _ = wait(list(running), timeout=wait_s, return_when=FIRST_COMPLETED)
                for future in done:
                    trial, _ = running.pop(future)
                    self._finish_remote(trial, future, objective, progress, callbacks, max_retries)
                if trial_timeout is not None:
                    now = time.monotonic()
                    for future, (trial, started) in list(running.items()):
                        if now - started < trial_timeout:
                            continue
                        reason = f"stopped: ran past trial_timeout={trial_timeout:g} s"
                        if own_pool and pool.kill(future, reason):
                            continue                   # its future fails with WorkerDied(reason) shortly
                        running.pop(future)
                        abandoned.add(future)
                        future.cancel()
                        with self._lock:
                            progress["running"] -= 1
                            finished = self.tell(trial, state=FAILED, error=reason)
                            for callback in callbacks:
                                callback(self, finished)
        except BaseException as exc:                   # KeyboardInterrupt: stop the workers, mark their trials
            with self._lock:
                progress["stop"] = True
            if own_pool:
                pool.shutdown(kill=True)
            for future, (trial, _) in running.items():
                future.cancel()
                with self._lock:
                    if self.storage.get_trial(self.study_id, trial.id).state == RUNNING:
                        self.tell(trial, state=FAILED, error=interrupted_error(exc)
                                  if not isinstance(exc, Exception) else f"{type(exc).__name__}: {exc}")
            running.clear()
            raise
        finally:
            if own_pool:
                pool.shutdown(wait=True, join=False)      # the workers exit while the caller goes on

    def _finish_remote(self, trial: Trial, future, objective, progress, callbacks, max_retries) -> None:
        """Write back what a task's trial recorded and tell the study its outcome."""
        error = None
        try:
            result = future.result()
        except Exception as exc:                       # the worker, not the objective, failed
            result = None
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        with self._lock:
            progress["running"] -= 1
            if result is None:
                retries = int(trial.info.get("retries", 0))
                if retries < max_retries:
                    info = {**trial.info, "retry_of": trial.id, "retries": retries + 1}
                    self._queue.insert(0, Proposal(dict(trial.params), trial.budget, trial.parent_id, info=info))
                finished = self.tell(trial, state=FAILED, error=f"worker failed: {error}")
            else:
                for op, trial_id, *args in result["ops"]:
                    getattr(self.storage, op)(self.study_id, trial_id, *args)
                self.storage.set_trial_attr(self.study_id, trial.id, "worker", result["worker"])
                outcome = result["outcome"]
                if outcome[0] == "pruned":
                    finished = self.tell(trial, state=PRUNED, error=outcome[1] or None)
                elif outcome[0] == "error":
                    self.storage.set_trial_attr(self.study_id, trial.id, "traceback", outcome[2])
                    finished = self.tell(trial, state=FAILED, error=outcome[1])
                else:
                    finished = self.tell(trial, outcome[1])
                merge = getattr(objective, "merge_remote_trial", None)
                if merge is not None:
                    merge(finished)
            for callback in callbacks:
                callback(self, finished)

    # --- export ---------------------------------------------------------------------------------
    def to_json(self, path=None) -> str:
        """All trials (and the space) as JSON; written to ``path`` when given, returned always."""
        document = {"name": self.name, "direction": self.direction, "space": self.space.to_dict(),
                    "trials": [t.to_dict() for t in self.trials]}
        text = json.dumps(document, indent=2)
        if path is not None:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        return text

    def to_csv(self, path=None) -> str:
        """One row per trial: id, state, value, budget, parent, duration, error, then one column
        per parameter (empty when inactive) and per scalar attribute (``attr_<key>``; tracebacks
        of failed trials stay in the JSON export)."""
        trials = self.trials
        attr_keys = sorted({key for t in trials for key, v in t.attrs.items()
                            if key != "traceback" and (v is None or isinstance(v, (str, int, float, bool)))})
        header = ["id", "state", "value", "budget", "parent_id", "duration_s", "error"]
        header += list(self.space.names) + [f"attr_{key}" for key in attr_keys]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        for t in trials:
            duration = "" if t.duration is None else f"{t.duration:.3f}"
            row = [t.id, t.state, "" if t.value is None else repr(t.value),
                   "" if t.budget is None else t.budget, "" if t.parent_id is None else t.parent_id,
                   duration, t.error or ""]
            row += [t.params.get(name, "") for name in self.space.names]
            row += [t.attrs.get(key, "") for key in attr_keys]
            writer.writerow(row)
        text = buffer.getvalue()
        if path is not None:
            with open(path, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
        return text
