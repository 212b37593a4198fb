"""Data: checking inputs, built-in data sets, splits, scaling and CSV files.

Every entry point (``fit``, ``evaluate``, ``predict``, ``tune``, the CLI) validates its
arrays here, so a bad input fails where it enters with a message that names the
problem, instead of turning into a silent wrong answer ten calls later.

Built-in data sets:

- ``load_digits()``: scikit-learn's 8x8 handwritten digits (1,797 x 64, 10 classes);
  needs scikit-learn (``pip install 'nnhp[data]'``), which ships the data itself (read
  from its file, without importing scikit-learn).
- ``make_moons``, ``make_spirals``: seeded 2-D classification problems that need nothing.
- ``make_regression``: a seeded nonlinear regression problem.
"""
from __future__ import annotations

import csv
import hashlib
import math
import os
from dataclasses import dataclass, field

import numpy

from . import _checks
from .backend import to_numpy


# --- validation -------------------------------------------------------------------
def _describe_bad_values(values: numpy.ndarray, name: str) -> str:
    nan = numpy.isnan(values)
    inf = numpy.isinf(values)
    parts = []
    if nan.any():
        parts.append(f"{int(nan.sum())} NaN")
    if inf.any():
        parts.append(f"{int(inf.sum())} infinite")
    first = numpy.argwhere(nan | inf)[0]
    where = f"row {first[0]}" + (f", column {first[1]}" if len(first) > 1 else "")
    return f"{name} contains {' and '.join(parts)} value(s) (first at {where})"


def check_X(X, name: str = "X", n_features: int | None = None, dtype=None) -> numpy.ndarray:
    """``X`` as a finite 2-D float array of shape (n_samples, n_features), or a clear error."""
    array = to_numpy(X) if hasattr(X, "__array__") or hasattr(X, "get") else X
    try:
        array = numpy.asarray(array)
    except Exception as exc:
        raise TypeError(f"{name} must be a 2-D numeric array; could not convert it ({exc})") from exc
    if array.dtype == object or not (numpy.issubdtype(array.dtype, numpy.number) or array.dtype == bool):
        raise TypeError(f"{name} must be numeric; got dtype {array.dtype}")
    if numpy.iscomplexobj(array):
        raise TypeError(f"{name} must be real-valued; got dtype {array.dtype}")
    if array.ndim != 2:
        hint = " (use X.reshape(-1, 1) for a single feature)" if array.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {array.shape}{hint}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} has no samples (shape {array.shape})")
    if array.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {array.shape})")
    if n_features is not None and array.shape[1] != n_features:
        raise ValueError(f"{name} has {array.shape[1]} features but the model expects {n_features}")
    if not numpy.issubdtype(array.dtype, numpy.floating):
        array = array.astype(numpy.float64)
    if not numpy.isfinite(array).all():
        raise ValueError(_describe_bad_values(array, name))
    if dtype is not None:
        with numpy.errstate(over="ignore"):
            cast = array.astype(dtype, copy=False)
        if cast is not array and not numpy.isfinite(cast).all():
            # Finite in float64, infinite in float32: say so, and where, not "contains inf".
            first = tuple(numpy.argwhere(~numpy.isfinite(cast))[0])
            count = int((~numpy.isfinite(cast)).sum())
            raise ValueError(f"{name} has {count} value(s) too large for {numpy.dtype(dtype).name} (first "
                             f"{array[first]:.4g} at row {first[0]}, column {first[1]}; "
                             f"{numpy.dtype(dtype).name} holds magnitudes up to {numpy.finfo(dtype).max:.4g}); "
                             "rescale the data (e.g. standardize it) or use dtype='float64'")
        array = cast
    return array


def check_labels(y, n_classes: int | None = None, name: str = "y") -> numpy.ndarray:
    """Integer class labels ``(n,)`` in [0, n_classes), as int64, or a clear error."""
    labels = numpy.asarray(to_numpy(y))
    if labels.ndim != 1:
        raise ValueError(f"{name} labels must be 1-D (n,); got shape {labels.shape}")
    if labels.dtype == object or not (numpy.issubdtype(labels.dtype, numpy.number) or labels.dtype == bool):
        raise TypeError(f"{name} labels must be integers; got dtype {labels.dtype}")
    if numpy.issubdtype(labels.dtype, numpy.floating):
        if not numpy.isfinite(labels).all():
            raise ValueError(_describe_bad_values(labels, name))
        if (labels != numpy.round(labels)).any():
            raise ValueError(f"{name} labels must be whole numbers; got e.g. {labels[labels != numpy.round(labels)][0]}")
    labels = labels.astype(numpy.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"{name} has label {labels.min()}; labels must be in [0, {n_classes or 'n_classes'})")
    if n_classes is not None and labels.size and labels.max() >= n_classes:
        raise ValueError(f"{name} has label {labels.max()}, out of range for a model with "
                         f"{n_classes} outputs (labels must be in [0, {n_classes}))")
    return labels


def check_targets(y, n_outputs: int, name: str = "y") -> numpy.ndarray:
    """Float targets shaped like the outputs ``(n, n_outputs)``; ``(n,)`` allowed for one output."""
    targets = numpy.asarray(to_numpy(y))
    if targets.dtype == object or not (numpy.issubdtype(targets.dtype, numpy.number) or targets.dtype == bool):
        raise TypeError(f"{name} must be numeric; got dtype {targets.dtype}")
    if targets.ndim == 1:
        if n_outputs != 1:
            raise ValueError(f"{name} has shape {targets.shape} but the model has {n_outputs} outputs; "
                             f"expected shape (n, {n_outputs})")
        targets = targets.reshape(-1, 1)
    if targets.ndim != 2 or targets.shape[1] != n_outputs:
        raise ValueError(f"{name} has shape {targets.shape}; expected (n, {n_outputs}) for a model "
                         f"with {n_outputs} outputs")
    targets = targets.astype(numpy.float64, copy=False)
    if not numpy.isfinite(targets).all():
        raise ValueError(_describe_bad_values(targets, name))
    return targets


def fingerprint(*arrays) -> str:
    """Shapes, dtypes and a content hash of ``arrays``: equal exactly when the data is, e.g.
    ``"1000x2 float64, 1000 int64, sha256 3f2a..."`` (what a stored study records of its data)."""
    digest = hashlib.sha256()
    shapes = []
    for array in arrays:
        array = numpy.ascontiguousarray(to_numpy(array))
        digest.update(f"{array.shape}{array.dtype.str}".encode())
        digest.update(memoryview(array).cast("B") if array.dtype != object else repr(array.tolist()).encode())
        shapes.append("x".join(map(str, array.shape)) + f" {array.dtype}")
    return ", ".join(shapes) + f", sha256 {digest.hexdigest()[:16]}"


def check_same_length(X, y, names=("X", "y")) -> None:
    if len(X) != len(y):
        raise ValueError(f"{names[0]} has {len(X)} samples but {names[1]} has {len(y)}")


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    return _checks.integer(value, name, low=minimum, error=ValueError)


def check_fraction(value, name: str) -> float:
    return _checks.fraction(value, name)


# --- data sets --------------------------------------------------------------------
@dataclass
class Dataset:
    """Features, targets and what kind of problem they pose."""

    X: numpy.ndarray
    y: numpy.ndarray
    task: str                       # "classification" | "regression"
    name: str = ""
    feature_names: list = field(default_factory=list)
    class_names: list = field(default_factory=list)

    @property
    def n_classes(self) -> int:
        return int(self.y.max()) + 1 if self.task == "classification" else 0


def load_digits() -> Dataset:
    """scikit-learn's handwritten digits: 1,797 8x8 images (64 features, values 0-16), 10 classes."""
    data = _digits_table()
    return Dataset(data[:, :-1].astype(numpy.float64), data[:, -1].astype(numpy.int64), "classification",
                   "digits", [f"pixel_{i}" for i in range(64)], [str(c) for c in range(10)])


def _digits_table() -> numpy.ndarray:
    """The digits as scikit-learn ships them: ``datasets/data/digits.csv.gz``, 64 pixels and the
    label per row. The file is read where scikit-learn is installed *without importing it*:
    ``import sklearn`` pulls in SciPy and takes about 2 s, which every ``nnhp tune --data digits``
    paid before its first trial (10% of a short parallel search's wall time)."""
    import importlib.util
    try:
        spec = importlib.util.find_spec("sklearn")      # locates the package, runs none of it
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ImportError("the digits data set comes with scikit-learn, which is not installed; "
                          "pip install 'nnhp[data]' (or use data set 'spirals' or 'moons')")
    for folder in spec.submodule_search_locations or ():
        path = os.path.join(folder, "datasets", "data", "digits.csv.gz")
        if os.path.exists(path):
            return numpy.loadtxt(path, delimiter=",")
    from sklearn.datasets import load_digits as sklearn_digits   # the file moved: ask scikit-learn
    bunch = sklearn_digits()
    return numpy.column_stack([bunch.data, bunch.target])


def make_moons(n_samples: int = 1000, noise: float = 0.1, seed=0) -> Dataset:
    """Two interleaving half circles in 2-D (binary classification), with Gaussian noise."""
    n_samples = check_positive_int(n_samples, "n_samples", 2)
    rng = numpy.random.default_rng(seed)
    n_outer = n_samples // 2
    n_inner = n_samples - n_outer
    outer = numpy.linspace(0, math.pi, n_outer)
    inner = numpy.linspace(0, math.pi, n_inner)
    X = numpy.concatenate([numpy.stack([numpy.cos(outer), numpy.sin(outer)], 1),
                           numpy.stack([1 - numpy.cos(inner), 0.5 - numpy.sin(inner)], 1)])
    y = numpy.concatenate([numpy.zeros(n_outer, numpy.int64), numpy.ones(n_inner, numpy.int64)])
    X += rng.normal(0.0, noise, X.shape)
    order = rng.permutation(n_samples)
    return Dataset(X[order], y[order], "classification", "moons", ["x0", "x1"], ["0", "1"])


def make_spirals(n_samples: int = 1500, n_classes: int = 3, noise: float = 0.2, seed=0) -> Dataset:
    """``n_classes`` interleaved spiral arms in 2-D; not linearly separable at all."""
    n_samples = check_positive_int(n_samples, "n_samples", n_classes)
    n_classes = check_positive_int(n_classes, "n_classes", 2)
    rng = numpy.random.default_rng(seed)
    per_class = numpy.full(n_classes, n_samples // n_classes)
    per_class[: n_samples % n_classes] += 1
    points, labels = [], []
    for label, count in enumerate(per_class):
        radius = numpy.linspace(0.05, 1.0, count)
        angle = numpy.linspace(0, 4.0, count) + label * 2 * math.pi / n_classes
        angle = angle + rng.normal(0.0, noise, count)
        points.append(numpy.stack([radius * numpy.sin(angle), radius * numpy.cos(angle)], 1))
        labels.append(numpy.full(count, label, numpy.int64))
    X, y = numpy.concatenate(points), numpy.concatenate(labels)
    order = rng.permutation(n_samples)
    return Dataset(X[order], y[order], "classification", "spirals", ["x0", "x1"],
                   [str(c) for c in range(n_classes)])


def make_regression(n_samples: int = 1000, n_features: int = 5, noise: float = 0.1, seed=0) -> Dataset:
    """A smooth nonlinear target: y = sin(x0) + x1^2 / 2 + x0 x2 - tanh(x3) + noise (extra features are noise)."""
    n_samples = check_positive_int(n_samples, "n_samples", 2)
    n_features = check_positive_int(n_features, "n_features", 4)
    rng = numpy.random.default_rng(seed)
    X = rng.uniform(-2.0, 2.0, (n_samples, n_features))
    y = numpy.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2 + X[:, 0] * X[:, 2] - numpy.tanh(X[:, 3])
    y = y + rng.normal(0.0, noise, n_samples)
    return Dataset(X, y, "regression", "regression", [f"x{i}" for i in range(n_features)])


BUILTIN = {"digits": load_digits, "moons": make_moons, "spirals": make_spirals,
           "regression": make_regression}


TASKS = ("classification", "regression")


def load_dataset(name: str, target: str | None = None, task: str | None = None) -> Dataset:
    """A built-in data set by name, or a CSV file by path (``target``: its label column; ``task``:
    "classification" or "regression" instead of the rule in :func:`load_csv`)."""
    if task is not None:
        _checks.one_of(task, "task", TASKS)
    if name in BUILTIN:
        if target is not None:
            raise ValueError(f"target applies to CSV files; the built-in data set {name!r} has its own")
        dataset = BUILTIN[name]()
        if task is not None and task != dataset.task:
            raise ValueError(f"the built-in data set {name!r} is a {dataset.task} problem; task={task!r} "
                             "does not apply to it")
        return dataset
    if str(name).lower().endswith((".csv", ".tsv", ".txt")):
        return load_csv(name, target, task=task)
    raise ValueError(f"unknown data set {name!r}{_checks.did_you_mean(name, BUILTIN)}; expected a built-in one "
                     f"({', '.join(BUILTIN)}) or the path of a .csv file")


#: The task rule's limits: whole-number targets with at most this many distinct values ...
MAX_CLASSES = 20
#: ... each held by this many rows on average are class labels (two values always are).
MIN_ROWS_PER_CLASS = 5


def target_task(values: numpy.ndarray) -> str:
    """The rule :func:`load_csv` uses for numeric targets: "classification" when every value is a
    whole number and there are at most 2 distinct values, or at most ``MAX_CLASSES`` (20) with
    ``MIN_ROWS_PER_CLASS`` (5) rows each on average; else "regression"."""
    if not (values == numpy.round(values)).all():
        return "regression"
    distinct = len(numpy.unique(values))
    if distinct <= 2 or (distinct <= MAX_CLASSES and len(values) >= MIN_ROWS_PER_CLASS * distinct):
        return "classification"
    return "regression"


def _read_rows(path: str, delimiter: str) -> list[tuple[int, list]]:
    """(line number, fields) of every non-blank row; the file's problems as one ValueError."""
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory, not a CSV file")
    try:
        # utf-8-sig: a byte-order mark (Excel writes one) is not part of the first column's name.
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            return [(reader.line_num, row) for row in reader if row]
    except FileNotFoundError:
        raise FileNotFoundError(f"CSV file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise ValueError(f"{path} is not a readable CSV file: {exc}") from None
    except OSError as exc:
        raise ValueError(f"{path} cannot be read: {exc.strerror or exc}") from None


def _missing(text: str) -> bool:
    if not text:
        return True
    try:
        return math.isnan(float(text))
    except ValueError:
        return False


def load_csv(path: str, target: str | int | None = None, delimiter: str | None = None,
             task: str | None = None) -> Dataset:
    """A CSV file with a header row: numeric feature columns plus one ``target`` column.

    The target is the named column (default: the last). Every target cell must hold a value:
    an empty or NaN one is an error naming its line in the file, as is a feature that is not a
    finite number. The task the target poses, unless ``task`` names it:

    * any target that is not a number: classification (labels mapped to 0..k-1 in sorted order);
    * numbers: :func:`target_task` -- whole numbers with few distinct values (at most 2, or at most
      20 with 5 rows each on average) are class labels (-1/+1 included); anything else regression.

    ``task="classification"`` makes each distinct value a class; ``task="regression"`` needs numbers.
    """
    if task is not None:
        _checks.one_of(task, "task", TASKS)
    path = str(path)
    if delimiter is None:
        delimiter = "\t" if path.lower().endswith(".tsv") else ","
    rows = _read_rows(path, delimiter)
    if len(rows) < 2:
        raise ValueError(f"{path}: expected a header row and at least one data row")
    header, body = [h.strip() for h in rows[0][1]], rows[1:]
    if target is None:
        target_index = len(header) - 1
    elif isinstance(target, int):
        if not -len(header) <= target < len(header):
            raise ValueError(f"{path}: target column {target} does not exist; the file has {len(header)} columns")
        target_index = target % len(header)
    elif target in header:
        target_index = header.index(target)
    else:
        raise ValueError(f"{path}: no column named {target!r}{_checks.did_you_mean(target, header)}; "
                         f"columns are {', '.join(header)}")
    if len(header) < 2:
        raise ValueError(f"{path}: needs at least one feature column besides the target {header[target_index]!r}")
    for line, row in body:
        if len(row) != len(header):
            raise ValueError(f"{path}, line {line}: {len(row)} fields but the header has {len(header)}")
    feature_index = [i for i in range(len(header)) if i != target_index]
    features = numpy.empty((len(body), len(feature_index)))
    for r, (line, row) in enumerate(body):
        for column, i in enumerate(feature_index):
            try:
                features[r, column] = float(row[i])
            except ValueError:
                raise ValueError(f"{path}, line {line}, column {header[i]!r}: "
                                 f"{row[i]!r} is not a number") from None
            if not math.isfinite(features[r, column]):
                raise ValueError(f"{path}, line {line}, column {header[i]!r}: {row[i]!r} is not a finite number")
    target_name = header[target_index]
    raw_target = [row[target_index].strip() for _, row in body]
    for (line, _), value in zip(body, raw_target):
        if _missing(value):
            shown = repr(value) if value else "empty"
            raise ValueError(f"{path}, line {line}: the target {target_name!r} is {shown}; every row needs "
                             "one (drop the row or fill it in)")
    numbers = []
    for (line, _), value in zip(body, raw_target):
        try:
            numbers.append(float(value))
        except ValueError:
            if task == "regression":
                raise ValueError(f"{path}, line {line}: the target {target_name!r} is {value!r}, not a number, "
                                 "but task is regression") from None
            numbers = None
            break
    if numbers is not None:
        values = numpy.array(numbers)
        task = task or target_task(values)
        if task == "classification":
            classes = numpy.unique(values)
            y = numpy.searchsorted(classes, values).astype(numpy.int64)
            class_names = [f"{c:g}" for c in classes]
        else:
            y, class_names = values, []
    else:
        task = "classification"
        class_names = sorted(set(raw_target))
        lookup = {c: i for i, c in enumerate(class_names)}
        y = numpy.array([lookup[v] for v in raw_target], dtype=numpy.int64)
    return Dataset(features, y, task, path, [header[i] for i in feature_index], class_names)


# --- splits and scaling -------------------------------------------------------------
def train_test_split(X, y, test_size: float = 0.25, seed=0, stratify: bool = True, *, name: str = "test_size"):
    """Shuffle and split into (X_train, X_test, y_train, y_test).

    ``stratify`` keeps each class's share the same on both sides for integer labels.
    ``name``: what errors call ``test_size`` (``fit`` passes "validation_split").
    """
    X, y = numpy.asarray(X), numpy.asarray(y)
    check_same_length(X, y)
    test_size = check_fraction(test_size, name)
    rng = numpy.random.default_rng(seed)
    n = len(X)
    if stratify and y.ndim == 1 and numpy.issubdtype(y.dtype, numpy.integer):
        test_index = []
        for label in numpy.unique(y):
            members = rng.permutation(numpy.flatnonzero(y == label))
            test_index.extend(members[: int(round(test_size * len(members)))])
        is_test = numpy.zeros(n, dtype=bool)
        is_test[test_index] = True
        train_index = rng.permutation(numpy.flatnonzero(~is_test))
        test_index = rng.permutation(numpy.flatnonzero(is_test))
    else:
        order = rng.permutation(n)
        n_test = int(round(test_size * n))
        test_index, train_index = order[:n_test], order[n_test:]
    if len(train_index) == 0 or len(test_index) == 0:
        raise ValueError(f"{name}={test_size} leaves an empty side for {n} samples")
    return X[train_index], X[test_index], y[train_index], y[test_index]


class Standardizer:
    """Per-feature standardization: x' = (x - mean) / std, with statistics from the training set.

    Constant features are left centred but unscaled (std taken as 1): those with zero spread, and
    those whose spread is only rounding's residue -- a column of equal values that was standardized
    before keeps a std near 1e-17, and dividing by it would blow the column up.
    """

    def fit(self, X):
        X = check_X(X)
        self.mean = X.mean(axis=0)
        std = X.std(axis=0)
        residue = 1e3 * numpy.finfo(X.dtype).eps * numpy.abs(X).max(axis=0)
        self.std = numpy.where(std > residue, std, 1.0)
        return self

    def transform(self, X):
        if not hasattr(self, "mean"):
            raise RuntimeError("Standardizer.transform called before fit")
        X = check_X(X, n_features=len(self.mean))
        return (X - self.mean) / self.std

    def fit_transform(self, X):
        return self.fit(X).transform(X)


def standardize(X_train, *others):
    """Standardize ``X_train`` and any other arrays with ``X_train``'s mean and std."""
    scaler = Standardizer().fit(X_train)
    scaled = [scaler.transform(X_train)] + [scaler.transform(X) for X in others]
    return scaled[0] if not others else tuple(scaled)
