"""What every benchmark script does first, before NumPy loads: import this module.

Importing it puts this checkout (and the benchmarks folder) at the front of ``sys.path``, so a
script measures the nnhp beside it, installed or not. :func:`machine_blas` then gives the process
the machine's own BLAS: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which a shared environment may set
to pin OpenBLAS to one CPU model's kernels, are removed, so the figures are this machine's. Scripts
whose runs go to several worker processes also ask for one BLAS thread per process. Only a script
run as ``__main__`` calls it; a test importing a benchmark keeps its own environment.
"""
from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _path in (HERE, ROOT):        # HERE is there already when a script imported this
    if _path not in sys.path:
        sys.path.insert(0, _path)

BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def machine_blas(one_thread: bool = False) -> None:
    """Drop the BLAS overrides (and with ``one_thread``, hold BLAS to one thread per process).

    Must run before NumPy is imported: OpenBLAS reads these variables once, when it loads."""
    if "numpy" in sys.modules:
        raise RuntimeError("bench_env.machine_blas() must run before NumPy is imported")
    for name in BLAS_OVERRIDES:
        os.environ.pop(name, None)
    if one_thread:
        for name in THREAD_VARIABLES:
            os.environ[name] = "1"
