"""The CPU kernel set (nnhp/fused/cpu.py over numba_kernels.py) against the NumPy reference,
through the fused steps that run it (nnhp/fused/steps.py) with their kernels on.

Each kernel runs the same arithmetic as the NumPy code it replaces. Where the
operations are the same IEEE operations in the same order the results are compared
bit for bit: ReLU, LeakyReLU, identity, dropout, and every optimizer update. The
rest use math functions or sums whose implementations differ between NumPy's
vectorized loops and numba's libm calls, and are compared within float rounding:

* tanh, sigmoid, ELU forward:   |jit - numpy| <= 4 eps              (values in [-1, 1] or below alpha)
* their backward:               |jit - numpy| <= 8 eps |grad_out|   (f' is built from the output)
* softmax + cross-entropy:      loss rtol r, gradient atol r / n, r = 8 eps max(1, log2 k)
  (k classes; NumPy sums a row pairwise in float32, the kernel in float64)
  (eps = 2**-23 for float32, 2**-52 for float64)

If you change an optimizer's ``_update`` in nnhp/optim.py, change its kernel too:
the bitwise optimizer tests below will tell you.
"""
import numpy
import pytest

pytest.importorskip("numba")

import nnhp  # noqa: E402
from nnhp import fused, layers, losses, optim, philox  # noqa: E402
from nnhp.fused import cpu, policy, steps  # noqa: E402

DTYPES = [numpy.float32, numpy.float64]
# tiny, ragged (odd in both directions, not a multiple of 4 for dropout's 4-word blocks),
# and large: 1024 x 1024 = 1M elements.
SHAPES = [(1, 1), (3, 5), (37, 129), (1024, 1024)]
ACTIVATIONS = ["identity", "relu", "leaky_relu", "elu", "tanh", "sigmoid"]
EXACT_ACTIVATIONS = {"identity", "relu", "leaky_relu"}


def eps(dtype):
    return float(numpy.finfo(dtype).eps)


def make(shape, dtype, seed=0, scale=3.0):
    return (numpy.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def run_activation(name, x, grad_out, setting, **kwargs):
    """An activation's forward and backward: the layer itself (setting False) or its
    fused step with the kernels on (True)."""
    layer = layers.activation(name, **kwargs)
    step = steps.FusedActivation(layer, True) if setting else layer
    out = step.forward(x, training=True).copy()
    return out, step.backward(grad_out).copy()


def code_of(name, **kwargs):
    return fused.shared.activation_code(layers.activation(name, **kwargs))


# --- the switch ---------------------------------------------------------------------
def test_env_values_parse_to_modes(monkeypatch):
    for value, expected in (("0", "off"), ("1", "on"), ("auto", "auto"), ("", "auto"), ("off", "off")):
        monkeypatch.setenv("NNHP_JIT", value)
        assert fused.mode() == expected
    monkeypatch.delenv("NNHP_JIT")
    assert fused.mode() == "auto"
    monkeypatch.setenv("NNHP_JIT", "maybe")
    with pytest.raises(ValueError, match="NNHP_JIT"):
        fused.mode()


def test_the_call_site_setting_beats_the_environment(monkeypatch):
    monkeypatch.setenv("NNHP_JIT", "1")
    assert fused.mode() == "on"
    assert fused.mode(False) == "off"
    monkeypatch.setenv("NNHP_JIT", "0")
    assert fused.mode(True) == "on" and fused.mode() == "off"


def test_a_bad_environment_value_fails_before_training(monkeypatch):
    monkeypatch.setenv("NNHP_JIT", "maybe")
    X = make((8, 3), numpy.float32)
    with pytest.raises(ValueError, match="NNHP_JIT must be 0, 1 or auto"):
        nnhp.fit(nnhp.MLP([3, 4, 2], seed=0), X, (X[:, 0] > 0).astype(int), epochs=1)


def test_insisting_without_numba_is_an_error(monkeypatch):
    monkeypatch.setattr(policy, "numba_available", lambda: False)
    x = numpy.ones(10, numpy.float32)
    monkeypatch.setenv("NNHP_JIT", "1")
    with pytest.raises(fused.JitUnavailableError, match="numba"):
        fused.choose(x, "dropout", x.size)
    monkeypatch.setenv("NNHP_JIT", "auto")
    assert fused.choose(numpy.ones(1 << 20, numpy.float32), "dropout", 1 << 20) is None   # quietly plain


def test_only_float32_and_float64_arrays_get_kernels(monkeypatch):
    monkeypatch.setenv("NNHP_JIT", "1")
    assert fused.choose(numpy.ones(8, numpy.float32), "dropout", 8) is cpu
    assert fused.choose(numpy.ones(8, numpy.float64), "dropout", 8) is cpu
    assert fused.choose(numpy.ones(8, numpy.int64), "dropout", 8) is None
    assert fused.choose(numpy.ones(8, numpy.float16), "dropout", 8) is None


def test_model_keyword_reaches_the_plan_and_fit_passes_it_to_loss_and_optimizer(monkeypatch):
    monkeypatch.setenv("NNHP_JIT", "1")
    calls = {"loss": 0, "optimizer": 0, "dense_activation": 0}
    for name, key in (("softmax_cross_entropy", "loss"), ("optimizer_update", "optimizer"),
                      ("bias_activation_forward", "dense_activation")):
        real = getattr(cpu, name)

        def counting(*args, real=real, key=key):
            calls[key] += 1
            return real(*args)
        monkeypatch.setattr(cpu, name, counting)
    X = make((40, 6), numpy.float32)
    y = (X[:, 0] > 0).astype(int)
    nnhp.fit(nnhp.MLP([6, 8, 2], seed=0, jit=False), X, y, epochs=1, batch_size=20)
    assert calls == {"loss": 0, "optimizer": 0, "dense_activation": 0}
    nnhp.fit(nnhp.MLP([6, 8, 2], seed=0), X, y, epochs=1, batch_size=20)
    assert calls["loss"] == 2 and calls["optimizer"] == 2 and calls["dense_activation"] == 2


# --- activations ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_kernels_match_numpy(name, shape, dtype):
    x, grad_out = make(shape, dtype, 1), make(shape, dtype, 2, 1.0)
    kwargs = {"negative_slope": 0.05} if name == "leaky_relu" else {"alpha": 0.7} if name == "elu" else {}
    out_ref, grad_ref = run_activation(name, x, grad_out, False, **kwargs)
    out_jit, grad_jit = run_activation(name, x, grad_out, True, **kwargs)
    if name in EXACT_ACTIVATIONS:
        numpy.testing.assert_array_equal(out_jit, out_ref)
        numpy.testing.assert_array_equal(grad_jit, grad_ref)
    else:
        numpy.testing.assert_allclose(out_jit, out_ref, rtol=0, atol=4 * eps(dtype))
        numpy.testing.assert_allclose(grad_jit, grad_ref, rtol=0, atol=8 * eps(dtype) * numpy.abs(grad_out).max())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_bias_fused_into_the_activation_matches_dense_then_activation(name, dtype):
    """Forward (bias fused into f, in place) and backward (f' fused with the bias
    gradient) of a whole model, on a full batch and then a smaller ragged one that
    reuses the leading rows of the buffers."""
    outputs, grads, input_grads = [], [], []
    for setting in (False, True):
        model = nnhp.MLP([17, 23, 9, 5], activation=name, seed=3, dtype=dtype.__name__, jit=setting)
        model.params[1][...] = make(23, dtype, 9)           # non-zero hidden biases
        for rows in (33, 7):
            X = make((rows, 17), dtype, rows)
            out = model.forward(X, training=True)
            input_grads.append(model.backward(make(out.shape, dtype, 4)))
            outputs.append(out)
            grads.append(model.flat_grads.copy())
    tolerance = 0 if name in EXACT_ACTIVATIONS else 64 * eps(dtype)
    for results in (outputs, grads, input_grads):     # [plain 33, plain 7, fused 33, fused 7]
        for k in range(2):
            numpy.testing.assert_allclose(results[2 + k], results[k], rtol=tolerance, atol=tolerance)
            if name in EXACT_ACTIVATIONS:
                numpy.testing.assert_array_equal(results[2 + k], results[k])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES + [(0, 6)])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_backward_with_bias_gradient_matches_numpy(name, shape, dtype):
    """grad_in = grad_out * f'(z) and the column sums in one pass: the sums equal
    NumPy's sum(axis=0) bit for bit (rows added in order), whatever f is."""
    layer = layers.activation(name)                     # the NumPy reference, forward and backward
    out = layer.forward(make(shape, dtype, 1), training=True).copy()
    grad_out = make(shape, dtype, 2, 1.0)
    grad_ref = layer.backward(grad_out).copy()
    grad_in, bias_grad = numpy.full(shape, numpy.nan, dtype), numpy.full(shape[1], numpy.nan, dtype)
    cpu.activation_bias_backward(grad_out, out, grad_in, bias_grad, *code_of(name))
    if name in EXACT_ACTIVATIONS:
        numpy.testing.assert_array_equal(grad_in, grad_ref)
    else:
        numpy.testing.assert_allclose(grad_in, grad_ref, rtol=0, atol=8 * eps(dtype))
    numpy.testing.assert_array_equal(bias_grad, grad_in.sum(axis=0))


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_bias_activation_kernel_in_place_and_into_another_array(name):
    z, bias = make((37, 129), numpy.float32, 1), make(129, numpy.float32, 2)
    expected = layers.activation(name).forward(z + bias, training=False)     # the NumPy layer on z + b
    tolerance = 0 if name in EXACT_ACTIVATIONS else 4 * eps(numpy.float32)
    out = numpy.empty_like(z)
    assert cpu.bias_activation_forward(z, bias, out, *code_of(name)) is out
    numpy.testing.assert_allclose(out, expected, rtol=0, atol=tolerance)
    numpy.testing.assert_array_equal(z, make((37, 129), numpy.float32, 1))   # z left alone
    in_place = z.copy()
    assert cpu.bias_activation_forward(in_place, bias, in_place, *code_of(name)) is in_place
    numpy.testing.assert_array_equal(in_place, out)


def test_activation_kernels_take_non_contiguous_gradients():
    x = make((20, 30), numpy.float32)
    grad_out = numpy.asfortranarray(make((20, 30), numpy.float32, 5))
    _, ref = run_activation("tanh", x, grad_out, False)
    _, fused = run_activation("tanh", x, grad_out, True)
    numpy.testing.assert_allclose(fused, ref, atol=8 * eps(numpy.float32) * 3)


# --- dropout ------------------------------------------------------------------------------
PHILOX_KNOWN_ANSWERS = [   # Random123's kat_vectors for philox4x32-10
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter, key, expected", PHILOX_KNOWN_ANSWERS)
def test_numpy_philox_matches_the_published_known_answers(counter, key, expected):
    assert tuple(int(v) for v in philox.philox4x32([counter], key)[0]) == expected


def test_numba_philox_matches_numpy_philox_word_for_word():
    # The kernel exposes words only through the keep rule: compare that at several thresholds.
    key, n = 0xDEADBEEF12345678, 4099
    words = philox.random_words(key, n)
    ones = numpy.ones(n, numpy.float64)
    for threshold_fraction in (0.1, 0.5, 0.9):
        kept = cpu.dropout_apply(ones, numpy.empty_like(ones), key, threshold_fraction) != 0
        numpy.testing.assert_array_equal(kept, words < philox.keep_threshold(threshold_fraction))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_dropout_kernel_gives_the_numpy_mask_and_gradient(shape, dtype):
    x, grad_out = make(shape, dtype, 1), make(shape, dtype, 2)
    results = []
    for setting in (False, True):
        layer = layers.Dropout(0.3)
        layer.rng = numpy.random.default_rng(42)
        step = steps.FusedDropout(layer, True) if setting else layer
        out = step.forward(x, training=True).copy()
        results.append((out, step.backward(grad_out).copy()))
    numpy.testing.assert_array_equal(results[1][0], results[0][0])
    numpy.testing.assert_array_equal(results[1][1], results[0][1])


def test_dropout_masks_are_reproducible_by_seed_and_keep_the_right_fraction():
    x = numpy.ones((512, 512), numpy.float32)

    def masks(seed):
        layer = layers.Dropout(0.25)
        layer.rng = numpy.random.default_rng(seed)
        step = steps.FusedDropout(layer, True)
        return [step.forward(x, training=True).copy() for _ in range(2)]

    first, again, other = masks(7), masks(7), masks(8)
    numpy.testing.assert_array_equal(first[0], again[0])
    numpy.testing.assert_array_equal(first[1], again[1])
    assert not numpy.array_equal(first[0], first[1])        # a new mask every step
    assert not numpy.array_equal(first[0], other[0])
    kept = (first[0] != 0).mean()
    assert abs(kept - 0.75) < 4 * numpy.sqrt(0.75 * 0.25 / x.size)
    assert set(numpy.unique(first[0])) == {numpy.float32(0), numpy.float32(1 / 0.75)}


# --- softmax + cross-entropy ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, k", [(1, 2), (7, 3), (257, 10), (1024, 1024)])
@pytest.mark.parametrize("targets", ["labels", "rows"])
def test_softmax_cross_entropy_kernel_matches_numpy(n, k, targets, dtype):
    rng = numpy.random.default_rng(n + k)
    logits = (rng.standard_normal((n, k)) * 5).astype(dtype)
    logits[0, 0] = 80.0      # exp would overflow without the max shift
    y = rng.integers(0, k, n) if targets == "labels" else rng.dirichlet(numpy.ones(k), n).astype(dtype)
    results = []
    for setting in (False, True):
        loss = fused.loss_step(losses.get("cross_entropy"), setting)
        value = loss.forward(logits, y)
        results.append((value, loss.backward().copy()))
    (ref_loss, ref_grad), (jit_loss, jit_grad) = results
    assert numpy.asarray(jit_loss).dtype == dtype
    # NumPy sums each row pairwise in the array's type (error ~ log2(k) eps); the kernel in float64.
    rounding = 8 * eps(dtype) * max(1.0, numpy.log2(k))
    numpy.testing.assert_allclose(jit_loss, ref_loss, rtol=rounding)
    numpy.testing.assert_allclose(jit_grad, ref_grad, rtol=0, atol=rounding / n)


# --- optimizers -------------------------------------------------------------------------------
OPTIMIZER_CONFIGS = [
    ("SGD", {}), ("SGD", {"momentum": 0.9}),
    ("SGD", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"momentum": 0.8, "dampening": 0.3}),
    ("Adagrad", {}), ("Adagrad", {"lr_decay": 0.01, "weight_decay": 0.1, "initial_accumulator_value": 0.1}),
    ("Adadelta", {}), ("Adadelta", {"weight_decay": 0.01}),
    ("RMSprop", {}), ("RMSprop", {"momentum": 0.9}), ("RMSprop", {"centered": True}),
    ("RMSprop", {"centered": True, "momentum": 0.9, "weight_decay": 0.01}),
    ("Adam", {}), ("Adam", {"amsgrad": True, "weight_decay": 0.01}),
    ("AdamW", {}), ("AdamW", {"amsgrad": True, "weight_decay": 0.1}),
]


def run_optimizer(name, kwargs, setting, sizes, dtype, steps=4):
    params = [make(size, dtype, 100 + i) for i, size in enumerate(sizes)]
    optimizer = getattr(optim, name)(lr=0.05, **kwargs)
    stepper = fused.optimizer_step(optimizer, setting)
    for t in range(steps):
        if t == 2:
            optimizer.lr = 0.02       # a schedule changing the rate between steps
        stepper.step(params, [make(size, dtype, 10 * t + i) for i, size in enumerate(sizes)])
    return params, optimizer.state


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, kwargs", OPTIMIZER_CONFIGS)
def test_fused_optimizer_updates_equal_numpy_bit_for_bit(name, kwargs, dtype):
    sizes = [1, 7, (33, 65)]          # tiny, ragged, 2-D
    ref_params, ref_state = run_optimizer(name, kwargs, False, sizes, dtype)
    jit_params, jit_state = run_optimizer(name, kwargs, True, sizes, dtype)
    for ref, fused in zip(ref_params, jit_params):
        numpy.testing.assert_array_equal(fused, ref)
    assert set(jit_state) == set(ref_state)
    for key in ref_state:
        for ref, fused in zip(ref_state[key], jit_state[key]):
            numpy.testing.assert_array_equal(fused, ref)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_fused_optimizer_on_a_million_parameters(name):
    kwargs = {"momentum": 0.9} if name != "Adam" else {}
    ref, _ = run_optimizer(name, kwargs, False, [1 << 20], numpy.float32, steps=2)
    fused, _ = run_optimizer(name, kwargs, True, [1 << 20], numpy.float32, steps=2)
    numpy.testing.assert_array_equal(fused[0], ref[0])


def test_a_user_subclass_keeps_its_own_update():
    class HalfStep(optim.SGD):
        def _update(self, param, grad, state, coeffs):
            param -= 0.5 * coeffs["lr"] * grad

    param = numpy.ones(100, numpy.float32)
    opt = HalfStep(lr=1.0)
    assert fused.optimizer_step(opt, True) is opt        # no kernel stands in for a subclass
    fused.optimizer_step(opt, True).step([param], [numpy.ones(100, numpy.float32)])
    numpy.testing.assert_array_equal(param, 0.5)


# --- whole training runs --------------------------------------------------------------------
@pytest.mark.parametrize("activation, dropout, optimizer", [
    ("relu", 0.0, "adam"), ("tanh", 0.2, "sgd"), ("elu", 0.1, "rmsprop")])
def test_fit_with_jit_on_and_off_gives_the_same_history(monkeypatch, activation, dropout, optimizer):
    rng = numpy.random.default_rng(0)
    X = rng.standard_normal((203, 12)).astype(numpy.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    histories, weights = [], []
    for env in ("0", "1"):
        monkeypatch.setenv("NNHP_JIT", env)
        model = nnhp.MLP([12, 32, 16, 3], activation=activation, dropout=dropout, seed=1)
        history = nnhp.fit(model, X, y, optimizer=optimizer, epochs=4, batch_size=16, validation_split=0.25)
        histories.append(history.history)
        weights.append(model.flat_params.copy())
    for key in histories[0]:
        numpy.testing.assert_allclose(histories[1][key], histories[0][key], rtol=1e-5, atol=1e-6, err_msg=key)
    numpy.testing.assert_allclose(weights[1], weights[0], rtol=1e-4, atol=1e-5)



def _relu_sum_with_kernels(_):
    step = steps.FusedActivation(layers.ReLU(), True)
    return float(step.forward(numpy.linspace(-1, 1, 4096, dtype=numpy.float32), training=True).sum())


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_kernels_work_in_forked_worker_processes():
    """A process pool forked after the parent ran kernels (as a parallel study does):
    threaded numba kernels on GNU OpenMP abort such children; these run single-threaded."""
    import multiprocessing
    expected = _relu_sum_with_kernels(0)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        assert pool.map_async(_relu_sum_with_kernels, range(2)).get(timeout=120) == [expected, expected]


# --- the fused steps' buffers ------------------------------------------------------------------
def test_a_ragged_batch_reuses_the_full_batch_buffer():
    """The last, smaller batch of an epoch writes into the leading rows of the same buffer."""
    model = nnhp.MLP([3, 5, 2], seed=0, jit=True)
    step = model.plan[0]
    assert isinstance(step, steps.DenseActivation)
    rng = numpy.random.default_rng(0)
    full = model._forward(rng.standard_normal((4, 3)).astype(numpy.float32), True)
    buffer = step.buffers.arrays["z"]
    model._forward(rng.standard_normal((3, 3)).astype(numpy.float32), True)
    model._forward(rng.standard_normal((4, 3)).astype(numpy.float32), True)
    assert step.buffers.arrays["z"] is buffer
    x = rng.standard_normal((3, 3)).astype(numpy.float32)
    numpy.testing.assert_allclose(model._forward(x, True), model.forward(x), rtol=1e-6)
    assert full.shape == (4, 2)


def test_inference_outputs_are_new_arrays_and_training_ones_are_not_stale():
    """Outside training a fused step returns a fresh array each call (a caller may keep it);
    in training, a batch of another shape gets its own values, never the last batch's."""
    step = steps.FusedActivation(layers.ReLU(), True)
    x1, x2 = make((4, 3), numpy.float32, 1), make((2, 3), numpy.float32, 2)
    first = step.forward(x1, training=False)
    second = step.forward(x2, training=False)
    numpy.testing.assert_array_equal(first, numpy.maximum(x1, 0))
    numpy.testing.assert_array_equal(second, numpy.maximum(x2, 0))
    numpy.testing.assert_array_equal(step.forward(x1, training=True).copy(), numpy.maximum(x1, 0))
    numpy.testing.assert_array_equal(step.forward(x2, training=True), numpy.maximum(x2, 0))
