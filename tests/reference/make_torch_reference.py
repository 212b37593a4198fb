"""Write the PyTorch reference trajectories that tests/test_optim.py and
tests/test_schedules.py compare nnhp against (the tests themselves never import torch).

    python tests/reference/make_torch_reference.py      # needs torch; rewrites the .npz files

optim_reference.npz
    A closed-loop problem in float64: parameters of several shapes start from seeded
    normal values and each step's gradient is ``noise[t] + curvature * θ`` (a noisy
    quadratic bowl). Every case (an optimizer and its options) runs ``n_steps`` steps
    of torch.optim with the learning rate ``lrs[t]``, which changes mid-trajectory
    (the point where "rate after the buffer" conventions differ), and the parameters
    are stored every ``snapshot_every`` steps.
schedules_reference.npz
    The rate each torch.optim.lr_scheduler gives at steps 0, 1, 2, ... (the rate in
    force for that step), and for ReduceLROnPlateau the rate of each epoch on a fixed
    metric sequence.
"""
import json
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))

SHAPES = [(7,), (3, 5), (2, 3, 4)]
N_STEPS = 250
SNAPSHOT_EVERY = 10
CURVATURE = 0.5

# (case name, torch class name, constructor kwargs); lr is the base of the lr sequence.
OPTIM_CASES = [
    ("sgd", "SGD", {"lr": 0.05}),
    ("sgd_momentum", "SGD", {"lr": 0.05, "momentum": 0.9}),
    ("sgd_nesterov", "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("sgd_dampening", "SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}),
    ("sgd_momentum_wd", "SGD", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.01}),
    ("sgd_nesterov_wd", "SGD", {"lr": 0.03, "momentum": 0.95, "nesterov": True, "weight_decay": 0.05}),
    ("sgd_wd", "SGD", {"lr": 0.1, "weight_decay": 0.2}),
    ("adagrad", "Adagrad", {"lr": 0.1}),
    ("adagrad_decay_init", "Adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.5}),
    ("adagrad_wd_eps", "Adagrad", {"lr": 0.2, "weight_decay": 0.1, "eps": 1e-3}),
    ("adadelta", "Adadelta", {"lr": 1.0}),
    ("adadelta_options", "Adadelta", {"lr": 0.5, "rho": 0.95, "eps": 1e-5, "weight_decay": 0.01}),
    ("rmsprop", "RMSprop", {"lr": 0.01}),
    ("rmsprop_momentum", "RMSprop", {"lr": 0.01, "momentum": 0.9}),
    ("rmsprop_centered", "RMSprop", {"lr": 0.005, "centered": True}),
    ("rmsprop_centered_momentum_wd", "RMSprop",
     {"lr": 0.005, "centered": True, "momentum": 0.8, "weight_decay": 0.01}),
    ("rmsprop_alpha_eps", "RMSprop", {"lr": 0.02, "alpha": 0.9, "eps": 1e-4}),
    ("adam", "Adam", {"lr": 0.01}),
    ("adam_betas", "Adam", {"lr": 0.01, "betas": (0.8, 0.99)}),
    ("adam_amsgrad", "Adam", {"lr": 0.01, "amsgrad": True}),
    ("adam_wd", "Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("adam_amsgrad_wd_eps", "Adam", {"lr": 0.02, "amsgrad": True, "weight_decay": 0.05, "eps": 1e-6}),
    ("adamw", "AdamW", {"lr": 0.01}),
    ("adamw_amsgrad_wd", "AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "betas": (0.85, 0.995)}),
    ("adamw_no_wd", "AdamW", {"lr": 0.01, "weight_decay": 0.0}),
]


def lr_sequence(base_lr):
    """The rate of each step: base, then halved at step 100, then 1.5x base from 160."""
    lrs = np.full(N_STEPS, base_lr)
    lrs[100:160] = 0.5 * base_lr
    lrs[160:] = 1.5 * base_lr
    return lrs


def make_optim_reference():
    rng = np.random.default_rng(20240603)
    params0 = [rng.normal(size=shape) for shape in SHAPES]
    # Gradient noise of mixed scales, so eps and the accumulators matter.
    scales = np.exp(rng.normal(scale=1.0, size=(N_STEPS, 1)))
    noise = [rng.normal(size=(N_STEPS,) + shape) * scales.reshape((N_STEPS,) + (1,) * len(shape))
             for shape in SHAPES]
    out = {"curvature": np.array(CURVATURE), "n_steps": np.array(N_STEPS),
           "snapshot_every": np.array(SNAPSHOT_EVERY), "n_arrays": np.array(len(SHAPES))}
    for index, (p0, eta) in enumerate(zip(params0, noise)):
        out[f"params0/{index}"] = p0
        out[f"noise/{index}"] = eta
    cases = []
    for name, cls_name, kwargs in OPTIM_CASES:
        params = [torch.tensor(p0, dtype=torch.float64, requires_grad=True) for p0 in params0]
        optimizer = getattr(torch.optim, cls_name)(params, foreach=False, **kwargs)
        lrs = lr_sequence(kwargs["lr"])
        snapshots = [[] for _ in SHAPES]
        for t in range(N_STEPS):
            for group in optimizer.param_groups:
                group["lr"] = float(lrs[t])
            with torch.no_grad():
                for p, eta in zip(params, noise):
                    p.grad = torch.from_numpy(eta[t]) + CURVATURE * p.detach()
            optimizer.step()
            if (t + 1) % SNAPSHOT_EVERY == 0:
                for index, p in enumerate(params):
                    snapshots[index].append(p.detach().numpy().copy())
        for index, snaps in enumerate(snapshots):
            out[f"{name}/params/{index}"] = np.stack(snaps)
        out[f"{name}/lrs"] = lrs
        cases.append({"name": name, "optimizer": cls_name,
                      "kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}})
    out["cases"] = np.array(json.dumps(cases))
    path = os.path.join(HERE, "optim_reference.npz")
    np.savez_compressed(path, **out)
    print(f"wrote {path} ({os.path.getsize(path) / 1024:.0f} KiB, {len(cases)} cases)")


BASE_LR = 0.1

# (case name, torch scheduler class, kwargs, number of steps recorded)
SCHEDULE_CASES = [
    ("step", "StepLR", {"step_size": 7, "gamma": 0.5}, 60),
    ("step_gamma", "StepLR", {"step_size": 1, "gamma": 0.9}, 30),
    ("multistep", "MultiStepLR", {"milestones": [10, 25, 40], "gamma": 0.3}, 60),
    ("multistep_repeated", "MultiStepLR", {"milestones": [5, 5, 12], "gamma": 0.5}, 30),
    ("exponential", "ExponentialLR", {"gamma": 0.95}, 80),
    ("cosine", "CosineAnnealingLR", {"T_max": 20, "eta_min": 0.001}, 100),
    ("cosine_zero_min", "CosineAnnealingLR", {"T_max": 17}, 60),
    ("onecycle", "OneCycleLR", {"max_lr": 0.5, "total_steps": 100}, 101),
    ("onecycle_options", "OneCycleLR",
     {"max_lr": 0.2, "total_steps": 57, "pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0}, 58),
    ("onecycle_linear", "OneCycleLR", {"max_lr": 1.0, "total_steps": 40, "anneal_strategy": "linear"}, 41),
    ("onecycle_three_phase", "OneCycleLR", {"max_lr": 0.3, "total_steps": 50, "three_phase": True}, 51),
]

PLATEAU_CASES = [
    ("plateau_default", {}),
    ("plateau_patience_cooldown", {"factor": 0.5, "patience": 2, "cooldown": 3}),
    ("plateau_min_lr", {"factor": 0.3, "patience": 1, "min_lr": 0.004}),
    ("plateau_abs", {"factor": 0.5, "patience": 2, "threshold": 0.05, "threshold_mode": "abs"}),
    ("plateau_max", {"mode": "max", "factor": 0.5, "patience": 2, "threshold": 0.01}),
    ("plateau_max_abs_eps", {"mode": "max", "factor": 0.9, "patience": 0, "threshold_mode": "abs",
                             "threshold": 0.0, "eps": 0.005}),
]


def plateau_metrics():
    """A loss-like sequence: fast decrease, plateaus, noise, a jump back up."""
    rng = np.random.default_rng(7)
    epochs = np.arange(120)
    trend = 1.0 / (1.0 + 0.15 * epochs) + 0.2 * (epochs > 70)
    steps = np.where((epochs // 15) % 2 == 1, 0.0, 1.0)
    return trend * (1 + 0.02 * rng.normal(size=epochs.size)) + 0.01 * steps


def make_schedules_reference():
    out = {"base_lr": np.array(BASE_LR)}
    cases = []
    for name, cls_name, kwargs, n_steps in SCHEDULE_CASES:
        param = torch.zeros(1, requires_grad=True)
        optimizer = torch.optim.SGD([param], lr=BASE_LR)
        extra = {"cycle_momentum": False} if cls_name == "OneCycleLR" else {}
        scheduler = getattr(torch.optim.lr_scheduler, cls_name)(optimizer, **kwargs, **extra)
        rates = []
        for step in range(n_steps):
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if step + 1 < n_steps:
                scheduler.step()
        out[f"{name}/lrs"] = np.array(rates)
        cases.append({"name": name, "scheduler": cls_name, "kwargs": kwargs})
    metrics = plateau_metrics()
    out["plateau_metrics"] = metrics
    for name, kwargs in PLATEAU_CASES:
        param = torch.zeros(1, requires_grad=True)
        optimizer = torch.optim.SGD([param], lr=BASE_LR)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)
        rates = []
        for metric in metrics:
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step(float(metric))
        out[f"{name}/lrs"] = np.array(rates)
        cases.append({"name": name, "scheduler": "ReduceLROnPlateau", "kwargs": kwargs})
    out["cases"] = np.array(json.dumps(cases))
    path = os.path.join(HERE, "schedules_reference.npz")
    np.savez_compressed(path, **out)
    print(f"wrote {path} ({os.path.getsize(path) / 1024:.0f} KiB, {len(cases)} cases)")


if __name__ == "__main__":
    torch.manual_seed(0)
    make_optim_reference()
    make_schedules_reference()
