"""Random search: independent draws from the space (Bergstra & Bengio, 2012).

Each parameter is drawn on its own scale (log, reverse-log, step, conditions: see
:mod:`nnhp.search.space`). With the same seed the same sequence of points comes out, and it does
not depend on the process: trial ``k`` is drawn from a generator seeded by ``(seed, k)``, so a
reopened study continues the sequence instead of replaying it.

Points already in the study are not proposed again: a draw that repeats one is redrawn (up to
``max_retries`` times). In a space of only Ints and Choices, random search therefore visits every
point once and then reports that it is exhausted.
"""
from __future__ import annotations

import numpy as np

from .searcher import Proposal, Searcher, resolve_seed

__all__ = ["RandomSearch"]


class RandomSearch(Searcher):
    """Seeded random draws without needless repeats; see the module docstring."""

    def __init__(self, seed: int | None = 0, max_retries: int = 100):
        self.seed = resolve_seed(seed)
        self.max_retries = int(max_retries)

    def __repr__(self) -> str:
        return f"RandomSearch(seed={self.seed})"

    def ask(self, study):
        proposals = self.ask_ahead(study, 1)
        return proposals[0] if proposals else None

    def ask_ahead(self, study, n: int) -> list[Proposal]:
        """The next ``n`` draws, as ``n`` asks would give them with each made a trial in turn."""
        space = study.space
        trials = study.trials
        seen = {space.key(t.params) for t in trials}
        proposals = []
        for k in range(len(trials), len(trials) + int(n)):
            proposal = self._draw(space, seen, k)
            if proposal is None:
                break
            seen.add(space.key(proposal.params))
            proposals.append(proposal)
        return proposals

    def _draw(self, space, seen: set, index: int) -> Proposal | None:
        """Point ``index`` of the sequence, redrawn while it repeats one in ``seen``."""
        size = space.size()
        if len(seen) >= size:
            return None
        rng = np.random.default_rng([self.seed, index])
        for _ in range(self.max_retries):
            params = space.sample(rng)
            if space.key(params) not in seen:
                return Proposal(params)
        if size <= 100_000:
            # A small finite space nearly used up: take a remaining point at random.
            remaining = [p for p in space.grid(1, max_int_values=10**12) if space.key(p) not in seen]
            return Proposal(remaining[int(rng.integers(len(remaining)))])
        return Proposal(params)        # a huge space that keeps repeating: accept the repeat
