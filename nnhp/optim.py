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
All operations are elementwise, and each class's ``_update`` is its docstring's
formulas, line for line.

How a step runs
---------------
``Optimizer.step`` does the bookkeeping once (``begin_step``: check the arrays, create
the state on the first step, count the step, compute the step's scalar coefficients
such as bias corrections), then calls the one method that holds the math,
``_update(param, grad, state, coeffs)``, on each parameter array flattened to 1-D.
``state`` maps names (``"exp_avg"``, ...) to this array's running buffers.

The engine keeps all parameters in one flat buffer, so a whole-model step is one
``_update`` over ~10^6 numbers. On NumPy that array is fed to ``_update`` in blocks of
``block_size`` elements, so that the temporaries of the block's dozen operations stay in
the CPU cache instead of each making a pass over main memory (measured on a 2-core EPYC:
Adam over 4M float32 parameters 17 ms -> 12 ms). The update is elementwise, so the
numbers are exactly those of one call on the whole array.

The fused kernels (``nnhp.fused``) run the same update in one compiled pass: they reuse
``begin_step`` and ``flat_arrays`` and replace only ``_update``. Nothing here knows them.

(Over ~450 lines: six optimizers, each a docstring of formulas and an ``_update`` that
repeats them. Their ``state_dict`` is written to and read from plain arrays by
``nnhp.checkpoint``.)
"""
from __future__ import annotations

import math

import numpy

from . import _checks
from .backend import array_module


class Optimizer:
    """Base class: learning rate, step count, per-parameter state, checkpoints.

    Subclasses declare ``hyperparam_names`` (their constructor arguments besides
    ``lr``) and ``state_names`` (buffers kept per parameter array), and implement
    ``_update`` (and, if the step's scalars depend on t, ``_coefficients``).

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
    #: elements per ``_update`` call on NumPy (2**18 float32 = 1 MiB per array, so a
    #: block's temporaries stay in the CPU cache; much smaller blocks lose more to the
    #: Python overhead of each NumPy call than they gain). None: whole arrays.
    block_size: int | None = 1 << 18

    def __init__(self, lr: float):
        self.lr = lr
        self.initial_lr = self.lr
        self.step_count = 0
        self.state: dict[str, list] | None = None

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
        coeffs = self.begin_step(params, grads)
        for param, grad, state in self.flat_arrays(params, grads):
            for block in self._blocks(param):
                self._update(param[block], grad[block], {name: buffer[block] for name, buffer in state.items()},
                             coeffs)

    def begin_step(self, params: list, grads: list) -> dict:
        """The bookkeeping of a step: check the arrays, create (or adopt) the state,
        count the step. Returns the step's coefficients (``_coefficients``)."""
        self._check_arrays(params, grads)
        self._prepare_state(params)
        self.step_count += 1
        return self._coefficients(self.step_count)

    def flat_arrays(self, params: list, grads: list):
        """(param, grad, state) for each parameter array, all flattened to 1-D views."""
        for index, (param, grad) in enumerate(zip(params, grads)):
            yield (param.reshape(-1), grad.reshape(-1),
                   {name: buffers[index].reshape(-1) for name, buffers in self.state.items()})

    def _blocks(self, param) -> list[slice]:
        """The pieces ``step`` updates one at a time: ``block_size`` elements on NumPy, else all."""
        size = param.size
        block = self.block_size if (self.block_size and array_module(param) is numpy) else max(size, 1)
        return [slice(start, start + block) for start in range(0, size, block)]

    def _coefficients(self, t: int) -> dict:
        """The scalars of step ``t`` shared by every element (rates, corrections)."""
        return {"lr": self.lr}

    def _update(self, param, grad, state, coeffs) -> None:
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
            return
        xp = array_module(params[0])
        dtype = params[0].dtype
        if self.state is None:
            self.state = {name: [self._init_buffer(name, param) for param in params]
                          for name in self.state_names}
            return
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


def _decayed(param, grad, weight_decay: float):
    """g + λθ (the L2 penalty folded into the gradient), or g itself when λ = 0.

    A new array: the caller's gradient is never modified."""
    return grad + weight_decay * param if weight_decay != 0 else grad


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

    def _update(self, param, grad, state, coeffs):
        g = _decayed(param, grad, self.weight_decay)
        if self.momentum != 0:
            buf = state["momentum_buffer"]
            if coeffs["first_step"]:
                buf[...] = g
            else:
                buf[...] = self.momentum * buf + (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        param -= coeffs["lr"] * g


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

    def _update(self, param, grad, state, coeffs):
        xp = array_module(param)
        g = _decayed(param, grad, self.weight_decay)
        total = state["sum"]
        total += g * g
        param -= coeffs["lr"] * (g / (xp.sqrt(total) + self.eps))


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

    def __init__(self, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0):
        super().__init__(lr)
        self.rho = _check("Adadelta", "rho", rho, 0.0, 1.0, high_inclusive=True)
        self.eps = _check("Adadelta", "eps", eps)
        self.weight_decay = _check("Adadelta", "weight_decay", weight_decay)

    def _update(self, param, grad, state, coeffs):
        xp = array_module(param)
        g = _decayed(param, grad, self.weight_decay)
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg[...] = self.rho * square_avg + (1 - self.rho) * (g * g)
        delta = xp.sqrt(acc_delta + self.eps) / xp.sqrt(square_avg + self.eps) * g
        acc_delta[...] = self.rho * acc_delta + (1 - self.rho) * (delta * delta)
        param -= coeffs["lr"] * delta


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

    def _update(self, param, grad, state, coeffs):
        xp = array_module(param)
        g = _decayed(param, grad, self.weight_decay)
        square_avg = state["square_avg"]
        square_avg[...] = self.alpha * square_avg + (1 - self.alpha) * (g * g)
        if self.centered:
            grad_avg = state["grad_avg"]
            grad_avg += (1 - self.alpha) * (g - grad_avg)    # = α ḡ + (1 - α) g, as torch's lerp_ rounds it
            variance = square_avg - grad_avg * grad_avg
        else:
            variance = square_avg
        scaled = g / (xp.sqrt(variance) + self.eps)
        if self.momentum > 0:
            buf = state["momentum_buffer"]
            buf[...] = self.momentum * buf + scaled
            scaled = buf
        param -= coeffs["lr"] * scaled


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

    def _update(self, param, grad, state, coeffs):
        xp = array_module(param)
        beta1, beta2 = self.betas
        if self.decoupled_weight_decay:
            if self.weight_decay != 0:
                param *= 1 - coeffs["lr"] * self.weight_decay
            g = grad
        else:
            g = _decayed(param, grad, self.weight_decay)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * (g * g)
        if self.amsgrad:
            v_max = state["max_exp_avg_sq"]
            v_max[...] = xp.maximum(v_max, v)
            v = v_max
        denominator = xp.sqrt(v) / coeffs["bias_correction2_sqrt"] + self.eps
        param -= coeffs["step_size"] * (m / denominator)


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
