"""The GPU kernel set: loading ``kernels/*.cu`` and launching them on CuPy arrays.

The GEMMs (``x @ W``) go to cuBLAS through CuPy's matmul; what is left to write by
hand are the memory-bound chains around them, each a single kernel here:

==========================  =================================================
``activation.cu``           bias + activation forward; activation backward
``dropout.cu``              Philox dropout (mask recomputed, never stored)
``softmax_cross_entropy.cu``  softmax + cross-entropy + gradient, one pass
``optimizers.cu``           one launch per step for every nnhp.optim optimizer
==========================  =================================================

Each file is written once for a type ``real`` and compiled twice, with
``#define REAL float`` and ``#define REAL double`` in front, by NVRTC through
``cupy.RawModule``: compiled on first use in a process (and cached on disk by CuPy
across processes), then kept here. The kernels trust their arguments: this module
hands them C-contiguous arrays of the right dtype and scalars of the arrays' type
(``numpy.float32(lr)``: a Python float would arrive as a double and be misread).

The functions below have the names and arguments of the CPU set (``nnhp/fused/cpu.py``);
``nnhp.fused.policy`` hands out this module for CuPy arrays, so a fused step calls
``kernels.activation_bias_backward(...)`` without knowing which device it is on.
Setting ``jit=False`` on a model (or ``NNHP_JIT=0``) keeps the plain CuPy code.

Wheels carry the sources as ``nnhp/kernels/*.cu``; a source checkout reads them
from the top-level ``kernels/`` folder.
"""
from __future__ import annotations

import functools
import importlib.resources
import pathlib

import numpy

from .. import philox
from .shared import optimizer_arguments

KERNEL_FILES = ("activation.cu", "dropout.cu", "softmax_cross_entropy.cu", "optimizers.cu")
COMMON_HEADER = "common.cuh"
#: NVRTC options: no fused multiply-add contraction, so results match the NumPy code
#: (which rounds every product) to the last bit wherever the operations are the same.
COMPILE_OPTIONS = ("--fmad=false",)
THREADS_PER_BLOCK = 256
MAX_BLOCKS = 8192   # grid-stride loops cover any n with at most this many blocks


# --- finding and compiling the sources --------------------------------------------------
def kernel_dir() -> pathlib.Path:
    """The folder holding the .cu files: inside the installed package, else the checkout's."""
    packaged = importlib.resources.files("nnhp").joinpath("kernels")
    if packaged.is_dir() and packaged.joinpath(KERNEL_FILES[0]).is_file():
        return pathlib.Path(str(packaged))
    checkout = pathlib.Path(__file__).resolve().parents[2] / "kernels"
    if checkout.joinpath(KERNEL_FILES[0]).is_file():
        return checkout
    raise FileNotFoundError("nnhp's CUDA kernel sources (kernels/*.cu) are missing from "
                            f"{packaged} and {checkout}; reinstall nnhp")


def source(file_name: str, dtype) -> str:
    """The full CUDA source NVRTC compiles for ``file_name`` and ``dtype``: the REAL
    define, the shared header pasted in place of its #include, then the file."""
    folder = kernel_dir()
    ctype = {"float32": "float", "float64": "double"}[numpy.dtype(dtype).name]
    header = (folder / COMMON_HEADER).read_text().replace("#pragma once\n", "")
    body = (folder / file_name).read_text().replace(f'#include "{COMMON_HEADER}"', header)
    return f"#define REAL {ctype}\n{body}"


def available() -> bool:
    """CuPy importable and at least one CUDA device visible."""
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no CuPy, no driver, no device
        return False


@functools.cache
def _module(file_name: str, dtype_name: str):
    import cupy
    return cupy.RawModule(code=source(file_name, dtype_name), options=COMPILE_OPTIONS)


#: (file, dtype, kernel) -> (module, its kernel function). CuPy's get_function builds a
#: new kernel object on every call; a training step launches ~10 kernels, so look each
#: up once. The module is kept beside it so a different module (tests swap ``_module``)
#: is never served a stale function.
_functions: dict = {}


def _function(file_name: str, dtype_name: str, kernel: str):
    module = _module(file_name, dtype_name)
    cached = _functions.get((file_name, dtype_name, kernel))
    if cached is None or cached[0] is not module:
        cached = _functions[file_name, dtype_name, kernel] = (module, module.get_function(kernel))
    return cached[1]


def _launch(file_name: str, kernel: str, n: int, dtype, args, work_items: int | None = None) -> None:
    """Run ``kernel(n, *args)`` from ``file_name`` (its ``dtype`` build), with enough
    threads for ``work_items`` (default ``n``) grid-stride iterations."""
    function = _function(file_name, numpy.dtype(dtype).name, kernel)
    work_items = n if work_items is None else work_items
    blocks = max(1, min(-(-int(work_items) // THREADS_PER_BLOCK), MAX_BLOCKS))
    function((blocks,), (THREADS_PER_BLOCK,), (numpy.int64(n),) + tuple(_argument(a) for a in args))


def _argument(value):
    """Kernel arguments: arrays as they are, bools as C ints (scalars are typed already)."""
    if isinstance(value, (bool, numpy.bool_)):
        return numpy.int32(value)
    return value


def _contiguous(array):
    import cupy
    return array if array.flags.c_contiguous else cupy.ascontiguousarray(array)


# --- layers ---------------------------------------------------------------------------------
def bias_activation_forward(z, bias, out, code: int, param: float):
    """out = f(z + bias), one pass (``out`` may be ``z``)."""
    _launch("activation.cu", "bias_activation_forward", z.size, z.dtype,
            (numpy.int64(z.shape[-1]), _contiguous(z), _contiguous(bias), out, numpy.int32(code),
             z.dtype.type(param)))
    return out


def activation_forward(x, out, code: int, param: float):
    """out = f(x)."""
    _launch("activation.cu", "activation_forward", x.size, x.dtype,
            (_contiguous(x), out, numpy.int32(code), x.dtype.type(param)))
    return out


def activation_backward(grad_out, out, grad_in, code: int, param: float):
    """grad_in = grad_out * f'(z), from the forward output ``out``."""
    _launch("activation.cu", "activation_backward", out.size, out.dtype,
            (_contiguous(grad_out), out, grad_in, numpy.int32(code), out.dtype.type(param)))
    return grad_in


def activation_bias_backward(grad_out, out, grad_in, bias_grad, code: int, param: float):
    """grad_in = grad_out * f'(z), then bias_grad = its column sums (CuPy's reduction:
    on a GPU the sum is a second, cheap launch, not a second pass worth fusing away)."""
    activation_backward(grad_out, out, grad_in, code, param)
    grad_in.sum(axis=0, out=bias_grad)
    return grad_in


def dropout_apply(x, out, key: int, keep_prob: float):
    """out = x * mask / keep_prob with the Philox mask of ``key`` (see ``nnhp.philox``)."""
    key0, key1 = philox.split_key(key)
    _launch("dropout.cu", "dropout_apply", x.size, x.dtype,
            (_contiguous(x), out, numpy.uint32(key0), numpy.uint32(key1),
             numpy.uint32(philox.keep_threshold(keep_prob)), x.dtype.type(1.0 / keep_prob)),
            work_items=-(-x.size // 4))   # one thread per 4 elements: one Philox call
    return out


# --- losses ---------------------------------------------------------------------------------
def softmax_cross_entropy(logits, y, grad):
    """Mean softmax cross-entropy against labels or target rows, as a 0-d device array;
    d mean-loss / d logits goes to ``grad``. One thread per row."""
    import cupy
    n, k = logits.shape
    logits = _contiguous(logits)
    row_losses = cupy.empty(n, dtype=cupy.float64)
    scale = logits.dtype.type(1.0 / n)
    if y.ndim == 1:
        labels = cupy.ascontiguousarray(y, dtype=cupy.int64)
        _launch("softmax_cross_entropy.cu", "softmax_cross_entropy_labels", n, logits.dtype,
                (numpy.int64(k), logits, labels, grad, row_losses, scale))
    else:
        targets = cupy.ascontiguousarray(y, dtype=logits.dtype)
        _launch("softmax_cross_entropy.cu", "softmax_cross_entropy_targets", n, logits.dtype,
                (numpy.int64(k), logits, targets, grad, row_losses, scale))
    return (row_losses.sum() / n).astype(logits.dtype)


# --- optimizers -----------------------------------------------------------------------------
def optimizer_update(optimizer, param, grad, state: dict, coeffs: dict) -> bool:
    """One kernel launch for one step of ``optimizer`` (False: no kernel for its class)."""
    call = optimizer_arguments(optimizer, param, _contiguous(grad), state, coeffs)
    if call is None:
        return False
    name, arguments = call
    _launch("optimizers.cu", name, param.size, param.dtype, arguments)
    return True


# --- loading ahead -----------------------------------------------------------------------------
def warm_up(dtype) -> None:
    """Compile every kernel file for ``dtype`` now (NVRTC; CuPy keeps the result on disk),
    so that no training step waits for it."""
    for file_name in KERNEL_FILES:
        _module(file_name, numpy.dtype(dtype).name).compile()
