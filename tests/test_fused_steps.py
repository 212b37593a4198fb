"""nnhp/fused/steps.py: the plan a model compiles, and how a fused step runs.

The kernels' numbers are tested in test_fused_cpu.py (and test_cuda.py); here, which
step stands where, and that a step's backward follows the path its forward took."""
import numpy
import pytest

import nnhp
from nnhp import fused, layers
from nnhp.fused import steps


def kinds(plan):
    return [type(step).__name__ for step in plan]


def test_an_mlp_compiles_dense_with_its_activation_and_wraps_dropout():
    model = nnhp.MLP([4, 8, 8, 3], dropout=0.2, seed=0)
    assert kinds(model.plan) == ["DenseActivation", "FusedDropout", "DenseActivation", "FusedDropout", "Dense"]
    first = model.plan[0]
    assert first.dense is model.layers[0] and first.activation is model.layers[1]
    assert first.params == model.layers[0].params


def test_only_nnhps_own_layer_classes_are_fused():
    class Softsign(layers.Activation):      # a user's activation, with its own code
        name = "relu"

        def forward(self, x, training=False):
            self.x = x
            return x / (1 + abs(x))

        def backward(self, grad_out):
            return grad_out / (1 + abs(self.x)) ** 2

    class MyDropout(layers.Dropout):
        pass

    plan = fused.compile_plan([layers.Dense(3, 4), Softsign(), MyDropout(0.1), layers.Tanh(), layers.Identity()])
    assert kinds(plan) == ["Dense", "Softsign", "MyDropout", "FusedActivation", "Identity"]
    model = nnhp.Sequential([layers.Dense(3, 4), Softsign(), layers.Dense(4, 2)], seed=0, jit=True)
    x = numpy.linspace(-2, 2, 6, dtype=numpy.float32).reshape(2, 3)
    hidden = x @ model.params[0] + model.params[1]
    expected = (hidden / (1 + abs(hidden))) @ model.params[2] + model.params[3]
    numpy.testing.assert_allclose(model.forward(x), expected, rtol=1e-6)


def test_setting_jit_recompiles_the_plan_and_rejects_nonsense():
    model = nnhp.MLP([3, 4, 2], seed=0)
    assert model.plan[0].setting is None
    model.jit = False
    assert model.plan[0].setting is False
    with pytest.raises(ValueError, match="jit must be 0, 1 or auto"):
        model.jit = "sometimes"


@pytest.mark.parametrize("first", ["dense", "dropout"])
def test_training_skips_the_first_steps_input_gradient(first):
    stack = [layers.Dense(3, 5), layers.ReLU(), layers.Dense(5, 2)]
    if first == "dropout":
        stack.insert(0, layers.Dropout(0.0))
    model = nnhp.Sequential(stack, seed=0, dtype="float64")
    x = numpy.random.default_rng(0).standard_normal((4, 3))
    grad_out = numpy.ones((4, 2))
    model.forward(x, training=True)
    grad_x = model.backward(grad_out)
    grads = model.flat_grads.copy()
    model.forward(x, training=True)
    assert model.backward(grad_out, need_input_grad=False) is None
    numpy.testing.assert_array_equal(model.flat_grads, grads)
    assert grad_x.shape == x.shape


def test_backward_takes_the_path_its_forward_took(monkeypatch):
    """The choice is made in forward and kept: a mode that changes in between does not
    send backward down the other path (whose cached values forward never wrote)."""
    pytest.importorskip("numba")
    rng = numpy.random.default_rng(1)
    x, grad_out = rng.standard_normal((5, 3)), rng.standard_normal((5, 4))
    results = []
    for forward_mode in ("1", "0"):
        model = nnhp.Sequential([layers.Dense(3, 4), layers.ELU()], seed=0, dtype="float64")
        monkeypatch.setenv("NNHP_JIT", forward_mode)
        model.forward(x, training=True)
        monkeypatch.setenv("NNHP_JIT", "0" if forward_mode == "1" else "1")
        results.append((model.backward(grad_out), model.flat_grads.copy()))
    assert model.plan[0].kernels is None                     # the last forward ran plain
    for fused_result, plain_result in zip(*results):
        numpy.testing.assert_allclose(fused_result, plain_result, rtol=1e-12)


def test_buffers_hand_out_leading_rows_and_renew_on_a_new_shape():
    buffers = steps.Buffers()
    like = numpy.zeros((8, 3), numpy.float32)
    full = buffers.get("out", (8, 3), like)
    part = buffers.get("out", (5, 3), like)
    assert numpy.shares_memory(full, part) and part.shape == (5, 3) and part.flags.c_contiguous
    wider = buffers.get("out", (8, 4), like)
    assert not numpy.shares_memory(full, wider)
    assert buffers.get("out", (8, 4), like.astype(numpy.float64)).dtype == numpy.float64
    fresh = buffers.output("out", like, training=False)
    assert not numpy.shares_memory(fresh, buffers.arrays["out"])
