"""``nnhp bench optimizers``: compare optimizers head to head under one fair protocol."""
from __future__ import annotations

import argparse
import sys
import time

from .common import add_data_arguments, check_output_folder, integer, load_split, number


def build_bench_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="compare optimizers head to head under one fair protocol",
        description="Compare optimizers on a data set: each gets the same number of learning rates "
                    "(log-uniform), all from the same initial weights; the best rate by validation loss "
                    "is retrained with several seeds. Prints a table; writes CSV, JSON and a plot.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  nnhp bench optimizers --data digits --out bench-out/")
    parser.add_argument("what", choices=["optimizers"], help="what to compare (optimizers)")
    add_data_arguments(parser)
    parser.add_argument("--optimizers", nargs="+",
                        default=["sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw"],
                        help="which ones: sgd momentum nesterov adagrad adadelta rmsprop adam adamw")
    parser.add_argument("--hidden", type=integer(1), nargs="*", default=[128, 64],
                        help="hidden units (default 128 64)")
    parser.add_argument("--epochs", type=integer(1), default=20, help="epochs per run (default 20)")
    parser.add_argument("--batch-size", type=integer(1), default=64, help="mini-batch size (default 64)")
    parser.add_argument("--lrs", type=integer(1), default=6, help="learning rates tried per optimizer (default 6)")
    parser.add_argument("--seeds", type=integer(1), default=5, help="seeds for the best rate (default 5)")
    parser.add_argument("--target-accuracy", type=number(0.0, high=1.0), default=0.95,
                        help="validation accuracy whose epochs-to-reach is reported (default 0.95)")
    parser.add_argument("--seed", type=integer(0), default=0, help="seed for splits and the rate draws")
    parser.add_argument("--out", default=None, help="folder for results.csv, results.json, curves.png")
    parser.set_defaults(handler=run_bench)


def run_bench(args) -> int:
    from ..compare import LR_RANGES, compare_optimizers
    from .. import _checks

    if args.out:
        check_output_folder(args.out, "--out")            # before the runs, not after them
    for name in args.optimizers:
        _checks.one_of(name, "optimizer", LR_RANGES)
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
