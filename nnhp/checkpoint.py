"""Model files: written so that a crash never leaves half a file, read as if written by an enemy.

A model file is an ``.npz`` archive (a zip of ``.npy`` arrays) holding

* ``meta``: JSON text -- ``format`` ("nnhp-model"), ``version``, ``layers`` (each layer's type
  and constructor arguments), ``dtype``, ``loss``, ``seed``;
* one array per parameter tensor, in the model's order: ``W1``, ``b1``, ``W2``, ``b2``, ...
  (version 2; version 1 files hold one ``flat_params`` array instead, and still load).

Writing (:func:`atomic_write`)
------------------------------
The archive goes to a temporary file in the destination's folder, is flushed and ``fsync``-ed,
takes the mode the destination already had (a new file: the process's umask, as ``open`` would
give it), and is renamed over the destination; then the folder is ``fsync``-ed so the rename
itself survives a power cut. A crash at any moment leaves either the old file or the new one.

Reading (:func:`read_model`, behind ``nnhp.load``)
--------------------------------------------------
Nothing in the file is trusted until checked, and nothing is allocated for it until the checks
pass: ``allow_pickle=False`` (an array never runs code), the metadata field by field (a bad one
is named: ``layers[2].config.n_out``), each array's *header* (shape and dtype, read without its
data) against the shape the architecture gives that tensor, and each array's header against its
byte count in the archive -- so a 2 KB file claiming a 6000 x 6000 layer is refused before a
6000 x 6000 array exists. Only then are the weights read (the zip's CRC checks every byte) and
refused if any is NaN or infinite, and the model is built. Every failure is a ValueError (or
FileNotFoundError) that names the file.

Training checkpoints (:func:`checkpoint_state`, :func:`restore_checkpoint`)
--------------------------------------------------------------------------
What a promoted Hyperband trial, or a resumed training, continues from: the model's weights and
generator state, the optimizer's ``state_dict`` and the epoch count, as a flat dict of plain
arrays (:func:`state_to_arrays` flattens a ``state_dict``: buffers as arrays, the rest as JSON
text), so that it too is stored and read back without pickle.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile

import numpy

from . import _checks
from .backend import to_numpy

__all__ = ["save_model", "read_model", "atomic_write", "read_npz", "FORMAT", "FORMAT_VERSION",
           "checkpoint_state", "restore_checkpoint", "state_to_arrays", "state_from_arrays"]

FORMAT = "nnhp-model"
FORMAT_VERSION = 2          # 2: one array per tensor; 1: a single flat_params array
_MAX_META_BYTES = 1 << 20   # the metadata is a few kB; a larger one is not ours


# --- writing ------------------------------------------------------------------------------------
def _umask() -> int:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)          # no /proc: read it the old way (set and restore)
    os.umask(mask)
    return mask


def _fsync_folder(folder: str) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:             # e.g. Windows, where a folder cannot be opened
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def check_writable(path: str, what: str = "file") -> str:
    """``path`` when a file can be written there (its folder exists, it is not a folder); else
    OSError naming the user's path. For checking an output path before the work that fills it."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write the {what} {path}: it is a directory")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write the {what} {path}: the folder {os.path.dirname(path) or folder} "
                                "does not exist")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"cannot write the {what} {path}: no permission to write in {folder}")
    return path


def atomic_write(path, write, what: str = "file") -> str:
    """Call ``write(stream)`` on a temporary file, then put it in place at ``path`` (module docstring)."""
    path = check_writable(path, what)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OSError(f"cannot write the {what} {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    _fsync_folder(folder)
    return path


def _param_names(model) -> list[str]:
    """``W1, b1, W2, b2, ...``: one name per tensor of ``model.params``, numbered by layer."""
    names, number = [], 0
    for layer in model.layers:
        shapes = layer.param_shapes()
        if shapes:
            number += 1
            letters = ["W", "b"] if len(shapes) == 2 else [f"p{i}_" for i in range(len(shapes))]
            names += [f"{letter}{number}" for letter in letters]
    return names


def save_model(model, path) -> str:
    """Write ``model`` to ``path`` (``.npz`` appended when missing); returns the path written."""
    from .backend import to_numpy

    seed = model.seed if model.seed is None or isinstance(model.seed, (int, list)) else None
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "layers": model.architecture(),
            "dtype": model.backend.dtype.name, "loss": model.loss_name, "seed": seed,
            "class": type(model).__name__}
    arrays = {"meta": numpy.array(json.dumps(meta))}
    for name, param in zip(_param_names(model), model.params):
        arrays[name] = to_numpy(param)
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    return atomic_write(path, lambda stream: numpy.savez(stream, **arrays), what="model file")


# --- reading ------------------------------------------------------------------------------------
class _Archive:
    """An ``.npz`` opened for checking: every member's header is read up front, data on request."""

    def __init__(self, source, what: str):
        self.what = what
        if isinstance(source, (str, os.PathLike)):
            size = os.path.getsize(source)
        else:
            size = source.seek(0, os.SEEK_END)
            source.seek(0)
        self.zip = zipfile.ZipFile(source)
        self.headers = {}           # name (without .npy) -> (shape, dtype, fortran_order)
        try:
            for info in self.zip.infolist():
                self._check_member(info, size)
        except BaseException:
            self.zip.close()
            raise

    def _check_member(self, info: zipfile.ZipInfo, archive_size: int) -> None:
        if not info.filename.endswith(".npy"):
            raise ValueError(f"it holds {info.filename!r}, which is not an array")
        if info.compress_type != zipfile.ZIP_STORED:
            raise ValueError(f"it holds a compressed array ({info.filename!r}); nnhp writes them uncompressed")
        # The sizes in the zip's directory are claims too: a stored member's data must fit in the file.
        if info.compress_size != info.file_size or info.header_offset + info.compress_size > archive_size:
            raise ValueError(f"{info.filename!r} claims {info.file_size} bytes that the file does not hold")
        with self.zip.open(info) as stream:
            version = numpy.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = numpy.lib.format.read_array_header_1_0(stream)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = numpy.lib.format.read_array_header_2_0(stream)
            else:
                raise ValueError(f"{info.filename!r} has an unknown .npy version {version}")
            data_offset = stream.tell()
        if dtype.hasobject:
            raise ValueError(f"{info.filename!r} holds Python objects; nnhp files hold numbers only")
        n_bytes = math.prod(shape) * dtype.itemsize
        if info.file_size != data_offset + n_bytes:
            raise ValueError(f"{info.filename!r} claims shape {shape} ({n_bytes} bytes of {dtype}) but holds "
                             f"{max(info.file_size - data_offset, 0)} bytes")
        self.headers[info.filename[:-4]] = (tuple(shape), dtype, fortran)

    def close(self):
        self.zip.close()


def read_npz(source, what: str, kind: str = "array archive") -> dict:
    """Every array of an ``.npz`` (a path or a file object), each checked against its byte count
    before it is allocated; ValueError naming ``what`` for anything that is not such an archive."""
    archive = _open_archive(source, what, kind)
    try:
        return {name: _read_checked(archive, name) for name in archive.headers}
    finally:
        archive.close()


# The exceptions a damaged zip or .npy header raises inside zipfile and numpy, depending on which
# byte went bad. Caught only around reading the file, and turned into one ValueError naming it.
_DAMAGED = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, KeyError, TypeError,
            IndexError, OverflowError, SyntaxError, UnicodeDecodeError, NotImplementedError, AttributeError,
            RuntimeError)


def _open_archive(source, what: str, kind: str) -> _Archive:
    try:
        return _Archive(source, what)
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise ValueError(f"{what} is a directory, not a {kind}") from None
    except _DAMAGED as exc:
        problem = str(exc) if type(exc) is ValueError else f"{type(exc).__name__}: {exc}"
        raise ValueError(f"{what} is not a readable {kind} (truncated or foreign: {problem})") from None


def _read_checked(archive: _Archive, name: str) -> numpy.ndarray:
    try:
        with archive.zip.open(name + ".npy") as stream:
            return numpy.lib.format.read_array(stream, allow_pickle=False)
    except _DAMAGED as exc:
        raise ValueError(f"{archive.what}: the array {name!r} is damaged ({type(exc).__name__}: {exc})") from None


def _field_error(path, field: str, problem: str) -> ValueError:
    return ValueError(f"{path} is not a valid nnhp model file: {field} {problem}")


def _read_meta(archive: _Archive, path) -> dict:
    if "meta" not in archive.headers:
        raise ValueError(f"{path} is not an nnhp model file (no model metadata inside)")
    shape, dtype, _ = archive.headers["meta"]
    if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * _MAX_META_BYTES:
        raise ValueError(f"{path} is not an nnhp model file (its 'meta' entry is not JSON text)")
    try:
        meta = json.loads(str(_read_checked(archive, "meta")))
    except (json.JSONDecodeError, RecursionError) as exc:      # RecursionError: nested a million deep
        raise ValueError(f"{path} is not a readable nnhp model file (its metadata is not JSON: {exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path} is not an nnhp model file (its metadata is a {type(meta).__name__}, not an object)")
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not an nnhp model file (format {meta.get('format')!r})")
    version = meta.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _field_error(path, "version", f"must be a positive integer; got {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path} was written by a newer nnhp (format version {version})")
    if meta.get("dtype") not in ("float32", "float64"):
        raise _field_error(path, "dtype", f"must be 'float32' or 'float64'; got {meta.get('dtype')!r}")
    loss = meta.get("loss")
    if loss is not None:
        from . import losses
        if not isinstance(loss, str) or losses.ALIASES.get(loss, loss) not in losses.LOSSES:
            raise _field_error(path, "loss", f"must be a loss name or null; got {loss!r}")
    seed = meta.get("seed")
    seeds = seed if isinstance(seed, list) else [seed]
    if seed is not None and not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise _field_error(path, "seed", f"must be null, a non-negative integer or a list of them; got {seed!r}")
    if not isinstance(meta.get("layers"), list) or not meta["layers"]:
        raise _field_error(path, "layers", f"must be a non-empty list; got {meta.get('layers')!r:.80}")
    return meta


def _build_layers(meta: dict, path) -> list:
    """The layers the metadata describes (no parameters are allocated by a layer), each checked."""
    from . import layers as layer_types

    stack, previous_width = [], None
    for index, entry in enumerate(meta["layers"]):
        field = f"layers[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise _field_error(path, field, f"must be an object with a 'type'; got {entry!r:.80}")
        if entry["type"] not in layer_types.LAYER_TYPES:
            raise _field_error(path, f"{field}.type", f"{entry['type']!r} is not a layer type "
                               f"({', '.join(layer_types.LAYER_TYPES)})")
        config = entry.get("config", {})
        if not isinstance(config, dict):
            raise _field_error(path, f"{field}.config", f"must be an object; got {config!r:.80}")
        if entry["type"] == "Dense":
            for key in ("n_in", "n_out"):
                value = config.get(key)
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise _field_error(path, f"{field}.config.{key}", f"must be a positive integer; got {value!r}")
            gain = config.get("gain")
            if gain is not None and (isinstance(gain, bool) or not isinstance(gain, (int, float))
                                     or not math.isfinite(gain)):
                raise _field_error(path, f"{field}.config.gain", f"must be a finite number or null; got {gain!r}")
            if previous_width is not None and config["n_in"] != previous_width:
                raise _field_error(path, f"{field}.config.n_in", f"is {config['n_in']} but the layer before "
                                   f"gives {previous_width} outputs")
            previous_width = config["n_out"]
        try:
            stack.append(layer_types.from_config(entry["type"], config))
        except (TypeError, ValueError) as exc:
            raise _field_error(path, f"{field}.config", f"is invalid: {exc}") from None
    if not any(isinstance(layer, layer_types.Dense) for layer in stack):
        raise _field_error(path, "layers", "hold no Dense layer")
    return stack


def _check_tensors(archive: _Archive, stack: list, meta: dict, path) -> list[str]:
    """The names of the weight arrays, after checking each header against the architecture."""
    shapes = [shape for layer in stack for shape in layer.param_shapes()]
    dtype = numpy.dtype(meta["dtype"])
    if meta["version"] == 1:
        expected = {"flat_params": (sum(math.prod(shape) for shape in shapes),)}
    else:
        class _Model:       # _param_names needs only the layers
            layers = stack
        expected = dict(zip(_param_names(_Model), shapes))
    for name, shape in expected.items():
        if name not in archive.headers:
            raise ValueError(f"{path} is not an nnhp model file (the array {name!r} is missing)")
        found, found_dtype, _ = archive.headers[name]
        if name == "flat_params" and found != shape:
            count = math.prod(found)
            raise ValueError(f"{path}: holds {count} weights but its architecture needs {shape[0]} (file damaged?)")
        if found != shape:
            raise ValueError(f"{path}: the array {name!r} has shape {found} but the architecture gives it {shape} "
                             "(file damaged, or its metadata does not belong to its weights)")
        if found_dtype.kind != "f":
            raise ValueError(f"{path}: the array {name!r} holds {found_dtype}, not floating-point weights")
    extra = set(archive.headers) - set(expected) - {"meta"}
    if extra:
        raise ValueError(f"{path} is not an nnhp model file (unexpected arrays {sorted(extra)})")
    n_params = sum(math.prod(shape) for shape in shapes)
    _checks.memory(2 * n_params * dtype.itemsize, f"the model in {path} ({n_params:,} parameters)")
    return list(expected)


def read_model(path) -> tuple[list, dict, numpy.ndarray]:
    """``(layers, metadata, flat weights)`` of the model saved at ``path``, every check run (module
    docstring) before anything is built; ``nnhp.load`` makes the model of them."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file not found: {path}")
    if os.path.isfile(path):
        with open(path, "rb") as handle:
            if handle.read(6) == b"\x93NUMPY":
                raise ValueError(f"{path} is not an nnhp model file (a single array, not an .npz archive)")
    archive = _open_archive(path, path, "nnhp model file")
    try:
        meta = _read_meta(archive, path)
        stack = _build_layers(meta, path)
        names = _check_tensors(archive, stack, meta, path)
        arrays = [_read_checked(archive, name) for name in names]
    finally:
        archive.close()
    for name, array in zip(names, arrays):
        finite = numpy.isfinite(array)
        if not finite.all():
            raise ValueError(f"{path}: the array {name!r} holds {int(array.size - finite.sum())} NaN or infinite "
                             "weight(s); a model with them predicts nothing useful")
    flat = numpy.concatenate([array.reshape(-1) for array in arrays]) if len(arrays) > 1 else arrays[0].reshape(-1)
    return stack, meta, flat


# --- training checkpoints: model, optimizer and epoch as plain arrays ---------------------------
def checkpoint_state(model, optimizer, epoch: int) -> dict:
    """Everything needed to continue training later, as a flat dict of NumPy arrays
    (safe for ``numpy.savez`` / ``numpy.load(allow_pickle=False)``): model weights and
    generator state, optimizer state, and the number of epochs already run."""
    state = {f"model/{key}": value for key, value in model.get_state().items()}
    state.update({f"optimizer/{key}": value for key, value in state_to_arrays(optimizer.state_dict()).items()})
    state["epoch"] = numpy.array(int(epoch))
    return state


def restore_checkpoint(state: dict, model, optimizer) -> int:
    """Load a ``checkpoint_state`` dict into ``model`` and ``optimizer``; returns its epoch."""
    model.set_state({key[len("model/"):]: value for key, value in state.items() if key.startswith("model/")})
    optimizer.load_state_dict(state_from_arrays(
        {key[len("optimizer/"):]: value for key, value in state.items() if key.startswith("optimizer/")}))
    return int(state["epoch"])


# --- checkpoints as plain arrays ----------------------------------------------------
_META_KEY = "meta"


def state_to_arrays(state_dict: dict) -> dict:
    """Flatten a ``state_dict`` into ``{str: numpy.ndarray}``, storable with ``numpy.savez``.

    Lists of arrays (per-parameter buffers) become entries ``"key/i"`` (or
    ``"key/name/i"`` one dict level down); everything else (numbers, strings, bools,
    None, tuples) is written as JSON into the string entry ``"meta"``. Reading back
    needs no pickle: ``state_from_arrays(dict(numpy.load(path, allow_pickle=False)))``.
    """
    arrays, meta, lists = {}, {}, {}

    def put_list(prefix, values):
        lists[prefix] = len(values)
        for index, value in enumerate(values):
            arrays[f"{prefix}/{index}"] = numpy.array(to_numpy(value), copy=True)

    for key, value in state_dict.items():
        if "/" in key or key == _META_KEY:
            raise ValueError(f"state_to_arrays: key {key!r} may not contain '/' or be {_META_KEY!r}")
        if isinstance(value, dict):
            plain = {}
            for name, inner in value.items():
                if _is_array_list(inner):
                    put_list(f"{key}/{name}", inner)
                else:
                    plain[name] = inner
            meta[key] = plain
        elif _is_array_list(value):
            put_list(key, value)
        else:
            meta[key] = value
    arrays[_META_KEY] = numpy.array(json.dumps({"values": meta, "lists": lists}))
    return arrays


def state_from_arrays(arrays: dict) -> dict:
    """Rebuild the ``state_dict`` that ``state_to_arrays`` flattened (tuples come back as lists)."""
    if _META_KEY not in arrays:
        raise ValueError(f"state_from_arrays: no {_META_KEY!r} entry; not written by state_to_arrays")
    decoded = json.loads(str(numpy.asarray(arrays[_META_KEY])[()]))
    state = decoded["values"]
    for prefix, length in decoded["lists"].items():
        values = [numpy.array(arrays[f"{prefix}/{index}"], copy=True) for index in range(length)]
        key, _, name = prefix.partition("/")
        if name:
            state.setdefault(key, {})[name] = values
        else:
            state[key] = values
    return state


def _is_array_list(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(hasattr(v, "shape") for v in value)
