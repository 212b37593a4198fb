"""What the numba (CPU) and CUDA (GPU) kernel sets share: activation codes and the
argument lists of the optimizer kernels.

Both sets take the same arguments in the same order, so the Python side of a kernel
call is written once, here, and ``tests/test_cuda.py`` checks the C signatures in
``kernels/*.cu`` against the numba functions' parameter names.
"""
from __future__ import annotations

from ..backend import array_module

#: Activation kernel codes, as ``nnhp/fused/numba_kernels.py`` and ``kernels/activation.cu`` number them.
ACTIVATION_CODES = {"identity": 0, "relu": 1, "leaky_relu": 2, "elu": 3, "tanh": 4, "sigmoid": 5}


def activation_code(activation) -> tuple[int, float]:
    """(kernel code, parameter) of an activation layer: the leaky slope or the ELU alpha."""
    param = getattr(activation, "negative_slope", getattr(activation, "alpha", 0.0))
    return ACTIVATION_CODES[activation.name], float(param)


# --- optimizers ---------------------------------------------------------------------------
def optimizer_arguments(optimizer, param, grad, state: dict, coeffs: dict):
    """(kernel name, arguments) of one fused step of ``optimizer`` over 1-D ``param``,
    ``grad`` and ``state`` buffers, or None for a class without a kernel (exact class
    names only: a user's subclass with its own ``_update`` keeps it).

    Scalars come in the arrays' float type: a Python float would make numba compute in
    float64 and would reach a CUDA kernel as a double."""
    build = _BUILDERS.get((type(optimizer).__module__, type(optimizer).__name__))
    if build is None:
        return None
    return build(optimizer, param, grad, state, coeffs, param.dtype.type)


def has_kernel(optimizer) -> bool:
    """Whether ``optimizer``'s class has a fused update kernel."""
    return (type(optimizer).__module__, type(optimizer).__name__) in _BUILDERS


def _spare(param):
    """A new empty array standing in for state an update does not use. Passing another
    argument (or a view of one) instead would make the arrays overlap, and overlapping
    arrays keep the compiled loop from being vectorized (measured: Adam 5x slower)."""
    return array_module(param).empty(0, dtype=param.dtype)


def _sgd(opt, param, grad, state, coeffs, real):
    use_momentum = opt.momentum != 0
    buffer = state["momentum_buffer"] if use_momentum else _spare(param)
    return "sgd_update", (param, grad, buffer, real(coeffs["lr"]), real(opt.momentum),
                          real(1.0 - opt.dampening), real(opt.weight_decay), opt.weight_decay != 0,
                          use_momentum, bool(coeffs["first_step"]), opt.dampening == 0, opt.nesterov)


def _adagrad(opt, param, grad, state, coeffs, real):
    return "adagrad_update", (param, grad, state["sum"], real(coeffs["lr"]), real(opt.eps),
                              real(opt.weight_decay), opt.weight_decay != 0)


def _adadelta(opt, param, grad, state, coeffs, real):
    return "adadelta_update", (param, grad, state["square_avg"], state["acc_delta"], real(coeffs["lr"]),
                               real(opt.rho), real(1.0 - opt.rho), real(opt.eps), real(opt.weight_decay),
                               opt.weight_decay != 0)


def _rmsprop(opt, param, grad, state, coeffs, real):
    spare = _spare(param)
    return "rmsprop_update", (param, grad, state["square_avg"], state.get("grad_avg", spare),
                              state.get("momentum_buffer", spare), real(coeffs["lr"]), real(opt.alpha),
                              real(1.0 - opt.alpha), real(opt.eps), real(opt.momentum),
                              real(opt.weight_decay), opt.weight_decay != 0, opt.centered, opt.momentum > 0)


def _adam(opt, param, grad, state, coeffs, real):
    beta1, beta2 = opt.betas
    return "adam_update", (param, grad, state["exp_avg"], state["exp_avg_sq"],
                           state.get("max_exp_avg_sq", _spare(param)), real(coeffs["step_size"]),
                           real(coeffs["bias_correction2_sqrt"]), real(opt.eps), real(beta1), real(1.0 - beta1),
                           real(beta2), real(1.0 - beta2), real(opt.weight_decay), opt.weight_decay != 0,
                           real(1.0 - coeffs["lr"] * opt.weight_decay), opt.decoupled_weight_decay,
                           opt.amsgrad)


_BUILDERS = {("nnhp.optim", name): build for name, build in
             (("SGD", _sgd), ("Adagrad", _adagrad), ("Adadelta", _adadelta),
              ("RMSprop", _rmsprop), ("Adam", _adam), ("AdamW", _adam))}
