"""Trials in worker processes and on other executors (nnhp.search.workers behind Study.optimize).

The objectives are module-level functions: worker processes are spawned and import this module.
"""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import nnhp
from nnhp.data import make_moons, train_test_split
from nnhp.search import Float, Hyperband, Int, RandomSearch, Space, Study

REPO = Path(__file__).resolve().parents[1]


def _space():
    return Space({"x": Float(-1.0, 1.0), "n": Int(0, 9)})


def recording_objective(trial):
    trial.set_attr("pid", os.getpid())
    for step in range(3):
        trial.report(trial.params["x"] * step, step)
    trial.save_checkpoint({"w": np.full(2, trial.params["x"])})
    time.sleep(0.05)
    return trial.params["x"] ** 2


def killed_on_trial_two(trial):
    """SIGKILLs its own worker process in trial 2 (not in a retry of it)."""
    if trial.id == 2 and "retry_of" not in trial.info:
        trial.report(1.0, 0)
        os.kill(os.getpid(), signal.SIGKILL)
    return trial.params["x"] ** 2


def slow_on_trial_one(trial):
    if trial.id == 1:
        time.sleep(60)
    return trial.params["x"] ** 2


def failing_objective(trial):
    if trial.params["n"] % 2:
        raise ValueError(f"odd n={trial.params['n']}")
    return float(trial.params["n"])


def budget_objective(trial):
    start = 0.0 if trial.checkpoint is None else float(trial.checkpoint["progress"][0])
    trial.save_checkpoint({"progress": np.array([trial.budget])})
    trial.set_attr("continued_from", start)
    return (trial.params["x"] - 0.2) ** 2 + 1.0 / trial.budget


class CountingObjective:
    """Counts the trials this copy of it ran: a copy per worker, not per trial, counts past 1."""

    def __init__(self):
        self.data = np.zeros(100_000)          # 800 kB, like a data set: worth sending once
        self.calls = 0

    def __call__(self, trial):
        self.calls += 1
        trial.set_attr("copy", f"{os.getpid()}:{id(self)}")
        trial.set_attr("calls", self.calls)
        time.sleep(0.05)
        return trial.params["x"] ** 2


def _raise_at_start():
    raise OSError("no GPU here")


def test_trials_run_in_worker_processes_and_what_they_record_comes_back():
    study = Study(_space(), RandomSearch(seed=0))
    study.optimize(recording_objective, n_trials=6, n_workers=2)
    trials = study.trials
    assert len(trials) == 6 and all(t.state == "complete" for t in trials)
    pids = {t.attrs["pid"] for t in trials}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    for t in trials:
        assert t.attrs["worker"].endswith(f":{t.attrs['pid']}")
        assert t.intermediate == {step: t.params["x"] * step for step in range(3)}
        checkpoint = study.storage.load_checkpoint(study.study_id, t.id)
        assert checkpoint["w"].tolist() == [t.params["x"]] * 2
        assert t.value == t.params["x"] ** 2


def test_same_seed_same_params_whatever_the_number_of_workers():
    def params(n_workers):
        study = Study(_space(), RandomSearch(seed=3))
        study.optimize(failing_objective, n_trials=8, n_workers=n_workers)
        return sorted((t.params["x"], t.params["n"]) for t in study.trials)

    assert params(1) == params(2)


def test_an_objective_error_in_a_worker_fails_its_trial_with_the_reason_and_traceback():
    study = Study(_space(), RandomSearch(seed=0))
    study.optimize(failing_objective, n_trials=8, n_workers=2)
    for t in study.trials:
        if t.params["n"] % 2:
            assert t.state == "failed" and t.error == f"ValueError: odd n={t.params['n']}"
            assert "Traceback" in t.attrs["traceback"]
        else:
            assert t.state == "complete"


def test_an_unpicklable_objective_is_refused_by_name():
    study = Study(_space(), RandomSearch(seed=0))

    def local_objective(trial):
        return 0.0

    with pytest.raises(TypeError, match="objective .*local_objective.* cannot be pickled.*executor='threads'"):
        study.optimize(local_objective, n_trials=2, n_workers=2)
    assert study.trials == []
    study.optimize(local_objective, n_trials=2, n_workers=2, executor="threads")     # threads still work
    assert [t.state for t in study.trials] == ["complete", "complete"]


def test_a_worker_killed_mid_trial_fails_that_trial_and_the_search_goes_on():
    study = Study(_space(), RandomSearch(seed=0))
    study.optimize(killed_on_trial_two, n_trials=6, n_workers=2, max_retries=0)
    trials = study.trials
    assert len(trials) == 6
    assert trials[2].state == "failed"
    assert trials[2].error.startswith("worker failed: WorkerDied: worker process")
    assert "exit code -9" in trials[2].error
    assert all(t.state == "complete" for t in trials if t.id != 2)


def test_a_killed_trial_is_retried_and_the_retry_names_it():
    study = Study(_space(), RandomSearch(seed=0))
    study.optimize(killed_on_trial_two, n_trials=5, n_workers=2)          # max_retries=1
    trials = study.trials
    assert len(trials) == 6                                               # 5 + the retry
    assert trials[2].state == "failed" and "WorkerDied" in trials[2].error
    retries = [t for t in trials if t.info.get("retry_of") is not None]
    assert len(retries) == 1 and retries[0].info["retry_of"] == 2
    assert retries[0].params == trials[2].params and retries[0].state == "complete"
    assert sum(t.state == "complete" for t in trials) == 5


def test_a_trial_past_its_timeout_is_stopped_and_failed():
    study = Study(_space(), RandomSearch(seed=0))
    started = time.monotonic()
    study.optimize(slow_on_trial_one, n_trials=4, n_workers=2, trial_timeout=2.0, max_retries=0)
    assert time.monotonic() - started < 30
    trials = study.trials
    assert trials[1].state == "failed" and "trial_timeout=2" in trials[1].error
    assert all(t.state == "complete" for t in trials if t.id != 1)


def test_the_objective_is_sent_to_each_worker_process_once_not_with_every_trial():
    study = Study(_space(), RandomSearch(seed=0))
    study.optimize(CountingObjective(), n_trials=8, n_workers=2)
    trials = study.trials
    assert all(t.state == "complete" for t in trials)
    copies = {t.attrs["copy"] for t in trials}
    assert len(copies) == len({t.attrs["worker"] for t in trials}) <= 2      # one copy per worker process
    for copy in copies:                          # and that copy ran each of its worker's trials in turn
        assert sorted(t.attrs["calls"] for t in trials if t.attrs["copy"] == copy) == \
            list(range(1, 1 + sum(t.attrs["copy"] == copy for t in trials)))


def test_a_failing_worker_initializer_fails_each_task_with_its_reason():
    from nnhp.search.workers import ProcessPool
    pool = ProcessPool(1, initializer=_raise_at_start)
    try:
        future = pool.submit(os.getpid)
        with pytest.raises(RuntimeError, match="initializer '_raise_at_start' failed: OSError: no GPU here"):
            future.result(timeout=60)
        assert len(set(pool.pids)) == 1            # the worker lives on (no restart loop)
    finally:
        pool.shutdown()


def test_shutdown_without_join_returns_once_the_tasks_are_done_and_the_workers_exit_after():
    from nnhp.search.workers import ProcessPool
    for join in (True, False):
        pool = ProcessPool(2)
        futures = [pool.submit(time.sleep, 0.2) for _ in range(3)]
        processes = [w.process for w in pool._workers]
        pool.shutdown(join=join)
        assert all(f.done() and f.exception() is None for f in futures)
        if join:
            assert not any(p.is_alive() for p in processes)
        deadline = time.monotonic() + 30
        while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [p.exitcode for p in processes] == [0, 0]           # stopped, not killed
        with pytest.raises(RuntimeError, match="shut down"):
            pool.submit(os.getpid)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this OS")
def test_workers_share_out_the_cores_this_process_may_use_not_the_machines():
    from nnhp.search.workers import ProcessPool
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})            # as under taskset -c 0: one core, whatever the machine has
    try:
        pool = ProcessPool(1)
    finally:
        os.sched_setaffinity(0, allowed)
    try:
        assert pool.blas_threads == 1                   # not os.cpu_count() threads on one core
        assert pool.submit(os.sched_getaffinity, 0).result(timeout=60) == {min(allowed)}   # the workers inherit it
    finally:
        pool.shutdown()


def test_any_concurrent_futures_executor_runs_the_trials():
    study = Study(_space(), RandomSearch(seed=0))
    with ProcessPoolExecutor(2) as pool:
        study.optimize(recording_objective, n_trials=4, n_workers=2, executor=pool)
    trials = study.trials
    assert all(t.state == "complete" for t in trials) and len(trials) == 4
    assert os.getpid() not in {t.attrs["pid"] for t in trials}


def test_hyperband_promotions_continue_from_checkpoints_sent_to_workers():
    study = Study(Space({"x": Float(0.0, 1.0)}), Hyperband(max_budget=9, eta=3, seed=0, max_iterations=1))
    study.optimize(budget_objective, n_workers=2)
    trials = study.trials
    assert len(trials) == 22 and all(t.state == "complete" for t in trials)
    promoted = [t for t in trials if t.parent_id is not None]
    assert promoted
    for t in promoted:
        assert t.attrs["continued_from"] == study.get_trial(t.parent_id).budget


def test_tune_in_worker_processes_keeps_one_checkpoint_for_the_best():
    data = make_moons(n_samples=200, noise=0.2, seed=0)
    X, X_val, y, y_val = train_test_split(data.X, data.y, 0.25, seed=0)
    space = {"n_layers": 1, "units_1": Int(8, 16), "epochs": 4, "batch_size": 64}
    one = nnhp.tune(X, y, validation_data=(X_val, y_val), searcher="random", space=space, n_trials=4,
                    max_epochs=4, seed=0, refit=False)
    two = nnhp.tune(X, y, validation_data=(X_val, y_val), searcher="random", space=space, n_trials=4,
                    max_epochs=4, seed=0, refit=False, n_workers=2)
    study = two.study
    assert os.getpid() not in {int(t.attrs["worker"].rsplit(":", 1)[1]) for t in study.trials}
    # The same trials, each with the same value (two workers start the costliest first).
    def results(study):
        return sorted((t.params["units_1"], t.value) for t in study.trials)

    assert results(study) == results(one.study)
    kept = [t.id for t in study.trials if study.storage.load_checkpoint(study.study_id, t.id) is not None]
    assert kept == [study.best_trial.id]
    assert nnhp.evaluate(two.search_model, X_val, y_val)["accuracy"] == pytest.approx(two.best_value)


def test_dask_cluster_runs_the_trials():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        study = Study(_space(), RandomSearch(seed=0))
        study.optimize(recording_objective, n_trials=4, n_workers=2, executor=client)
    trials = study.trials
    assert len(trials) == 4 and all(t.state == "complete" for t in trials)
    assert os.getpid() not in {t.attrs["pid"] for t in trials}


def test_dask_workers_get_the_objective_scattered_once():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        study = Study(_space(), RandomSearch(seed=0))
        study.optimize(CountingObjective(), n_trials=8, n_workers=2, executor=client.get_executor())
    trials = study.trials
    assert all(t.state == "complete" for t in trials)
    by_copy = {}
    for t in trials:
        by_copy.setdefault(t.attrs["copy"], []).append(t.attrs["calls"])
    assert len(by_copy) <= 2 and sorted(len(calls) for calls in by_copy.values()) != [1] * len(trials)
    for calls in by_copy.values():
        assert sorted(calls) == list(range(1, len(calls) + 1))


# --- several processes on one SQLite study ----------------------------------------------------------
SHARED_CHILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from nnhp.search import Float, Int, RandomSearch, Space, Study

    path, seed, total, grace, hang_at, go = sys.argv[1:7]
    space = Space({"x": Float(-1.0, 1.0), "n": Int(0, 9)})

    def objective(trial):
        trial.set_attr("pid", os.getpid())
        if trial.id == int(hang_at) and "retry_of" not in trial.info:
            Path(go + ".hanging").write_text("")
            time.sleep(600)
        time.sleep(0.2)
        return trial.params["x"] ** 2

    study = Study(space, RandomSearch(seed=int(seed)), storage=path, name="shared", fail_stale=float(grace))
    Path(go + f".ready{seed}").write_text("")
    while not Path(go).exists():
        time.sleep(0.01)
    study.optimize(objective, total_trials=int(total))
""")


def _start(tmp_path, seed, total, grace, hang_at=-1):
    script = tmp_path / "child.py"
    script.write_text(SHARED_CHILD)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / "study.db"), str(seed), str(total),
                             str(grace), str(hang_at), str(tmp_path / "go")], env=env, stderr=subprocess.PIPE)


def _wait_for(path, children, seconds=60):
    deadline = time.monotonic() + seconds
    while not path.exists():
        for child in children:
            assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def test_two_processes_share_one_sqlite_study_up_to_its_total(tmp_path):
    children = [_start(tmp_path, seed, total=12, grace=3.0) for seed in (1, 2)]
    for seed in (1, 2):
        _wait_for(tmp_path / f"go.ready{seed}", children)
    (tmp_path / "go").write_text("")
    for child in children:
        assert child.wait(timeout=120) == 0, child.stderr.read().decode()
    trials = Study(storage=str(tmp_path / "study.db"), name="shared", fail_stale=False).trials
    assert [t.id for t in trials] == list(range(12))                  # unique ids, exactly the total
    assert all(t.state == "complete" for t in trials)                  # no live trial marked stale
    assert {t.attrs["pid"] for t in trials} == {child.pid for child in children}


def test_a_killed_process_trial_turns_stale_after_the_grace_period_and_is_retried(tmp_path):
    first = _start(tmp_path, 1, total=6, grace=1.0, hang_at=1)
    _wait_for(tmp_path / "go.ready1", [first])
    (tmp_path / "go").write_text("")
    _wait_for(tmp_path / "go.hanging", [first])
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=30) == -signal.SIGKILL
    time.sleep(1.5)                                                     # past the grace period
    second = _start(tmp_path, 2, total=6, grace=1.0)
    assert second.wait(timeout=120) == 0, second.stderr.read().decode()
    trials = Study(storage=str(tmp_path / "study.db"), name="shared", fail_stale=False).trials
    stale = trials[1]
    assert stale.state == "failed" and stale.interrupted and "no heartbeat for 1 s" in stale.error
    retry = [t for t in trials if t.info.get("retry_of") == 1]
    assert len(retry) == 1 and retry[0].params == stale.params and retry[0].state == "complete"
    assert sum(t.state == "complete" for t in trials) == 6 and len(trials) == 7


def test_total_trials_counts_what_the_study_holds(tmp_path):
    path = str(tmp_path / "s.db")
    one = Study(_space(), RandomSearch(seed=0), storage=path, name="s", fail_stale=5.0)
    two = Study(_space(), RandomSearch(seed=1), storage=path, name="s", fail_stale=5.0)
    held = one.ask()                                                   # running in "another process"
    two.optimize(failing_objective, total_trials=5)
    assert len(two.trials) == 5 and two.trials[0].state == "running"   # the live trial counts, untouched
    one.tell(held, 1.0)
    one.optimize(failing_objective, total_trials=5)
    assert len(one.trials) == 5


# --- a real Dask scheduler and two workers on 127.0.0.1 ----------------------------------------------
def killed_once_on_trial_two(trial):
    """Trial 2 waits to be killed the first time it runs (the test SIGKILLs its Dask worker)."""
    trial.set_attr("pid", os.getpid())
    folder = Path(os.environ.get("NNHP_TEST_DIR", "."))
    if trial.id == 2 and not (folder / "killed").exists():
        (folder / "victim").write_text(str(os.getpid()))
        time.sleep(600)
    time.sleep(0.1)
    return trial.params["x"] ** 2


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dask_scheduler_and_two_workers_survive_a_worker_killed_mid_trial(tmp_path):
    distributed = pytest.importorskip("distributed")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "NNHP_TEST_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(REPO), str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    processes = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port",
                                   str(port), "--dashboard-address", ":0", "--no-dashboard"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(2):
            processes.append(subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--nthreads", "1",
                                               "--no-nanny", "--host", "127.0.0.1", "--no-dashboard"], env=env,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            worker_pids = set(client.run(os.getpid).values())
            study = Study(_space(), RandomSearch(seed=0))

            def kill_the_victim():
                victim = tmp_path / "victim"
                deadline = time.monotonic() + 60
                while not victim.exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
                (tmp_path / "killed").write_text("")
                os.kill(int(victim.read_text()), signal.SIGKILL)

            import threading
            killer = threading.Thread(target=kill_the_victim)
            killer.start()
            study.optimize(killed_once_on_trial_two, n_trials=6, n_workers=2, executor=client)
            killer.join()
        trials = study.trials
        assert [t.id for t in trials[:6]] == list(range(6))
        assert all(t.state == "complete" or (t.state == "failed" and t.error) for t in trials)
        victim = int((tmp_path / "victim").read_text())
        assert victim in worker_pids
        two = trials[2]
        if two.state == "complete":         # Dask ran it again on the other worker
            assert two.attrs["pid"] != victim
        else:                                # or gave up on it: failed with the reason, and retried by the study
            assert "worker failed" in two.error
            assert [t.info["retry_of"] for t in trials if "retry_of" in t.info] == [2]
        assert sum(t.state == "complete" for t in trials) >= 5
    finally:
        for process in processes[::-1]:
            process.kill()
            process.wait(timeout=30)


def slow_after_trial_zero(trial):
    time.sleep(0.05 if trial.id == 0 else 60)
    return trial.params["x"]


def test_ctrl_c_stops_the_workers_and_marks_their_trials_interrupted():
    def interrupt(study, trial):
        raise KeyboardInterrupt

    study = Study(_space(), RandomSearch(seed=0))
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        study.optimize(slow_after_trial_zero, n_trials=4, n_workers=2, callbacks=[interrupt])
    assert time.monotonic() - started < 30
    trials = study.trials
    assert trials[0].state == "complete"
    assert [t.error for t in trials[1:]] == ["interrupted (KeyboardInterrupt)"] * (len(trials) - 1)
    assert all(t.interrupted for t in trials[1:])


def test_cli_workers_run_trials_in_worker_processes(tmp_path, capsys):
    from nnhp.cli import main

    db = str(tmp_path / "s.db")
    assert main(["tune", "--data", "moons", "--searcher", "random", "--trials", "3", "--max-epochs", "2",
                 "--set", "n_layers=1", "--set", "units=8", "--storage", db, "--quiet", "--no-refit",
                 "--workers", "2"]) == 0
    trials = Study(storage=db, name="tune", fail_stale=False).trials
    assert len(trials) == 3 and all(t.state == "complete" for t in trials)
    assert os.getpid() not in {int(t.attrs["worker"].rsplit(":", 1)[1]) for t in trials}


def test_cli_dask_without_dask_says_what_to_install(monkeypatch):
    from nnhp.cli import main

    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(SystemExit, match=r"pip install 'nnhp\[dask\]'"):
        main(["tune", "--data", "moons", "--trials", "1", "--max-epochs", "1", "--quiet",
              "--dask", "tcp://127.0.0.1:1"])


@pytest.mark.parametrize("name", ["gp", "bohb"])
def test_gp_and_bohb_see_the_pending_trials_of_worker_processes(name):
    from nnhp.search import make_searcher

    searcher = make_searcher(name, seed=0) if name == "gp" else make_searcher(name, max_budget=9, seed=0,
                                                                              max_iterations=1)
    study = Study(Space({"x": Float(0.0, 1.0)}), searcher)
    study.optimize(budget_objective if name == "bohb" else recording_objective, n_trials=12, n_workers=2)
    trials = study.trials
    assert len(trials) == 12 and all(t.state == "complete" for t in trials)
    assert len({t.params["x"] for t in trials if t.parent_id is None}) == sum(t.parent_id is None for t in trials)


def test_cli_shared_two_tune_processes_on_one_study_end_with_its_trials(tmp_path):
    """`nnhp tune --storage s.db --shared S` started twice: one study, --trials counted over both."""
    db = str(tmp_path / "s.db")
    command = [sys.executable, "-m", "nnhp", "tune", "--data", "moons", "--searcher", "random", "--trials", "8",
               "--max-epochs", "20", "--set", "n_layers=1", "--set", "units=64", "--storage", db,
               "--shared", "30", "--quiet", "--no-refit"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    for child in (first, second):
        _, err = child.communicate(timeout=240)
        assert child.returncode == 0, err.decode()
    trials = Study(storage=db, name="tune", fail_stale=False).trials
    assert [t.id for t in trials] == list(range(8))
    assert all(t.state == "complete" for t in trials)


def test_cli_shared_needs_storage(capsys):
    from nnhp.cli import main

    assert main(["tune", "--data", "moons", "--trials", "1", "--shared", "10", "--quiet"]) == 2
    assert "--shared needs --storage" in capsys.readouterr().err


def test_tune_with_two_worker_processes_starts_the_costliest_random_trials_first():
    data = make_moons(n_samples=200, noise=0.2, seed=0)
    X, X_val, y, y_val = train_test_split(data.X, data.y, 0.25, seed=0)
    space = {"n_layers": 1, "units_1": Int(8, 64), "epochs": Int(1, 6), "batch_size": 64}
    kwargs = dict(validation_data=(X_val, y_val), searcher="random", space=space, n_trials=6, max_epochs=6,
                  seed=0, refit=False)
    one = nnhp.tune(X, y, **kwargs)
    two = nnhp.tune(X, y, **kwargs, n_workers=2)
    from nnhp.tuning.objective import Problem, TrialObjective
    problem = Problem(X, y, X_val, y_val, "classification", 2, "accuracy", "cross_entropy")
    cost = TrialObjective(problem, None, max_epochs=6).estimated_cost
    costs = [cost(t.params) for t in two.study.trials]
    assert costs == sorted(costs, reverse=True)
    assert [cost(t.params) for t in one.study.trials] != costs
    assert sorted(map(str, (t.params for t in two.study.trials))) == sorted(map(str, (t.params for t in one.study.trials)))
    assert two.best_params == one.best_params
