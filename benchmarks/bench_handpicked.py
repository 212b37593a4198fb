"""The issue-10 check on a stand-in data set: does ``nnhp.tune(timeout=480)`` beat a hand-picked MLP?

Issue 10 reports a hand-picked nnhp MLP (3 x 512 ReLU, dropout 0.3, AdamW lr 1e-3 with weight
decay 0.05, cosine decay over 150 epochs, batch 128, He init) beating the tuner on a held-out
10-class set of a few thousand rows that this repository does not have. This script runs the same
comparison on ``many_classes`` from bench_tune.py (2,400 rows, 40 features, 12 classes; the same
test / validation split as there), one seed per run:

    python benchmarks/bench_handpicked.py [--seed 0] [--timeout 480] [--early-stopping] [--skip-hand-picked]

It prints the hand-picked model's test accuracy (trained on the training rows, as in the issue) and
the tuner's, for the refit model (training + validation rows) and the search's own model.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # bench_env beside this script
import bench_env  # noqa: E402  (first: this checkout on sys.path)

if __name__ == "__main__":
    bench_env.machine_blas()

import argparse  # noqa: E402
import time  # noqa: E402

import bench_tune  # noqa: E402

HAND_PICKED = {"n_layers": 3, "units": 512, "activation": "relu", "dropout": 0.3, "optimizer": "adamw",
               "lr": 1e-3, "adamw_weight_decay": 0.05, "schedule": "cosine", "batch_size": 128, "epochs": 150,
               "init": "he_uniform", "loss": "cross_entropy"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=480.0, help="nnhp.tune's timeout in seconds")
    parser.add_argument("--early-stopping", action="store_true",
                        help="tune with bench_tune.previous_patience: trials stopped on the validation loss and "
                             "scored at their lowest-loss epoch (the default before 2026-12-03)")
    parser.add_argument("--skip-hand-picked", action="store_true", help="only the tuner")
    args = parser.parse_args(argv)
    import nnhp
    from nnhp.tuning import fit_params

    split = bench_tune.make_split(bench_tune.load_dataset("many_classes"), args.seed)
    print(f"many_classes seed {args.seed}: {len(split.X_train)} train / {len(split.X_val)} validation / "
          f"{len(split.X_test)} test rows; load average {os.getloadavg()[0]:.1f}", flush=True)
    if not args.skip_hand_picked:
        start = time.perf_counter()
        model = fit_params(HAND_PICKED, split.X_train, split.y_train, seed=args.seed, n_classes=split.n_classes)
        print(f"hand-picked MLP: test accuracy {bench_tune.nnhp_test_score(model, split):.4f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    patience = bench_tune.previous_patience(split) if args.early_stopping else None
    start = time.perf_counter()
    result = nnhp.tune(split.X_train, split.y_train, validation_data=(split.X_val, split.y_val),
                       loss="cross_entropy", timeout=args.timeout, n_trials=None, seed=args.seed, patience=patience)
    print(f"nnhp.tune(timeout={args.timeout:g}): refit model {bench_tune.nnhp_test_score(result.best_model, split):.4f}, "
          f"search model {bench_tune.nnhp_test_score(result.search_model, split):.4f}; {len(result.study.trials)} trials, "
          f"{time.perf_counter() - start:.0f} s; load average {os.getloadavg()[0]:.1f}")
    print("best params:", result.best_params)


if __name__ == "__main__":
    main()
