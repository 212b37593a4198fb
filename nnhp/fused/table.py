"""What "auto" knows: which fused kernels measured faster than the plain code, here.

``calibrate.py`` times each kernel family (a Dense layer's bias + ReLU, dropout, Adam,
...) against the plain NumPy code it replaces, at one size per size class, on this
machine, and writes the speed-ups to a JSON file in the user's cache folder::

    $NNHP_CACHE_DIR, else $XDG_CACHE_HOME/nnhp, else ~/.cache/nnhp
        fused-cpu-<key>.json     {"machine": {...}, "speedups": {"float32": {"dropout": {"14": 6.1, ...}}}}

``<key>`` hashes what the numbers depend on: the CPU model (or the GPU), the Python,
NumPy, numba/CuPy versions and the source of both code paths. A new CPU, a library
upgrade or an edited kernel gets a new file, measured afresh; nothing carries over.

"auto" uses a kernel for an array of ``size`` elements only where its family's
measurement for that size class is at least ``MARGIN`` times faster. Where there is no
measurement yet it uses the plain code and asks for one: ``request_calibration`` starts
``python -m nnhp.fused --compile`` in a separate, low-priority process (once per
process; a lock file keeps it to one per machine), whose file the next lookups find.
``NNHP_JIT_CALIBRATE=0`` turns that off (then only an explicit ``--compile`` measures).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

CACHE_ENV = "NNHP_CACHE_DIR"
CALIBRATE_ENV = "NNHP_JIT_CALIBRATE"
#: A kernel must measure at least this much faster (median of paired timings) to be
#: used: the noise of a timing on a busy machine is a few percent, and a kernel that
#: wins by less than that is not worth the risk of losing.
MARGIN = 1.05
#: Size classes by element count: class e holds [2**e, 2**(e + 2)) and is measured at
#: 2**(e + 1); smaller arrays fall into the first class, larger ones into the last.
CLASSES = tuple(range(6, 22, 2))
#: How long another process's calibration lock counts as live.
LOCK_SECONDS = 3600
#: How often a process looks at the file again, for measurements that arrived meanwhile (seconds).
RECHECK_SECONDS = 2.0

_PACKAGE = pathlib.Path(__file__).resolve().parent.parent          # the nnhp folder
#: The code whose speed is measured: both paths, and the measuring itself.
SOURCES = {"cpu": ("layers.py", "losses.py", "optim.py", "fused/steps.py", "fused/numba_kernels.py",
                   "fused/cpu.py", "fused/calibrate.py"),
           "gpu": ("layers.py", "losses.py", "optim.py", "fused/steps.py", "fused/cuda.py", "fused/calibrate.py")}


def size_class(size: int) -> int:
    """The class of an array of ``size`` elements (see ``CLASSES``)."""
    exponent = (max(int(size), 1).bit_length() - 1) // 2 * 2
    return min(max(exponent, CLASSES[0]), CLASSES[-1])


def cache_dir() -> pathlib.Path:
    """$NNHP_CACHE_DIR, else $XDG_CACHE_HOME/nnhp, else ~/.cache/nnhp."""
    if os.environ.get(CACHE_ENV):
        return pathlib.Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "nnhp"


# --- what the measurements depend on -------------------------------------------------------
def cpu_model() -> str:
    """The CPU's model name (and family/model/stepping where Linux reports them)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as stream:
            for line in stream:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model", "stepping", "Hardware", "CPU part") \
                        and key not in fields:
                    fields[key] = value.strip()
                if not line.strip() and fields:
                    break
    except OSError:
        pass
    name = fields.pop("model name", None) or platform.processor() or platform.machine()
    extra = ", ".join(f"{key} {value}" for key, value in fields.items())
    return f"{name} ({extra})" if extra else name


def _version(distribution: str) -> str | None:
    from importlib import metadata
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _gpu_description() -> dict:
    import cupy
    properties = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = properties["name"]
    return {"gpu": name.decode() if isinstance(name, bytes) else str(name),
            "cupy": cupy.__version__, "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion()}


@functools.cache
def machine(target: str) -> dict:
    """Everything the measurements of ``target`` ("cpu" or "gpu") depend on."""
    import numpy
    sources = hashlib.sha256()
    for name in SOURCES[target]:
        sources.update((_PACKAGE / name).read_bytes())
    if target == "gpu":     # the .cu files: inside an installed package, else in the checkout
        kernels = _PACKAGE / "kernels" if (_PACKAGE / "kernels").is_dir() else _PACKAGE.parent / "kernels"
        for path in sorted(kernels.glob("*.cu*")):
            sources.update(path.read_bytes())
    described = {"target": target, "machine": platform.machine(), "cpu": cpu_model(),
                 "python": platform.python_version(), "numpy": numpy.__version__,
                 "sources": sources.hexdigest()[:16]}
    described.update({"numba": _version("numba")} if target == "cpu" else _gpu_description())
    return described


def path(target: str) -> pathlib.Path:
    """The measurements file for ``target`` on this machine and software."""
    return _path(target, str(cache_dir()))


@functools.cache
def _path(target: str, folder: str) -> pathlib.Path:
    key = hashlib.sha256(json.dumps(machine(target), sort_keys=True).encode()).hexdigest()[:16]
    return pathlib.Path(folder) / f"fused-{target}-{key}.json"


# --- reading and writing -----------------------------------------------------------------------
_loaded: dict = {}      # target -> (when last looked at, the file, its mtime, its contents)
_requested: dict = {}   # (target, dtype) -> the calibration process started for it, or None


def load(target: str) -> dict | None:
    """The measurements file's contents, or None. Looked at again (for a calibration
    finishing in the background, or another cache folder) at most every ``RECHECK_SECONDS``:
    this runs once per fused step of every training batch."""
    now = time.monotonic()
    checked, file, mtime, contents = _loaded.get(target, (-RECHECK_SECONDS, None, None, None))
    if now - checked < RECHECK_SECONDS:
        return contents
    for process in _requested.values():
        if process is not None:
            process.poll()          # reap a finished calibration process
    current_file = path(target)
    try:
        current = current_file.stat().st_mtime_ns
        if current != mtime or current_file != file:
            contents, mtime = json.loads(current_file.read_text()), current
            contents["classes"] = {dtype: {family: {int(size_class): value for size_class, value in by_class.items()}
                                           for family, by_class in families.items()}
                                   for dtype, families in contents["speedups"].items()}
    except (OSError, ValueError):
        contents = mtime = None
    _loaded[target] = (now, current_file, mtime, contents)
    return contents


def forget() -> None:
    """Drop what was read, so the next lookup reads the file (after writing it, or
    pointing NNHP_CACHE_DIR elsewhere)."""
    _loaded.clear()


def save(target: str, dtype: str, speedups: dict) -> pathlib.Path:
    """Record ``{family: {size class: speed-up}}`` for ``dtype``, beside what the file holds."""
    file = path(target)
    file.parent.mkdir(parents=True, exist_ok=True)
    forget()                                # read what is on disk now, not what was
    contents = load(target) or {"machine": machine(target), "speedups": {}}
    contents.pop("classes", None)
    contents["speedups"].setdefault(dtype, {}).update(
        {family: {str(size_class): round(float(value), 3) for size_class, value in by_class.items()}
         for family, by_class in speedups.items()})
    contents["measured"] = time.strftime("%Y-%m-%d %H:%M:%S")
    temporary = file.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(contents, indent=1, sort_keys=True))
    os.replace(temporary, file)       # readers see the old file or the new one, never half of it
    forget()
    return file


def speedup(target: str, dtype: str, family: str, size: int) -> float | None:
    """The measured speed-up of ``family`` at ``size`` elements, or None if not measured."""
    contents = load(target)
    if contents is None:
        return None
    return contents["classes"].get(dtype, {}).get(family, {}).get(size_class(size))


def faster(target: str, dtype: str, family: str, size: int) -> bool | None:
    """Whether the kernel measured at least ``MARGIN`` times faster (None: not measured)."""
    measured = speedup(target, dtype, family, size)
    return None if measured is None else measured >= MARGIN


def any_faster(target: str, dtype: str) -> bool:
    """Whether any family measured faster at any size (so loading the kernels is worth it)."""
    contents = load(target) or {"speedups": {}}
    return any(value >= MARGIN for by_class in contents["speedups"].get(dtype, {}).values()
               for value in by_class.values())


# --- measuring in the background ---------------------------------------------------------------
def calibration_enabled() -> bool:
    return os.environ.get(CALIBRATE_ENV, "").strip().lower() not in ("0", "off", "false", "no")


def lock_path(target: str) -> pathlib.Path:
    return path(target).with_suffix(".lock")


def lock_is_live(target: str) -> bool:
    """Whether another process is measuring ``target`` now (a lock younger than LOCK_SECONDS)."""
    try:
        return time.time() - lock_path(target).stat().st_mtime < LOCK_SECONDS
    except OSError:
        return False


def request_calibration(target: str, dtype: str) -> None:
    """Start measuring ``target`` for ``dtype`` in a separate low-priority process, unless
    this process already asked, another process is measuring, or it is turned off."""
    if (target, dtype) in _requested or not calibration_enabled():
        return
    _requested[target, dtype] = None
    if lock_is_live(target):
        return
    environment = dict(os.environ)
    # The child must import this same nnhp, installed or not.
    environment["PYTHONPATH"] = os.pathsep.join([str(_PACKAGE.parent)] + [
        entry for entry in environment.get("PYTHONPATH", "").split(os.pathsep) if entry])
    try:
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "calibrate.log", "ab") as log:
            _requested[target, dtype] = subprocess.Popen(
                [sys.executable, "-m", "nnhp.fused", "--compile", "--target", target, "--dtypes", dtype,
                 "--background"], stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=environment,
                start_new_session=True, close_fds=True)
    except OSError:
        pass      # no cache folder we may write to, or no process to start: auto stays plain
