"""When a fused kernel runs instead of the plain code: the on/off/auto switch.

Who decides, most specific first:

1. ``setting`` -- the ``jit=`` keyword of a model, which ``fit`` also applies to the
   loss and the optimizer: ``True`` insists, ``False`` refuses, ``None`` defers;
2. the environment variable ``NNHP_JIT``: ``0`` off, ``1`` on (an error if numba is
   missing), unset or ``auto``: on where it measured faster on this machine.

"Measured faster" (auto) is read from the table of ``table.py``: a kernel family
(say ``dense_activation/relu``) runs fused on an array only where it measured at least
``table.MARGIN`` times faster than the plain code at that size, on this CPU (or GPU),
with these library versions. No measurement yet means the plain code (and a request
for one, made in the background); so "auto" is never knowingly slower than NumPy.

Loading is kept out of the training loop too. Importing numba and loading the kernels
from numba's disk cache takes ~0.6 s in a fresh process; ``prepare`` (called when a
model is built) starts that in a background thread, and until it is done "auto" runs
the plain code. "on" waits for it: the user insisted.

A step asks ``choose`` once per forward pass and keeps the answer for its backward,
so the two always take the same path.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import threading

import numpy

from ..backend import array_module
from . import table

ENV_VAR = "NNHP_JIT"
_KERNEL_MODULES = {"cpu": "nnhp.fused.cpu", "gpu": "nnhp.fused.cuda"}


class JitUnavailableError(RuntimeError):
    """Fused kernels were insisted on (``NNHP_JIT=1`` or ``jit=True``) but numba is missing."""


@functools.cache
def numba_available() -> bool:
    """Whether numba can be imported (checked once, without importing it)."""
    return importlib.util.find_spec("numba") is not None


def _parse(value, source: str):
    """None (defer/auto), True (on) or False (off) from a setting or the environment."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("", "auto"):
        return None
    if text in ("1", "on", "true", "yes"):
        return True
    if text in ("0", "off", "false", "no"):
        return False
    raise ValueError(f"{source} must be 0, 1 or auto (or True/False/None); got {value!r}")


def mode(setting=None) -> str:
    """The effective mode, "on", "off" or "auto", for a call site with ``setting``."""
    decided = _parse(setting, "jit")
    if decided is None:
        decided = _parse(os.environ.get(ENV_VAR), ENV_VAR)
    return "auto" if decided is None else "on" if decided else "off"


def target(array) -> str | None:
    """Which kernel set serves ``array``: "cpu" (NumPy), "gpu" (CuPy), or None (not a
    float32/float64 array, or a subclass)."""
    if array.dtype.kind != "f" or array.dtype.itemsize < 4:
        return None
    if type(array) is numpy.ndarray:
        return "cpu"
    return None if array_module(array) is numpy else "gpu"


def choose(array, family: str, size: int, setting=None):
    """The kernel set (``nnhp.fused.cpu`` or ``nnhp.fused.cuda``) to run ``family`` on
    ``array``, an array of ``size`` elements, or None for the plain code."""
    current = mode(setting)
    if current == "off":
        return None
    where = target(array)
    if where is None:
        return None
    if current == "on":
        return load(where, array.dtype)
    if where == "cpu" and not numba_available():
        return None
    verdict = table.faster(where, array.dtype.name, family, size)
    if verdict is None:
        table.request_calibration(where, array.dtype.name)
    return loaded(where, array.dtype) if verdict else None


def prepare(xp, dtype, setting=None) -> None:
    """Start loading the kernels a model on ``xp`` in ``dtype`` will use, in the background:
    under "on", or under "auto" once something measured faster here."""
    current = mode(setting)
    where = "cpu" if xp is numpy else "gpu"
    dtype = numpy.dtype(dtype)
    if current == "off" or (where == "cpu" and not numba_available()):
        return
    if current == "on" or table.any_faster(where, dtype.name):
        loaded(where, dtype)


# --- loading the kernel sets ---------------------------------------------------------------
class _Loader:
    """Imports one kernel set and warms it up for one dtype, in a background thread."""

    def __init__(self, where: str, dtype):
        self.where, self.dtype = where, numpy.dtype(dtype)
        self.module = self.error = None
        self.thread = threading.Thread(target=self._run, name=f"nnhp-fused-{where}-{self.dtype}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            module = importlib.import_module(_KERNEL_MODULES[self.where])
            module.warm_up(self.dtype)
            self.module = module
        except Exception as exc:   # reported by load(); auto keeps the plain code
            self.error = exc


_loaders: dict = {}
_loaders_lock = threading.Lock()


def _loader(where: str, dtype) -> _Loader:
    key = (where, numpy.dtype(dtype).name)
    with _loaders_lock:
        if key not in _loaders:
            _loaders[key] = _Loader(where, dtype)
        return _loaders[key]


def loaded(where: str, dtype):
    """The kernel set if it is ready, else None (and its loading under way)."""
    return _loader(where, dtype).module


def load(where: str, dtype):
    """The kernel set, loaded now if need be (waits for a background load)."""
    if where == "cpu" and not numba_available():
        raise JitUnavailableError(
            f"fused kernels were requested (jit=True or {ENV_VAR}=1) but numba is not installed; "
            f"install the jit extra (pip install 'nnhp[jit]') or set {ENV_VAR}=0")
    loader = _loader(where, dtype)
    loader.thread.join()
    if loader.error is not None:
        raise JitUnavailableError(f"the {where} kernels failed to load: {loader.error!r}") from loader.error
    return loader.module


def _finish_loading() -> None:
    """Before a fork: let loads finish, so no child starts with an import half done."""
    for loader in list(_loaders.values()):
        loader.thread.join()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_finish_loading)
