"""``tune()``: split, search, pick, refit -- and :class:`TuneResult`, what it returns."""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np

from .. import _checks
from ..blas import limit_blas_threads
from ..search import Space, SpaceError, Study
from ..search.searcher import make_searcher
from ..search.trial import COMPLETE, FAILED
from .build import as_labels, infer_task
from .catalogue import check_loss_fits, check_name, check_space
from .objective import SCORED_PARAMS, Problem, TrialObjective
from .refit import fit_params, load_kernels_ahead, refit_rows, seconds_per_epoch
from .scaling import Standardizer
from .space import default_max_epochs, default_params, default_space, initial_config, time_capped_max_epochs

__all__ = ["tune", "TuneResult", "incumbent", "tuned_space", "DEFAULT_SEARCHER", "DEFAULT_TRIALS"]

#: The searcher ``tune`` uses when none is named (see ``benchmarks/bench_tune.py``).
DEFAULT_SEARCHER = "bohb"
#: Trials a search without a budget of its own runs (no n_trials, timeout or max_total_epochs):
#: Hyperband and BOHB run one full iteration instead.
DEFAULT_TRIALS = 50
BUDGETED_SEARCHERS = ("hyperband", "bohb", "successive_halving")
#: Failed trials in a row after which ``tune`` stops searching (see ``_FailureStreak``).
FAILURES_IN_A_ROW = 10
#: Searchers that set each trial's epochs themselves (its budget), so the space has no ``epochs``.
EPOCH_SETTING_SEARCHERS = (*BUDGETED_SEARCHERS, "asha")


@dataclass
class TuneResult:
    """What ``tune`` found.

    ``best_model`` is the refit model (trained on training + validation rows) when ``refit=True``,
    else the search's own (also when the refit failed: ``refit`` is then False and ``refit_note``
    says why); ``search_model`` is always the model the search trained and scored
    (restored from its checkpoint). ``search_seconds`` and ``refit_seconds`` time the two phases.
    Both models take the raw X (and a regressor predicts the raw y): ``standardizer`` holds the
    scaling the trials trained under, folded into them (:mod:`nnhp.tuning.scaling`; None with
    ``standardize=False``).
    """

    study: Study
    best_params: dict
    best_model: object
    best_value: float
    metric: str
    best_trial: object = field(repr=False, default=None)
    search_model: object = field(repr=False, default=None)
    refit: bool = False
    refit_epochs: int | None = None
    max_epochs: int | None = None
    space: Space | None = field(repr=False, default=None)
    search_seconds: float = 0.0
    refit_seconds: float = 0.0
    refit_note: str | None = None
    standardizer: Standardizer | None = field(repr=False, default=None)

    @property
    def epochs_spent(self) -> int:
        """Epochs trained over the whole search, all trials together. A promoted (continued)
        trial counts only the epochs it added to its parent's, so this is the search's real cost."""
        return epochs_spent(self.study.trials)

    def __repr__(self) -> str:
        refit = f", refit on train+validation for {self.refit_epochs} epochs" if self.refit else ""
        return (f"TuneResult(best_value={self.best_value:.6g} ({self.metric}), best_params={self.best_params}, "
                f"trials={len(self.study.trials)}, epochs_spent={self.epochs_spent}{refit})")


def epochs_spent(trials) -> int:
    return sum(int(t.attrs.get("epochs_trained", 0)) for t in trials)


def _make_searcher(searcher, seed, max_epochs: int, one_iteration: bool):
    """A searcher object from a name; budgeted ones get rungs ``max_epochs/27 .. max_epochs``."""
    if not isinstance(searcher, str):
        return make_searcher(searcher)
    key = searcher.lower()
    if key == "grid":
        return make_searcher(key)
    if key in ("successive_halving", "successivehalving"):
        from ..search.hyperband import SuccessiveHalving
        return SuccessiveHalving(max_budget=max_epochs, seed=seed)
    if key in ("hyperband", "bohb"):
        # Four brackets (eta = 3): rungs at max/27, max/9, max/3 and max epochs. Rungs of a
        # single epoch, where learning rates and schedules have barely acted, rank poorly.
        return make_searcher(key, max_budget=max_epochs, min_budget=max(1.0, max_epochs / 27), seed=seed,
                             max_iterations=1 if one_iteration else None)
    if key == "asha":
        return make_searcher(key, max_budget=max_epochs, min_budget=max(1.0, max_epochs / 27), seed=seed)
    return make_searcher(key, seed=seed)


def _split(X, y, validation_data, validation_split, task, seed):
    from ..data import check_X, check_same_length, train_test_split

    X = check_X(X)
    y = np.asarray(y)
    check_same_length(X, y)
    if validation_data is None:
        split = 0.2 if validation_split is None else _checks.fraction(validation_split, "validation_split")
        stratify = task == "classification" and y.ndim == 1
        return train_test_split(X, y, split, seed=seed, stratify=stratify, name="validation_split")
    if validation_split is not None:
        raise ValueError("give validation_data or validation_split, not both")
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise ValueError("validation_data must be a pair (X_val, y_val)")
    X_val, y_val = validation_data
    X_val, y_val = check_X(X_val, "validation X", n_features=X.shape[1]), np.asarray(y_val)
    check_same_length(X_val, y_val, names=("validation X", "validation y"))
    return X, X_val, y, y_val


def _labels(y, name: str):
    """Class labels (n,) from any form as_labels reads; others (probabilities for BCE) stay."""
    labels = as_labels(y)
    return y if labels is None else labels


def _problem(X, y, validation_data, validation_split, loss, metric, seed, task=None) -> Problem:
    inferred = infer_task(np.asarray(y), loss)
    if task is None:
        task = inferred
    elif task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification', 'regression' or None; got {task!r}")
    elif loss is not None and task != inferred:
        raise ValueError(f"loss {loss!r} is for {inferred}, but task={task!r}")
    elif task == "classification" and loss is None and as_labels(np.asarray(y)) is None:
        raise ValueError("task='classification' needs class labels in y (integers, 0.0/1.0 floats or one-hot "
                         "rows); these values are not")
    if task == "classification":
        # One-hot rows and 0.0/1.0 floats are labels too (API.md): work with integer labels.
        y = _labels(np.asarray(y), "y")
        if validation_data is not None and isinstance(validation_data, (tuple, list)) and len(validation_data) == 2:
            validation_data = (validation_data[0], _labels(np.asarray(validation_data[1]), "validation y"))
    X, X_val, y, y_val = _split(X, y, validation_data, validation_split, task, seed)
    n_classes = None
    if task == "classification" and y.ndim == 1:
        n_classes = int(max(y.max(), y_val.max())) + 1
        if len(np.unique(y)) < 2:
            raise ValueError(f"y holds a single class ({y[0]}); classification needs at least two "
                             "(for real-valued targets, pass float y)")
    metric = metric or ("accuracy" if task == "classification" else "loss")
    if metric not in ("accuracy", "loss"):
        raise ValueError(f"metric must be 'accuracy' or 'loss', got {metric!r}")
    if metric == "accuracy" and task != "classification":
        raise ValueError("metric='accuracy' needs a classification task (integer labels or a classification loss)")
    # One yardstick for every trial: the fixed loss, else cross-entropy or MSE.
    metric_loss = loss or ("cross_entropy" if task == "classification" else "mse")
    return Problem(X, y, X_val, y_val, task, n_classes, metric, metric_loss)


def tune(X, y, validation_data=None, loss=None, space=None, searcher=DEFAULT_SEARCHER, n_trials: int | None = None,
         max_epochs: int | None = None, storage=None, seed=0, *, timeout: float | None = None, refit: bool = True,
         max_total_epochs: int | None = None, initial_configs="default", validation_split: float | None = None,
         name: str = "tune", metric: str | None = None, patience: int | None = None, n_workers: int = 1,
         executor=None, stale_after: float | None = None,
         verbose: bool = False, callbacks=(), dtype="float32", backend=None,
         blas_threads: int | None = 1, fingerprint: dict | None = None, task: str | None = None,
         standardize: bool = True) -> TuneResult:
    """Search MLP hyperparameters on (X, y), then refit the best on training + validation rows.

    Parameters
    ----------
    X, y : training data (``y``: integer labels, one-hot rows, or float targets)
    validation_data : (X_val, y_val); else ``validation_split`` (default 0.2) of (X, y) is held out
        (stratified for labels) with ``seed``
    loss : a loss name to fix it; None lets the task decide (and the space choose where it can)
    task : "classification" | "regression" to say what ``y`` is; None infers it from the loss, else
        from ``y`` (class labels in any form :func:`~nnhp.tuning.build.as_labels` reads are classes)
    space : None (the default space), a dict of overrides to it, or a full Space
    searcher : "bohb" (default) | "hyperband" | "random" | "gp" | "grid" | a searcher object
    n_trials : the number of trials the study holds when done: a study reopened from ``storage``
        runs only the missing ones (interrupted trials are not counted; Hyperband/BOHB run them
        again). None: no count limit.
    timeout : seconds after which no new trial starts (the running one finishes; the refit
        comes after), except a first one when none has completed yet. With ``n_trials=None`` the
        search runs until then; Hyperband and BOHB start iteration after iteration.
    max_total_epochs : an epoch budget: no new trial starts once the trials' epochs reach it
    (with none of n_trials, timeout and max_total_epochs: Hyperband/BOHB run one iteration, the
    other searchers ``DEFAULT_TRIALS`` trials)
    max_epochs : the most epochs any trial trains (the top of ``epochs`` and of Hyperband's rungs);
        None: :func:`~nnhp.tuning.space.default_max_epochs` of the training rows, and with a
        ``timeout`` (and no ``storage``) at most what lets a full-budget trial of the default
        configuration take half of it (:func:`~nnhp.tuning.space.time_capped_max_epochs`; one
        epoch is timed first)
    refit : retrain the best configuration (:func:`incumbent`) on training + validation rows
        (:mod:`nnhp.tuning.refit`); ``best_model`` is then the refit model and ``search_model``
        the search's (a failed refit is rejected: see ``_refit``)
    initial_configs : "default" runs :func:`~nnhp.tuning.space.default_params` (fitted into the
        space) first, at the full budget, so the search starts from a strong configuration;
        a list of params dicts runs those; None runs none
    storage : None (memory) or an SQLite path, under study ``name``
    seed : one seed for the split, the searcher, every trial's weights and shuffling, and the refit
    metric : "accuracy" (classification default) or "loss" (regression default: validation MSE)
    patience : None (default): every trial trains its whole budget and is scored at its last epoch;
        an integer: a trial stops after that many epochs without a lower validation loss and is
        scored (and refit) at its lowest-loss epoch (:mod:`nnhp.tuning.objective`;
        :func:`~nnhp.tuning.space.default_patience` gives a value that suits ``max_epochs``)
    n_workers : trials run at once, in worker processes when more than 1 (the objective pickles)
    executor : None (processes when n_workers > 1), "threads", or a ``concurrent.futures.Executor``
        / ``dask.distributed.Client`` that runs the trials (``Study.optimize``'s)
    stale_after : None: reopening a stored study marks its running trials interrupted (their
        process is gone). A number of seconds: several processes share the study -- each sends
        heartbeats for its trials, a trial silent for that long is stale and retried, and
        ``n_trials`` is what the study holds when done, whichever process ran them
    verbose : print a progress line after each trial (see ProgressLine)
    callbacks : extra ``callback(study, trial)`` functions
    blas_threads : BLAS threads while tuning (None: leave them alone); see :mod:`nnhp.blas`
    standardize : train every trial on features standardized with the training rows' mean and
        standard deviation (and, for regression, standardized targets); the models returned take
        the raw data all the same, the scaling folded into their first and last layers
        (:mod:`nnhp.tuning.scaling`). Validation MSEs are reported in the targets' own units.
    fingerprint : what the data is, as a JSON-able dict, stored with a study in ``storage`` in place of
        the hashes of X, y and the validation rows (the CLI gives the data set, its split and seed)

    A study in ``storage`` records its *identity*: the data (shape, dtype and content hash of X, y
    and the validation rows, or ``fingerprint``), the validation split and seed, the metric, the
    loss, ``standardize``, and (by the Study itself) the space and direction. Running ``tune`` again on the same
    study with any of them different raises :class:`~nnhp.search.StudyMismatchError`, naming what
    differs and a free study name; the stored trials are never mixed with other data's.

    Every setting is checked before any trial runs: counts and times (``n_trials >= 1``,
    ``timeout > 0``, ...), and the space's names, values and conditions
    (:mod:`nnhp.tuning.catalogue`).
    """
    from .progress import ProgressLine

    started = time.monotonic()
    n_trials, timeout, max_epochs, patience, max_total_epochs = _check_settings(
        n_trials, timeout, max_epochs, patience, n_workers, max_total_epochs, searcher, loss)
    problem = _problem(X, y, validation_data, validation_split, loss, metric, seed, task)
    standardizer = None
    if standardize:
        problem, standardizer = _standardized(problem)
    if max_epochs is None:
        max_epochs = default_max_epochs(len(problem.X))
        # Not for a stored study: timing differs from run to run, and a reopened study must keep
        # its rungs (and its space's epoch range).
        if timeout is not None and storage is None:
            params = default_params(problem.task, problem.n_classes, len(problem.X))
            with limit_blas_threads(blas_threads):
                seconds = seconds_per_epoch(params, problem.X, problem.y, loss=problem.loss_of(params), seed=seed,
                                            n_classes=problem.n_classes, dtype=dtype, backend=backend)
            max_epochs = time_capped_max_epochs(max_epochs, seconds, timeout)
    max_epochs = int(max_epochs)
    patience = None if patience is None else int(patience)
    unbounded = n_trials is None and timeout is None and max_total_epochs is None
    budgeted_name = isinstance(searcher, str) and searcher.lower() in BUDGETED_SEARCHERS
    search = _make_searcher(searcher, seed, max_epochs, one_iteration=unbounded and budgeted_name)
    if unbounded and not budgeted_name:
        n_trials = DEFAULT_TRIALS
    budgeted = getattr(search, "max_budget", None) is not None
    tuned_space = _space(space, problem, max_epochs, budgeted, loss)
    identity = {**_identity(fingerprint, X, y, validation_data, validation_split, seed, problem, loss),
                "max_epochs": max_epochs, "standardize": bool(standardize)}     # the trials' lengths (and Hyperband's rungs)
    study = Study(tuned_space, search, direction=problem.direction, storage=storage, name=name, identity=identity,
                  fail_stale=True if stale_after is None else stale_after)
    objective = TrialObjective(problem, study, max_epochs=max_epochs, patience=patience, seed=seed,
                               dtype=dtype, backend=backend)

    done = [t for t in study.trials if not t.interrupted]
    if any(t.state == COMPLETE for t in done) and not budgeted:   # reopened: the stored best keeps its checkpoint
        best = incumbent(study, problem, budgeted)
        objective.best_rank, objective.best_trial_id = problem.rank(best.value, best.attrs.get("val_loss")), best.id
    _enqueue_initial(study, initial_configs, problem, max_epochs, budgeted, seed)
    remaining = None if n_trials is None else max(n_trials - len(done), 0)
    progress = ProgressLine(n_trials, problem.metric, timeout=timeout) if verbose else None
    all_callbacks = [*callbacks, *([progress] if progress else [])]
    if max_total_epochs is not None:
        all_callbacks.append(_EpochBudget(max_total_epochs))
    streak = _FailureStreak(FAILURES_IN_A_ROW)
    all_callbacks.append(streak)
    if remaining != 0:
        load_kernels_ahead(n_workers, dtype, backend)
    with limit_blas_threads(blas_threads):
        try:
            deadline_left = None if timeout is None else max(timeout - (time.monotonic() - started), 0.0)
            study.optimize(objective, n_trials=remaining, timeout=deadline_left, n_workers=n_workers,
                           executor=executor, total_trials=None if stale_after is None else n_trials,
                           callbacks=all_callbacks)
            if timeout is not None and remaining != 0 and not study.trials_in(COMPLETE) and not streak.tripped:
                # A timeout shorter than the first trial still gets one result to return.
                study.optimize(objective, n_trials=1, callbacks=all_callbacks)
        finally:
            if progress is not None:
                progress.close()
        if streak.tripped:
            _failed_in_a_row(study, streak.limit)
        best = incumbent(study, problem, budgeted)
        search_model = _search_model(study, best, objective)
        if standardizer is not None:
            standardizer.fold_into(search_model)
        search_seconds = time.monotonic() - started
        result = TuneResult(study, dict(best.params), search_model, best.value, problem.metric, best,
                            search_model=search_model, max_epochs=max_epochs, space=tuned_space,
                            search_seconds=search_seconds, standardizer=standardizer)
        if refit:
            _refit(result, problem, seed, dtype, backend)
            if result.refit and standardizer is not None:
                standardizer.fold_into(result.best_model)
    return result


def _failed_in_a_row(study, limit: int) -> None:
    """After the failure guard stopped a search: raise when nothing completed, else warn."""
    summary = study.failure_summary()
    if not study.trials_in(COMPLETE):
        raise ValueError(f"the search stopped after {limit} failed trials in a row, and none completed. {summary}")
    warnings.warn(f"the search stopped early, after {limit} failed trials in a row; the best of the trials that "
                  f"completed is returned. {summary}", RuntimeWarning, stacklevel=3)


def _standardized(problem: Problem) -> tuple[Problem, Standardizer]:
    """The problem on standardized features (and regression targets), and the scaling used:
    the training rows' statistics, applied to the validation rows alike."""
    scaler = Standardizer.fit(problem.X, problem.y, scale_targets=problem.task == "regression")
    scaled = replace(problem, X=scaler.transform_X(problem.X), X_val=scaler.transform_X(problem.X_val),
                     y=scaler.transform_y(problem.y), y_val=scaler.transform_y(problem.y_val),
                     mse_factor=scaler.mse_factor)
    return scaled, scaler


def incumbent(study, problem: Problem, budgeted: bool):
    """The trial ``tune`` returns: the best completed one by :meth:`Problem.rank` (the metric, ties
    broken by the validation loss); for a budgeted search (Hyperband, BOHB), the best among those
    that reached the largest budget any trial completed, as BOHB's authors pick their incumbent:
    a few-epoch result is noisy, and a lucky one would be refit for its few epochs."""
    complete = study.trials_in(COMPLETE)
    if not complete:
        return study.best_trial                       # raises, with the failure summary
    budgets = [t.budget for t in complete if t.budget is not None]
    if budgeted and budgets:
        complete = [t for t in complete if t.budget == max(budgets)]
    return min(complete, key=lambda t: (*problem.rank(t.value, t.attrs.get("val_loss")), t.id))


def _check_settings(n_trials, timeout, max_epochs, patience, n_workers, max_total_epochs, searcher, loss):
    """The counts and times ``tune`` takes, checked before any work (None where not given)."""
    def optional(check, value, name, **bounds):
        return None if value is None else check(value, name, error=ValueError, **bounds)

    n_trials = optional(_checks.integer, n_trials, "n_trials", low=1)
    timeout = optional(_checks.number, timeout, "timeout", low=0.0, low_open=True)
    max_epochs = optional(_checks.integer, max_epochs, "max_epochs", low=1)
    patience = optional(_checks.integer, patience, "patience", low=0)
    max_total_epochs = optional(_checks.integer, max_total_epochs, "max_total_epochs", low=1)
    _checks.integer(n_workers, "n_workers", low=1, error=ValueError)
    if isinstance(searcher, str) and searcher.lower() not in BUDGETED_SEARCHERS:
        make_searcher(searcher)              # an unknown name fails here, naming the valid ones
    if loss is not None:
        from .. import losses
        losses.get(loss)
    return n_trials, timeout, max_epochs, patience, max_total_epochs


def _identity(fingerprint, X, y, validation_data, validation_split, seed, problem: Problem, loss) -> dict:
    """What a stored study was built on, for :class:`~nnhp.search.Study` to compare on reopening."""
    from ..data import fingerprint as data_fingerprint
    if fingerprint is not None:
        if not isinstance(fingerprint, dict):
            raise TypeError(f"fingerprint must be a dict describing the data; got {fingerprint!r}")
        data = dict(fingerprint)
    elif validation_data is not None:
        data = {"data": data_fingerprint(X, y), "validation_data": data_fingerprint(*validation_data)}
    else:
        data = {"data": data_fingerprint(X, y), "validation_split": 0.2 if validation_split is None else validation_split}
    seed = seed if seed is None or isinstance(seed, (int, str)) else repr(seed)
    return {**data, "seed": seed, "task": problem.task, "metric": problem.metric, "loss": loss}


def tuned_space(space, *, task: str, n_classes: int | None, max_epochs: int, budgeted: bool,
                n_samples: int, n_features: int, loss: str | None = None, metric: str | None = None) -> Space:
    """The space ``tune`` searches: ``space`` (None, a dict of overrides to the default space, or a
    full Space), checked against :mod:`nnhp.tuning.catalogue` (ValueError naming the problem)."""
    if isinstance(space, Space):
        checked = check_space(space, "the space", explicit=space.names)
    else:
        if space is not None and not isinstance(space, dict):
            raise TypeError(f"space must be None, a dict of overrides or a Space; got {space!r}")
        for name in space or {}:
            check_name(name, "the space")
        base = default_space(task, n_classes, max_epochs, budgeted=budgeted, n_samples=n_samples,
                             n_features=n_features)
        if loss is not None or (metric == "loss" and task == "classification"):
            base = base.with_overrides({"loss": loss or "cross_entropy"})
        try:
            merged = base.with_overrides(space)
        except SpaceError as exc:
            raise ValueError(f"the space: {exc}") from None
        checked = check_space(merged, "the space", explicit=set(space or {}))
    check_loss_fits(checked, task, n_classes)
    return checked


def _space(space, problem: Problem, max_epochs: int, budgeted: bool, loss) -> Space:
    return tuned_space(space, task=problem.task, n_classes=problem.n_classes, max_epochs=max_epochs,
                       budgeted=budgeted, n_samples=len(problem.X), n_features=problem.X.shape[1], loss=loss,
                       metric=problem.metric)


def _enqueue_initial(study, initial_configs, problem: Problem, max_epochs: int, budgeted: bool, seed) -> None:
    """Queue the initial configurations a fresh study runs first, at the full budget."""
    if initial_configs is None or any("initial_config" in t.info for t in study.trials):
        return
    if isinstance(initial_configs, str):
        if initial_configs != "default":
            raise ValueError(f"initial_configs must be 'default', a list of params dicts or None, "
                             f"got {initial_configs!r}")
        initial_configs = [default_params(problem.task, problem.n_classes, len(problem.X), problem.X.shape[1],
                                          max_epochs=max_epochs)]
    for index, params in enumerate(initial_configs):
        fitted = initial_config(study.space, params, np.random.default_rng([seed, 7919, index]))
        study.enqueue(fitted, budget=max_epochs if budgeted else None, info={"initial_config": index})


class _FailureStreak:
    """A study callback that stops the search after ``limit`` failed trials in a row.

    A failing trial is recorded and the search goes on -- a diverging learning rate is a result,
    not a reason to stop. But when every trial fails (a space whose configurations cannot run, data
    the model cannot take), a time budget would spend itself on failures, and an epoch budget
    alone (``max_total_epochs``) would never end: a trial that fails before its first epoch adds
    none. ``tune`` then raises with the failures' summary, or, when earlier trials completed,
    returns their best with a warning. Keras Tuner stops at 3 failures in a row; a search here
    draws learning rates up to 0.3, where a few divergences in a row are expected, hence
    :data:`FAILURES_IN_A_ROW`. Interrupted trials (Ctrl-C, a lost worker) neither add to a streak nor end it."""

    def __init__(self, limit: int):
        self.limit, self.streak, self.tripped = int(limit), 0, False

    def __call__(self, study, trial) -> None:
        if trial.interrupted:                 # not the configuration's doing: neither a failure nor a success
            return
        self.streak = self.streak + 1 if trial.state == FAILED else 0
        if self.streak >= self.limit:
            self.tripped = True
            study.stop()


class _EpochBudget:
    """A study callback that stops the search once its trials have trained ``limit`` epochs."""

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError(f"max_total_epochs must be >= 1, got {limit!r}")
        self.limit = int(limit)

    def __call__(self, study, trial) -> None:
        if epochs_spent(study.trials) >= self.limit:
            study.stop()


def _search_model(study, best, objective: TrialObjective):
    """Restore the best trial's model from its checkpoint; retrain it when there is none."""
    from ..checkpoint import restore_checkpoint

    checkpoint = study.storage.load_checkpoint(study.study_id, best.id)
    model, optimizer, loss = objective.build(best.params)
    if checkpoint is None:
        # No checkpoint (e.g. a user's searcher raced two workers): train it again, as a trial of its own.
        objective.forget_best()
        retrain = study.ask(best.params, budget=best.budget)
        retrain.set_attr("retrain_of", best.id)
        study.tell(retrain, objective(retrain))
        checkpoint = study.storage.load_checkpoint(study.study_id, retrain.id)
    if checkpoint is not None:
        restore_checkpoint(checkpoint, model, optimizer)
        if SCORED_PARAMS in checkpoint:            # a budgeted trial: the scored epoch's weights
            model.set_state({"flat_params": checkpoint[SCORED_PARAMS]})
    model.loss_name = loss
    return model


def _refit(result: TuneResult, problem: Problem, seed, dtype, backend) -> None:
    """Train the best configuration again on training + validation rows (module refit), and keep
    it unless it failed.

    A refit that diverges, or that scores the validation rows -- which it trained on -- worse
    than the search model scored them unseen, has failed: an unstable configuration (a high
    rate with heavy momentum, say) that survived the search by luck broke on the new data or
    step count. The search model is kept then, and ``result.refit_note`` says why.
    """
    started = time.monotonic()
    best = result.best_trial
    epochs = max(int(best.attrs.get("refit_epochs", best.attrs.get("epochs_run", 1))), 1)
    schedule_epochs = int(best.attrs.get("schedule_epochs", epochs))
    loss = problem.loss_of(result.best_params)
    X_all, y_all = refit_rows(problem.X, problem.y, problem.X_val, problem.y_val)
    try:
        model = fit_params(result.best_params, X_all, y_all, loss=loss, epochs=epochs,
                           schedule_epochs=schedule_epochs, seed=seed, n_classes=problem.n_classes,
                           dtype=dtype, backend=backend)
        value = problem.validation_scores(model, loss)[problem.metric]
        failed = None if problem.rank(value, None)[0] <= problem.rank(result.best_value, None)[0] else (
            f"the refit scored {problem.metric} {value:.4g} on rows it trained on, the search model "
            f"{result.best_value:.4g} on them unseen")
    except FloatingPointError as error:
        failed = str(error)
    result.refit_seconds = time.monotonic() - started
    result.refit_epochs = epochs
    if failed is None:
        result.best_model, result.refit = model, True
    else:
        result.refit_note = f"refit rejected, keeping the search model: {failed}"
