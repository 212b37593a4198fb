"""nnhp.optim against PyTorch's trajectories, plus checkpoints, dtypes and validation.

The reference numbers come from tests/reference/make_torch_reference.py (torch.optim in
float64); these tests only read the committed .npz file.
"""
import json
import os

import numpy as np
import pytest

from nnhp import checkpoint, optim

REFERENCE = os.path.join(os.path.dirname(__file__), "reference", "optim_reference.npz")


def load_reference():
    data = np.load(REFERENCE, allow_pickle=False)
    cases = json.loads(str(data["cases"]))
    return data, {case["name"]: case for case in cases}


DATA, CASES = load_reference()


def run_case(case, block_size=None, dtype=np.float64):
    """Replay a reference case with nnhp; returns the snapshots per array."""
    n_arrays = int(DATA["n_arrays"])
    params = [DATA[f"params0/{i}"].astype(dtype) for i in range(n_arrays)]
    noise = [DATA[f"noise/{i}"].astype(dtype) for i in range(n_arrays)]
    curvature = float(DATA["curvature"])
    lrs = DATA[f"{case['name']}/lrs"]
    optimizer = optim.get(case["optimizer"], **case["kwargs"])
    if block_size is not None:
        optimizer.block_size = block_size
    every = int(DATA["snapshot_every"])
    snapshots = [[] for _ in params]
    grads = [np.empty_like(p) for p in params]
    for t in range(int(DATA["n_steps"])):
        optimizer.lr = float(lrs[t])
        for p, g, eta in zip(params, grads, noise):
            np.multiply(p, curvature, out=g)
            g += eta[t]
        optimizer.step(params, grads)
        if (t + 1) % every == 0:
            for index, p in enumerate(params):
                snapshots[index].append(p.copy())
    return [np.stack(s) for s in snapshots]


@pytest.mark.parametrize("name", sorted(CASES))
def test_trajectory_matches_torch(name):
    case = CASES[name]
    ours = run_case(case)
    for index, snaps in enumerate(ours):
        expected = DATA[f"{name}/params/{index}"]
        np.testing.assert_allclose(snaps, expected, rtol=1e-6, atol=1e-12,
                                   err_msg=f"{name}, array {index}")


def test_reference_trajectories_change_lr_mid_run():
    # The lr sequence of every case changes twice, so each trajectory above also pins
    # the convention "rate multiplies after the buffer" (v = μv - γg would differ).
    for name in CASES:
        lrs = DATA[f"{name}/lrs"]
        assert len(np.unique(lrs)) == 3 and len(lrs) >= 200


def test_momentum_sgd_lr_change_differs_from_velocity_form():
    # The same run with the "v ← μv - γg; θ ← θ + v" convention diverges once γ changes:
    # shows the reference comparison above would catch the wrong convention.
    case = CASES["sgd_momentum"]
    expected = DATA["sgd_momentum/params/0"]
    theta = DATA["params0/0"].copy()
    velocity = np.zeros_like(theta)
    lrs, noise = DATA["sgd_momentum/lrs"], DATA["noise/0"]
    snaps = []
    for t in range(int(DATA["n_steps"])):
        g = noise[t] + float(DATA["curvature"]) * theta
        velocity = case["kwargs"]["momentum"] * velocity - lrs[t] * g
        theta = theta + velocity
        if (t + 1) % int(DATA["snapshot_every"]) == 0:
            snaps.append(theta.copy())
    snaps = np.stack(snaps)
    np.testing.assert_allclose(snaps[:10], expected[:10], rtol=1e-6, atol=1e-12)  # same before the change
    assert not np.allclose(snaps[11:], expected[11:], rtol=1e-3)


@pytest.mark.parametrize("name", ["sgd_nesterov_wd", "rmsprop_centered_momentum_wd", "adam_amsgrad_wd_eps",
                                  "adamw_amsgrad_wd", "adagrad_decay_init", "adadelta_options"])
def test_blocked_update_equals_whole_array_update(name):
    # Blocks of 4 elements split every array (7, 15 and 24 elements) unevenly.
    whole = run_case(CASES[name], block_size=None)
    blocked = run_case(CASES[name], block_size=4)
    for a, b in zip(whole, blocked):
        np.testing.assert_array_equal(a, b)


def make_problem(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=(5, 4)).astype(dtype), rng.normal(size=(4,)).astype(dtype)]
    grad_seq = [[rng.normal(size=p.shape).astype(dtype) for p in params] for _ in range(20)]
    return params, grad_seq


ALL_CONFIGS = [
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("sgd", {"lr": 0.1}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1}),
    ("adadelta", {"weight_decay": 0.01}),
    ("rmsprop", {"momentum": 0.9, "centered": True}),
    ("adam", {"amsgrad": True, "weight_decay": 0.01}),
    ("adamw", {"lr": 0.01}),
]


@pytest.mark.parametrize("name,kwargs", ALL_CONFIGS)
def test_state_dict_round_trip_through_npz_resumes_bit_identically(name, kwargs, tmp_path):
    params, grad_seq = make_problem()
    straight = [p.copy() for p in params]
    uninterrupted = optim.get(name, **kwargs)
    for grads in grad_seq:
        uninterrupted.step(straight, grads)

    resumed = [p.copy() for p in params]
    first = optim.get(name, **kwargs)
    for grads in grad_seq[:7]:
        first.step(resumed, grads)
    first.lr = first.lr  # a schedule may have set it; it is saved too
    path = tmp_path / "opt.npz"
    np.savez(path, **checkpoint.state_to_arrays(first.state_dict()))
    with np.load(path, allow_pickle=False) as stored:
        state = checkpoint.state_from_arrays(dict(stored))
    second = optim.get(name)  # default hyperparameters: the state brings the saved ones
    second.load_state_dict(state)
    assert second.step_count == 7
    for grads in grad_seq[7:]:
        second.step(resumed, grads)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)
        assert b.dtype == np.float32


def test_state_dict_is_a_copy_and_carries_rates():
    params, grad_seq = make_problem()
    opt = optim.Adam(lr=0.01, betas=(0.8, 0.9))
    opt.step(params, grad_seq[0])
    opt.lr = 0.005
    saved = opt.state_dict()
    before = saved["state"]["exp_avg"][0].copy()
    opt.step(params, grad_seq[1])
    np.testing.assert_array_equal(saved["state"]["exp_avg"][0], before)
    assert saved["lr"] == 0.005 and saved["initial_lr"] == 0.01 and saved["step"] == 1
    assert saved["type"] == "Adam" and saved["hyperparams"]["betas"] == [0.8, 0.9]
    fresh = optim.Adam()
    fresh.load_state_dict(saved)
    assert fresh.betas == (0.8, 0.9) and fresh.lr == 0.005 and fresh.initial_lr == 0.01


def test_state_to_arrays_is_plain_arrays_without_objects():
    params, grad_seq = make_problem()
    opt = optim.RMSprop(momentum=0.5, centered=True)
    opt.step(params, grad_seq[0])
    arrays = checkpoint.state_to_arrays(opt.state_dict())
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in arrays.values())
    assert "state/square_avg/1" in arrays
    back = checkpoint.state_from_arrays(arrays)
    assert back["type"] == "RMSprop" and back["step"] == 1
    assert set(back["state"]) == {"square_avg", "momentum_buffer", "grad_avg"}


def test_load_state_dict_rejects_another_optimizer_type():
    with pytest.raises(ValueError, match="Adam"):
        optim.SGD().load_state_dict(optim.Adam().state_dict())


def test_loaded_state_must_match_the_parameters():
    params, grad_seq = make_problem()
    opt = optim.Adam()
    opt.step(params, grad_seq[0])
    other = optim.Adam()
    other.load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="shape"):
        other.step([params[1], params[0]], [grad_seq[1][1], grad_seq[1][0]])


@pytest.mark.parametrize("name,kwargs", ALL_CONFIGS)
def test_float32_parameters_and_state_stay_float32(name, kwargs):
    params, grad_seq = make_problem(dtype=np.float32)
    opt = optim.get(name, **kwargs)
    for grads in grad_seq[:3]:
        opt.step(params, grads)
    assert all(p.dtype == np.float32 for p in params)
    for buffers in opt.state.values():
        assert all(b.dtype == np.float32 for b in buffers)


@pytest.mark.parametrize("name,kwargs", ALL_CONFIGS)
def test_float32_step_close_to_float64_step(name, kwargs):
    params32, grad_seq = make_problem(dtype=np.float32)
    params64 = [p.astype(np.float64) for p in params32]
    opt32, opt64 = optim.get(name, **kwargs), optim.get(name, **kwargs)
    for grads in grad_seq:
        opt32.step(params32, grads)
        opt64.step(params64, [g.astype(np.float64) for g in grads])
    for a, b in zip(params32, params64):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,kwargs", ALL_CONFIGS)
def test_step_does_not_modify_the_gradients(name, kwargs):
    params, grad_seq = make_problem()
    grads = [g.copy() for g in grad_seq[0]]
    optim.get(name, **kwargs).step(params, grads)
    for a, b in zip(grads, grad_seq[0]):
        np.testing.assert_array_equal(a, b)


def test_one_flat_buffer_equals_per_layer_arrays():
    params, grad_seq = make_problem(dtype=np.float64)
    flat = np.concatenate([p.ravel() for p in params])
    per_layer = [p.copy() for p in params]
    a, b = optim.Adam(lr=0.05, weight_decay=0.1), optim.Adam(lr=0.05, weight_decay=0.1)
    for grads in grad_seq:
        a.step([flat], [np.concatenate([g.ravel() for g in grads])])
        b.step(per_layer, grads)
    np.testing.assert_array_equal(flat, np.concatenate([p.ravel() for p in per_layer]))


def test_sgd_momentum_first_step_copies_the_gradient():
    theta = np.zeros(3)
    opt = optim.SGD(lr=1.0, momentum=0.9, dampening=0.5)
    opt.step([theta], [np.ones(3)])
    np.testing.assert_array_equal(theta, -np.ones(3))  # buffer = g, not (1 - dampening) g
    opt.step([theta], [np.ones(3)])
    np.testing.assert_allclose(theta, -np.ones(3) - (0.9 + 0.5))


def test_adam_first_step_moves_each_coordinate_by_lr():
    # With bias correction, |Δθ| = γ · |g| / (|g| + ε') ≈ γ on the first step.
    theta = np.zeros(4)
    optim.Adam(lr=0.01).step([theta], [np.array([1.0, -2.0, 1e3, -1e-2])])
    np.testing.assert_allclose(theta, [-0.01, 0.01, -0.01, 0.01], rtol=1e-5)


def test_adamw_decay_is_scaled_by_lr_and_independent_of_the_gradient():
    theta = np.full(2, 2.0)
    optim.AdamW(lr=0.1, weight_decay=0.5).step([theta], [np.zeros(2)])
    np.testing.assert_allclose(theta, 2.0 * (1 - 0.1 * 0.5))


@pytest.mark.parametrize("factory,match", [
    (lambda: optim.SGD(lr=-0.1), "lr"),
    (lambda: optim.SGD(momentum=-0.5), "momentum"),
    (lambda: optim.SGD(weight_decay=-1e-4), "weight_decay"),
    (lambda: optim.SGD(nesterov=True), "nesterov"),
    (lambda: optim.SGD(momentum=0.9, dampening=0.1, nesterov=True), "dampening"),
    (lambda: optim.Adam(betas=(1.0, 0.999)), r"betas\[0\]"),
    (lambda: optim.Adam(betas=(0.9, -0.1)), r"betas\[1\]"),
    (lambda: optim.Adam(betas=0.9), "pair"),
    (lambda: optim.AdamW(eps=-1e-8), "eps"),
    (lambda: optim.Adam(lr=float("nan")), "lr"),
    (lambda: optim.Adagrad(lr_decay=-1.0), "lr_decay"),
    (lambda: optim.Adagrad(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (lambda: optim.Adadelta(rho=1.5), "rho"),
    (lambda: optim.RMSprop(alpha=-0.1), "alpha"),
    (lambda: optim.RMSprop(momentum=-0.1), "momentum"),
])
def test_invalid_hyperparameters_are_clear_errors(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_setting_a_negative_lr_is_an_error():
    opt = optim.SGD()
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0


def test_get_by_name_and_instance():
    assert isinstance(optim.get("ADAM", lr=3e-4), optim.Adam)
    assert optim.get("adam", lr=3e-4).lr == 3e-4
    assert optim.get("adamw").weight_decay == 0.01
    opt = optim.RMSprop()
    assert optim.get(opt) is opt
    with pytest.raises(ValueError) as info:
        optim.get("adamax")
    for name in ("sgd", "adagrad", "adadelta", "rmsprop", "adam", "adamw"):
        assert name in str(info.value)


def test_pytorch_defaults():
    assert (optim.SGD().lr, optim.SGD().momentum, optim.SGD().dampening) == (0.01, 0.0, 0.0)
    assert (optim.Adagrad().lr, optim.Adagrad().eps) == (0.01, 1e-10)
    assert (optim.Adadelta().lr, optim.Adadelta().rho, optim.Adadelta().eps) == (1.0, 0.9, 1e-6)
    assert (optim.RMSprop().lr, optim.RMSprop().alpha, optim.RMSprop().eps) == (0.01, 0.99, 1e-8)
    assert (optim.Adam().lr, optim.Adam().betas, optim.Adam().eps) == (1e-3, (0.9, 0.999), 1e-8)
    assert optim.Adam().weight_decay == 0.0 and optim.AdamW().weight_decay == 0.01


def test_mismatched_params_and_grads_are_errors():
    opt = optim.SGD()
    with pytest.raises(ValueError, match="gradient arrays"):
        opt.step([np.zeros(3)], [])
    with pytest.raises(ValueError, match="shape"):
        opt.step([np.zeros(3)], [np.zeros(4)])


# --- training an MLP with each optimizer ------------------------------------------------
CONVERGENCE = [
    ("sgd", {"lr": 0.05}),
    ("sgd", {"lr": 0.02, "momentum": 0.9, "nesterov": True}),
    ("adagrad", {"lr": 0.05}),
    ("adadelta", {"lr": 1.0}),
    ("rmsprop", {"lr": 0.002}),
    ("rmsprop", {"lr": 0.001, "centered": True, "momentum": 0.5}),
    ("adam", {"lr": 0.003}),
    ("adam", {"lr": 0.003, "amsgrad": True}),
    ("adamw", {"lr": 0.003, "weight_decay": 0.01}),
]


@pytest.mark.parametrize("name,kwargs", CONVERGENCE, ids=[f"{n}-{'-'.join(k)}" for n, k in CONVERGENCE])
def test_mlp_on_digits_converges(name, kwargs, digits_split):
    import nnhp

    X_train, X_test, y_train, y_test = digits_split
    model = nnhp.MLP([64, 32, 10], activation="relu", seed=0)
    history = nnhp.fit(model, X_train, y_train, loss="cross_entropy", optimizer=optim.get(name, **kwargs),
                       epochs=5, batch_size=32, seed=0)
    losses = history.history["loss"]
    assert history.stop_reason == "completed"
    assert losses[-1] < 0.4 * losses[0] and losses[-1] < 0.35, losses
    assert nnhp.evaluate(model, X_test, y_test)["accuracy"] > 0.9


# --- any array module: the same NumPy-written update on CuPy arrays ----------------------
@pytest.mark.gpu
@pytest.mark.parametrize("name,kwargs", ALL_CONFIGS)
def test_plain_update_on_cupy_equals_numpy_and_checkpoints_move_between_them(name, kwargs, tmp_path):
    cupy = pytest.importorskip("cupy")
    params, grad_seq = make_problem(dtype=np.float64)
    on_host = [p.copy() for p in params]
    on_device = [cupy.asarray(p) for p in params]
    host, device = optim.get(name, **kwargs), optim.get(name, **kwargs)   # plain code; kernels are nnhp.fused's
    for grads in grad_seq[:10]:
        host.step(on_host, grads)
        device.step(on_device, [cupy.asarray(g) for g in grads])
    for a, b in zip(on_host, on_device):
        np.testing.assert_allclose(cupy.asnumpy(b), a, rtol=1e-12, atol=1e-15)
    # A device checkpoint resumes on the host (and the buffers follow the parameters).
    path = tmp_path / "opt.npz"
    np.savez(path, **checkpoint.state_to_arrays(device.state_dict()))
    with np.load(path, allow_pickle=False) as stored:
        resumed = optim.get(name)
        resumed.load_state_dict(checkpoint.state_from_arrays(dict(stored)))
    moved = [cupy.asnumpy(p) for p in on_device]
    for grads in grad_seq[10:]:
        host.step(on_host, grads)
        resumed.step(moved, grads)
    for a, b in zip(on_host, moved):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)
