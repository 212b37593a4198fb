"""``nnhp.tune``: search an MLP's hyperparameters on a data set -- the main job of nnhp.

::

    result = nnhp.tune(X, y, validation_data=(X_val, y_val), timeout=300, n_trials=None)
    result.best_params, result.best_value, result.best_model.predict(X_test)

It is the bridge between the search layer and the engine. ``tune`` builds a
:class:`~nnhp.search.Study` whose objective turns a params dict into an MLP, an optimizer and a
schedule, trains it with :func:`nnhp.fit` and returns the validation metric; then it retrains
the best configuration on training + validation rows.

Files, one step each:

=================  =============================================================================
``space.py``       the default space, the default configuration, the epochs the data needs
``catalogue.py``   every tunable name: its type, its values, when the engine reads it
``build.py``       a params dict -> the MLP, optimizer, schedule and penalties it describes
``objective.py``   one trial: build, (continue from a checkpoint,) train, score, checkpoint
``refit.py``       the best configuration again, on training + validation rows
``progress.py``    the line printed after every trial
``tuner.py``       ``tune()`` itself and ``TuneResult``
=================  =============================================================================

The default space
-----------------
:func:`default_space` lists what is searched (see its table). Any entry can be fixed, narrowed,
removed or added by passing a dict as ``space``::

    nnhp.tune(X, y, space={"optimizer": "adam",                    # fixed
                           "lr": Float(1e-4, 1e-2, log=True),      # narrowed
                           "dropout": None})                       # removed (its default, 0, is used)

A :class:`~nnhp.search.Space` instead of a dict replaces the default space entirely; names it
does not use take the engine's defaults. Either way every name must be one the engine reads, with
values it accepts (:mod:`nnhp.tuning.catalogue`), checked before any trial runs.

Budgets and checkpoints (Hyperband, BOHB)
-----------------------------------------
A trial's epochs are ``trial.budget`` when the searcher gives one, else the ``epochs`` parameter,
else ``max_epochs``. When the searcher promotes a configuration, ``trial.checkpoint`` holds the
parent trial's weights, optimizer state and epoch count (``nnhp.checkpoint.checkpoint_state``); the
objective restores them and trains only from that epoch up to the new budget.

What counts as "best"
---------------------
Classification: validation accuracy (maximized); regression: validation mean squared error
(minimized) -- the same yardstick whatever training loss a trial used. ``metric="loss"`` makes
classification use the validation loss instead (then the training loss is fixed, so that the
numbers compare).
"""
from .build import build_model, build_optimizer, build_schedule
from .progress import ProgressLine
from .refit import fit_params, seconds_per_epoch
from .space import (MAX_LAYERS, OPTIMIZER_NAMES, SCHEDULE_NAMES, default_max_epochs, default_params,
                    default_patience, default_space, initial_config, time_capped_max_epochs)
from .tuner import DEFAULT_SEARCHER, DEFAULT_TRIALS, TuneResult, tune

__all__ = ["tune", "TuneResult", "default_space", "default_params", "default_max_epochs", "default_patience",
           "time_capped_max_epochs", "initial_config", "fit_params", "seconds_per_epoch",
           "build_model", "build_optimizer", "build_schedule", "ProgressLine", "OPTIMIZER_NAMES",
           "SCHEDULE_NAMES", "MAX_LAYERS", "DEFAULT_SEARCHER", "DEFAULT_TRIALS"]
