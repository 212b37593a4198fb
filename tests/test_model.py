"""nnhp/model.py: whole-network backprop against finite differences, the flat parameter
buffer, predict, state, and model files (round trips and broken files)."""
import json
import os
import zipfile

import numpy as np
import pytest

import nnhp
from nnhp import layers, losses, philox

ACTIVATIONS = ["relu", "leaky_relu", "elu", "tanh", "sigmoid", "identity"]


def jitter_biases(model, seed=0):
    """Give every bias a non-zero value so the check exercises db and shifted kinks."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.Dense):
            layer.b[...] = rng.normal(scale=0.3, size=layer.b.shape)


def check_network_gradients(gradcheck, model, loss, X, y, training=False):
    """dL/dθ for every entry of flat_params, and dL/dX, against central differences.

    With dropout in training mode the model's generator is rewound before every forward
    pass, so each evaluation sees the same mask and the loss is a smooth function."""
    rng_state = model.rng.bit_generator.state
    loss = gradcheck.through(loss)

    def objective():
        model.rng.bit_generator.state = rng_state
        return loss.forward(model.forward(X, training=training), y)

    objective()
    grad_X = np.array(model.backward(loss.backward()), copy=True)
    grad_params = model.flat_grads.copy()
    gradcheck.assert_close(grad_params, gradcheck.numeric(objective, model.flat_params), "flat_params")
    gradcheck.assert_close(grad_X, gradcheck.numeric(objective, X), "X")
    return grad_params


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_backprop_matches_finite_differences_for_every_parameter(gradcheck, rng, activation):
    model = nnhp.MLP([5, 7, 6, 4, 3], activation=activation, seed=3, dtype="float64")
    jitter_biases(model)
    X = rng.normal(size=(9, 5))
    y = rng.integers(0, 3, size=9)
    check_network_gradients(gradcheck, model, losses.get("cross_entropy"), X, y)


@pytest.mark.parametrize("loss_name, n_out", [("binary_cross_entropy", 2), ("mse", 2), ("huber", 3)])
def test_mlp_backprop_matches_finite_differences_for_other_losses(gradcheck, rng, loss_name, n_out):
    model = nnhp.MLP([4, 6, 5, n_out], activation="tanh", seed=1, dtype="float64")
    jitter_biases(model, seed=1)
    X = rng.normal(size=(8, 4))
    y = rng.uniform(0, 1, size=(8, n_out)) if loss_name == "binary_cross_entropy" else rng.normal(size=(8, n_out))
    check_network_gradients(gradcheck, model, losses.get(loss_name), X, y)


def test_mlp_with_dropout_backprop_matches_finite_differences_for_a_fixed_mask(gradcheck, rng):
    model = nnhp.MLP([5, 8, 7, 3], activation="elu", dropout=0.3, seed=2, dtype="float64")
    jitter_biases(model, seed=2)
    X = rng.normal(size=(10, 5))
    y = rng.integers(0, 3, size=10)
    check_network_gradients(gradcheck, model, losses.get("cross_entropy"), X, y, training=True)
    # Dropout really was active: some hidden units were zeroed in that pass (the mask is a
    # function of the step's key, stored on the NumPy path, recomputed by a fused kernel).
    dropouts = [layer for layer in model.layers if isinstance(layer, layers.Dropout)]
    for layer, width in zip(dropouts, (8, 7)):
        assert layer.key is not None
        assert not philox.keep_mask(layer.key, (10, width), 1 - layer.p).all()


def test_sequential_with_every_layer_type_backprop_matches_finite_differences(gradcheck, rng):
    model = nnhp.Sequential([layers.Dense(4, 6), layers.LeakyReLU(0.2), layers.Dense(6, 6), layers.ELU(0.5),
                             layers.Dropout(0.2), layers.Dense(6, 5), layers.Sigmoid(), layers.Dense(5, 5),
                             layers.Tanh(), layers.Dense(5, 4), layers.ReLU(), layers.Dense(4, 4),
                             layers.Identity(), layers.Dense(4, 3)], seed=4, dtype="float64")
    jitter_biases(model, seed=4)
    check_network_gradients(gradcheck, model, losses.get("cross_entropy"), rng.normal(size=(7, 4)),
                            rng.integers(0, 3, size=7), training=True)


def test_training_mode_and_inference_mode_give_the_same_gradients_without_dropout(rng):
    model = nnhp.MLP([4, 5, 3], activation="tanh", seed=0, dtype="float64")
    X, y = rng.normal(size=(6, 4)), rng.integers(0, 3, 6)
    loss = losses.get("cross_entropy")
    grads = []
    for training in (False, True):
        loss.forward(model.forward(X, training=training), y)
        model.backward(loss.backward())
        grads.append(model.flat_grads.copy())
    np.testing.assert_array_equal(grads[0], grads[1])


# --- the flat buffer -------------------------------------------------------------------------
def test_params_and_grads_are_views_into_the_flat_buffers():
    model = nnhp.MLP([3, 4, 2], seed=0)
    assert [p.shape for p in model.params] == [(3, 4), (4,), (4, 2), (2,)]
    assert [g.shape for g in model.grads] == [(3, 4), (4,), (4, 2), (2,)]
    assert model.n_params == model.flat_params.size == 3 * 4 + 4 + 4 * 2 + 2
    for param, grad in zip(model.params, model.grads):
        assert np.shares_memory(param, model.flat_params)
        assert np.shares_memory(grad, model.flat_grads)
    model.flat_params[:] = np.arange(model.n_params)
    np.testing.assert_array_equal(model.params[0].ravel(), np.arange(12))
    np.testing.assert_array_equal(model.params[3], [24, 25])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_model_dtype_applies_to_parameters_and_outputs(dtype):
    model = nnhp.MLP([3, 4, 2], seed=0, dtype=dtype)
    assert model.flat_params.dtype == np.dtype(dtype)
    assert model.flat_grads.dtype == np.dtype(dtype)
    assert model.forward(np.ones((2, 3))).dtype == np.dtype(dtype)


def test_same_seed_same_initial_weights_different_seed_different():
    a, b, c = (nnhp.MLP([5, 6, 3], seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    assert not np.array_equal(a.flat_params, c.flat_params)


def test_dropout_is_active_only_in_training_mode(rng):
    model = nnhp.MLP([4, 50, 3], dropout=0.5, seed=0)
    X = rng.normal(size=(6, 4))
    inference = model.forward(X)
    np.testing.assert_array_equal(inference, model.forward(X))
    assert not np.allclose(model.forward(X, training=True), inference)


def test_dropout_masks_in_a_model_follow_the_model_seed(rng):
    X = rng.normal(size=(6, 4))
    outs = [nnhp.MLP([4, 50, 3], dropout=0.5, seed=s).forward(X, training=True) for s in (7, 7, 8)]
    np.testing.assert_array_equal(outs[0], outs[1])
    b = nnhp.MLP([4, 50, 3], dropout=0.5, seed=8)
    b.flat_params[...] = nnhp.MLP([4, 50, 3], dropout=0.5, seed=7).flat_params
    assert not np.array_equal(outs[0], b.forward(X, training=True))


def test_training_forward_returns_an_array_the_next_call_does_not_overwrite(rng):
    model = nnhp.MLP([4, 5, 3], seed=0)
    X1, X2 = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    first = model.forward(X1, training=True)
    kept = first.copy()
    model.forward(X2, training=True)
    np.testing.assert_array_equal(first, kept)


def test_predict_gives_probabilities_after_classification_training(small_classification):
    X, y = small_classification
    model = nnhp.MLP([6, 8, 3], seed=0)
    raw = model.predict(X)
    np.testing.assert_array_equal(raw, model.forward(X))   # untrained: no loss known, raw outputs
    nnhp.fit(model, X, y, epochs=1)
    probabilities = model.predict(X)
    assert np.all(probabilities >= 0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(probabilities.argmax(axis=1), model.forward(X).argmax(axis=1))


def test_predict_in_chunks_equals_one_pass(small_classification):
    X, y = small_classification
    model = nnhp.MLP([6, 8, 3], seed=0, dtype="float64")
    model.loss_name = "cross_entropy"
    np.testing.assert_allclose(model.predict(X, batch_size=7), model.predict(X), rtol=1e-12)


def test_predict_rejects_bad_inputs():
    model = nnhp.MLP([3, 4, 2], seed=0)
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.array([[1.0, np.nan, 0.0]]))
    with pytest.raises(ValueError, match="infinite"):
        model.predict(np.array([[1.0, np.inf, 0.0]]))
    with pytest.raises(ValueError, match="has 2 features but the model expects 3"):
        model.predict(np.ones((4, 2)))
    with pytest.raises(ValueError, match="must be 2-D"):
        model.predict(np.ones(3))
    with pytest.raises(ValueError, match="must be 2-D"):
        model.forward(np.ones((2, 2, 3)))


def test_model_constructors_reject_bad_arguments():
    with pytest.raises(ValueError, match="at least one layer"):
        nnhp.Sequential([])
    with pytest.raises(TypeError, match="expected nnhp layers"):
        nnhp.Sequential([layers.Dense(2, 2), "relu"])
    with pytest.raises(ValueError, match="at least inputs and outputs"):
        nnhp.MLP([10])
    with pytest.raises(ValueError, match="unknown activation 'softsign'"):
        nnhp.MLP([4, 3, 2], activation="softsign")
    for dropout in (-0.1, 1.0, 2):
        with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
            nnhp.MLP([4, 3, 2], dropout=dropout)
    with pytest.raises(ValueError, match="unsupported dtype 'float16'"):
        nnhp.MLP([4, 3, 2], dtype="float16")


def test_get_state_and_set_state_restore_weights_and_dropout_generator(rng):
    model = nnhp.MLP([4, 20, 3], dropout=0.5, seed=0)
    X = rng.normal(size=(5, 4))
    state = model.get_state()
    assert all(value.dtype != object for value in state.values())
    expected = model.forward(X, training=True)
    model.flat_params[...] = 0.0
    model.forward(X, training=True)   # advances the generator
    model.set_state(state)
    np.testing.assert_array_equal(model.forward(X, training=True), expected)


def test_set_state_rejects_a_state_of_another_size():
    with pytest.raises(ValueError, match="state holds"):
        nnhp.MLP([4, 3, 2]).set_state(nnhp.MLP([4, 5, 2]).get_state())


# --- model files -----------------------------------------------------------------------------
def test_save_load_round_trip_keeps_predictions_and_loss(tmp_path, small_classification):
    X, y = small_classification
    model = nnhp.MLP([6, 10, 3], activation="tanh", dropout=0.2, seed=0)
    nnhp.fit(model, X, y, epochs=2)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = nnhp.load(path)
    assert loaded.loss_name == "cross_entropy"
    np.testing.assert_array_equal(loaded.flat_params, model.flat_params)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict(X).sum(axis=1), 1.0, rtol=1e-5)


def test_model_file_holds_no_object_arrays(tmp_path):
    path = tmp_path / "model.npz"
    nnhp.MLP([3, 4, 2], seed=0).save(path)
    with np.load(path, allow_pickle=False) as archive:
        for key in archive.files:
            assert archive[key].dtype != object
        meta = json.loads(str(archive["meta"]))
    assert meta["dtype"] == "float32"
    assert [entry["type"] for entry in meta["layers"]] == ["Dense", "ReLU", "Dense"]


def test_save_adds_the_npz_suffix(tmp_path):
    nnhp.MLP([3, 4, 2], seed=0).save(tmp_path / "model")
    assert (tmp_path / "model.npz").exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_sequential_with_every_layer_type_round_trips(tmp_path, rng):
    model = nnhp.Sequential([layers.Dense(4, 6, init="he_normal"), layers.LeakyReLU(0.2),
                             layers.Dropout(0.3), layers.Dense(6, 5, init="lecun_normal"), layers.ELU(0.5),
                             layers.Dense(5, 5, gain=0.5), layers.Sigmoid(), layers.Dense(5, 4), layers.Tanh(),
                             layers.Dense(4, 4), layers.ReLU(), layers.Dense(4, 3), layers.Identity()], seed=0)
    model.save(tmp_path / "seq.npz")
    loaded = nnhp.load(tmp_path / "seq.npz")
    assert loaded.architecture() == model.architecture()
    X = rng.normal(size=(5, 4))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_float64_model_keeps_its_dtype_through_a_file(tmp_path, rng):
    model = nnhp.MLP([3, 5, 2], seed=0, dtype="float64")
    model.flat_params[...] += 1e-12   # a change float32 could not hold
    model.save(tmp_path / "m64.npz")
    loaded = nnhp.load(tmp_path / "m64.npz")
    assert loaded.flat_params.dtype == np.float64
    np.testing.assert_array_equal(loaded.flat_params, model.flat_params)


def test_loading_a_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found.*nothere.npz"):
        nnhp.load(tmp_path / "nothere.npz")


def test_loading_a_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "model.npz"
    nnhp.MLP([8, 16, 2], seed=0).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable nnhp model file"):
        nnhp.load(path)


def test_loading_a_foreign_npz_is_a_clear_error(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.ones(3), labels=np.arange(3))
    with pytest.raises(ValueError, match="not an nnhp model file"):
        nnhp.load(path)


def test_loading_an_npz_of_another_format_is_a_clear_error(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, meta=np.array(json.dumps({"format": "somebody-else"})), flat_params=np.ones(3))
    with pytest.raises(ValueError, match="not an nnhp model file \\(format 'somebody-else'\\)"):
        nnhp.load(path)


def test_loading_a_non_zip_file_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("these are not weights\n" * 20)
    with pytest.raises(ValueError, match="not a readable nnhp model file"):
        nnhp.load(path)


def test_loading_a_plain_npy_array_is_a_clear_error(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.ones(5))
    with pytest.raises(ValueError, match="not an nnhp model file"):
        nnhp.load(path)


def test_loading_a_file_whose_weights_do_not_fit_its_architecture(tmp_path):
    # A version-1 file (one flat_params array; issue 12 moved saving to one array per tensor).
    good = tmp_path / "model.npz"
    nnhp.MLP([3, 4, 2], seed=0).save(good)
    with np.load(good, allow_pickle=False) as archive:
        meta = json.loads(str(archive["meta"]))
    meta["version"] = 1
    bad = tmp_path / "bad.npz"
    np.savez(bad, meta=np.array(json.dumps(meta)), flat_params=np.ones(5, dtype=np.float32))
    with pytest.raises(ValueError, match="holds 5 weights but its architecture needs 26"):
        nnhp.load(bad)


def test_model_file_opens_as_a_zip_of_plain_npy_entries(tmp_path):
    path = tmp_path / "model.npz"
    nnhp.MLP([3, 4, 2], seed=0).save(path)
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["W1.npy", "W2.npy", "b1.npy", "b2.npy", "meta.npy"]


def test_backward_hands_the_caller_its_own_input_gradient():
    import nnhp as _nnhp
    model = _nnhp.MLP([4, 6, 3], seed=0)
    X = np.random.default_rng(0).standard_normal((5, 4))
    model.forward(X, training=True)
    first = model.backward(np.ones((5, 3)))
    kept = first.copy()
    model.forward(X, training=True)
    second = model.backward(2 * np.ones((5, 3)))
    assert second is not first
    np.testing.assert_array_equal(first, kept)
    np.testing.assert_allclose(second, 2 * kept)
