"""BLAS threads: how many cores a matrix product may use, for the duration of a block.

::

    with limit_blas_threads(1):
        ...                      # every NumPy/SciPy matrix product here runs on one thread

The matrices nnhp multiplies while tuning are small: an MLP of a few hundred units on a
mini-batch of 32-256 rows, or a Gaussian process over a few hundred observations. Splitting
such a product across cores costs more in waking and synchronizing threads than it saves; on
a busy 2-core machine we measured digits networks up to 30x slower, and a GP suggestion 10x
slower, with two OpenBLAS threads than with one. Parallelism comes from running trials side
by side instead.

The limit goes through ``threadpoolctl`` (installed with scikit-learn); without it the block
runs unchanged.
"""
from __future__ import annotations

import contextlib

__all__ = ["limit_blas_threads"]

_CONTROLLER = []        # one threadpoolctl controller per process, built on first use (it scans libraries)


def _controller():
    if not _CONTROLLER:
        try:
            import threadpoolctl
            _CONTROLLER.append(threadpoolctl.ThreadpoolController())
        except ImportError:       # pragma: no cover - optional
            _CONTROLLER.append(None)
    return _CONTROLLER[0]


def limit_blas_threads(n_threads: int | None = 1):
    """A context in which BLAS uses at most ``n_threads`` threads; None leaves them alone."""
    if n_threads is None:
        return contextlib.nullcontext()
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ValueError(f"BLAS threads must be a positive integer or None, got {n_threads!r}")
    controller = _controller()
    if controller is None:
        return contextlib.nullcontext()
    return controller.limit(limits=n_threads, user_api="blas")
