"""ASHA: asynchronous successive halving (Li et al., "A System for Massively Parallel
Hyperparameter Tuning", MLSys 2020).

Rungs ``k = 0, 1, ...`` train for ``min_budget * eta**k`` (up to ``max_budget``). Whenever a worker
is free (``ask``), the rule is the paper's: go through the rungs from the top down and promote the
best configuration of the highest rung whose top ``1/eta`` it is in and that has not been promoted
yet; if there is none, start a new configuration (a random draw) at the bottom rung. No rung waits
for the others, so workers never idle on a barrier as synchronous successive halving's do.

The first trials of a rung
--------------------------
"Top 1/eta" is ``floor(n / eta)`` of the ``n`` *completed* trials of a rung. A rung with fewer than
``eta`` results therefore promotes nothing: an early trial never passes a rung just by being first
(the complaint about ASHA's start, where the anchors of a rung are few). Once a rung holds ``eta``
results its best one goes up; with ``2 * eta`` its best two; and so on. A promotion is decided with
the results known at that moment: a configuration promoted early stays promoted, even if it drops
out of the top ``1/eta`` later -- the price of never waiting (the paper's ASHA does the same).

Promotions continue from their parent's checkpoint (``trial.checkpoint``), as Hyperband's do:
the trial's ``parent_id`` is the trial it continues, ``info["rung"]`` its rung.

State and reopening
-------------------
Everything ASHA knows comes from the study's trials (each trial's rung, parent and result), and
new configurations are drawn from a generator seeded by ``(seed, number of trials)``, so a study
reopened in a new process goes on where it was. A promotion that was interrupted
(``trial.interrupted``) does not count: its parent is promoted again. ASHA never finishes on its
own; give ``optimize`` ``n_trials`` or a ``timeout``.
"""
from __future__ import annotations

import math

import numpy as np

from .searcher import Proposal, Searcher, resolve_seed
from .trial import COMPLETE

__all__ = ["ASHA"]


class ASHA(Searcher):
    """``ASHA(max_budget=81, eta=3, min_budget=1, seed=0)``; see the module docstring."""

    reproposes_interrupted = True

    def __init__(self, max_budget: float = 81, eta: float = 3, min_budget: float = 1, seed: int | None = 0):
        if not eta > 1:
            raise ValueError(f"eta must be > 1, got {eta!r}")
        if not 0 < min_budget <= max_budget:
            raise ValueError(f"need 0 < min_budget <= max_budget, got {min_budget!r} and {max_budget!r}")
        self.max_budget, self.eta, self.min_budget = float(max_budget), float(eta), float(min_budget)
        self.seed = resolve_seed(seed)
        top = int(math.floor(math.log(self.max_budget / self.min_budget, self.eta) + 1e-9))
        self.budgets = [min(self.min_budget * self.eta ** k, self.max_budget) for k in range(top + 1)]

    def __repr__(self) -> str:
        return (f"ASHA(max_budget={self.max_budget:g}, eta={self.eta:g}, min_budget={self.min_budget:g}, "
                f"seed={self.seed})")

    def ask(self, study):
        trials = study.trials
        promoted = {t.parent_id for t in trials if t.parent_id is not None and not t.interrupted}
        maximize = study.direction == "maximize"
        for rung in range(len(self.budgets) - 2, -1, -1):
            done = [t for t in trials if t.info.get("rung") == rung and t.state == COMPLETE]
            done.sort(key=lambda t: (-t.value if maximize else t.value, t.id))
            for trial in done[:int(len(done) // self.eta)]:
                if trial.id not in promoted:
                    return Proposal(dict(trial.params), self.budgets[rung + 1], trial.id, info={"rung": rung + 1})
        rng = np.random.default_rng([self.seed, len(trials)])
        return Proposal(study.space.sample(rng), self.budgets[0], info={"rung": 0})
