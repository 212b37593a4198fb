"""What every subcommand shares: the data flags, checked flag types, and output paths checked early.

A flag's value is checked where argparse reads it (``--trials 0`` is refused before anything
loads), with the same validators the library uses (:mod:`nnhp._checks`), and a path the command
will write at the end (``--out``, ``--export``) is checked at the start, so that no work is lost to
a missing folder.
"""
from __future__ import annotations

import argparse
import os
import sys

from .. import _checks

__all__ = ["Parser", "add_data_arguments", "load_split", "data_fingerprint", "DATA_DEFAULTS", "integer",
           "number", "fraction", "name_of", "check_output_file", "check_output_folder", "model_path"]

# The data flags' defaults, shared by every subcommand that loads data (and by --config files,
# whose data keys apply only where the flag was left at its default).
DATA_DEFAULTS = {"data": "digits", "target": None, "task": None, "test_size": 0.25, "val_size": 0.15,
                 "no_standardize": False}


class Parser(argparse.ArgumentParser):
    """argparse, with a bad flag reported as one line (``nnhp tune: error: ...``) and exit code 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


# --- flag types: argparse calls them on the text of a flag --------------------------------------
def _flag_type(convert, check, description: str):
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {description}, got {text!r}") from None
        try:
            return check(value)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = description
    return parse


def integer(low: int = 0):
    """A flag holding an integer >= ``low``."""
    return _flag_type(int, lambda v: _checks.integer(v, "the value", low=low), f"an integer >= {low}")


def number(low: float = 0.0, *, low_open: bool = False, high: float | None = None, high_open: bool = False):
    """A flag holding a finite number in the given bounds."""
    return _flag_type(float, lambda v: _checks.number(v, "the value", low=low, low_open=low_open, high=high,
                                                      high_open=high_open), "a number")


#: A flag holding a fraction strictly between 0 and 1.
fraction = _flag_type(float, lambda v: _checks.fraction(v, "the value"), "a fraction")


def name_of(valid, what: str):
    """A flag holding one of ``valid`` (the nearest is suggested for a typo)."""
    return _flag_type(str, lambda v: _checks.one_of(v, what, valid), what)


# --- data -------------------------------------------------------------------------------------
def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", default=DATA_DEFAULTS["data"],
                       help="built-in data set (digits, moons, spirals, regression) or a CSV file path "
                            "(default: digits)")
    group.add_argument("--target", default=DATA_DEFAULTS["target"],
                       help="CSV only: the column holding the labels/targets (default: the last column)")
    group.add_argument("--task", default=DATA_DEFAULTS["task"], type=name_of(("classification", "regression"), "task"),
                       help="CSV only: classification | regression (default: text or few whole-number "
                            "targets -> classification, other numbers -> regression; see nnhp.data.load_csv)")
    group.add_argument("--test-size", type=fraction, default=DATA_DEFAULTS["test_size"],
                       help="fraction held out for the final test (default 0.25)")
    group.add_argument("--val-size", type=fraction, default=DATA_DEFAULTS["val_size"],
                       help="fraction of the training part used for validation (default 0.15)")
    group.add_argument("--no-standardize", action="store_true",
                       help="do not standardize features, nor (nnhp tune) regression targets "
                            "(standardized with training statistics by default)")


def load_split(args):
    """The data set named by ``--data``, split into train/validation/test and standardized."""
    from .. import data
    dataset = data.load_dataset(args.data, target=args.target, task=getattr(args, "task", None))
    classification = dataset.task == "classification"
    if classification and len(set(dataset.y.tolist())) < 2:
        raise ValueError(f"data set {dataset.name}: the target holds a single class "
                         f"({dataset.class_names[0] if dataset.class_names else dataset.y[0]}); "
                         "classification needs at least two")
    X_train, X_test, y_train, y_test = data.train_test_split(dataset.X, dataset.y, args.test_size, seed=args.seed,
                                                             stratify=classification, name="--test-size")
    X_train, X_val, y_train, y_val = data.train_test_split(X_train, y_train, args.val_size, seed=args.seed,
                                                           stratify=classification, name="--val-size")
    if not args.no_standardize:
        X_train, X_val, X_test = data.standardize(X_train, X_val, X_test)
    return dataset, (X_train, y_train), (X_val, y_val), (X_test, y_test)


def data_fingerprint(args, dataset) -> dict:
    """What a stored study records of the CLI's data: its content (not its path), and the split."""
    from ..data import fingerprint
    return {"data": fingerprint(dataset.X, dataset.y),
            "split": f"test_size={args.test_size}, val_size={args.val_size}, "
                     f"standardized={not args.no_standardize}"}


# --- outputs, checked before the work ------------------------------------------------------------
def model_path(path: str) -> str:
    """The path ``model.save`` writes for ``path`` (``.npz`` appended when missing)."""
    return path if path.endswith(".npz") else path + ".npz"


def check_output_file(path: str, flag: str) -> str:
    from ..checkpoint import check_writable
    return check_writable(path, f"{flag} file")


def check_output_folder(path: str, flag: str) -> str:
    """A folder the command may create or fill: not an existing file, under a folder that exists."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise FileExistsError(f"{flag} {path} is an existing file; {flag} names a folder to write into")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise NotADirectoryError(f"{flag} {path}: {existing} is a file, so no folder can be made there")
    if not os.access(existing, os.W_OK):
        raise PermissionError(f"{flag} {path}: no permission to write in {existing}")
    return path
