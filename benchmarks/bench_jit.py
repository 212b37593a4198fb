"""Fused kernels under "auto" against plain NumPy: training steps, and a fresh process's first fit.

    python benchmarks/bench_jit.py [--reps 200] [--batches 64 256 1024] [--fit-reps 5]
                                   [--first-fit-runs 3] [--only steps|fits|first-fit]

1. Calibration. "auto" uses a kernel only where ``python -m nnhp.fused --compile``
   measured it faster on this machine (``nnhp/fused/table.py``). If this machine has no
   measurements yet, they are taken first, and the time that takes is printed: it is
   what a machine pays once (in a background process when auto finds none).
2. Training steps: forward + softmax cross-entropy + backward + Adam, as ``nnhp.fit``
   runs them, for the MLPs of ``MODELS``, in three variants on identical data and
   weights: plain NumPy (``jit=False``), "auto" (``jit=None``: the measured choice) and
   every kernel forced on (``jit=True``, for comparison). The variants take turns step
   by step, so a busy machine disturbs all alike; median and minimum over ``--reps``
   steps after a warm-up.
3. Whole fits: ``nnhp.fit`` under auto and plain NumPy, alternating in one process
   (``FITS``: the configurations of the report that opened issue 15).
4. First fit in a fresh process: a new Python process builds a model, times one
   ``nnhp.fit``, builds another and times a second, identical fit; the difference is
   what the first fit pays for loading (or compiling) anything. Runs ``--first-fit-runs``
   processes per variant, auto and plain alternating.

The machine (CPU model from /proc/cpuinfo, cores, load average at start and end) is printed
with the results. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are dropped before NumPy loads.
"""
import os
import sys

# Benchmarks run with the BLAS's own CPU detection: drop the test tuning variables
# before NumPy (and OpenBLAS) load, by re-running this script without them.
_TUNING = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(name in os.environ for name in _TUNING):
    env = {key: value for key, value in os.environ.items() if key not in _TUNING}
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
import nnhp  # noqa: E402
from nnhp import fused, losses, optim  # noqa: E402
from nnhp.fused import calibrate, policy, table  # noqa: E402

#: (label, layer sizes, dropout, batch sizes): the MLP bench_train.py races against PyTorch,
#: and one of the size the README's digits tuning explores.
MODELS = {
    "mnist": ("784-512-256-10", [784, 512, 256, 10], 0.0, None),      # batches from --batches
    "digits": ("64-128-64-10, dropout 0.1", [64, 128, 64, 10], 0.1, [32]),
}
VARIANTS = {"numpy": False, "auto": None, "on": True}

#: The fresh-process probe: build, fit, build, fit; prints the two fits' seconds as JSON.
FIRST_FIT = """
import json, sys, time
import numpy
sys.path.insert(0, {root!r})
started = time.perf_counter()
import nnhp
sizes, dropout, batch, rows, epochs, jit = {sizes!r}, {dropout!r}, {batch!r}, {rows!r}, {epochs!r}, {jit!r}
rng = numpy.random.default_rng(0)
X = rng.standard_normal((rows, sizes[0])).astype(numpy.float32)
y = rng.integers(0, sizes[-1], rows)
result = {{"import": time.perf_counter() - started}}
for name in ("first", "second"):
    start = time.perf_counter()
    model = nnhp.MLP(sizes, dropout=dropout, seed=0, jit=jit)
    result["build_" + name] = time.perf_counter() - start
    start = time.perf_counter()
    nnhp.fit(model, X, y, optimizer=nnhp.optim.Adam(lr=1e-3), epochs=epochs, batch_size=batch, seed=0)
    result[name] = time.perf_counter() - start
print(json.dumps(result))
"""


def machine_lines() -> list[str]:
    flags = set()
    try:
        with open("/proc/cpuinfo") as stream:
            flags = set(next(line for line in stream if line.startswith("flags")).split(":")[1].split())
    except (OSError, StopIteration):
        pass
    simd = [flag for flag in ("avx2", "avx512f", "fma") if flag in flags] or ["none reported"]
    import numba
    return [f"# CPU: {table.cpu_model()}; {os.cpu_count()} CPUs; SIMD: {', '.join(simd)}",
            f"# python {platform.python_version()}, numpy {numpy.__version__}, numba {numba.__version__}; "
            f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} at start",
            f"# measurements: {table.path('cpu')}"]


def ensure_calibrated() -> None:
    if table.load("cpu") and table.load("cpu")["speedups"].get("float32"):
        print(f"# calibration: this machine's measurements of {table.load('cpu')['measured']} are used")
        return
    print("# calibration: none for this machine yet; measuring now (once per machine and software)", flush=True)
    start = time.perf_counter()
    calibrate.calibrate("cpu", ["float32"])
    print(f"# calibration took {time.perf_counter() - start:.1f} s (compiling the kernels included)")


def make_step(sizes, dropout: float, batch: int, setting):
    """One training step as nnhp.fit runs it, with the kernels as ``setting`` says; and
    the parts that run it (the model's plan, the loss, the optimizer)."""
    rng = numpy.random.default_rng(0)
    X = rng.standard_normal((batch, sizes[0])).astype(numpy.float32)
    y = rng.integers(0, sizes[-1], batch)
    model = nnhp.MLP(sizes, dropout=dropout, seed=0, jit=setting)
    loss = fused.loss_step(losses.CrossEntropy(), setting)
    optimizer = fused.optimizer_step(optim.Adam(lr=1e-3), setting)

    def step():
        out = model._forward(X, True)
        loss.forward(out, y)
        model.backward(loss.backward(), need_input_grad=False)
        optimizer.step([model.flat_params], [model.flat_grads])
    return step, model.plan + [loss, optimizer]


def kernels_run(parts) -> str:
    """The fused steps among ``parts`` that ran a kernel in the last training step."""
    names = {"DenseActivation": "dense+act", "FusedActivation": "act", "FusedDropout": "dropout",
             "FusedCrossEntropy": "softmax+CE", "FusedOptimizer": "Adam"}
    ran = [names[type(part).__name__] for part in parts if getattr(part, "kernels", None) is not None]
    return ", ".join(dict.fromkeys(ran)) or "none"


def interleaved(functions: dict, reps: int, warmup: int = 10) -> dict:
    """Run the functions in turn, ``reps`` times each; per function (median, min) in ms."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    times = {name: [] for name in functions}
    for _ in range(reps):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: (1e3 * statistics.median(t), 1e3 * min(t)) for name, t in times.items()}


def bench_steps(batches, reps) -> None:
    print(f"# training steps (ms), float32, ReLU, softmax CE + Adam; {reps} steps per variant, "
          "interleaved, after warm-up")
    print("| model | batch | NumPy | auto | all kernels on | auto / NumPy speed-up (median) | (min) "
          "| auto runs |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for label, sizes, dropout, model_batches in MODELS.values():
        for batch in model_batches or batches:
            steps = {name: make_step(sizes, dropout, batch, setting) for name, setting in VARIANTS.items()}
            result = interleaved({name: step for name, (step, _) in steps.items()}, reps)
            (n_med, n_min), (a_med, a_min), (o_med, o_min) = (result[name] for name in VARIANTS)
            print(f"| {label} | {batch} | {n_med:.2f} (min {n_min:.2f}) | {a_med:.2f} (min {a_min:.2f}) "
                  f"| {o_med:.2f} (min {o_min:.2f}) | {n_med / a_med:.2f}x | {n_min / a_min:.2f}x "
                  f"| {kernels_run(steps['auto'][1])} |", flush=True)


#: Whole fits (and fresh-process first fits): the configurations of issue 15's report.
FITS = [("784-512-256-10, batch 256, 16,384 rows, 2 epochs", [784, 512, 256, 10], 0.0, 256, 16384, 2),
        ("64-128-64-10, dropout 0.1, batch 32, 1,797 rows, 2 epochs", [64, 128, 64, 10], 0.1, 32, 1797, 2)]


def bench_fits(reps: int) -> None:
    print(f"# whole nnhp.fit calls (Adam), auto and NumPy alternating in this process, {reps} each; "
          "seconds, median (range)")
    print("| model and fit | NumPy | auto | auto / NumPy speed-up | auto samples/s |")
    print("|---|---:|---:|---:|---:|")
    rng = numpy.random.default_rng(0)
    for label, sizes, dropout, batch, rows, epochs in FITS:
        X = rng.standard_normal((rows, sizes[0])).astype(numpy.float32)
        y = rng.integers(0, sizes[-1], rows)
        seconds = {"numpy": [], "auto": []}
        for _ in range(reps + 1):                       # the first round warms both up, untimed
            for name in ("numpy", "auto"):
                model = nnhp.MLP(sizes, dropout=dropout, seed=0, jit=VARIANTS[name])
                start = time.perf_counter()
                nnhp.fit(model, X, y, optimizer=optim.Adam(lr=1e-3), epochs=epochs, batch_size=batch, seed=0)
                seconds[name].append(time.perf_counter() - start)
        plain, auto = (statistics.median(seconds[name][1:]) for name in ("numpy", "auto"))

        def cell(name):
            return f"{statistics.median(seconds[name][1:]):.3f} ({min(seconds[name][1:]):.3f}-" \
                   f"{max(seconds[name][1:]):.3f})"
        print(f"| {label} | {cell('numpy')} | {cell('auto')} | {plain / auto:.2f}x "
              f"| {epochs * rows / auto:,.0f} |", flush=True)


def first_fit(sizes, dropout, batch, rows, epochs, jit) -> dict:
    code = FIRST_FIT.format(root=ROOT, sizes=sizes, dropout=dropout, batch=batch, rows=rows, epochs=epochs,
                            jit=jit)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return json.loads(result.stdout.splitlines()[-1])


def bench_first_fit(runs: int) -> None:
    print(f"# first fit in a fresh process: {runs} processes per variant, auto and NumPy alternating; "
          "seconds, median over the processes (range)")
    print("| model and fit | variant | import nnhp | first build | first fit | second fit "
          "| first fit - second fit |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, sizes, dropout, batch, rows, epochs in FITS:
        results = {"auto": [], "numpy": []}
        for _ in range(runs):
            for name, jit in (("auto", None), ("numpy", False)):
                results[name].append(first_fit(sizes, dropout, batch, rows, epochs, jit))
        for name, runs_of in results.items():
            def cell(key):
                values = [run[key] for run in runs_of]
                return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"
            extra = [run["first"] - run["second"] for run in runs_of]
            print(f"| {label} | {name} | {cell('import')} | {cell('build_first')} | {cell('first')} "
                  f"| {cell('second')} | {statistics.median(extra):+.3f} ({min(extra):+.3f} to {max(extra):+.3f}) |",
                  flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--first-fit-runs", type=int, default=3)
    parser.add_argument("--fit-reps", type=int, default=5)
    parser.add_argument("--only", choices=("steps", "fits", "first-fit"))
    args = parser.parse_args(argv)
    if not policy.numba_available():
        sys.exit("bench_jit.py needs numba (pip install 'nnhp[jit]')")
    for line in machine_lines():
        print(line)
    ensure_calibrated()
    if args.only in (None, "steps"):
        bench_steps(args.batches, args.reps)
    if args.only in (None, "fits"):
        bench_fits(args.fit_reps)
    if args.only in (None, "first-fit"):
        bench_first_fit(args.first_fit_runs)
    print(f"# load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} at the end")
    print("# GPU (CuPy + kernels/*.cu): not measured here (bench_train.py --gpu, on a machine with one)")


if __name__ == "__main__":
    main()
