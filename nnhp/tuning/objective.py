"""The objective ``tune`` hands its study: train the MLP a trial describes, return its validation score.

One trial, step by step (:meth:`TrialObjective.__call__`):

1. build the model, optimizer and schedule from ``trial.params`` (:mod:`nnhp.tuning.build`);
2. a promoted trial (Hyperband, BOHB) restores its parent's checkpoint and trains on from there;
3. ``fit``, reporting the metric every epoch (with early stopping on the validation loss when
   the search was given a ``patience``);
4. score the validation rows with one yardstick for every trial (accuracy, or the MSE);
5. record what a refit needs (``refit_epochs``, ``schedule_epochs``) and keep a checkpoint.

Epochs and schedules
--------------------
A trial's epochs are ``trial.budget`` when the searcher gives one, else ``params["epochs"]``,
else ``max_epochs``. Without a budget the schedule spans the trial's own epochs; with a budget
every schedule spans ``max_epochs``, so that a trial continued from a checkpoint follows the
curve an uninterrupted run would.

Which epoch is scored
---------------------
By default (``patience=None``) a trial trains all its epochs and is scored at the last one; the
refit trains as many (``refit_epochs``). Hyperband and BOHB already stop the configurations that
fall behind; within one, the end of an annealed schedule is what the refit reproduces. With a
``patience`` a trial stops after that many epochs without a lower validation loss, the model
scored is the weights of its lowest-loss epoch, and ``refit_epochs`` is that epoch's number
counted from 1. A budgeted trial's checkpoint, which a promotion continues from, always holds the
end state: the last epoch's weights, which go with the optimizer state and epoch count.

Why not early stopping by default: the validation loss of a wide net bottoms out early while its
accuracy still rises as the rate anneals, so stopping there scored and refit half-trained models.
Measured with BOHB at 4 x max_epochs total epochs on the benchmark's eight data sets, 5 seeds
(RESULTS.md, "Scoring a trial's last epoch"): the test score was higher without it on 25 of 40
runs and lower on 8.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from .build import build_model, build_optimizer, build_schedule, hidden_sizes, n_outputs, penalties

__all__ = ["Problem", "TrialObjective", "SCORED_PARAMS"]

#: What one mini-batch costs beyond its arithmetic, per layer (the Python calls, the small-array
#: kernels, the optimizer step), in multiply-adds of one row through one weight. A least-squares
#: fit of the 30 trial times of ``nnhp tune --data digits --searcher random --trials 30
#: --max-epochs 27`` (AMD EPYC, 2026-12-03) gave 1.5e6; it only orders trials
#: (:meth:`TrialObjective.estimated_cost`), so a rough figure does.
BATCH_OVERHEAD = 1.5e6

#: The checkpoint entry holding the weights a budgeted trial was scored with (its last epoch's, or
#: its best epoch's under a patience).
SCORED_PARAMS = "scored_params"


@dataclass
class Problem:
    """The data a search runs on and what it asks for."""

    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    task: str                       # "classification" | "regression"
    n_classes: int | None
    metric: str                     # "accuracy" | "loss"
    metric_loss: str                # the loss a trial uses when its params name none
    mse_factor: float = 1.0         # raw MSE / MSE on the (standardized) targets trained on

    @property
    def direction(self) -> str:
        return "maximize" if self.metric == "accuracy" else "minimize"

    def rank(self, value: float, val_loss: float | None) -> tuple[float, float]:
        """Sort key of a result, best first: the metric, then the validation loss. Accuracy on a
        few hundred validation rows ties often; the loss tells the tied models apart."""
        sign = -1.0 if self.direction == "maximize" else 1.0
        return sign * value, math.inf if val_loss is None else val_loss

    def validation_scores(self, model, loss: str) -> dict:
        """``evaluate`` on the validation rows: a classifier under its own loss's decision rule
        (accuracies compare across losses), a regressor by the MSE whatever its training loss."""
        from ..train import evaluate
        if self.task == "classification":
            return evaluate(model, self.X_val, self.y_val, loss=loss)
        scores = evaluate(model, self.X_val, self.y_val, loss="mse")
        return {**scores, "loss": scores["loss"] * self.mse_factor}      # in the targets' own units

    def loss_of(self, params: dict) -> str:
        return params.get("loss", self.metric_loss)

    def n_outputs(self, loss: str) -> int:
        return n_outputs(self.task, loss, self.y, self.n_classes)


class TrialObjective:
    """``objective(trial) -> validation score`` for a :class:`~nnhp.search.Study` (module docstring).

    Checkpoints: every budgeted trial saves one (a promotion continues from it); without budgets
    only the best trial so far keeps one -- it is the search's model at the end.
    """

    def __init__(self, problem: Problem, study, *, max_epochs: int, patience: int | None = None, seed=0,
                 dtype="float32", backend=None):
        self.problem, self.study = problem, study
        self.max_epochs, self.seed = int(max_epochs), seed
        self.patience = None if patience is None else int(patience)
        self.dtype, self.backend = dtype, backend
        self._best_lock = threading.Lock()
        self.best_rank, self.best_trial_id = None, None      # the unbudgeted trial holding a checkpoint

    def build(self, params: dict):
        """(model, optimizer, loss name) for a params dict, with this search's seed and dtype."""
        loss = self.problem.loss_of(params)
        model = build_model(params, self.problem.X.shape[1], self.problem.n_outputs(loss), self.seed,
                            self.dtype, self.backend)
        return model, build_optimizer(params), loss

    def epochs_of(self, params: dict, budget) -> int:
        """A trial's epochs: its budget, else ``params["epochs"]``, else ``max_epochs``."""
        return int(round(budget)) if budget is not None else int(params.get("epochs", self.max_epochs))

    def estimated_cost(self, params: dict, budget=None) -> float:
        """A trial's cost in multiply-adds, roughly: per epoch, every training row and a third of
        every validation row (a forward pass only) through every weight, plus
        :data:`BATCH_OVERHEAD` per batch and layer. ``Study.optimize`` starts a parallel random or
        grid search's costliest trials first with it; the time itself is never predicted."""
        problem = self.problem
        widths = [problem.X.shape[1], *hidden_sizes(params), problem.n_outputs(problem.loss_of(params))]
        weights = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
        rows, batch = len(problem.X), max(int(params.get("batch_size", 32)), 1)
        batches = math.ceil(rows / batch)
        per_epoch = (rows + len(problem.X_val) / 3) * weights + batches * (len(widths) - 1) * BATCH_OVERHEAD
        return self.epochs_of(params, budget) * per_epoch

    def __call__(self, trial) -> float:
        from .. import losses
        from ..checkpoint import restore_checkpoint
        from ..train import EarlyStopping, fit

        problem, params, budgeted = self.problem, trial.params, trial.budget is not None
        model, optimizer, loss = self.build(params)
        if losses.get(loss).classification != (problem.task == "classification"):
            raise ValueError(f"loss {loss!r} does not fit a {problem.task} task")
        epochs = self.epochs_of(params, trial.budget)
        schedule_epochs = self.max_epochs if budgeted else epochs
        initial_epoch = 0
        if trial.checkpoint is not None:
            initial_epoch = min(restore_checkpoint(trial.checkpoint, model, optimizer), epochs)
        l1, l2 = penalties(params)
        monitor = "val_accuracy" if problem.metric == "accuracy" else "val_loss"

        stopper = None if self.patience is None else EarlyStopping(monitor="val_loss", patience=self.patience,
                                                                   restore_best=False)
        best_weights = {}

        def report(epoch, logs):
            if monitor in logs:
                trial.report(logs[monitor], epoch)
            if stopper is not None and stopper.best_epoch == epoch:   # early stopping just recorded a new best
                best_weights["flat"] = model.flat_params.copy()

        # A search tries learning rates that diverge; fit catches the non-finite loss and the
        # trial is recorded as failed with the reason below, so NumPy's overflow warnings on the
        # way would only scatter noise through the progress output.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            history = fit(model, problem.X, problem.y, loss=loss, optimizer=optimizer,
                          schedule=build_schedule(params, schedule_epochs), epochs=epochs,
                          batch_size=int(params.get("batch_size", 32)), validation_data=(problem.X_val, problem.y_val),
                          early_stopping=stopper, l1=l1, l2=l2, seed=self.seed, initial_epoch=initial_epoch,
                          callbacks=[report])
        epochs_trained = len(history.history.get("loss", []))
        epochs_run = initial_epoch + epochs_trained
        trial.set_attr("epochs_run", epochs_run)
        trial.set_attr("epochs_trained", epochs_trained)   # this trial's own epochs (a promotion's extra ones)
        trial.set_attr("stop_reason", history.stop_reason)
        if history.stop_reason == "non_finite_loss":
            raise FloatingPointError(f"training diverged (non-finite loss) in epoch {epochs_run + 1}")
        # A budgeted trial's checkpoint holds the end state, which a promotion continues from
        # (its weights go with the optimizer state and epoch count beside them), and the best
        # epoch's weights, the model scored, as "scored_params".
        end_state = _checkpoint(model, optimizer, epochs_run) if budgeted else None
        if "flat" in best_weights:
            model.flat_params[...] = best_weights["flat"]
        if budgeted:
            end_state[SCORED_PARAMS] = model.get_state()["flat_params"]
            trial.save_checkpoint(end_state)
        trial.set_attr("refit_epochs", stopper.best_epoch + 1 if "flat" in best_weights else epochs_run)
        trial.set_attr("schedule_epochs", schedule_epochs)
        value = self.score(model, loss, trial)
        if not budgeted:
            self._keep_if_best(trial, value, (model, optimizer, epochs_run))
        return value

    def score(self, model, loss: str, trial) -> float:
        """The validation metric: a classifier's accuracy under its own loss's decision rule
        (comparable across losses), else the validation MSE whatever the training loss."""
        problem = self.problem
        scores = problem.validation_scores(model, loss)
        trial.set_attr("val_loss", scores["loss"])
        if "accuracy" in scores:
            trial.set_attr("val_accuracy", scores["accuracy"])
        value = scores[problem.metric]
        if not math.isfinite(value):
            raise FloatingPointError(f"validation {problem.metric} is {value}")
        return value

    def _keep_if_best(self, trial, value: float, checkpoint) -> None:
        rank = self.problem.rank(value, trial.attrs.get("val_loss"))
        with self._best_lock:
            if self.best_rank is not None and rank >= self.best_rank:
                return
            trial.save_checkpoint(_checkpoint(*checkpoint))
            if self.study is None:         # a copy in a worker: the driver's merge_remote_trial decides
                return
            if self.best_trial_id is not None:
                self.study.storage.delete_checkpoint(self.study.study_id, self.best_trial_id)
            self.best_rank, self.best_trial_id = rank, trial.id

    def merge_remote_trial(self, trial) -> None:
        """In the driving process, after a trial ran in a worker (a copy of this objective, with the
        best rank of when the trial was sent): keep its checkpoint if it is the best so far, else
        drop it, so that one unbudgeted trial holds a checkpoint as in one process."""
        if trial.budget is not None or trial.state != "complete":
            return
        storage, study_id = self.study.storage, self.study.study_id
        rank = self.problem.rank(trial.value, trial.attrs.get("val_loss"))
        with self._best_lock:
            if self.best_rank is not None and rank >= self.best_rank:
                if trial.id != self.best_trial_id:
                    storage.delete_checkpoint(study_id, trial.id)
                return
            if self.best_trial_id is not None and self.best_trial_id != trial.id:
                storage.delete_checkpoint(study_id, self.best_trial_id)
            self.best_rank, self.best_trial_id = rank, trial.id

    # Sent to worker processes with each trial: the data and settings travel; the study (its
    # storage stays with the driver) and the lock do not.
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["study"] = None
        del state["_best_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._best_lock = threading.Lock()

    def forget_best(self) -> None:
        """Let the next trial keep its checkpoint whatever its value (a retrain of the best)."""
        with self._best_lock:
            self.best_rank, self.best_trial_id = None, None


def _checkpoint(model, optimizer, epochs_run):
    from ..checkpoint import checkpoint_state
    return checkpoint_state(model, optimizer, epochs_run)
