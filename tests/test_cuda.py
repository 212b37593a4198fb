"""CUDA kernels (kernels/*.cu, loaded by nnhp/fused/cuda.py) and the CuPy backend.

On any machine with ``nvcc``: every kernel file compiles, for float and double, both
as a file and as the exact source NVRTC gets from ``nnhp.fused.cuda.source``. Anywhere: every
launch passes the types its C signature declares. On any machine with ``g++``: that source,
built for the CPU and launched through nnhp.fused.cuda's wrappers on a small grid, gives the
results the GPU tests below demand (the device's math library and float unit aside).

On a machine with CuPy and a GPU (``-m gpu``; skipped elsewhere): each kernel equals
the NumPy reference -- bit for bit for ReLU/LeakyReLU/identity, dropout masks and the
optimizer updates (compiled with ``--fmad=false``, IEEE division and square root);
within the tolerances of tests/test_fused_cpu.py for exp/tanh-based ones -- and a whole
``fit`` on the GPU gives the CPU's history to float32 tolerance.
"""
import functools
import os
import shutil
import subprocess

import numpy
import pytest

import nnhp
from nnhp import fused, layers, losses, optim, philox
from nnhp.fused import cuda, shared

NVCC = shutil.which("nvcc")
ARCH = os.environ.get("NNHP_NVCC_ARCH", "sm_80")


# --- compile checks (no GPU needed) ----------------------------------------------------------
def test_every_kernel_file_is_found():
    folder = cuda.kernel_dir()
    for name in cuda.KERNEL_FILES + (cuda.COMMON_HEADER,):
        assert (folder / name).is_file(), name
    assert sorted(p.name for p in folder.glob("*.cu")) == sorted(cuda.KERNEL_FILES)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("file_name", cuda.KERNEL_FILES)
def test_nvrtc_source_is_self_contained(file_name, dtype):
    code = cuda.source(file_name, dtype)
    # NVRTC gets one string and no include path: the shared header is pasted in.
    assert not [line for line in code.splitlines() if line.lstrip().startswith("#include")]
    assert code.startswith("#define REAL " + ("float" if dtype == "float32" else "double"))


@pytest.mark.skipif(NVCC is None, reason="nvcc not installed")
@pytest.mark.parametrize("real", ["float", "double"])
@pytest.mark.parametrize("file_name", cuda.KERNEL_FILES)
def test_kernel_file_compiles_with_nvcc(tmp_path, file_name, real):
    folder = cuda.kernel_dir()
    result = subprocess.run([NVCC, "--ptx", f"-arch={ARCH}", *cuda.COMPILE_OPTIONS, f"-DREAL={real}",
                             "-Werror", "all-warnings", f"-I{folder}", str(folder / file_name),
                             "-o", str(tmp_path / "out.ptx")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    ptx = (tmp_path / "out.ptx").read_text()
    kernels = {"activation.cu": ["bias_activation_forward", "activation_forward", "activation_backward"],
               "dropout.cu": ["dropout_apply"],
               "softmax_cross_entropy.cu": ["softmax_cross_entropy_labels", "softmax_cross_entropy_targets"],
               "optimizers.cu": ["sgd_update", "adagrad_update", "adadelta_update", "rmsprop_update",
                                 "adam_update"]}[file_name]
    for kernel in kernels:
        assert f".entry {kernel}(" in ptx, kernel       # extern "C": unmangled names


@pytest.mark.skipif(NVCC is None, reason="nvcc not installed")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_source_given_to_nvrtc_compiles(tmp_path, dtype):
    for file_name in cuda.KERNEL_FILES:
        path = tmp_path / file_name
        path.write_text(cuda.source(file_name, dtype))
        result = subprocess.run([NVCC, "--ptx", f"-arch={ARCH}", *cuda.COMPILE_OPTIONS, str(path),
                                 "-o", str(tmp_path / "out.ptx")], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (file_name, result.stderr)


def test_every_optimizer_class_has_a_kernel():
    for cls in optim.OPTIMIZERS.values():
        assert shared.has_kernel(cls())


# --- on a GPU ------------------------------------------------------------------------------
def gpu():
    cupy = pytest.importorskip("cupy")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # driver missing
        pytest.skip(f"no usable CUDA device ({exc})")
    if count < 1:
        pytest.skip("no CUDA device")
    return cupy


def eps(dtype):
    return float(numpy.finfo(dtype).eps)


def make(shape, dtype, seed=0, scale=3.0):
    return (numpy.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


DTYPES = [numpy.float32, numpy.float64]
SHAPES = [(1, 1), (3, 5), (37, 129), (1024, 1024)]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["identity", "relu", "leaky_relu", "elu", "tanh", "sigmoid"])
def test_activation_kernels_match_numpy(name, shape, dtype):
    cupy = gpu()
    x, grad_out, bias = make(shape, dtype, 1), make(shape, dtype, 2, 1.0), make(shape[1], dtype, 3)
    layer = layers.activation(name)
    code, param = shared.activation_code(layer)
    ref_layer = layers.activation(name)
    ref_out = ref_layer.forward(x, training=True).copy()
    ref_grad = ref_layer.backward(grad_out).copy()
    out = cuda.activation_forward(cupy.asarray(x), cupy.empty(shape, dtype), code, param)
    grad = cuda.activation_backward(cupy.asarray(grad_out), out, cupy.empty(shape, dtype), code, param)
    fused_out = cuda.bias_activation_forward(cupy.asarray(x - bias), cupy.asarray(bias), cupy.empty(shape, dtype),
                                             code, param)
    exact = name in ("identity", "relu", "leaky_relu")
    atol = 0 if exact else 4 * eps(dtype)
    numpy.testing.assert_allclose(out.get(), ref_out, rtol=0, atol=atol)
    numpy.testing.assert_allclose(grad.get(), ref_grad, rtol=0, atol=0 if exact else
                                  8 * eps(dtype) * numpy.abs(grad_out).max())
    ref_fused = ref_layer.forward((x - bias) + bias, training=False)
    numpy.testing.assert_allclose(fused_out.get(), ref_fused, rtol=0, atol=atol)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_dropout_kernel_reproduces_the_philox_mask(shape, dtype):
    cupy = gpu()
    x = make(shape, dtype)
    key, keep_prob = 0x0123456789ABCDEF, 0.7
    out = cuda.dropout_apply(cupy.asarray(x), cupy.empty(shape, dtype), key, keep_prob).get()
    mask = philox.keep_mask(key, shape, keep_prob)
    numpy.testing.assert_array_equal(out, x * (mask * dtype(1 / keep_prob)).astype(dtype))


@pytest.mark.gpu
def test_dropout_masks_on_gpu_and_cpu_are_the_same_for_one_seed():
    cupy = gpu()
    x = numpy.ones((256, 300), numpy.float32)
    outputs = []
    for device in ("numpy", "cupy"):    # the NumPy layer, then dropout.cu through the fused step
        layer = layers.Dropout(0.4)
        layer.rng = numpy.random.default_rng(11)
        step = layer if device == "numpy" else fused.compile_plan([layer], True)[0]
        data = x if device == "numpy" else cupy.asarray(x)
        outputs.append([nnhp.backend.to_numpy(step.forward(data, training=True)).copy() for _ in range(3)])
    for cpu, gpu_out in zip(*outputs):
        numpy.testing.assert_array_equal(gpu_out, cpu)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, k", [(1, 2), (7, 3), (257, 10), (1024, 1024)])
@pytest.mark.parametrize("targets", ["labels", "rows"])
def test_softmax_cross_entropy_kernel_matches_numpy(n, k, targets, dtype):
    cupy = gpu()
    rng = numpy.random.default_rng(n + k)
    logits = (rng.standard_normal((n, k)) * 5).astype(dtype)
    y = rng.integers(0, k, n) if targets == "labels" else rng.dirichlet(numpy.ones(k), n).astype(dtype)
    reference = losses.get("cross_entropy")
    ref_loss = reference.forward(logits, y)
    ref_grad = reference.backward()
    grad = cupy.empty((n, k), dtype)
    loss = cuda.softmax_cross_entropy(cupy.asarray(logits), cupy.asarray(y), grad)
    rounding = 8 * eps(dtype) * max(1.0, numpy.log2(k))
    # atol: a row with one dominant logit (n=1, k=2 here: 23 apart) has a loss of ~1e-10,
    # which NumPy's float32 sum rounds away (1 + 1e-10 == 1) and the kernel's float64 sum keeps.
    numpy.testing.assert_allclose(float(loss), ref_loss, rtol=rounding, atol=rounding)
    numpy.testing.assert_allclose(grad.get(), ref_grad, rtol=0, atol=rounding / n)


OPTIMIZER_CONFIGS = [
    ("SGD", {}), ("SGD", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"momentum": 0.8, "dampening": 0.3}),
    ("Adagrad", {"lr_decay": 0.01, "weight_decay": 0.1, "initial_accumulator_value": 0.1}),
    ("Adadelta", {"weight_decay": 0.01}), ("RMSprop", {}),
    ("RMSprop", {"centered": True, "momentum": 0.9, "weight_decay": 0.01}),
    ("Adam", {}), ("Adam", {"amsgrad": True, "weight_decay": 0.01}), ("AdamW", {"amsgrad": True}),
]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, kwargs", OPTIMIZER_CONFIGS)
def test_optimizer_kernels_match_numpy(name, kwargs, dtype):
    cupy = gpu()
    size = 100_003
    results = []
    for device, setting in (("numpy", False), ("cupy", True)):
        xp = numpy if device == "numpy" else cupy
        param = xp.asarray(make(size, dtype, 1))
        optimizer = fused.optimizer_step(getattr(optim, name)(lr=0.05, **kwargs), setting)
        for t in range(4):
            optimizer.step([param], [xp.asarray(make(size, dtype, 10 + t))])
        results.append(nnhp.backend.to_numpy(param))
    numpy.testing.assert_array_equal(results[1], results[0])


def _fit_history(backend, X, y, **kwargs):
    """The plain NumPy reference on the CPU; every CUDA kernel (jit=True) on the GPU."""
    model = nnhp.MLP([X.shape[1], 64, 32, 3], activation="tanh", dropout=0.1, seed=5, backend=backend,
                     jit=backend == "cupy")
    history = nnhp.fit(model, X, y, epochs=5, batch_size=32, validation_split=0.2, optimizer="adam", **kwargs)
    return model, history.history


@pytest.mark.gpu
def test_fit_on_the_gpu_gives_the_cpu_history():
    gpu()
    rng = numpy.random.default_rng(0)
    X = rng.standard_normal((600, 20)).astype(numpy.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    cpu_model, cpu = _fit_history("numpy", X, y)
    gpu_model, on_gpu = _fit_history("cupy", X, y)
    for key in cpu:
        numpy.testing.assert_allclose(on_gpu[key], cpu[key], rtol=1e-4, atol=1e-5, err_msg=key)
    numpy.testing.assert_allclose(nnhp.backend.to_numpy(gpu_model.flat_params), cpu_model.flat_params,
                                  rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
def test_models_save_from_either_backend_and_load_onto_either(tmp_path):
    cupy = gpu()
    X = make((50, 8), numpy.float32)
    gpu_model = nnhp.MLP([8, 16, 2], seed=0, backend="cupy")
    gpu_model.save(tmp_path / "gpu.npz")
    for backend in ("numpy", "cupy"):
        loaded = nnhp.load(tmp_path / "gpu.npz", backend=backend)
        assert loaded.backend.name == backend
        numpy.testing.assert_allclose(nnhp.backend.to_numpy(loaded.predict(X)),
                                      nnhp.backend.to_numpy(gpu_model.predict(cupy.asarray(X))), atol=1e-5)
    cpu_model = nnhp.load(tmp_path / "gpu.npz", backend="numpy")
    cpu_model.save(tmp_path / "cpu.npz")
    back = nnhp.load(tmp_path / "cpu.npz", backend="cupy")
    numpy.testing.assert_array_equal(back.flat_params.get(), cpu_model.flat_params)


# --- packaging --------------------------------------------------------------------------------
def test_an_installed_wheel_carries_the_kernels(tmp_path):
    """Build the wheel, install it outside the source tree, and find the .cu files there."""
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    wheel_dir, target, source = tmp_path / "wheel", tmp_path / "site", tmp_path / "source"
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    for name in ("nnhp", "kernels"):
        shutil.copytree(os.path.join(root, name), source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(os.path.join(root, name), source / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(wheel_dir)], capture_output=True, text=True, timeout=600)
    if build.returncode != 0 and "No module named pip" in build.stderr:
        pytest.skip("pip is not available")
    assert build.returncode == 0, build.stderr
    wheel = next(wheel_dir.glob("nnhp-*.whl"))
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                              str(target), str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    probe = ("import nnhp.fused.cuda as c, pathlib; d = c.kernel_dir(); "
             "print(d); print(sorted(p.name for p in d.iterdir())); print(len(c.source('optimizers.cu', 'float32')))")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    folder, names, length = run.stdout.splitlines()
    assert folder.startswith(str(target)) and folder.endswith(os.path.join("nnhp", "kernels"))
    assert eval(names) == sorted(cuda.KERNEL_FILES + (cuda.COMMON_HEADER,))
    assert int(length) > 1000


# --- launch arguments against the kernels' C signatures (no GPU needed) --------------------------
def kernel_parameters(file_name):
    """{kernel: [(C type, name)]} parsed from a .cu file's extern "C" __global__ definitions."""
    import re
    text = (cuda.kernel_dir() / file_name).read_text()
    kernels = {}
    for kernel, params in re.findall(r'extern "C" __global__ void (\w+)\(([^)]*)\)', text):
        parameters = []
        for param in params.split(","):
            words = param.replace("const ", "").split()
            c_type = " ".join(words[:-1]) + ("*" if words[-1].startswith("*") else "")
            parameters.append((c_type.replace(" *", "*"), words[-1].lstrip("*")))
        kernels[kernel] = parameters
    return kernels


def kernel_signatures(file_name):
    """{kernel: [C parameter types]}."""
    return {kernel: [c_type for c_type, _ in params] for kernel, params in kernel_parameters(file_name).items()}


def numpy_in_place_of_cupy(monkeypatch):
    """Let nnhp.fused.cuda's wrappers run on NumPy arrays: the few CuPy names they use, as NumPy's
    (its ndarray a type no array has, so nnhp.backend still sees NumPy arrays)."""
    import sys
    import types
    fake_cupy = types.SimpleNamespace(empty=numpy.zeros, ascontiguousarray=numpy.ascontiguousarray,
                                      int64=numpy.int64, float64=numpy.float64,
                                      ndarray=type("NoDeviceArray", (), {}))
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)


class RecordingModule:
    """Stands in for a cupy.RawModule: records each launch instead of running it."""

    launches = []

    def __init__(self, file_name, dtype_name):
        self.file_name, self.dtype_name = file_name, dtype_name

    def get_function(self, kernel):
        def launch(grid, block, args):
            RecordingModule.launches.append((self.file_name, self.dtype_name, kernel, grid, block, args))
        return launch


def expected_type(c_type, dtype):
    real = numpy.dtype(dtype).type
    return {"long long": numpy.int64, "int": numpy.int32, "unsigned int": numpy.uint32, "real": real,
            "real*": ("array", numpy.dtype(dtype)), "double*": ("array", numpy.dtype(numpy.float64)),
            "long long*": ("array", numpy.dtype(numpy.int64))}[c_type]


def test_kernel_functions_are_looked_up_once_per_module(monkeypatch):
    class CountingModule:
        def __init__(self):
            self.lookups = []

        def get_function(self, kernel):
            self.lookups.append(kernel)
            return lambda grid, block, args: None

    first, second = CountingModule(), CountingModule()
    monkeypatch.setattr(cuda, "_module", lambda file_name, dtype_name: first)
    for _ in range(3):
        cuda._launch("activation.cu", "activation_forward", 8, numpy.float32, ())
        cuda._launch("activation.cu", "activation_backward", 8, numpy.float32, ())
    assert first.lookups == ["activation_forward", "activation_backward"]
    monkeypatch.setattr(cuda, "_module", lambda file_name, dtype_name: second)   # a new module
    cuda._launch("activation.cu", "activation_forward", 8, numpy.float32, ())
    assert second.lookups == ["activation_forward"]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_every_launch_passes_what_its_kernel_declares(monkeypatch, dtype):
    """Argument count and the exact type of every scalar (a Python float would arrive as a
    double): each wrapper in nnhp.fused.cuda, run on NumPy stand-ins, against the C signature."""
    numpy_in_place_of_cupy(monkeypatch)
    monkeypatch.setattr(cuda, "_module", RecordingModule)
    monkeypatch.setattr(cuda, "_contiguous", lambda array: array)
    RecordingModule.launches = []
    x, g, bias = make((6, 5), dtype), make((6, 5), dtype, 1), make(5, dtype, 2)
    for name in ("relu", "leaky_relu", "elu", "tanh", "sigmoid"):
        code, param = shared.activation_code(layers.activation(name))
        cuda.bias_activation_forward(x, bias, numpy.empty_like(x), code, param)
        cuda.activation_forward(x, numpy.empty_like(x), code, param)
        cuda.activation_backward(g, x, numpy.empty_like(x), code, param)
    cuda.dropout_apply(x, numpy.empty_like(x), 2 ** 64 - 1, 0.8)
    cuda.softmax_cross_entropy(x, numpy.arange(6) % 5, numpy.empty_like(x))
    cuda.softmax_cross_entropy(x, numpy.full((6, 5), 0.2, dtype), numpy.empty_like(x))
    for name, kwargs in [("SGD", {"momentum": 0.9}), ("Adagrad", {}), ("Adadelta", {}),
                         ("RMSprop", {"centered": True, "momentum": 0.5}), ("Adam", {"amsgrad": True}),
                         ("AdamW", {})]:
        optimizer = getattr(optim, name)(**kwargs)
        params = make(7, dtype)
        state = {key: numpy.zeros(7, dtype) for key in optimizer.state_names}
        assert cuda.optimizer_update(optimizer, params, make(7, dtype, 3), state, optimizer._coefficients(1))
    launched = {kernel for _, _, kernel, _, _, _ in RecordingModule.launches}
    declared = {}
    for file_name in cuda.KERNEL_FILES:
        declared.update({kernel: (file_name, sig) for kernel, sig in kernel_signatures(file_name).items()})
    assert launched == set(declared)                         # every kernel is used, none is invented
    for file_name, dtype_name, kernel, grid, block, args in RecordingModule.launches:
        assert dtype_name == numpy.dtype(dtype).name
        assert file_name == declared[kernel][0]
        signature = declared[kernel][1]
        assert len(args) == len(signature), (kernel, len(args), signature)
        for position, (arg, c_type) in enumerate(zip(args, signature)):
            want = expected_type(c_type, dtype)
            if isinstance(want, tuple):
                assert isinstance(arg, numpy.ndarray) and arg.dtype == want[1], (kernel, position, c_type)
                assert arg.flags.c_contiguous
            else:
                assert type(arg) is want, (kernel, position, c_type, type(arg))
        assert block == (cuda.THREADS_PER_BLOCK,) and 1 <= grid[0] <= cuda.MAX_BLOCKS


def test_optimizer_kernels_take_their_numba_twins_arguments_in_order():
    """nnhp.fused.shared builds one argument tuple per optimizer for both kernel sets, and
    nnhp.fused.cuda passes it after ``n`` unchanged: the C parameters after ``n`` must be the numba kernel's,
    name for name (two swapped ``real`` arguments would pass every type check)."""
    import ast
    import pathlib
    tree = ast.parse((pathlib.Path(cuda.__file__).parent / "numba_kernels.py").read_text())  # beside cuda.py
    numba_parameters = {node.name: [arg.arg for arg in node.args.args]
                        for node in tree.body if isinstance(node, ast.FunctionDef)}
    for kernel, parameters in kernel_parameters("optimizers.cu").items():
        assert parameters[0] == ("long long", "n"), kernel
        assert [name for _, name in parameters[1:]] == numba_parameters[kernel], kernel


# --- the kernels' arithmetic, compiled for the CPU (no GPU needed) ------------------------------
# The .cu sources NVRTC gets (nnhp.fused.cuda.source), compiled by the host C++ compiler behind a few
# stand-ins for CUDA's built-ins, launched through nnhp.fused.cuda's own wrappers with NumPy arrays.
# This checks what the GPU tests check except the device's math library and float unit:
# indexing, grid-stride loops, Philox words, the order of every operation.
GXX = shutil.which("g++")
HOST_SHIM = r"""
#include <math.h>
struct nn_dim3 { unsigned int x, y, z; };
static nn_dim3 blockIdx, threadIdx, blockDim, gridDim;
extern "C" void nn_set_thread(unsigned int block, unsigned int thread, unsigned int threads,
                              unsigned int blocks) {
    blockIdx.x = block; threadIdx.x = thread; blockDim.x = threads; gridDim.x = blocks;
}
#define __global__
#define __device__
#define __forceinline__ inline
static inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((unsigned long long)a * b) >> 32);
}
"""
#: (blocks, threads per block) of every emulated launch: fewer threads than elements, so the
#: grid-stride loops stride (an element visited twice would show in the in-place updates).
HOST_GRID = (2, 3)


class HostModule:
    """Stands in for a cupy.RawModule: the same source as a host shared library, each launch
    run thread after thread (the kernels' threads touch disjoint elements)."""

    def __init__(self, folder, file_name, dtype_name):
        import ctypes
        source = folder / f"{file_name}.{dtype_name}.cpp"
        source.write_text(HOST_SHIM + cuda.source(file_name, dtype_name))
        library = folder / f"{file_name}.{dtype_name}.so"
        # -ffp-contract=off: no fused multiply-add, as --fmad=false on the device.
        subprocess.run([GXX, "-O1", "-ffp-contract=off", "-shared", "-fPIC", str(source), "-o", str(library)],
                       check=True, capture_output=True, timeout=120)
        self.library = ctypes.CDLL(str(library))

    def get_function(self, kernel):
        import ctypes
        c_types = {"int64": ctypes.c_longlong, "int32": ctypes.c_int, "uint32": ctypes.c_uint,
                   "float32": ctypes.c_float, "float64": ctypes.c_double}
        function, set_thread = getattr(self.library, kernel), self.library.nn_set_thread

        def launch(grid, block, args):
            values = [ctypes.c_void_p(arg.ctypes.data) if isinstance(arg, numpy.ndarray)
                      else c_types[numpy.dtype(type(arg)).name](arg) for arg in args]
            blocks, threads = HOST_GRID
            for block_index in range(blocks):
                for thread in range(threads):
                    set_thread(block_index, thread, threads, blocks)
                    function(*values)
        return launch


@pytest.fixture(scope="session")
def host_modules(tmp_path_factory):
    folder = tmp_path_factory.mktemp("host_kernels")
    return functools.cache(lambda file_name, dtype_name: HostModule(folder, file_name, dtype_name))


@pytest.fixture
def kernels_on_host(monkeypatch, host_modules):
    """nnhp.fused.cuda on NumPy arrays with host-built kernels, handed out by the policy
    where it would hand it out for CuPy arrays measured faster (any mode but "off")."""
    from nnhp.fused import policy
    if GXX is None:
        pytest.skip("no g++ to build the kernels for the host")
    numpy_in_place_of_cupy(monkeypatch)
    monkeypatch.setattr(cuda, "_module", host_modules)
    monkeypatch.setattr(policy, "choose", lambda array, family, size, setting=None:
                        None if policy.mode(setting) == "off" else cuda)
    monkeypatch.delenv("NNHP_JIT", raising=False)
    return cuda


@pytest.mark.parametrize("dtype", DTYPES)
def test_host_built_kernels_match_the_numpy_layers_and_loss(kernels_on_host, dtype):
    atol = 4 * eps(dtype)
    for shape in SHAPES[:3]:
        x, grad_out, bias = make(shape, dtype, 1), make(shape, dtype, 2, 1.0), make(shape[1], dtype, 3)
        for name in ["identity", "relu", "leaky_relu", "elu", "tanh", "sigmoid"]:
            reference = layers.activation(name)
            ref_out = reference.forward(x, training=True).copy()
            ref_grad = reference.backward(grad_out).copy()
            code, param = shared.activation_code(reference)
            out = cuda.activation_forward(x, numpy.empty(shape, dtype), code, param)
            grad = cuda.activation_backward(grad_out, out, numpy.empty(shape, dtype), code, param)
            bias_grad = numpy.empty(shape[1], dtype)
            fused_grad = cuda.activation_bias_backward(grad_out, out, numpy.empty(shape, dtype), bias_grad,
                                                       code, param)
            in_place = x - bias
            cuda.bias_activation_forward(in_place, bias, in_place, code, param)
            exact = name in ("identity", "relu", "leaky_relu")
            numpy.testing.assert_allclose(out, ref_out, rtol=0, atol=0 if exact else atol, err_msg=name)
            numpy.testing.assert_allclose(grad, ref_grad, rtol=0, err_msg=name,
                                          atol=0 if exact else 2 * atol * numpy.abs(grad_out).max())
            numpy.testing.assert_array_equal(fused_grad, grad)
            numpy.testing.assert_array_equal(bias_grad, grad.sum(axis=0))
            numpy.testing.assert_allclose(in_place, reference.forward((x - bias) + bias), rtol=0,
                                          atol=0 if exact else atol, err_msg=name)
        for key in (0, 0x0123456789ABCDEF, 2 ** 64 - 1):
            out = cuda.dropout_apply(x, numpy.empty(shape, dtype), key, 0.7)
            numpy.testing.assert_array_equal(out, x * (philox.keep_mask(key, shape, 0.7) * dtype(1 / 0.7)))
    for n, k in [(1, 2), (7, 3), (257, 10)]:
        rng = numpy.random.default_rng(n + k)
        logits = (rng.standard_normal((n, k)) * 5).astype(dtype)
        for y in (rng.integers(0, k, n), rng.dirichlet(numpy.ones(k), n).astype(dtype)):
            reference = losses.get("cross_entropy")
            ref_loss, ref_grad = reference.forward(logits, y), reference.backward()
            grad = numpy.empty((n, k), dtype)
            loss = cuda.softmax_cross_entropy(logits, y, grad)
            rounding = 8 * eps(dtype) * max(1.0, numpy.log2(k))
            assert loss.dtype == dtype
            numpy.testing.assert_allclose(float(loss), ref_loss, rtol=rounding, atol=rounding)
            numpy.testing.assert_allclose(grad, ref_grad, rtol=0, atol=rounding / n)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, kwargs", OPTIMIZER_CONFIGS + [("RMSprop", {"centered": True}),
                                                              ("RMSprop", {"momentum": 0.5}),
                                                              ("AdamW", {"weight_decay": 0.1})])
def test_host_built_optimizer_kernels_equal_numpy_bit_for_bit(kernels_on_host, name, kwargs, dtype):
    results = []
    for setting in (False, None):   # plain NumPy, then optimizers.cu through Optimizer.step
        param = make(1003, dtype, 1)
        optimizer = fused.optimizer_step(getattr(optim, name)(lr=0.05, **kwargs), setting)
        for t in range(4):
            optimizer.step([param], [make(1003, dtype, 10 + t)])
        results.append(param)
    numpy.testing.assert_array_equal(results[1], results[0])


def test_fit_through_the_host_built_kernels_gives_the_numpy_history(kernels_on_host):
    rng = numpy.random.default_rng(0)
    X = rng.standard_normal((300, 20)).astype(numpy.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    histories, weights = [], []
    for jit in (False, None):
        model = nnhp.MLP([20, 16, 8, 3], activation="elu", dropout=0.2, seed=5, jit=jit)
        history = nnhp.fit(model, X, y, epochs=3, batch_size=32, validation_split=0.2, optimizer="adam")
        histories.append(history.history)
        weights.append(model.flat_params)
    for key in histories[0]:
        numpy.testing.assert_allclose(histories[1][key], histories[0][key], rtol=1e-5, atol=1e-6, err_msg=key)
    numpy.testing.assert_allclose(weights[1], weights[0], rtol=1e-4, atol=1e-5)
