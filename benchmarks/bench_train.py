"""Training throughput: nnhp against PyTorch CPU, scikit-learn and a naive NumPy loop.

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

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed from the environment for this
command (the script re-executes itself without them), so OpenBLAS picks its kernels
for the real CPU.
"""
from __future__ import annotations

import os
import sys

_BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(name in os.environ for name in _BLAS_OVERRIDES):
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
def timed_epochs(train_one_epoch):
    """Wrap an epoch function into run(n_epochs) -> per-epoch wall times."""
    def run(n_epochs):
        times = []
        for _ in range(n_epochs):
            start = time.perf_counter()
            train_one_epoch()
            times.append(time.perf_counter() - start)
        return times
    return run


def nnhp_engine(X, y, batch_size, seed=0, jit=None):
    """One nnhp.fit call for all epochs, as a user would run it; a callback times each epoch.

    ``jit=None`` is the default (numba's fused kernels where installed and measured
    faster); ``jit=False`` is the plain NumPy path."""
    model = nnhp.MLP(SIZES, activation="relu", seed=seed, jit=jit)
    optimizer = nnhp.optim.Adam(lr=1e-3)

    class EpochTimer(nnhp.Callback):
        def on_train_begin(self, history):
            self.times = []

        def on_epoch_begin(self, epoch):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs):
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


def torch_engine(X, y, batch_size, seed=0, threads=None):
    import torch
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    layers = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(seed)

    def epoch():
        order = torch.randperm(len(X_t), generator=generator)
        X_shuffled, y_shuffled = X_t[order], y_t[order]
        for start in range(0, len(X_t), batch_size):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(X_shuffled[start:start + batch_size]), y_shuffled[start:start + batch_size])
            loss.backward()
            optimizer.step()
    return timed_epochs(epoch)


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


ENGINES = {"nnhp": nnhp_engine, "nnhp-numpy": nnhp_numpy_engine, "torch": torch_engine,
           "sklearn": sklearn_engine, "numpy-naive": naive_numpy_engine}


def available(name: str) -> bool:
    module = {"torch": "torch", "sklearn": "sklearn"}.get(name)
    if module is None:
        return True
    try:
        __import__(module)
        return True
    except ImportError:
        return False


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
        make = lambda: ENGINES[args.worker](X, y, batch_size)  # noqa: E731
    print(measure(make, args.samples, args.epochs))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=60000, help="training samples (default 60000)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per measurement (default 3)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for torch (default: all cores)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="fresh-process measurements per engine and batch size, engines interleaved; "
                             "the table gives their median and range (default 3)")
    parser.add_argument("--quick", action="store_true", help="6,000 samples, 1 timed epoch, 1 repeat")
    parser.add_argument("--worker", choices=list(ENGINES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.epochs, args.repeat = 6000, 1, 1
    if args.worker:
        return worker(args)

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
    print("; ".join(versions) + " (nnhp = fused numba kernels where faster; nnhp-numpy = plain NumPy path)")
    print(f"MLP {'-'.join(map(str, SIZES))}, {args.samples} samples, {flops / 1e6:.3f} MFLOP/sample "
          f"(exact count); each engine in its own process, {args.epochs} timed epochs after a warm-up, "
          f"{args.repeat} repeats\n")

    engines = [name for name in args.engines if available(name)]
    skipped = [name for name in args.engines if name not in engines]
    print("| batch | engine | samples/s (median) | range over repeats | vs nnhp | GFLOP/s | % of GEMM peak |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for batch_size in args.batch_sizes:
        runs = {name: [] for name in engines}
        for _ in range(args.repeat):           # interleaved, so a slow spell hits every engine
            for name in engines:
                runs[name].append(run_isolated(name, batch_size, args))
        results = {name: statistics.median(rates) for name, rates in runs.items()}
        base = results.get("nnhp")
        for name, rate in results.items():
            ratio = f"{base / rate:.2f}x" if base and name != "nnhp" else "1.00x" if name == "nnhp" else "-"
            spread = f"{min(runs[name]):,.0f}-{max(runs[name]):,.0f}"
            print(f"| {batch_size} | {name} | {rate:,.0f} | {spread} | {ratio} | {rate * flops / 1e9:.1f} | "
                  f"{100 * rate * flops / peak:.0f}% |", flush=True)
    if skipped:
        print(f"\nnot installed, skipped: {', '.join(skipped)}")
    print("\n'vs nnhp' = nnhp's samples/s divided by the engine's (above 1: nnhp is faster).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
