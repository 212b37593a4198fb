"""Hyperband and successive halving: spend few epochs by stopping bad configurations early.

Most configurations are bad, and most bad configurations look bad after a few epochs.
*Successive halving* (Jamieson & Talwalkar, 2016) exploits that: train ``n``
configurations for a small budget ``r``, keep the best ``1/eta`` of them, give the
survivors ``eta`` times the budget, and repeat until one configuration has the full
budget. With ``n = 81, r = 1, eta = 3`` the rungs are 81 configs @ 1 epoch, 27 @ 3,
9 @ 9, 3 @ 27, 1 @ 81: 405 epochs instead of 81 * 81 = 6561 for training all fully.

Its weak spot is the trade-off it fixes in advance: many configurations on a small
budget (aggressive; fine if early epochs predict final quality) or few on a large one
(safe; fine if they do not). *Hyperband* (Li et al., "Hyperband: A Novel Bandit-Based
Approach to Hyperparameter Optimization", JMLR 18, 2018) hedges by running successive
halving in ``s_max + 1`` *brackets*, from the most aggressive to plain random search
(Algorithm 1 and Table 1 of the paper; :func:`hyperband_brackets`). One pass over all
brackets is a Hyperband *iteration*; it repeats while the trial budget allows.

Warm-started promotions. Here ``trial.budget`` is the total budget (epochs) the
configuration reaches in its rung: 1, 3, 9, 27, 81. A promoted configuration is a new
trial whose ``parent_id`` is the trial it continues; the objective gets the parent's
saved checkpoint as ``trial.checkpoint`` (weights and optimizer state) and trains only
the epochs from ``parent.budget`` to ``trial.budget``. :func:`budget_spent` counts the
epochs actually spent that way (a fresh trial costs ``budget``, a continued one
``budget - parent.budget``).

Both searchers follow the Searcher protocol of :mod:`nnhp.search.study`: ``ask`` returns
a Proposal (params, budget, parent_id) or None once done; ``tell`` is informational.
"""
from __future__ import annotations

import math

import numpy as np

from .searcher import Proposal, Searcher

__all__ = ["Hyperband", "SuccessiveHalving", "hyperband_brackets", "successive_halving_rungs",
           "max_bracket", "budget_spent"]

# ------------------------------------------------------------------ the schedule

def _check_schedule_args(max_budget, eta, min_budget):
    if not (isinstance(eta, int) or float(eta).is_integer()) or eta < 2:
        raise ValueError(f"eta must be an integer >= 2, got {eta!r}")
    if min_budget <= 0 or max_budget < min_budget:
        raise ValueError(f"need 0 < min_budget <= max_budget, got min_budget={min_budget!r}, "
                         f"max_budget={max_budget!r}")
    return int(eta)


def max_bracket(max_budget: float, eta: int = 3, min_budget: float = 1) -> int:
    """``s_max = floor(log_eta(R / r_min))``, computed without floating-point log.

    (``math.log(243, 3)`` is 4.999999999999999, so a float log would lose a bracket.)
    """
    eta = _check_schedule_args(max_budget, eta, min_budget)
    s_max = 0
    while min_budget * eta ** (s_max + 1) <= max_budget * (1 + 1e-12):
        s_max += 1
    return s_max


def successive_halving_rungs(n: int, s: int, eta: int = 3,
                             max_budget: float = 81) -> list[tuple[int, float]]:
    """The rungs of one successive-halving run: ``[(n_i, r_i) for i = 0..s]``.

    Start ``n`` configurations at budget ``r = max_budget eta^-s``; at rung i keep
    ``n_i = floor(n eta^-i)`` of them, each trained to ``r_i = r eta^i``: the best
    ``1/eta`` survive each round and get ``eta`` times the budget, and the last rung
    reaches ``max_budget``. (``r_i`` is computed as ``max_budget / eta^(s-i)`` so that
    the last rung is exactly ``max_budget``; integral budgets are returned as ints.)
    """
    return [(n // eta ** i, _tidy(max_budget / eta ** (s - i))) for i in range(s + 1)]


def _tidy(budget: float):
    """1.0 -> 1 (budgets are epochs, usually whole); 1.2345 stays a float."""
    rounded = round(budget)
    return int(rounded) if abs(budget - rounded) < 1e-9 * max(1.0, abs(budget)) else float(budget)


def hyperband_brackets(max_budget: float = 81, eta: int = 3,
                       min_budget: float = 1) -> list[list[tuple[int, float]]]:
    """The bracket table of Hyperband (Li et al., JMLR 2018, Algorithm 1 / Table 1).

    With ``R = max_budget / min_budget`` (the largest budget in units of the smallest),
    ``s_max = floor(log_eta R)`` and ``B = (s_max + 1) R``. Bracket ``s = s_max, ..., 0``
    starts ``n = ceil(B/R * eta^s / (s+1))`` configurations at ``r = max_budget eta^-s``
    and runs successive halving on them. Every bracket spends about ``B`` budget; the
    most aggressive one (``s = s_max``) tries many configurations on a tiny budget, the
    last (``s = 0``) is plain random search at the full budget. Returns, per bracket in
    that order, the rungs ``[(n_i, r_i), ...]``; for R=81, eta=3::

        s=4: 81@1  27@3  9@9  3@27  1@81
        s=3: 34@3  11@9  3@27 1@81
        s=2: 15@9  5@27  1@81
        s=1:  8@27 2@81
        s=0:  5@81
    """
    eta = _check_schedule_args(max_budget, eta, min_budget)
    s_max = max_bracket(max_budget, eta, min_budget)
    brackets = []
    for s in range(s_max, -1, -1):
        n = -(-(s_max + 1) * eta ** s // (s + 1))          # integer ceil, no float rounding
        brackets.append(successive_halving_rungs(n, s, eta, max_budget))
    return brackets


def budget_spent(trials) -> float:
    """Total budget (epochs) the trials consumed, counting a continued trial's extra epochs only.

    A trial with a parent (``parent_id``) resumed from the parent's checkpoint, so it
    cost ``budget - parent.budget``; a fresh trial cost ``budget``. Running trials are
    counted as if finished; trials without a budget count 0.
    """
    trials = list(trials)
    by_id = {t.id: t for t in trials}
    total = 0.0
    for trial in trials:
        if trial.budget is None:
            continue
        parent = by_id.get(trial.parent_id) if trial.parent_id is not None else None
        start = parent.budget if parent is not None and parent.budget is not None else 0.0
        total += max(trial.budget - start, 0.0)
    return total


# ------------------------------------------------------------------ one bracket

_FINISHED = ("complete", "failed", "pruned")


class _Bracket:
    """The state of one successive-halving run over a Study's trials.

    Trials of this bracket carry ``info = {"searcher": ..., "bracket": key, "rung": i, ...}``
    (the Study copies a Proposal's info into its trial), so which trial sits in which rung
    is read back from ``study.trials``; the bracket itself only counts what it handed out.
    """

    def __init__(self, key: int, rungs: list[tuple[int, float]], label: dict):
        self.key = key
        self.rungs = rungs
        self.label = label                 # extra info for the trials (iteration, s)
        self.issued = [0] * len(rungs)     # proposals handed out per rung
        self.targets = [rungs[0][0]] + [None] * (len(rungs) - 1)   # set when promotions are chosen
        self.queues = [[] for _ in rungs]  # promotions waiting to be handed out
        self.finished = False

    def _members(self, trials, rung: int):
        return [t for t in trials
                if t.info.get("bracket") == self.key and t.info.get("rung") == rung]

    def _promote(self, trials, rung: int, sign: float):
        """If rung ``rung`` is complete, queue the best ``n_{rung+1}`` of it for the next rung."""
        members = self._members(trials, rung)
        if len(members) < self.targets[rung] or any(t.state not in _FINISHED for t in members):
            return False
        if rung + 1 == len(self.rungs):
            self.finished = True
            return False
        ranked = sorted((t for t in members if t.state == "complete" and t.value is not None
                         and math.isfinite(t.value)), key=lambda t: (sign * t.value, t.id))
        survivors = ranked[:self.rungs[rung + 1][0]]
        self.targets[rung + 1] = len(survivors)
        self.queues[rung + 1] = list(survivors)
        if not survivors:                  # everything failed: nothing left to promote
            self.finished = True
        return True

    def next_proposal(self, trials, sample, sign: float):
        """A Proposal ready now, or None (the bracket is waiting for results, or finished).

        ``trials``: the study's trials (read once per ask; a Study returns fresh copies).
        """
        if self.finished:
            return None
        for rung in range(len(self.rungs)):
            if self.targets[rung] is None:                 # promotions not chosen yet
                if not self._promote(trials, rung - 1, sign):
                    break
            if self.queues[rung]:
                parent = self.queues[rung].pop(0)
                self.issued[rung] += 1
                return Proposal(params=dict(parent.params), budget=self.rungs[rung][1],
                                parent_id=parent.id, info=self._info(rung))
            if rung == 0 and self.issued[0] < self.targets[0]:
                self.issued[0] += 1
                return Proposal(params=sample(), budget=self.rungs[0][1], info=self._info(0))
        else:
            self._promote(trials, len(self.rungs) - 1, sign)   # marks the last rung finished
        return None

    def _info(self, rung: int) -> dict:
        return {"bracket": self.key, "rung": rung, "n_rung": self.rungs[rung][0], **self.label}


def _direction_sign(study) -> float:
    return -1.0 if getattr(study, "direction", "minimize") == "maximize" else 1.0


# ------------------------------------------------------------------ the searchers

class SuccessiveHalving(Searcher):
    """One successive-halving run (one Hyperband bracket), standalone.

    ``SuccessiveHalving(n_configs=None, min_budget=1, max_budget=81, eta=3, seed=0)``:
    ``s = floor(log_eta(max_budget / min_budget))`` rounds; ``n_configs`` random
    configurations (default ``eta^s``, so one survives to ``max_budget``) start at
    ``max_budget eta^-s``; the best ``max(1, floor(n_configs eta^-i))`` (by value, respecting the
    study's direction; failed trials never survive) continue to ``max_budget eta^(i-s)``
    from their parent's checkpoint. ``ask`` returns None once the last rung is done.
    """

    name = "successive_halving"

    def __init__(self, n_configs: int | None = None, min_budget: float = 1, max_budget: float = 81,
                 eta: int = 3, seed: int | None = 0):
        self.eta = _check_schedule_args(max_budget, eta, min_budget)
        self.min_budget, self.max_budget = min_budget, max_budget
        s = max_bracket(max_budget, self.eta, min_budget)
        n = self.eta ** s if n_configs is None else int(n_configs)
        if n < 1:
            raise ValueError(f"n_configs must be >= 1, got {n_configs!r}")
        # With fewer than eta^s configurations, floor(n eta^-i) would reach 0 before the last
        # rung; keep at least the single best one going up to max_budget.
        self.rungs = [(max(n_i, 1), r_i) for n_i, r_i in successive_halving_rungs(n, s, self.eta, max_budget)]
        self.rng = np.random.default_rng(seed)
        self._bracket = _Bracket(0, self.rungs, {"searcher": self.name, "s": s})

    def ask(self, study):
        return self._bracket.next_proposal(study.trials, lambda: study.space.sample(self.rng),
                                           _direction_sign(study))

    def tell(self, study, trial):
        """Nothing to do: rung membership and results are read from ``study.trials``."""

    def is_finished(self, study) -> bool:
        return self._bracket.finished


class Hyperband(Searcher):
    """Hyperband (Li et al., 2018): successive halving in every bracket of :func:`hyperband_brackets`.

    ``Hyperband(max_budget=81, eta=3, min_budget=1, seed=0, max_iterations=None)``.
    Brackets run in the paper's order (``s = s_max, ..., 0``), then the next
    iteration starts over with fresh random configurations, until the Study's
    ``n_trials`` (or ``max_iterations``) runs out. Each trial has
    ``budget`` = the epochs its configuration reaches in the rung and, when promoted,
    ``parent_id`` = the trial it continues (see the module docstring).

    Several workers: when every open bracket is waiting for running trials, the next
    bracket opens, so workers never idle on a rung barrier.
    """

    name = "hyperband"

    def __init__(self, max_budget: float = 81, eta: int = 3, min_budget: float = 1,
                 seed: int | None = 0, max_iterations: int | None = None):
        self.eta = _check_schedule_args(max_budget, eta, min_budget)
        self.max_budget, self.min_budget = max_budget, min_budget
        self.brackets = hyperband_brackets(max_budget, self.eta, min_budget)
        self.s_max = len(self.brackets) - 1
        self.max_iterations = max_iterations
        self.rng = np.random.default_rng(seed)
        self._open = []
        self._n_opened = 0

    def _can_open(self) -> bool:
        return (self.max_iterations is None
                or self._n_opened < self.max_iterations * len(self.brackets))

    def ask(self, study):
        sign = _direction_sign(study)

        def sample():
            return study.space.sample(self.rng)

        trials = study.trials
        while True:
            for bracket in self._open:
                proposal = bracket.next_proposal(trials, sample, sign)
                if proposal is not None:
                    return proposal
            self._open = [b for b in self._open if not b.finished]
            if not self._can_open():
                return None
            k = self._n_opened
            s = self.s_max - k % len(self.brackets)
            label = {"searcher": self.name, "iteration": k // len(self.brackets), "s": s}
            self._open.append(_Bracket(k, self.brackets[k % len(self.brackets)], label))
            self._n_opened += 1

    def tell(self, study, trial):
        """Nothing to do: rung membership and results are read from ``study.trials``."""

    def is_finished(self, study) -> bool:
        return not self._can_open() and all(b.finished for b in self._open)
