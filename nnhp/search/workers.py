"""Trials in other processes: a task goes out, a result comes back, the study stays home.

:meth:`~nnhp.search.Study.optimize` with ``n_workers > 1`` (or an ``executor``) runs each trial
as a *task*: ``run_task(objective, task)``. The task carries everything the trial needs -- its
id, params, budget, info and, for a promoted trial, its parent's checkpoint -- so a worker needs
no access to the study's storage (no shared file system, which is what lets a Dask worker on
another host run it). Inside the worker the objective gets a real :class:`~nnhp.search.Trial`
whose storage only *records*: its reports, attributes and saved checkpoint come back with the
result, and the driving process writes them into the study before telling it the value.

Two kinds of executors run tasks:

* :class:`ProcessPool` -- ``k`` worker processes on this machine (``spawn``, so it is safe with
  threads and on every OS). Each worker limits its BLAS to its share of the cores (threadpoolctl
  when installed, the usual environment variables besides), since side-by-side trials, not
  threads inside one matrix product, are what make small networks fast. It knows which worker
  runs which task, so a worker that dies (killed, out of memory, a crash in native code) fails
  exactly its own trial with :class:`WorkerDied`, and a new worker takes its place. It can also
  stop a trial that runs too long (``trial_timeout``) by ending its worker.
* any ``concurrent.futures.Executor``: a ``ProcessPoolExecutor``, or a Dask cluster's
  ``Client.get_executor()`` (``pip install nnhp[dask]``). A failure of the executor itself (Dask's
  ``KilledWorker``, a broken process pool) fails the trial with its reason.

Spawned workers import the module that defines the objective, so a script that runs a study
in worker processes starts it under ``if __name__ == "__main__":``, as with any spawned pool.
The objective must be picklable: a module-level function or an instance of a module-level class
(``nnhp.tune``'s is). Lambdas and functions defined inside other functions are not;
:func:`check_picklable` says so, naming the objective.

The objective travels once per worker, not with every task
----------------------------------------------------------
``nnhp.tune``'s objective carries the whole data set (digits: about 1 MB pickled), and a search
sends hundreds of tasks. So a :class:`ProcessPool` hands it to each worker once, at start-up
(:func:`install_objective`, its initializer), and a task names only the trial
(:func:`run_installed_task`); on Dask it is scattered to the workers once (:func:`send_once`)
and each task refers to that copy. Only an arbitrary ``concurrent.futures`` executor gets it
with every task. A worker therefore keeps *one* copy of the objective for all the trials it
runs, as threads do: an objective that changes its own state sees its earlier trials' changes.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import socket
import threading
import traceback
from concurrent.futures import Executor, Future
from multiprocessing.connection import wait as wait_connections

from .trial import Trial, TrialPruned, check_checkpoint

__all__ = ["ProcessPool", "WorkerDied", "run_task", "make_task", "check_picklable", "BLAS_ENV_VARS",
           "install_objective", "run_installed_task", "send_once"]

#: Environment variables that cap the threads of the common BLAS/OpenMP libraries.
BLAS_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                 "BLIS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


class WorkerDied(RuntimeError):
    """The process running a trial ended before the trial did (or was ended: ``trial_timeout``)."""


def check_picklable(objective) -> None:
    """Raise TypeError naming ``objective`` if it cannot be sent to a worker process."""
    try:
        pickle.dumps(objective)
    except Exception as exc:
        name = getattr(objective, "__qualname__", None) or type(objective).__qualname__
        raise TypeError(
            f"the objective {name!r} cannot be pickled, so it cannot run in worker processes "
            f"({type(exc).__name__}: {exc}). Define it at module level (not a lambda or a function "
            "inside another function), or run trials in threads with executor='threads'") from None


# --- the trial inside a worker -------------------------------------------------------------------
class _RecordingStorage:
    """What a trial in a worker writes to: kept in a list, sent back with the result."""

    def __init__(self, parent_id, parent_checkpoint):
        self.ops: list[tuple] = []
        self._checkpoints = {} if parent_id is None or parent_checkpoint is None else {parent_id: parent_checkpoint}

    def report(self, study_id, trial_id, step, value):
        self.ops.append(("report", trial_id, step, value))

    def set_trial_attr(self, study_id, trial_id, key, value):
        self.ops.append(("set_trial_attr", trial_id, key, value))

    def save_checkpoint(self, study_id, trial_id, arrays):
        arrays = check_checkpoint(arrays)
        self._checkpoints[trial_id] = arrays
        self.ops.append(("save_checkpoint", trial_id, arrays))

    def load_checkpoint(self, study_id, trial_id):
        return self._checkpoints.get(trial_id)

    def delete_checkpoint(self, study_id, trial_id):
        self._checkpoints.pop(trial_id, None)
        self.ops.append(("delete_checkpoint", trial_id))


class _WorkerStudy:
    """The part of a Study a trial touches while it runs in a worker. ``remote`` tells objectives
    that keep state across trials (``nnhp.tune``'s best checkpoint) that the driver reconciles it."""

    remote = True
    searcher = None

    def __init__(self, storage):
        self.storage, self.study_id = storage, None


def make_task(trial: Trial, parent_checkpoint, blas_threads: int | None = 1) -> dict:
    return {"blas_threads": blas_threads, "id": trial.id, "params": dict(trial.params), "budget": trial.budget, "parent_id": trial.parent_id,
            "info": dict(trial.info), "started": trial.started, "checkpoint": parent_checkpoint}


def run_task(objective, task: dict) -> dict:
    """Run ``objective`` on the trial ``task`` describes; what it returned or raised, and what it recorded.

    Any exception fails the trial (its text and traceback come back); TrialPruned prunes it."""
    storage = _RecordingStorage(task["parent_id"], task["checkpoint"])
    trial = Trial(task["id"], task["params"], budget=task["budget"], parent_id=task["parent_id"],
                  info=task["info"], started=task["started"])
    trial._study = _WorkerStudy(storage)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    from nnhp.blas import limit_blas_threads
    try:
        with limit_blas_threads(task.get("blas_threads", 1)):   # one trial per worker thread (a Dask
            value = objective(trial)                              # worker's own threads are not pinned)
        outcome = ("value", value if isinstance(value, (int, float)) else _plain(value))
    except TrialPruned as exc:
        outcome = ("pruned", str(exc))
    except Exception as exc:
        outcome = ("error", f"{type(exc).__name__}: {exc}", traceback.format_exc())
    return {"outcome": outcome, "ops": storage.ops, "worker": worker}


# --- the objective, sent once per worker (module docstring) -------------------------------------------
_installed_objective = None         # in a worker process: what install_objective() received


def install_objective(objective) -> None:
    """A :class:`ProcessPool` initializer: keep ``objective`` for every task this worker runs."""
    global _installed_objective
    _installed_objective = objective


def run_installed_task(task: dict) -> dict:
    """:func:`run_task` with the objective :func:`install_objective` gave this worker."""
    if _installed_objective is None:
        raise RuntimeError("no objective was installed in this worker (ProcessPool(initializer=install_objective))")
    return run_task(_installed_objective, task)


def send_once(objective, executor):
    """What to pass as the objective with each task on ``executor``: on Dask (a ``Client`` or its
    ``get_executor()``), a future of one copy scattered to every worker, which Dask hands each
    task in place of the future; anywhere else the objective itself."""
    client = executor if hasattr(executor, "get_executor") else getattr(executor, "_client", None)
    if not hasattr(client, "scatter"):
        return objective
    # hash=False: no key derived from hashing the data set; broadcast: each worker gets it now,
    # instead of fetching it from a peer on its first task.
    return client.scatter(objective, broadcast=True, hash=False)


def _plain(value):
    """What the objective returned, in a form that pickles (the study judges it)."""
    try:
        pickle.dumps(value)
        return value
    except Exception:
        return repr(value)


# --- worker processes ------------------------------------------------------------------------------
def _worker_main(conn, blas_threads, initialized: bool = False) -> None:
    try:
        import threadpoolctl
        threadpoolctl.threadpool_limits(limits=blas_threads)
    except ImportError:       # pragma: no cover - the environment variables set at spawn still hold
        pass
    failed_start = None
    if initialized:           # the first message: (initializer, initargs), pickled once for every worker
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        initializer = None
        try:
            initializer, initargs = pickle.loads(message)
            initializer(*initargs)
        except BaseException as exc:          # noqa: BLE001 - every task hears of it, the worker lives on
            failed_start = RuntimeError(f"the worker's initializer {getattr(initializer, '__name__', initializer)!r} "
                                        f"failed: {type(exc).__name__}: {exc}")
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if message is None:
            return
        try:
            if failed_start is not None:
                raise failed_start
            fn, args = pickle.loads(message)
            reply = (True, fn(*args))
        except BaseException as exc:          # noqa: BLE001 - sent back, the worker lives on
            reply = (False, exc)
        try:
            conn.send(reply)
        except Exception as exc:                # the result would not pickle
            conn.send((False, TypeError(f"the result could not be sent back: {type(exc).__name__}: {exc}")))


class _Worker:
    """One worker process and the pipe to it. ``init_message``: the pickled (initializer, initargs),
    sent as its first message (see :meth:`ProcessPool.__init__` for why not as a start argument)."""

    def __init__(self, context, blas_threads: int, init_message: bytes | None = None):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, blas_threads, init_message is not None),
                                       daemon=True, name="nnhp-worker")
        with _ENV_LOCK:
            saved = {key: os.environ.get(key) for key in BLAS_ENV_VARS}
            os.environ.update({key: str(blas_threads) for key in BLAS_ENV_VARS})
            try:
                self.process.start()
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
        child.close()
        self.future: Future | None = None
        self.kill_reason: str | None = None
        self._init_message = init_message

    def initialize(self) -> None:
        """Send the initializer; blocks until the process reads it (its death shows on the sentinel)."""
        if self._init_message is not None:
            try:
                self.conn.send_bytes(self._init_message)
            except OSError:
                pass

    @property
    def pid(self) -> int:
        return self.process.pid


_ENV_LOCK = threading.Lock()


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the OS has one (``taskset``,
    a container's cpuset), which ``os.cpu_count()`` -- every core of the machine -- overstates."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):        # macOS, Windows: no affinity call
        return os.cpu_count() or 1


class ProcessPool(Executor):
    """``n_workers`` spawned worker processes; a dead worker fails only its own task (module docstring).

    ``blas_threads``: BLAS threads per worker (default: the cores this process may use shared out,
    at least 1; see :func:`usable_cores`).
    ``initializer(*initargs)`` runs in each worker when it starts (a replacement's too), as in
    ``concurrent.futures``; if it raises, every task sent to that worker fails with its reason.
    """

    def __init__(self, n_workers: int, *, blas_threads: int | None = None, initializer=None, initargs=()):
        if n_workers < 1:
            raise ValueError(f"n_workers must be a positive integer, got {n_workers!r}")
        self.n_workers = int(n_workers)
        self.blas_threads = blas_threads or max(1, usable_cores() // self.n_workers)
        # The initializer and its arguments (with Study.optimize, the objective and its data set) are
        # pickled once, and sent to each worker after *all* have been started: as a start argument a
        # large one would hold Process.start() until that child had booted and read it, and the
        # workers would start one after another instead of side by side.
        init_message = None if initializer is None else pickle.dumps((initializer, tuple(initargs)))
        self._start_args = (self.blas_threads, init_message)
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._wakeup_r, self._wakeup_w = self._context.Pipe(duplex=False)
        self._queue: list[tuple[Future, bytes]] = []
        self._shutdown = False
        self._workers = [_Worker(self._context, *self._start_args) for _ in range(self.n_workers)]
        for worker in self._workers:
            worker.initialize()
        self._thread = threading.Thread(target=self._run, name="nnhp-process-pool", daemon=True)
        self._thread.start()

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids now (a dead worker's replacement has a new one)."""
        with self._lock:
            return [w.pid for w in self._workers]

    def submit(self, fn, /, *args, **kwargs) -> Future:
        if kwargs:
            raise TypeError("ProcessPool.submit takes positional arguments only")
        payload = pickle.dumps((fn, args))
        future = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to a ProcessPool that was shut down")
            self._queue.append((future, payload))
        self._wakeup_w.send(b"")
        return future

    def pid_of(self, future: Future) -> int | None:
        """The id of the process running ``future``'s task (None: waiting, or done)."""
        with self._lock:
            return next((w.pid for w in self._workers if w.future is future), None)

    def kill(self, future: Future, reason: str) -> bool:
        """End the worker running ``future``'s task; the future fails with WorkerDied(reason)."""
        with self._lock:
            for worker in self._workers:
                if worker.future is future:
                    worker.kill_reason = reason
                    worker.process.kill()
                    return True
        return False

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._shutdown and not self._queue and all(w.future is None for w in self._workers):
                    return
                for worker in self._workers:
                    if worker.future is None and self._queue:
                        future, payload = self._queue.pop(0)
                        if not future.set_running_or_notify_cancel():
                            continue
                        worker.future = future
                        try:
                            worker.conn.send_bytes(_message(payload))
                        except OSError:
                            pass                # its death shows on the sentinel below
                waiting = {self._wakeup_r: None}
                for worker in self._workers:
                    waiting[worker.conn] = worker
                    waiting[worker.process.sentinel] = worker
            ready = wait_connections(list(waiting), timeout=1.0)
            with self._lock:
                for item in ready:
                    if item is self._wakeup_r:
                        while self._wakeup_r.poll():
                            self._wakeup_r.recv_bytes()
                        continue
                    worker = waiting[item]
                    if worker not in self._workers:
                        continue
                    if item is worker.conn:
                        try:
                            ok, value = worker.conn.recv()
                        except (EOFError, OSError):
                            continue            # the sentinel says what happened
                        future, worker.future = worker.future, None
                        if future is not None:
                            (future.set_result if ok else future.set_exception)(value)
                    elif not worker.process.is_alive():
                        self._replace(worker)

    def _replace(self, worker: _Worker) -> None:
        worker.process.join(timeout=1.0)
        code = worker.process.exitcode
        future = worker.future
        if future is not None and not future.done():
            reason = worker.kill_reason or f"worker process {worker.pid} died (exit code {code}) while running it"
            future.set_exception(WorkerDied(reason))
        worker.conn.close()
        index = self._workers.index(worker)
        if self._shutdown and not self._queue:
            self._workers.pop(index)
        else:
            self._workers[index] = _Worker(self._context, *self._start_args)
            self._workers[index].initialize()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False, kill: bool = False,
                 join: bool = True) -> None:
        """Stop the workers once their tasks are done (``kill``: now, failing their tasks).

        ``join=False``: once the tasks are done, tell the workers to stop and return without
        waiting for their processes to exit (a background thread reaps them). An interpreter with
        numba loaded takes about 0.3 s to exit; a search's driver need not wait for that before
        its refit."""
        with self._lock:
            self._shutdown = True
            if cancel_futures or kill:
                for future, _ in self._queue:
                    future.cancel()
                self._queue.clear()
            if kill:
                for worker in self._workers:
                    worker.kill_reason = "stopped: the search was interrupted"
                    worker.process.kill()
        self._wakeup_w.send(b"")
        if wait or kill:
            self._thread.join()
            workers = list(self._workers)
            # Tell every worker to stop before waiting for any: they wind down side by side, not in turn.
            for worker in workers:
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
            if join or kill:
                _reap(workers)
            else:
                threading.Thread(target=_reap, args=(workers,), name="nnhp-worker-reaper", daemon=True).start()


def _reap(workers) -> None:
    """Wait for stopped workers' processes to exit (5 s each, then kill)."""
    for worker in workers:
        worker.process.join(timeout=5.0)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()


def _message(payload: bytes) -> bytes:
    # The worker reads with conn.recv(), which unpickles: wrap the pre-pickled task as bytes.
    return pickle.dumps(payload)
