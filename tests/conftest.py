"""Shared fixtures for the engine tests: a standardized digits split and gradient checking.

Gradient checks compare an analytic gradient with central differences,

    df/dθ_i ≈ (f(θ + h e_i) - f(θ - h e_i)) / (2h),

in float64, whose error is O(h²) from truncation plus O(ε f / h) from rounding; with
h = 1e-6 both stay far below the 1e-6 relative tolerance the tests demand.
"""
import os

import numpy as np
import pytest

GRAD_TOLERANCE = 1e-6
STEP = 1e-6


def numeric_gradient(f, x, step=STEP):
    """Central-difference gradient of the scalar function ``f()`` w.r.t. the array ``x``.

    ``x`` is perturbed in place (one element at a time) and restored afterwards, so ``f``
    may read it directly: a parameter view inside a model, or an input batch.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)
    assert np.shares_memory(flat_x, x), "numeric_gradient needs a contiguous array to perturb"
    for i in range(flat_x.size):
        original = flat_x[i]
        flat_x[i] = original + step
        f_plus = float(f())
        flat_x[i] = original - step
        f_minus = float(f())
        flat_x[i] = original
        flat_grad[i] = (f_plus - f_minus) / (2.0 * step)
    return grad


def relative_error(analytic, numeric):
    """||a - n|| / (||a|| + ||n||): scale-free, and 0 only when the two agree."""
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    assert analytic.shape == numeric.shape, (analytic.shape, numeric.shape)
    denominator = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    if denominator == 0.0:
        return 0.0
    return float(np.linalg.norm(analytic - numeric) / denominator)


class GradCheck:
    """The helpers above, handed to tests as the ``gradcheck`` fixture."""

    tolerance = GRAD_TOLERANCE
    numeric = staticmethod(numeric_gradient)
    relative_error = staticmethod(relative_error)

    def __init__(self, path: str = "numpy"):
        self.path = path

    def through(self, part):
        """``part`` (a layer or a loss) as the path under test runs it: itself on the
        NumPy path; on the numba path the fused step that stands in for it in a model's
        plan (or in ``fit``), with its kernels on. A layer without a fused step is itself."""
        if self.path == "numpy":
            return part
        from nnhp import fused, losses
        if isinstance(part, losses.Loss):
            return fused.loss_step(part, True)
        return fused.compile_plan([part], True)[0]

    def assert_close(self, analytic, numeric, what=""):
        error = relative_error(analytic, numeric)
        assert error < self.tolerance, f"{what}: relative error {error:.3e} >= {self.tolerance:g}"
        # A check between two all-zero arrays would prove nothing.
        assert np.abs(numeric).max() > 0, f"{what}: numeric gradient is identically zero"


@pytest.fixture(params=["numpy", "numba"])
def gradcheck(request, monkeypatch):
    """A GradCheck, once with the plain NumPy code (NNHP_JIT=0, the reference) and once
    with every fused numba kernel (NNHP_JIT=1, and ``gradcheck.through(layer)`` for a
    layer or loss used on its own): each finite-difference check covers both paths.
    The numba run is skipped where numba is not installed."""
    if request.param == "numba":
        pytest.importorskip("numba")
    monkeypatch.setenv("NNHP_JIT", "0" if request.param == "numpy" else "1")
    return GradCheck(request.param)


@pytest.fixture(autouse=True, scope="session")
def kernel_measurements_in_a_temporary_folder(tmp_path_factory):
    """Tests never read or write the user's cache of fused-kernel measurements
    (``nnhp.fused.table``), and never start a calibration in the background: under
    "auto" with nothing measured, every test runs the plain code."""
    saved = {name: os.environ.get(name) for name in ("NNHP_CACHE_DIR", "NNHP_JIT_CALIBRATE")}
    os.environ["NNHP_CACHE_DIR"] = str(tmp_path_factory.mktemp("nnhp-cache"))
    os.environ["NNHP_JIT_CALIBRATE"] = "0"
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def digits_split():
    """scikit-learn's digits, 75/25 stratified split (seed 0), standardized with the
    training statistics: (X_train, X_test, y_train, y_test)."""
    pytest.importorskip("sklearn")
    from nnhp.data import load_digits, standardize, train_test_split

    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(digits.X, digits.y, test_size=0.25, seed=0)
    X_train, X_test = standardize(X_train, X_test)
    for array in (X_train, X_test, y_train, y_test):
        array.setflags(write=False)   # shared by several tests: nobody may change it
    return X_train, X_test, y_train, y_test


@pytest.fixture(scope="session")
def small_classification():
    """A small seeded 3-class problem (120 x 6) whose classes a tiny MLP can learn."""
    generator = np.random.default_rng(7)
    X = generator.normal(size=(120, 6))
    y = (np.argmax(X[:, :3] + 0.3 * X[:, 3:], axis=1)).astype(np.int64)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y
