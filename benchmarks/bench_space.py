"""What the default search space and budget rules are worth: nnhp.tune with parts switched off.

Every variant runs nnhp.tune (BOHB) with the same total-epochs budget on the same splits as
``bench_tune.py`` (so the figures do not depend on the machine's speed), then the refit, and
reports the median test score over seeds:

    default        the default space, max_epochs from the data's size, the default
                   configuration as the first trial (what ``nnhp.tune`` does)
    no first trial the same without the default configuration first
    epochs 81      the default space, but max_epochs fixed at 81 (the previous default)
    previous space the space before issue 10 (widths 32-256 per layer, depth <= 3, weight decay
                   for AdamW only, constant/cosine/exponential/step schedules, init, betas,
                   nesterov, L1/L2 penalties searched), max_epochs 81, no first trial

    python benchmarks/bench_space.py                     # 4 data sets x 3 seeds, ~15 min on 2 cores
    python benchmarks/bench_space.py --write-results     # also the section in RESULTS.md
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # bench_env beside this script
import bench_env  # noqa: E402  (first: this checkout on sys.path)

if __name__ == "__main__":
    bench_env.machine_blas(one_thread=True)   # the runs go to worker processes

import argparse  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402

import bench_tune  # noqa: E402
from results_md import write_results_section  # noqa: E402

SECTION = "## Default space and budget rules (bench_space.py)"
VARIANTS = ("default", "no first trial", "epochs 81", "previous space")


def previous_space(task: str, n_classes: int | None, max_epochs: int):
    """The default space nnhp.tune searched before issue 10 (budgeted form: no ``epochs``)."""
    from nnhp.search import Choice, Float, Int, Space

    dims = {"n_layers": Int(1, 3), "units_1": Int(32, 256, log=True)}
    for k in (2, 3):
        dims[f"units_{k}"] = Int(32, 256, log=True, when=("n_layers", ">=", k))
    dims.update({
        "activation": Choice(["relu", "leaky_relu", "elu", "tanh"]),
        "dropout": Float(0.0, 0.3),
        "init": Choice(["he_uniform", "he_normal", "xavier_uniform", "xavier_normal", "lecun_normal"]),
        "optimizer": Choice(["adam", "adamw", "sgd", "rmsprop", "adagrad"]),
        "lr": Float(1e-4, 1e-2, log=True, when=("optimizer", "in", ["adam", "adamw", "rmsprop"])),
        "sgd_lr": Float(3e-3, 3e-1, log=True, when=("optimizer", "==", "sgd")),
        "adagrad_lr": Float(3e-3, 3e-1, log=True, when=("optimizer", "==", "adagrad")),
        "momentum": Float(0.5, 0.99, reverse_log=True, when=("optimizer", "==", "sgd")),
        "nesterov": Choice([False, True], when=("optimizer", "==", "sgd")),
        "beta1": Float(0.8, 0.99, reverse_log=True, when=("optimizer", "in", ["adam", "adamw"])),
        "beta2": Float(0.99, 0.9999, reverse_log=True, when=("optimizer", "in", ["adam", "adamw"])),
        "weight_decay": Float(1e-5, 1e-1, log=True, when=("optimizer", "==", "adamw")),
        "schedule": Choice(["constant", "cosine", "exponential", "step"]),
        "lr_decay": Float(0.9, 0.999, reverse_log=True, when=("schedule", "==", "exponential")),
        "step_gamma": Float(0.1, 0.7, when=("schedule", "==", "step")),
        "batch_size": Choice([32, 64, 128]),
        "penalty": Choice(["none", "l2", "l1"]),
        "l2": Float(1e-6, 1e-3, log=True, when=("penalty", "==", "l2")),
        "l1": Float(1e-7, 1e-4, log=True, when=("penalty", "==", "l1")),
    })
    if task == "regression":
        dims["loss"] = Choice(["mse", "huber", "mae"])
    elif n_classes == 2:
        dims["loss"] = Choice(["cross_entropy", "binary_cross_entropy"])
    return Space(dims)


def run(job: dict) -> dict:
    import nnhp
    from nnhp.tuning import default_max_epochs

    split = bench_tune.make_split(bench_tune.load_dataset(job["dataset"]), job["seed"])
    variant = job["variant"]
    kwargs = {}
    if variant == "no first trial":
        kwargs["initial_configs"] = None
    elif variant == "epochs 81":
        kwargs["max_epochs"] = 81
    elif variant == "previous space":
        kwargs.update(max_epochs=81, initial_configs=None,
                      space=previous_space(split.task, split.n_classes, 81))
    began = time.perf_counter()
    result = nnhp.tune(split.X_train, split.y_train, validation_data=(split.X_val, split.y_val), searcher="bohb",
                       n_trials=None, max_total_epochs=job["epochs"], seed=job["seed"], **kwargs)
    return {**job, "test_score": bench_tune.nnhp_test_score(result.best_model, split),
            "search_test_score": bench_tune.nnhp_test_score(result.search_model, split),
            "val_score": result.best_value, "seconds": time.perf_counter() - began,
            "epochs_spent": result.epochs_spent, "max_epochs": result.max_epochs,
            "default_max_epochs": default_max_epochs(len(split.X_train)), "best_params": result.best_params}


def table(records, datasets) -> str:
    lines = ["| data set | " + " | ".join(VARIANTS) + " |", "|---|" + "---:|" * len(VARIANTS)]
    for dataset in datasets:
        cells = []
        for variant in VARIANTS:
            scores = [r["test_score"] for r in records if r["dataset"] == dataset and r["variant"] == variant]
            q1, median, q3 = np.percentile(scores, [25, 50, 75]) if scores else (np.nan,) * 3
            cells.append(f"{median:.4f} [{q1:.4f}, {q3:.4f}]")
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="*", default=["wine", "breast_cancer", "digits", "many_classes"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epoch-budget", type=float, default=4.0,
                        help="total epochs per search, as a multiple of the data set's default max_epochs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)
    from nnhp.tuning import default_max_epochs

    jobs = []
    for dataset in args.datasets:
        split = bench_tune.make_split(bench_tune.load_dataset(dataset), 0)
        epochs = int(args.epoch_budget * default_max_epochs(len(split.X_train)))
        jobs += [{"dataset": dataset, "seed": seed, "variant": variant, "epochs": epochs}
                 for seed in range(args.seeds) for variant in VARIANTS]
    began = time.perf_counter()
    records = []
    with ProcessPoolExecutor(args.workers) as pool:
        for record in pool.map(run, jobs):
            records.append(record)
            print(f"{record['dataset']:<14} seed {record['seed']}  {record['variant']:<15} test {record['test_score']:.4f}"
                  f"  (search model {record['search_test_score']:.4f})  {record['epochs_spent']} epochs"
                  f"  max_epochs {record['max_epochs']}  {record['seconds']:.0f}s", flush=True)
    command = "python benchmarks/bench_space.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = (f"Command: `{command.strip()}`; {bench_tune.machine_description()}; "
            f"{time.perf_counter() - began:.0f} s.\n\nBOHB, {args.epoch_budget:g} x the data set's default max_epochs "
            f"of training in all, {args.seeds} seeds; test score (accuracy; R^2 for regression) of the refit model, "
            f"median [IQR]:\n\n" + table(records, args.datasets))
    print(text)
    if args.write_results:
        write_results_section(text, SECTION)


if __name__ == "__main__":
    main()
