"""Quasi-random search: a scrambled Halton sequence, spread over the space more evenly than random draws.

Random search leaves gaps and clumps: with 16 draws some regions of a learning-rate range get
none and others three. A *low-discrepancy* sequence fills the unit cube evenly at every prefix
length, which is why AlgoPerf (Dahl et al., 2023) tunes its baselines with quasi-random search
(Bousquet et al., 2017): the same budget covers the space better, and results are reproducible.

The Halton sequence
-------------------
Write the index ``i`` in base ``b``, ``i = sum_k d_k b^k``, and mirror its digits about the
radix point: the *radical inverse* ::

    phi_b(i) = sum_k d_k b^(-k-1)           e.g. base 2: 1, 2, 3, 4 -> 0.5, 0.25, 0.75, 0.125

Coordinate ``j`` of point ``i`` is ``phi_{p_j}(i)`` with ``p_j`` the j-th prime (2, 3, 5, ...).
Plain Halton coordinates in neighbouring large primes are strongly correlated (their first
points march along a diagonal); *scrambling* breaks that: each coordinate ``j`` and digit
position ``k`` gets a random permutation ``pi_jk`` of the digits ``0 .. b-1``, and ::

    u_j(i) = sum_{k < K} pi_jk(d_k) b^(-k-1)

with ``K`` digits, enough for double precision (``b^-K < 2^-53``), so that the permuted
trailing zeros of small indices count too (Owen 2017, "A randomized Halton algorithm in R",
random digit permutations). The permutations come from the seed, so a seed fixes the sequence.

From the cube to parameters
---------------------------
Each varying parameter takes one coordinate, in the space's declaration order: a Float or Int
decodes it on its own scale (log, reverse-log, step; see :mod:`nnhp.search.space`), a Choice
with ``n`` options takes option ``floor(u n)``. Fixed values take none, and a conditional
parameter whose condition does not hold simply leaves its coordinate unused.

Resuming
--------
Trial ``k`` is point ``k`` of the sequence, recorded as ``info["sequence_index"]``. The searcher
proposes the lowest index no live trial holds, so an *interrupted* trial (its process died) has
its point proposed again, and a reopened study ends with exactly the points an uninterrupted
one would have.
"""
from __future__ import annotations

import math

import numpy as np

from .searcher import Proposal, Searcher, resolve_seed
from .space import Choice, Fixed

__all__ = ["QuasiRandomSearch", "halton", "first_primes"]


def first_primes(count: int) -> list[int]:
    """The first ``count`` primes (2, 3, 5, 7, ...), by trial division: ``count`` is a few dozen."""
    primes: list[int] = []
    candidate = 2
    while len(primes) < count:
        if all(candidate % p for p in primes if p * p <= candidate):
            primes.append(candidate)
        candidate += 1
    return primes


def _digit_permutations(n_dims: int, seed: int | None) -> list[np.ndarray]:
    """Per coordinate ``j``: an array ``(K_j, b_j)`` whose row ``k`` permutes the digits at position k.
    ``seed=None``: the identity (plain, unscrambled Halton)."""
    rng = None if seed is None else np.random.default_rng([seed, 0x4A170])
    tables = []
    for base in first_primes(n_dims):
        n_digits = math.ceil(53 * math.log(2) / math.log(base))
        if rng is None:
            tables.append(np.tile(np.arange(base), (n_digits, 1)))
        else:
            tables.append(np.array([rng.permutation(base) for _ in range(n_digits)]))
    return tables


def halton(indices, n_dims: int, seed: int | None = 0) -> np.ndarray:
    """Points ``indices`` of the ``n_dims``-dimensional Halton sequence, scrambled by ``seed``
    (module docstring; ``seed=None`` gives the plain sequence). Returns ``(len(indices), n_dims)``
    in ``[0, 1)``."""
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if indices.size and indices.min() < 0:
        raise ValueError(f"Halton indices must be >= 0, got {int(indices.min())}")
    if not isinstance(n_dims, (int, np.integer)) or n_dims < 0:
        raise ValueError(f"n_dims must be a non-negative integer, got {n_dims!r}")
    points = np.zeros((indices.size, n_dims))
    for j, (base, permutations) in enumerate(zip(first_primes(n_dims), _digit_permutations(n_dims, seed))):
        remaining = indices.copy()
        scale = 1.0 / base
        for k in range(permutations.shape[0]):
            digit = remaining % base
            points[:, j] += permutations[k][digit] * scale
            remaining //= base
            scale /= base
    return np.minimum(points, np.nextafter(1.0, 0.0))


class QuasiRandomSearch(Searcher):
    """Points of a scrambled Halton sequence, one per trial; see the module docstring.

    ``seed``: which scrambling (the same seed, the same points); ``None`` draws one.
    """

    reproposes_interrupted = True       # the lowest free index is the interrupted trial's own

    def __init__(self, seed: int | None = 0):
        self.seed = resolve_seed(seed)
        self._cache: tuple | None = None       # (space, varying dimension names)

    def __repr__(self) -> str:
        return f"QuasiRandomSearch(seed={self.seed})"

    def _varying(self, space) -> list[str]:
        if self._cache is None or self._cache[0] is not space:
            self._cache = (space, [name for name, dim in space.dims.items() if not isinstance(dim, Fixed)])
        return self._cache[1]

    def point(self, space, index: int) -> dict:
        """The params of sequence point ``index`` in ``space``."""
        names = self._varying(space)
        u = dict(zip(names, halton([index], len(names), self.seed)[0]))

        def value_of(name, dim):
            if isinstance(dim, Fixed):
                return dim.value
            if isinstance(dim, Choice):
                return dim.options[min(int(u[name] * len(dim.options)), len(dim.options) - 1)]
            return dim.decode([u[name]])

        return space._assign(value_of)

    def ask(self, study):
        return self.ask_ahead(study, 1)[0]

    def ask_ahead(self, study, n: int) -> list[Proposal]:
        """The ``n`` lowest indices no live trial holds, in order."""
        taken = {t.info.get("sequence_index") for t in study.trials if not t.interrupted}
        proposals, index = [], 0
        while len(proposals) < n:
            if index not in taken:
                proposals.append(Proposal(self.point(study.space, index), info={"sequence_index": index}))
            index += 1
        return proposals
