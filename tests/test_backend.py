"""nnhp/backend.py: choosing the array module and dtype, and the errors when that fails."""
import importlib.util
import sys
import types

import numpy as np
import pytest

import nnhp
from nnhp import backend
from nnhp.backend import BackendError, array_module, get_backend, make_rng, to_numpy


def cupy_with_gpu_available() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


@pytest.fixture(autouse=True)
def no_backend_env(monkeypatch):
    monkeypatch.delenv("NNHP_BACKEND", raising=False)


def test_default_backend_is_numpy_float32():
    chosen = get_backend()
    assert chosen.name == "numpy" and chosen.xp is np and chosen.dtype == np.float32


@pytest.mark.parametrize("dtype", ["float32", "float64", np.float64, np.dtype("float32")])
def test_supported_dtypes(dtype):
    assert get_backend("numpy", dtype).dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype, message", [("float16", "unsupported dtype 'float16'"),
                                            ("int32", "unsupported dtype 'int32'"),
                                            ("complex128", "unsupported dtype"),
                                            ("banana", "unknown dtype 'banana'")])
def test_unsupported_dtype_is_a_clear_error(dtype, message):
    with pytest.raises(ValueError, match=message):
        get_backend("numpy", dtype)


@pytest.mark.parametrize("name", ["tensorflow", "jax", "", "gpu"])
def test_unknown_backend_name_is_a_clear_error(name):
    with pytest.raises(ValueError, match=f"unknown backend '{name}'; expected one of numpy, cupy"):
        get_backend(name)


def test_backend_name_is_case_insensitive():
    assert get_backend(" NumPy ").name == "numpy"


def test_environment_variable_chooses_the_backend(monkeypatch):
    monkeypatch.setenv("NNHP_BACKEND", "numpy")
    assert get_backend(None).name == "numpy"
    monkeypatch.setenv("NNHP_BACKEND", "theano")
    with pytest.raises(ValueError, match="unknown backend 'theano'"):
        get_backend(None)
    with pytest.raises(ValueError, match="unknown backend 'theano'"):
        nnhp.MLP([3, 2])               # models read it too when backend=None
    assert nnhp.MLP([3, 2], backend="numpy").backend.name == "numpy"   # an explicit name wins


def test_empty_environment_variable_means_numpy(monkeypatch):
    monkeypatch.setenv("NNHP_BACKEND", "")
    assert get_backend(None).name == "numpy"


@pytest.mark.skipif(cupy_with_gpu_available(), reason="CuPy and a GPU are present: cupy is a valid backend here")
def test_cupy_without_cupy_or_gpu_is_a_backend_error(monkeypatch):
    with pytest.raises(BackendError, match="backend 'cupy'"):
        get_backend("cupy")
    with pytest.raises(BackendError, match="backend 'cupy'"):
        nnhp.MLP([3, 2], backend="cupy")
    monkeypatch.setenv("NNHP_BACKEND", "cupy")
    with pytest.raises(BackendError, match="backend 'cupy'"):
        nnhp.MLP([3, 2])


def test_missing_cupy_error_says_how_to_install(monkeypatch):
    """Simulate a machine without CuPy, whatever this one has."""
    import builtins
    real_import = builtins.__import__

    def no_cupy(name, *args, **kwargs):
        if name == "cupy" or name.startswith("cupy."):
            raise ImportError("No module named 'cupy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cupy)
    with pytest.raises(BackendError, match=r"needs CuPy, which is not installed.*nnhp\[gpu\]"):
        get_backend("cupy")


def test_backend_error_is_a_runtime_error():
    assert issubclass(BackendError, RuntimeError)


def test_backend_equality_and_rebinding_dtype():
    a = get_backend("numpy", "float32")
    assert a == get_backend("numpy", "float32") and hash(a) == hash(get_backend("numpy", "float32"))
    b = get_backend(a, "float64")
    assert b.dtype == np.float64 and b.name == "numpy" and b != a
    assert get_backend(a, "float32") is a


def test_a_backend_object_keeps_its_dtype_unless_another_is_named():
    b64 = get_backend("numpy", "float64")
    assert get_backend(b64) is b64
    assert get_backend(b64, None) is b64
    assert get_backend(b64, "float32").dtype == np.float32
    assert get_backend("numpy").dtype == np.float32          # a name alone: float32
    import nnhp
    assert nnhp.MLP([3, 2], backend=b64).flat_params.dtype == np.float64
    assert nnhp.MLP([3, 2], backend=b64, dtype="float32").flat_params.dtype == np.float32
    assert nnhp.MLP([3, 2]).flat_params.dtype == np.float32
    layers = [nnhp.layers.Dense(3, 2)]
    assert nnhp.Sequential(layers, backend=b64).backend.dtype == np.float64


def test_backend_array_helpers_use_its_dtype():
    chosen = get_backend("numpy", "float64")
    assert chosen.asarray([1, 2]).dtype == np.float64
    assert chosen.zeros((2, 3)).dtype == np.float64 and chosen.zeros((2, 3)).shape == (2, 3)
    assert chosen.empty(4, dtype=np.int64).dtype == np.int64
    chosen.synchronize()   # a no-op on the CPU, but callable


def test_array_module_and_to_numpy_on_numpy_arrays():
    array = np.arange(3.0)
    assert array_module(array) is np
    assert array_module([1, 2]) is np
    assert to_numpy(array) is array
    np.testing.assert_array_equal(to_numpy([1.0, 2.0]), [1.0, 2.0])


def test_make_rng_is_seeded_and_passes_generators_through():
    assert make_rng(3).random() == make_rng(3).random()
    assert make_rng(3).random() != make_rng(4).random()
    generator = np.random.default_rng(0)
    assert make_rng(generator) is generator


class DeviceArray(np.ndarray):
    """Stands in for a GPU array type: NumPy storage, a type of its own."""


def test_array_module_recognizes_a_device_array_type(monkeypatch):
    """Arrays of the (already imported) cupy module's ndarray type map to that module."""
    module = types.ModuleType("cupy")
    module.ndarray = DeviceArray
    monkeypatch.setitem(sys.modules, "cupy", module)
    assert array_module(np.zeros(3).view(DeviceArray)) is module
    assert array_module(np.zeros(3)) is np
