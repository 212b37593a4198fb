"""The switch between the plain NumPy code and the numba-compiled fused kernels.

The NumPy code in ``layers.py``, ``losses.py`` and ``optim.py`` is the reference:
readable, and always available. Where numba is installed, the hot elementwise chains
(bias + activation, activation backward, dropout, softmax + cross-entropy + gradient,
every optimizer update) can run as one compiled pass instead (``nnhp/numba_kernels.py``).
Each call site asks ``enabled(array, setting, kernel)`` and, when it says yes, hands
its arrays to the wrapper of the same name here.

Who decides, most specific first:

1. ``setting`` -- the ``jit=`` keyword of a model (copied to its layers), or the
   ``jit`` attribute of a loss or optimizer: ``True`` insists, ``False`` refuses,
   ``None`` defers;
2. the model being trained: ``nnhp.fit``/``nnhp.evaluate`` run inside
   ``scope(model.jit)``, so the loss and optimizer follow the model's keyword;
3. the environment variable ``NNHP_JIT``: ``0`` off, ``1`` on (an error if numba is
   missing), unset or ``auto``: on where it is measured to pay.

"Measured to pay" (auto): numba is importable and the array has at least
``MIN_SIZE[kernel]`` elements. Measured with ``benchmarks/bench_jit.py`` on a 2-core
AMD EPYC (see benchmarks/RESULTS.md), every kernel but the libm-bound ones pays at any
size: one kernel call (~4 us of dispatch) replaces several NumPy calls (~1 us each),
so even 16 elements run faster fused (Adam 1.3x, dropout 7x, softmax + CE 2.8x). The
one near-tie, an activation on its own below ~1k elements (0.92x, half a microsecond),
is outweighed by the Dense + activation pair, whose fused pass also takes the bias add
and the bias gradient's sum. "on" ignores the thresholds, so tests exercise every kernel
at every size.

Threads: none. The kernels run on the calling thread (why: ``nnhp/numba_kernels.py``),
so they are safe in threads and in forked worker processes alike.

The decision depends only on the array's type, dtype and size (never on its memory
layout: the wrappers copy a non-contiguous input), so a layer's forward and backward
always agree. On CuPy arrays ``fused`` hands out ``nnhp.cuda`` instead.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib.util
import os
import sys

import numpy

from . import philox
from .backend import array_module

ENV_VAR = "NNHP_JIT"

_NEVER = 1 << 62
#: Smallest array (elements) for which "auto" picks the numba kernel; measured with
#: benchmarks/bench_jit.py (see the module docstring). Activations go by layer name.
MIN_SIZE = {
    "identity": 1, "relu": 1, "leaky_relu": 1,
    # numba calls the scalar libm tanhf/expm1f per element; NumPy has SIMD loops for
    # them, ~20x faster (measured). So "auto" keeps NumPy; "on" still runs the kernels.
    "tanh": _NEVER, "sigmoid": _NEVER, "elu": _NEVER,
    "dropout": 1,
    "softmax_cross_entropy": 1,
    "optimizer": 1,
}

#: Activation kernel codes, shared by numba_kernels.py and kernels/activation.cu.
ACTIVATION_CODES = {"identity": 0, "relu": 1, "leaky_relu": 2, "elu": 3, "tanh": 4, "sigmoid": 5}

_scope_mode: contextvars.ContextVar = contextvars.ContextVar("nnhp_jit_scope", default=None)


class JitUnavailableError(RuntimeError):
    """JIT kernels were insisted on (``NNHP_JIT=1`` or ``jit=True``) but numba is missing."""


# --- the decision ----------------------------------------------------------------------
@functools.cache
def available() -> bool:
    """Whether numba can be imported (checked once, without importing it)."""
    return importlib.util.find_spec("numba") is not None


def _parse(value, source: str):
    """None (defer/auto), True (on) or False (off) from a setting or the environment."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("", "auto"):
        return None
    if text in ("1", "on", "true", "yes"):
        return True
    if text in ("0", "off", "false", "no"):
        return False
    raise ValueError(f"{source} must be 0, 1 or auto (or True/False/None); got {value!r}")


def mode(setting=None) -> str:
    """The effective mode, "on", "off" or "auto", for a call site with ``setting``."""
    decided = _parse(setting, "jit")
    if decided is not None:
        return "on" if decided else "off"
    scoped = _scope_mode.get()        # set by ``scope``: the model's keyword, or the environment
    if scoped is not None:
        return scoped
    decided = _parse(os.environ.get(ENV_VAR), ENV_VAR)
    return "auto" if decided is None else "on" if decided else "off"


def enabled(array, setting=None, kernel: str = "relu", size: int | None = None) -> bool:
    """Should the call site holding the NumPy array ``array`` use the numba kernel ``kernel``?"""
    if type(array) is not numpy.ndarray or array.dtype.kind != "f" or array.dtype.itemsize < 4:
        return False
    current = mode(setting)
    if current == "off":
        return False
    if current == "on" and not available():
        raise JitUnavailableError(
            f"JIT kernels were requested (jit=True or {ENV_VAR}=1) but numba is not installed; "
            f"install the jit extra (pip install 'nnhp[jit]') or set {ENV_VAR}=0")
    size = array.size if size is None else size
    return current == "on" or (size >= MIN_SIZE[kernel] and available())


def fused(array, setting=None, kernel: str = "relu", size: int | None = None):
    """The fused kernels for the call site holding ``array``, or None for the plain code.

    NumPy arrays get this module (numba kernels, when ``enabled``); CuPy arrays get
    ``nnhp.cuda`` (hand-written CUDA kernels) unless the setting is "off". Both offer
    the same functions with the same arguments: ``activation_forward``,
    ``bias_activation_forward``, ``activation_backward``, ``activation_bias_backward``,
    ``dropout_apply``, ``softmax_cross_entropy``, ``optimizer_update``. ``size``: decide
    for an array of that many elements instead (an output not computed yet).
    """
    if type(array) is numpy.ndarray:
        return sys.modules[__name__] if enabled(array, setting, kernel, size) else None
    if array_module(array) is numpy or array.dtype.kind != "f" or mode(setting) == "off":
        return None
    from . import cuda
    return cuda


@contextlib.contextmanager
def scope(setting):
    """Within this block, call sites without their own setting follow ``setting``, or,
    when it is None, the mode in force on entry (NNHP_JIT is read once here, not at every
    kernel call of a training run)."""
    token = _scope_mode.set(mode(setting))
    try:
        yield
    finally:
        _scope_mode.reset(token)


def follows_model(function):
    """Decorator for ``fit``/``evaluate``: run inside ``scope(model.jit)``."""
    @functools.wraps(function)
    def wrapper(model, *args, **kwargs):
        with scope(getattr(model, "jit", None)):
            return function(model, *args, **kwargs)
    return wrapper


def kernels():
    """The compiled kernels module (imports numba; compiles, or loads from cache, on first call)."""
    return _load_kernels()


@functools.cache
def _load_kernels():
    if not available():
        raise JitUnavailableError("numba is not installed; pip install 'nnhp[jit]'")
    from . import numba_kernels
    return numba_kernels


# --- layers ------------------------------------------------------------------------------
def activation_code(activation) -> tuple[int, float]:
    """(kernel code, parameter) of an activation layer: the leaky slope or the ELU alpha."""
    param = getattr(activation, "negative_slope", getattr(activation, "alpha", 0.0))
    return ACTIVATION_CODES[activation.name], param


def dense_activation_forward(kernels, dense, activation, x, training: bool):
    """``activation.forward(dense.forward(x))`` with the bias folded into the activation:
    z = x @ W (BLAS / cuBLAS), then out = f(z + b) in one fused pass.
    Leaves both layers ready for their ``backward`` (dense.x, activation.out)."""
    xp = array_module(x)
    weights, bias = dense.params
    dense.x = x
    if training:
        z = xp.matmul(x, weights, out=dense._buffer("out", (x.shape[0], dense.n_out), x))
    else:
        z = x @ weights
    # In place: z is this layer's own array, and the activation keeps it as its output.
    activation.out = kernels.bias_activation_forward(z, bias, z, activation)
    return activation.out


def dense_activation_backward(kernels, dense, activation, grad_out, need_input_grad: bool = True):
    """The backward of ``activation(dense(x))``, the mirror of the forward above:
    delta = grad_out * f'(z) together with the bias gradient db = delta summed over the
    batch, in one fused pass; then dW = x^T delta and dL/dx = delta W^T (BLAS / cuBLAS).
    Returns dL/dx, or None with ``need_input_grad=False`` (the first layer)."""
    xp = array_module(grad_out)
    weights_grad, bias_grad = dense.grads
    delta = activation._buffer("grad_in", grad_out.shape, grad_out)
    kernels.activation_bias_backward(grad_out, activation.out, delta, bias_grad, activation)
    xp.matmul(dense.x.T, delta, out=weights_grad)
    if not need_input_grad:
        return None
    return xp.matmul(delta, dense.params[0].T, out=dense._buffer("grad_in", dense.x.shape, delta))


def bias_activation_forward(z, bias, out, activation):
    """out = f(z + bias) in one pass (a Dense layer's bias fused into its activation);
    ``out`` may be ``z`` itself."""
    code, param = activation_code(activation)
    if out is not z:
        numpy.copyto(out, z)
    kernels().bias_activation_forward(out, bias, code, out.dtype.type(param))
    return out


def activation_forward(x, out, activation):
    """out = f(x)."""
    code, param = activation_code(activation)
    kernels().activation_forward(x.reshape(-1), out.reshape(-1), code, x.dtype.type(param))
    return out


def activation_backward(grad_out, out, grad_in, activation):
    """grad_in = grad_out * f'(z), from the forward output ``out``."""
    code, param = activation_code(activation)
    if not grad_out.flags.c_contiguous:
        grad_out = numpy.ascontiguousarray(grad_out)
    kernels().activation_backward(grad_out.reshape(-1), out.reshape(-1), grad_in.reshape(-1),
                                  code, out.dtype.type(param))
    return grad_in


def activation_bias_backward(grad_out, out, grad_in, bias_grad, activation):
    """grad_in = grad_out * f'(z) and bias_grad = grad_in summed over rows, one pass
    over (n, units) arrays (see ``dense_activation_backward``)."""
    code, param = activation_code(activation)
    if not grad_out.flags.c_contiguous:
        grad_out = numpy.ascontiguousarray(grad_out)
    kernels().activation_bias_backward(grad_out, out, grad_in, bias_grad, code, out.dtype.type(param))
    return grad_in


def dropout_apply(x, out, key: int, keep_prob: float):
    """out = x * mask / keep_prob with the Philox mask of ``key`` (see ``nnhp.philox``)."""
    if not x.flags.c_contiguous:
        x = numpy.ascontiguousarray(x)
    key0, key1 = philox.split_key(key)
    kernels().dropout_apply(x.reshape(-1), out.reshape(-1), numpy.uint64(key0), numpy.uint64(key1),
                            numpy.uint64(philox.keep_threshold(keep_prob)),
                            x.dtype.type(1.0 / keep_prob))
    return out


# --- losses ------------------------------------------------------------------------------
def softmax_cross_entropy(logits, y, grad):
    """Mean cross-entropy of softmax(logits) against ``y`` (labels or target rows); writes
    d mean-loss / d logits into ``grad``. One pass per row instead of ~10 NumPy calls."""
    k = kernels()
    if not logits.flags.c_contiguous:
        logits = numpy.ascontiguousarray(logits)
    n = logits.shape[0]
    scale = logits.dtype.type(1.0 / n)
    row_losses = numpy.empty(n, dtype=numpy.float64)
    if y.ndim == 1:
        k.softmax_cross_entropy_labels(logits, numpy.ascontiguousarray(y), grad, row_losses, scale)
    else:
        k.softmax_cross_entropy_targets(logits, numpy.ascontiguousarray(y, dtype=logits.dtype),
                                        grad, row_losses, scale)
    return logits.dtype.type(row_losses.sum() / n)


# --- optimizers --------------------------------------------------------------------------
def optimizer_update(optimizer, param, grad, state: dict, coeffs: dict, kernel_set=None) -> bool:
    """One fused step of ``optimizer`` over 1-D ``param``/``grad``/``state`` buffers.

    Returns False (and does nothing) for an optimizer class without a kernel, e.g. a
    user's subclass with its own ``_update``: exact class names only. ``kernel_set``:
    where the ``*_update`` kernels come from (default numba; ``nnhp.cuda`` passes its
    CUDA launchers, which take the same arguments).
    """
    update = _OPTIMIZER_UPDATES.get((type(optimizer).__module__, type(optimizer).__name__))
    if update is None:
        return False
    if not grad.flags.c_contiguous:
        grad = numpy.ascontiguousarray(grad)
    update(optimizer, param, grad, state, coeffs, kernels() if kernel_set is None else kernel_set,
           param.dtype.type)
    return True


def _spare(param):
    """A new empty array standing in for state an update does not use. Passing another
    argument (or a view of one) instead would make the arrays overlap, and overlapping
    arrays keep the compiled loop from being vectorized (measured: Adam 5x slower)."""
    return array_module(param).empty(0, dtype=param.dtype)


def _sgd(opt, param, grad, state, coeffs, k, real):
    use_momentum = opt.momentum != 0
    buffer = state["momentum_buffer"] if use_momentum else _spare(param)
    k.sgd_update(param, grad, buffer, real(coeffs["lr"]), real(opt.momentum), real(1.0 - opt.dampening),
                 real(opt.weight_decay), opt.weight_decay != 0, use_momentum, bool(coeffs["first_step"]),
                 opt.dampening == 0, opt.nesterov)


def _adagrad(opt, param, grad, state, coeffs, k, real):
    k.adagrad_update(param, grad, state["sum"], real(coeffs["lr"]), real(opt.eps),
                     real(opt.weight_decay), opt.weight_decay != 0)


def _adadelta(opt, param, grad, state, coeffs, k, real):
    k.adadelta_update(param, grad, state["square_avg"], state["acc_delta"], real(coeffs["lr"]),
                      real(opt.rho), real(1.0 - opt.rho), real(opt.eps), real(opt.weight_decay),
                      opt.weight_decay != 0)


def _rmsprop(opt, param, grad, state, coeffs, k, real):
    spare = _spare(param)
    k.rmsprop_update(param, grad, state["square_avg"], state.get("grad_avg", spare),
                     state.get("momentum_buffer", spare), real(coeffs["lr"]), real(opt.alpha),
                     real(1.0 - opt.alpha), real(opt.eps), real(opt.momentum), real(opt.weight_decay),
                     opt.weight_decay != 0, opt.centered, opt.momentum > 0)


def _adam(opt, param, grad, state, coeffs, k, real):
    beta1, beta2 = opt.betas
    correction = coeffs["bias_correction2_sqrt"]
    k.adam_update(param, grad, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq", _spare(param)),
                  real(coeffs["step_size"] * correction), real(opt.eps * correction), real(beta1),
                  real(1.0 - beta1), real(beta2), real(1.0 - beta2), real(opt.weight_decay),
                  opt.weight_decay != 0, real(1.0 - coeffs["lr"] * opt.weight_decay),
                  opt.decoupled_weight_decay, opt.amsgrad)


_OPTIMIZER_UPDATES = {("nnhp.optim", name): update for name, update in
                      (("SGD", _sgd), ("Adagrad", _adagrad), ("Adadelta", _adadelta),
                       ("RMSprop", _rmsprop), ("Adam", _adam), ("AdamW", _adam))}
