"""nnhp: a from-scratch, autograd-free neural-network and hyperparameter-tuning engine.

    import nnhp
    model = nnhp.MLP([64, 128, 10], activation="relu", seed=0)
    history = nnhp.fit(model, X, y, loss="cross_entropy", optimizer="adam", epochs=20)

Submodules (``nnhp.layers``, ``nnhp.optim``, ``nnhp.search``, ...) load on first use,
so ``import nnhp`` costs only NumPy.
"""
import importlib

__version__ = "0.1.0"

_SUBMODULES = ("backend", "layers", "init", "losses", "model", "checkpoint", "optim", "schedules",
               "train", "data", "search", "tuning", "compare", "report", "fused", "cli")

# Public names that live in a submodule: name -> module.
_EXPORTS = {
    "MLP": "model", "Sequential": "model", "load": "model",
    "fit": "train", "evaluate": "train", "EarlyStopping": "train", "History": "train",
    "Callback": "train",
    "tune": "tuning", "TuneResult": "tuning",
}

__all__ = sorted(set(_SUBMODULES) | set(_EXPORTS))


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"nnhp.{name}")
        globals()[name] = module
        return module
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"nnhp.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nnhp' has no attribute {name!r}")


def __dir__():
    return __all__
