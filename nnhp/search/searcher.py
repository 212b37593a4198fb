"""The searcher protocol: what every search strategy (grid, random, GP, Hyperband, BOHB) implements.

A searcher only *proposes*; the :class:`~nnhp.search.Study` records and runs. The protocol::

    proposal = searcher.ask(study)      # -> Proposal, or None when it has nothing to propose
    searcher.tell(study, trial)         # after a trial ends: complete, failed or pruned
    searcher.is_finished(study)         # optional: True once the search is over
    searcher.ask_ahead(study, n)        # optional: the next n proposals at once (see below)

``ask`` sees ``study.trials``, *including* trials still ``running`` (proposed but not yet
told), so a model-based searcher can treat them as pending (e.g. with a constant liar) and a
grid never hands the same point to two workers. ``study.space`` is the space to search.

``None`` from ``ask`` means "nothing to propose now". ``Study.optimize`` stops on it when no
trial of its own is still running; with several workers it waits for a running trial to end and
asks again (a Hyperband rung may need its results before it can promote anyone).

A :class:`Proposal` may carry a ``budget`` (the resource a trial may use: epochs, for
``nnhp.tune``), a ``parent_id`` (the trial whose checkpoint this one continues from; the
objective reads it as ``trial.checkpoint``) and ``info`` (anything JSON-able worth recording,
such as a Hyperband bracket and rung).

``ask_ahead(study, n)`` is for searchers whose proposals do not depend on results (grid, random,
quasi-random): the proposals that ``n`` successive asks would give, each made a trial before
the next ask, all at once. ``Study.optimize`` uses it to run a parallel search's costliest
trials first. A searcher that learns from results returns None, the default.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Proposal", "Searcher", "make_searcher", "SEARCHERS", "resolve_seed"]


@dataclass
class Proposal:
    """What to evaluate next: a params dict, and optionally a budget, a parent and notes."""

    params: dict
    budget: float | None = None
    parent_id: int | None = None
    info: dict = field(default_factory=dict)


class Searcher:
    """Base class; subclasses override :meth:`ask` and, when they learn, :meth:`tell`."""

    #: Whether the searcher proposes an interrupted trial (``trial.interrupted``) again itself
    #: (Hyperband does); if not, a Study retries a trial whose process stopped (a stale one).
    reproposes_interrupted = False

    def ask(self, study) -> Proposal | None:
        raise NotImplementedError

    def tell(self, study, trial) -> None:
        """Learn from a finished trial (default: nothing to learn)."""

    def is_finished(self, study) -> bool:
        return False

    def ask_ahead(self, study, n: int) -> list[Proposal] | None:
        """The next ``n`` proposals (fewer when the searcher runs out), the same ones ``n`` asks
        would give with each made a trial in turn; None when they would depend on results."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def resolve_seed(seed: int | None) -> int:
    """A searcher's seed as a non-negative int; None draws one from fresh entropy.

    Searchers that draw point ``k`` from ``np.random.default_rng([seed, k])`` (a generator per
    point, not one generator for the whole search) propose the same points in a reopened study
    as in an uninterrupted one: nothing about the draws lives only in the process's memory.
    """
    if seed is None:
        return int(np.random.SeedSequence().entropy % (2**32))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


# name -> (module, class); modules load on first use.
SEARCHERS = {
    "grid": ("nnhp.search.grid", "GridSearch"),
    "random": ("nnhp.search.random", "RandomSearch"),
    "quasirandom": ("nnhp.search.quasirandom", "QuasiRandomSearch"),
    "gp": ("nnhp.search.gp", "GPSearch"),
    "hyperband": ("nnhp.search.hyperband", "Hyperband"),
    "bohb": ("nnhp.search.bohb", "BOHB"),
    "asha": ("nnhp.search.asha", "ASHA"),
}


def make_searcher(searcher=None, **kwargs) -> Searcher:
    """A searcher from a name in :data:`SEARCHERS` (keyword arguments go to its constructor),
    an instance (returned as is), or None (RandomSearch)."""
    if searcher is None:
        searcher = "random"
    if isinstance(searcher, str):
        key = searcher.lower().replace("_", "").replace("-", "")
        key = {"gpsearch": "gp", "bayes": "gp", "bayesian": "gp", "randomsearch": "random",
               "gridsearch": "grid",
               "quasirandomsearch": "quasirandom", "halton": "quasirandom"}.get(key, key)
        if key not in SEARCHERS:
            from .._checks import did_you_mean
            raise ValueError(f"unknown searcher {searcher!r}{did_you_mean(key, SEARCHERS)}; expected one of "
                             f"{list(SEARCHERS)} or a searcher object")
        module_name, class_name = SEARCHERS[key]
        return getattr(importlib.import_module(module_name), class_name)(**kwargs)
    if not callable(getattr(searcher, "ask", None)):
        raise TypeError(f"a searcher needs an ask(study) method; got {searcher!r}")
    return searcher
