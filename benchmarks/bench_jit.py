"""numba fused kernels vs plain NumPy: one training step, and each kernel alone.

    python benchmarks/bench_jit.py [--batches 64 256 1024] [--reps 40] [--models ...]
                                   [--kernels-only | --training-only]

Training step = forward + softmax cross-entropy + backward + Adam, as ``nnhp.fit``
runs it, on the ReLU MLPs of ``ARCHITECTURES`` (float32), with every kernel off
(``jit=False``: the NumPy reference) or on (``jit=True``). The two variants take
turns step by step, so a busy machine disturbs both alike; median and minimum of
``--reps`` steps after warm-up (which also loads or compiles the numba kernels).
Beside them: the step's matrix products alone and one fused Adam pass alone, the
two parts no fusion can remove, and the ceiling they put on the speed-up.

Kernel table: each fused kernel against the NumPy code it replaces, over a range
of sizes: where the numba column wins is where ``nnhp.jit.MIN_SIZE`` (the "auto"
thresholds) should start. GPU rows are printed as not measured unless CuPy sees a
device (then nothing GPU-side is timed here either: that is bench_train.py --gpu).
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
import platform  # noqa: E402
import time  # noqa: E402

import numpy  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import nnhp  # noqa: E402
from nnhp import jit, layers, losses, optim  # noqa: E402

SIZES = [784, 512, 256, 10]

#: The training-step table's models: (label, layer sizes, dropout rate). The first is
#: the MLP that bench_train.py races against PyTorch; the last is the size of network
#: that the README's tuning run on the digits set explores (units 32-256, dropout <= 0.3).
ARCHITECTURES = {
    "mnist": ("784-512-256-10", SIZES, 0.0),
    "mnist-dropout": ("784-512-256-10, dropout 0.2", SIZES, 0.2),
    "digits": ("64-128-128-10, dropout 0.1", [64, 128, 128, 10], 0.1),
}


def make_step(batch: int, setting: bool, sizes=SIZES, dropout: float = 0.0):
    """A closure running one training step, with fused kernels on or off everywhere."""
    rng = numpy.random.default_rng(0)
    X = rng.standard_normal((batch, sizes[0])).astype(numpy.float32)
    y = rng.integers(0, sizes[-1], batch)
    model = nnhp.MLP(sizes, activation="relu", dropout=dropout, seed=0, jit=setting)
    loss = losses.get("cross_entropy")
    loss.jit = setting
    optimizer = optim.Adam(lr=1e-3)
    optimizer.jit = setting

    def step():
        out = model._forward(X, True)
        loss.forward(out, y)
        model.backward(loss.backward(), need_input_grad=False)
        optimizer.step([model.flat_params], [model.flat_grads])
    return step, model


def make_gemms(batch: int, model, sizes=SIZES):
    """The step's matrix products alone (BLAS): per layer x @ W forward, x^T @ delta for
    dW, and delta @ W^T for dL/dx except in the first layer. No fused kernel can shorten
    these, so their time is the floor under any training step."""
    rng = numpy.random.default_rng(0)
    X = rng.standard_normal((batch, sizes[0])).astype(numpy.float32)
    # Its own copies: touching either step's arrays would warm the cache for that step.
    weights = [layer.params[0].copy() for layer in model.layers if isinstance(layer, layers.Dense)]
    acts = [X] + [numpy.empty((batch, width), numpy.float32) for width in sizes[1:]]
    weight_grads = [numpy.empty_like(W) for W in weights]

    def gemms():
        for k, W in enumerate(weights):
            numpy.matmul(acts[k], W, out=acts[k + 1])
        for k in range(len(weights) - 1, -1, -1):
            numpy.matmul(acts[k].T, acts[k + 1], out=weight_grads[k])
            if k > 0:
                numpy.matmul(acts[k + 1], weights[k].T, out=acts[k])
    return gemms


def make_optimizer_pass(n_params: int):
    """One fused Adam step over ``n_params`` float32 parameters alone: with the GEMMs, the
    part of a training step that fusion cannot remove (it must touch every parameter,
    gradient and moment once)."""
    rng = numpy.random.default_rng(2)
    params, grads = (rng.standard_normal(n_params).astype(numpy.float32) for _ in range(2))
    optimizer = optim.Adam(lr=1e-3)
    optimizer.jit = True
    return lambda: optimizer.step([params], [grads])


def interleaved(functions: dict, reps: int, warmup: int = 5) -> dict:
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
    return {name: (1e3 * float(numpy.median(t)), 1e3 * float(numpy.min(t))) for name, t in times.items()}


def bench_training(batches, reps, architectures) -> list[str]:
    rows = ["| model | batch | NumPy step (ms) | numba step (ms) | speed-up (median) | speed-up (min) "
            "| GEMMs alone (ms) | fused Adam alone (ms) | ceiling (min) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    print("\n".join(rows), flush=True)
    for name in architectures:
        label, sizes, dropout = ARCHITECTURES[name]
        for batch in batches:
            plain, model = make_step(batch, False, sizes, dropout)
            fused, _ = make_step(batch, True, sizes, dropout)
            # All four in turn, so the floor is measured in the same conditions as the steps.
            result = interleaved({"numpy": plain, "numba": fused, "gemms": make_gemms(batch, model, sizes),
                                  "adam": make_optimizer_pass(model.flat_params.size)}, reps)
            (p_med, p_min), (f_med, f_min) = result["numpy"], result["numba"]
            (g_med, g_min), (a_med, a_min) = result["gemms"], result["adam"]
            rows.append(f"| {label} | {batch} | {p_med:.2f} (min {p_min:.2f}) | {f_med:.2f} (min {f_min:.2f}) "
                        f"| {p_med / f_med:.2f}x | {p_min / f_min:.2f}x | {g_med:.2f} (min {g_min:.2f}) "
                        f"| {a_med:.2f} (min {a_min:.2f}) | {p_min / (g_min + a_min):.2f}x |")
            print(rows[-1], flush=True)
    print("# ceiling = NumPy step / (GEMMs + fused Adam), on minimums: the speed-up if every other "
          "part of the fused step cost nothing")
    return rows


def kernel_cases(size: int):
    """(name, plain function, fused function) for each kernel family at ``size`` elements."""
    rng = numpy.random.default_rng(1)
    cases = []
    # Adam over a flat buffer of `size` parameters.
    params = {s: rng.standard_normal(size).astype(numpy.float32) for s in (False, True)}
    grad = rng.standard_normal(size).astype(numpy.float32)
    opts = {s: optim.Adam(lr=1e-3) for s in (False, True)}
    for s in opts:
        opts[s].jit = s
    cases.append(("Adam step", lambda: opts[False].step([params[False]], [grad]),
                  lambda: opts[True].step([params[True]], [grad])))
    # ReLU forward + backward on a (rows, 512) activation.
    cols = 512 if size >= 512 else size
    shape = (max(1, size // cols), cols)
    x = rng.standard_normal(shape).astype(numpy.float32)
    g = rng.standard_normal(shape).astype(numpy.float32)
    relus = {s: layers.ReLU() for s in (False, True)}
    for s in relus:
        relus[s].jit = s
    cases.append(("ReLU fwd+bwd", lambda: (relus[False].forward(x, True), relus[False].backward(g)),
                  lambda: (relus[True].forward(x, True), relus[True].backward(g))))
    tanhs = {s: layers.Tanh() for s in (False, True)}
    for s in tanhs:
        tanhs[s].jit = s
    cases.append(("tanh fwd+bwd", lambda: (tanhs[False].forward(x, True), tanhs[False].backward(g)),
                  lambda: (tanhs[True].forward(x, True), tanhs[True].backward(g))))
    drops = {s: layers.Dropout(0.2) for s in (False, True)}
    for s in drops:
        drops[s].jit = s
    cases.append(("dropout fwd+bwd", lambda: (drops[False].forward(x, True), drops[False].backward(g)),
                  lambda: (drops[True].forward(x, True), drops[True].backward(g))))
    # softmax + cross-entropy on (size / 10, 10) logits.
    n = max(1, size // 10)
    logits = rng.standard_normal((n, 10)).astype(numpy.float32)
    labels = rng.integers(0, 10, n)
    ces = {s: losses.CrossEntropy() for s in (False, True)}
    for s in ces:
        ces[s].jit = s
    cases.append(("softmax+CE+grad", lambda: (ces[False].forward(logits, labels), ces[False].backward()),
                  lambda: (ces[True].forward(logits, labels), ces[True].backward())))
    return cases


def bench_kernels(sizes, reps) -> list[str]:
    rows = ["| kernel | elements | NumPy (ms) | numba (ms) | speed-up (median) |", "|---|---:|---:|---:|---:|"]
    print("\n".join(rows), flush=True)
    for size in sizes:
        for name, plain, fused in kernel_cases(size):
            result = interleaved({"numpy": plain, "numba": fused}, reps)
            (p_med, _), (f_med, _) = result["numpy"], result["numba"]
            rows.append(f"| {name} | {size:,} | {p_med:.4f} | {f_med:.4f} | {p_med / f_med:.2f}x |")
            print(rows[-1], flush=True)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--kernel-sizes", type=int, nargs="+",
                        default=[1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 21])
    parser.add_argument("--models", nargs="+", default=list(ARCHITECTURES), choices=list(ARCHITECTURES),
                        help="training-step models (default: all)")
    parser.add_argument("--kernels-only", action="store_true")
    parser.add_argument("--training-only", action="store_true")
    args = parser.parse_args(argv)
    if not jit.available():
        sys.exit("bench_jit.py needs numba (pip install 'nnhp[jit]')")
    import numba
    print(f"# python {platform.python_version()}, numpy {numpy.__version__}, numba {numba.__version__} "
          f"(kernels single-threaded), {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} at start")
    if not args.kernels_only:
        print(f"# training step, ReLU MLPs, float32, softmax CE + Adam; {args.reps} interleaved steps "
              "after warm-up")
        bench_training(args.batches, args.reps, args.models)
    if not args.training_only:
        print(f"# kernels alone; {args.reps} interleaved calls after warm-up")
        bench_kernels(args.kernel_sizes, args.reps)
    print("# GPU (CuPy + kernels/*.cu): not yet measured (no GPU in this session)")


if __name__ == "__main__":
    main()
