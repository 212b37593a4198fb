"""Fuzzing the files nnhp reads: random, truncated and bit-flipped model files and study databases.

Each damaged file is handed to ``nnhp.load``, to ``Study(...)`` (then every trial and checkpoint
is read), and to ``nnhp report``. Each must end, within a second and a bounded amount of memory, in
either a clear error -- ValueError / FileNotFoundError for a model file, StorageError for a study
file, exit code 2 with one line for the command -- or, where the damage missed everything that
matters (a flipped bit in a zip timestamp), in a correct result. Never in another exception (which
the command would print as a traceback), never in a hang: a timer aborts any case after 5 s.

The variants are drawn from a fixed seed, so a failure reproduces; ``NNHP_FUZZ_CASES`` raises the
count for a longer run (the default keeps this file to a few seconds).
"""
import contextlib
import os
import signal
import time
import tracemalloc

import numpy as np
import pytest

import nnhp
from nnhp.cli import main
from nnhp.search import Float, Int, StorageError, Study

CASES = int(os.environ.get("NNHP_FUZZ_CASES", "60"))
SECONDS = 1.0
PEAK_BYTES = 64 * 2 ** 20


class Hang(Exception):
    pass


@contextlib.contextmanager
def bounded(what: str):
    """Fail (not hang) after 5 s; assert the case took under a second and under PEAK_BYTES."""
    def alarm(signum, frame):
        raise Hang(f"{what} still running after 5 s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, 5.0)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert seconds < SECONDS, f"{what} took {seconds:.2f} s"
    assert peak < PEAK_BYTES, f"{what} allocated {peak / 2 ** 20:.0f} MiB"


def variants(original: bytes, rng, count: int):
    """(label, bytes): random bytes, truncations, flipped bits, zeroed and shuffled blocks."""
    n = len(original)
    for i in range(count):
        kind = i % 6
        if kind == 0:
            yield "random", rng.integers(0, 256, int(rng.integers(0, 2 * n))).astype(np.uint8).tobytes()
        elif kind == 1:
            yield "truncated", original[: int(rng.integers(0, n))]
        elif kind in (2, 3):
            data = bytearray(original)
            for position in rng.integers(0, n, int(rng.integers(1, 9))):
                data[position] ^= 1 << int(rng.integers(0, 8))
            yield "bit-flipped", bytes(data)
        elif kind == 4:
            data = bytearray(original)
            start = int(rng.integers(0, n))
            length = int(rng.integers(1, max(2, n // 4)))
            data[start:start + length] = bytes(len(data[start:start + length]))
            yield "zeroed block", bytes(data)
        else:
            data = bytearray(original)
            start, other = (int(v) for v in rng.integers(0, n - 64, 2))
            data[start:start + 64], data[other:other + 64] = data[other:other + 64], data[start:start + 64]
            yield "swapped blocks", bytes(data)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    model = nnhp.MLP([6, 16, 8, 3], activation="tanh", dropout=0.1, seed=0)
    model.loss_name = "cross_entropy"
    path = tmp_path_factory.mktemp("fuzz_model") / "model.npz"
    model.save(path)
    return path.read_bytes(), model


@pytest.fixture(scope="module")
def study_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz_study") / "study.db"
    study = Study({"lr": Float(1e-4, 1e-1, log=True), "units": Int(8, 64)}, storage=str(path), name="fuzz")
    for i in range(8):
        trial = study.ask()
        for epoch in range(3):
            trial.report(1.0 / (epoch + 1 + i), epoch)
        trial.set_attr("val_loss", 0.5 + i)
        trial.save_checkpoint({"flat_params": np.linspace(0, 1, 300) + i, "epoch": np.array(3)})
        study.tell(trial, 0.1 * i)
    n_trials = len(study.trials)
    study.storage.close()
    return path.read_bytes(), n_trials


def test_damaged_model_files_end_in_a_clear_error_or_the_right_model(tmp_path, model_file):
    original, model = model_file
    rng = np.random.default_rng(12)
    outcomes = {"error": 0, "loaded": 0}
    for index, (label, data) in enumerate(variants(original, rng, 3 * CASES)):
        path = tmp_path / f"m{index}.npz"
        path.write_bytes(data)
        with bounded(f"nnhp.load of a {label} model file (case {index})"):
            try:
                loaded = nnhp.load(path)
            except (ValueError, FileNotFoundError) as error:
                assert str(path) in str(error), (label, error)
                outcomes["error"] += 1
            else:
                np.testing.assert_array_equal(loaded.flat_params, model.flat_params)
                outcomes["loaded"] += 1
        path.unlink()
    assert outcomes["error"] > 0.8 * 3 * CASES


def _read_everything(path) -> int:
    study = Study(storage=str(path), name="fuzz", fail_stale=False)
    trials = study.trials
    for trial in trials:
        study.storage.load_checkpoint(study.study_id, trial.id)
    study.storage.close()
    return len(trials)


def test_damaged_study_files_end_in_a_storage_error_or_a_readable_study(tmp_path, study_file):
    original, n_trials = study_file
    rng = np.random.default_rng(34)
    errors = 0
    for index, (label, data) in enumerate(variants(original, rng, CASES)):
        path = tmp_path / f"s{index}.db"
        path.write_bytes(data)
        with bounded(f"Study(...) on a {label} study file (case {index})"):
            try:
                count = _read_everything(path)
            except StorageError as error:
                assert str(path.name) in str(error) or "study" in str(error), (label, error)
                errors += 1
            except ValueError as error:          # the study renamed by a flipped bit, or its space erased
                assert "study 'fuzz' needs a space" in str(error), (label, error)
                errors += 1
            else:
                assert 0 <= count <= n_trials
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):
                os.unlink(f"{path}{suffix}")
    assert errors > CASES // 3


def test_damaged_study_files_give_nnhp_report_one_line_or_a_report(tmp_path, study_file, capsys, monkeypatch):
    from nnhp import report
    # The plots are not what is fuzzed here (and take a second each): the reading and the tables are.
    for name in [name for name in dir(report) if name.startswith("plot_")]:
        monkeypatch.setattr(report, name, lambda study, path, **options: None)
    original, _ = study_file
    rng = np.random.default_rng(56)
    for index, (label, data) in enumerate(variants(original, rng, CASES // 2)):
        path = tmp_path / f"r{index}.db"
        path.write_bytes(data)
        with bounded(f"nnhp report on a {label} study file (case {index})"):
            code = main(["report", str(path), "--out", str(tmp_path / f"out{index}")])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        if code == 2:
            assert len(captured.err.strip().splitlines()) == 1, captured.err
            assert captured.err.startswith("nnhp report: error: ")
        else:
            assert code == 0 and "wrote" in captured.out, (label, captured.err)
        assert path.read_bytes() == data                         # read-only, whatever the damage
