"""Standardized inputs (and regression targets) for the search, folded back into the models it returns.

A network trains well when its inputs are on the scale its initialization assumes: Xavier and He
draw weights so that unit-variance inputs give unit-variance activations. Real data rarely comes
that way (a wine's proline is in the thousands, its hue near 1; a house price in the hundreds of
thousands), and a user who calls ``tune(X, y)`` on it should not get a worse search for not having
scaled it first. So ``tune(..., standardize=True)`` (the default) trains every trial on

    x_s = (x - mean_x) / scale_x            per feature, the training rows' mean and standard deviation
    y_s = (y - mean_y) / scale_y            regression only: per output mean, one scale (below)

and hands back models that take the raw ``x`` and predict the raw ``y``: the two affine maps are
folded into the first and the last Dense layer, exactly (up to rounding)::

    first layer:  x_s W + b  =  x (W / scale_x[:, None])  +  (b - (mean_x / scale_x) W)
    last layer:   (h W + b) scale_y + mean_y  =  h (W scale_y)  +  (b scale_y + mean_y)

A feature that is constant on the training rows (up to rounding) gets scale 1: it is only centred
(:class:`nnhp.data.Standardizer`'s rule, whose statistics these are). The targets get
one scale for all outputs, the root mean of their variances, so that a validation MSE in
standardized units is the raw one divided by ``scale_y ** 2`` exactly, even with several outputs:
the search's values are reported in the data's own units. Class labels are never scaled.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Standardizer"]


@dataclass
class Standardizer:
    """The affine maps of the module docstring; ``y_mean``/``y_scale`` are None for classification."""

    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: np.ndarray | None = None
    y_scale: float | None = None

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, scale_targets: bool) -> "Standardizer":
        """The training rows' statistics: per-feature mean and std of X; with ``scale_targets``,
        per-output mean of y and one scale (the root mean of the outputs' variances)."""
        from ..data import Standardizer as FeatureStandardizer

        # The features' statistics (constant features, to rounding, only centred) are data.py's.
        features = FeatureStandardizer().fit(np.asarray(X, dtype=np.float64))
        if not scale_targets:
            return cls(features.mean, features.std)
        y = np.asarray(y, dtype=np.float64)
        y_scale = float(np.sqrt(np.mean(y.var(axis=0))))
        return cls(features.mean, features.std, y.mean(axis=0), y_scale if y_scale > 0 else 1.0)

    def transform_X(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64) - self.x_mean) / self.x_scale

    def transform_y(self, y: np.ndarray) -> np.ndarray:
        if self.y_scale is None:
            return y
        return (np.asarray(y, dtype=np.float64) - self.y_mean) / self.y_scale

    @property
    def mse_factor(self) -> float:
        """Raw MSE / standardized MSE: ``scale_y ** 2`` (1 for labels)."""
        return 1.0 if self.y_scale is None else self.y_scale ** 2

    def fold_into(self, model):
        """Rewrite ``model`` (trained on standardized data) in place to take raw inputs and, for a
        regressor, predict raw targets; returns it. Needs a Dense first layer and, with scaled
        targets, a Dense last layer (an MLP's)."""
        from ..backend import to_numpy
        from ..layers import Dense

        first, last = model.layers[0], model.layers[-1]
        if not isinstance(first, Dense) or (self.y_scale is not None and not isinstance(last, Dense)):
            raise TypeError(f"folding the standardization needs Dense first and last layers; got "
                            f"{type(first).__name__} and {type(last).__name__}")
        backend = model.backend
        W, b = to_numpy(first.W).astype(np.float64), to_numpy(first.b).astype(np.float64)
        first.b[...] = backend.asarray(b - (self.x_mean / self.x_scale) @ W)   # before W changes
        first.W[...] = backend.asarray(W / self.x_scale[:, None])
        if self.y_scale is not None:
            W, b = to_numpy(last.W).astype(np.float64), to_numpy(last.b).astype(np.float64)
            last.W[...] = backend.asarray(W * self.y_scale)
            last.b[...] = backend.asarray(b * self.y_scale + self.y_mean)
        return model
