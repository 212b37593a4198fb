"""Refit: train the configuration a search chose again, on the training and validation rows.

scikit-learn's ``refit=True``: the validation rows told the search which configuration is
best; once that is decided they are worth more as training data. The refit trains

* the best trial's params, with the search's seed;
* on the training rows followed by the validation rows, with no early stopping (there is
  nothing left to stop on);
* for the trial's ``refit_epochs`` -- the epoch whose weights the search scored: the trial's last
  (its epochs, or the rung's budget under Hyperband/BOHB), or its best under ``patience``;
* with its schedule stretched over the trial's ``schedule_epochs`` as in the search (a cosine
  that spanned 100 epochs and was stopped early at 60 again spans 100 and again stops at 60).

Epochs carry over as epochs, not as optimizer steps: with ``n_val`` more rows each epoch takes
``(n_train + n_val) / n_train`` times as many steps, and epoch-based schedules move once an
epoch, so the rate at epoch ``e`` is the rate the search used at epoch ``e``.

When the trials run in worker processes, :func:`load_kernels_ahead` has this process load the
fused kernels the refit trains with while the search runs.
"""
from __future__ import annotations

import time

import numpy as np

from .build import build_model, build_optimizer, build_schedule, infer_task, n_outputs, penalties

__all__ = ["fit_params", "load_kernels_ahead", "refit_rows", "seconds_per_epoch"]


def refit_rows(X, y, X_val, y_val) -> tuple[np.ndarray, np.ndarray]:
    """The training rows followed by the validation rows."""
    return np.concatenate([X, X_val]), np.concatenate([y, y_val])


def fit_params(params: dict, X, y, *, loss: str | None = None, epochs: int | None = None,
               schedule_epochs: int | None = None, seed=0, n_classes: int | None = None,
               dtype="float32", backend=None, callbacks=()):
    """Train the MLP a params dict describes on all of (X, y), without validation; the model.

    ``loss``: ``params["loss"]``, else this, else cross-entropy for integer labels and MSE
    otherwise. ``epochs``: else ``params["epochs"]``. ``schedule_epochs``: the span of the
    schedule (default ``epochs``). ``n_classes``: the output width for labels (default
    ``max(y) + 1``). ``callbacks``: as ``fit`` takes them.
    """
    from ..train import fit

    y = np.asarray(y)
    loss = params.get("loss", loss or ("cross_entropy" if infer_task(y) == "classification" else "mse"))
    task = infer_task(y, loss)
    if task == "classification" and y.ndim == 1 and n_classes is None:
        n_classes = int(y.max()) + 1
    if epochs is None:
        if "epochs" not in params:
            raise ValueError("fit_params needs epochs= or an 'epochs' entry in params")
        epochs = params["epochs"]
    epochs = int(epochs)
    schedule_epochs = epochs if schedule_epochs is None else max(int(schedule_epochs), epochs)
    model = build_model(params, X.shape[1], n_outputs(task, loss, y, n_classes), seed, dtype, backend)
    l1, l2 = penalties(params)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        history = fit(model, X, y, loss=loss, optimizer=build_optimizer(params),
                      schedule=build_schedule(params, schedule_epochs), epochs=epochs,
                      batch_size=int(params.get("batch_size", 32)), l1=l1, l2=l2, seed=seed, callbacks=callbacks)
    if history.stop_reason == "non_finite_loss":
        raise FloatingPointError(f"the refit diverged (non-finite loss) after {len(history.epoch)} epochs")
    model.history = history
    return model


def seconds_per_epoch(params: dict, X, y, **fit_params_kwargs) -> float:
    """The time an epoch of ``params`` takes on (X, y) here: the second of two timed (the first
    pays for compiling or loading the fused kernels). Keywords go to :func:`fit_params`."""
    ends = []
    fit_params(params, X, y, **{**fit_params_kwargs, "epochs": 2, "schedule_epochs": 2},
               callbacks=[lambda epoch, logs: ends.append(time.perf_counter())])
    return ends[1] - ends[0]


def load_kernels_ahead(n_workers: int, dtype="float32", backend=None) -> None:
    """For a search whose trials run in other processes: start loading, in a background thread
    of this process, the fused kernels the search model and the refit will train with.

    Loading them (importing numba: ~0.6 s of CPU) after the search would hold up everything after
    it. It is started when the search starts: on a machine with free cores it costs nothing, and
    on one whose cores the workers keep busy it takes its share of them, about half its time with
    two workers against all of it afterwards -- there is no idle core at the end of a search either,
    whose last trials are its shortest (``Study.optimize`` starts the costliest first). Measured on
    the README's digits job with 2 workers on 2 cores: started when a worker ran out of trials, the
    search model waited 0.79 s for it. Whether a model runs fused does not change: building one
    waits for the load (``nnhp.fused.prepare``)."""
    from .. import fused
    from ..backend import get_backend

    if n_workers > 1:
        backend = get_backend(backend, dtype)
        fused.prepare(backend.xp, backend.dtype, background=True)
