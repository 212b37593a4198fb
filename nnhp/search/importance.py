"""Hyperparameter importance: which parameters decide whether a trial is among the best.

We use **PED-ANOVA** (Watanabe, Bansal & Hutter, IJCAI 2023) rather than fANOVA (Hutter et al.,
ICML 2014). fANOVA needs a random-forest surrogate (hundreds of lines, slow in NumPy, and its
numbers move with the forest's randomness); PED-ANOVA needs only one-dimensional densities, so
it is a few dozen lines of NumPy, costs milliseconds on a thousand trials, and answers the
question a person asks of a report: *what do the top trials have in common?*

The estimate
------------
Let ``T`` be the completed trials (the *global* set) and ``T_top`` the best ``gamma`` fraction of
them (the *local* set). For each parameter ``d``, with ``p`` the density of its values over
``T`` and ``q`` over ``T_top``, the importance is the Pearson divergence

    I_d = sum_x p(x) * (q(x) / p(x) - 1)^2

-- zero when the best trials look like all trials in ``d`` (it does not matter), large when
they crowd into one region. Numeric parameters get a Gaussian kernel density (Scott's bandwidth)
on a 100-point grid over their range, on a log axis when the values span more than two decades;
strings, booleans and numbers with at most six distinct values are categorical (frequencies,
each choice given one pseudo-count so that ``p`` is never zero).

A finite top set is never exactly like the whole, so ``I_d`` of a pure-noise parameter is
positive. We subtract that bias: the mean divergence of ``n_null`` random subsets of ``T`` the
size of ``T_top`` (a permutation null). A noise parameter then scores about zero, and its
bootstrap interval (``n_bootstrap`` resamples of ``T``, percentiles 2.5 and 97.5, each resample
each corrected by a null of its own, since repeated trials sharpen the densities of the top
set and of random subsets alike) includes zero; a parameter that drives the objective lies well above.

Conditional parameters
----------------------
A parameter absent from a trial's params is *inactive* there (e.g. ``momentum`` when the
optimizer is Adam). Its importance is measured among the trials where it is active only: ``T`` and
``T_top`` are both restricted to them (``T_top`` still being the best ``gamma`` of all completed
trials), and ``n_active`` says how many trials that was. A parameter active in fewer than
``min_trials`` of them gets no score (``value`` is NaN). Whether a conditional branch is taken at
all is measured by its parent (``optimizer``), which is active everywhere.

Multi-fidelity studies
----------------------
Trials at a small budget are ranked by a noisier value. With budgets (Hyperband, BOHB) we use the
largest budget that has at least ``min_trials`` completed trials, and say which (``budget``).

Deterministic: the same trials and ``seed`` give the same numbers, from :func:`importance`,
from ``nnhp importance study.db`` and in ``nnhp report`` (they all call this function).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Importance", "importance", "format_importance"]

_GRID = 100
_MAX_CATEGORIES_FOR_NUMBERS = 6


@dataclass(frozen=True)
class Importance:
    """One parameter's importance: the bias-corrected Pearson divergence ``value``, its bootstrap
    interval ``[low, high]``, and on how many completed trials the parameter was active."""
    name: str
    value: float
    low: float
    high: float
    n_active: int


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _encoder(values: list):
    """A function mapping a parameter's values to either grid cells (numeric, as floats in [0, 1])
    or category codes (ints), and whether it is categorical."""
    if all(_is_number(v) and math.isfinite(v) for v in values) and len(set(values)) > _MAX_CATEGORIES_FOR_NUMBERS:
        x = np.asarray(values, dtype=float)
        if x.min() > 0 and x.max() / x.min() > 100:
            x = np.log(x)
        low, high = x.min(), x.max()
        return (x - low) / (high - low if high > low else 1.0), False
    choices = sorted({repr(v) for v in values})
    return np.array([choices.index(repr(v)) for v in values]), True


def _cells(x: np.ndarray, categorical: bool, n_categories: int, bandwidth: float) -> np.ndarray:
    """The matrix (cells x trials) that turns trial weights into an unnormalised density: one-hot
    rows for categories, a Gaussian kernel on a grid over [0, 1] for numbers. A weight vector ``w``
    (how often each trial counts: 1 or 0 for a subset, the counts of a bootstrap resample) gives
    the density ``cells @ w`` -- so every subset and resample is one matrix product."""
    if categorical:
        return np.eye(n_categories)[:, x]
    grid = np.linspace(0.0, 1.0, _GRID)
    return np.exp(-0.5 * ((grid[:, None] - x[None, :]) / bandwidth) ** 2)


def _divergences(cells: np.ndarray, everyone: np.ndarray, top: np.ndarray, categorical: bool) -> np.ndarray:
    """Pearson divergence sum p (q / p - 1)^2 of each column of ``top`` weights (the density q) from
    the matching column of ``everyone`` weights (the density p)."""
    p, q = cells @ everyone, cells @ top
    if categorical:                 # one pseudo-count per choice, so that p is never zero
        p, q = p + 1.0, q + 1.0
    p, q = p / p.sum(axis=0), q / q.sum(axis=0)
    p = np.maximum(p, 1e-300)
    return np.sum(p * (q / p - 1.0) ** 2, axis=0)


def _null_weights(sample: np.ndarray, n_local: int, n: int, rng, n_null: int) -> np.ndarray:
    """``n_null`` columns of weights, each a random ``n_local`` of the trials listed in ``sample``."""
    return np.stack([np.bincount(sample[rng.permutation(len(sample))[:n_local]], minlength=n)
                     for _ in range(n_null)], axis=1).astype(float)


def _scored_trials(trials, direction: str, min_trials: int):
    complete = [t for t in trials if t.state == "complete" and t.value is not None and math.isfinite(t.value)]
    budgets = sorted({t.budget for t in complete if t.budget is not None}, reverse=True)
    for budget in budgets:
        at_budget = [t for t in complete if t.budget == budget]
        if len(at_budget) >= min_trials:
            return at_budget, budget
    return complete, None


def importance(study, *, gamma: float = 0.1, n_bootstrap: int = 100, n_null: int = 30, seed: int = 0,
               min_trials: int = 10, direction: str | None = None) -> list[Importance]:
    """PED-ANOVA importance of every parameter of ``study`` (a :class:`~nnhp.search.Study`, or a
    dict with ``trials`` and ``direction`` as :func:`nnhp.report.load_studies` returns), most
    important first. See the module docstring for the estimate and its intervals."""
    if not 0 < gamma < 1:
        raise ValueError(f"gamma must be in (0, 1), got {gamma!r}")
    trials = study["trials"] if isinstance(study, dict) else study.trials
    direction = direction or (study["direction"] if isinstance(study, dict) else study.direction)
    scored, _budget = _scored_trials(trials, direction, min_trials)
    if len(scored) < min_trials:
        return []
    values = np.array([t.value for t in scored])
    order = np.argsort(-values if direction == "maximize" else values, kind="stable")
    n_top = max(2, int(round(gamma * len(scored))))
    is_top = np.zeros(len(scored), dtype=bool)
    is_top[order[:n_top]] = True
    rng = np.random.default_rng(seed)
    resamples = [rng.integers(0, len(scored), len(scored)) for _ in range(n_bootstrap)]
    names = sorted({name for t in scored for name in t.params})
    results = []
    for name in names:
        active = np.array([name in t.params for t in scored])
        n_active = int(active.sum())
        top_active = is_top[active]
        if n_active < min_trials or top_active.sum() < 2:
            results.append(Importance(name, math.nan, math.nan, math.nan, n_active))
            continue
        x, categorical = _encoder([t.params[name] for t in scored if name in t.params])
        n_categories = int(x.max()) + 1 if categorical else 0
        n_local = int(top_active.sum())
        # One bandwidth for every density of this parameter, Scott's rule on the top set (floored):
        # with a bandwidth of its own, the all-trials density can be far narrower than the top
        # set's in a sparse corner, and q / p there explodes.
        bandwidth = max(1.06 * max(x[top_active].std(), 1e-3) * n_local ** -0.2, 0.05)
        cells = _cells(x, categorical, n_categories, bandwidth)
        everyone = np.ones((n_active, 1))
        null = _null_weights(np.arange(n_active), n_local, n_active, rng, n_null)
        estimate = (_divergences(cells, everyone, top_active[:, None].astype(float), categorical)[0]
                    - _divergences(cells, np.repeat(everyone, n_null, axis=1), null, categorical).mean())
        index_of = np.cumsum(active) - 1          # trial index -> index among the active trials
        boot, n_null_boot = [], max(5, n_null // 6)
        for sample in resamples:
            sample = index_of[sample[active[sample]]]
            n_top_sample = int(top_active[sample].sum())
            if not 2 <= n_top_sample < len(sample):
                continue
            counts = np.bincount(sample, minlength=n_active).astype(float)
            boot.append((counts, counts * top_active, _null_weights(sample, n_top_sample, n_active, rng, n_null_boot)))
        if boot:
            counts = np.stack([c for c, _, _ in boot], axis=1)
            tops = np.stack([t for _, t, _ in boot], axis=1)
            nulls = np.concatenate([n for _, _, n in boot], axis=1)
            raw = _divergences(cells, counts, tops, categorical)
            null_mean = _divergences(cells, np.repeat(counts, n_null_boot, axis=1), nulls, categorical)
            corrected = raw - null_mean.reshape(len(boot), n_null_boot).mean(axis=1)
            low, high = np.percentile(corrected, [2.5, 97.5])
        else:
            low = high = math.nan
        results.append(Importance(name, float(estimate), float(low), float(high), n_active))
    return sorted(results, key=lambda r: (-r.value if not math.isnan(r.value) else math.inf, r.name))


def format_importance(results: list[Importance]) -> str:
    """The table ``nnhp importance`` prints and the report shows: one row per parameter."""
    if not results:
        return "too few completed trials to measure importance"
    width = max(len("parameter"), *(len(r.name) for r in results))
    lines = [f"{'parameter':<{width}}  {'importance':>10}  {'95% interval':>21}  {'active':>6}"]
    for r in results:
        interval = f"[{r.low:.4f}, {r.high:.4f}]" if not math.isnan(r.low) else "-"
        value = f"{r.value:.4f}" if not math.isnan(r.value) else "-"
        lines.append(f"{r.name:<{width}}  {value:>10}  {interval:>21}  {r.n_active:>6}")
    return "\n".join(lines)
