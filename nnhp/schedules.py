"""Learning-rate schedules: the rate as a function of the step count.

A schedule is a function ``schedule(step, base_lr) -> lr``: ``step`` counts from 0 in
the schedule's ``unit`` -- ``"epoch"`` (the default) or ``"batch"`` -- and ``base_lr``
is the rate the optimizer was built with. ``nnhp.fit`` sets ``optimizer.lr`` from it
at the start of every epoch (unit ``"epoch"``) or before every batch (unit
``"batch"``, step = epoch · batches_per_epoch + batch)::

    schedule = nnhp.schedules.CosineDecay(T_max=50)
    nnhp.fit(model, X, y, optimizer=nnhp.optim.SGD(lr=0.1, momentum=0.9), schedule=schedule, epochs=50)

The torch-named schedules give PyTorch's ``torch.optim.lr_scheduler`` rates step for
step (written in closed form here, where torch multiplies recursively):
StepDecay = StepLR, MultiStepDecay = MultiStepLR, ExponentialDecay (decay_steps=1) =
ExponentialLR, CosineDecay = CosineAnnealingLR, OneCycle = OneCycleLR (its rate),
ReduceOnPlateau = ReduceLROnPlateau. ExponentialDecay and InverseTimeDecay use the
Keras formulas (``decay_steps``, ``staircase``).

Only ReduceOnPlateau has state (it reacts to a monitored metric through ``observe``);
the others are pure functions of the step.
"""
from __future__ import annotations

import bisect
import math

from . import _checks

UNITS = ("epoch", "batch")


class Schedule:
    """Base class: ``unit``, argument checks, and the (empty) state of a pure schedule."""

    def __init__(self, *, unit: str = "epoch"):
        if unit not in UNITS:
            raise ValueError(f"{type(self).__name__}: unit must be one of {', '.join(UNITS)}, got {unit!r}")
        self.unit = unit

    def __call__(self, step, base_lr) -> float:
        """The learning rate for ``step`` (counted from 0 in ``self.unit``)."""
        step = _check_step(type(self).__name__, step)
        base_lr = _check_number(type(self).__name__, "base_lr", base_lr, low=0.0)
        return float(self.rate(step, base_lr))

    def rate(self, step, base_lr: float) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in vars(self).items() if not key.startswith("_"))
        return f"{type(self).__name__}({args})"

    def state_dict(self) -> dict:
        """Nothing changes while a pure schedule runs; only its type is recorded."""
        return {"type": type(self).__name__}

    def load_state_dict(self, state: dict) -> None:
        if state.get("type") != type(self).__name__:
            raise ValueError(f"cannot load a {state.get('type')!r} state into a {type(self).__name__}")


def _check_step(owner, step):
    if isinstance(step, bool):
        raise TypeError(f"{owner}: step must be a number, got {step!r}")
    try:
        step = int(step.__index__()) if hasattr(step, "__index__") else float(step)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: step must be a number, got {step!r}") from None
    if not (math.isfinite(step) and step >= 0):
        raise ValueError(f"{owner}: step must be >= 0, got {step}")
    return step


def _check_number(owner, name, value, low=None, high=None, low_open=False, high_open=False):
    return _checks.number(value, name, low=low, high=high, low_open=low_open, high_open=high_open, owner=owner)


def _check_int(owner, name, value, low):
    return _checks.integer(value, name, low=low, owner=owner)


class Constant(Schedule):
    """lr = base_lr at every step."""

    def rate(self, step, base_lr):
        return base_lr


class StepDecay(Schedule):
    r"""Multiply the rate by γ every ``step_size`` steps (torch ``StepLR``)::

        lr(s) = base_lr · γ^⌊s / step_size⌋
    """

    def __init__(self, step_size: int, gamma: float = 0.1, *, unit: str = "epoch"):
        super().__init__(unit=unit)
        self.step_size = _check_int("StepDecay", "step_size", step_size, 1)
        self.gamma = _check_number("StepDecay", "gamma", gamma, low=0.0, low_open=True)

    def rate(self, step, base_lr):
        return base_lr * self.gamma ** (step // self.step_size)


class MultiStepDecay(Schedule):
    r"""Multiply the rate by γ at each milestone (torch ``MultiStepLR``)::

        lr(s) = base_lr · γ^(number of milestones ≤ s)

    A milestone listed twice counts twice, as in PyTorch.
    """

    def __init__(self, milestones, gamma: float = 0.1, *, unit: str = "epoch"):
        super().__init__(unit=unit)
        try:
            milestones = list(milestones)
        except TypeError:
            raise TypeError(f"MultiStepDecay: milestones must be a list of integers, got {milestones!r}") from None
        self.milestones = sorted(_check_int("MultiStepDecay", "milestone", m, 0) for m in milestones)
        self.gamma = _check_number("MultiStepDecay", "gamma", gamma, low=0.0, low_open=True)

    def rate(self, step, base_lr):
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, step)


class _KerasDecay(Schedule):
    """Shared by the Keras-style decays: ``decay_rate`` applied per ``decay_steps`` steps.

    The progress is p = s / decay_steps, or ⌊s / decay_steps⌋ when ``staircase`` (the
    rate then changes only every decay_steps steps).
    """

    #: whether decay_rate = 0 is allowed (it is not for a base of a power)
    zero_rate_allowed = False

    def __init__(self, decay_rate: float, decay_steps: int = 1, staircase: bool = False, *, unit: str = "epoch"):
        super().__init__(unit=unit)
        name = type(self).__name__
        self.decay_rate = _check_number(name, "decay_rate", decay_rate, low=0.0, low_open=not self.zero_rate_allowed)
        self.decay_steps = _check_number(name, "decay_steps", decay_steps, low=0.0, low_open=True)
        self.staircase = bool(staircase)

    def _progress(self, step) -> float:
        progress = step / self.decay_steps
        return math.floor(progress) if self.staircase else progress


class ExponentialDecay(_KerasDecay):
    r"""Exponential decay, Keras's formula (with decay_steps = 1, torch ``ExponentialLR``)::

        p     = s / decay_steps          (⌊s / decay_steps⌋ when staircase)
        lr(s) = base_lr · decay_rate^p
    """

    def rate(self, step, base_lr):
        return base_lr * self.decay_rate ** self._progress(step)


class InverseTimeDecay(_KerasDecay):
    r"""Inverse-time decay, Keras's formula::

        p     = s / decay_steps          (⌊s / decay_steps⌋ when staircase)
        lr(s) = base_lr / (1 + decay_rate · p)
    """

    zero_rate_allowed = True

    def rate(self, step, base_lr):
        return base_lr / (1 + self.decay_rate * self._progress(step))


class CosineDecay(Schedule):
    r"""Cosine annealing from base_lr to η_min over T_max steps (torch ``CosineAnnealingLR``)::

        lr(s) = η_min + (base_lr - η_min) · (1 + cos(π s / T_max)) / 2

    Not clamped: past T_max the rate rises again (a period of 2 T_max), as in PyTorch.
    """

    def __init__(self, T_max: int, eta_min: float = 0.0, *, unit: str = "epoch"):
        super().__init__(unit=unit)
        self.T_max = _check_number("CosineDecay", "T_max", T_max, low=0.0, low_open=True)
        self.eta_min = _check_number("CosineDecay", "eta_min", eta_min, low=0.0)

    def rate(self, step, base_lr):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * step / self.T_max)) / 2


class WarmupCosine(Schedule):
    r"""Linear warm-up to base_lr over ``warmup_steps``, then cosine decay to η_min at T_max::

        lr(s) = base_lr · (s + 1) / (w + 1)                                    s < w
        lr(s) = η_min + (base_lr - η_min) · (1 + cos(π (s - w) / (T_max - w))) / 2   w ≤ s ≤ T_max
        lr(s) = η_min                                                          s > T_max

    with w = warmup_steps. The ramp never uses a zero rate and meets the peak at s = w;
    with w = 0 this is CosineDecay up to T_max (held at η_min afterwards: a warm-up
    schedule describes one training run, so it does not restart).
    """

    def __init__(self, warmup_steps: int, T_max: int, eta_min: float = 0.0, *, unit: str = "epoch"):
        super().__init__(unit=unit)
        self.warmup_steps = _check_int("WarmupCosine", "warmup_steps", warmup_steps, 0)
        self.T_max = _check_int("WarmupCosine", "T_max", T_max, 1)
        if self.T_max <= self.warmup_steps:
            raise ValueError(f"WarmupCosine: T_max ({self.T_max}) must exceed warmup_steps ({self.warmup_steps})")
        self.eta_min = _check_number("WarmupCosine", "eta_min", eta_min, low=0.0)

    def rate(self, step, base_lr):
        warmup = self.warmup_steps
        if step < warmup:
            return base_lr * (step + 1) / (warmup + 1)
        if step >= self.T_max:
            return self.eta_min
        progress = (step - warmup) / (self.T_max - warmup)
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * progress)) / 2


class OneCycle(Schedule):
    r"""The one-cycle policy: up to max_lr, then far below the start (torch ``OneCycleLR``).

    The rate ignores base_lr: it starts at lr₀ = max_lr / div_factor and ends at
    lr_min = lr₀ / final_div_factor. With N = total_steps and phase boundaries
    e₁ = pct_start · N - 1, e₂ = N - 1 (PyTorch's, to the step)::

        s ≤ e₁ :  lr = anneal(lr₀, max_lr, s / e₁)
        s > e₁ :  lr = anneal(max_lr, lr_min, (s - e₁) / (e₂ - e₁))

    where anneal(a, b, p) = b + (a - b)(1 + cos π p) / 2 ("cos") or a + (b - a) p
    ("linear"). ``three_phase=True`` goes max_lr → lr₀ between e₁ and
    e₂' = 2 pct_start · N - 2 and then lr₀ → lr_min until N - 1. Steps past N are an
    error, as in PyTorch (size total_steps to the whole run). Momentum cycling is
    not part of this schedule.
    """

    def __init__(self, total_steps: int, max_lr: float, pct_start: float = 0.3, *, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, anneal_strategy: str = "cos", three_phase: bool = False,
                 unit: str = "epoch"):
        super().__init__(unit=unit)
        self.total_steps = _check_int("OneCycle", "total_steps", total_steps, 1)
        self.max_lr = _check_number("OneCycle", "max_lr", max_lr, low=0.0)
        self.pct_start = _check_number("OneCycle", "pct_start", pct_start, low=0.0, high=1.0)
        self.div_factor = _check_number("OneCycle", "div_factor", div_factor, low=0.0, low_open=True)
        self.final_div_factor = _check_number("OneCycle", "final_div_factor", final_div_factor,
                                              low=0.0, low_open=True)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycle: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self.three_phase = bool(three_phase)

    def _phases(self):
        """(end step, start rate, end rate) of each phase, as PyTorch lays them out."""
        initial = self.max_lr / self.div_factor
        minimum = initial / self.final_div_factor
        up_end = self.pct_start * self.total_steps - 1
        last = self.total_steps - 1
        if self.three_phase:
            return [(up_end, initial, self.max_lr),
                    (2 * self.pct_start * self.total_steps - 2, self.max_lr, initial),
                    (last, initial, minimum)]
        return [(up_end, initial, self.max_lr), (last, self.max_lr, minimum)]

    def _anneal(self, start, end, fraction):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)
        return (end - start) * fraction + start

    def rate(self, step, base_lr):
        if step > self.total_steps:
            raise ValueError(f"OneCycle: step {step} is past total_steps={self.total_steps}; "
                             "set total_steps to the number of steps of the whole run")
        phases = self._phases()
        phase_start = 0.0
        for index, (phase_end, start, end) in enumerate(phases):
            if step <= phase_end or index == len(phases) - 1:
                length = phase_end - phase_start
                # A phase of zero length (PyTorch divides by zero there) has ended.
                fraction = (step - phase_start) / length if length != 0 else 1.0
                return self._anneal(start, end, fraction)
            phase_start = phase_end
        raise AssertionError("unreachable")


class ReduceOnPlateau(Schedule):
    r"""Cut the rate by ``factor`` when a monitored metric stops improving (torch ``ReduceLROnPlateau``).

    Call ``observe(metric)`` once per epoch (``nnhp.fit`` does, with the history entry
    named by ``monitor``: by default "val_loss" when there is validation data, else
    "loss"; give ``mode="max"`` with an accuracy); ``schedule(step, base_lr)`` returns the current
    rate, starting at base_lr. A metric improves on the best so far when (mode "min")::

        rel:  metric < best · (1 - threshold)        abs:  metric < best - threshold

    (mode "max": metric > best · (1 + threshold), metric > best + threshold). After more
    than ``patience`` epochs without improvement the rate becomes
    max(lr · factor, min_lr) -- unless that changes it by no more than ``eps`` -- and
    then ``cooldown`` epochs pass in which bad epochs are not counted.
    """

    def __init__(self, factor: float = 0.1, patience: int = 10, min_lr: float = 0.0, mode: str = "min",
                 threshold: float = 1e-4, *, threshold_mode: str = "rel", cooldown: int = 0, eps: float = 1e-8,
                 unit: str = "epoch", monitor: str | None = None):
        super().__init__(unit=unit)
        self.monitor = monitor
        self.factor = _check_number("ReduceOnPlateau", "factor", factor, low=0.0, high=1.0, high_open=True)
        self.patience = _check_int("ReduceOnPlateau", "patience", patience, 0)
        self.min_lr = _check_number("ReduceOnPlateau", "min_lr", min_lr, low=0.0)
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceOnPlateau: mode must be 'min' or 'max', got {mode!r}")
        self.mode = mode
        self.threshold = _check_number("ReduceOnPlateau", "threshold", threshold, low=0.0)
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceOnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.threshold_mode = threshold_mode
        self.cooldown = _check_int("ReduceOnPlateau", "cooldown", cooldown, 0)
        self.eps = _check_number("ReduceOnPlateau", "eps", eps, low=0.0)
        self.reset()

    def reset(self) -> None:
        """Forget the metric history and every reduction."""
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.current_lr: float | None = None   # set from base_lr on the first call
        self._base_lr: float | None = None
        self._pending_reductions = 0            # reductions observed before any call

    def _is_better(self, metric: float) -> bool:
        if self.mode == "min":
            bound = self.best * (1 - self.threshold) if self.threshold_mode == "rel" else self.best - self.threshold
            return metric < bound
        bound = self.best * (1 + self.threshold) if self.threshold_mode == "rel" else self.best + self.threshold
        return metric > bound

    def observe(self, metric) -> None:
        """Record one epoch's monitored metric; may reduce the rate."""
        metric = float(metric)
        if self._is_better(metric):
            self.best = metric
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during cooldown do not count
        if self.num_bad_epochs > self.patience:
            if self.current_lr is None:
                self._pending_reductions += 1
            else:
                self._reduce()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

    def _reduce(self) -> None:
        reduced = max(self.current_lr * self.factor, self.min_lr)
        if self.current_lr - reduced > self.eps:
            self.current_lr = reduced

    def rate(self, step, base_lr):
        if self.current_lr is None or base_lr != self._base_lr:
            self._base_lr = base_lr
            self.current_lr = base_lr
            for _ in range(self._pending_reductions):
                self._reduce()
            self._pending_reductions = 0
        return self.current_lr

    def state_dict(self) -> dict:
        return {"type": "ReduceOnPlateau", "best": self.best, "num_bad_epochs": self.num_bad_epochs,
                "cooldown_counter": self.cooldown_counter, "current_lr": self.current_lr,
                "base_lr": self._base_lr, "pending_reductions": self._pending_reductions}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.best = float(state["best"])
        self.num_bad_epochs = int(state["num_bad_epochs"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.current_lr = None if state["current_lr"] is None else float(state["current_lr"])
        self._base_lr = None if state["base_lr"] is None else float(state["base_lr"])
        self._pending_reductions = int(state.get("pending_reductions", 0))


SCHEDULES = {
    "constant": Constant,
    "step": StepDecay,
    "multistep": MultiStepDecay,
    "exponential": ExponentialDecay,
    "inverse_time": InverseTimeDecay,
    "cosine": CosineDecay,
    "warmup_cosine": WarmupCosine,
    "onecycle": OneCycle,
    "reduce_on_plateau": ReduceOnPlateau,
}


def get(name, **kwargs) -> Schedule | None:
    """A schedule by name (``"cosine"``, ``"onecycle"``, ... or the class name, any case).

    A ``Schedule`` instance is returned as it is, and None stays None (no schedule).
    """
    if name is None or isinstance(name, Schedule):
        if kwargs:
            raise TypeError(f"schedules.get: extra arguments {sorted(kwargs)} need a schedule name")
        return name
    if isinstance(name, str):
        key = name.lower().replace("-", "_")
        by_class = {cls.__name__.lower(): cls for cls in SCHEDULES.values()}
        cls = SCHEDULES.get(key) or by_class.get(key.replace("_", ""))
        if cls is not None:
            return cls(**kwargs)
    raise ValueError(f"unknown schedule {name!r}; expected one of {', '.join(SCHEDULES)} "
                     "or an nnhp.schedules.Schedule")
