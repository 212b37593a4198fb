"""Fused CPU kernels, compiled by numba: one pass over memory where NumPy makes several.

A chain of NumPy operations such as Adam's update (a dozen ``out=`` calls) reads
and writes every array once per operation. Each kernel here does the whole chain
for one element before moving to the next, so memory is touched once, and LLVM
vectorizes the loop (SIMD), as NumPy does each of its passes. The arithmetic is the same,
operation for operation and in the same float type, as the NumPy code it replaces
(``nnhp/layers.py``, ``nnhp/losses.py``, ``nnhp/optim.py``), so most kernels give
bit-identical results; the exceptions (``exp``, ``tanh``, sums in a different order)
are listed in ``tests/test_fused_cpu.py`` with their tolerances.

Rules every kernel follows:
  * scalars arrive in the arrays' float type (``numpy.float32(0.9)``, not ``0.9``):
    a Python float is float64 and would silently promote float32 math to float64;
  * ``fastmath=False``: no reassociation or fused multiply-add, so results stay
    reproducible and equal to NumPy's;
  * ``error_model="numpy"``: x / 0 gives inf or nan as in NumPy, instead of a Python
    ZeroDivisionError check per division, which also kept LLVM from vectorizing;
  * arrays a loop touches never overlap (separate buffers; unused state gets an
    empty spare that the loop of that variant never touches), so LLVM's runtime
    overlap check lets the vectorized loop run;
  * one thread, no ``parallel=True``: measured on a 2-core box, a parallel call waits
    at its closing barrier for whichever thread the OS descheduled (8-12 ms per call
    under load, against 0.01-1.5 ms serial), a 2-thread Adam made the median training
    step slower (its OpenMP worker spins against OpenBLAS's threads), GNU OpenMP makes
    forked worker processes abort, and the speed-up comes from touching memory once,
    which one core gets (see benchmarks/RESULTS.md);
  * ``cache=True``: compiled machine code is kept on disk, so only the very first
    call on a machine pays the compile time (``python -m nnhp.fused --compile`` pays
    it ahead).

This module imports numba at the top; ``nnhp/fused/cpu.py`` wraps these functions and
is imported only when a kernel is about to be used, so ``import nnhp`` never needs numba.
"""
from __future__ import annotations

import math

import numba
import numpy

from .shared import ACTIVATION_CODES

_options = {"cache": True, "fastmath": False, "nogil": True, "error_model": "numpy"}

IDENTITY, RELU, LEAKY_RELU, ELU, TANH, SIGMOID = (
    ACTIVATION_CODES[name] for name in ("identity", "relu", "leaky_relu", "elu", "tanh", "sigmoid"))


# --- activations -----------------------------------------------------------------------
@numba.njit(inline="always")
def _activate(z, kind, param, zero, one, half):
    """f(z) for activation ``kind``; ``param`` is the leaky slope or the ELU alpha."""
    if kind == RELU:
        return zero if z <= zero else z                       # max(z, 0), NaN passes through
    if kind == LEAKY_RELU:
        scaled = param * z
        return z if z >= scaled else scaled                   # max(z, slope z) for 0 <= slope < 1
    if kind == ELU:
        return z if z > zero else math.expm1(z) * param      # alpha (e^z - 1) for z <= 0
    if kind == TANH:
        return math.tanh(z)
    if kind == SIGMOID:
        return (math.tanh(z * half) + one) * half             # = 1 / (1 + e^-z), never overflows
    return z


@numba.njit(inline="always")
def _slope(out, kind, param, zero, one):
    """f'(z) written with the output out = f(z) only (so backward needs no input)."""
    if kind == RELU:
        return one if out > zero else zero
    if kind == LEAKY_RELU:
        return one if out > zero else param                   # out > 0 exactly where z > 0
    if kind == ELU:
        return one if out > zero else out + param             # d/dz alpha (e^z - 1) = out + alpha
    if kind == TANH:
        return one - out * out
    if kind == SIGMOID:
        return (one - out) * out
    return one


@numba.njit(**_options)
def bias_activation_forward(z, bias, kind, param):
    """z[i, j] = f(z[i, j] + bias[j]) in place: a Dense layer's bias and its activation in
    one pass, the matrix product's output becoming the activation with no second (n, units)
    array. (One array, so no overlap check: separate ``z`` and ``out`` arguments that might
    alias would send LLVM down its scalar path.)"""
    zero, one, half = z.dtype.type(0), z.dtype.type(1), z.dtype.type(0.5)
    n_rows, n_cols = z.shape
    for i in range(n_rows):
        for j in range(n_cols):
            z[i, j] = _activate(z[i, j] + bias[j], kind, param, zero, one, half)


@numba.njit(**_options)
def activation_forward(x, out, kind, param):
    """out = f(x), elementwise over 1-D (flattened) arrays."""
    zero, one, half = x.dtype.type(0), x.dtype.type(1), x.dtype.type(0.5)
    for i in range(x.size):
        out[i] = _activate(x[i], kind, param, zero, one, half)


@numba.njit(**_options)
def activation_backward(grad_out, out, grad_in, kind, param):
    """grad_in = grad_out * f'(z), with f'(z) computed from the forward output."""
    zero, one = out.dtype.type(0), out.dtype.type(1)
    for i in range(out.size):
        grad_in[i] = grad_out[i] * _slope(out[i], kind, param, zero, one)


@numba.njit(**_options)
def activation_bias_backward(grad_out, out, grad_in, bias_grad, kind, param):
    """grad_in = grad_out * f'(z) on (n, units) arrays, and in the same pass
    bias_grad[j] = sum_i grad_in[i, j]: the bias gradient of the Dense layer below.

    The column sums add the rows in order, as NumPy's ``sum(axis=0)`` does on a
    C-ordered array, so the result is the same to the last bit.
    """
    zero, one = out.dtype.type(0), out.dtype.type(1)
    n_rows, n_cols = out.shape
    if n_rows == 0:
        for j in range(n_cols):
            bias_grad[j] = zero
        return
    for j in range(n_cols):                     # the first row starts the sums
        g = grad_out[0, j] * _slope(out[0, j], kind, param, zero, one)
        grad_in[0, j] = g
        bias_grad[j] = g
    for i in range(1, n_rows):
        for j in range(n_cols):
            g = grad_out[i, j] * _slope(out[i, j], kind, param, zero, one)
            grad_in[i, j] = g
            bias_grad[j] += g


# --- dropout (Philox4x32-10, see nnhp/philox.py) ----------------------------------------
_M0, _M1 = numpy.uint64(0xD2511F53), numpy.uint64(0xCD9E8D57)
_W0, _W1 = numpy.uint64(0x9E3779B9), numpy.uint64(0xBB67AE85)
_LOW32, _SHIFT32 = numpy.uint64(0xFFFFFFFF), numpy.uint64(32)


@numba.njit(inline="always")
def _philox(c0, c1, c2, c3, k0, k1):
    """Ten Philox rounds on one 4-word counter (all values uint64 holding 32 bits)."""
    for round_index in range(10):
        if round_index > 0:
            k0 = (k0 + _W0) & _LOW32
            k1 = (k1 + _W1) & _LOW32
        product0 = c0 * _M0
        product1 = c2 * _M1
        c0, c1, c2, c3 = ((product1 >> _SHIFT32) ^ c1 ^ k0, product1 & _LOW32,
                          (product0 >> _SHIFT32) ^ c3 ^ k1, product0 & _LOW32)
    return c0, c1, c2, c3


@numba.njit(inline="always")
def _keep(x, word, threshold, scale, zero):
    return x * scale if word < threshold else x * zero


@numba.njit(**_options)
def dropout_apply(x, out, key0, key1, threshold, scale):
    """out[i] = x[i] * scale if Philox word i < threshold else 0 (1-D arrays).

    Forward applies it to the activations, backward to the gradient with the same
    key: the mask is recomputed, never stored. ``scale`` is 1 / keep_prob.
    """
    zero = x.dtype.type(0)
    n = x.size
    no_bits = numpy.uint64(0)
    for block in range((n + 3) // 4):
        counter = numpy.uint64(block)
        w0, w1, w2, w3 = _philox(counter & _LOW32, counter >> _SHIFT32, no_bits, no_bits, key0, key1)
        i = block * 4
        out[i] = _keep(x[i], w0, threshold, scale, zero)
        if i + 1 < n:
            out[i + 1] = _keep(x[i + 1], w1, threshold, scale, zero)
        if i + 2 < n:
            out[i + 2] = _keep(x[i + 2], w2, threshold, scale, zero)
        if i + 3 < n:
            out[i + 3] = _keep(x[i + 3], w3, threshold, scale, zero)


# --- softmax + cross-entropy + gradient --------------------------------------------------
@numba.njit(inline="always")
def _softmax_row(logits, probabilities, i):
    """probabilities[i] = softmax(logits[i]); returns (row max, log sum exp(logits - max)).

    The sum of exponentials is accumulated in float64: one row may hold thousands of
    classes, and a float32 running sum would lose ~k eps of accuracy.
    """
    k = logits.shape[1]
    row_max = logits[i, 0]
    for j in range(1, k):
        if logits[i, j] > row_max:
            row_max = logits[i, j]
    total = 0.0
    for j in range(k):
        e = math.exp(logits[i, j] - row_max)
        probabilities[i, j] = e
        total += e
    for j in range(k):
        probabilities[i, j] = probabilities[i, j] / total
    return row_max, math.log(total)


@numba.njit(**_options)
def softmax_cross_entropy_labels(logits, labels, grad, row_losses, scale):
    """Per row: softmax, the loss log sum exp(z - m) - (z_y - m), and grad = (p - onehot) * scale.

    ``scale`` = 1/n, so ``grad`` is d mean-loss / d logits; the caller sums the
    float64 ``row_losses``.
    """
    for i in range(logits.shape[0]):
        row_max, log_sum_exp = _softmax_row(logits, grad, i)
        label = labels[i]
        row_losses[i] = log_sum_exp - (logits[i, label] - row_max)
        for j in range(logits.shape[1]):
            grad[i, j] = grad[i, j] * scale
        grad[i, label] -= scale


@numba.njit(**_options)
def softmax_cross_entropy_targets(logits, targets, grad, row_losses, scale):
    """As above with target rows t (one-hot or probabilities): loss sum_j t_j (lse - (z_j - m))."""
    for i in range(logits.shape[0]):
        row_max, log_sum_exp = _softmax_row(logits, grad, i)
        loss = 0.0
        for j in range(logits.shape[1]):
            loss += (log_sum_exp - (logits[i, j] - row_max)) * targets[i, j]
            grad[i, j] = grad[i, j] * scale - targets[i, j] * scale
        row_losses[i] = loss


# --- optimizers: one pass over the flat parameter buffer --------------------------------
# Each mirrors the ``_update`` of its class in nnhp/optim.py operation for operation;
# see the docstrings there for the formulas.

@numba.njit(inline="always")
def _decayed(param, grad, weight_decay, use_decay):
    return param * weight_decay + grad if use_decay else grad


# Branches on a flag sit outside the loops, and a loop touches only the arrays its
# variant uses: an array that a loop merely might touch still enters LLVM's runtime
# overlap check, and a spare that happens to lie near a real buffer then sends the
# whole update down the scalar (unvectorized) path -- measured 3-6x slower.

@numba.njit(**_options)
def sgd_update(param, grad, momentum_buffer, lr, momentum, one_minus_dampening, weight_decay,
               use_decay, use_momentum, first_step, undamped, nesterov):
    if not use_momentum:
        for i in range(param.size):
            param[i] -= _decayed(param[i], grad[i], weight_decay, use_decay) * lr
        return
    for i in range(param.size):
        g = _decayed(param[i], grad[i], weight_decay, use_decay)
        if first_step:
            buf = g
        elif undamped:
            buf = momentum_buffer[i] * momentum + g
        else:
            buf = momentum_buffer[i] * momentum + g * one_minus_dampening
        momentum_buffer[i] = buf
        g = buf * momentum + g if nesterov else buf
        param[i] -= g * lr


@numba.njit(**_options)
def adagrad_update(param, grad, total, lr, eps, weight_decay, use_decay):
    for i in range(param.size):
        g = _decayed(param[i], grad[i], weight_decay, use_decay)
        s = total[i] + g * g
        total[i] = s
        param[i] -= g / (math.sqrt(s) + eps) * lr


@numba.njit(**_options)
def adadelta_update(param, grad, square_avg, acc_delta, lr, rho, one_minus_rho, eps,
                    weight_decay, use_decay):
    for i in range(param.size):
        g = _decayed(param[i], grad[i], weight_decay, use_decay)
        v = square_avg[i] * rho + g * g * one_minus_rho
        square_avg[i] = v
        delta = math.sqrt(acc_delta[i] + eps) / math.sqrt(v + eps) * g
        acc_delta[i] = acc_delta[i] * rho + delta * delta * one_minus_rho
        param[i] -= delta * lr


@numba.njit(inline="always")
def _rmsprop_average(param, grad, square_avg, i, alpha, one_minus_alpha, weight_decay, use_decay):
    g = _decayed(param[i], grad[i], weight_decay, use_decay)
    v = square_avg[i] * alpha + g * g * one_minus_alpha
    square_avg[i] = v
    return g, v


@numba.njit(inline="always")
def _rmsprop_center(g, v, grad_avg, i, one_minus_alpha):
    mean = grad_avg[i] + (g - grad_avg[i]) * one_minus_alpha
    grad_avg[i] = mean
    return v - mean * mean


@numba.njit(inline="always")
def _rmsprop_momentum(step, momentum_buffer, i, momentum):
    buf = momentum_buffer[i] * momentum + step
    momentum_buffer[i] = buf
    return buf


@numba.njit(**_options)
def rmsprop_update(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, one_minus_alpha,
                   eps, momentum, weight_decay, use_decay, centered, use_momentum):
    n = param.size
    if centered and use_momentum:
        for i in range(n):
            g, v = _rmsprop_average(param, grad, square_avg, i, alpha, one_minus_alpha, weight_decay, use_decay)
            v = _rmsprop_center(g, v, grad_avg, i, one_minus_alpha)
            param[i] -= _rmsprop_momentum(g / (math.sqrt(v) + eps), momentum_buffer, i, momentum) * lr
    elif centered:
        for i in range(n):
            g, v = _rmsprop_average(param, grad, square_avg, i, alpha, one_minus_alpha, weight_decay, use_decay)
            v = _rmsprop_center(g, v, grad_avg, i, one_minus_alpha)
            param[i] -= g / (math.sqrt(v) + eps) * lr
    elif use_momentum:
        for i in range(n):
            g, v = _rmsprop_average(param, grad, square_avg, i, alpha, one_minus_alpha, weight_decay, use_decay)
            param[i] -= _rmsprop_momentum(g / (math.sqrt(v) + eps), momentum_buffer, i, momentum) * lr
    else:
        for i in range(n):
            g, v = _rmsprop_average(param, grad, square_avg, i, alpha, one_minus_alpha, weight_decay, use_decay)
            param[i] -= g / (math.sqrt(v) + eps) * lr


@numba.njit(inline="always")
def _adam_moments(param, grad, exp_avg, exp_avg_sq, i, beta1, one_minus_beta1, beta2, one_minus_beta2,
                  weight_decay, use_decay, decay_factor, decoupled):
    """(decayed theta, m, v) of element i, with m and v stored."""
    p = param[i]
    if decoupled:
        if use_decay:
            p = p * decay_factor                              # AdamW: theta (1 - lr lambda)
        g = grad[i]
    else:
        g = _decayed(p, grad[i], weight_decay, use_decay)
    m = exp_avg[i] * beta1 + g * one_minus_beta1
    exp_avg[i] = m
    v = exp_avg_sq[i] * beta2 + g * g * one_minus_beta2
    exp_avg_sq[i] = v
    return p, m, v


@numba.njit(**_options)
def adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step_size, bias_correction2_sqrt, eps,
                beta1, one_minus_beta1, beta2, one_minus_beta2, weight_decay, use_decay,
                decay_factor, decoupled, amsgrad):
    """theta -= step_size * m / (sqrt(v) / sqrt(1 - beta2^t) + eps): Adam as nnhp.optim.Adam
    (and torch) computes it, step_size = lr / (1 - beta1^t)."""
    if amsgrad:
        for i in range(param.size):
            p, m, v = _adam_moments(param, grad, exp_avg, exp_avg_sq, i, beta1, one_minus_beta1, beta2,
                                    one_minus_beta2, weight_decay, use_decay, decay_factor, decoupled)
            if max_exp_avg_sq[i] > v:
                v = max_exp_avg_sq[i]
            max_exp_avg_sq[i] = v
            param[i] = p - m / (math.sqrt(v) / bias_correction2_sqrt + eps) * step_size
    else:
        for i in range(param.size):
            p, m, v = _adam_moments(param, grad, exp_avg, exp_avg_sq, i, beta1, one_minus_beta1, beta2,
                                    one_minus_beta2, weight_decay, use_decay, decay_factor, decoupled)
            param[i] = p - m / (math.sqrt(v) / bias_correction2_sqrt + eps) * step_size
