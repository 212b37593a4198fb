"""The protocol: for every workload and optimizer, equal tuning studies, seed reruns, defaults and a rate sweep.

For each workload ``w`` and optimizer ``o``, in this order, each a :class:`~nnhp.search.Study`
recorded in one storage (an SQLite file makes the benchmark resumable):

1. ``w/o/tune-s`` for ``s = 0 .. S-1``: ``T`` trials of ``o``'s own search space
   (:mod:`nnhp.bench.spaces`), proposed by the searcher (quasi-random by default, seeded by
   ``s``), each trained for the workload's full epoch budget from the initial weights of seed
   ``seed + s`` -- the same weights for every optimizer. Every optimizer gets exactly ``S x T``
   trials of exactly the same epochs: the equal budget.
2. ``w/o/seeds-<config>``: the best tuned configuration (lowest final validation metric over
   all ``S x T`` trials) rerun with ``n_seeds`` seeds ``seed + 100 + k``, the same seeds -- hence
   the same initial weights and batches -- for every optimizer; these give the final
   validation and test metrics (median and IQR).
3. ``w/o/defaults``: PyTorch's defaults, untuned, with the same seeds.
4. ``w/o/lr-sweep-<config>``: the best configuration with its learning rate multiplied by
   each factor (1/8 .. 8), from seed ``seed``: the learning-rate sensitivity (DeepOBS).

Then, per workload, the seconds per step of each optimizer, measured side by side in this
process (:mod:`nnhp.bench.overhead`; wall-clock, so measured afresh on every run, not stored).

Resuming: a study that already holds its trials is not run again; one cut short runs only the
trials it lacks. The quasi-random searcher proposes an interrupted trial's point again and
the reruns re-enqueue exactly their missing seeds, so a killed and resumed benchmark ends with
the same trials -- and the same results -- as an uninterrupted one.

Parallel: ``workers=k`` runs each study's trials in ``k`` worker processes (one pool for the
whole benchmark); otherwise they run here with BLAS held to one thread (small matrices: more
threads only wait on each other).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from ..blas import limit_blas_threads
from ..search import Choice, GridSearch, Study, make_searcher
from ..search.sqlite import open_storage
from .objective import TrainingRun
from .overhead import step_seconds
from .spaces import get_spec
from .workloads import Workload

__all__ = ["Budget", "QUICK", "run_protocol", "SEARCHERS", "LR_FACTORS"]

#: Searchers that train every trial for the full budget (multi-fidelity ones would not).
SEARCHERS = ("quasirandom", "random", "gp", "grid")
LR_FACTORS = (1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True)
class Budget:
    """The tuning budget every optimizer gets alike: ``studies`` x ``trials``, ``seeds`` reruns,
    and the learning-rate factors of the sensitivity sweep."""

    studies: int = 3                    # odd: the median over studies is one study's time
    trials: int = 16
    seeds: int = 5
    lr_factors: tuple = LR_FACTORS
    searcher: str = "quasirandom"

    def __post_init__(self):
        for name in ("studies", "trials", "seeds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
        if self.searcher not in SEARCHERS:
            raise ValueError(f"searcher {self.searcher!r} cannot keep the equal budget; expected one of "
                             f"{', '.join(SEARCHERS)} (multi-fidelity searchers such as hyperband stop "
                             "trials early, while the protocol trains every trial for the full epochs)")


#: ``--quick``: a smoke run of the whole protocol in about a minute.
QUICK = Budget(studies=3, trials=4, seeds=3, lr_factors=(1 / 4, 1 / 2, 1.0, 2.0, 4.0))


def _digest(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]


def _live(study: Study) -> list:
    """The trials that count: all but those cut short by a dead process (they are run again)."""
    return [trial for trial in study.trials if not trial.interrupted]


def _record(trial) -> dict:
    return {"id": trial.id, "state": trial.state, "value": trial.value, "error": trial.error,
            "params": dict(trial.params), **{key: trial.attrs.get(key) for key in
                                             ("curve", "test", "seconds_per_step", "seed")}}


class _Runner:
    """Opens each study, runs what it lacks, and reads its trials back."""

    def __init__(self, storage, workers: int, base_identity: dict, progress):
        self.storage = open_storage(storage)
        self.workers = workers
        self.base_identity = base_identity
        self.progress = progress or (lambda message: None)
        self.pool = None
        self.started = time.perf_counter()

    def say(self, message: str) -> None:
        self.progress(f"[{time.perf_counter() - self.started:7.1f}s] {message}")

    def study(self, name: str, space: dict, searcher, identity: dict) -> Study:
        return Study(space, searcher=searcher, direction="minimize", storage=self.storage, name=name,
                     identity={**self.base_identity, **identity})

    def run(self, study: Study, objective, n_trials: int) -> None:
        if n_trials <= 0:
            return
        if self.workers > 1:
            if self.pool is None:
                from ..search.workers import ProcessPool
                self.pool = ProcessPool(self.workers, blas_threads=1)
            study.optimize(objective, n_trials=n_trials, n_workers=self.workers, executor=self.pool)
        else:
            study.optimize(objective, n_trials=n_trials)

    def run_points(self, study: Study, objective, key: str, values: list) -> None:
        """Run the trials of ``study`` whose ``params[key]`` is one of ``values`` and not yet held."""
        held = {trial.params[key] for trial in _live(study)}
        missing = [value for value in values if value not in held]
        for value in missing:
            study.enqueue({**{name: dim.value for name, dim in study.space.dims.items() if name != key},
                           key: value})
        self.run(study, objective, len(missing))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None


def _searcher(name: str, seed: int):
    try:
        return make_searcher(name, seed=seed)
    except TypeError:                       # a searcher without a seed (grid)
        return make_searcher(name)


def _tune(runner: _Runner, workload: Workload, optimizer: str, budget: Budget, seed: int) -> list[list[dict]]:
    spec = get_spec(optimizer)
    studies = []
    for index in range(budget.studies):
        study = runner.study(f"{workload.name}/{optimizer}/tune-{index}", spec.tuning_space(),
                             _searcher(budget.searcher, seed * 1000 + index),
                             {"stage": "tune", "study": index, "optimizer": optimizer, "searcher": budget.searcher})
        missing = budget.trials - len(_live(study))
        runner.run(study, TrainingRun(workload, optimizer, seed + index), missing)
        trials = [_record(t) for t in _live(study)][:budget.trials]
        finals = [t["value"] for t in trials if t["value"] is not None]
        runner.say(f"{workload.name:<15} {optimizer:<9} tune {index + 1}/{budget.studies}: "
                   f"{len(trials)} trials ({max(missing, 0)} run now), best {min(finals, default=float('nan')):.4g}")
        studies.append(trials)
    return studies


def best_config(studies: list[list[dict]]) -> dict | None:
    """The params of the trial with the lowest final validation metric over all studies (first on ties)."""
    complete = [t for trials in studies for t in trials if t["state"] == "complete"]
    if not complete:
        return None
    return dict(min(complete, key=lambda t: t["value"])["params"])


def _reruns(runner: _Runner, workload: Workload, optimizer: str, params: dict, stage: str,
            seeds: list[int]) -> list[dict]:
    name = f"{workload.name}/{optimizer}/{stage}" + ("" if stage == "defaults" else f"-{_digest(params)}")
    study = runner.study(name, {**params, "seed": Choice(seeds)}, GridSearch(),
                         {"stage": stage, "optimizer": optimizer, "config": params})
    runner.run_points(study, TrainingRun(workload, optimizer, seeds[0]), "seed", seeds)
    by_seed = {t.params["seed"]: _record(t) for t in _live(study)}
    return [by_seed[s] for s in seeds if s in by_seed]


def _lr_sweep(runner: _Runner, workload: Workload, optimizer: str, params: dict, factors, seed: int) -> list[dict]:
    rates = [float(params["lr"] * factor) for factor in factors]
    base = {key: value for key, value in params.items() if key != "lr"}
    study = runner.study(f"{workload.name}/{optimizer}/lr-sweep-{_digest(params)}", {**base, "lr": Choice(rates)},
                         GridSearch(), {"stage": "lr-sweep", "optimizer": optimizer, "config": params})
    runner.run_points(study, TrainingRun(workload, optimizer, seed), "lr", rates)
    by_rate = {t.params["lr"]: _record(t) for t in _live(study)}
    return [dict(by_rate[r], factor=f) for r, f in zip(rates, factors) if r in by_rate]


def run_protocol(workloads: list[Workload], optimizers: list[str], budget: Budget = Budget(), *,
                 storage=None, workers: int = 1, seed: int = 0, progress=None) -> dict:
    """Run (or resume) the protocol of the module docstring; return its records:
    ``{workload: {optimizer: {"tune": [[trial, ...] per study], "best": params, "seeds": [...],
    "defaults": [...], "lr_sweep": [...], "step_seconds": s}}}``, each trial a dict of its value, params, curve and test metric."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1; got {workers!r}")
    for name in optimizers:
        get_spec(name)
    seeds = [seed + 100 + k for k in range(budget.seeds)]
    records: dict = {}
    with limit_blas_threads(1):
        runner = _Runner(storage, workers, {"seed": seed}, progress)
        try:
            for workload in workloads:
                runner.base_identity = {"seed": seed, "workload": workload.identity()}
                records[workload.name] = {}
                for optimizer in optimizers:
                    studies = _tune(runner, workload, optimizer, budget, seed)
                    best = best_config(studies)
                    entry = {"tune": studies, "best": best, "seeds": [], "lr_sweep": []}
                    if best is not None:
                        entry["seeds"] = _reruns(runner, workload, optimizer, best, "seeds", seeds)
                        entry["lr_sweep"] = _lr_sweep(runner, workload, optimizer, best, budget.lr_factors, seed)
                    entry["defaults"] = _reruns(runner, workload, optimizer, get_spec(optimizer).defaults_params(),
                                                "defaults", seeds)
                    records[workload.name][optimizer] = entry
                    runner.say(f"{workload.name:<15} {optimizer:<9} seeds, defaults and rate sweep done")
                for optimizer, seconds in step_seconds(workload, list(optimizers), seed=seed).items():
                    records[workload.name][optimizer]["step_seconds"] = seconds
        finally:
            runner.close()
    return records
