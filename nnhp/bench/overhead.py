"""What an optimizer costs per step: seconds per training step on a workload, measured side by side.

The tuning runs time themselves too, but they run in parallel with each other and with
whatever else the machine does, so their seconds say more about the load than about the
optimizer. Here every optimizer trains the same network on the same batches in this one
process, in interleaved rounds (round ``r`` runs them in a rotated order, so none is always
first after a pause), one epoch per round; an optimizer's cost is its *least* seconds per step
over the rounds -- other work on the machine only ever adds time, so the least is the best
estimate of the cost itself (``timeit``'s advice) -- and its overhead the ratio to SGD's:

    overhead(o) = min_r t_r(o) / min_r t_r(sgd)

A whole step -- forward, loss, backward, update -- is timed, through ``fit`` itself, since the
update is all that differs and what matters is its share of the step.
"""
from __future__ import annotations

import time

import numpy

from ..model import MLP
from ..train import fit
from .spaces import build_optimizer, get_spec
from .workloads import Workload, load_splits

__all__ = ["step_seconds"]


def step_seconds(workload: Workload, optimizers: list[str], rounds: int = 15, seed: int = 0) -> dict:
    """``{optimizer: least seconds per training step}`` over ``rounds`` interleaved epochs
    (module docstring), each optimizer at its PyTorch defaults (the rate does not change the cost)."""
    splits = load_splits(workload)
    sizes = [splits.X_train.shape[1], *workload.hidden, splits.n_outputs]
    n_steps = -(-splits.X_train.shape[0] // workload.batch_size)
    timings = {name: [] for name in optimizers}
    for round_index in range(rounds + 1):                 # round 0 warms up (caches, first calls)
        shift = round_index % len(optimizers)
        for name in optimizers[shift:] + optimizers[:shift]:
            model = MLP(sizes, activation=workload.activation, seed=seed)
            optimizer = build_optimizer(name, get_spec(name).defaults_params())
            started = time.perf_counter()
            with numpy.errstate(over="ignore", invalid="ignore"):
                fit(model, splits.X_train, splits.y_train, loss=workload.loss, optimizer=optimizer, epochs=1,
                    batch_size=workload.batch_size, seed=seed)
            if round_index:
                timings[name].append((time.perf_counter() - started) / n_steps)
    return {name: min(values) for name, values in timings.items()}
