"""The array backend: which array module does the math, in which float type.

Every layer, loss and optimizer does its arithmetic through ``backend.xp``, which
is NumPy on the CPU or CuPy on an NVIDIA GPU. Nothing in the layer math imports
NumPy directly, so the same ``forward``/``backward`` code runs on both.

A backend is chosen per model::

    get_backend("numpy", "float32")     # the default
    get_backend(None)                   # $NNHP_BACKEND, else "numpy"
    get_backend("cupy", "float64")      # needs CuPy and a visible GPU

Randomness (initial weights, dropout masks, shuffling) always comes from a NumPy
``Generator`` seeded once per model, so a seed means the same numbers on every
backend; arrays drawn on the host are moved to the device afterwards.
"""
from __future__ import annotations

import os
import sys

import numpy

BACKEND_NAMES = ("numpy", "cupy")
DTYPE_NAMES = ("float32", "float64")


class BackendError(RuntimeError):
    """A backend was asked for that this machine cannot provide."""


class Backend:
    """An array module (``xp``) bound to one floating-point dtype.

    Attributes
    ----------
    name : "numpy" | "cupy"
    xp : the array module (``numpy`` or ``cupy``)
    dtype : the float dtype every parameter and activation uses
    """

    def __init__(self, name: str, xp, dtype):
        self.name = name
        self.xp = xp
        self.dtype = numpy.dtype(dtype)

    def __repr__(self) -> str:
        return f"Backend(name={self.name!r}, dtype={self.dtype.name!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Backend) and (self.name, self.dtype) == (other.name, other.dtype)

    def __hash__(self) -> int:
        return hash((self.name, self.dtype))

    # --- moving data -----------------------------------------------------------
    def asarray(self, array, dtype=None):
        """``array`` on this backend's device, as ``dtype`` (default: the backend's)."""
        return self.xp.asarray(array, dtype=self.dtype if dtype is None else dtype)

    def to_host(self, array) -> numpy.ndarray:
        """A NumPy copy (or view, on the CPU) of a backend array."""
        return to_numpy(array)

    def zeros(self, shape, dtype=None):
        return self.xp.zeros(shape, dtype=self.dtype if dtype is None else dtype)

    def empty(self, shape, dtype=None):
        return self.xp.empty(shape, dtype=self.dtype if dtype is None else dtype)

    def synchronize(self) -> None:
        """Wait for queued device work (a no-op on the CPU); for honest timings."""
        if self.name == "cupy":
            self.xp.cuda.get_current_stream().synchronize()


def _load_cupy():
    try:
        import cupy
    except ImportError as exc:
        raise BackendError(
            "backend 'cupy' needs CuPy, which is not installed; "
            "install the GPU extra (pip install 'nnhp[gpu]') or use backend='numpy'"
        ) from exc
    try:
        n_devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken
        raise BackendError(f"backend 'cupy': CuPy is installed but no CUDA GPU is usable ({exc})") from exc
    if n_devices < 1:
        raise BackendError("backend 'cupy': CuPy is installed but no CUDA GPU is visible")
    return cupy


def resolve_backend_name(name: str | None) -> str:
    """The backend name to use: ``name``, else ``$NNHP_BACKEND``, else ``"numpy"``."""
    if name is None:
        name = os.environ.get("NNHP_BACKEND") or "numpy"
    name = str(name).strip().lower()
    if name not in BACKEND_NAMES:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKEND_NAMES)}")
    return name


def resolve_dtype(dtype) -> numpy.dtype:
    """``"float32"`` or ``"float64"`` (or the NumPy types), as a NumPy dtype."""
    try:
        resolved = numpy.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_NAMES)}") from exc
    if resolved.name not in DTYPE_NAMES:
        raise ValueError(f"unsupported dtype {resolved.name!r}; expected one of {', '.join(DTYPE_NAMES)}")
    return resolved


def get_backend(name: str | None = None, dtype=None) -> Backend:
    """The backend called ``name`` (None: ``$NNHP_BACKEND`` or numpy) with ``dtype``
    (None: float32). ``name`` may be a Backend: it keeps its own dtype unless ``dtype``
    names another."""
    if isinstance(name, Backend):
        if dtype is None or numpy.dtype(dtype) == name.dtype:
            return name
        return Backend(name.name, name.xp, resolve_dtype(dtype))
    name = resolve_backend_name(name)
    xp = _load_cupy() if name == "cupy" else numpy
    return Backend(name, xp, resolve_dtype("float32" if dtype is None else dtype))


def array_module(array):
    """``numpy`` or ``cupy``, whichever ``array`` belongs to (CuPy is never imported here)."""
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(array, cupy.ndarray):
        return cupy
    return numpy


def to_numpy(array) -> numpy.ndarray:
    """A NumPy array holding ``array``'s values, wherever ``array`` lives."""
    if array_module(array) is not numpy:
        return array.get()
    return numpy.asarray(array)


def make_rng(seed) -> numpy.random.Generator:
    """The seeded host generator behind every random draw of one model or run."""
    if isinstance(seed, numpy.random.Generator):
        return seed
    return numpy.random.default_rng(seed)
