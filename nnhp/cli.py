"""The ``nnhp`` command: train a model, tune hyperparameters, benchmark, report.

    nnhp train  --data digits --hidden 128 64 --optimizer adam --lr 1e-3 --epochs 50 --out model.npz
    nnhp tune   --data digits --searcher hyperband --trials 50 --storage study.db
    nnhp bench  optimizers --data digits --out bench-out/
    nnhp report study.db --out report/

``--data`` takes a built-in data set (digits, moons, spirals, regression) or a CSV path
with ``--target COLUMN``. Run ``nnhp COMMAND --help`` for every option.
"""
from __future__ import annotations

import argparse
import sys
import time

from .tuning.tuner import BUDGETED_SEARCHERS, DEFAULT_SEARCHER

EXAMPLES = """examples:
  nnhp train --data digits --hidden 128 64 --epochs 50 --out model.npz
  nnhp train --data my.csv --target label --optimizer sgd --lr 0.05 --momentum 0.9
  nnhp tune  --data digits --searcher random --trials 30
"""


# The data flags' defaults, shared by every subcommand that loads data (and by --config files,
# whose data keys apply only where the flag was left at its default).
DATA_DEFAULTS = {"data": "digits", "target": None, "test_size": 0.25, "val_size": 0.15, "no_standardize": False}


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", default=DATA_DEFAULTS["data"],
                       help="built-in data set (digits, moons, spirals, regression) or a CSV file path "
                            "(default: digits)")
    group.add_argument("--target", default=DATA_DEFAULTS["target"],
                       help="CSV only: the column holding the labels/targets (default: the last column)")
    group.add_argument("--test-size", type=float, default=DATA_DEFAULTS["test_size"],
                       help="fraction held out for the final test (default 0.25)")
    group.add_argument("--val-size", type=float, default=DATA_DEFAULTS["val_size"],
                       help="fraction of the training part used for validation (default 0.15)")
    group.add_argument("--no-standardize", action="store_true",
                       help="do not standardize features (standardized with training statistics by default)")


def load_split(args):
    """The data set named by ``--data``, split into train/validation/test and standardized."""
    from . import data
    dataset = data.load_dataset(args.data, target=args.target)
    classification = dataset.task == "classification"
    X_train, X_test, y_train, y_test = data.train_test_split(dataset.X, dataset.y, args.test_size,
                                                             seed=args.seed, stratify=classification)
    X_train, X_val, y_train, y_val = data.train_test_split(X_train, y_train, args.val_size,
                                                           seed=args.seed, stratify=classification)
    if not args.no_standardize:
        X_train, X_val, X_test = data.standardize(X_train, X_val, X_test)
    return dataset, (X_train, y_train), (X_val, y_val), (X_test, y_test)


def build_train_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train one MLP and report its test metrics",
        description="Train one MLP on a data set, printing progress each epoch, then report the "
                    "test loss and accuracy and optionally save the model (.npz, loads without pickle).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_data_arguments(parser)
    model = parser.add_argument_group("model")
    model.add_argument("--hidden", type=int, nargs="*", default=[128, 64],
                       help="units of each hidden layer (default: 128 64)")
    model.add_argument("--activation", default="relu",
                       help="relu | leaky_relu | elu | tanh | sigmoid | identity (default relu)")
    model.add_argument("--dropout", type=float, default=0.1, help="dropout rate after each hidden layer (default 0.1)")
    model.add_argument("--init", default="xavier_uniform",
                       help="xavier_uniform | xavier_normal | he_uniform | he_normal | lecun_normal | "
                            "uniform | normal (default xavier_uniform)")
    model.add_argument("--loss", default=None,
                       help="cross_entropy | binary_cross_entropy | mse | mae | huber "
                            "(default: cross_entropy for classification, mse for regression)")
    model.add_argument("--dtype", default="float32", help="float32 | float64 (default float32)")
    model.add_argument("--backend", default=None, help="numpy | cupy (default: $NNHP_BACKEND or numpy)")
    training = parser.add_argument_group("training")
    training.add_argument("--optimizer", default="adam", help="sgd | adagrad | adadelta | rmsprop | adam | adamw")
    training.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    training.add_argument("--momentum", type=float, default=None, help="momentum (sgd, rmsprop)")
    training.add_argument("--weight-decay", type=float, default=None, help="the optimizer's weight decay")
    training.add_argument("--epochs", type=int, default=50, help="maximum epochs (default 50)")
    training.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default 32)")
    training.add_argument("--l1", type=float, default=0.0, help="L1 penalty on weights (default 0)")
    training.add_argument("--l2", type=float, default=0.0, help="L2 penalty on weights (default 0)")
    training.add_argument("--clip-norm", type=float, default=None, help="clip the global gradient norm")
    training.add_argument("--patience", type=int, default=None,
                          help="stop after this many epochs without val_loss improvement (default: off)")
    training.add_argument("--seed", type=int, default=0, help="random seed for weights, dropout, shuffling, splits")
    training.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    parser.add_argument("--out", default=None, help="save the trained model to this .npz file")
    parser.set_defaults(handler=run_train)


def run_train(args) -> int:
    import nnhp
    from . import optim
    dataset, (X_train, y_train), (X_val, y_val), (X_test, y_test) = load_split(args)
    classification = dataset.task == "classification"
    from . import losses
    loss = losses.get(args.loss or ("cross_entropy" if classification else "mse")).name   # aliases too
    n_outputs = dataset.n_classes if loss == "cross_entropy" else (
        1 if y_train.ndim == 1 else y_train.shape[1])
    options = {"lr": args.lr}
    if args.momentum is not None:
        options["momentum"] = args.momentum
    if args.weight_decay is not None:
        options["weight_decay"] = args.weight_decay
    optimizer = optim.get(args.optimizer, **options)
    model = nnhp.MLP([X_train.shape[1], *args.hidden, n_outputs], activation=args.activation,
                     dropout=args.dropout, init=args.init, seed=args.seed, dtype=args.dtype,
                     backend=args.backend)
    print(f"data {dataset.name}: {len(X_train)} train / {len(X_val)} validation / {len(X_test)} test, "
          f"{X_train.shape[1]} features, {dataset.task}"
          + (f", {dataset.n_classes} classes" if classification else ""), file=sys.stderr)
    print(f"model {'-'.join(str(s) for s in model.sizes)} ({model.n_params:,} parameters), "
          f"{args.activation}, loss {loss}, {type(optimizer).__name__}(lr={args.lr:g})", file=sys.stderr)
    early = nnhp.EarlyStopping(patience=args.patience) if args.patience is not None else None
    started = time.perf_counter()
    history = nnhp.fit(model, X_train, y_train, loss=loss, optimizer=optimizer, epochs=args.epochs,
                       batch_size=args.batch_size, validation_data=(X_val, y_val), early_stopping=early,
                       l1=args.l1, l2=args.l2, clip_norm=args.clip_norm, seed=args.seed,
                       verbose=not args.quiet)
    seconds = time.perf_counter() - started
    result = nnhp.evaluate(model, X_test, y_test, loss=loss)
    line = f"test loss {result['loss']:.4f}"
    if "accuracy" in result:
        line += f"  test accuracy {100 * result['accuracy']:.2f}%"
    print(f"trained {len(history.epoch)} epochs in {seconds:.1f}s ({history.stop_reason})")
    print(line)
    if args.out:
        model.save(args.out)
        print(f"saved model to {args.out}")
    return 0


def build_bench_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="compare optimizers head to head under one fair protocol",
        description="Compare optimizers on a data set: each gets the same number of learning rates "
                    "(log-uniform), all from the same initial weights; the best rate by validation loss "
                    "is retrained with several seeds. Prints a table; writes CSV, JSON and a plot.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  nnhp bench optimizers --data digits --out bench-out/")
    parser.add_argument("what", choices=["optimizers"], help="what to compare (optimizers)")
    _add_data_arguments(parser)
    parser.add_argument("--optimizers", nargs="+",
                        default=["sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw"],
                        help="which ones: sgd momentum nesterov adagrad adadelta rmsprop adam adamw")
    parser.add_argument("--hidden", type=int, nargs="*", default=[128, 64], help="hidden units (default 128 64)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per run (default 20)")
    parser.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default 64)")
    parser.add_argument("--lrs", type=int, default=6, help="learning rates tried per optimizer (default 6)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds for the best rate (default 5)")
    parser.add_argument("--target-accuracy", type=float, default=0.95,
                        help="validation accuracy whose epochs-to-reach is reported (default 0.95)")
    parser.add_argument("--seed", type=int, default=0, help="seed for splits and the rate draws")
    parser.add_argument("--out", default=None, help="folder for results.csv, results.json, curves.png")
    parser.set_defaults(handler=run_bench)


def run_bench(args) -> int:
    from .compare import compare_optimizers
    dataset, (X_train, y_train), (X_val, y_val), _ = load_split(args)
    if dataset.task != "classification":
        raise ValueError("nnhp bench optimizers compares classifiers; pick a classification data set")
    started = time.perf_counter()
    comparison = compare_optimizers(
        X_train, y_train, (X_val, y_val), optimizers=args.optimizers, hidden=args.hidden, epochs=args.epochs,
        batch_size=args.batch_size, n_lr=args.lrs, n_seeds=args.seeds, target_accuracy=args.target_accuracy,
        seed=args.seed, progress=lambda message: print(f"[{time.perf_counter() - started:6.1f}s] {message}",
                                                       file=sys.stderr, flush=True))
    print(comparison.table())
    if args.out:
        for path in comparison.write(args.out):
            print(f"wrote {path}")
    return 0


# --- nnhp tune ------------------------------------------------------------------------
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
                 "seed": 0, "timeout": None, "workers": 1, "patience": None, "metric": None, "top": 10,
                 "out": None, "export": None, "refit": True}


def build_tune_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "tune", help="search an MLP's hyperparameters (the main job)",
        description="Search the hyperparameters of an MLP on a data set: layers, units, activation, dropout, "
                    "initializer, optimizer and its rate/momentum/betas, schedule, batch size, epochs, L1/L2 "
                    "(see --show-space). Each trial trains with early stopping on a validation split; a "
                    "progress line shows trial k/n, the best score so far and the time spent. At the end: "
                    "the best trials as a table, then the best configuration retrained on training + validation rows (the "
                    "refit), and the test scores of the search's model and of the refit one.",
        epilog=TUNE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_data_arguments(parser)
    search = parser.add_argument_group("search")
    search.add_argument("--config", default=None, help="a TOML file with any of these settings and a [space] table")
    search.add_argument("--searcher", choices=["bohb", "hyperband", "random", "gp", "grid"], default=None,
                        help="how to pick trials: bohb (Hyperband with a model proposing configurations), "
                             "hyperband (stops poor trials early), random, gp (Bayesian optimization) or grid "
                             f"(default {DEFAULT_SEARCHER})")
    search.add_argument("--trials", type=int, default=None,
                        help="how many trials (default: with --timeout, as many as fit; else one full "
                             "iteration of bohb/hyperband, or 50 trials of the others)")
    search.add_argument("--max-epochs", type=int, default=None,
                        help="most epochs a trial trains; early stopping may end it sooner (default: from the "
                             "data's size, 400,000 rows' worth, 27 to 243)")
    search.add_argument("--patience", type=int, default=None,
                        help="stop a trial after this many epochs without a better validation loss "
                             "(default max(10, max-epochs/10))")
    search.add_argument("--metric", choices=["accuracy", "loss"], default=None,
                        help="what 'best' means: validation accuracy (classification default) or loss")
    search.add_argument("--timeout", type=float, default=None,
                        help="start no new trial after this many seconds (without --trials: search until then)")
    search.add_argument("--no-refit", dest="refit", action="store_false", default=None,
                        help="keep the search's model instead of retraining the best configuration on "
                             "training + validation rows")
    search.add_argument("--workers", type=int, default=None, help="trials run at once, in threads (default 1)")
    search.add_argument("--seed", type=int, default=None, help="seed for the split, the search and the weights")
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
    output.add_argument("--top", type=int, default=None, help="rows in the final table (default 10)")
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


def _space_entry(name: str, value):
    """A [space] entry of a config file: a value (fixed), a list (choice) or a {low, high} range."""
    from .search import Float, Int
    if isinstance(value, dict):
        unknown = set(value) - {"low", "high", "log", "reverse_log", "step", "type"}
        if unknown or "low" not in value or "high" not in value:
            raise ValueError(f"[space] {name}: a range needs low and high (and optionally log, reverse_log, step, "
                             f"type = 'int' or 'float'); got {value}")
        kind = value.get("type") or ("int" if all(isinstance(value[k], int) for k in ("low", "high")) else "float")
        if kind == "int":
            return Int(value["low"], value["high"], step=value.get("step", 1), log=value.get("log", False))
        return Float(float(value["low"]), float(value["high"]), log=value.get("log", False),
                     reverse_log=value.get("reverse_log", False))
    return value


def _tune_settings(args, parser_defaults: dict) -> tuple[dict, dict]:
    """(settings, space overrides) from the defaults, then --config, then the flags given."""
    settings = dict(TUNE_DEFAULTS)
    overrides, config = {}, {}
    if args.config:
        import tomllib
        with open(args.config, "rb") as handle:
            config = tomllib.load(handle)
        space_table = config.pop("space", {})
        for name in config.pop("drop", []):
            overrides[name] = None
        for name, value in space_table.items():
            overrides[name] = _space_entry(name, value)
        data_keys = {"data", "target", "test_size", "val_size", "no_standardize"}
        unknown = set(config) - set(TUNE_DEFAULTS) - data_keys
        if unknown:
            raise ValueError(f"{args.config}: unknown settings {sorted(unknown)}; known: "
                             f"{sorted(set(TUNE_DEFAULTS) | data_keys)}, drop, [space]")
        for key in data_keys & set(config):         # data flags left at their defaults yield to the file
            if getattr(args, key) == parser_defaults.get(key):
                setattr(args, key, config[key])
        settings.update({k: v for k, v in config.items() if k in TUNE_DEFAULTS})
    for key in TUNE_DEFAULTS:
        if getattr(args, key, None) is not None:
            settings[key] = getattr(args, key)
    for name in args.drop:
        overrides[name] = None
    for setting in args.settings:
        name, sep, value = setting.partition("=")
        if not sep or not name:
            raise ValueError(f"--set takes NAME=VALUE, got {setting!r}")
        overrides[name.strip()] = _parse_setting_value(value)
    return settings, overrides


def run_tune(args) -> int:
    import nnhp
    from .report import text_table
    from .tuning import ProgressLine, default_max_epochs, default_space

    settings, overrides = _tune_settings(args, DATA_DEFAULTS)
    args.seed = settings["seed"]
    dataset, (X_train, y_train), (X_val, y_val), (X_test, y_test) = load_split(args)
    classification = dataset.task == "classification"
    max_epochs = settings["max_epochs"] or default_max_epochs(len(X_train))
    if args.show_space:
        budgeted = settings["searcher"] in BUDGETED_SEARCHERS
        print(default_space(dataset.task, dataset.n_classes if classification else None, max_epochs,
                            budgeted=budgeted, n_samples=len(X_train)).with_overrides(overrides))
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
    result = nnhp.tune(X_train, y_train, validation_data=(X_val, y_val), space=overrides or None,
                       searcher=settings["searcher"], n_trials=settings["trials"], max_epochs=settings["max_epochs"],
                       storage=settings["storage"], seed=settings["seed"], name=settings["name"], metric=metric,
                       patience=settings["patience"], timeout=settings["timeout"], n_workers=settings["workers"],
                       refit=settings["refit"], callbacks=progress)
    for line in progress:
        line.close()
    study = result.study
    print(text_table({"name": study.name, "direction": study.direction, "trials": study.trials}, top=settings["top"]))
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
        result.best_model.save(settings["out"])
        print(f"saved {reported} to {settings['out']}")
    return 0


def _scores_text(scores: dict) -> str:
    return f"loss {scores['loss']:.4f}" + (f", accuracy {100 * scores['accuracy']:.2f}%" if "accuracy" in scores else "")


def build_report_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="tables and plots of a stored study",
        description="Read a study file (SQLite, from --storage) without changing it and write an HTML "
                    "page with the top trials, the search history, value against each hyperparameter "
                    "and the learning curves (PNG; plots need matplotlib), plus a CSV of all trials.",
        epilog="example:\n  nnhp report study.db --out report/", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study_file", help="the SQLite file a study was stored in")
    parser.add_argument("--out", default="report", help="output folder (default: report/)")
    parser.set_defaults(handler=run_report)


def run_report(args) -> int:
    from .report import load_studies, text_table, write_report
    for study in load_studies(args.study_file):
        print(f"study {study['name']!r} ({study['direction']}), {len(study['trials'])} trials")
        print(text_table(study))
    written = write_report(args.study_file, args.out)
    print(f"wrote {len(written)} files; open {written[0]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnhp", description="nnhp: a from-scratch neural-network and hyperparameter-tuning engine.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for build in SUBCOMMANDS:
        build(subparsers)
    return parser


# Each subcommand is a builder that adds its parser and sets ``handler``.
SUBCOMMANDS = [build_train_parser, build_tune_parser, build_bench_parser, build_report_parser]


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        # Bad input or a missing extra: say it plainly, no traceback.
        print(f"nnhp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nnhp {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
