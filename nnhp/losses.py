"""Loss functions: a number to minimize, and its gradient with respect to the outputs.

Every loss is the *mean* over the batch (and, for the elementwise losses, over the
outputs), as in PyTorch's default ``reduction="mean"``. ``forward(out, y)`` returns
that mean and remembers what ``backward()`` needs; ``backward()`` returns
``d mean-loss / d out``, with the same shape as ``out``.

The classification losses take raw scores (logits) and fuse the output nonlinearity
into the loss: softmax + cross-entropy and sigmoid + binary cross-entropy. Fused,
the gradient is simply ``probabilities - targets`` and the log never sees a 0.
"""
from __future__ import annotations

import numpy

from .backend import array_module
from .data import check_labels, check_targets


class Loss:
    """Base class. ``classification`` losses report accuracy and predict probabilities."""

    name = ""
    classification = False

    def prepare_targets(self, y, n_outputs: int, xp=numpy, dtype=numpy.float32):
        """Validate ``y`` for this loss and model width; return it on ``xp`` in the form
        ``forward`` expects (integer labels or float targets shaped like the outputs)."""
        targets = check_targets(y, n_outputs, name="y")
        return xp.asarray(targets, dtype=dtype)

    def forward(self, out, y):
        raise NotImplementedError

    def backward(self):
        raise NotImplementedError

    def match_targets(self, out, y):
        """``y`` shaped like ``out``, or a clear error.

        Targets of shape (n,) for a single output become (n, 1). Anything else must match
        exactly: NumPy would broadcast (n, 1) against (n,) into an (n, n) difference and
        return a wrong loss without a word.
        """
        if y.shape == out.shape:
            return y
        if y.ndim == 1 and out.ndim == 2 and out.shape == (y.shape[0], 1):
            return y.reshape(-1, 1)
        raise ValueError(f"targets of shape {y.shape} do not match outputs of shape {out.shape}")

    def output_transform(self, out):
        """What ``predict`` returns for raw outputs: probabilities, or ``out`` itself."""
        return out

    def correct(self, out, y):
        """Number of correct predictions in a batch (classification losses only)."""
        raise NotImplementedError(f"{self.name} is not a classification loss")

    def __repr__(self):
        return f"{type(self).__name__}()"


def _softmax(logits, xp):
    # Subtracting the row maximum changes nothing mathematically (softmax is
    # shift-invariant) but keeps exp from overflowing for huge logits.
    shifted = logits - logits.max(axis=1, keepdims=True)
    xp.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


class CrossEntropy(Loss):
    """Softmax + cross-entropy on logits, for k >= 2 classes.

    p = softmax(z),  p_ij = exp(z_ij - m_i) / sum_c exp(z_ic - m_i),  m_i = max_c z_ic
    L = -(1/n) sum_i sum_j t_ij log p_ij     (t: one-hot labels, or any rows of probabilities)
      = (1/n) sum_i [log sum_c exp(z_ic - m_i) + m_i - sum_j t_ij z_ij]   (for rows of t summing to 1)
    dL/dz = (p - t) / n

    ``y`` is either integer labels ``(n,)`` in [0, k) or target rows ``(n, k)``.
    """

    name = "cross_entropy"
    classification = True

    def prepare_targets(self, y, n_outputs, xp=numpy, dtype=numpy.float32):
        if n_outputs < 2:
            raise ValueError("cross_entropy needs at least 2 outputs (one per class); "
                             "for a single output use binary_cross_entropy")
        y_host = numpy.asarray(y)
        if y_host.ndim == 1:
            return xp.asarray(check_labels(y_host, n_outputs, name="y"))
        targets = check_targets(y_host, n_outputs, name="y")
        if (targets < 0).any() or not numpy.allclose(targets.sum(axis=1), 1.0, atol=1e-4):
            raise ValueError("cross_entropy target rows of shape (n, k) must be one-hot or "
                             "probabilities (non-negative, each row summing to 1)")
        return xp.asarray(targets, dtype=dtype)

    def match_targets(self, out, y):
        """Labels ``(n,)`` for ``n`` rows of logits, or target rows shaped like them."""
        if y.ndim == 1:
            if y.shape[0] != out.shape[0]:
                raise ValueError(f"{y.shape[0]} labels for {out.shape[0]} rows of outputs")
            return y
        return super().match_targets(out, y)

    def forward(self, out, y):
        y = self.match_targets(out, y)
        xp = array_module(out)
        n = out.shape[0]
        row_max = out.max(axis=1, keepdims=True)
        shifted = out - row_max
        exp = xp.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)
        log_sum_exp = xp.log(sum_exp)
        if y.ndim == 1:
            picked = shifted[xp.arange(n), y]
            loss = (log_sum_exp[:, 0] - picked).sum() / n
        else:
            loss = ((log_sum_exp - shifted) * y).sum() / n
        exp /= sum_exp
        self.probabilities, self.y = exp, y
        return loss

    def backward(self):
        xp = array_module(self.probabilities)
        n = self.probabilities.shape[0]
        scale = self.probabilities.dtype.type(1.0 / n)
        grad = self.probabilities * scale          # (p - t) / n
        if self.y.ndim == 1:
            grad[xp.arange(n), self.y] -= scale
        else:
            grad -= self.y * scale
        return grad

    def output_transform(self, out):
        return _softmax(out, array_module(out))

    def correct(self, out, y):
        labels = y if y.ndim == 1 else y.argmax(axis=1)
        return (out.argmax(axis=1) == labels).sum()


class BinaryCrossEntropy(Loss):
    """Sigmoid + binary cross-entropy on logits (one or several independent 0/1 outputs).

    L = mean over all elements of  max(z, 0) - z t + log(1 + exp(-|z|))
    (the stable rewrite of -t log s(z) - (1-t) log(1 - s(z)), s the sigmoid)
    dL/dz = (s(z) - t) / N,   N = number of elements
    """

    name = "binary_cross_entropy"
    classification = True

    def prepare_targets(self, y, n_outputs, xp=numpy, dtype=numpy.float32):
        targets = check_targets(y, n_outputs, name="y")
        if ((targets < 0) | (targets > 1)).any():
            raise ValueError("binary_cross_entropy targets must lie in [0, 1]; "
                             f"got values from {targets.min()} to {targets.max()}")
        return xp.asarray(targets, dtype=dtype)

    def forward(self, out, y):
        xp = array_module(out)
        y = self.match_targets(out, y)
        losses = xp.maximum(out, 0) - out * y + xp.log1p(xp.exp(-xp.abs(out)))
        self.out, self.y = out, y
        return losses.sum() / out.size

    def backward(self):
        xp = array_module(self.out)
        sigmoid = 0.5 * (1 + xp.tanh(0.5 * self.out))
        return (sigmoid - self.y) * self.out.dtype.type(1.0 / self.out.size)

    def output_transform(self, out):
        xp = array_module(out)
        return 0.5 * (1 + xp.tanh(0.5 * out))

    def correct(self, out, y):
        # Each output is its own yes/no question; an element is right when the
        # predicted side of 0.5 (logit 0) matches the target's. Averaged per sample.
        hits = (out > 0) == (y > 0.5)
        return hits.mean(axis=1).sum()


class MeanSquaredError(Loss):
    """L = mean (out - y)^2;   dL/dout = 2 (out - y) / N."""

    name = "mse"

    def forward(self, out, y):
        self.diff = out - self.match_targets(out, y)
        return (self.diff * self.diff).sum() / out.size

    def backward(self):
        return self.diff * self.diff.dtype.type(2.0 / self.diff.size)


class MeanAbsoluteError(Loss):
    """L = mean |out - y|;   dL/dout = sign(out - y) / N   (0 where out == y, as in PyTorch)."""

    name = "mae"

    def forward(self, out, y):
        xp = array_module(out)
        self.diff = out - self.match_targets(out, y)
        return xp.abs(self.diff).sum() / out.size

    def backward(self):
        xp = array_module(self.diff)
        return xp.sign(self.diff) * self.diff.dtype.type(1.0 / self.diff.size)


class Huber(Loss):
    """Huber loss (PyTorch's HuberLoss): quadratic near 0, linear beyond ``delta``.

    d = out - y;  l(d) = d^2 / 2 if |d| <= delta else delta (|d| - delta / 2);  L = mean l(d)
    dL/dout = clip(d, -delta, delta) / N
    """

    name = "huber"

    def __init__(self, delta: float = 1.0):
        if not delta > 0:
            raise ValueError(f"huber delta must be positive; got {delta!r}")
        self.delta = float(delta)

    def forward(self, out, y):
        xp = array_module(out)
        self.diff = out - self.match_targets(out, y)
        abs_diff = xp.abs(self.diff)
        quadratic = xp.minimum(abs_diff, self.delta)
        # 0.5 q^2 + delta (|d| - q): equals both branches of the piecewise formula.
        losses = 0.5 * quadratic * quadratic + self.delta * (abs_diff - quadratic)
        return losses.sum() / out.size

    def backward(self):
        xp = array_module(self.diff)
        return xp.clip(self.diff, -self.delta, self.delta) * self.diff.dtype.type(1.0 / self.diff.size)

    def __repr__(self):
        return f"Huber(delta={self.delta})"


LOSSES = {cls.name: cls for cls in (CrossEntropy, BinaryCrossEntropy, MeanSquaredError,
                                    MeanAbsoluteError, Huber)}
ALIASES = {"ce": "cross_entropy", "categorical_crossentropy": "cross_entropy",
           "bce": "binary_cross_entropy", "binary_crossentropy": "binary_cross_entropy",
           "mean_squared_error": "mse", "mean_absolute_error": "mae"}


def get(name, **kwargs) -> Loss:
    """A loss by name (cross_entropy | binary_cross_entropy | mse | mae | huber) or instance."""
    if isinstance(name, Loss):
        return name
    key = ALIASES.get(name, name) if isinstance(name, str) else None
    if key not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}")
    return LOSSES[key](**kwargs)
