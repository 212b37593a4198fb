"""``MLPClassifier`` and ``MLPRegressor``: :func:`nnhp.fit` behind scikit-learn's estimator API.

``fit(X, y)`` is, step by step:

1. validate X and y as scikit-learn does (``validate_data``); a classifier maps its labels to
   class indices 0 .. k-1 (``classes_``), a regressor takes float targets;
2. build the network ``[n_features, *hidden_layer_sizes, n_outputs]`` (:class:`nnhp.MLP`), the
   optimizer (``optimizer`` with ``learning_rate`` and ``optimizer_kwargs``) and the schedule;
3. with ``early_stopping``, hold out ``validation_fraction`` of the rows (stratified for a
   classifier) and stop once the validation loss has not improved for ``patience`` epochs,
   keeping the best epoch's weights;
4. train with :func:`nnhp.fit` for ``epochs`` epochs.

``partial_fit(X, y)`` runs one more epoch on (X, y), continuing the optimizer's state and the
epoch count (so the shuffle, seeded by (seed, epoch), and the schedule go on where they were).

Parameters follow nnhp's names; where scikit-learn's ``MLPClassifier`` has the same idea under
another name the translation is: ``max_iter`` -> ``epochs``, ``learning_rate_init`` ->
``learning_rate``, ``n_iter_no_change`` -> ``patience``, ``solver`` -> ``optimizer``. ``alpha``
(an L2 term ``alpha/2 ||W||^2`` per batch, divided by the batch size) is ``l2 = alpha / (2 batch)``
here, where the penalty ``l2 ||W||^2`` is added to the mean loss. scikit-learn's MLP also stops
when the training loss stalls (``tol``); this one trains the epochs it is given.
"""
from __future__ import annotations

import copy
import numbers

from sklearn.base import BaseEstimator

from ..blas import limit_blas_threads
from ..data import train_test_split
from ..model import MLP
from ..optim import get as get_optimizer
from ..train import EarlyStopping, fit
from ..tuning.build import build_schedule, default_init
from .base import ClassifierOutputs, PicklableModel, RegressorOutputs, seed_from

__all__ = ["MLPClassifier", "MLPRegressor"]

#: ``batch_size="auto"``: scikit-learn's rule, min(AUTO_BATCH, n_samples).
AUTO_BATCH = 200


class _MLPEstimator(PicklableModel, BaseEstimator):
    """The parameters and the training loop both MLP estimators share (see the module docstring)."""

    #: The loss when ``loss=None``, and the losses allowed.
    default_loss: str = ""
    losses: tuple[str, ...] = ()

    def __init__(self, hidden_layer_sizes=(100,), *, activation="relu", dropout=0.0, init=None, loss=None,
                 optimizer="adam", optimizer_kwargs=None, learning_rate=1e-3, schedule=None,
                 batch_size="auto", epochs=200, l1=0.0, l2=0.0, clip_norm=None, early_stopping=False,
                 validation_fraction=0.1, patience=10, random_state=None, dtype="float32", backend=None,
                 jit=None, blas_threads=1):
        # scikit-learn's rule: store the parameters as given; fit checks them.
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.init = init
        self.loss = loss
        self.optimizer = optimizer
        self.optimizer_kwargs = optimizer_kwargs
        self.learning_rate = learning_rate
        self.schedule = schedule
        self.batch_size = batch_size
        self.epochs = epochs
        self.l1 = l1
        self.l2 = l2
        self.clip_norm = clip_norm
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.dtype = dtype
        self.backend = backend
        self.jit = jit
        self.blas_threads = blas_threads

    # --- fitting ----------------------------------------------------------------------------
    def fit(self, X, y):
        """Train a new network on (X, y) for ``epochs`` epochs (fewer with early stopping)."""
        X, y = self._check_training_data(X, y, reset=True)
        self._start(X, y)
        self._train(X, y, self._check_epochs(), early_stopping=self._check_early_stopping())
        return self

    def _partial_fit(self, X, y, **label_args):
        first = not hasattr(self, "model_")
        X, y = self._check_training_data(X, y, reset=first, **label_args)
        if first:
            self._start(X, y)
        self._train(X, y, 1, early_stopping=False)
        return self

    def _start(self, X, y) -> None:
        """A fresh network, optimizer and schedule for (X, y): every parameter is checked here."""
        loss = self._check_loss()
        self._seed = seed_from(self.random_state)
        activation = self.activation
        self.model_ = MLP([X.shape[1], *self._check_hidden_sizes(), self._n_outputs(y, loss)],
                          activation=activation, dropout=self.dropout,
                          init=default_init(activation) if self.init is None else self.init,
                          seed=self._seed, dtype=self._training_dtype(), backend=self.backend, jit=self.jit)
        self.model_.loss_name = loss
        self.optimizer_ = self._build_optimizer()
        self._schedule = self._build_schedule()
        self.n_iter_ = 0
        self.loss_curve_ = []
        self.validation_scores_ = None

    def _train(self, X, y, epochs: int, early_stopping: bool) -> None:
        """``epochs`` more epochs of :func:`nnhp.fit`, continuing the epoch count ``n_iter_``."""
        validation_data, stopper, callbacks, scores = None, None, (), None
        if early_stopping:
            fraction = self.validation_fraction
            X, X_val, y, y_val = train_test_split(X, y, fraction, seed=self._seed, stratify=self._stratify)
            validation_data, scores = (X_val, y_val), []
            stopper = EarlyStopping(monitor="val_loss", patience=self._check_patience(), restore_best=True)
            callbacks = [lambda epoch, logs: scores.append(self._score_model(self.model_, X_val, y_val))]
        with limit_blas_threads(self.blas_threads):
            history = fit(self.model_, X, y, loss=self.model_.loss_name, optimizer=self.optimizer_,
                          schedule=self._schedule, epochs=self.n_iter_ + epochs, initial_epoch=self.n_iter_,
                          batch_size=self._batch_size(len(X)), validation_data=validation_data,
                          early_stopping=stopper, l1=self.l1, l2=self.l2, clip_norm=self.clip_norm,
                          seed=self._seed, callbacks=callbacks)
        if history.stop_reason == "non_finite_loss":
            raise FloatingPointError(f"training diverged (the loss became infinite or NaN) in epoch "
                                     f"{self.n_iter_ + len(history.epoch) + 1}; try a smaller learning_rate "
                                     f"(now {self.learning_rate!r}) or clip_norm")
        self.n_iter_ += len(history.epoch)
        self.loss_curve_ += history.history["loss"]
        self.loss_ = self.loss_curve_[-1]
        self.validation_scores_ = scores

    # --- parameters, checked where fit first uses them -------------------------------------
    def _check_loss(self) -> str:
        loss = self.default_loss if self.loss is None else self.loss
        if loss not in self.losses:
            raise ValueError(f"{type(self).__name__}: loss must be one of {', '.join(self.losses)} or None; "
                             f"got {loss!r}")
        return loss

    def _check_hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else sizes
        try:
            sizes = list(sizes)
        except TypeError:
            sizes = None
        if sizes is None or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1
                                    for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be a positive integer or a sequence of them, "
                             f"e.g. (100,) or (128, 64); got {self.hidden_layer_sizes!r}")
        return [int(s) for s in sizes]

    def _check_epochs(self) -> int:
        epochs = self.epochs
        if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1; got {epochs!r}")
        return int(epochs)

    def _check_patience(self) -> int:
        patience = self.patience
        if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) or patience < 1:
            raise ValueError(f"patience must be an integer >= 1; got {patience!r}")
        return int(patience)

    def _check_early_stopping(self) -> bool:
        if not isinstance(self.early_stopping, bool):
            raise ValueError(f"early_stopping must be True or False; got {self.early_stopping!r}")
        return self.early_stopping

    def _batch_size(self, n_samples: int) -> int:
        if self.batch_size == "auto":
            return min(AUTO_BATCH, n_samples)
        size = self.batch_size
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError(f"batch_size must be 'auto' or an integer >= 1; got {size!r}")
        return int(size)

    def _build_optimizer(self):
        kwargs = dict(self.optimizer_kwargs or {})
        if "lr" in kwargs:
            raise ValueError("optimizer_kwargs must not hold 'lr': the rate is the learning_rate parameter")
        return get_optimizer(self.optimizer, lr=self.learning_rate, **kwargs)

    def _build_schedule(self):
        """None or a name: the rate schedule tune knows by that name, spanning ``epochs``; an nnhp
        schedule object: a copy of it (a stateful one, ReduceOnPlateau, must start afresh)."""
        if self.schedule is None or isinstance(self.schedule, str):
            return build_schedule({"schedule": self.schedule, "lr": self.learning_rate}, self._check_epochs())
        if not callable(self.schedule):
            raise ValueError(f"schedule must be None, a name or an nnhp schedule; got {self.schedule!r}")
        return copy.deepcopy(self.schedule)


class MLPClassifier(ClassifierOutputs, _MLPEstimator):
    """A multilayer perceptron classifier trained by nnhp, with scikit-learn's estimator API.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default (100,)
        Units of each hidden layer; () for none (multinomial logistic regression).
    activation : "relu" | "leaky_relu" | "elu" | "tanh" | "sigmoid" | "identity", default "relu"
    dropout : float in [0, 1), default 0
        Inverted dropout after each hidden activation, while training.
    init : str or None, default None
        An nnhp initializer name; None: He uniform for the ReLU family, Xavier uniform otherwise.
    loss : "cross_entropy" (softmax over one output per class) | "binary_cross_entropy" (two
        classes only: one sigmoid output) | None (cross_entropy)
    optimizer : str, default "adam"
        An ``nnhp.optim`` name: sgd, adagrad, adadelta, rmsprop, adam, adamw.
    optimizer_kwargs : dict or None
        The optimizer's other arguments (``momentum``, ``betas``, ``weight_decay``, ...).
    learning_rate : float, default 1e-3
    schedule : None | "cosine" | "warmup_cosine" | "one_cycle" | "exponential" | "step" | an
        ``nnhp.schedules`` object. A name spans ``epochs`` (``nnhp.tuning.build_schedule``).
    batch_size : int or "auto", default "auto" (min(200, n_samples), as scikit-learn)
    epochs : int, default 200
    l1, l2 : float, default 0
        Penalties ``l1 sum|W| + l2 sum W^2`` on the weights, added to the mean loss.
    clip_norm : float or None
        Clip the global gradient norm to this value.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the rows (stratified), stop when the validation loss
        has not improved for ``patience`` epochs, keep the best epoch's weights.
    validation_fraction : float, default 0.1
    patience : int, default 10
    random_state : int, RandomState or None
        An int seeds the initial weights, dropout, shuffling and the validation split (nnhp's
        ``seed``); None draws a new seed at every fit.
    dtype : "float32" | "float64", default "float32"
    backend : "numpy" | "cupy" | None (``NNHP_BACKEND``, else numpy)
    jit : None | bool
        nnhp's fused kernels: None where measured faster, False never, True always.
    blas_threads : int or None, default 1
        BLAS threads while training (None: leave them alone). Matrix products of the size a
        tabular MLP multiplies run faster on one thread than split across cores (``nnhp.blas``);
        give more for wide networks on large batches.

    Attributes
    ----------
    classes_ : the labels, sorted; ``predict`` returns them
    n_features_in_, feature_names_in_ : as scikit-learn sets them
    model_ : the trained ``nnhp.MLP`` (``model_.save(path)`` writes it as an nnhp model file)
    optimizer_ : the optimizer, with its state (``partial_fit`` continues it)
    n_iter_ : epochs trained (``partial_fit`` adds one each call)
    loss_curve_ : the training loss of each epoch; ``loss_`` the last one
    validation_scores_ : the validation accuracy of each epoch (early stopping), else None
    """

    default_loss = "cross_entropy"
    losses = ("cross_entropy", "binary_cross_entropy")
    _stratify = True

    def partial_fit(self, X, y, classes=None):
        """One epoch on (X, y). The first call builds the network and needs ``classes``: every
        label that any call will show."""
        if not hasattr(self, "model_") and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit "
                             "(every label that later calls may show)")
        return self._partial_fit(X, y, classes=classes)

    def _check_loss(self) -> str:
        loss = super()._check_loss()
        if loss == "binary_cross_entropy" and len(self.classes_) != 2:
            raise ValueError(f"loss='binary_cross_entropy' needs two classes; y has {len(self.classes_)}")
        return loss


class MLPRegressor(RegressorOutputs, _MLPEstimator):
    """A multilayer perceptron regressor trained by nnhp, with scikit-learn's estimator API.

    The parameters and attributes are :class:`MLPClassifier`'s, except:

    loss : "mse" | "huber" | "mae" | None (mse)
    early_stopping : the validation rows are a random (unstratified) share
    validation_scores_ : the validation R² of each epoch (early stopping), else None

    ``y`` of shape (n,) trains one output and ``predict`` returns shape (n,); ``y`` of shape
    (n, k) trains k outputs. Targets are used as given: standardize them (for example with
    ``sklearn.compose.TransformedTargetRegressor``) when their scale is far from 1.
    """

    default_loss = "mse"
    losses = ("mse", "huber", "mae")
    _stratify = False

    def partial_fit(self, X, y):
        """One epoch on (X, y); the first call builds the network."""
        return self._partial_fit(X, y)
