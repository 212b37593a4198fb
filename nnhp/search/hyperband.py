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

Stopping and reopening. Neither searcher keeps state of its own between asks: each
rebuilds its brackets from ``study.trials`` (every trial is labelled with its bracket, rung
and configuration index), and draws configuration ``j`` of bracket ``k`` from a generator
seeded by ``(seed, k, j)``. So a study reopened from SQLite storage in a new process -- after
``optimize`` returned, after Ctrl-C, after the process was killed -- continues the bracket it
was in and proposes exactly what the uninterrupted run would have, and several processes
sharing one study run one search between them. An *interrupted* trial (``trial.interrupted``:
left running by a dead process, which the reopening Study marks failed, or stopped by
Ctrl-C) is proposed again with the same params, budget and parent; a real failure (the
objective raised, or returned NaN) is final and never promoted.

Both searchers follow the Searcher protocol of :mod:`nnhp.search.study`: ``ask`` returns
a Proposal (params, budget, parent_id) or None once done; ``tell`` is informational.
"""
from __future__ import annotations

import math

import numpy as np

from .searcher import Proposal, Searcher, resolve_seed
from .trial import COMPLETE, RUNNING

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

class _Bracket:
    """One successive-halving run, read back from the study's trials.

    A bracket keeps nothing in memory between asks. Its trials carry
    ``info = {"searcher", "bracket": key, "rung": i, "config": j, ...}`` (the Study copies a
    Proposal's info into its trial), and every ask rebuilds the bracket from them: a study
    reopened by a new process, or shared by several, continues the bracket where it stands.

    Each rung has *slots*: rung 0 one per configuration index ``j = 0..n_0-1``, rung ``i > 0``
    one per survivor of rung ``i-1`` (the trial it continues, best first). A slot is filled by
    its earliest trial that was not interrupted (``trial.interrupted``): a trial cut short by a
    crash or Ctrl-C leaves its slot open, so it is proposed again, with the same params, budget
    and parent.
    """

    def __init__(self, key: int, rungs: list[tuple[int, float]], label: dict, trials):
        self.key = key
        self.rungs = rungs
        self.label = label                       # extra info for the trials (searcher, iteration, s)
        self.filled = [{} for _ in rungs]        # per rung: slot -> the trial filling it
        self.by_id = {t.id: t for t in trials}
        # The configuration index of each rung-0 trial (those recorded before "config" existed
        # are numbered in the order they were made).
        rung_0 = [t for t in trials if t.info.get("rung") == 0]
        self.configs = {t.id: t.info.get("config", j) for j, t in enumerate(rung_0)}
        for trial in trials:
            rung = trial.info.get("rung")
            if not self._fits(trial, rung):
                raise ValueError(f"trial {trial.id} (bracket {key}, rung {rung}, budget {trial.budget}, "
                                 f"s {trial.info.get('s')}) does not fit bracket {key} of this searcher "
                                 f"(s {label.get('s')}, rungs {rungs}): the study was run with another max_budget, "
                                 "eta, min_budget or n_configs; reopen it with the same ones")
            if not trial.interrupted:
                slot = self.configs[trial.id] if rung == 0 else trial.parent_id
                self.filled[rung].setdefault(slot, trial)

    def _fits(self, trial, rung) -> bool:
        if not (isinstance(rung, int) and 0 <= rung < len(self.rungs)):
            return False
        n, budget = self.rungs[rung]
        return (trial.budget == budget and trial.info.get("n_rung", n) == n
                and trial.info.get("s", self.label.get("s")) == self.label.get("s"))

    def _open_rung(self, sign: float):
        """(rung, its slots) for the lowest rung not yet complete; None once the bracket is finished."""
        slots = list(range(self.rungs[0][0]))
        for rung in range(len(self.rungs)):
            members = [self.filled[rung].get(slot) for slot in slots]
            if any(t is None or t.state == RUNNING for t in members):
                return rung, slots
            if rung + 1 == len(self.rungs):
                return None
            ranked = sorted((t for t in members if t.state == COMPLETE and t.value is not None
                             and math.isfinite(t.value)), key=lambda t: (sign * t.value, t.id))
            slots = [t.id for t in ranked[:self.rungs[rung + 1][0]]]
            if not slots:                        # everything failed: nothing left to promote
                return None
        return None

    def finished(self, sign: float) -> bool:
        return self._open_rung(sign) is None

    def next_proposal(self, sample, sign: float) -> Proposal | None:
        """A Proposal ready now, or None (the bracket waits for running trials, or is finished).

        ``sample(key, j)``: ``(params, notes)`` for configuration ``j`` of bracket ``key``; the
        notes (how the configuration was chosen, say) go into its trial's info.
        """
        open_rung = self._open_rung(sign)
        if open_rung is None:
            return None
        rung, slots = open_rung
        free = [slot for slot in slots if slot not in self.filled[rung]]
        if not free:
            return None
        budget = self.rungs[rung][1]
        if rung == 0:
            params, notes = sample(self.key, free[0])
            return Proposal(params=params, budget=budget, info={**self._info(0, free[0]), **notes})
        parent = self.by_id[free[0]]
        return Proposal(params=dict(parent.params), budget=budget, parent_id=parent.id,
                        info=self._info(rung, parent.info.get("config")))

    def _info(self, rung: int, config: int) -> dict:
        return {"bracket": self.key, "rung": rung, "n_rung": self.rungs[rung][0], "config": config, **self.label}


def _trials_by_bracket(trials, searcher_name: str) -> dict[int, list]:
    """The trials a searcher called ``searcher_name`` proposed, grouped by bracket key."""
    brackets = {}
    for trial in trials:
        if trial.info.get("searcher") == searcher_name and "bracket" in trial.info:
            brackets.setdefault(trial.info["bracket"], []).append(trial)
    return brackets


def _sampler(space, seed: int):
    """``sample(key, j)``: configuration ``j`` of bracket ``key``, drawn at random from a generator
    seeded by ``(seed, key, j)``, so that it is the same in every process (see :func:`resolve_seed`)."""
    return lambda key, index: (space.sample(np.random.default_rng([seed, key, index])), {})


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
    Configuration ``j`` is drawn from ``np.random.default_rng([seed, 0, j])``; a reopened study
    continues the run (module docstring).
    """

    reproposes_interrupted = True

    name = "successive_halving"

    def __init__(self, n_configs: int | None = None, min_budget: float = 1, max_budget: float = 81,
                 eta: int = 3, seed: int | None = 0):
        self.eta = _check_schedule_args(max_budget, eta, min_budget)
        self.min_budget, self.max_budget = min_budget, max_budget
        self.s = max_bracket(max_budget, self.eta, min_budget)
        n = self.eta ** self.s if n_configs is None else int(n_configs)
        if n < 1:
            raise ValueError(f"n_configs must be >= 1, got {n_configs!r}")
        # With fewer than eta^s configurations, floor(n eta^-i) would reach 0 before the last
        # rung; keep at least the single best one going up to max_budget.
        self.rungs = [(max(n_i, 1), r_i) for n_i, r_i in successive_halving_rungs(n, self.s, self.eta, max_budget)]
        self.seed = resolve_seed(seed)

    def __repr__(self) -> str:
        return f"SuccessiveHalving(n_configs={self.rungs[0][0]}, max_budget={self.max_budget}, eta={self.eta}, " \
               f"seed={self.seed})"

    def _bracket(self, study) -> _Bracket:
        trials = _trials_by_bracket(study.trials, self.name).get(0, [])
        return _Bracket(0, self.rungs, {"searcher": self.name, "s": self.s}, trials)

    def ask(self, study):
        return self._bracket(study).next_proposal(_sampler(study.space, self.seed), _direction_sign(study))

    def tell(self, study, trial):
        """Nothing to do: rung membership and results are read from ``study.trials``."""

    def is_finished(self, study) -> bool:
        return self._bracket(study).finished(_direction_sign(study))


class Hyperband(Searcher):
    """Hyperband (Li et al., 2018): successive halving in every bracket of :func:`hyperband_brackets`.

    ``Hyperband(max_budget=81, eta=3, min_budget=1, seed=0, max_iterations=None)``.
    Brackets run in the paper's order (``s = s_max, ..., 0``), then the next
    iteration starts over with fresh random configurations, until the Study's
    ``n_trials`` (or ``max_iterations``) runs out. Each trial has
    ``budget`` = the epochs its configuration reaches in the rung and, when promoted,
    ``parent_id`` = the trial it continues (see the module docstring).

    Bracket ``k`` (counted from 0 over all iterations) draws its configuration ``j`` from
    ``np.random.default_rng([seed, k, j])``; a reopened study goes on exactly as an
    uninterrupted one would (module docstring, "Stopping and reopening"). Reopening it with
    another ``max_budget``, ``eta`` or ``min_budget`` is an error.

    Several workers, or several processes sharing an SQLite study: when every open bracket is
    waiting for running trials, the next bracket opens, so workers never idle on a rung barrier.
    """

    reproposes_interrupted = True

    name = "hyperband"

    def __init__(self, max_budget: float = 81, eta: int = 3, min_budget: float = 1,
                 seed: int | None = 0, max_iterations: int | None = None):
        self.eta = _check_schedule_args(max_budget, eta, min_budget)
        self.max_budget, self.min_budget = max_budget, min_budget
        self.brackets = hyperband_brackets(max_budget, self.eta, min_budget)
        self.s_max = len(self.brackets) - 1
        self.max_iterations = max_iterations
        self.seed = resolve_seed(seed)

    def __repr__(self) -> str:
        return f"Hyperband(max_budget={self.max_budget}, eta={self.eta}, min_budget={self.min_budget}, " \
               f"seed={self.seed})"

    def _bracket(self, key: int, trials) -> _Bracket:
        label = {"searcher": self.name, "iteration": key // len(self.brackets),
                 "s": self.s_max - key % len(self.brackets)}
        return _Bracket(key, self.brackets[key % len(self.brackets)], label, trials)

    def _may_open(self, key: int) -> bool:
        return self.max_iterations is None or key < self.max_iterations * len(self.brackets)

    def configuration_sampler(self, study):
        """``sample(key, j) -> (params, notes)`` for the new configurations: random ones here;
        BOHB (:mod:`nnhp.search.bohb`) overrides this with a model of the study's trials."""
        return _sampler(study.space, self.seed)

    def ask(self, study):
        sign = _direction_sign(study)
        sample = self.configuration_sampler(study)
        opened = _trials_by_bracket(study.trials, self.name)
        key = 0
        # Brackets in the order they opened; a bracket not opened yet always has a first
        # configuration to propose, so this ends at the first one (or where max_iterations stops it).
        while key in opened or self._may_open(key):
            proposal = self._bracket(key, opened.get(key, [])).next_proposal(sample, sign)
            if proposal is not None:
                return proposal
            key += 1
        return None

    def tell(self, study, trial):
        """Nothing to do: rung membership and results are read from ``study.trials``."""

    def is_finished(self, study) -> bool:
        if self.max_iterations is None:
            return False
        sign = _direction_sign(study)
        opened = _trials_by_bracket(study.trials, self.name)
        return all(key in opened and self._bracket(key, opened[key]).finished(sign)
                   for key in range(self.max_iterations * len(self.brackets)))
