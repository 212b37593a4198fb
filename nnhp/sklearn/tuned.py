"""``TunedMLPClassifier`` and ``TunedMLPRegressor``: :func:`nnhp.tune` behind scikit-learn's estimator API.

An estimator that tunes itself, as auto-sklearn's do: ``fit(X, y)``

1. validates X and y as the MLP estimators do (labels -> class indices for a classifier);
2. holds out ``validation_fraction`` of the rows (stratified for a classifier) with the seed
   drawn from ``random_state``;
3. runs :func:`nnhp.tune` on the rest, scoring every trial on the held-out rows, under the
   budget given (``n_trials``, ``timeout``, ``max_total_epochs``; with none of them one BOHB
   iteration, as ``nnhp.tune`` does);
4. keeps ``tune``'s best model: the best configuration retrained on all the rows (``refit=True``,
   the default), or the search's own.

So the estimator can sit inside ``cross_val_score`` or a ``Pipeline``: each outer fold tunes on its
own training rows only, and the outer score is an honest estimate of tuning-then-training.
"""
from __future__ import annotations

import copy
import numbers

from sklearn.base import BaseEstimator

from ..data import train_test_split
from ..tuning import DEFAULT_SEARCHER, tune
from .base import ClassifierOutputs, PicklableModel, RegressorOutputs, seed_from

__all__ = ["TunedMLPClassifier", "TunedMLPRegressor"]


class _TunedMLPEstimator(PicklableModel, BaseEstimator):
    """The parameters and the fit both tuned estimators share (see the module docstring)."""

    def __init__(self, *, searcher=DEFAULT_SEARCHER, n_trials=None, timeout=None, max_total_epochs=None,
                 space=None, max_epochs=None, patience=None, validation_fraction=0.2, refit=True,
                 n_workers=1, random_state=None, dtype="float32", backend=None, blas_threads=1,
                 verbose=False, standardize=True):
        self.searcher = searcher
        self.n_trials = n_trials
        self.timeout = timeout
        self.max_total_epochs = max_total_epochs
        self.space = space
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.refit = refit
        self.n_workers = n_workers
        self.random_state = random_state
        self.dtype = dtype
        self.backend = backend
        self.blas_threads = blas_threads
        self.verbose = verbose
        self.standardize = standardize

    def fit(self, X, y):
        """Tune an MLP on (X, y), holding out ``validation_fraction`` of the rows to score the
        trials; then predict with the best model (retrained on every row when ``refit``)."""
        X, y = self._check_training_data(X, y)
        seed = seed_from(self.random_state)
        X_train, X_val, y_train, y_val = self._split(X, y, seed)
        result = tune(X_train, y_train, validation_data=(X_val, y_val), space=copy.deepcopy(self.space),
                      searcher=copy.deepcopy(self.searcher), n_trials=self.n_trials, timeout=self.timeout,
                      max_total_epochs=self.max_total_epochs, max_epochs=self.max_epochs, patience=self.patience,
                      refit=self.refit, n_workers=self.n_workers, seed=seed, verbose=self.verbose,
                      dtype=self._training_dtype(), backend=self.backend,
                      blas_threads=self.blas_threads, task=self._task, standardize=self.standardize)
        self.model_ = result.best_model
        self.refit_ = result.refit
        self.best_params_ = result.best_params
        self.best_score_ = self._score_model(result.search_model, X_val, y_val)
        self.study_ = result.study
        return self

    def _split(self, X, y, seed):
        fraction = self.validation_fraction
        try:
            return train_test_split(X, y, fraction, seed=seed, stratify=self._stratify)
        except ValueError as error:
            raise ValueError(f"{type(self).__name__}: validation_fraction={fraction!r} of n_samples={len(X)} "
                             f"cannot hold out a validation split ({error})") from None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # A deadline, or trials racing in threads, make the search's course depend on timing.
        parallel = isinstance(self.n_workers, numbers.Integral) and self.n_workers > 1
        tags.non_deterministic = self.timeout is not None or parallel
        return tags


class TunedMLPClassifier(ClassifierOutputs, _TunedMLPEstimator):
    """An MLP classifier whose hyperparameters ``fit`` searches with :func:`nnhp.tune`.

    Parameters
    ----------
    searcher : "bohb" (nnhp.tune's default) | "hyperband" | "random" | "gp" | "grid" | a searcher object
    n_trials, timeout, max_total_epochs : the search's budget (trials; seconds, after which no
        trial starts; epochs over all trials). With none of them: one BOHB/Hyperband iteration,
        or 50 trials of the other searchers.
    space : None (nnhp's default space), a dict of overrides to it, or an ``nnhp.search.Space``
    max_epochs : the most epochs one trial trains (None: nnhp.tune's choice for the data's size)
    patience : early-stopping patience of each trial (None, nnhp.tune's default: none; each trial
        is scored at its last epoch)
    validation_fraction : float, default 0.2
        The rows held out (stratified) to score the trials.
    refit : bool, default True
        Retrain the best configuration on every row (training and validation) for the epochs
        its trial was scored at.
    n_workers : trials run at once (worker processes when more than 1)
    random_state : int, RandomState or None
        The seed of the split, the searcher, every trial and the refit.
    dtype, backend, blas_threads : as in :class:`~nnhp.sklearn.MLPClassifier`
    verbose : print a progress line after every trial
    standardize : bool, default True
        Train the trials on standardized features (and targets, for a regressor); ``model_``
        takes the raw X all the same (``nnhp.tune``'s ``standardize``).

    Attributes
    ----------
    classes_, n_features_in_, feature_names_in_ : as in :class:`~nnhp.sklearn.MLPClassifier`
    model_ : the network ``predict`` uses (the refit one when ``refit_``)
    refit_ : whether ``model_`` is the refit (False also when the refit failed; see ``nnhp.tune``)
    best_params_ : the configuration chosen
    best_score_ : the validation accuracy of that configuration's search model
    study_ : the ``nnhp.search.Study`` holding every trial
    """

    _stratify = True
    _task = "classification"


class TunedMLPRegressor(RegressorOutputs, _TunedMLPEstimator):
    """An MLP regressor whose hyperparameters ``fit`` searches with :func:`nnhp.tune`.

    The parameters and attributes are :class:`TunedMLPClassifier`'s, except that the validation
    rows are a random (unstratified) share and ``best_score_`` is the validation R² (trials are
    ranked by validation mean squared error, which orders them the same way for a single output).
    """

    _stratify = False
    _task = "regression"          # 0.0/1.0 targets stay numbers, whatever nnhp.tune would infer
