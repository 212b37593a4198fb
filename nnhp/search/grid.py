"""Grid search: every combination of a few values per parameter, in a fixed order.

Floats get ``points_per_dim`` points spread evenly on their own scale (so a log-scaled learning
rate in [1e-4, 1e-1] with 4 points is 1e-4, 1e-3, 1e-2, 1e-1, and a reverse-log beta in
[0.9, 0.999] with 3 points is 0.9, 0.99, 0.999). Ints and Choices are enumerated -- an Int with
more than ``max_int_values`` values is gridded like a Float instead. Conditional parameters are
crossed only with the parent values that activate them. The first parameter varies slowest.

The grid is the cross product, so it grows as ``points ** n_params``: use it on a few
parameters (fix the rest), and prefer random search otherwise.
"""
from __future__ import annotations

from .searcher import Proposal, Searcher

__all__ = ["GridSearch"]


class GridSearch(Searcher):
    """Propose each grid point once (skipping points the study already holds); then None."""

    def __init__(self, points_per_dim: int = 5, max_int_values: int = 16, max_points: int = 1_000_000):
        if not isinstance(points_per_dim, int) or points_per_dim < 1:
            raise ValueError(f"points_per_dim must be a positive integer, got {points_per_dim!r}")
        self.points_per_dim = points_per_dim
        self.max_int_values = max_int_values
        self.max_points = max_points
        self._grid: list[dict] | None = None
        self._grid_space = None
        self._keys: list[str] = []
        self._cursor = 0
        self._study = None

    def __repr__(self) -> str:
        return f"GridSearch(points_per_dim={self.points_per_dim})"

    def points(self, space) -> list[dict]:
        """The whole grid of ``space``, in order (computed once per space)."""
        if self._grid is None or self._grid_space is not space:
            grid = []
            for point in space.grid(self.points_per_dim, self.max_int_values):
                grid.append(point)
                if len(grid) > self.max_points:
                    raise ValueError(f"the grid has more than {self.max_points} points; fix or narrow some "
                                     "parameters, lower points_per_dim, or use RandomSearch")
            self._grid, self._grid_space = grid, space
            self._keys = [space.key(point) for point in grid]
            self._cursor = 0
        return self._grid

    def ask(self, study):
        proposals = self.ask_ahead(study, 1)
        return proposals[0] if proposals else None

    def ask_ahead(self, study, n: int) -> list[Proposal]:
        """The next ``n`` grid points the study does not hold (fewer at the grid's end)."""
        grid = self.points(study.space)
        if study is not self._study:
            self._study, self._cursor = study, 0
        seen = {study.space.key(t.params) for t in study.trials}
        # Points are handed out in order, so everything before the cursor is already taken.
        while self._cursor < len(grid) and self._keys[self._cursor] in seen:
            self._cursor += 1
        proposals = []
        for index in range(self._cursor, len(grid)):
            if len(proposals) == n:
                break
            if self._keys[index] not in seen:
                proposals.append(Proposal(dict(grid[index])))
        return proposals
