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

EXAMPLES = """examples:
  nnhp train --data digits --hidden 128 64 --epochs 50 --out model.npz
  nnhp train --data my.csv --target label --optimizer sgd --lr 0.05 --momentum 0.9
  nnhp tune  --data digits --searcher random --trials 30
"""


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", default="digits",
                       help="built-in data set (digits, moons, spirals, regression) or a CSV file path "
                            "(default: digits)")
    group.add_argument("--target", default=None,
                       help="CSV only: the column holding the labels/targets (default: the last column)")
    group.add_argument("--test-size", type=float, default=0.25,
                       help="fraction held out for the final test (default 0.25)")
    group.add_argument("--val-size", type=float, default=0.15,
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
    loss = args.loss or ("cross_entropy" if classification else "mse")
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
SUBCOMMANDS = [build_train_parser, build_bench_parser, build_report_parser]


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
