"""The validators every module shares: a bad value is refused where it enters, in one voice.

Each check returns the value in canonical form (a float, an int, a name from a list) or raises
with a message that names the value, what it got and what was expected::

    lr = number(lr, "lr", low=0.0, owner="SGD")          # SGD: lr must be a finite number >= 0.0, got -1.0
    epochs = integer(epochs, "epochs", low=1)            # epochs must be an integer >= 1; got 0
    name = one_of("adma", "optimizer", ["adam", "sgd"])  # unknown optimizer 'adma' (did you mean 'adam'?) ...

A value of the wrong *type* raises TypeError, a value of the right type out of its range
ValueError, except where a caller asks for ValueError throughout (``integer(..., error=ValueError)``;
the data checks have always raised ValueError for both, and callers rely on it).

``memory(n_bytes, what)`` refuses an allocation that cannot fit before it is tried: NumPy on an
overcommitting kernel "succeeds" at allocating 80 GB and the process is killed later, when the
pages are touched.
"""
from __future__ import annotations

import difflib
import math
import numbers
import os

__all__ = ["number", "integer", "fraction", "probability", "one_of", "did_you_mean", "memory", "available_memory",
           "format_bytes"]


def _prefix(owner: str | None) -> str:
    return f"{owner}: " if owner else ""


def number(value, name: str, *, low=None, high=None, low_open: bool = False, high_open: bool = False,
           owner: str | None = None, error=None) -> float:
    """``float(value)``, which must be finite and within the bounds (open or closed), else an error.

    ``error``: the exception type for every failure (default: TypeError for a non-number,
    ValueError for a number out of bounds).
    """
    if isinstance(value, bool) or isinstance(value, (str, bytes)):
        raise (error or TypeError)(f"{_prefix(owner)}{name} must be a number, got {value!r}")
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise (error or TypeError)(f"{_prefix(owner)}{name} must be a number, got {value!r}") from None
    ok = math.isfinite(as_float)
    if low is not None:
        ok = ok and (as_float > low if low_open else as_float >= low)
    if high is not None:
        ok = ok and (as_float < high if high_open else as_float <= high)
    if not ok:
        if low == 0 and low_open and high is None:
            raise (error or ValueError)(f"{_prefix(owner)}{name} must be a positive number, got {value!r}")
        lower = "" if low is None else f"{'>' if low_open else '>='} {low}"
        upper = "" if high is None else f"{'<' if high_open else '<='} {high}"
        bounds = " and ".join(bound for bound in (lower, upper) if bound)
        raise (error or ValueError)(f"{_prefix(owner)}{name} must be a finite number {bounds}".rstrip()
                                    + f", got {value!r}")
    return as_float


def probability(value, name: str) -> float:
    """A rate in [0, 1) (a dropout rate, a momentum), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1); got {value!r}")
    return float(value)


def integer(value, name: str, *, low: int | None = None, high: int | None = None, owner: str | None = None,
            error=None) -> int:
    """``int(value)`` for an integer (not a bool, not a float) in [low, high], else an error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        expected = f"an integer >= {low}" if low is not None else "an integer"
        raise (error or TypeError)(f"{_prefix(owner)}{name} must be {expected}; got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = " and ".join(part for part in (f">= {low}" if low is not None else "",
                                                f"<= {high}" if high is not None else "") if part)
        raise (error or ValueError)(f"{_prefix(owner)}{name} must be an integer {bounds}; got {value!r}")
    return value


def fraction(value, name: str, *, owner: str | None = None) -> float:
    """A number strictly between 0 and 1 (a share of the rows, say), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < value < 1.0:
        raise ValueError(f"{_prefix(owner)}{name} must be a fraction strictly between 0 and 1; got {value!r}")
    return float(value)


def did_you_mean(name, valid) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``valid`` to ``name``, or ``""`` when none is close."""
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, [str(v) for v in valid], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def one_of(value, name: str, valid, *, owner: str | None = None):
    """``value`` when it is one of ``valid``; else ValueError listing them, with the nearest match."""
    valid = list(valid)
    if isinstance(value, str) and value in valid:
        return value
    if not isinstance(value, str) and any(value == v and type(value) is type(v) for v in valid):
        return value
    raise ValueError(f"{_prefix(owner)}unknown {name} {value!r}{did_you_mean(value, valid)}; "
                     f"expected one of {', '.join(map(str, valid))}")


def format_bytes(n_bytes: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f} {unit}"
    return f"{int(n_bytes)} bytes"


def available_memory() -> int | None:
    """Bytes of memory this process may still use: the smaller of the free physical memory
    (``MemAvailable``) and a cgroup limit's headroom, where the system says; else None."""
    candidates = []
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    candidates.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file) as handle:
                limit = handle.read().strip()
            with open(usage_file) as handle:
                usage = int(handle.read().strip())
            if limit.isdigit() and int(limit) < 2 ** 60:
                candidates.append(max(int(limit) - usage, 0))
            break
        except (OSError, ValueError):
            continue
    if not candidates and hasattr(os, "sysconf"):
        try:
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError):
            pass
    return min(candidates) if candidates else None


def memory(n_bytes: int, what: str) -> None:
    """MemoryError naming ``what`` and both sizes when ``n_bytes`` exceed the available memory."""
    free = available_memory()
    if free is not None and n_bytes > free:
        raise MemoryError(f"{what} needs {format_bytes(n_bytes)} of memory; {format_bytes(free)} is available")
