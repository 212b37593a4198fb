"""Training throughput: nnhp against PyTorch, scikit-learn and a naive NumPy loop, on the CPU or a GPU.

The same MLP (784-512-256-10, ReLU, softmax cross-entropy, Adam, float32) trains on the
same 60,000 random samples in every engine, in one run, with the same thread count.
For each batch size we report samples/s (median over timed epochs after a warm-up
epoch), the ratio to nnhp, and the achieved FLOP/s as a fraction of this machine's
float32 GEMM peak (NumPy matmul of large square matrices, best of several).

FLOPs are counted exactly, per sample: 2 x weights for the forward pass, 2 x weights
for the weight gradients, and 2 x weights for the input gradients of every layer but
the first (which nobody needs). Biases, activations, the loss and the optimizer are
not counted: they are the overhead this measures.

    python benchmarks/bench_train.py                  # the full table (~10 minutes)
    python benchmarks/bench_train.py --quick          # fewer samples, a smoke test
    python benchmarks/bench_train.py --engines nnhp torch --batch-sizes 64
    python benchmarks/bench_train.py --gpu            # the GPU table and optimizer bandwidth

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed from the environment for this
command (the script re-executes itself without them), so OpenBLAS picks its kernels
for the real CPU.

On a GPU (``--gpu``)
--------------------
nnhp on CuPy (``nnhp-cupy``: one ``nnhp.fit`` call on NumPy data, which fit moves to the
device once, with the kernels of ``kernels/*.cu`` where this GPU measured them faster --
measured first if it has not been; ``nnhp-cupy-plain``: the same with ``jit=False``, plain
CuPy without them) against PyTorch CUDA (data on the device once, shuffled
there each epoch; Adam's default multi-tensor ``foreach`` step in ``torch-cuda``, its
``fused=True`` step in ``torch-cuda-fused``), at batch sizes 1024, 4096 and 16384.
Every epoch ends with a device synchronization before the clock is read; 10 epochs are
timed by default, as one of 60,000 samples takes milliseconds there. Both sides
compute float32 matmuls in full float32: PyTorch's TF32 switches are turned off, and
CuPy uses TF32 only when ``CUPY_TF32=1``, which this script removes from its
environment. The peak is CuPy's float32 matmul of large square matrices, best of
several, timed with CUDA events.

Then the fused optimizer step: ``optimizer.step`` of each nnhp optimizer with a CUDA
kernel over one flat float32 buffer of 2**26 elements (256 MiB per array, far beyond
any L2 cache), as achieved memory bandwidth: the bytes the step must move (read param,
grad and each state buffer, write param and each state buffer) over its time. It is
given as a fraction of the device's theoretical bandwidth (memory clock x bus width
x 2, double data rate) and of a measured 1 GiB device-to-device copy, the practical
ceiling. The plain CuPy step (``jit=False``) and PyTorch's ``Adam(fused=True)`` on the
same buffer are timed for comparison, counted with the same bytes (an effective rate:
the plain step really moves several times more).

Without CuPy or a visible GPU, ``--gpu`` prints one line saying the GPU figures were
not measured and why, and exits 0.
"""
from __future__ import annotations

import os
import sys

_BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# Only as a script: a test importing this module must not have its process replaced.
if __name__ == "__main__" and any(name in os.environ for name in _BLAS_OVERRIDES):
    for name in _BLAS_OVERRIDES:
        os.environ.pop(name, None)
    os.execv(sys.executable, [sys.executable] + sys.argv)

import argparse
import platform
import statistics
import subprocess
import time

import numpy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import nnhp  # noqa: E402

SIZES = [784, 512, 256, 10]
GPU_BATCH_SIZES = [1024, 4096, 16384]
#: Elements of the flat buffer the optimizer bandwidth is measured on (256 MiB in float32).
BANDWIDTH_ELEMENTS = 1 << 26
#: Bytes of the device-to-device copy that stands for the practical bandwidth ceiling.
COPY_BYTES = 1 << 30
#: cudaDeviceAttr numbers (CUDA runtime API): memory clock in kHz, memory bus width in bits.
MEMORY_CLOCK_RATE_ATTRIBUTE = 36
MEMORY_BUS_WIDTH_ATTRIBUTE = 37
#: The optimizer steps whose bandwidth --gpu measures: (label, nnhp.optim class, arguments).
BANDWIDTH_CONFIGS = (
    ("SGD", "SGD", {"lr": 0.01}),
    ("SGD momentum", "SGD", {"lr": 0.01, "momentum": 0.9}),
    ("Adagrad", "Adagrad", {"lr": 0.01}),
    ("Adadelta", "Adadelta", {"lr": 1.0}),
    ("RMSprop", "RMSprop", {"lr": 0.01}),
    ("Adam", "Adam", {"lr": 1e-3}),
    ("AdamW", "AdamW", {"lr": 1e-3}),
)


def exact_flops_per_sample(sizes) -> int:
    weights = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 2 * sum(weights) + 2 * sum(weights) + 2 * sum(weights[1:])


def gemm_peak(repeats: int = 5) -> float:
    """Best float32 FLOP/s of NumPy matmul over large square matrices."""
    best = 0.0
    rng = numpy.random.default_rng(0)
    for n in (2048, 3072, 4096):
        a = rng.standard_normal((n, n), dtype=numpy.float32)
        b = rng.standard_normal((n, n), dtype=numpy.float32)
        out = numpy.empty((n, n), numpy.float32)
        numpy.matmul(a, b, out=out)
        for _ in range(repeats):
            start = time.perf_counter()
            numpy.matmul(a, b, out=out)
            best = max(best, 2 * n ** 3 / (time.perf_counter() - start))
    return best


# --- engines: each returns run(n_epochs) -> list of per-epoch seconds ---------------------
def timed_epochs(train_one_epoch, synchronize=None):
    """Wrap an epoch function into run(n_epochs) -> per-epoch wall times.

    ``synchronize``: called before each clock read, to wait for queued device work (on
    a GPU the epoch function returns while its last kernels are still running)."""
    wait = synchronize or (lambda: None)

    def run(n_epochs):
        times = []
        for _ in range(n_epochs):
            wait()
            start = time.perf_counter()
            train_one_epoch()
            wait()
            times.append(time.perf_counter() - start)
        return times
    return run


def nnhp_engine(X, y, batch_size, seed=0, jit=None, backend=None, synchronize=None):
    """One nnhp.fit call for all epochs, as a user would run it; a callback times each epoch.

    ``jit=None`` is the default (numba's fused kernels where installed and measured
    faster on this machine; on the GPU the kernels of kernels/*.cu, likewise); ``jit=False`` is the plain NumPy
    (or CuPy) path. ``backend="cupy"``: the model lives on the GPU, and fit moves the
    NumPy data there once; ``synchronize`` then waits for the device at each epoch's
    start and end (fit reads its scalars once per epoch, which waits too, but the
    timing should not rely on that)."""
    model = nnhp.MLP(SIZES, activation="relu", seed=seed, jit=jit, backend=backend)
    optimizer = nnhp.optim.Adam(lr=1e-3)
    wait = synchronize or (lambda: None)

    class EpochTimer(nnhp.Callback):
        def on_train_begin(self, history):
            self.times = []

        def on_epoch_begin(self, epoch):
            wait()
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs):
            wait()
            self.times.append(time.perf_counter() - self.start)

    def run(n_epochs):
        timer = EpochTimer()
        nnhp.fit(model, X, y, loss="cross_entropy", optimizer=optimizer, epochs=n_epochs,
                 batch_size=batch_size, seed=seed, callbacks=[timer])
        return timer.times
    return run


def naive_numpy_engine(X, y, batch_size, seed=0):
    """The textbook loop: fresh arrays everywhere, one Adam update per tensor."""
    rng = numpy.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        bound = numpy.sqrt(6.0 / (n_in + n_out))
        params += [rng.uniform(-bound, bound, (n_in, n_out)).astype(numpy.float32),
                   numpy.zeros(n_out, numpy.float32)]
    m = [numpy.zeros_like(p) for p in params]
    v = [numpy.zeros_like(p) for p in params]
    lr, beta1, beta2, eps = 1e-3, 0.9, 0.999, 1e-8
    state = {"t": 0, "epoch": 0}

    def epoch():
        order = numpy.random.default_rng([seed, state["epoch"]]).permutation(len(X))
        for start in range(0, len(X), batch_size):
            index = order[start:start + batch_size]
            x, labels = X[index], y[index]
            W1, b1, W2, b2, W3, b3 = params
            h1 = numpy.maximum(x @ W1 + b1, 0)
            h2 = numpy.maximum(h1 @ W2 + b2, 0)
            logits = h2 @ W3 + b3
            p = numpy.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[numpy.arange(len(x)), labels] -= 1
            d3 = p / len(x)
            d2 = (d3 @ W3.T) * (h2 > 0)
            d1 = (d2 @ W2.T) * (h1 > 0)
            grads = [x.T @ d1, d1.sum(0), h1.T @ d2, d2.sum(0), h2.T @ d3, d3.sum(0)]
            state["t"] += 1
            t = state["t"]
            for i, g in enumerate(grads):
                m[i] = beta1 * m[i] + (1 - beta1) * g
                v[i] = beta2 * v[i] + (1 - beta2) * g * g
                m_hat = m[i] / (1 - beta1 ** t)
                v_hat = v[i] / (1 - beta2 ** t)
                params[i] -= (lr * m_hat / (numpy.sqrt(v_hat) + eps)).astype(numpy.float32)
        state["epoch"] += 1
    return timed_epochs(epoch)


def torch_epoch(torch, X, y, batch_size, seed, device, **adam_options):
    """One PyTorch epoch function: the MLP and Adam on ``device``, the data put there once
    as tensors and shuffled there each epoch (a seeded generator on the same device)."""
    torch.manual_seed(seed)
    layers = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, **adam_options)
    loss_fn = torch.nn.CrossEntropyLoss()
    X_t, y_t = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)
    generator = torch.Generator(device=device).manual_seed(seed)

    def epoch():
        order = torch.randperm(len(X_t), generator=generator, device=device)
        X_shuffled, y_shuffled = X_t[order], y_t[order]
        for start in range(0, len(X_t), batch_size):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(X_shuffled[start:start + batch_size]), y_shuffled[start:start + batch_size])
            loss.backward()
            optimizer.step()
    return epoch


def torch_engine(X, y, batch_size, seed=0, threads=None):
    import torch
    if threads:
        torch.set_num_threads(threads)
    return timed_epochs(torch_epoch(torch, X, y, batch_size, seed, "cpu"))


def sklearn_engine(X, y, batch_size, seed=0):
    from sklearn.neural_network import MLPClassifier
    model = MLPClassifier(hidden_layer_sizes=tuple(SIZES[1:-1]), activation="relu", solver="adam",
                          learning_rate_init=1e-3, batch_size=batch_size, shuffle=True, random_state=seed,
                          alpha=0.0)
    classes = numpy.arange(SIZES[-1])

    def epoch():
        model.partial_fit(X, y, classes=classes)
    return timed_epochs(epoch)


def nnhp_numpy_engine(X, y, batch_size, seed=0):
    return nnhp_engine(X, y, batch_size, seed, jit=False)


# --- GPU engines ----------------------------------------------------------------------------
def cupy_synchronize() -> None:
    """Wait for all work queued on the current GPU (every stream)."""
    import cupy
    cupy.cuda.Device().synchronize()


def nnhp_cupy_engine(X, y, batch_size, seed=0):
    return nnhp_engine(X, y, batch_size, seed, backend="cupy", synchronize=cupy_synchronize)


def nnhp_cupy_plain_engine(X, y, batch_size, seed=0):
    return nnhp_engine(X, y, batch_size, seed, jit=False, backend="cupy", synchronize=cupy_synchronize)


def torch_full_float32(torch) -> None:
    """Float32 matmuls in float32: no TF32 tensor cores (CuPy, without CUPY_TF32=1, uses none)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def torch_cuda_engine(X, y, batch_size, seed=0, fused=False):
    """PyTorch on the GPU; Adam's default (foreach) step, or with ``fused=True`` its fused one."""
    import torch
    torch_full_float32(torch)
    adam_options = {"fused": True} if fused else {}
    epoch = torch_epoch(torch, X, y, batch_size, seed, torch.device("cuda"), **adam_options)
    return timed_epochs(epoch, synchronize=torch.cuda.synchronize)


def torch_cuda_fused_engine(X, y, batch_size, seed=0):
    return torch_cuda_engine(X, y, batch_size, seed, fused=True)


ENGINES = {"nnhp": nnhp_engine, "nnhp-numpy": nnhp_numpy_engine, "torch": torch_engine,
           "sklearn": sklearn_engine, "numpy-naive": naive_numpy_engine}
GPU_ENGINES = {"nnhp-cupy": nnhp_cupy_engine, "nnhp-cupy-plain": nnhp_cupy_plain_engine,
               "torch-cuda": torch_cuda_engine, "torch-cuda-fused": torch_cuda_fused_engine}


def available(name: str) -> bool:
    if name.startswith("torch-cuda"):
        return torch_cuda_unavailable_reason() is None
    module = {"torch": "torch", "sklearn": "sklearn"}.get(name)
    if module is None:
        return True
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def gpu_unavailable_reason() -> str | None:
    """Why nnhp's CuPy backend cannot run here (no CuPy, no driver, no device), or None."""
    try:
        nnhp.backend.get_backend("cupy")
    except nnhp.backend.BackendError as error:
        return str(error)
    return None


def torch_cuda_unavailable_reason() -> str | None:
    """Why PyTorch cannot run on a GPU here, or None when it can."""
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed"
    if not torch.cuda.is_available():
        return f"PyTorch {torch.__version__} has no CUDA device"
    return None


def measure(make_run, n_samples: int, timed_epochs: int) -> float:
    """Samples/s: the median over ``timed_epochs`` epochs, after one warm-up epoch (first-touch
    allocations, BLAS thread start, JIT compiles) in the same run."""
    times = make_run()(timed_epochs + 1)[1:]
    return n_samples / statistics.median(times)


def run_isolated(name: str, batch_size: int, args) -> float:
    """One engine's measurement in a fresh process of its own.

    In one process the engines disturb each other: OpenBLAS's worker threads keep spinning
    for a while after NumPy's last matrix product and take a core from PyTorch's OpenMP
    threads (on 2 cores that alone cut torch's batch-64 throughput ~3x here). A process per
    measurement gives every engine an idle machine and a cold start, as a user would have.
    """
    command = [sys.executable, os.path.abspath(__file__), "--worker", name, "--batch-sizes", str(batch_size),
               "--samples", str(args.samples), "--epochs", str(args.epochs), "--threads", str(args.threads)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{name} at batch {batch_size} failed:\n{result.stderr}")
    return float(result.stdout.strip().splitlines()[-1])


def worker(args) -> int:
    """``--worker ENGINE``: measure one engine at one batch size, print samples/s."""
    rng = numpy.random.default_rng(0)
    X = rng.standard_normal((args.samples, SIZES[0]), dtype=numpy.float32)
    y = rng.integers(0, SIZES[-1], args.samples)
    batch_size = args.batch_sizes[0]
    if args.worker == "torch":
        make = lambda: torch_engine(X, y, batch_size, threads=args.threads)  # noqa: E731
    else:
        make = lambda: {**ENGINES, **GPU_ENGINES}[args.worker](X, y, batch_size)  # noqa: E731
    print(measure(make, args.samples, args.epochs))
    return 0


# --- the table --------------------------------------------------------------------------------
def table_header(base: str) -> str:
    return (f"| batch | engine | samples/s (median) | range over repeats | vs {base} | GFLOP/s | % of GEMM peak |\n"
            "|---:|---|---:|---:|---:|---:|---:|")


def table_row(batch_size: int, name: str, rates, base: str, base_rate, flops: int, peak: float) -> str:
    """One engine's row: the median of its ``rates`` (samples/s, one per repeat), their range,
    ``base_rate`` (the median of engine ``base``, None if not measured) over that median,
    and the FLOP/s by the exact count, also as a fraction of ``peak``. No ``rates``: failed."""
    if not rates:
        return f"| {batch_size} | {name} | failed | - | - | - | - |"
    rate = statistics.median(rates)
    ratio = f"{base_rate / rate:.2f}x" if base_rate and name != base else "1.00x" if name == base else "-"
    spread = f"{min(rates):,.0f}-{max(rates):,.0f}"
    return (f"| {batch_size} | {name} | {rate:,.0f} | {spread} | {ratio} | {rate * flops / 1e9:.1f} | "
            f"{100 * rate * flops / peak:.0f}% |")


def print_table(engines, args, base: str, flops: int, peak: float, keep_going: bool = False) -> list[str]:
    """Measure every engine at every batch size (``args.repeat`` fresh processes each, engines
    interleaved so a slow spell hits all of them) and print the table row by row.

    ``keep_going``: an engine whose process fails gets a "failed" row and the others go on;
    returns the failures' messages (otherwise the first failure raises)."""
    print(table_header(base))
    failures = []
    for batch_size in args.batch_sizes:
        runs = {name: [] for name in engines}
        failed = set()
        for _ in range(args.repeat):           # interleaved, so a slow spell hits every engine
            for name in engines:
                if name in failed:
                    continue
                try:
                    runs[name].append(run_isolated(name, batch_size, args))
                except RuntimeError as error:
                    if not keep_going:
                        raise
                    failed.add(name)
                    failures.append(str(error))
        base_rates = [] if base in failed else runs.get(base)
        base_rate = statistics.median(base_rates) if base_rates else None
        for name in engines:
            rates = [] if name in failed else runs[name]
            print(table_row(batch_size, name, rates, base, base_rate, flops, peak), flush=True)
    return failures


def ratio_note(base: str) -> str:
    return f"\n'vs {base}' = {base}'s samples/s divided by the engine's (above 1: {base} is faster)."


def cpu_main(args) -> int:
    flops = exact_flops_per_sample(SIZES)
    peak = gemm_peak()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"numpy {numpy.__version__}; float32 GEMM peak {peak / 1e9:.1f} GFLOP/s; "
          f"load average at start {os.getloadavg()[0]:.2f}")
    versions = []
    for module in ("numba", "torch", "sklearn"):
        try:
            versions.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            versions.append(f"{module} not installed")
    print("; ".join(versions) + " (nnhp = fused numba kernels where measured faster on this machine; "
          "nnhp-numpy = plain NumPy path)")
    ensure_measurements("cpu")
    print(f"MLP {'-'.join(map(str, SIZES))}, {args.samples} samples, {flops / 1e6:.3f} MFLOP/sample "
          f"(exact count); each engine in its own process, {args.epochs} timed epochs after a warm-up, "
          f"{args.repeat} repeats\n")

    engines = [name for name in args.engines if available(name)]
    skipped = [name for name in args.engines if name not in engines]
    print_table(engines, args, "nnhp", flops, peak)
    if skipped:
        print(f"\nnot installed, skipped: {', '.join(skipped)}")
    print(ratio_note("nnhp"))
    return 0


# --- on a GPU: device facts -------------------------------------------------------------------
def decode_name(name) -> str:
    """A device name from cudaDeviceProp: bytes (NUL-padded) in CuPy, or already a str."""
    if isinstance(name, bytes):
        name = name.split(b"\0", 1)[0].decode("utf-8", "replace")
    return str(name).strip()


def cuda_version_text(version: int) -> str:
    """CUDA's integer version (1000 x major + 10 x minor, e.g. 12080) as "12.8"."""
    return f"{version // 1000}.{version % 1000 // 10}"


def theoretical_bandwidth(memory_clock_khz, bus_width_bits) -> float | None:
    """Peak DRAM bandwidth in bytes/s: two transfers per memory clock (double data rate,
    as the CUDA samples count it for GDDR and HBM alike) across the whole bus.
    None when the driver did not report the clock or the width (0 or None)."""
    if not memory_clock_khz or not bus_width_bits or memory_clock_khz < 0 or bus_width_bits < 0:
        return None
    return 2.0 * memory_clock_khz * 1e3 * bus_width_bits / 8


def memory_clock_and_bus(cupy, device: int = 0):
    """(memory clock in kHz, bus width in bits) as the CUDA runtime reports them, else
    (None, None): newer CUDA releases may no longer report the memory clock."""
    try:
        clock = cupy.cuda.runtime.deviceGetAttribute(MEMORY_CLOCK_RATE_ATTRIBUTE, device)
        width = cupy.cuda.runtime.deviceGetAttribute(MEMORY_BUS_WIDTH_ATTRIBUTE, device)
    except Exception:  # an attribute this runtime does not know
        return None, None
    return clock, width


def device_seconds(function, calls: int, new_event, elapsed_ms) -> float:
    """Device time of ``calls`` calls of ``function`` (queued work, not the host's), between
    two CUDA events recorded on the current stream. ``new_event``/``elapsed_ms``: CuPy's or
    PyTorch's event type and the milliseconds between two recorded events."""
    start, end = new_event(), new_event()
    start.record()
    for _ in range(calls):
        function()
    end.record()
    end.synchronize()
    return elapsed_ms(start, end) / 1e3


def cupy_seconds(function, calls: int = 1) -> float:
    import cupy
    return device_seconds(function, calls, cupy.cuda.Event, cupy.cuda.get_elapsed_time)


def release_gpu_memory() -> None:
    """Hand CuPy's cached blocks back to the device (its pool keeps freed memory)."""
    import cupy
    cupy.get_default_memory_pool().free_all_blocks()


def gpu_gemm_peak(repeats: int = 5) -> float:
    """Best float32 FLOP/s of CuPy matmul (cuBLAS) over large square matrices, in device time."""
    import cupy
    best = 0.0
    rng = numpy.random.default_rng(0)
    for n in (4096, 8192):
        a = cupy.asarray(rng.standard_normal((n, n), dtype=numpy.float32))
        b = cupy.asarray(rng.standard_normal((n, n), dtype=numpy.float32))
        out = cupy.empty((n, n), cupy.float32)
        cupy.matmul(a, b, out=out)          # cuBLAS handle and kernel choice
        for _ in range(repeats):
            best = max(best, 2 * n ** 3 / cupy_seconds(lambda: cupy.matmul(a, b, out=out)))
        del a, b, out
    release_gpu_memory()
    return best


def gpu_description(cupy) -> tuple[str, str]:
    """(device name, name with compute capability, memory and CUDA versions): the facts
    every GPU figure is recorded with."""
    properties = cupy.cuda.runtime.getDeviceProperties(0)
    name = decode_name(properties["name"])
    memory = properties.get("totalGlobalMem", 0) / 2 ** 30
    capability = f"{properties.get('major', '?')}.{properties.get('minor', '?')}"
    return name, (f"{name} (compute capability {capability}, {memory:.1f} GiB); CUDA runtime "
                  f"{cuda_version_text(cupy.cuda.runtime.runtimeGetVersion())}, driver "
                  f"{cuda_version_text(cupy.cuda.runtime.driverGetVersion())}")


def ensure_measurements(target: str) -> None:
    """``nnhp`` and ``nnhp-cupy`` run as a user's nnhp does (auto): with this machine's
    measurements of which kernels beat the plain code. Take them first if there are none
    (what auto would do in the background on first use), so no timed epoch runs before."""
    from nnhp.fused import calibrate, policy, table
    if target == "cpu" and not policy.numba_available():
        return
    if (table.load(target) or {"speedups": {}})["speedups"].get("float32"):
        return
    start = time.perf_counter()
    calibrate.calibrate(target, ["float32"])
    print(f"measured this machine's {target} kernels against the plain code first "
          f"({time.perf_counter() - start:.0f} s; python -m nnhp.fused --show --target {target} prints them)")


def gpu_main(args) -> int:
    reason = gpu_unavailable_reason()
    engines = [] if reason else [name for name in args.engines if available(name)]
    if reason is None and not engines:
        reason = f"none of {', '.join(args.engines)} can run here ({torch_cuda_unavailable_reason()})"
    if reason is not None:
        print(f"GPU figures not measured: {reason}.")
        return 0
    import cupy
    removed_tf32 = os.environ.pop("CUPY_TF32", None)   # the workers inherit this environment
    flops = exact_flops_per_sample(SIZES)
    name, description = gpu_description(cupy)
    ensure_measurements("gpu")
    peak = gpu_gemm_peak()
    print(f"device: {description}; cupy {cupy.__version__}; numpy {numpy.__version__}; "
          f"float32 GEMM peak {peak / 1e9:.1f} GFLOP/s (CuPy matmul, 4096^2 and 8192^2, best of 5 each)")
    torch_reason = torch_cuda_unavailable_reason()
    torch_text = (f"torch {__import__('torch').__version__} (TF32 off: torch.backends.cuda.matmul.allow_tf32 "
                  "= torch.backends.cudnn.allow_tf32 = False)" if torch_reason is None else torch_reason)
    tf32_text = (f"CuPy without TF32 (CUPY_TF32={removed_tf32} removed from the environment)"
                 if removed_tf32 is not None else "CuPy without TF32 (CUPY_TF32 unset)")
    print(f"{torch_text}; {tf32_text}; nnhp-cupy = auto (kernels/*.cu where measured faster), nnhp-cupy-plain = "
          "jit=False (plain CuPy); torch-cuda = Adam foreach (default), torch-cuda-fused = Adam(fused=True)"
          + (f"; NNHP_JIT={os.environ['NNHP_JIT']} in the environment" if "NNHP_JIT" in os.environ else ""))
    print(f"MLP {'-'.join(map(str, SIZES))}, {args.samples} samples, {flops / 1e6:.3f} MFLOP/sample "
          f"(exact count); each engine in its own process, data on the device once, {args.epochs} timed "
          f"epochs after a warm-up, each ended by a device synchronization, {args.repeat} repeats\n")

    skipped = [name for name in args.engines if name not in engines]
    failures = print_table(engines, args, "nnhp-cupy", flops, peak, keep_going=True)
    if skipped:
        print(f"\nskipped ({torch_reason}): {', '.join(skipped)}")
    print(ratio_note("nnhp-cupy"))
    for failure in failures:
        print("\n" + "\n".join(failure.splitlines()[-15:]))

    print()
    print_bandwidth(cupy, name, steps=5 if args.quick else 50, repeats=2 if args.quick else 5)
    return 1 if failures else 0


# --- on a GPU: the fused optimizer step's memory bandwidth ------------------------------------
def optimizer_bytes_per_element(optimizer, itemsize: int = 4) -> int:
    """Bytes one step of ``optimizer``'s kernel (kernels/optimizers.cu) must move per element:
    read param and grad, write param, and read and write each of its state buffers.

    Its ``state_names`` are exactly the buffers its kernel touches (momentum_buffer only with
    momentum, grad_avg only when centered, max_exp_avg_sq only with amsgrad). Counted for a
    step after the first: SGD's first step writes its momentum buffer without reading it.
    E.g. Adam: read p, g, m, v and write p, m, v = 7 x 4 bytes in float32."""
    return (3 + 2 * len(optimizer.state_names)) * itemsize


def bandwidth_header() -> str:
    return ("| optimizer | step | bytes/element | time per step (us) | GB/s | % of theoretical | % of copy |\n"
            "|---|---|---:|---:|---:|---:|---:|")


def bandwidth_row(label: str, path: str, bytes_per_element: int, n_elements: int, seconds: float,
                  theoretical: float | None, copy: float) -> str:
    """One step's row: its time and achieved bandwidth (the bytes it must move over its
    time), as a fraction of the ``theoretical`` bytes/s (None: unknown) and of a measured
    ``copy``'s bytes/s."""
    achieved = bytes_per_element * n_elements / seconds
    of_theoretical = "unknown" if theoretical is None else f"{100 * achieved / theoretical:.0f}%"
    return (f"| {label} | {path} | {bytes_per_element} | {seconds * 1e6:,.0f} | {achieved / 1e9:,.0f} | "
            f"{of_theoretical} | {100 * achieved / copy:.0f}% |")


def copy_bandwidth(n_bytes: int = COPY_BYTES, calls: int = 10, repeats: int = 5) -> float:
    """Bytes/s of a device-to-device copy of ``n_bytes`` (read + write counted), best of ``repeats``."""
    import cupy
    source = cupy.ones(n_bytes // 4, dtype=cupy.float32)
    target = cupy.empty_like(source)
    cupy.copyto(target, source)
    seconds = min(cupy_seconds(lambda: cupy.copyto(target, source), calls) for _ in range(repeats)) / calls
    del source, target
    release_gpu_memory()
    return 2 * n_bytes / seconds


def step_seconds(step, calls: int, repeats: int, seconds_of) -> float:
    """Device seconds of one ``step()``: three warm-up calls (state buffers, kernel compile),
    then the best of ``repeats`` runs of ``calls`` consecutive steps, per step."""
    for _ in range(3):
        step()
    return min(seconds_of(step, calls) for _ in range(repeats)) / calls


def nnhp_step_seconds(cupy, class_name: str, options: dict, jit: bool, grad, calls: int, repeats: int):
    """``optimizer.step([param], [grad])`` on a fresh zero param; ``jit`` True: its CUDA
    kernel, False: the plain CuPy code. Returns (seconds per step, bytes per element)."""
    optimizer = getattr(nnhp.optim, class_name)(**options)
    stepper = nnhp.fused.optimizer_step(optimizer, jit)
    param = cupy.zeros_like(grad)
    seconds = step_seconds(lambda: stepper.step([param], [grad]), calls, repeats, cupy_seconds)
    bytes_per_element = optimizer_bytes_per_element(optimizer, grad.dtype.itemsize)
    del optimizer, stepper, param
    release_gpu_memory()
    return seconds, bytes_per_element


def torch_fused_adam_seconds(n_elements: int, calls: int, repeats: int) -> float:
    """PyTorch's Adam(fused=True) step over one float32 tensor of ``n_elements``, per step."""
    import torch
    param = torch.zeros(n_elements, dtype=torch.float32, device="cuda", requires_grad=True)
    param.grad = torch.randn(n_elements, dtype=torch.float32, device="cuda")
    optimizer = torch.optim.Adam([param], lr=1e-3, fused=True)
    seconds = step_seconds(optimizer.step, calls, repeats,
                           lambda step, n: device_seconds(step, n, lambda: torch.cuda.Event(enable_timing=True),
                                                          lambda start, end: start.elapsed_time(end)))
    del optimizer, param
    torch.cuda.empty_cache()
    return seconds


def print_bandwidth(cupy, device_name: str, steps: int, repeats: int) -> None:
    """The fused optimizer step's achieved memory bandwidth, against the device's."""
    clock, width = memory_clock_and_bus(cupy)
    theoretical = theoretical_bandwidth(clock, width)
    copy = copy_bandwidth()
    if theoretical is None:
        theory_text = "theoretical bandwidth unknown (the CUDA runtime reports no memory clock or bus width)"
    else:
        theory_text = (f"theoretical {theoretical / 1e9:,.0f} GB/s (memory clock {clock / 1e3:,.0f} MHz x "
                       f"{width}-bit bus x 2)")
    n = BANDWIDTH_ELEMENTS
    print(f"Optimizer step on {device_name} over one flat float32 buffer of {n:,} elements "
          f"({n * 4 / 2 ** 20:.0f} MiB per array); {theory_text}; device-to-device copy of {COPY_BYTES / 2 ** 30:.0f} GiB "
          f"{copy / 1e9:,.0f} GB/s (read + write). Times: CUDA events, best of {repeats} runs of {steps} "
          "steps after 3 warm-up steps. bytes/element = what the step must move (param, grad, state "
          "read; param, state written); the plain CuPy and torch rows use the same count.\n")
    print(bandwidth_header())
    grad = cupy.asarray(numpy.random.default_rng(0).standard_normal(n, dtype=numpy.float32))
    torch_reason = torch_cuda_unavailable_reason()
    for label, class_name, options in BANDWIDTH_CONFIGS:
        for path, jit in (("nnhp kernel", True), ("nnhp plain CuPy", False)):
            seconds, bytes_per_element = nnhp_step_seconds(cupy, class_name, options, jit, grad, steps, repeats)
            print(bandwidth_row(label, path, bytes_per_element, n, seconds, theoretical, copy), flush=True)
        if class_name == "Adam" and torch_reason is None:   # the same traffic: p, g, m, v in; p, m, v out
            seconds = torch_fused_adam_seconds(n, steps, repeats)
            print(bandwidth_row(label, "torch Adam(fused=True)", bytes_per_element, n, seconds, theoretical,
                                copy), flush=True)
    if torch_reason is not None:
        print(f"\ntorch Adam(fused=True) not measured: {torch_reason}")
    del grad
    release_gpu_memory()


# --- the command line -------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=60000, help="training samples (default 60000)")
    parser.add_argument("--epochs", type=int,
                        help="timed epochs per measurement (default 3; with --gpu 10: there an epoch of "
                             "60,000 samples takes milliseconds)")
    parser.add_argument("--batch-sizes", type=int, nargs="+",
                        help="default: 64 256 1024; with --gpu " + " ".join(map(str, GPU_BATCH_SIZES)))
    parser.add_argument("--engines", nargs="+", choices=list(ENGINES) + list(GPU_ENGINES),
                        help=f"default: {' '.join(ENGINES)}; with --gpu {' '.join(GPU_ENGINES)}")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for torch (default: all cores)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="fresh-process measurements per engine and batch size, engines interleaved; "
                             "the table gives their median and range (default 3)")
    parser.add_argument("--quick", action="store_true", help="6,000 samples, 1 timed epoch, 1 repeat")
    parser.add_argument("--gpu", action="store_true",
                        help="measure on the GPU instead: nnhp on CuPy against PyTorch CUDA (the engines "
                             f"{', '.join(GPU_ENGINES)}), then the fused optimizer step's memory bandwidth "
                             "against the device's; without CuPy or a GPU, print why nothing was measured "
                             "and exit 0")
    parser.add_argument("--worker", choices=list(ENGINES) + list(GPU_ENGINES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.epochs, args.repeat = 6000, 1, 1
    if args.batch_sizes is None:
        args.batch_sizes = GPU_BATCH_SIZES if args.gpu else [64, 256, 1024]
    if args.epochs is None:
        args.epochs = 10 if args.gpu else 3
    if args.worker:
        return worker(args)
    engine_set = GPU_ENGINES if args.gpu else ENGINES
    if args.engines is None:
        args.engines = list(engine_set)
    foreign = [name for name in args.engines if name not in engine_set]
    if foreign:
        parser.error(f"{'with' if args.gpu else 'without'} --gpu the engines are {' '.join(engine_set)}; "
                     f"got {' '.join(foreign)}")
    return gpu_main(args) if args.gpu else cpu_main(args)


if __name__ == "__main__":
    sys.exit(main())
