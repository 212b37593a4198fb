"""Optimizers: how a gradient becomes a change of the parameters.

Every optimizer here follows PyTorch's ``torch.optim`` exactly -- the same argument
names, the same defaults and the same update rule, operation for operation (where
``eps`` sits, when the rate multiplies, how bias correction is applied) -- so that a
learning rate tuned with nnhp means the same thing in PyTorch and back.

    opt = nnhp.optim.Adam(lr=1e-3)
    opt.step(model.params, model.grads)      # updates the parameter arrays in place
    opt.lr = 1e-4                            # schedules set the rate between steps

Notation used in the docstrings: θ the parameters, g the gradient of the loss, t the
step count (1 on the first step), γ the learning rate ``lr``, λ the weight decay.
All operations are elementwise.

How a step runs
---------------
``Optimizer.step`` counts the step, computes the step's scalar coefficients once
(``_coefficients``: bias corrections, a decayed rate, ...) and then calls the one
method that holds the math, ``_update(param, grad, state, scratch, coeffs)``, on each
parameter array. ``state`` maps names (``"exp_avg"``, ...) to this array's running
buffers; ``scratch`` is a list of preallocated work arrays of the same shape, so a
step allocates nothing: every operation writes into an existing array (``out=``).

The engine keeps all parameters in one flat buffer, so a whole-model step is one
``_update`` over ~10^6 numbers. An optimizer step is pure memory traffic: each NumPy
operation is one pass over arrays that may not fit in the CPU cache. So on NumPy the
flat array is fed to ``_update`` in blocks of ``block_size`` elements: the block's
dozen operations then run on data that stays in cache, and main memory is read and
written about once per step instead of once per operation (measured on a 2-core EPYC:
Adam over 4M float32 parameters 17 ms -> 12 ms; at 1M, where everything already sits
in the 32 MiB L3, 10-20%). The result is exactly the same as one call on the whole
array (the update is elementwise). A fused kernel (numba, CUDA) can replace
``_update`` one for one.
"""
from __future__ import annotations

import json
import math

import numpy

from . import _checks
from . import jit as _jit
from .backend import array_module, to_numpy


class Optimizer:
    """Base class: learning rate, step count, per-parameter state, checkpoints.

    Subclasses declare ``hyperparam_names`` (their constructor arguments besides
    ``lr``), ``state_names`` (buffers kept per parameter array) and ``n_scratch``
    (work arrays ``_update`` needs), and implement ``_update`` (and, if the step's
    scalars depend on t, ``_coefficients``).

    Attributes
    ----------
    lr : float
        The current learning rate; a schedule may set it between steps.
    initial_lr : float
        The rate the optimizer was built with (schedules scale this one).
    step_count : int
        How many steps have been taken (t of the last step).
    state : dict[str, list[array]] | None
        For each state name, one buffer per parameter array (None before the first
        step, unless loaded from a checkpoint).
    """

    hyperparam_names: tuple[str, ...] = ()
    state_names: tuple[str, ...] = ()
    n_scratch = 1
    #: elements per ``_update`` call on NumPy (2**18 float32 = 1 MiB per array, so a
    #: block's buffers stay in the CPU cache; much smaller blocks lose more to the
    #: Python overhead of each NumPy call than they gain). None: whole arrays.
    block_size: int | None = 1 << 18
    #: fused kernels (nnhp.jit): None follows the model being trained / NNHP_JIT.
    jit = None

    def __init__(self, lr: float):
        self.lr = lr
        self.initial_lr = self.lr
        self.step_count = 0
        self.state: dict[str, list] | None = None
        self._scratch: list | None = None

    # --- the learning rate ------------------------------------------------------
    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = _checks.number(value, "lr", low=0.0, owner=type(self).__name__, error=ValueError)

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in ("lr",) + self.hyperparam_names)
        return f"{type(self).__name__}({args})"

    # --- one step ---------------------------------------------------------------
    def step(self, params, grads) -> None:
        """Update every array in ``params`` in place from the matching ``grads``."""
        params, grads = list(params), list(grads)
        self._check_arrays(params, grads)
        self._prepare_state(params)
        self.step_count += 1
        coeffs = self._coefficients(self.step_count)
        xp = array_module(params[0]) if params else numpy
        block = self.block_size if (xp is numpy and self.block_size) else None
        for index, (param, grad) in enumerate(zip(params, grads)):
            flat_param = param.reshape(-1)
            flat_grad = grad.reshape(-1)
            flat_state = {name: buffers[index].reshape(-1) for name, buffers in self.state.items()}
            size = flat_param.size
            kernels = _jit.fused(flat_param, self.jit, "optimizer")
            if kernels is not None and kernels.optimizer_update(self, flat_param, flat_grad, flat_state, coeffs):
                continue   # one fused pass did the whole update (numba or CUDA)
            if block is None or size <= block:
                scratch = [work[:size] for work in self._scratch]
                self._update(flat_param, flat_grad, flat_state, scratch, coeffs)
                continue
            for start in range(0, size, block):
                stop = min(start + block, size)
                n = stop - start
                self._update(flat_param[start:stop], flat_grad[start:stop],
                             {name: buffer[start:stop] for name, buffer in flat_state.items()},
                             [work[:n] for work in self._scratch], coeffs)

    def _coefficients(self, t: int) -> dict:
        """The scalars of step ``t`` shared by every element (rates, corrections)."""
        return {"lr": self.lr}

    def _update(self, param, grad, state, scratch, coeffs) -> None:
        """Apply one step to one (1-D) parameter array in place. The optimizer's math."""
        raise NotImplementedError

    def _init_buffer(self, name: str, param):
        """The value state buffer ``name`` starts from (zeros unless overridden)."""
        return array_module(param).zeros_like(param)

    # --- bookkeeping ------------------------------------------------------------
    def _check_arrays(self, params, grads) -> None:
        if len(params) != len(grads):
            raise ValueError(f"{type(self).__name__}.step: got {len(params)} parameter arrays "
                             f"but {len(grads)} gradient arrays")
        for index, (param, grad) in enumerate(zip(params, grads)):
            if param.shape != grad.shape:
                raise ValueError(f"{type(self).__name__}.step: parameter {index} has shape "
                                 f"{param.shape} but its gradient has shape {grad.shape}")
            if not param.flags.c_contiguous:
                raise ValueError(f"{type(self).__name__}.step: parameter {index} is not a "
                                 "C-contiguous array; it cannot be updated in place")
        dtypes = {param.dtype for param in params}
        if len(dtypes) > 1:
            raise ValueError(f"{type(self).__name__}.step: all parameters must share one dtype, "
                             f"got {sorted(str(d) for d in dtypes)}")

    def _prepare_state(self, params) -> None:
        """Create the state buffers on the first step, or adopt loaded ones."""
        if not params:
            self.state = self.state or {name: [] for name in self.state_names}
            self._scratch = []
            return
        xp = array_module(params[0])
        dtype = params[0].dtype
        if self.state is None:
            self.state = {name: [self._init_buffer(name, param) for param in params]
                          for name in self.state_names}
        else:
            for name in self.state_names:
                buffers = self.state.get(name)
                if buffers is None or len(buffers) != len(params):
                    raise ValueError(f"{type(self).__name__}: loaded state {name!r} holds "
                                     f"{0 if buffers is None else len(buffers)} arrays, "
                                     f"but step() got {len(params)} parameter arrays")
                for index, (buffer, param) in enumerate(zip(buffers, params)):
                    if buffer.shape != param.shape:
                        raise ValueError(f"{type(self).__name__}: loaded state {name!r}[{index}] has "
                                         f"shape {buffer.shape}, the parameter has {param.shape}")
                    if array_module(buffer) is not xp or buffer.dtype != dtype:
                        buffers[index] = xp.ascontiguousarray(xp.asarray(buffer, dtype=dtype))
        longest = max(param.size for param in params)
        block = self.block_size if (xp is numpy and self.block_size) else None
        length = longest if block is None else min(block, longest)
        if (self._scratch is None or len(self._scratch) != self.n_scratch
                or (self._scratch and (self._scratch[0].size < length or self._scratch[0].dtype != dtype
                                       or array_module(self._scratch[0]) is not xp))):
            self._scratch = [xp.empty(length, dtype=dtype) for _ in range(self.n_scratch)]

    # --- checkpoints ------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to resume: type, hyperparameters, rates, step, buffers.

        Buffers are copied, so later steps do not change a saved dict.
        """
        state = {}
        if self.state is not None:
            state = {name: [buffer.copy() for buffer in buffers] for name, buffers in self.state.items()}
        hyperparams = {}
        for name in self.hyperparam_names:
            value = getattr(self, name)
            hyperparams[name] = list(value) if isinstance(value, tuple) else value
        return {"type": type(self).__name__, "hyperparams": hyperparams, "lr": self.lr,
                "initial_lr": self.initial_lr, "step": self.step_count, "state": state}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what ``state_dict`` saved; the next ``step`` continues bit-identically."""
        kind = state_dict.get("type")
        if kind != type(self).__name__:
            raise ValueError(f"cannot load a {kind!r} state into a {type(self).__name__} optimizer")
        hyperparams = dict(state_dict.get("hyperparams", {}))
        unknown = set(hyperparams) - set(self.hyperparam_names)
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown hyperparameters in state: {sorted(unknown)}")
        # Rebuilding validates the values exactly as the constructor does.
        checked = type(self)(lr=state_dict["lr"], **hyperparams)
        for name in self.hyperparam_names:
            setattr(self, name, getattr(checked, name))
        self.state_names = checked.state_names
        self.lr = state_dict["lr"]
        self.initial_lr = float(state_dict.get("initial_lr", state_dict["lr"]))
        self.step_count = int(state_dict.get("step", 0))
        buffers = state_dict.get("state") or {}
        missing = set(self.state_names) - set(buffers)
        if buffers and missing:
            raise ValueError(f"{type(self).__name__}: state is missing buffers {sorted(missing)}")
        if not buffers and self.state_names and self.step_count > 0:
            raise ValueError(f"{type(self).__name__}: state has no buffers after "
                             f"{self.step_count} steps")
        if buffers:
            self.state = {name: [array_module(b).array(b, copy=True) for b in buffers[name]]
                          for name in self.state_names}
        else:
            self.state = None
        self._scratch = None


def _decayed_grad(param, grad, weight_decay: float, out):
    """g + λθ (L2 penalty folded into the gradient), or g itself when λ = 0.

    The caller's gradient is never modified: the sum goes to ``out``.
    """
    if weight_decay == 0:
        return grad
    xp = array_module(param)
    xp.multiply(param, weight_decay, out=out)
    out += grad
    return out


def _check(owner: str, name: str, value, low=0.0, high=None, high_inclusive=False):
    """Raise unless low <= value (and value < high or <= high); returns float(value)."""
    return _checks.number(value, name, low=low, high=high, high_open=not high_inclusive, owner=owner)


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional (Nesterov) momentum.

    Each step, with momentum μ, dampening τ and weight decay λ::

        g  ← g + λ θ                          (if λ ≠ 0)
        b  ← g                                (first step)
        b  ← μ b + (1 - τ) g                  (later steps)
        g  ← g + μ b     if nesterov  else  g ← b      (if μ ≠ 0)
        θ  ← θ - γ g

    The rate multiplies after the buffer (PyTorch's convention): changing γ changes
    the next step at once, while the "v ← μv - γg" form carries the old rate in v.
    Nesterov needs μ > 0 and τ = 0.
    """

    hyperparam_names = ("momentum", "dampening", "nesterov", "weight_decay")
    n_scratch = 2

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(lr)
        self.momentum = _check("SGD", "momentum", momentum)
        self.dampening = float(dampening)
        self.nesterov = bool(nesterov)
        self.weight_decay = _check("SGD", "weight_decay", weight_decay)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("SGD: nesterov=True requires momentum > 0 and dampening = 0, "
                             f"got momentum={self.momentum}, dampening={self.dampening}")
        self.state_names = ("momentum_buffer",) if self.momentum != 0 else ()

    def _coefficients(self, t):
        return {"lr": self.lr, "first_step": t == 1}

    def _update(self, param, grad, state, scratch, coeffs):
        xp = array_module(param)
        g = _decayed_grad(param, grad, self.weight_decay, out=scratch[0])
        work = scratch[1]
        if self.momentum != 0:
            buf = state["momentum_buffer"]
            if coeffs["first_step"]:
                xp.copyto(buf, g)
            else:
                buf *= self.momentum
                if self.dampening == 0:
                    buf += g
                else:
                    xp.multiply(g, 1.0 - self.dampening, out=work)
                    buf += work
            if self.nesterov:
                xp.multiply(buf, self.momentum, out=work)
                work += g
                g = work
            else:
                g = buf
        xp.multiply(g, coeffs["lr"], out=work)
        param -= work


class Adagrad(Optimizer):
    r"""Adagrad: each coordinate's rate shrinks with its accumulated squared gradients.

    With rate decay η, eps ε and weight decay λ, starting from s = initial_accumulator_value::

        g  ← g + λ θ                          (if λ ≠ 0)
        γₜ = γ / (1 + (t - 1) η)
        s  ← s + g²
        θ  ← θ - γₜ g / (√s + ε)
    """

    hyperparam_names = ("lr_decay", "eps", "initial_accumulator_value", "weight_decay")
    state_names = ("sum",)
    n_scratch = 2

    def __init__(self, lr: float = 0.01, lr_decay: float = 0.0, eps: float = 1e-10,
                 initial_accumulator_value: float = 0.0, weight_decay: float = 0.0):
        super().__init__(lr)
        self.lr_decay = _check("Adagrad", "lr_decay", lr_decay)
        self.eps = _check("Adagrad", "eps", eps)
        self.initial_accumulator_value = _check("Adagrad", "initial_accumulator_value",
                                                initial_accumulator_value)
        self.weight_decay = _check("Adagrad", "weight_decay", weight_decay)

    def _init_buffer(self, name, param):
        return array_module(param).full_like(param, self.initial_accumulator_value)

    def _coefficients(self, t):
        return {"lr": self.lr / (1 + (t - 1) * self.lr_decay)}

    def _update(self, param, grad, state, scratch, coeffs):
        xp = array_module(param)
        g = _decayed_grad(param, grad, self.weight_decay, out=scratch[0])
        work = scratch[1]
        total = state["sum"]
        xp.multiply(g, g, out=work)
        total += work
        xp.sqrt(total, out=work)
        work += self.eps
        xp.divide(g, work, out=work)
        work *= coeffs["lr"]
        param -= work


class Adadelta(Optimizer):
    r"""Adadelta: a rate per coordinate from running averages of g² and of the steps.

    With decay ρ, eps ε and weight decay λ, starting from v = u = 0::

        g  ← g + λ θ                          (if λ ≠ 0)
        v  ← ρ v + (1 - ρ) g²
        Δ  = √(u + ε) / √(v + ε) · g
        u  ← ρ u + (1 - ρ) Δ²
        θ  ← θ - γ Δ

    (γ = 1 is the original method, which has no learning rate.)
    """

    hyperparam_names = ("rho", "eps", "weight_decay")
    state_names = ("square_avg", "acc_delta")
    n_scratch = 3

    def __init__(self, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0):
        super().__init__(lr)
        self.rho = _check("Adadelta", "rho", rho, 0.0, 1.0, high_inclusive=True)
        self.eps = _check("Adadelta", "eps", eps)
        self.weight_decay = _check("Adadelta", "weight_decay", weight_decay)

    def _update(self, param, grad, state, scratch, coeffs):
        xp = array_module(param)
        g = _decayed_grad(param, grad, self.weight_decay, out=scratch[0])
        std, delta = scratch[1], scratch[2]
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg *= self.rho
        xp.multiply(g, g, out=std)
        std *= 1.0 - self.rho
        square_avg += std
        xp.add(square_avg, self.eps, out=std)
        xp.sqrt(std, out=std)
        xp.add(acc_delta, self.eps, out=delta)
        xp.sqrt(delta, out=delta)
        delta /= std
        delta *= g
        acc_delta *= self.rho
        xp.multiply(delta, delta, out=std)
        std *= 1.0 - self.rho
        acc_delta += std
        delta *= coeffs["lr"]
        param -= delta


class RMSprop(Optimizer):
    r"""RMSprop: divide the gradient by a running root-mean-square of its history.

    With smoothing α, eps ε, momentum μ and weight decay λ, starting from v = ḡ = b = 0::

        g  ← g + λ θ                          (if λ ≠ 0)
        v  ← α v + (1 - α) g²
        ḡ  ← α ḡ + (1 - α) g ;  ṽ = v - ḡ²     (centered: subtract the squared mean)
        ṽ  = v                                 (not centered)
        b  ← μ b + g / (√ṽ + ε) ;  θ ← θ - γ b    (if μ > 0)
        θ  ← θ - γ g / (√ṽ + ε)                    (if μ = 0)

    ε sits outside the square root and there is no bias correction (as in PyTorch;
    Keras and TensorFlow place ε differently).
    """

    hyperparam_names = ("alpha", "eps", "momentum", "centered", "weight_decay")
    n_scratch = 2

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0,
                 centered: bool = False, weight_decay: float = 0.0):
        super().__init__(lr)
        self.alpha = _check("RMSprop", "alpha", alpha)
        self.eps = _check("RMSprop", "eps", eps)
        self.momentum = _check("RMSprop", "momentum", momentum)
        self.centered = bool(centered)
        self.weight_decay = _check("RMSprop", "weight_decay", weight_decay)
        self.state_names = (("square_avg",) + (("momentum_buffer",) if self.momentum > 0 else ())
                            + (("grad_avg",) if self.centered else ()))

    def _update(self, param, grad, state, scratch, coeffs):
        xp = array_module(param)
        g = _decayed_grad(param, grad, self.weight_decay, out=scratch[0])
        work = scratch[1]
        square_avg = state["square_avg"]
        square_avg *= self.alpha
        xp.multiply(g, g, out=work)
        work *= 1.0 - self.alpha
        square_avg += work
        if self.centered:
            grad_avg = state["grad_avg"]
            xp.subtract(g, grad_avg, out=work)
            work *= 1.0 - self.alpha
            grad_avg += work
            xp.multiply(grad_avg, grad_avg, out=work)
            xp.subtract(square_avg, work, out=work)
            xp.sqrt(work, out=work)
        else:
            xp.sqrt(square_avg, out=work)
        work += self.eps
        xp.divide(g, work, out=work)
        if self.momentum > 0:
            buf = state["momentum_buffer"]
            buf *= self.momentum
            buf += work
            xp.multiply(buf, coeffs["lr"], out=work)
        else:
            work *= coeffs["lr"]
        param -= work


class Adam(Optimizer):
    r"""Adam: momentum on g and a per-coordinate scale from g², both bias-corrected.

    With β₁, β₂, eps ε and weight decay λ, starting from m = v = 0::

        g  ← g + λ θ                          (if λ ≠ 0; L2 folded into g)
        m  ← β₁ m + (1 - β₁) g
        v  ← β₂ v + (1 - β₂) g²
        v̂ₘ ← max(v̂ₘ, v) ;  v ← v̂ₘ below        (amsgrad)
        θ  ← θ - γ / (1 - β₁ᵗ) · m / (√v / √(1 - β₂ᵗ) + ε)

    This is the paper's γ m̂ / (√v̂ + ε) with m̂ = m / (1 - β₁ᵗ), v̂ = v / (1 - β₂ᵗ),
    written as PyTorch computes it: the first correction scales the rate, the second
    divides √v before ε is added. (scikit-learn folds both corrections into the rate
    and leaves ε unscaled, which gives different numbers.)
    With ``decoupled_weight_decay=True`` the decay is AdamW's instead (see AdamW).
    """

    hyperparam_names = ("betas", "eps", "weight_decay", "amsgrad", "decoupled_weight_decay")
    n_scratch = 2

    def __init__(self, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, *, decoupled_weight_decay: bool = False):
        super().__init__(lr)
        name = type(self).__name__
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}") from None
        self.betas = (_check(name, "betas[0]", beta1, 0.0, 1.0), _check(name, "betas[1]", beta2, 0.0, 1.0))
        self.eps = _check(name, "eps", eps)
        self.weight_decay = _check(name, "weight_decay", weight_decay)
        self.amsgrad = bool(amsgrad)
        self.decoupled_weight_decay = bool(decoupled_weight_decay)
        self.state_names = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())

    def _coefficients(self, t):
        beta1, beta2 = self.betas
        return {"lr": self.lr,
                "step_size": self.lr / (1 - beta1 ** t),
                "bias_correction2_sqrt": math.sqrt(1 - beta2 ** t)}

    def _update(self, param, grad, state, scratch, coeffs):
        xp = array_module(param)
        beta1, beta2 = self.betas
        if self.decoupled_weight_decay:
            if self.weight_decay != 0:
                param *= 1.0 - coeffs["lr"] * self.weight_decay
            g = grad
        else:
            g = _decayed_grad(param, grad, self.weight_decay, out=scratch[0])
        work = scratch[1]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg *= beta1
        xp.multiply(g, 1.0 - beta1, out=work)
        exp_avg += work
        exp_avg_sq *= beta2
        xp.multiply(g, g, out=work)
        work *= 1.0 - beta2
        exp_avg_sq += work
        second = exp_avg_sq
        if self.amsgrad:
            second = state["max_exp_avg_sq"]
            xp.maximum(second, exp_avg_sq, out=second)
        # m / (√v / c + ε) · step_size = m / (√v + ε c) · (step_size · c), c = √(1 - β₂ᵗ):
        # the same number with one pass over the arrays fewer.
        correction = coeffs["bias_correction2_sqrt"]
        xp.sqrt(second, out=work)
        work += self.eps * correction
        xp.divide(exp_avg, work, out=work)
        work *= coeffs["step_size"] * correction
        param -= work


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay (decay the weights, not the gradient).

    Each step first shrinks the parameters, scaled by the current rate, then takes a
    plain Adam step (no λ in g)::

        θ  ← θ (1 - γ λ)
        m  ← β₁ m + (1 - β₁) g ;  v ← β₂ v + (1 - β₂) g²   (v̂ₘ ← max(v̂ₘ, v) if amsgrad)
        θ  ← θ - γ / (1 - β₁ᵗ) · m / (√v / √(1 - β₂ᵗ) + ε)

    Default λ = 0.01 (PyTorch's).
    """

    hyperparam_names = ("betas", "eps", "weight_decay", "amsgrad")

    def __init__(self, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01,
                 amsgrad: bool = False):
        super().__init__(lr, betas, eps, weight_decay, amsgrad, decoupled_weight_decay=True)


OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "adadelta": Adadelta, "rmsprop": RMSprop,
              "adam": Adam, "adamw": AdamW}


def get(name, **kwargs) -> Optimizer:
    """An optimizer by name (``"sgd"``, ``"adam"``, ... any case), built with ``kwargs``.

    An ``Optimizer`` instance is returned as it is (then ``kwargs`` must be empty).
    """
    if isinstance(name, Optimizer):
        if kwargs:
            raise TypeError(f"optim.get: got an optimizer instance and extra arguments {sorted(kwargs)}")
        return name
    if not isinstance(name, str) or name.lower() not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)} "
                         "or an nnhp.optim.Optimizer")
    return OPTIMIZERS[name.lower()](**kwargs)


# --- checkpoints as plain arrays ----------------------------------------------------
_META_KEY = "meta"


def state_to_arrays(state_dict: dict) -> dict:
    """Flatten a ``state_dict`` into ``{str: numpy.ndarray}``, storable with ``numpy.savez``.

    Lists of arrays (per-parameter buffers) become entries ``"key/i"`` (or
    ``"key/name/i"`` one dict level down); everything else (numbers, strings, bools,
    None, tuples) is written as JSON into the string entry ``"meta"``. Reading back
    needs no pickle: ``state_from_arrays(dict(numpy.load(path, allow_pickle=False)))``.
    """
    arrays, meta, lists = {}, {}, {}

    def put_list(prefix, values):
        lists[prefix] = len(values)
        for index, value in enumerate(values):
            arrays[f"{prefix}/{index}"] = numpy.array(to_numpy(value), copy=True)

    for key, value in state_dict.items():
        if "/" in key or key == _META_KEY:
            raise ValueError(f"state_to_arrays: key {key!r} may not contain '/' or be {_META_KEY!r}")
        if isinstance(value, dict):
            plain = {}
            for name, inner in value.items():
                if _is_array_list(inner):
                    put_list(f"{key}/{name}", inner)
                else:
                    plain[name] = inner
            meta[key] = plain
        elif _is_array_list(value):
            put_list(key, value)
        else:
            meta[key] = value
    arrays[_META_KEY] = numpy.array(json.dumps({"values": meta, "lists": lists}))
    return arrays


def state_from_arrays(arrays: dict) -> dict:
    """Rebuild the ``state_dict`` that ``state_to_arrays`` flattened (tuples come back as lists)."""
    if _META_KEY not in arrays:
        raise ValueError(f"state_from_arrays: no {_META_KEY!r} entry; not written by state_to_arrays")
    decoded = json.loads(str(numpy.asarray(arrays[_META_KEY])[()]))
    state = decoded["values"]
    for prefix, length in decoded["lists"].items():
        values = [numpy.array(arrays[f"{prefix}/{index}"], copy=True) for index in range(length)]
        key, _, name = prefix.partition("/")
        if name:
            state.setdefault(key, {})[name] = values
        else:
            state[key] = values
    return state


def _is_array_list(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(hasattr(v, "shape") for v in value)
