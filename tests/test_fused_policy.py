"""nnhp/fused/policy.py, table.py, calibrate.py and ``python -m nnhp.fused``: when "auto"
uses a kernel (only where it measured faster here), where the measurements live, how
they are taken, and that loading the kernels stays out of ``fit``.

Every test runs with its own cache folder: the session's (conftest.py) or tmp_path."""
import os
import subprocess
import sys
import threading
import time
import types

import numpy
import pytest

pytest.importorskip("numba")

import nnhp  # noqa: E402
from nnhp.fused import calibrate, cpu, policy, table  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder of this test's own, auto mode, background calibration off."""
    monkeypatch.setenv("NNHP_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("NNHP_JIT_CALIBRATE", "0")
    monkeypatch.delenv("NNHP_JIT", raising=False)
    table.forget()
    yield tmp_path
    table.forget()


def run_python(code: str, cache_dir, **env):
    environment = {**os.environ, "NNHP_CACHE_DIR": str(cache_dir), "PYTHONPATH": ROOT, **env}
    environment.pop("NNHP_JIT", None)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                          cwd=ROOT, timeout=300)


# --- the table ------------------------------------------------------------------------------
def test_size_classes_cover_every_size():
    assert [table.size_class(n) for n in (1, 63, 64, 255, 256, 1023, 1024)] == [6, 6, 6, 6, 8, 8, 10]
    assert table.size_class(2 ** 21) == table.size_class(2 ** 30) == table.CLASSES[-1] == 20


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NNHP_CACHE_DIR", str(tmp_path / "own"))
    assert table.cache_dir() == tmp_path / "own"
    monkeypatch.delenv("NNHP_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert table.cache_dir() == tmp_path / "xdg" / "nnhp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert table.cache_dir() == tmp_path / "home" / ".cache" / "nnhp"


def test_measurements_are_kept_per_cpu_model_and_library_versions(cache, monkeypatch):
    described = table.machine("cpu")
    assert described["cpu"] == table.cpu_model() and described["cpu"]
    assert described["numpy"] == numpy.__version__
    assert described["numba"] == __import__("numba").__version__
    here = table.path("cpu")
    assert here.parent == cache and here.name.startswith("fused-cpu-")
    monkeypatch.setattr(table, "machine", lambda target: {**described, "cpu": "Another CPU"})
    table._path.cache_clear()
    try:
        assert table.path("cpu") != here             # another CPU: another file, measured afresh
    finally:
        table._path.cache_clear()


def test_a_saved_table_reads_back_by_size_class(cache):
    table.save("cpu", "float32", {"dropout": {6: 3.0, 8: 1.01}})
    table.save("cpu", "float32", {"optimizer/Adam": {20: 2.5}})        # adds, keeps the rest
    assert table.speedup("cpu", "float32", "dropout", 100) == 3.0
    assert table.faster("cpu", "float32", "dropout", 100) is True
    assert table.faster("cpu", "float32", "dropout", 300) is False      # 1.01 < MARGIN
    assert table.faster("cpu", "float32", "dropout", 5000) is None      # class 12: not measured
    assert table.faster("cpu", "float32", "optimizer/Adam", 10 ** 7) is True
    assert table.faster("cpu", "float64", "dropout", 100) is None
    assert table.any_faster("cpu", "float32") and not table.any_faster("cpu", "float64")


# --- the decision ---------------------------------------------------------------------------------
def test_auto_uses_a_kernel_exactly_where_it_measured_faster(cache):
    policy.load("cpu", numpy.float32)
    table.save("cpu", "float32", {"dropout": {6: 2.0, 8: 0.9}, "softmax_cross_entropy": {6: 1.2}})
    small, larger = numpy.ones(100, numpy.float32), numpy.ones(300, numpy.float32)
    assert policy.choose(small, "dropout", small.size) is cpu
    assert policy.choose(larger, "dropout", larger.size) is None
    assert policy.choose(small, "softmax_cross_entropy", small.size) is cpu
    assert policy.choose(small, "optimizer/Adam", small.size) is None              # not measured
    assert policy.choose(small.astype(numpy.float64), "dropout", small.size) is None
    assert policy.choose(small, "dropout", small.size, setting=False) is None
    assert policy.choose(larger, "dropout", larger.size, setting=True) is cpu      # "on" insists


def test_fit_follows_the_table_step_by_step(cache, monkeypatch):
    """With Adam measured faster and nothing else, fit runs the Adam kernel and plain layers."""
    policy.load("cpu", numpy.float32)
    table.save("cpu", "float32", {"optimizer/Adam": {size_class: 2.0 for size_class in table.CLASSES},
                                  "dense_activation/relu": {size_class: 0.5 for size_class in table.CLASSES}})
    calls = {"optimizer_update": 0, "bias_activation_forward": 0}
    for name in calls:
        real = getattr(cpu, name)

        def counting(*args, real=real, name=name):
            calls[name] += 1
            return real(*args)
        monkeypatch.setattr(cpu, name, counting)
    X = numpy.random.default_rng(0).standard_normal((64, 5)).astype(numpy.float32)
    nnhp.fit(nnhp.MLP([5, 8, 2], seed=0), X, (X[:, 0] > 0).astype(int), epochs=1, batch_size=32)
    assert calls == {"optimizer_update": 2, "bias_activation_forward": 0}


def test_without_measurements_auto_runs_the_plain_code_and_asks_for_them_once(cache, monkeypatch):
    monkeypatch.setenv("NNHP_JIT_CALIBRATE", "1")
    monkeypatch.setattr(table, "_requested", {})
    started = []
    monkeypatch.setattr(table.subprocess, "Popen", lambda command, **kwargs: started.append((command, kwargs)))
    x = numpy.ones(100, numpy.float32)
    assert policy.choose(x, "dropout", x.size) is None
    assert policy.choose(x, "dropout", x.size) is None
    assert len(started) == 1
    command, options = started[0]
    assert command[1:] == ["-m", "nnhp.fused", "--compile", "--target", "cpu", "--dtypes", "float32",
                           "--background"]
    assert options["start_new_session"] and ROOT in options["env"]["PYTHONPATH"].split(os.pathsep)


def test_no_background_calibration_while_another_runs_or_when_turned_off(cache, monkeypatch):
    started = []
    monkeypatch.setattr(table.subprocess, "Popen", lambda command, **kwargs: started.append(command))
    monkeypatch.setattr(table, "_requested", {})
    table.request_calibration("cpu", "float32")                  # NNHP_JIT_CALIBRATE=0
    monkeypatch.setenv("NNHP_JIT_CALIBRATE", "1")
    table.lock_path("cpu").write_text("12345")                   # a live lock: someone is measuring
    table.request_calibration("cpu", "float64")
    assert started == []
    os.utime(table.lock_path("cpu"), (0, 0))                     # a lock from long ago: stale
    table.request_calibration("cpu", "float32")
    assert len(started) == 1


# --- loading, out of fit ----------------------------------------------------------------------------
def test_building_a_model_loads_the_kernels_only_where_something_measured_faster(tmp_path):
    probe = ("import sys, nnhp; from nnhp.fused import policy; nnhp.MLP([4, 8, 2]); "
             "print('numba' in sys.modules, policy.loaded('cpu', 'float32') is not None)")
    assert run_python(probe, tmp_path, NNHP_JIT_CALIBRATE="0").stdout.split() == ["False", "False"]
    table_code = ("from nnhp.fused import table; "
                  "table.save('cpu', 'float32', {'dropout': {c: %s for c in table.CLASSES}})")
    assert run_python(table_code % "0.5", tmp_path).returncode == 0
    assert run_python(probe, tmp_path).stdout.split() == ["False", "False"]      # nothing wins
    assert run_python(table_code % "2.0", tmp_path).returncode == 0
    assert run_python(probe, tmp_path).stdout.split() == ["True", "True"]        # ready before fit


def test_a_kernel_set_wanted_mid_run_loads_in_the_background(cache, monkeypatch):
    """"auto" never waits for a load: the plain code runs until the kernels are ready."""
    release = threading.Event()
    fake = types.ModuleType("slow_kernels")
    fake.warm_up = lambda dtype: release.wait(10)
    monkeypatch.setitem(sys.modules, "slow_kernels", fake)
    monkeypatch.setitem(policy._KERNEL_MODULES, "cpu", "slow_kernels")
    monkeypatch.setattr(policy, "_loaders", {})
    table.save("cpu", "float32", {"dropout": {size_class: 3.0 for size_class in table.CLASSES}})
    x = numpy.ones(100, numpy.float32)
    started = time.perf_counter()
    assert policy.choose(x, "dropout", x.size) is None
    assert time.perf_counter() - started < 1.0
    release.set()
    policy._loaders["cpu", numpy.dtype(numpy.float32)].thread.join(10)
    assert policy.choose(x, "dropout", x.size) is fake


def test_a_load_started_ahead_runs_in_the_background_and_the_next_model_waits_for_it(cache, monkeypatch):
    release, done = threading.Event(), []
    fake = types.ModuleType("slow_kernels")
    fake.warm_up = lambda dtype: (release.wait(10), done.append(dtype))
    monkeypatch.setitem(sys.modules, "slow_kernels", fake)
    monkeypatch.setitem(policy._KERNEL_MODULES, "cpu", "slow_kernels")
    monkeypatch.setattr(policy, "_loaders", {})
    policy.prepare(numpy, numpy.float32, background=True)
    assert policy._loaders == {}                                 # nothing measured faster: nothing to load
    table.save("cpu", "float32", {"dropout": {size_class: 3.0 for size_class in table.CLASSES}})
    policy.prepare(numpy, numpy.float32, background=True)       # returns while the load waits
    loader = policy._loaders["cpu", numpy.dtype(numpy.float32)]
    assert loader.thread.is_alive() and done == []
    threading.Timer(0.2, release.set).start()
    policy.prepare(numpy, numpy.float32)                         # as building a model does: waits
    assert done == [numpy.dtype(numpy.float32)] and policy.loaded("cpu", numpy.float32) is fake


# --- measuring --------------------------------------------------------------------------------------
def test_compare_gives_the_ratio_of_the_two_functions_times():
    data = numpy.random.default_rng(0).standard_normal(200_000)

    def once():
        data.sum()

    ratio = calibrate.compare(lambda: [once() for _ in range(3)], once, min_reps=5, max_reps=5)
    assert 2.0 < ratio < 4.5


def test_every_family_has_a_case_whose_two_sides_compute_the_same(cache):
    for family in calibrate.families():
        plain, fused = calibrate.case(family, 512, numpy, numpy.float32)
        first, second = plain(), fused()
        if family.startswith(("dense_activation", "activation")):
            out_plain = first if not isinstance(first, tuple) else first[0]
            out_fused = second if not isinstance(second, tuple) else second[0]
            numpy.testing.assert_allclose(out_fused, out_plain, rtol=1e-5, atol=1e-6, err_msg=family)


def test_a_calibration_writes_the_table_that_auto_reads(cache):
    measured = calibrate.calibrate("cpu", ["float32"], names=["dropout", "optimizer/SGD"], classes=[6, 12],
                                   min_reps=3, max_reps=3)
    assert set(measured["float32"]) == {"dropout", "optimizer/SGD"}
    for family, by_class in measured["float32"].items():
        assert set(by_class) == {6, 12}
        for size_class, value in by_class.items():
            assert value > 0
            assert table.faster("cpu", "float32", family, 2 ** size_class) == (value >= table.MARGIN)


def run_module(arguments, cache_dir):
    environment = {**os.environ, "NNHP_CACHE_DIR": str(cache_dir), "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-m", "nnhp.fused", *arguments], capture_output=True, text=True,
                          env=environment, cwd=ROOT, timeout=300)


def test_the_command_line_measures_and_shows(tmp_path):
    result = run_module(["--compile", "--families", "dropout", "--classes", "6"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "dropout" in result.stdout and str(tmp_path) in result.stdout
    shown = run_module(["--show"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    row = next(line for line in shown.stdout.splitlines() if line.strip().startswith("dropout"))
    assert len(row.split()) == 1 + len(table.CLASSES)        # the family, then one cell per class
    assert table.cpu_model() in shown.stdout


def test_a_background_calibration_takes_the_lock_and_gives_it_back(tmp_path):
    arguments = ["--compile", "--background", "--families", "dropout", "--classes", "6"]
    lock = run_python("from nnhp.fused import table; print(table.lock_path('cpu'))", tmp_path).stdout.strip()
    measurements = lock[:-len(".lock")] + ".json"
    open(lock, "w").write("1")                                   # another process is measuring
    assert run_module(arguments, tmp_path).returncode == 0
    assert not os.path.exists(measurements)                      # it left the work to that one
    os.remove(lock)
    assert run_module(arguments, tmp_path).returncode == 0
    assert os.path.exists(measurements) and not os.path.exists(lock)
