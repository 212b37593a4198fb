r"""The benchmark's arithmetic: time to a target, AlgoPerf's tuning rule, performance profiles, the score.

Pure functions on plain numbers, so each can be checked by hand.

Time to target
--------------
A run is evaluated at points ``(t_1, m_1), (t_2, m_2), ...`` (steps or seconds, and the
validation metric, lower is better). Its time to the target ``m*`` is the first ``t_k`` with
``m_k <= m*``, and ``inf`` when no point gets there: a miss.

AlgoPerf's external-tuning rule (Dahl et al., 2023)
---------------------------------------------------
An optimizer is tuned in ``S`` independent studies of ``T`` trials each. A study's time is its
*fastest* trial's; the optimizer's time on the workload is the *median over studies*; a miss
is ``inf`` and stays one through both steps (a median over mostly-missed studies is a miss).

Targets
-------
The target of a workload is set from the best tuned result, as the issue and AlgoPerf ask:
per optimizer, the median over the seed reruns of its best tuned configuration's final
validation metric; the target is the lowest of those over the optimizers
(:func:`derive_target`). Reruns, not the tuning trials themselves: the best of ``S x T``
trials is the luckiest draw of many (the winner's curse), a target no rerun of the same
configuration reaches; the median over fresh seeds is what the best optimizer reliably gets.

Performance profiles (Dolan & Moré, 2002)
-----------------------------------------
With ``t(o, w)`` the time of optimizer ``o`` on workload ``w``, its ratio to the fastest is

    r(o, w) = t(o, w) / min_o' t(o', w)          (inf for a miss, and for every o if all miss)

and the profile is the fraction of workloads it solves within a factor ``tau`` of the best:

    rho_o(tau) = |{w : r(o, w) <= tau}| / |W|

AlgoPerf's score integrates the profile from 1 to ``tau_max = 4`` and divides by its length,

    score_o = 1/(tau_max - 1) * integral_1^tau_max rho_o(tau) dtau,

which is 1 for an optimizer fastest everywhere and 0 for one never within 4x. ``rho_o`` is a
step function, so the integral is exact: each workload with ``r <= tau_max`` adds
``(tau_max - r) / (tau_max - 1) / |W|``.
"""
from __future__ import annotations

import math

import numpy

__all__ = ["time_to_target", "study_time", "workload_time", "derive_target", "performance_ratios",
           "performance_profile", "algoperf_score", "median_iqr", "TAU_MAX"]

TAU_MAX = 4.0


def time_to_target(times, values, target: float) -> float:
    """The first time whose metric is at or below ``target``; ``inf`` if none is (module docstring)."""
    times, values = list(times), list(values)
    if len(times) != len(values):
        raise ValueError(f"times and values differ in length: {len(times)} and {len(values)}")
    for time, value in zip(times, values):
        if value is not None and math.isfinite(value) and value <= target:
            return float(time)
    return math.inf


def study_time(trial_times) -> float:
    """A study's time to target: its fastest trial's (``inf`` when every trial missed, or none ran)."""
    return min((float(t) for t in trial_times), default=math.inf)


def workload_time(study_times) -> float:
    """An optimizer's time on a workload: the median of its studies' times, misses (``inf``) included."""
    study_times = [float(t) for t in study_times]
    if not study_times:
        return math.inf
    return float(numpy.median(study_times))


def derive_target(finals_by_optimizer: dict) -> float:
    """The target from ``{optimizer: [final validation metric of each seed rerun]}``: the lowest,
    over optimizers, of the median over seeds (misses, ``inf``, count in the median). ``nan``
    when nothing finished."""
    medians = []
    for values in finals_by_optimizer.values():
        values = [float(v) for v in values if v is not None]
        if values:
            medians.append(float(numpy.median(values)))
    finite = [m for m in medians if math.isfinite(m)]
    return min(finite) if finite else math.nan


def performance_ratios(times: dict) -> dict:
    """``{optimizer: {workload: time}}`` -> ``{optimizer: {workload: r(o, w)}}`` (module docstring).
    Every optimizer must list the same workloads."""
    optimizers = list(times)
    if not optimizers:
        return {}
    workloads = list(times[optimizers[0]])
    for name in optimizers:
        if sorted(times[name]) != sorted(workloads):
            raise ValueError(f"optimizer {name!r} has times for {sorted(times[name])}, "
                             f"expected the same workloads as {optimizers[0]!r}: {sorted(workloads)}")
    ratios = {name: {} for name in optimizers}
    for workload in workloads:
        best = min(float(times[name][workload]) for name in optimizers)
        for name in optimizers:
            time = float(times[name][workload])
            if not math.isfinite(best) or not math.isfinite(time):
                ratios[name][workload] = math.inf
            elif best <= 0:
                ratios[name][workload] = 1.0 if time <= 0 else math.inf
            else:
                ratios[name][workload] = time / best
    return ratios


def performance_profile(ratios: dict, taus) -> dict:
    """``{optimizer: [rho(tau) for tau in taus]}``: the fraction of workloads within ``tau`` of the best."""
    profile = {}
    for name, by_workload in ratios.items():
        values = numpy.array(list(by_workload.values()), dtype=float)
        profile[name] = [float(numpy.mean(values <= tau)) if values.size else 0.0 for tau in taus]
    return profile


def algoperf_score(ratios: dict, tau_max: float = TAU_MAX) -> dict:
    """``{optimizer: score}``: the integral of its profile over ``[1, tau_max]`` over ``tau_max - 1``."""
    if not tau_max > 1:
        raise ValueError(f"tau_max must exceed 1, got {tau_max!r}")
    scores = {}
    for name, by_workload in ratios.items():
        values = [float(r) for r in by_workload.values()]
        inside = [(tau_max - max(r, 1.0)) / (tau_max - 1.0) for r in values if r <= tau_max]
        scores[name] = sum(inside) / len(values) if values else 0.0
    return scores


def median_iqr(values) -> tuple[float, float, float]:
    """``(median, 25th percentile, 75th percentile)`` of the finite values; nans when there are none."""
    values = numpy.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if not values.size:
        return math.nan, math.nan, math.nan
    low, median, high = numpy.percentile(values, [25, 50, 75])
    return float(median), float(low), float(high)
