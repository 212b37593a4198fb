"""Model files (nnhp/checkpoint.py): written atomically with the right mode, read as if hostile (issue 12)."""
import io
import json
import os
import stat
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import nnhp
from nnhp import checkpoint


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def meta_for(sizes, **changes):
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers.append({"type": "Dense", "config": {"n_in": n_in, "n_out": n_out, "init": "xavier_uniform"}})
        layers.append({"type": "ReLU", "config": {}})
    meta = {"format": "nnhp-model", "version": 2, "layers": layers[:-1], "dtype": "float32", "loss": None,
            "seed": 0, "class": "Sequential"}
    meta.update(changes)
    return np.array(json.dumps(meta))


# --- reading: nothing trusted, nothing allocated before the checks ---------------------------------
def test_a_tiny_file_claiming_a_huge_architecture_is_refused_fast_and_small(tmp_path):
    # 2-6000-6000 claimed by the metadata, with weights that are a few bytes: refused before a
    # 6000 x 6000 array exists (it took 2.3 s and 584 MiB before issue 12).
    path = write_npz(tmp_path / "liar.npz", meta=meta_for([2, 6000, 6000]), W1=np.ones((2, 3), np.float32),
                     b1=np.ones(3, np.float32), W2=np.ones((3, 6000), np.float32), b2=np.ones(6000, np.float32))
    assert os.path.getsize(path) < 100_000
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"'W1' has shape \(2, 3\) but the architecture gives it \(2, 6000\)"):
        nnhp.load(path)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 1.0 and peak < 5_000_000


def test_a_header_that_claims_more_bytes_than_the_file_holds_is_refused(tmp_path):
    # A forged .npy header: shape (2, 6000) in the header, 24 bytes of data after it.
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (2, 6000)})
    path = tmp_path / "forged.npz"
    with zipfile.ZipFile(path, "w") as archive:
        buffer = io.BytesIO()
        np.save(buffer, meta_for([2, 6000, 1]))
        archive.writestr("meta.npy", buffer.getvalue())
        archive.writestr("W1.npy", header.getvalue() + b"\0" * 24)
    with pytest.raises(ValueError, match="'W1.npy' claims shape \\(2, 6000\\).* but holds 24 bytes"):
        nnhp.load(path)


def test_a_billion_units_is_a_clear_error_not_a_memory_error(tmp_path):
    path = write_npz(tmp_path / "big.npz", meta=meta_for([2, 10**9, 2]), W1=np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="'W1' has shape"):
        nnhp.load(path)


def test_metadata_that_does_not_belong_to_its_weights_is_refused(tmp_path):
    # 4-2-4 metadata on the weights of a 2-4-2 model: the same 22 numbers in all, so the old
    # total-count check let it load silently.
    model = nnhp.MLP([2, 4, 2], seed=0)
    arrays = dict(zip(["W1", "b1", "W2", "b2"], model.params))
    path = write_npz(tmp_path / "swapped.npz", meta=meta_for([4, 2, 4]), **arrays)
    with pytest.raises(ValueError, match=r"'W1' has shape \(2, 4\) but the architecture gives it \(4, 2\)"):
        nnhp.load(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused(tmp_path, bad):
    model = nnhp.MLP([3, 4, 2], seed=0)
    model.flat_params[5] = bad
    path = model.save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="'W1' holds 1 NaN or infinite weight"):
        nnhp.load(path)


@pytest.mark.parametrize("meta, field", [
    ([1, 2, 3], "metadata is a list"),
    ({"format": "nnhp-model"}, "version must be a positive integer"),
    ({"format": "nnhp-model", "version": 2, "dtype": "float16"}, "dtype must be 'float32' or 'float64'"),
    ({"format": "nnhp-model", "version": 2, "dtype": "float32"}, "layers must be a non-empty list"),
    ({"format": "nnhp-model", "version": 2, "dtype": "float32", "layers": "abc"}, "layers must be a non-empty list"),
    ({"format": "nnhp-model", "version": 2, "dtype": "float32", "layers": ["Dense"]}, r"layers\[0\] must be an object"),
    ({"format": "nnhp-model", "version": 2, "dtype": "float32", "layers": [{"type": "Conv"}]},
     r"layers\[0\].type 'Conv' is not a layer type"),
    ({"format": "nnhp-model", "version": 2, "dtype": "float32",
      "layers": [{"type": "Dense", "config": {"n_in": "abc", "n_out": 2}}]},
     r"layers\[0\].config.n_in must be a positive integer; got 'abc'"),
    ({"format": "nnhp-model", "version": 2, "dtype": "float32",
      "layers": [{"type": "Dense", "config": {"n_in": 2, "n_out": 2, "init": "magic"}}]},
     r"layers\[0\].config is invalid: unknown init 'magic'"),
    ({"format": "nnhp-model", "version": 2, "dtype": "float32",
      "layers": [{"type": "Dense", "config": {"n_in": 2, "n_out": 3}}, {"type": "Dense", "config": {"n_in": 4, "n_out": 1}}]},
     r"layers\[1\].config.n_in is 4 but the layer before gives 3 outputs"),
    ({"format": "nnhp-model", "version": 2, "dtype": "float32", "loss": "kl",
      "layers": [{"type": "Dense", "config": {"n_in": 2, "n_out": 2}}]}, "loss must be a loss name"),
    ({"format": "nnhp-model", "version": 2, "dtype": "float32", "seed": "x",
      "layers": [{"type": "Dense", "config": {"n_in": 2, "n_out": 2}}]}, "seed must be null"),
    ({"format": "nnhp-model", "version": 2, "dtype": "float32",
      "layers": [{"type": "Dropout", "config": {"p": 1.5}}, {"type": "Dense", "config": {"n_in": 2, "n_out": 2}}]},
     r"layers\[0\].config is invalid: Dropout rate p must be in \[0, 1\)"),
])
def test_missing_or_mistyped_metadata_names_the_field(tmp_path, meta, field):
    path = write_npz(tmp_path / "m.npz", meta=np.array(json.dumps(meta)), W1=np.ones((2, 2), np.float32),
                     b1=np.ones(2, np.float32))
    with pytest.raises(ValueError, match=field):
        nnhp.load(path)


def test_a_compressed_or_object_array_is_refused(tmp_path):
    model = nnhp.MLP([3, 4, 2], seed=0)
    path = model.save(tmp_path / "m.npz")
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    np.savez_compressed(tmp_path / "c.npz", **arrays)
    with pytest.raises(ValueError, match="compressed array"):
        nnhp.load(tmp_path / "c.npz")
    np.savez(tmp_path / "o.npz", meta=arrays["meta"], W1=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="Python objects"):
        nnhp.load(tmp_path / "o.npz")


def test_a_version_1_file_still_loads(tmp_path):
    model = nnhp.MLP([3, 4, 2], seed=0)
    meta = json.loads(str(meta_for([3, 4, 2], version=1)))
    path = write_npz(tmp_path / "v1.npz", meta=np.array(json.dumps(meta)), flat_params=model.flat_params)
    np.testing.assert_array_equal(nnhp.load(path).flat_params, model.flat_params)


def test_save_and_load_round_trip_the_weights_and_loss(tmp_path):
    model = nnhp.MLP([3, 5, 2], activation="tanh", dropout=0.2, seed=3, dtype="float64")
    model.loss_name = "cross_entropy"
    path = model.save(tmp_path / "model")
    assert path == str(tmp_path / "model.npz")
    loaded = nnhp.load(path)
    np.testing.assert_array_equal(loaded.flat_params, model.flat_params)
    assert loaded.loss_name == "cross_entropy" and loaded.backend.dtype == np.float64


# --- writing: atomic, durable, with the file's own mode --------------------------------------------
@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_model_file_takes_its_mode_from_the_umask(tmp_path, umask, expected):
    previous = os.umask(umask)
    try:
        path = nnhp.MLP([2, 3, 2]).save(tmp_path / "m.npz")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(path).st_mode) == expected


def test_overwriting_keeps_the_existing_files_mode(tmp_path):
    path = tmp_path / "m.npz"
    nnhp.MLP([2, 3, 2]).save(path)
    os.chmod(path, 0o664)
    previous = os.umask(0o077)
    try:
        nnhp.MLP([2, 3, 2], seed=1).save(path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o664


def test_a_save_fsyncs_the_file_and_its_folder(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def spy(descriptor):
        synced.append(stat.S_ISDIR(os.fstat(descriptor).st_mode))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", spy)
    nnhp.MLP([2, 3, 2]).save(tmp_path / "m.npz")
    assert synced == [False, True]          # the file's bytes first, then the rename in its folder


def test_saving_into_a_missing_folder_names_the_users_path_not_a_temporary_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="nodir/m.npz: the folder .*nodir does not exist") as info:
        nnhp.MLP([2, 3, 2]).save(tmp_path / "nodir" / "m.npz")
    assert ".tmp" not in str(info.value)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "m.npz"
    first = nnhp.MLP([2, 3, 2], seed=0)
    first.save(path)

    def broken(stream):
        stream.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        checkpoint.atomic_write(str(path), broken)
    np.testing.assert_array_equal(nnhp.load(path).flat_params, first.flat_params)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_metadata_nested_200000_deep_is_a_clear_error(tmp_path):
    path = write_npz(tmp_path / "deep.npz", meta=np.array("[" * 200_000 + "]" * 200_000))
    with pytest.raises(ValueError, match="its metadata is not JSON"):
        nnhp.load(path)
