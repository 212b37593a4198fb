"""nnhp/train.py: penalties (value and gradient), the fit loop's behaviour, reproducibility,
resumption from checkpoints, bad inputs, and real learning (digits, moons, regression)."""
import math

import numpy as np
import pytest

import nnhp
from nnhp import losses, optim, schedules
from nnhp.data import make_moons, make_regression, standardize, train_test_split
from nnhp.checkpoint import checkpoint_state, restore_checkpoint
from nnhp.train import _add_penalty_gradients, _penalty, clip_grad_norm


def random_problem(n=60, n_features=10, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n_features)), rng.integers(0, n_classes, n)


# --- L1 / L2 penalties ------------------------------------------------------------------------
@pytest.mark.parametrize("l1, l2", [(0.01, 0.0), (0.0, 0.02), (0.015, 0.03)])
def test_penalized_objective_gradient_matches_finite_differences(gradcheck, rng, l1, l2):
    model = nnhp.MLP([4, 6, 5, 3], activation="tanh", seed=0, dtype="float64")
    for layer in model.layers:
        if hasattr(layer, "b"):
            layer.b[...] = rng.normal(scale=0.3, size=layer.b.shape)
    # |W| has a kink at 0; central differences with step h are exact only beyond h.
    assert min(np.abs(W).min() for W in model.weights) > 1e-4
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
    loss = losses.get("cross_entropy")

    def objective():
        return loss.forward(model.forward(X), y) + _penalty(model, l1, l2)

    objective()
    model.backward(loss.backward())
    _add_penalty_gradients(model, l1, l2)
    gradcheck.assert_close(model.flat_grads.copy(), gradcheck.numeric(objective, model.flat_params), "penalized")


def test_penalty_is_l1_abs_plus_l2_squares_of_weights_only(rng):
    model = nnhp.MLP([4, 6, 3], seed=0, dtype="float64")
    for layer in model.layers:
        if hasattr(layer, "b"):
            layer.b[...] = 5.0    # biases are not penalized: these must not count
    W1, W2 = (np.asarray(W) for W in model.weights)
    expected = 0.1 * (np.abs(W1).sum() + np.abs(W2).sum()) + 0.2 * ((W1 ** 2).sum() + (W2 ** 2).sum())
    assert _penalty(model, 0.1, 0.2) == pytest.approx(expected, rel=1e-12)
    assert _penalty(model, 0.0, 0.0) == 0.0


def test_reported_training_loss_includes_the_penalty(small_classification):
    X, y = small_classification
    model = nnhp.MLP([6, 8, 3], seed=0, dtype="float64")
    # lr = 0: the weights never move, so the epoch's loss is exactly data loss + penalty.
    history = nnhp.fit(model, X, y, optimizer=optim.SGD(lr=0.0), epochs=1, l1=0.01, l2=0.1, shuffle=False)
    data_loss = nnhp.evaluate(model, X, y)["loss"]
    assert history.history["loss"][0] == pytest.approx(data_loss + _penalty(model, 0.01, 0.1), rel=1e-12)


def test_l2_penalty_shrinks_the_weights(small_classification):
    X, y = small_classification
    norms = []
    for l2 in (0.0, 0.05):
        model = nnhp.MLP([6, 16, 3], seed=0)
        nnhp.fit(model, X, y, optimizer=optim.Adam(lr=1e-2), epochs=30, l2=l2)
        norms.append(sum(float((np.asarray(W) ** 2).sum()) for W in model.weights))
    assert norms[1] < 0.5 * norms[0]


# --- the loop ---------------------------------------------------------------------------------
def manual_sgd_epoch(model, X, y, lr, batch_size, loss_name="cross_entropy"):
    """The textbook loop on the same slices, for comparison with fit."""
    loss = losses.get(loss_name)
    for start in range(0, len(X), batch_size):
        xb, yb = X[start:start + batch_size], y[start:start + batch_size]
        loss.forward(model.forward(xb, training=True), yb)
        model.backward(loss.backward())
        model.flat_params -= lr * model.flat_grads


@pytest.mark.parametrize("batch_size", [4, 7, 10, 64])
def test_fit_without_shuffling_equals_the_textbook_loop_including_a_ragged_last_batch(batch_size):
    X, y = random_problem(n=10, n_features=5)
    fitted = nnhp.MLP([5, 6, 3], seed=0, dtype="float64")
    manual = nnhp.MLP([5, 6, 3], seed=0, dtype="float64")
    steps = []
    nnhp.fit(fitted, X, y, optimizer=optim.SGD(lr=0.1), epochs=2, batch_size=batch_size, shuffle=False,
             callbacks=[SpyCallback(steps)])
    for _ in range(2):
        manual_sgd_epoch(manual, X, y, lr=0.1, batch_size=batch_size)
    np.testing.assert_allclose(fitted.flat_params, manual.flat_params, rtol=1e-12, atol=1e-14)
    assert [s for s in steps if s[0] == "batch"] == [("batch", i) for i in range(2 * math.ceil(10 / batch_size))]


def test_epoch_loss_weights_each_batch_by_its_size():
    X, y = random_problem(n=10, n_features=5)
    batch_losses = []

    class Recorder(nnhp.Callback):
        def on_batch_end(self, step, loss):
            batch_losses.append(loss)

    model = nnhp.MLP([5, 6, 3], seed=0, dtype="float64")
    history = nnhp.fit(model, X, y, optimizer=optim.SGD(lr=0.1), epochs=1, batch_size=4, callbacks=[Recorder()])
    assert len(batch_losses) == 3
    expected = (4 * batch_losses[0] + 4 * batch_losses[1] + 2 * batch_losses[2]) / 10
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-12)


class SpyCallback(nnhp.Callback):
    """Records every hook call in order."""

    def __init__(self, calls, stop_at=None):
        self.calls, self.stop_at = calls, stop_at

    def on_train_begin(self, history):
        self.calls.append(("train_begin",))

    def on_epoch_begin(self, epoch):
        self.calls.append(("epoch_begin", epoch))

    def on_batch_end(self, step, loss):
        assert math.isfinite(loss)
        self.calls.append(("batch", step))

    def on_epoch_end(self, epoch, logs):
        self.calls.append(("epoch_end", epoch, sorted(logs)))
        return self.stop_at is not None and epoch >= self.stop_at

    def on_train_end(self, history):
        self.calls.append(("train_end", history.stop_reason))


def test_callback_subclass_hooks_run_in_order_with_logs():
    X, y = random_problem(n=20, n_features=4)
    calls = []
    nnhp.fit(nnhp.MLP([4, 5, 3]), X, y, epochs=2, batch_size=10, validation_data=(X, y),
             callbacks=[SpyCallback(calls)])
    keys = ["accuracy", "loss", "lr", "val_accuracy", "val_loss"]
    assert calls == [("train_begin",),
                     ("epoch_begin", 0), ("batch", 0), ("batch", 1), ("epoch_end", 0, keys),
                     ("epoch_begin", 1), ("batch", 2), ("batch", 3), ("epoch_end", 1, keys),
                     ("train_end", "completed")]


def test_callback_returning_true_stops_training():
    X, y = random_problem(n=20, n_features=4)
    calls = []
    history = nnhp.fit(nnhp.MLP([4, 5, 3]), X, y, epochs=10, callbacks=[SpyCallback(calls, stop_at=2)])
    assert history.stop_reason == "callback"
    assert history.epoch == [0, 1, 2]
    assert calls[-1] == ("train_end", "callback")


def test_function_callbacks_receive_epoch_and_logs_and_can_stop():
    X, y = random_problem(n=20, n_features=4)
    seen = []

    def record(epoch, logs):
        seen.append((epoch, dict(logs)))

    def stop_after_one(epoch, logs):
        return epoch == 1

    history = nnhp.fit(nnhp.MLP([4, 5, 3]), X, y, epochs=5, callbacks=[record, stop_after_one])
    assert [epoch for epoch, _ in seen] == [0, 1]
    assert seen[1][1]["loss"] == history.history["loss"][1]
    assert history.stop_reason == "callback"
    single = nnhp.fit(nnhp.MLP([4, 5, 3]), X, y, epochs=5, callbacks=stop_after_one)   # a bare function
    assert single.epoch == [0, 1]


def test_history_keys_and_lengths_for_classification_with_validation(small_classification):
    X, y = small_classification
    history = nnhp.fit(nnhp.MLP([6, 8, 3]), X[:90], y[:90], epochs=4, validation_data=(X[90:], y[90:]),
                       optimizer=optim.Adam(lr=0.005))
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert all(len(values) == 4 for values in history.history.values())
    assert history.epoch == [0, 1, 2, 3]
    assert history.history["lr"] == [0.005] * 4
    assert history.stop_reason == "completed" and history.best_epoch is None
    assert all(0.0 <= a <= 1.0 for a in history.history["accuracy"] + history.history["val_accuracy"])
    final = nnhp.evaluate(nnhp.MLP([6, 8, 3]), X[90:], y[90:])
    assert set(final) == {"loss", "accuracy"}


def test_history_for_regression_has_no_accuracy():
    data = make_regression(100, seed=0)
    history = nnhp.fit(nnhp.MLP([5, 8, 1]), data.X, data.y, loss="mse", epochs=3, validation_split=0.2)
    assert set(history.history) == {"loss", "val_loss", "lr"}


def test_history_lr_follows_an_epoch_schedule(small_classification):
    X, y = small_classification
    opt = optim.SGD(lr=0.1)
    history = nnhp.fit(nnhp.MLP([6, 8, 3]), X, y, optimizer=opt, epochs=5,
                       schedule=schedules.StepDecay(2, gamma=0.5))
    assert history.history["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025], rel=1e-12)


def test_validation_split_holds_out_that_fraction(small_classification):
    X, y = small_classification
    history = nnhp.fit(nnhp.MLP([6, 8, 3]), X, y, epochs=2, validation_split=0.25)
    assert history.params["n_samples"] == 90
    assert len(history.history["val_loss"]) == 2


def test_epochs_zero_trains_nothing(small_classification):
    X, y = small_classification
    model = nnhp.MLP([6, 8, 3])
    before = model.flat_params.copy()
    history = nnhp.fit(model, X, y, epochs=0)
    np.testing.assert_array_equal(model.flat_params, before)
    assert history.epoch == [] and history.stop_reason == "completed"


def test_evaluate_accuracy_matches_predictions(small_classification):
    X, y = small_classification
    model = nnhp.MLP([6, 8, 3], seed=0)
    nnhp.fit(model, X, y, epochs=3)
    result = nnhp.evaluate(model, X, y, batch_size=50)
    assert result["accuracy"] == pytest.approx(float((model.predict(X).argmax(axis=1) == y).mean()))
    assert result["loss"] == pytest.approx(nnhp.evaluate(model, X, y)["loss"], rel=1e-5)


def test_verbose_prints_one_line_per_epoch(capsys, small_classification):
    X, y = small_classification
    nnhp.fit(nnhp.MLP([6, 8, 3]), X, y, epochs=3, verbose=True, validation_split=0.2)
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.startswith("epoch")]
    assert len(lines) == 3
    assert lines[0].startswith("epoch 1/3") and lines[2].startswith("epoch 3/3")
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert key in lines[-1]


def test_silent_by_default(capsys, small_classification):
    X, y = small_classification
    nnhp.fit(nnhp.MLP([6, 8, 3]), X, y, epochs=2)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# --- early stopping ------------------------------------------------------------------------------
def fit_noise_with_snapshots(early_stopping, epochs=200):
    """Random labels: the model can only memorize, so the validation loss turns up."""
    X, y = random_problem(n=60, n_features=10, seed=1)
    X_val, y_val = random_problem(n=60, n_features=10, seed=2)
    model = nnhp.MLP([10, 64, 3], seed=0)
    snapshots = []
    history = nnhp.fit(model, X, y, optimizer=optim.Adam(lr=0.01), epochs=epochs, validation_data=(X_val, y_val),
                       early_stopping=early_stopping,
                       callbacks=[lambda epoch, logs: snapshots.append(model.flat_params.copy())])
    return model, history, snapshots


def test_early_stopping_stops_and_restores_the_best_weights():
    patience = 3
    model, history, snapshots = fit_noise_with_snapshots(nnhp.EarlyStopping(patience=patience))
    val_loss = history.history["val_loss"]
    assert history.stop_reason == "early_stopping"
    best = int(np.argmin(val_loss))
    assert history.best_epoch == best
    assert len(val_loss) == best + patience + 1 < 200
    np.testing.assert_array_equal(model.flat_params, snapshots[best])
    assert not np.array_equal(model.flat_params, snapshots[-1])


def test_early_stopping_without_restore_keeps_the_last_weights():
    model, history, snapshots = fit_noise_with_snapshots(nnhp.EarlyStopping(patience=2, restore_best=False))
    assert history.stop_reason == "early_stopping"
    np.testing.assert_array_equal(model.flat_params, snapshots[-1])


def test_early_stopping_on_accuracy_maximizes(small_classification):
    X, y = small_classification
    stopper = nnhp.EarlyStopping(monitor="val_accuracy", patience=2)
    assert stopper.mode == "max"
    history = nnhp.fit(nnhp.MLP([6, 8, 3]), X[:90], y[:90], validation_data=(X[90:], y[90:]), epochs=300,
                       optimizer=optim.Adam(lr=0.01), early_stopping=stopper)
    accuracy = history.history["val_accuracy"]
    assert history.best_epoch == int(np.argmax(accuracy))


def test_early_stopping_min_delta_demands_real_improvement():
    stopper = nnhp.EarlyStopping(monitor="loss", patience=0, min_delta=0.1)
    model = nnhp.MLP([2, 2, 2])
    assert stopper.update(0, 1.0, model) is False
    assert stopper.update(1, 0.95, model) is True     # improved by less than min_delta
    assert stopper.best == 1.0 and stopper.best_epoch == 0


# --- non-finite loss, clipping -----------------------------------------------------------------
@pytest.mark.parametrize("lr, batch_size, dtype", [(1e6, 32, "float32"), (1e6, 200, "float64"),
                                                   (1e38, 200, "float32")])
def test_overflowing_loss_stops_training_with_finite_weights(lr, batch_size, dtype):
    data = make_regression(200, seed=0)
    model = nnhp.MLP([5, 16, 1], seed=0, dtype=dtype)
    with np.errstate(all="ignore"):
        history = nnhp.fit(model, data.X, data.y, loss="mse", optimizer=optim.SGD(lr=lr), epochs=20,
                           batch_size=batch_size)
    assert history.stop_reason == "non_finite_loss"
    assert len(history.epoch) < 20
    assert np.isfinite(model.flat_params).all()
    assert all(math.isfinite(value) for value in history.history.get("loss", []))


def test_clip_grad_norm_scales_to_the_maximum_and_keeps_direction():
    grads = np.array([3.0, 4.0, 0.0, -12.0])           # norm 13
    original = grads.copy()
    assert clip_grad_norm(grads, 1.3) == pytest.approx(13.0)
    assert np.linalg.norm(grads) == pytest.approx(1.3, rel=1e-6)
    np.testing.assert_allclose(grads / np.linalg.norm(grads), original / 13.0, rtol=1e-12)


def test_clip_grad_norm_leaves_small_gradients_alone():
    grads = np.array([0.3, -0.4], dtype=np.float32)
    assert clip_grad_norm(grads, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(grads, np.array([0.3, -0.4], dtype=np.float32))


def test_fit_clip_norm_bounds_every_sgd_step(small_classification):
    X, y = small_classification
    lr, clip = 0.5, 1e-3

    def step_norms(clip_norm):
        model = nnhp.MLP([6, 8, 3], seed=0, dtype="float64")
        previous = [model.flat_params.copy()]
        norms = []

        class StepSize(nnhp.Callback):
            def on_batch_end(self, step, loss):
                norms.append(float(np.linalg.norm(model.flat_params - previous[0])))
                previous[0] = model.flat_params.copy()

        nnhp.fit(model, X, y, optimizer=optim.SGD(lr=lr), epochs=2, clip_norm=clip_norm, callbacks=[StepSize()])
        return np.array(norms), model.flat_params.copy()

    clipped, clipped_params = step_norms(clip)
    free, free_params = step_norms(None)
    assert clipped.max() <= lr * clip * (1 + 1e-9)
    assert free.min() > lr * clip      # so the cap was really active on every step
    assert not np.allclose(clipped_params, free_params)


# --- reproducibility and resumption -------------------------------------------------------------
def train_with_dropout(model_seed, fit_seed, X, y, epochs=5):
    model = nnhp.MLP([X.shape[1], 32, 16, 3], dropout=0.3, seed=model_seed)
    history = nnhp.fit(model, X, y, optimizer=optim.Adam(lr=0.01), epochs=epochs, batch_size=16,
                       validation_split=0.2, seed=fit_seed)
    return model, history


def test_same_seeds_give_bit_identical_training(small_classification):
    X, y = small_classification
    first, history1 = train_with_dropout(0, 0, X, y)
    second, history2 = train_with_dropout(0, 0, X, y)
    np.testing.assert_array_equal(first.flat_params, second.flat_params)
    assert history1.history == history2.history


@pytest.mark.parametrize("model_seed, fit_seed", [(1, 0), (0, 1)])
def test_a_different_seed_gives_different_training(small_classification, model_seed, fit_seed):
    X, y = small_classification
    reference, history = train_with_dropout(0, 0, X, y)
    other, other_history = train_with_dropout(model_seed, fit_seed, X, y)
    assert not np.array_equal(reference.flat_params, other.flat_params)
    assert history.history["loss"] != other_history.history["loss"]


def test_resuming_from_a_checkpoint_file_is_bit_identical(tmp_path, small_classification):
    X, y = small_classification
    total, k = 6, 3

    def new_run(seed=0):
        return (nnhp.MLP([6, 16, 8, 3], dropout=0.25, seed=seed), optim.Adam(lr=0.01),
                schedules.StepDecay(2, gamma=0.5))

    def train(model, opt, schedule, epochs, initial_epoch=0):
        return nnhp.fit(model, X, y, optimizer=opt, schedule=schedule, epochs=epochs, batch_size=16, seed=5,
                        initial_epoch=initial_epoch)

    straight, straight_opt, straight_schedule = new_run()
    straight_history = train(straight, straight_opt, straight_schedule, total)

    first, first_opt, first_schedule = new_run()
    train(first, first_opt, first_schedule, k)
    path = tmp_path / "checkpoint.npz"
    np.savez(path, **checkpoint_state(first, first_opt, k))
    with np.load(path, allow_pickle=False) as archive:
        state = {key: archive[key] for key in archive.files}

    resumed, resumed_opt, resumed_schedule = new_run(seed=123)   # different initial weights on purpose
    assert restore_checkpoint(state, resumed, resumed_opt) == k
    resumed_history = train(resumed, resumed_opt, resumed_schedule, total, initial_epoch=k)

    np.testing.assert_array_equal(resumed.flat_params, straight.flat_params)
    assert resumed_history.epoch == [3, 4, 5]
    for key, values in straight_history.history.items():
        assert resumed_history.history[key] == values[k:], key


def test_checkpoint_without_the_dropout_generator_state_diverges(small_classification):
    """The control for the test above: the generator state is what makes it bit-identical."""
    X, y = small_classification
    runs = []
    for restore_rng in (True, False):
        model, opt = nnhp.MLP([6, 16, 3], dropout=0.25, seed=0), optim.Adam(lr=0.01)
        nnhp.fit(model, X, y, optimizer=opt, epochs=2, seed=5)
        state = checkpoint_state(model, opt, 2)
        if not restore_rng:
            del state["model/rng_state"]
        fresh, fresh_opt = nnhp.MLP([6, 16, 3], dropout=0.25, seed=0), optim.Adam(lr=0.01)
        restore_checkpoint(state, fresh, fresh_opt)
        nnhp.fit(fresh, X, y, optimizer=fresh_opt, epochs=4, seed=5, initial_epoch=2)
        runs.append(fresh.flat_params.copy())
    assert not np.array_equal(runs[0], runs[1])


# --- learning real problems ------------------------------------------------------------------------
def test_mlp_reaches_97_percent_on_digits(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    assert X_train.shape == (1347, 64) and X_test.shape == (450, 64)
    model = nnhp.MLP([64, 128, 64, 10], activation="relu", dropout=0.1, seed=0)
    history = nnhp.fit(model, X_train, y_train, loss="cross_entropy", optimizer=optim.Adam(lr=1e-3),
                       epochs=50, batch_size=32, seed=0)
    assert history.stop_reason == "completed"
    accuracy = nnhp.evaluate(model, X_test, y_test)["accuracy"]
    assert accuracy >= 0.97
    assert float((model.predict(X_test).argmax(axis=1) == y_test).mean()) == pytest.approx(accuracy)


def test_binary_cross_entropy_learns_two_moons():
    data = make_moons(600, noise=0.1, seed=0)
    X_train, X_test, y_train, y_test = train_test_split(data.X, data.y, 0.25, seed=0)
    model = nnhp.MLP([2, 32, 32, 1], activation="tanh", seed=0)
    nnhp.fit(model, X_train, y_train, loss="binary_cross_entropy", optimizer=optim.Adam(lr=0.01), epochs=60)
    result = nnhp.evaluate(model, X_test, y_test)
    assert result["accuracy"] > 0.95
    probabilities = model.predict(X_test)
    assert probabilities.shape == (len(X_test), 1) and np.all((probabilities >= 0) & (probabilities <= 1))


def test_mse_regression_improves_well_below_the_target_variance():
    data = make_regression(800, seed=0)
    X_train, X_test, y_train, y_test = train_test_split(data.X, data.y, 0.25, seed=0, stratify=False)
    X_train, X_test = standardize(X_train, X_test)
    model = nnhp.MLP([5, 64, 64, 1], activation="relu", seed=0)
    history = nnhp.fit(model, X_train, y_train, loss="mse", optimizer=optim.Adam(lr=3e-3), epochs=60)
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]
    test_mse = nnhp.evaluate(model, X_test, y_test, loss="mse")["loss"]
    assert test_mse < 0.1 * float(np.var(y_test))


# --- bad inputs --------------------------------------------------------------------------------------
@pytest.fixture
def model_and_data():
    X, y = random_problem(n=20, n_features=4)
    return nnhp.MLP([4, 5, 3], seed=0), X, y


@pytest.mark.parametrize("bad, message", [(np.nan, "NaN"), (np.inf, "infinite"), (-np.inf, "infinite")])
def test_non_finite_X_is_rejected_by_fit_evaluate_and_predict(model_and_data, bad, message):
    model, X, y = model_and_data
    X = X.copy()
    X[3, 2] = bad
    with pytest.raises(ValueError, match=f"X contains 1 {message}.*row 3, column 2"):
        nnhp.fit(model, X, y, epochs=1)
    with pytest.raises(ValueError, match=message):
        nnhp.evaluate(model, X, y)
    with pytest.raises(ValueError, match=message):
        model.predict(X)
    with pytest.raises(ValueError, match=f"validation X contains 1 {message}"):
        nnhp.fit(model, X[:3], y[:3], validation_data=(X, y), epochs=1)


@pytest.mark.parametrize("shape", [(20,), (20, 4, 1)])
def test_X_that_is_not_2d_is_rejected(model_and_data, shape):
    model, X, y = model_and_data
    with pytest.raises(ValueError, match=r"X must be 2-D \(n_samples, n_features\)"):
        nnhp.fit(model, np.zeros(shape), y, epochs=1)


def test_wrong_feature_count_is_rejected(model_and_data):
    model, X, y = model_and_data
    with pytest.raises(ValueError, match="X has 5 features but the model expects 4"):
        nnhp.fit(model, np.zeros((20, 5)), y, epochs=1)
    with pytest.raises(ValueError, match="has 3 features but the model expects 4"):
        nnhp.evaluate(model, np.zeros((20, 3)), y)


def test_X_and_y_of_different_lengths_are_rejected(model_and_data):
    model, X, y = model_and_data
    with pytest.raises(ValueError, match="X has 20 samples but y has 19"):
        nnhp.fit(model, X, y[:19], epochs=1)


@pytest.mark.parametrize("labels, message", [
    (lambda y: np.where(y == 0, 3, y), r"label 3, out of range for a model with 3 outputs"),
    (lambda y: np.where(y == 0, -1, y), r"label -1; labels must be in \[0, 3\)"),
    (lambda y: y + 0.5, "whole numbers"),
    (lambda y: y.astype(str), "must be integers"),
])
def test_bad_class_labels_are_rejected(model_and_data, labels, message):
    model, X, y = model_and_data
    with pytest.raises((ValueError, TypeError), match=message):
        nnhp.fit(model, X, labels(y), epochs=1)


def test_unknown_names_are_rejected(model_and_data):
    model, X, y = model_and_data
    with pytest.raises(ValueError, match="unknown loss 'kl'"):
        nnhp.fit(model, X, y, loss="kl", epochs=1)
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        nnhp.fit(model, X, y, optimizer="lbfgs", epochs=1)
    with pytest.raises(TypeError, match="optimizer must be a name or an object with step"):
        nnhp.fit(model, X, y, optimizer=42, epochs=1)


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"batch_size": 2.5}, "batch_size must be an integer >= 1"),
    ({"epochs": -1}, "epochs must be an integer >= 0"),
    ({"validation_split": 0.0}, "validation_split must be a fraction strictly between 0 and 1"),
    ({"validation_split": 1.0}, "validation_split must be a fraction"),
    ({"validation_split": -0.2}, "validation_split must be a fraction"),
    ({"l1": -0.1}, "l1 must be a finite number >= 0"),
    ({"l2": -1e-3}, "l2 must be a finite number >= 0"),
    ({"l2": float("nan")}, "l2 must be a finite number >= 0"),
    ({"clip_norm": 0.0}, "clip_norm must be a positive number"),
    ({"initial_epoch": 5, "epochs": 3}, r"initial_epoch \(5\) is past epochs \(3\)"),
    ({"validation_data": (np.zeros((2, 4)),)}, "validation_data must be a pair"),
])
def test_bad_fit_arguments_are_rejected(model_and_data, kwargs, message):
    model, X, y = model_and_data
    kwargs.setdefault("epochs", 1)
    with pytest.raises(ValueError, match=message):
        nnhp.fit(model, X, y, **kwargs)


def test_validation_data_and_split_together_are_rejected(model_and_data):
    model, X, y = model_and_data
    with pytest.raises(ValueError, match="not both"):
        nnhp.fit(model, X, y, validation_data=(X, y), validation_split=0.2, epochs=1)


def test_early_stopping_on_val_loss_without_validation_data_is_rejected(model_and_data):
    model, X, y = model_and_data
    with pytest.raises(ValueError, match="monitors 'val_loss' but there is no validation data"):
        nnhp.fit(model, X, y, epochs=1, early_stopping=nnhp.EarlyStopping(monitor="val_loss"))


def test_early_stopping_on_an_unrecorded_metric_is_rejected(model_and_data):
    model, X, y = model_and_data
    with pytest.raises(ValueError, match="monitors 'f1'"):
        nnhp.fit(model, X, y, epochs=1, early_stopping=nnhp.EarlyStopping(monitor="f1"))


@pytest.mark.parametrize("kwargs, message", [({"patience": -1}, "patience"), ({"min_delta": -0.1}, "min_delta"),
                                             ({"mode": "best"}, "mode")])
def test_bad_early_stopping_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nnhp.EarlyStopping(**kwargs)


def test_failed_validation_leaves_the_model_untouched(model_and_data):
    model, X, y = model_and_data
    before = model.flat_params.copy()
    with pytest.raises(ValueError):
        nnhp.fit(model, X, np.full(20, 7), epochs=3)
    np.testing.assert_array_equal(model.flat_params, before)


def test_device_side_epoch_sums_give_the_same_history_as_per_batch_reads(monkeypatch):
    """The GPU path (sums kept on the device, read once an epoch) equals the CPU path."""
    import nnhp
    from nnhp import train as train_module
    from nnhp.data import make_moons

    data = make_moons(300, noise=0.2, seed=0)
    runs = []
    for sync in (True, False):
        monkeypatch.setattr(train_module, "_sync_each_batch", lambda backend, sync=sync: sync)
        model = nnhp.MLP([2, 16, 2], dropout=0.1, seed=0)
        history = nnhp.fit(model, data.X, data.y, epochs=4, batch_size=37, l1=1e-4, l2=1e-3,
                           validation_split=0.2, seed=0)
        runs.append((history.history, model.flat_params.copy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


# The divergence this test provokes makes NumPy warn on the way: expected here.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_device_side_sums_still_catch_a_non_finite_epoch(monkeypatch):
    import nnhp
    from nnhp import train as train_module
    from nnhp.data import make_regression

    monkeypatch.setattr(train_module, "_sync_each_batch", lambda backend: False)
    data = make_regression(200, seed=0)
    model = nnhp.MLP([5, 16, 1], seed=0)
    start = model.flat_params.copy()
    history = nnhp.fit(model, data.X, data.y * 1e30, loss="mse", optimizer=nnhp.optim.SGD(lr=1e6),
                       epochs=3, batch_size=20)
    assert history.stop_reason == "non_finite_loss"
    assert np.isfinite(model.flat_params).all()
    np.testing.assert_array_equal(model.flat_params, start)


def test_plateau_schedule_watches_val_loss_not_the_early_stopping_metric():
    """With early stopping on val_accuracy (a max metric) the plateau schedule (mode min) must
    not read accuracy: a rising accuracy would look like a loss that never improves."""
    data = make_moons(400, noise=0.2, seed=0)
    schedule = schedules.ReduceOnPlateau(factor=0.5, patience=0, threshold=0.0)
    observed = []
    original = schedule.observe
    schedule.observe = lambda metric: (observed.append(metric), original(metric))
    history = nnhp.fit(nnhp.MLP([2, 16, 2], seed=0), data.X, data.y, optimizer=optim.Adam(lr=1e-2),
                       schedule=schedule, epochs=4, batch_size=32, validation_split=0.25,
                       early_stopping=nnhp.EarlyStopping(monitor="val_accuracy", patience=10))
    assert observed == history.history["val_loss"]


def test_a_monitor_fit_never_records_fails_before_any_training():
    data = make_regression(100, seed=0)
    epochs_started = []
    with pytest.raises(ValueError, match="early stopping monitors 'val_accuracy'.*available: loss, lr, val_loss"):
        nnhp.fit(nnhp.MLP([5, 8, 1], seed=0), data.X, data.y, loss="mse", epochs=2, validation_split=0.2,
                 early_stopping=nnhp.EarlyStopping(monitor="val_accuracy"),
                 callbacks=[lambda epoch, logs: epochs_started.append(epoch)])
    assert epochs_started == []
    with pytest.raises(ValueError, match="the schedule monitors 'accuracy'"):
        nnhp.fit(nnhp.MLP([5, 8, 1], seed=0), data.X, data.y, loss="mse", epochs=2,
                 schedule=schedules.ReduceOnPlateau(monitor="accuracy"))


def test_clip_grad_norm_device_path_scales_like_the_host_path(monkeypatch):
    """The GPU branch (scale computed on the device, no host read) gives the host's result."""
    import types
    from nnhp import train as train_module

    stand_in = types.SimpleNamespace(sqrt=np.sqrt, vdot=np.vdot, minimum=np.minimum, float64=np.float64)
    for max_norm in (1.3, 100.0):
        host = np.array([3.0, 4.0, 12.0], dtype=np.float32)
        device = host.copy()
        host_norm = clip_grad_norm(host, max_norm)
        monkeypatch.setattr(train_module, "array_module", lambda array: stand_in)
        device_norm = train_module.clip_grad_norm(device, max_norm)
        monkeypatch.undo()
        assert float(device_norm) == pytest.approx(host_norm, rel=1e-6)
        np.testing.assert_allclose(device, host, rtol=1e-6)


def test_a_validation_split_too_small_for_the_data_names_validation_split(model_and_data):
    model, X, y = model_and_data          # issue 12: the message named test_size, which fit has not
    with pytest.raises(ValueError, match=r"validation_split=0.01 leaves an empty side for \d+ samples"):
        nnhp.fit(model, X, y, validation_split=0.01, epochs=1)
