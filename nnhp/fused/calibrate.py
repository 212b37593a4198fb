"""Measuring, on this machine, which fused kernels beat the plain code they replace.

For every kernel family and size class (``table.CLASSES``) this times the family's
plain code and its fused kernel on the same inputs, taking turns, and records the
median of the paired ratios (plain time / fused time) in the table "auto" reads.

* A family is the work a fused step takes over, and only that: for
  ``dense_activation/relu`` the bias add, ReLU forward and backward and the bias
  gradient's sum (the matrix products around them are the same BLAS calls either
  way, and would only dilute the ratio). The other families run their fused step
  (``steps.py``) with the kernels refused and with them insisted on: dropout, an
  activation on its own and softmax + cross-entropy forward and backward, an
  optimizer one ``step`` with its class's defaults (for SGD, RMSprop and Adam the
  variants with the fewest operations, where the plain code is at its fastest).
  Both sides include writing their output (the plain side into new arrays, the
  fused side into reused buffers: what each really does in training).
* On the CPU the clock is the thread's CPU time (``time.thread_time``), so time the
  OS gave to other processes is not counted against either side; each timing runs
  the function enough times to last at least ``MIN_TIMING``. On a GPU it is wall time
  around a device synchronization.
* Plain and fused alternate which goes first, and the median of ``min_reps`` to
  ``max_reps`` paired ratios is kept: a disturbance hits one pair, not the verdict.
"""
from __future__ import annotations

import math
import time

import numpy

from .. import layers, losses, optim
from . import policy, table
from .shared import activation_code
from .steps import FusedActivation, FusedCrossEntropy, FusedDropout, FusedOptimizer

MIN_TIMING = 2e-4          # seconds of CPU time per timed batch of calls
OPTIMIZER_CLASSES = ("SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW")


def families() -> list[str]:
    """Every kernel family, as ``policy.choose`` names them."""
    names = list(layers.ACTIVATIONS)
    return ([f"dense_activation/{name}" for name in names]
            + [f"activation/{name}" for name in names if name != "identity"]
            + ["dropout", "softmax_cross_entropy"]
            + [f"optimizer/{name}" for name in OPTIMIZER_CLASSES])


def case(family: str, size: int, xp, dtype):
    """(plain, fused): two functions doing ``family``'s work on ``size`` elements of ``xp``
    arrays of ``dtype``, the first with the plain code and the second with the kernels."""
    rng = numpy.random.default_rng(0)

    def array(*shape):
        return xp.asarray(rng.standard_normal(shape), dtype=dtype)

    columns = min(size, 256)
    rows = max(1, size // columns)
    kind, _, name = family.partition("/")
    if kind == "dense_activation":
        return _dense_activation(name, array(rows, columns), array(columns), array(rows, columns), xp)
    if kind == "activation":
        steps = [FusedActivation(layers.activation(name), setting) for setting in (False, True)]
        x, grad = array(rows, columns), array(rows, columns)
        return tuple(lambda step=step: (step.forward(x, True), step.backward(grad)) for step in steps)
    if kind == "dropout":
        x, grad = array(rows, columns), array(rows, columns)
        steps = []
        for setting in (False, True):
            dropout = layers.Dropout(0.5)
            dropout.rng = numpy.random.default_rng(1)
            steps.append(FusedDropout(dropout, setting))
        return tuple(lambda step=step: (step.forward(x, True), step.backward(grad)) for step in steps)
    if kind == "softmax_cross_entropy":
        n = max(1, size // 10)
        logits, labels = array(n, 10), xp.asarray(rng.integers(0, 10, n))
        steps = [FusedCrossEntropy(losses.CrossEntropy(), setting) for setting in (False, True)]
        return tuple(lambda step=step: (step.forward(logits, labels), step.backward()) for step in steps)
    if kind == "optimizer":
        functions = []
        for setting in (False, True):
            param, grad = array(size), array(size) * 1e-3
            step = FusedOptimizer(getattr(optim, name)(lr=1e-4), setting)
            functions.append(lambda step=step, param=param, grad=grad: step.step([param], [grad]))
        return tuple(functions)
    raise ValueError(f"unknown kernel family {family!r}")


def _dense_activation(name: str, z, bias, grad, xp):
    """The elementwise part of a Dense + activation step, forward and backward. Both sides
    first copy z, standing in for the matrix product writing it (a new array in the plain
    code, the step's buffer in the fused one)."""
    activation = layers.activation(name)
    code, param = activation_code(activation)
    kernels = policy.load(policy.target(z), z.dtype)
    bias_grad = xp.empty_like(bias)
    buffer, delta = xp.empty_like(z), xp.empty_like(z)

    def plain():
        out = activation.forward(z.copy() + bias, True)    # Dense's "+ b", then f
        activation.backward(grad).sum(axis=0, out=bias_grad)
        return out

    def fused():
        xp.copyto(buffer, z)
        kernels.bias_activation_forward(buffer, bias, buffer, code, param)
        kernels.activation_bias_backward(grad, buffer, delta, bias_grad, code, param)
        return buffer
    return plain, fused


def compare(plain, fused, clock=time.thread_time, synchronize=lambda: None, min_reps: int = 7,
            max_reps: int = 31, budget: float = 0.3) -> float:
    """Median over repetitions of (plain time / fused time), the two timed in turns.

    Repetitions continue past ``min_reps`` until ``budget`` seconds are spent or
    ``max_reps`` is reached."""
    for function in (plain, fused, plain, fused):     # allocations, caches, first calls
        function()
    synchronize()
    start = clock()
    plain()
    synchronize()
    calls = max(1, math.ceil(MIN_TIMING / max(clock() - start, 1e-7)))
    ratios, spent = [], 0.0
    while len(ratios) < max_reps and (len(ratios) < min_reps or spent < budget):
        seconds = {}
        order = [("plain", plain), ("fused", fused)]
        for label, function in order if len(ratios) % 2 == 0 else order[::-1]:
            start = clock()
            for _ in range(calls):
                function()
            synchronize()
            seconds[label] = clock() - start
        spent += seconds["plain"] + seconds["fused"]
        ratios.append(seconds["plain"] / max(seconds["fused"], 1e-9))
    return float(numpy.median(ratios))


def measure(target: str, dtype, names=None, classes=None, progress=None, **compare_options) -> dict:
    """``{family: {size class: speed-up}}`` for ``target`` ("cpu" or "gpu") in ``dtype``."""
    if target == "gpu":
        import cupy
        xp, clock = cupy, time.perf_counter
        synchronize = cupy.cuda.get_current_stream().synchronize
    else:
        xp, clock, synchronize = numpy, time.thread_time, (lambda: None)
    policy.load(target, dtype)                  # compile, or load from the disk cache, first
    results = {}
    for family in names or families():
        results[family] = {}
        for size_class in classes or table.CLASSES:
            plain, fused = case(family, 2 ** (size_class + 1), xp, dtype)
            results[family][size_class] = compare(plain, fused, clock, synchronize, **compare_options)
            if progress is not None:
                progress(family, size_class, results[family][size_class])
    return results


def calibrate(target: str = "cpu", dtypes=("float32",), progress=None, **options) -> dict:
    """Measure every family for each of ``dtypes`` and record the results in the table."""
    measured = {}
    for dtype in dtypes:
        dtype = numpy.dtype(dtype).name
        measured[dtype] = measure(target, dtype, progress=progress, **options)
        table.save(target, dtype, measured[dtype])
    return measured
