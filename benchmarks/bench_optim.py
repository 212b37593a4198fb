"""Time of one optimizer step over a ~1M-parameter model: nnhp against torch.optim.

    python benchmarks/bench_optim.py [--reps 300] [--threads 1] [--block-size N] [--fused]

For each optimizer it times ``step`` on float32 parameters of an MLP 784-1024-192-10
(1,002,570 parameters):

- nnhp on one flat buffer (how ``nnhp.fit`` calls it: one array for the whole model),
- nnhp on the list of per-layer arrays (6 arrays),
- with ``--fused``: nnhp's fused kernel on the flat buffer, where this nnhp has one
  (``nnhp.fused.optimizer_step(opt, True)``, numba; the other columns are the plain NumPy
  ``opt.step``, which never runs a kernel),
- torch.optim with ``foreach=True`` on per-layer arrays of the same shapes (NumPy
  arrays handed to torch with ``torch.from_numpy``), ``torch.set_num_threads(threads)``.

NumPy's elementwise operations run on one thread, so the default is one torch
thread too; ``--threads`` changes torch's count (nnhp's stays 1). Each number is the
median over ``--reps`` steps after a warm-up; the minimum is shown too (on a shared
machine it is the number least disturbed by other load). OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE are removed from this process's environment before NumPy loads.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # bench_env beside this script
import bench_env  # noqa: E402  (first: this checkout on sys.path)

if __name__ == "__main__":
    bench_env.machine_blas()

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from nnhp import optim  # noqa: E402

LAYERS = [784, 1024, 192, 10]

# (label, nnhp/torch class name, kwargs shared by both)
CONFIGS = [
    ("SGD", "SGD", {"lr": 0.01}),
    ("SGD momentum+nesterov", "SGD", {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
    ("Adagrad", "Adagrad", {"lr": 0.01}),
    ("Adadelta", "Adadelta", {"lr": 1.0}),
    ("RMSprop", "RMSprop", {"lr": 0.001}),
    ("RMSprop centered+momentum", "RMSprop", {"lr": 0.001, "centered": True, "momentum": 0.9}),
    ("Adam", "Adam", {"lr": 0.001}),
    ("Adam amsgrad", "Adam", {"lr": 0.001, "amsgrad": True}),
    ("AdamW", "AdamW", {"lr": 0.001, "weight_decay": 0.01}),
]


def layer_shapes():
    shapes = []
    for n_in, n_out in zip(LAYERS[:-1], LAYERS[1:]):
        shapes += [(n_in, n_out), (n_out,)]
    return shapes


def make_arrays(rng, shapes):
    """One flat float32 buffer and per-layer views into it (as nnhp's models hold them)."""
    total = sum(int(np.prod(s)) for s in shapes)
    flat = rng.normal(scale=0.05, size=total).astype(np.float32)
    views, offset = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        views.append(flat[offset:offset + size].reshape(shape))
        offset += size
    return flat, views


def median_step_ms(steps, reps, warmup):
    """(median, min) time in ms of each callable in ``steps``. The callables take turns
    rep by rep, so a load change on the machine hits them all alike (and each step starts
    with the cache holding the other runs' arrays, as in training, where the forward and
    backward passes run between two steps)."""
    for step in steps:
        for _ in range(warmup):
            step()
    times = [[] for _ in steps]
    for _ in range(reps):
        for step, record in zip(steps, times):
            start = time.perf_counter()
            step()
            record.append(time.perf_counter() - start)
    return [(1e3 * float(np.median(record)), 1e3 * float(np.min(record))) for record in times]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (NumPy ufuncs use one)")
    parser.add_argument("--block-size", type=int, default=None,
                        help="override Optimizer.block_size (0: whole arrays)")
    parser.add_argument("--only", default=None, help="run only configs whose label contains this")
    parser.add_argument("--fused", action="store_true",
                        help="add a column for nnhp's fused kernel (nnhp.fused.optimizer_step), where it has one")
    args = parser.parse_args(argv)

    try:
        import torch
    except ImportError:
        torch = None
        print("torch is not installed: timing nnhp only")
    if torch is not None:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    shapes = layer_shapes()
    n_params = sum(int(np.prod(s)) for s in shapes)
    print(f"# {n_params:,} float32 parameters in {len(shapes)} arrays (MLP {'-'.join(map(str, LAYERS))}); "
          f"median of {args.reps} steps after {args.warmup} warm-up steps")
    print(f"# numpy {np.__version__}" + (f", torch {torch.__version__} ({args.threads} thread(s), foreach=True)"
                                         if torch else "") + f", python {platform.python_version()}")
    print(f"# {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start")
    if args.block_size is not None:
        print(f"# nnhp block_size = {args.block_size or None}")
    fused = args.fused and fused_available()
    if fused:
        import numba
        print("# nnhp fused: the numba kernel of nnhp.fused.optimizer_step (single-threaded, as fit runs it)")
    columns = ["nnhp flat (ms)", "nnhp per-layer (ms)"] + (["nnhp fused flat (ms)"] if fused else [])
    if torch is not None:
        columns += ["torch foreach (ms)", "flat / torch", "min: nnhp flat / torch (ms)"]
    print("| optimizer | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for label, cls_name, kwargs in CONFIGS:
        if args.only and args.only.lower() not in label.lower():
            continue

        def nnhp_optimizer(jit=False):
            opt = getattr(optim, cls_name)(**kwargs)
            if args.block_size is not None:
                opt.block_size = args.block_size or None
            if jit:
                from nnhp import fused
                return fused.optimizer_step(opt, True)
            return opt

        steps = []
        for layout in ("flat", "per-layer") + (("fused",) if fused else ()):
            flat_p, layer_p = make_arrays(rng, shapes)
            flat_g, layer_g = make_arrays(rng, shapes)
            opt = nnhp_optimizer(jit=layout == "fused")
            if layout == "per-layer":
                steps.append(lambda opt=opt, p=layer_p, g=layer_g: opt.step(p, g))
            else:
                steps.append(lambda opt=opt, p=flat_p, g=flat_g: opt.step([p], [g]))
        if torch is not None:
            _, torch_arrays = make_arrays(rng, shapes)
            _, torch_grads = make_arrays(rng, shapes)
            tensors = [torch.from_numpy(a) for a in torch_arrays]
            for tensor, grad in zip(tensors, torch_grads):
                tensor.grad = torch.from_numpy(grad)
            torch_opt = getattr(torch.optim, cls_name)(tensors, foreach=True, **kwargs)
            steps.append(torch.no_grad()(torch_opt.step))
        timings = median_step_ms(steps, args.reps, args.warmup)
        cells = [f"{median:.3f}" for median, _ in timings[:len(steps) - (torch is not None)]]
        if torch is not None:
            (flat_ms, flat_min), (torch_ms, torch_min) = timings[0], timings[-1]
            cells += [f"{torch_ms:.3f}", f"{flat_ms / torch_ms:.2f}", f"{flat_min:.3f} / {torch_min:.3f}"]
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


def fused_available():
    """Whether this nnhp has fused optimizer kernels (nnhp.fused) and numba to run them."""
    try:
        import nnhp.fused  # noqa: F401
    except ImportError:
        return False
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True

if __name__ == "__main__":
    main()
