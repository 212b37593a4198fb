"""``nnhp tune``: search an MLP's hyperparameters on a data set (the main job), from flags or a TOML file."""
from __future__ import annotations

import argparse
import sys

from ..tuning.tuner import BUDGETED_SEARCHERS, DEFAULT_SEARCHER, EPOCH_SETTING_SEARCHERS
from .common import (DATA_DEFAULTS, add_data_arguments, check_output_file, data_fingerprint, integer, load_split,
                     model_path, number)
from .config import SEARCHERS, read_config

TUNE_EXAMPLES = """examples:
  nnhp tune --data digits                 (BOHB, one full iteration, then the refit)
  nnhp tune --data my.csv --target label --timeout 600    (search for ten minutes)
  nnhp tune --data digits --searcher random --trials 30
  nnhp tune --data digits --searcher hyperband --trials 100 --max-epochs 27 --storage study.db
  nnhp tune --data digits --set optimizer=adam --set batch_size=32,64 --drop dropout
  nnhp tune --config tune.toml            (flags given as well win over the file)
  nnhp tune --show-space                  (list what is tuned, and the ranges)

tune.toml:
  data = "digits"
  searcher = "gp"
  trials = 40
  storage = "study.db"
  drop = ["dropout"]
  [space]
  optimizer = ["adam", "adamw"]              # a list: choose among these
  lr = { low = 1e-4, high = 1e-2, log = true }  # a range (ints -> an integer range)
  batch_size = 64                            # a single value: fixed

A study stored with --storage continues when the same command runs again:
trials a killed run completed are kept, and only the missing ones run.

After the search the best configuration is trained again on the training and
validation rows together (the refit; --no-refit skips it), for the epochs the
search found best. Both models are scored on the test rows.
"""

# Settings of ``nnhp tune`` that a --config file may give too, with their defaults.
TUNE_DEFAULTS = {"searcher": DEFAULT_SEARCHER, "trials": None, "max_epochs": None, "storage": None, "name": "tune",
                 "seed": 0, "timeout": None, "workers": 1, "shared": None, "patience": None, "metric": None, "top": 10,
                 "out": None, "export": None, "refit": True}


def build_tune_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "tune", help="search an MLP's hyperparameters (the main job)",
        description="Search the hyperparameters of an MLP on a data set: layers, units, activation, dropout, "
                    "initializer, optimizer and its rate/momentum/betas, schedule, batch size, epochs, L1/L2 "
                    "(see --show-space). Each trial trains on a training split and is scored on a validation split; a "
                    "progress line shows trial k/n, the best score so far and the time spent. At the end: "
                    "the best trials as a table, then the best configuration retrained on training + validation rows (the "
                    "refit), and the test scores of the search's model and of the refit one.",
        epilog=TUNE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser)
    search = parser.add_argument_group("search")
    search.add_argument("--config", default=None, help="a TOML file with any of these settings and a [space] table")
    search.add_argument("--searcher", choices=SEARCHERS, default=None,
                        help="how to pick trials: bohb (Hyperband with a model proposing configurations), "
                             "hyperband (stops poor trials early), asha (asynchronous successive halving, for "
                             "--workers), random, gp (Bayesian optimization) or grid "
                             f"(default {DEFAULT_SEARCHER})")
    search.add_argument("--trials", type=integer(1), default=None,
                        help="how many trials (default: with --timeout, as many as fit; else one full "
                             "iteration of bohb/hyperband, or 50 trials of the others)")
    search.add_argument("--max-epochs", type=integer(1), default=None,
                        help="most epochs a trial trains (default: from the data's size, 400,000 rows' worth, "
                             "27 to 243)")
    search.add_argument("--patience", type=integer(0), default=None,
                        help="stop a trial after this many epochs without a better validation loss and score "
                             "its best epoch (default: no early stopping; every trial trains its whole budget "
                             "and is scored at its last epoch)")
    search.add_argument("--metric", choices=["accuracy", "loss"], default=None,
                        help="what 'best' means: validation accuracy (classification default) or loss")
    search.add_argument("--timeout", type=number(0.0, low_open=True), default=None,
                        help="start no new trial after this many seconds (without --trials: search until then)")
    search.add_argument("--no-refit", dest="refit", action="store_false", default=None,
                        help="keep the search's model instead of retraining the best configuration on "
                             "training + validation rows")
    search.add_argument("--workers", type=integer(1), default=None,
                        help="trials run at once, in worker processes (default 1; with --dask: the cluster's threads)")
    search.add_argument("--dask", metavar="ADDRESS", default=None,
                        help="run trials on a Dask cluster, e.g. tcp://HOST:8786 (pip install nnhp[dask])")
    search.add_argument("--seed", type=integer(0), default=None, help="seed for the split, the search and the weights")
    search.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE",
                        help="fix a hyperparameter (--set optimizer=adam) or restrict it to a list "
                             "(--set batch_size=32,64); repeatable")
    search.add_argument("--drop", action="append", default=[], metavar="NAME",
                        help="leave a hyperparameter out (the engine's default is used); repeatable")
    search.add_argument("--show-space", action="store_true", help="print the search space and exit")
    output = parser.add_argument_group("output")
    output.add_argument("--storage", default=None,
                        help="SQLite file keeping every trial; running again continues the study")
    output.add_argument("--name", default=None, help="the study's name inside --storage (default tune)")
    output.add_argument("--shared", type=number(0.0, low_open=True), default=None, metavar="SECONDS",
                        help="several nnhp tune processes share the --storage study: each keeps its running "
                             "trials alive with heartbeats, a trial silent this many seconds (its process died) "
                             "is run again, and --trials counts the study's trials, whichever process ran them")
    output.add_argument("--top", type=integer(1), default=None, help="rows in the final table (default 10)")
    output.add_argument("--out", default=None, help="save the best model here (.npz)")
    output.add_argument("--export", default=None, help="write every trial to this .csv or .json file")
    output.add_argument("--quiet", action="store_true", help="no progress line")
    parser.set_defaults(handler=run_tune)


def _parse_setting_value(text: str):
    """'adam' -> 'adam', '32' -> 32, '1e-3' -> 0.001, 'true' -> True, '32,64' -> [32, 64]."""
    if "," in text:
        return [_parse_setting_value(part) for part in text.split(",") if part.strip()]
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _tune_settings(args, parser_defaults: dict) -> tuple[dict, dict]:
    """(settings, space overrides) from the defaults, then --config, then the flags given; each
    setting, name and value checked (``nnhp.cli.config``, ``nnhp.tuning.catalogue``)."""
    from ..tuning.catalogue import check_name
    settings = dict(TUNE_DEFAULTS)
    overrides = {}
    if args.config:
        config, overrides, _ = read_config(args.config)
        for key in set(DATA_DEFAULTS) & set(config):     # data flags left at their defaults yield to the file
            if getattr(args, key) == parser_defaults.get(key):
                setattr(args, key, config[key])
        settings.update({k: v for k, v in config.items() if k in TUNE_DEFAULTS})
    for key in TUNE_DEFAULTS:
        if getattr(args, key, None) is not None:
            settings[key] = getattr(args, key)
    for name in args.drop:
        check_name(name, "--drop")
        overrides[name] = None
    for setting in args.settings:
        name, sep, value = setting.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--set takes NAME=VALUE, got {setting!r}")
        check_name(name, "--set")
        overrides[name] = _parse_setting_value(value)
    return settings, overrides


def run_tune(args) -> int:
    import nnhp
    from ..report import compact_table
    from ..search import StorageError, StudyMismatchError
    from ..tuning import ProgressLine, default_max_epochs
    from ..tuning.tuner import tuned_space

    settings, overrides = _tune_settings(args, DATA_DEFAULTS)
    if settings["shared"] is not None and not settings["storage"]:
        raise ValueError("--shared needs --storage: the processes share the study through its file")
    # Where the results go is checked now, not after the search.
    if settings["out"]:
        settings["out"] = check_output_file(model_path(settings["out"]), "--out")
    if settings["export"]:
        if not settings["export"].endswith((".csv", ".json")):
            raise ValueError(f"--export {settings['export']}: the file name must end in .csv or .json")
        check_output_file(settings["export"], "--export")
    args.seed = settings["seed"]
    dataset, (X_train, y_train), (X_val, y_val), (X_test, y_test) = load_split(args)
    classification = dataset.task == "classification"
    max_epochs = settings["max_epochs"] or default_max_epochs(len(X_train))
    # The space (--set, --drop, [space]) is checked here, before a line of progress is printed.
    space = tuned_space(overrides or None, task=dataset.task, n_classes=dataset.n_classes if classification else None,
                        max_epochs=max_epochs, budgeted=settings["searcher"] in EPOCH_SETTING_SEARCHERS,
                        n_samples=len(X_train), n_features=X_train.shape[1], metric=settings["metric"])
    if args.show_space:
        print(space)
        return 0
    print(f"data {dataset.name}: {len(X_train)} train / {len(X_val)} validation / {len(X_test)} test, "
          f"{X_train.shape[1]} features, {dataset.task}"
          + (f", {dataset.n_classes} classes" if classification else ""), file=sys.stderr)
    budget = [f"{settings['trials']} trials"] if settings["trials"] is not None else []
    if settings["timeout"] is not None:
        budget.append(f"{settings['timeout']:g} s")
    if not budget:
        budget = ["one iteration" if settings["searcher"] in BUDGETED_SEARCHERS else
                  f"{nnhp.tuning.DEFAULT_TRIALS} trials"]
    # With --timeout, no --max-epochs and no --storage, tune may lower the epochs to fit the time.
    capped = settings["timeout"] is not None and settings["max_epochs"] is None and not settings["storage"]
    print(f"searching with {settings['searcher']}: {' or '.join(budget)}, up to {max_epochs} epochs a trial"
          + (" (fewer if the timeout needs)" if capped else "")
          + (f", stored in {settings['storage']}" if settings["storage"] else ""), file=sys.stderr)
    metric = settings["metric"] or ("accuracy" if classification else "loss")
    progress = [] if args.quiet else [ProgressLine(settings["trials"], metric, timeout=settings["timeout"])]
    n_workers, executor, client = _workers(settings["workers"], args.dask)
    try:
        result = nnhp.tune(X_train, y_train, validation_data=(X_val, y_val), space=overrides or None,
                           searcher=settings["searcher"], n_trials=settings["trials"],
                           max_epochs=settings["max_epochs"], storage=settings["storage"], seed=settings["seed"],
                           name=settings["name"], metric=metric, patience=settings["patience"],
                           timeout=settings["timeout"], n_workers=n_workers, executor=executor,
                           refit=settings["refit"], stale_after=settings["shared"],
                           callbacks=progress, fingerprint=data_fingerprint(args, dataset), task=dataset.task,
                           standardize=not args.no_standardize)
    except StudyMismatchError as exc:
        raise StorageError(
            f"the study {exc.study_name!r} in {settings['storage']} was created with other settings, so its "
            f"trials do not apply here: {'; '.join(exc.differences)}. Run with --name {exc.suggested_name} to "
            "start a new study, or use another --storage file") from None
    finally:
        for line in progress:
            line.close()
        if client is not None:
            client.close()
    study = result.study
    print(compact_table({"name": study.name, "direction": study.direction, "trials": study.trials}, top=settings["top"]))
    print(study.summary().splitlines()[0] + f", {result.epochs_spent} epochs trained in all, "
          f"{result.search_seconds:.1f}s")
    if any(t.state == "failed" for t in study.trials):
        print(study.failure_summary())
    shown = f"{100 * result.best_value:.2f}%" if metric == "accuracy" else f"{result.best_value:.5g}"
    print(f"best validation {metric}: {shown} (trial {result.best_trial.id})")
    print("best params: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in result.best_params.items()))
    print(f"search model (trial {result.best_trial.id}, trained on the {len(X_train)} training rows) on the test set: "
          + _scores_text(nnhp.evaluate(result.search_model, X_test, y_test)))
    if result.refit:
        print(f"refit model ({result.refit_epochs} epochs on the {len(X_train) + len(X_val)} training + validation "
              f"rows, {result.refit_seconds:.1f}s) on the test set: "
              + _scores_text(nnhp.evaluate(result.best_model, X_test, y_test)))
    if result.refit_note:
        print(result.refit_note)
    reported = "the refit model" if result.refit else "the search model"
    if settings["export"]:
        export = settings["export"]
        (study.to_json if export.endswith(".json") else study.to_csv)(export)
        print(f"wrote every trial to {export}")
    if settings["out"]:
        written = result.best_model.save(settings["out"])
        print(f"saved {reported} to {written}")
    return 0


def _scores_text(scores: dict) -> str:
    return f"loss {scores['loss']:.4f}" + (f", accuracy {100 * scores['accuracy']:.2f}%" if "accuracy" in scores else "")




def _workers(workers: int, dask_address: str | None):
    """(n_workers, executor, Dask client or None) for --workers and --dask."""
    if dask_address is None:
        return workers, None, None
    try:
        from dask.distributed import Client
    except ImportError:
        raise SystemExit("nnhp tune --dask needs Dask: pip install 'nnhp[dask]'") from None
    client = Client(dask_address)
    n_workers = workers if workers and workers > 1 else max(sum(client.nthreads().values()), 1)
    return n_workers, client.get_executor(), client
