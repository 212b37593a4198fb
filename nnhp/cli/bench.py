"""``nnhp bench optimizers``: optimizers head to head on a workload suite, under AlgoPerf's protocol."""
from __future__ import annotations

import argparse
import os
import sys

from .common import check_output_folder, integer, name_of

_DESCRIPTION = """\
Compare optimizers the way published benchmarks do (DeepOBS, AlgoPerf), on a CPU, in minutes.

On every workload, each optimizer gets the same tuning budget: S studies of T trials over its
own hyperparameters (learning rate; momentum, betas, eps, alpha or rho; weight decay; the
schedule), every trial trained for the workload's full epochs from the same initial weights.
Its time to the workload's validation target is its fastest trial's, median over studies
(a miss counts as never). The best configuration is rerun with several seeds for the final
validation and test metric; PyTorch's defaults run untuned beside it ("adam@defaults").
Across workloads: performance profiles and the AlgoPerf score (1 = fastest everywhere).

Runs are recorded in a study database (--storage, default OUT/bench.db): run the same command
again after a crash or Ctrl-C and it resumes where it stopped. Progress goes to stderr.
"""

_EPILOG = """\
examples:
  nnhp bench optimizers --quick                          the whole protocol in about a minute
  nnhp bench optimizers --out bench-out/ --workers 2     the default suite (about 10 minutes)
  nnhp bench optimizers --workloads digits_mlp deep_tanh --optimizers sgd momentum adam
  nnhp bench optimizers --data my.csv --target label --hidden 64 --epochs 30
"""


def build_bench_parser(subparsers) -> None:
    from ..bench import DEFAULT_OPTIMIZERS, OPTIMIZERS, WORKLOADS
    from ..bench.protocol import SEARCHERS, Budget

    default = Budget()
    parser = subparsers.add_parser(
        "bench", help="compare optimizers head to head (equal tuning budgets, AlgoPerf score)",
        description=_DESCRIPTION, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["optimizers"], help="what to compare (optimizers)")
    suite = parser.add_argument_group("what to compare")
    suite.add_argument("--workloads", nargs="+", type=name_of(WORKLOADS, "workload"), default=None,
                       help=f"workloads from the suite (default: all of {', '.join(WORKLOADS)})")
    suite.add_argument("--optimizers", nargs="+", type=name_of(OPTIMIZERS, "optimizer"),
                       default=None, help=f"default: {' '.join(DEFAULT_OPTIMIZERS)} "
                                          "(with --quick: sgd momentum adam adamw)")
    budget = parser.add_argument_group("the budget (the same for every optimizer)")
    budget.add_argument("--studies", type=integer(1), default=None,
                        help=f"independent tuning studies per optimizer (default {default.studies}; odd is best: "
                             "the median over studies is then one study's time)")
    budget.add_argument("--trials", "--lrs", type=integer(1), default=None,
                        help=f"trials per study (default {default.trials})")
    budget.add_argument("--searcher", choices=SEARCHERS, default=default.searcher,
                        help=f"how trials are proposed (default {default.searcher})")
    budget.add_argument("--seeds", type=integer(1), default=None,
                        help=f"seeds the best configuration and the defaults are rerun with (default {default.seeds})")
    budget.add_argument("--quick", action="store_true",
                        help="a smoke run: 3 studies of 4 trials, 3 seeds, half the epochs, 4 optimizers (about a minute)")
    budget.add_argument("--seed", type=integer(0), default=0, help="seed of the searchers and initial weights")
    data = parser.add_argument_group("your own workload (instead of the suite)")
    data.add_argument("--data", default=None, help="a CSV file (or a built-in data set name) to benchmark on")
    data.add_argument("--target", default=None, help="the CSV's label/target column (default: the last)")
    data.add_argument("--task", default=None, type=name_of(("classification", "regression"), "task"),
                      help="classification | regression (default: guessed from the target column)")
    data.add_argument("--hidden", type=integer(1), nargs="*", default=[128, 64], help="hidden units (default 128 64)")
    data.add_argument("--epochs", type=integer(1), default=20, help="epochs per run (default 20)")
    data.add_argument("--batch-size", type=integer(1), default=64, help="mini-batch size (default 64)")
    out = parser.add_argument_group("output and running")
    out.add_argument("--out", default=None,
                     help="folder for results.md, results.csv, results.json and the plots")
    out.add_argument("--storage", default=None,
                     help="SQLite file recording every run, for resuming (default: OUT/bench.db with --out, "
                          "else kept in memory)")
    out.add_argument("--workers", type=integer(1), default=1,
                     help="trials run side by side in worker processes (default 1)")
    parser.set_defaults(handler=run_bench)


def run_bench(args) -> int:
    import time

    from ..bench import QUICK, Budget, benchmark_optimizers, markdown, ranking_table, user_workload, write_report
    from ..bench import DEFAULT_WORKLOADS

    if args.out:
        check_output_folder(args.out, "--out")            # before the runs, not after them
    storage = args.storage or (os.path.join(args.out, "bench.db") if args.out else None)
    if storage and args.out:
        os.makedirs(args.out, exist_ok=True)
    base = QUICK if args.quick else Budget()
    budget = Budget(studies=args.studies or base.studies, trials=args.trials or base.trials,
                    seeds=args.seeds or base.seeds, lr_factors=base.lr_factors, searcher=args.searcher)
    if args.data is not None:
        if args.workloads:
            raise ValueError("give --data (your own workload) or --workloads (from the suite), not both")
        workloads = [user_workload(args.data, hidden=args.hidden, epochs=args.epochs, batch_size=args.batch_size,
                                   target_column=args.target, task=args.task)]
    else:
        workloads = args.workloads or list(DEFAULT_WORKLOADS)
    started = time.perf_counter()
    result = benchmark_optimizers(workloads, args.optimizers, budget, quick=args.quick, storage=storage,
                                  workers=args.workers, seed=args.seed,
                                  progress=lambda message: print(message, file=sys.stderr, flush=True))
    print(ranking_table(result))
    print(f"\n{len(result.rows)} rows; {time.perf_counter() - started:.1f} s"
          + (f"; runs recorded in {storage}" if storage else ""))
    if args.out:
        for path in write_report(result, args.out):
            print(f"wrote {path}")
    else:
        print(markdown(result).split("## Workloads", 1)[1] if len(result.workloads) == 1 else "", end="")
    return 0
