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

Loading is kept out of ``fit`` too. Importing numba and loading the kernels from
numba's disk cache takes ~0.6 s in a fresh process (most of it numba importing itself
and SciPy); ``prepare``, called when a model is built, does it then, once per process,
under "on", or under "auto" once something measured faster here. A kernel set that
"auto" first wants later (a measurement arriving mid-run) loads in a background
thread, the plain code running until it is ready. ``prepare(..., background=True)`` starts a
load ahead of the models that will need it (``tune`` does, while its last trials run in
worker processes); building those models waits for it as for any load, so what runs fused
never depends on the thread's timing.

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
        return _environment_mode(os.environ.get(ENV_VAR))
    return "on" if decided else "off"


@functools.lru_cache(maxsize=8)
def _environment_mode(value) -> str:
    decided = _parse(value, ENV_VAR)
    return "auto" if decided is None else "on" if decided else "off"


#: The dtypes with kernels, and their names (``dtype.name`` is slow to compute, and
#: ``choose`` runs for every fused step of every batch).
DTYPE_NAMES = {numpy.dtype(numpy.float32): "float32", numpy.dtype(numpy.float64): "float64"}


def target(array) -> str | None:
    """Which kernel set serves ``array``: "cpu" (NumPy), "gpu" (CuPy), or None (not a
    float32/float64 array, or a subclass)."""
    if array.dtype not in DTYPE_NAMES:
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
    dtype_name = DTYPE_NAMES[array.dtype]
    verdict = table.faster(where, dtype_name, family, size)
    if verdict is None:
        table.request_calibration(where, dtype_name)
    return loaded(where, array.dtype) if verdict else None


def prepare(xp, dtype, setting=None, background: bool = False) -> None:
    """Load now the kernels a model on ``xp`` in ``dtype`` will use: under "on", or under
    "auto" once something measured faster here (then a failure only keeps the plain code).

    ``background``: start loading them in a thread and return; the next ``prepare`` (a model
    being built) waits for that load to finish, so whether a model runs fused never depends on
    the thread's timing. A failure is reported by that next ``prepare``."""
    current = mode(setting)
    where = "cpu" if xp is numpy else "gpu"
    dtype = numpy.dtype(dtype)
    if current == "off" or dtype not in DTYPE_NAMES or (where == "cpu" and not numba_available()):
        return
    if background:
        if current == "on" or table.any_faster(where, DTYPE_NAMES[dtype]):
            loaded(where, dtype)
        return
    if current == "on":
        load(where, dtype)
    elif table.any_faster(where, DTYPE_NAMES[dtype]):
        try:
            load(where, dtype)
        except JitUnavailableError:
            pass


# --- loading the kernel sets ---------------------------------------------------------------
class _Loader:
    """Imports one kernel set and warms it up for one dtype, now or in a background thread."""

    def __init__(self, where: str, dtype):
        self.where, self.dtype = where, numpy.dtype(dtype)
        self.module = self.error = self.thread = None

    def run(self) -> None:
        try:
            module = importlib.import_module(_KERNEL_MODULES[self.where])
            # Every kernel, not only those this process will call, and that costs little: on the
            # CPU the first kernel pays numba's one-time set-up (~0.35 s of CPU, importing SciPy
            # for its BLAS check included) whichever kernel it is, and each further one loads from
            # the disk cache in ~5 ms (measured: the whole set ~0.05 s over the first alone). Left
            # to their first call, those milliseconds would land inside a training step instead.
            module.warm_up(self.dtype)
            self.module = module
        except Exception as exc:   # reported by load(); auto keeps the plain code
            self.error = exc

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name=f"nnhp-fused-{self.where}-{self.dtype}",
                                       daemon=True)
        self.thread.start()


_loaders: dict = {}
_loaders_lock = threading.Lock()


def _loader(where: str, dtype, background: bool) -> _Loader:
    key = (where, numpy.dtype(dtype))
    loader = _loaders.get(key)           # the common case, without taking the lock
    if loader is None:
        with _loaders_lock:
            loader = _loaders.get(key)
            if loader is None:
                loader = _loaders[key] = _Loader(where, dtype)
                if background:
                    loader.start()
                else:
                    loader.run()         # under the lock: another caller waits for it
    return loader


def loaded(where: str, dtype):
    """The kernel set if it is ready, else None (and its loading under way in the background)."""
    return _loader(where, dtype, background=True).module


def load(where: str, dtype):
    """The kernel set, loaded now if need be (waits for a background load)."""
    if where == "cpu" and not numba_available():
        raise JitUnavailableError(
            f"fused kernels were requested (jit=True or {ENV_VAR}=1) but numba is not installed; "
            f"install the jit extra (pip install 'nnhp[jit]') or set {ENV_VAR}=0")
    loader = _loader(where, dtype, background=False)
    if loader.module is None:
        if loader.thread is not None:
            loader.thread.join()
        if loader.error is not None:
            raise JitUnavailableError(f"the {where} kernels failed to load: {loader.error!r}") from loader.error
    return loader.module


def _finish_loading() -> None:
    """Before a fork: let background loads finish, so no child starts with an import half done."""
    for loader in list(_loaders.values()):
        if loader.thread is not None:
            loader.thread.join()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_finish_loading)
