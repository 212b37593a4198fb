"""What the four estimators share: input checks, labels, outputs from an nnhp model, pickling.

Every estimator holds its trained network as ``model_`` (an :class:`nnhp.MLP`). The mixins here
turn that network's raw outputs into scikit-learn's answers:

=========================  ===================================================================
``ClassifierOutputs``      labels <-> class indices; ``decision_function``, ``predict_proba``,
                           ``predict_log_proba``, ``predict``; accuracy as the score
``RegressorOutputs``       targets as floats; ``predict``; R² as the score
``PicklableModel``         ``pickle`` stores ``model_`` as its architecture and weights
=========================  ===================================================================

Class probabilities are computed from the logits ``z`` in float64, whatever the network's dtype,
so that they sum to 1 to float64 precision:

    softmax:  p_k = exp(z_k - max_j z_j) / sum_c exp(z_c - max_j z_j)      (k >= 2 outputs)
    sigmoid:  p_1 = 1 / (1 + exp(-z)),  p_0 = 1 - p_1                      (one output, BCE)

and the binary ``decision_function`` is the log-odds of the second class, ``z_1 - z_0`` (softmax)
or ``z`` (sigmoid), as scikit-learn's convention asks: positive means ``classes_[1]``.
"""
from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from ..backend import resolve_dtype, to_numpy
from ..model import MLP

__all__ = ["ClassifierOutputs", "RegressorOutputs", "PicklableModel", "seed_from", "INPUT_DTYPES"]

#: Float types that input validation keeps as they are (anything else becomes float64).
INPUT_DTYPES = [np.float64, np.float32]

#: Rows per forward pass when predicting: bounds the memory of the hidden activations.
PREDICT_CHUNK = 4096


def seed_from(random_state) -> int:
    """nnhp's integer seed for a scikit-learn ``random_state``.

    An integer is used as it is (``random_state=0`` trains what ``nnhp.fit(..., seed=0)`` trains);
    None or a ``RandomState`` draws one, so that each fit differs as scikit-learn's convention says.
    """
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def raw_outputs(model, X) -> np.ndarray:
    """The network's outputs (logits for a classifier) for validated ``X``, as float64 on the host."""
    chunks = [to_numpy(model.forward(X[start:start + PREDICT_CHUNK]))
              for start in range(0, X.shape[0], PREDICT_CHUNK)]
    return np.concatenate(chunks).astype(np.float64, copy=False)


class _ModelInputs:
    """Validation of the X that predictions are asked for."""

    def _check_predict_X(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=self.model_.backend.dtype)

    def _training_dtype(self):
        """The network's float type, checked here where the ``dtype`` parameter is first used."""
        return resolve_dtype(self.dtype)


class ClassifierOutputs(ClassifierMixin, _ModelInputs):
    """Labels in, labels out: any labels (strings, non-contiguous integers), two classes or more."""

    def _check_training_data(self, X, y, reset: bool = True, classes=None):
        """Validated X and the class indices of y (``classes_`` is set when ``reset``).

        ``classes``: every class ``partial_fit`` will ever see, required on its first call.
        """
        X, y = validate_data(self, X, y, reset=reset, dtype=INPUT_DTYPES)
        check_classification_targets(y)
        kind = type_of_target(y, input_name="y")
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"{type(self).__name__} takes one label per sample (binary or multiclass); "
                             f"got y of type {kind!r}")
        if reset:
            self.classes_ = np.unique(y) if classes is None else np.unique(np.asarray(classes))
            if len(self.classes_) < 2:
                raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; got 1 class "
                                 f"({self.classes_[0]!r})")
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise ValueError(f"classes={np.asarray(classes).tolist()!r} differs from the classes of the first "
                             f"call, {self.classes_.tolist()!r}")
        unseen = np.setdiff1d(y, self.classes_)
        if unseen.size:
            raise ValueError(f"y holds labels {unseen.tolist()!r} that are not among classes_ "
                             f"{self.classes_.tolist()!r}")
        return X, np.searchsorted(self.classes_, y)

    def _n_outputs(self, y, loss: str) -> int:
        """One output per class; a single one for a two-class binary cross-entropy."""
        return 1 if loss == "binary_cross_entropy" else len(self.classes_)

    def decision_function(self, X):
        """Logits, shape (n, n_classes); for two classes the log-odds of ``classes_[1]``, shape (n,)."""
        X = self._check_predict_X(X)
        return _decision(self.model_, X)

    def predict_proba(self, X):
        """Class probabilities, shape (n, n_classes), in the order of ``classes_``."""
        X = self._check_predict_X(X)
        return _probabilities(self.model_, X)

    def predict_log_proba(self, X):
        """The logarithm of ``predict_proba``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each row, as a label from ``classes_``."""
        X = self._check_predict_X(X)
        return self.classes_[_probabilities(self.model_, X).argmax(axis=1)]

    def _score_model(self, model, X, y_index) -> float:
        """Accuracy of ``model`` on validated X and class indices (the validation score)."""
        return float((_probabilities(model, X).argmax(axis=1) == y_index).mean())


def _decision(model, X) -> np.ndarray:
    logits = raw_outputs(model, X)
    if logits.shape[1] == 1:                  # one sigmoid output: its logit is the log-odds
        return logits[:, 0]
    if logits.shape[1] == 2:                  # log p1 - log p0 = z1 - z0
        return logits[:, 1] - logits[:, 0]
    return logits


def _probabilities(model, X) -> np.ndarray:
    logits = raw_outputs(model, X)
    if logits.shape[1] == 1:
        positive = 1.0 / (1.0 + np.exp(-logits[:, 0]))
        return np.column_stack([1.0 - positive, positive])
    # Subtracting the row maximum keeps exp from overflowing (softmax is shift-invariant).
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


class RegressorOutputs(RegressorMixin, _ModelInputs):
    """Float targets, one (y of shape (n,)) or several (y of shape (n, k)) per sample."""

    def _check_training_data(self, X, y, reset: bool = True):
        X, y = validate_data(self, X, y, reset=reset, dtype=INPUT_DTYPES, multi_output=True, y_numeric=True)
        return X, y.astype(np.float64, copy=False)

    def _n_outputs(self, y, loss: str) -> int:
        return 1 if y.ndim == 1 else y.shape[1]

    def predict(self, X):
        """Predicted targets: shape (n,) for a single output, (n, k) for k outputs."""
        X = self._check_predict_X(X)
        return _regression(self.model_, X)

    def _score_model(self, model, X, y) -> float:
        """R² of ``model`` on validated X and targets (averaged over outputs): the validation score."""
        return float(r2_score(y, _regression(model, X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _regression(model, X) -> np.ndarray:
    outputs = raw_outputs(model, X)
    return outputs[:, 0] if outputs.shape[1] == 1 else outputs


class PicklableModel:
    """``pickle`` support for an estimator whose fitted ``model_`` is an :class:`nnhp.MLP`.

    A model holds its array module (NumPy or CuPy), which cannot be pickled, and reusable
    activation buffers, which need not be. So the pickle keeps what rebuilds the model: its
    constructor arguments, its weights and generator state (``model.get_state()``), the loss it
    was trained with. (nnhp's own model files, ``model.save``, stay pickle-free.)
    """

    def __getstate__(self):
        state = dict(super().__getstate__())      # a copy: the estimator itself keeps its model
        if isinstance(state.get("model_"), MLP):
            state["model_"] = _model_to_dict(state["model_"])
        return state

    def __setstate__(self, state):
        if isinstance(state.get("model_"), dict):
            state = {**state, "model_": _model_from_dict(state["model_"])}
        super().__setstate__(state)


def _model_to_dict(model: MLP) -> dict:
    return {"sizes": list(model.sizes), "activation": model.activation, "dropout": model.dropout,
            "init": model.init, "seed": model.seed, "dtype": model.backend.dtype.name,
            "backend": model.backend.name, "jit": model.jit, "loss_name": model.loss_name,
            "state": model.get_state()}


def _model_from_dict(saved: dict) -> MLP:
    model = MLP(saved["sizes"], activation=saved["activation"], dropout=saved["dropout"], init=saved["init"],
                seed=saved["seed"], dtype=saved["dtype"], backend=saved["backend"], jit=saved["jit"])
    model.set_state(saved["state"])
    model.loss_name = saved["loss_name"]
    return model
