"""``nnhp train``: train one MLP on a data set, report its test metrics, optionally save it."""
from __future__ import annotations

import argparse
import sys
import time

from .common import (add_data_arguments, check_output_file, integer, load_split, model_path, name_of, number)

EXAMPLES = """examples:
  nnhp train --data digits --hidden 128 64 --epochs 50 --out model.npz
  nnhp train --data my.csv --target label --optimizer sgd --lr 0.05 --momentum 0.9
  nnhp tune  --data digits --searcher random --trials 30
"""

ACTIVATIONS = ("relu", "leaky_relu", "elu", "tanh", "sigmoid", "identity")
INITS = ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "lecun_normal", "uniform", "normal")
LOSSES = ("cross_entropy", "binary_cross_entropy", "mse", "mae", "huber")
OPTIMIZERS = ("sgd", "adagrad", "adadelta", "rmsprop", "adam", "adamw")


def build_train_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train one MLP and report its test metrics",
        description="Train one MLP on a data set, printing progress each epoch, then report the "
                    "test loss and accuracy and optionally save the model (.npz, loads without pickle).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser)
    model = parser.add_argument_group("model")
    model.add_argument("--hidden", type=integer(1), nargs="*", default=[128, 64],
                       help="units of each hidden layer (default: 128 64)")
    model.add_argument("--activation", default="relu", type=name_of(ACTIVATIONS, "activation"),
                       help="relu | leaky_relu | elu | tanh | sigmoid | identity (default relu)")
    model.add_argument("--dropout", type=number(0.0, high=1.0, high_open=True), default=0.1,
                       help="dropout rate after each hidden layer (default 0.1)")
    model.add_argument("--init", default="xavier_uniform", type=name_of(INITS, "init"),
                       help="xavier_uniform | xavier_normal | he_uniform | he_normal | lecun_normal | "
                            "uniform | normal (default xavier_uniform)")
    model.add_argument("--loss", default=None, type=name_of(LOSSES, "loss"),
                       help="cross_entropy | binary_cross_entropy | mse | mae | huber "
                            "(default: cross_entropy for classification, mse for regression)")
    model.add_argument("--dtype", default="float32", type=name_of(("float32", "float64"), "dtype"),
                       help="float32 | float64 (default float32)")
    model.add_argument("--backend", default=None, type=name_of(("numpy", "cupy"), "backend"),
                       help="numpy | cupy (default: $NNHP_BACKEND or numpy)")
    training = parser.add_argument_group("training")
    training.add_argument("--optimizer", default="adam", type=name_of(OPTIMIZERS, "optimizer"),
                          help="sgd | adagrad | adadelta | rmsprop | adam | adamw")
    training.add_argument("--lr", type=number(0.0, low_open=True), default=1e-3, help="learning rate (default 1e-3)")
    training.add_argument("--momentum", type=number(0.0, high=1.0, high_open=True), default=None,
                          help="momentum (sgd, rmsprop)")
    training.add_argument("--weight-decay", type=number(0.0), default=None, help="the optimizer's weight decay")
    training.add_argument("--epochs", type=integer(1), default=50, help="maximum epochs (default 50)")
    training.add_argument("--batch-size", type=integer(1), default=32, help="mini-batch size (default 32)")
    training.add_argument("--l1", type=number(0.0), default=0.0, help="L1 penalty on weights (default 0)")
    training.add_argument("--l2", type=number(0.0), default=0.0, help="L2 penalty on weights (default 0)")
    training.add_argument("--clip-norm", type=number(0.0, low_open=True), default=None,
                          help="clip the global gradient norm")
    training.add_argument("--patience", type=integer(0), default=None,
                          help="stop after this many epochs without val_loss improvement (default: off)")
    training.add_argument("--seed", type=integer(0), default=0,
                          help="random seed for weights, dropout, shuffling, splits")
    training.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    parser.add_argument("--out", default=None, help="save the trained model to this .npz file")
    parser.set_defaults(handler=run_train)


def _check_loss_fits(loss: str, dataset) -> None:
    from .. import losses
    classification = dataset.task == "classification"
    if losses.get(loss).classification != classification:
        kind = "classification" if classification else "regression"
        fitting = [name for name in LOSSES if losses.get(name).classification == classification]
        raise ValueError(f"--loss {loss} does not fit the data set {dataset.name}, whose target is a {kind} "
                         f"target; use one of {', '.join(fitting)} (or --task to read the target otherwise)")
    if loss == "binary_cross_entropy" and dataset.n_classes != 2:
        raise ValueError(f"--loss binary_cross_entropy needs two classes; {dataset.name} has {dataset.n_classes}")


def run_train(args) -> int:
    import nnhp
    from .. import losses, optim

    out = check_output_file(model_path(args.out), "--out") if args.out else None    # before the work
    dataset, (X_train, y_train), (X_val, y_val), (X_test, y_test) = load_split(args)
    classification = dataset.task == "classification"
    loss = losses.get(args.loss or ("cross_entropy" if classification else "mse")).name   # aliases too
    _check_loss_fits(loss, dataset)
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
    if out:
        print(f"saved model to {model.save(out)}")
    return 0
