"""The CPU kernel set: the numba kernels of ``numba_kernels.py`` behind the interface
that ``nnhp/fused/cuda.py`` offers for the GPU, so a fused step calls
``kernels.activation_bias_backward(...)`` without knowing which device it runs on.

Each function takes NumPy arrays of one float dtype, hands the kernel C-contiguous
arrays and scalars of that dtype (a Python float would make numba compute in float64),
and returns what it wrote. Importing this module imports numba.
"""
from __future__ import annotations

import numpy

from .. import philox
from . import numba_kernels as kernels
from .shared import ACTIVATION_CODES, optimizer_arguments


# --- layers --------------------------------------------------------------------------------
def bias_activation_forward(z, bias, out, code: int, param: float):
    """out = f(z + bias) in one pass (a Dense layer's bias fused into its activation);
    ``out`` may be ``z`` itself."""
    if out is not z:
        numpy.copyto(out, z)
    kernels.bias_activation_forward(out, numpy.ascontiguousarray(bias), code, out.dtype.type(param))
    return out


def activation_forward(x, out, code: int, param: float):
    """out = f(x)."""
    x = numpy.ascontiguousarray(x)
    kernels.activation_forward(x.reshape(-1), out.reshape(-1), code, x.dtype.type(param))
    return out


def activation_backward(grad_out, out, grad_in, code: int, param: float):
    """grad_in = grad_out * f'(z), from the forward output ``out``."""
    grad_out = numpy.ascontiguousarray(grad_out)
    kernels.activation_backward(grad_out.reshape(-1), out.reshape(-1), grad_in.reshape(-1), code,
                                out.dtype.type(param))
    return grad_in


def activation_bias_backward(grad_out, out, grad_in, bias_grad, code: int, param: float):
    """grad_in = grad_out * f'(z) and bias_grad = grad_in summed over rows, one pass
    over (n, units) arrays: the backward of bias + activation."""
    kernels.activation_bias_backward(numpy.ascontiguousarray(grad_out), out, grad_in, bias_grad, code,
                                     out.dtype.type(param))
    return grad_in


def dropout_apply(x, out, key: int, keep_prob: float):
    """out = x * mask / keep_prob with the Philox mask of ``key`` (see ``nnhp.philox``)."""
    x = numpy.ascontiguousarray(x)
    key0, key1 = philox.split_key(key)
    kernels.dropout_apply(x.reshape(-1), out.reshape(-1), numpy.uint64(key0), numpy.uint64(key1),
                          numpy.uint64(philox.keep_threshold(keep_prob)), x.dtype.type(1.0 / keep_prob))
    return out


# --- losses --------------------------------------------------------------------------------
def softmax_cross_entropy(logits, y, grad):
    """Mean cross-entropy of softmax(logits) against ``y`` (labels or target rows); writes
    d mean-loss / d logits into ``grad``. One pass per row instead of ~10 NumPy calls."""
    logits = numpy.ascontiguousarray(logits)
    n = logits.shape[0]
    scale = logits.dtype.type(1.0 / n)
    row_losses = numpy.empty(n, dtype=numpy.float64)
    if y.ndim == 1:
        kernels.softmax_cross_entropy_labels(logits, numpy.ascontiguousarray(y, dtype=numpy.int64), grad,
                                             row_losses, scale)
    else:
        kernels.softmax_cross_entropy_targets(logits, numpy.ascontiguousarray(y, dtype=logits.dtype), grad,
                                              row_losses, scale)
    return logits.dtype.type(row_losses.sum() / n)


# --- optimizers ----------------------------------------------------------------------------
def optimizer_update(optimizer, param, grad, state: dict, coeffs: dict) -> bool:
    """One fused step of ``optimizer`` over 1-D arrays (False: no kernel for its class)."""
    call = optimizer_arguments(optimizer, param, numpy.ascontiguousarray(grad), state, coeffs)
    if call is None:
        return False
    name, arguments = call
    getattr(kernels, name)(*arguments)
    return True


# --- loading ahead -------------------------------------------------------------------------
def warm_up(dtype) -> None:
    """Call every kernel once on tiny arrays of ``dtype``, with the argument types the
    functions above pass: numba loads each one from its disk cache (or compiles it, the
    first time on a machine), so no later call has to."""
    from .. import optim   # the optimizer classes whose kernels to load
    dtype = numpy.dtype(dtype)
    z = numpy.linspace(-1, 1, 6, dtype=dtype).reshape(2, 3)
    bias, bias_grad = numpy.zeros(3, dtype), numpy.empty(3, dtype)
    out, grad_in = numpy.empty_like(z), numpy.empty_like(z)
    for code in sorted(set(ACTIVATION_CODES.values())):
        bias_activation_forward(z, bias, out, code, 0.1)
        activation_forward(z, out, code, 0.1)
        activation_backward(z, out, grad_in, code, 0.1)
        activation_bias_backward(z, out, grad_in, bias_grad, code, 0.1)
    dropout_apply(z, out, 1, 0.5)
    softmax_cross_entropy(z, numpy.array([0, 2]), grad_in)
    softmax_cross_entropy(z, numpy.full_like(z, 1 / 3), grad_in)
    for optimizer in (optim.SGD(momentum=0.9), optim.Adagrad(), optim.Adadelta(), optim.RMSprop(),
                      optim.Adam(), optim.AdamW()):
        param = numpy.zeros(4, dtype)
        state = {name: numpy.zeros(4, dtype) for name in optimizer.state_names}
        optimizer_update(optimizer, param, numpy.ones(4, dtype), state, optimizer._coefficients(1))
