"""The search layer: spaces, studies that record every trial, and the searchers that propose.

::

    from nnhp.search import Space, Float, Int, Choice, Study, RandomSearch

    space = Space({"lr": Float(1e-4, 1e-1, log=True), "n_layers": Int(1, 3)})
    study = Study(space, searcher=RandomSearch(seed=0), direction="minimize")
    study.optimize(objective, n_trials=20)

Files, one idea each: ``space.py`` (what may vary), ``trial.py`` (one evaluation),
``storage.py`` (where trials are kept; ``sqlite.py`` the file backend), ``study.py`` (the loop), ``searcher.py`` (the protocol
searchers implement), ``grid.py``, ``random.py``, ``quasirandom.py``, ``gp.py``, ``hyperband.py``, ``bohb.py``
(the searchers), ``importance.py`` (which parameters matter, from the trials: PED-ANOVA).
GPSearch, Hyperband and BOHB load on first use.
"""
import importlib

from .grid import GridSearch
from .random import RandomSearch
from .searcher import Proposal, Searcher, make_searcher
from .space import Choice, Condition, EncodedDim, Fixed, Float, Int, Space, SpaceError
from .sqlite import SQLiteStorage
from .storage import InMemoryStorage, Storage, StorageError
from .study import SearchExhausted, Study, StudyMismatchError
from .trial import Trial, TrialPruned

_LAZY = {"GPSearch": "nnhp.search.gp", "Hyperband": "nnhp.search.hyperband",
         "SuccessiveHalving": "nnhp.search.hyperband", "BOHB": "nnhp.search.bohb",
         "ASHA": "nnhp.search.asha", "QuasiRandomSearch": "nnhp.search.quasirandom"}

__all__ = ["Space", "Float", "Int", "Choice", "Fixed", "Condition", "EncodedDim", "SpaceError",
           "Study", "Trial", "TrialPruned", "SearchExhausted", "Proposal", "Searcher", "make_searcher",
           "Storage", "InMemoryStorage", "SQLiteStorage", "StorageError", "StudyMismatchError",
           "GridSearch", "RandomSearch", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nnhp.search' has no attribute {name!r}")


def __dir__():
    return __all__
