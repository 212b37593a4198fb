"""Search spaces: what a hyperparameter may be, and how to draw, grid and encode it.

A :class:`Space` maps parameter names to *dimensions*::

    space = Space({
        "lr":       Float(1e-4, 1e-1, log=True),       # log-uniform
        "momentum": Float(0.5, 0.99, reverse_log=True, when=("optimizer", "==", "sgd")),
        "n_layers": Int(1, 3),
        "units_2":  Int(32, 512, log=True, when=("n_layers", ">=", 2)),
        "optimizer": Choice(["sgd", "adam"]),
        "epochs":   50,                                 # a plain value is fixed
    })
    params = space.sample(rng)     # {"lr": 0.0031, "n_layers": 1, "optimizer": "adam", "epochs": 50}

Scales
------
For a range ``[low, high]`` and ``u ~ Uniform(0, 1)``:

* linear:       ``x = low + u (high - low)``
* log:          ``log x = log low + u (log high - log low)``  -- equal mass per decade of x
* reverse_log:  ``log(1-x) = log(1-low) + u (log(1-high) - log(1-low))`` -- equal mass per
  decade of ``1 - x``; the natural scale for momenta and Adam's betas, where 0.9, 0.99 and
  0.999 are equally far apart (averaging windows of 10, 100 and 1000 steps).

Conditions
----------
``when=(name, op, value)`` makes a parameter exist only while the condition holds, with
``op`` one of ``== != < <= > >= in "not in"``. A list of such triples means *all* must hold.
A parameter whose parent is itself inactive is inactive. Inactive parameters are simply
absent from a params dict.

The unit hypercube
------------------
Model-based searchers (Gaussian processes) work on ``[0, 1]^d``. :meth:`Space.encode` maps a
params dict there and :meth:`Space.decode` maps any point of the cube back to a valid params
dict. :attr:`Space.encoded_dims` describes each coordinate:

* ``"continuous"``: a Float, ``u`` as in the scales above;
* ``"integer"``: an Int with ``n`` values; value index ``i`` sits at the bin centre
  ``u = (i + 1/2) / n`` and decodes by ``i = floor(u n)`` (log Ints: the same on a log scale
  of ``[low - 1/2, high + 1/2]``), so a uniform ``u`` gives every value its fair share;
* ``"onehot"``: one coordinate per option of a Choice; decoding takes the arg-max of the group.

Fixed values take no coordinates. Coordinates of an inactive parameter are set to a neutral
value (0.5, or 0 for one-hot) and reported by :meth:`Space.active_mask`.
"""
from __future__ import annotations

import copy
import json
import math
import numbers
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

__all__ = ["Space", "Float", "Int", "Choice", "Fixed", "Condition", "EncodedDim", "SpaceError"]


class SpaceError(ValueError):
    """A search space that cannot be searched (its message names the parameter and the problem)."""


# --------------------------------------------------------------------------------------------
# Conditions
# --------------------------------------------------------------------------------------------
_OPERATORS = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
}


@dataclass(frozen=True)
class Condition:
    """``parent op value``: e.g. ``Condition("n_layers", ">=", 3)``."""

    parent: str
    op: str
    value: Any

    def __post_init__(self):
        if not isinstance(self.parent, str):
            raise SpaceError(f"a condition names its parent parameter by a string, got {self.parent!r}")
        if self.op not in _OPERATORS:
            raise SpaceError(f"unknown condition operator {self.op!r}; expected one of {list(_OPERATORS)}")
        if self.op in ("in", "not in"):
            if not isinstance(self.value, (list, tuple)):
                raise SpaceError(f"condition {self.parent} {self.op} ... needs a list of values, got {self.value!r}")
            object.__setattr__(self, "value", tuple(self.value))

    def holds(self, parent_value) -> bool:
        try:
            return bool(_OPERATORS[self.op](parent_value, self.value))
        except TypeError:       # e.g. "relu" >= 3: a mismatched comparison never holds
            return False

    def __str__(self) -> str:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return f"{self.parent} {self.op} {value!r}"

    def to_list(self) -> list:
        return [self.parent, self.op, list(self.value) if isinstance(self.value, tuple) else self.value]


def _parse_conditions(when, name_for_errors: str = "?") -> tuple[Condition, ...]:
    """``None``, a Condition, a ``(parent, op, value)`` triple or a list of those -> tuple."""
    if when is None:
        return ()
    if isinstance(when, Condition):
        return (when,)
    if isinstance(when, tuple) and len(when) == 3 and isinstance(when[0], str) and isinstance(when[1], str):
        return (Condition(*when),)
    if isinstance(when, (list, tuple)):
        conditions = []
        for item in when:
            if isinstance(item, Condition):
                conditions.append(item)
            elif isinstance(item, (list, tuple)) and len(item) == 3:
                conditions.append(Condition(*item))
            else:
                raise SpaceError(f"parameter {name_for_errors!r}: cannot read condition {item!r}; "
                                 "write (parent, op, value), e.g. ('n_layers', '>=', 2)")
        return tuple(conditions)
    raise SpaceError(f"parameter {name_for_errors!r}: cannot read when={when!r}; "
                     "write (parent, op, value), e.g. ('n_layers', '>=', 2), or a list of those")


# --------------------------------------------------------------------------------------------
# Dimensions
# --------------------------------------------------------------------------------------------
def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_json_scalar(value) -> bool:
    return value is None or isinstance(value, (str, bool, int, float)) and not (
        isinstance(value, float) and not math.isfinite(value))


class Dimension:
    """One hyperparameter's set of values. Subclasses: Float, Int, Choice, Fixed."""

    n_encoded = 1
    name = "?"          # filled in by Space, used in error messages

    def __init__(self, when=None):
        self.when = _parse_conditions(when)

    # Every dimension draws by decoding a uniform point, so sampling and the cube agree.
    def sample(self, rng: np.random.Generator):
        return self.decode(rng.random(self.n_encoded))

    def encode(self, value) -> list[float]:
        raise NotImplementedError

    def decode(self, u) -> Any:
        raise NotImplementedError

    def check(self, value):
        """Return ``value`` in canonical form, or raise SpaceError saying why it does not belong."""
        raise NotImplementedError

    def grid(self, points_per_dim: int, max_int_values: int) -> list:
        raise NotImplementedError

    def finite_values(self) -> list | None:
        """All values, for finite dimensions (Int, Choice, Fixed); None for Float."""
        return None

    def neutral_encoding(self) -> list[float]:
        return [0.5] * self.n_encoded

    def _when_dict(self) -> dict:
        return {"when": [c.to_list() for c in self.when]} if self.when else {}

    def _fail(self, problem: str):
        raise SpaceError(f"parameter {self.name!r}: {problem}")


def _check_range(kind: str, low, high):
    if not _is_number(low) or not _is_number(high):
        raise SpaceError(f"{kind} bounds must be numbers, got low={low!r}, high={high!r}")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise SpaceError(f"{kind} bounds must be finite, got low={low!r}, high={high!r}")
    if low >= high:
        raise SpaceError(f"{kind} needs low < high, got low={low!r}, high={high!r} "
                         "(for a single value, write the value itself: it is then fixed)")


class Float(Dimension):
    """A real number in ``[low, high]`` on a linear, log or reverse-log scale (module docstring)."""

    def __init__(self, low: float, high: float, *, log: bool = False, reverse_log: bool = False, when=None):
        super().__init__(when)
        _check_range("Float", low, high)
        if log and reverse_log:
            raise SpaceError(f"Float({low}, {high}): log and reverse_log exclude each other")
        if log and low <= 0:
            raise SpaceError(f"Float({low}, {high}, log=True) needs low > 0, got low={low!r}")
        if reverse_log and high >= 1:
            raise SpaceError(f"Float({low}, {high}, reverse_log=True) samples 1 - x on a log scale, "
                             f"so it needs high < 1, got high={high!r}")
        self.low, self.high = float(low), float(high)
        self.log, self.reverse_log = bool(log), bool(reverse_log)

    # t is the coordinate in which the scale is uniform. Base 10, so that grid points such as
    # 10**-3 come out as the round numbers people write.
    def _to_t(self, x):
        if self.log:
            return math.log10(x)
        if self.reverse_log:
            return -math.log10(1.0 - x)        # increasing in x
        return x

    def _from_t(self, t):
        if self.log:
            return 10.0 ** t
        if self.reverse_log:
            return 1.0 - 10.0 ** -t
        return t

    def encode(self, value) -> list[float]:
        t_low, t_high = self._to_t(self.low), self._to_t(self.high)
        return [(self._to_t(float(value)) - t_low) / (t_high - t_low)]

    def decode(self, u):
        u = min(max(float(np.asarray(u).reshape(-1)[0]), 0.0), 1.0)
        if u == 0.0 or u == 1.0:                # the ends exactly, not up to round-off
            return self.high if u else self.low
        t_low, t_high = self._to_t(self.low), self._to_t(self.high)
        x = self._from_t(t_low + u * (t_high - t_low))
        return min(max(x, self.low), self.high)     # exp/log round-off must not leave the range

    def check(self, value):
        if not _is_number(value) or not math.isfinite(value):
            self._fail(f"expected a finite number, got {value!r}")
        if not self.low <= value <= self.high:
            self._fail(f"{value!r} is outside [{self.low}, {self.high}]")
        return float(value)

    def grid(self, points_per_dim: int, max_int_values: int) -> list:
        if points_per_dim == 1:
            return [self.decode(0.5)]
        return [self.decode(i / (points_per_dim - 1)) for i in range(points_per_dim)]

    def to_dict(self) -> dict:
        return {"type": "Float", "low": self.low, "high": self.high, "log": self.log,
                "reverse_log": self.reverse_log, **self._when_dict()}

    def __repr__(self) -> str:
        scale = ", log=True" if self.log else ", reverse_log=True" if self.reverse_log else ""
        return f"Float({self.low!r}, {self.high!r}{scale})"


class Int(Dimension):
    """An integer in ``{low, low + step, ..., high}``, or log-scaled in ``[low, high]`` (step 1)."""

    def __init__(self, low: int, high: int, *, step: int = 1, log: bool = False, when=None):
        super().__init__(when)
        for label, value in (("low", low), ("high", high), ("step", step)):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise SpaceError(f"Int {label} must be an integer, got {value!r}")
        _check_range("Int", low, high)
        if step < 1:
            raise SpaceError(f"Int({low}, {high}) needs step >= 1, got step={step}")
        if (high - low) % step:
            raise SpaceError(f"Int({low}, {high}, step={step}): the step does not fit; high - low = "
                             f"{high - low} is not a multiple of {step} (try high={low + (high - low) // step * step})")
        if log and step != 1:
            raise SpaceError(f"Int({low}, {high}, step={step}, log=True): a log scale and a step exclude each other")
        if log and low < 1:
            raise SpaceError(f"Int({low}, {high}, log=True) needs low >= 1, got low={low}")
        self.low, self.high, self.step, self.log = int(low), int(high), int(step), bool(log)
        self.n_values = (self.high - self.low) // self.step + 1

    # Log Ints live on a log scale of [low - 1/2, high + 1/2], so each integer owns the
    # stretch of reals that rounds to it.
    def _log_edges(self):
        return math.log(self.low - 0.5), math.log(self.high + 0.5)

    def encode(self, value) -> list[float]:
        if self.log:
            a, b = self._log_edges()
            return [(math.log(value) - a) / (b - a)]
        index = (int(value) - self.low) // self.step
        return [(index + 0.5) / self.n_values]

    def decode(self, u):
        u = min(max(float(np.asarray(u).reshape(-1)[0]), 0.0), 1.0)
        if self.log:
            a, b = self._log_edges()
            return min(max(int(round(math.exp(a + u * (b - a)))), self.low), self.high)
        index = min(int(u * self.n_values), self.n_values - 1)
        return self.low + index * self.step

    def check(self, value):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            self._fail(f"expected an integer, got {value!r}")
        if not self.low <= value <= self.high:
            self._fail(f"{value!r} is outside [{self.low}, {self.high}]")
        if (value - self.low) % self.step:
            self._fail(f"{value!r} is not on the step {self.step} grid starting at {self.low}")
        return int(value)

    def finite_values(self) -> list:
        return list(range(self.low, self.high + 1, self.step))

    def grid(self, points_per_dim: int, max_int_values: int) -> list:
        """Every value when there are at most ``max_int_values``; else ``points_per_dim`` of them
        spread evenly on the Int's own scale (log when log)."""
        if self.n_values <= max_int_values:
            return self.finite_values()
        if self.log:
            points = np.exp(np.linspace(math.log(self.low), math.log(self.high), points_per_dim))
            values = [min(max(int(round(p)), self.low), self.high) for p in points]
        else:
            indices = np.round(np.linspace(0, self.n_values - 1, points_per_dim)).astype(int)
            values = [self.low + int(i) * self.step for i in indices]
        return sorted(set(values))

    def to_dict(self) -> dict:
        return {"type": "Int", "low": self.low, "high": self.high, "step": self.step, "log": self.log,
                **self._when_dict()}

    def __repr__(self) -> str:
        extra = ", log=True" if self.log else f", step={self.step}" if self.step != 1 else ""
        return f"Int({self.low}, {self.high}{extra})"


class Choice(Dimension):
    """One of a list of options (str, int, float, bool or None), all equally likely."""

    def __init__(self, options, *, when=None):
        super().__init__(when)
        if isinstance(options, (str, bytes)) or not hasattr(options, "__iter__"):
            raise SpaceError(f"Choice needs a list of options, got {options!r}")
        options = list(options)
        if not options:
            raise SpaceError("Choice needs at least one option, got an empty list")
        for option in options:
            if not _is_json_scalar(option):
                raise SpaceError(f"Choice options must be str, int, float, bool or None "
                                 f"(so that a study can store them), got {option!r}")
        seen = []
        for option in options:
            if any(self._same(option, other) for other in seen):
                raise SpaceError(f"Choice option {option!r} is listed twice in {options!r}")
            seen.append(option)
        self.options = options
        self.n_encoded = len(options)
        self.n_values = len(options)

    @staticmethod
    def _same(a, b) -> bool:
        # True == 1 in Python; a Choice of [1, True] holds two different options.
        return a == b and isinstance(a, bool) == isinstance(b, bool)

    def index(self, value) -> int:
        for i, option in enumerate(self.options):
            if self._same(option, value):
                return i
        self._fail(f"{value!r} is not one of {self.options!r}")

    def sample(self, rng: np.random.Generator):
        return self.options[int(rng.integers(len(self.options)))]

    def encode(self, value) -> list[float]:
        one_hot = [0.0] * len(self.options)
        one_hot[self.index(value)] = 1.0
        return one_hot

    def decode(self, u):
        return self.options[int(np.argmax(np.asarray(u, dtype=float).reshape(-1)))]

    def neutral_encoding(self) -> list[float]:
        return [0.0] * len(self.options)

    def check(self, value):
        return self.options[self.index(value)]

    def finite_values(self) -> list:
        return list(self.options)

    def grid(self, points_per_dim: int, max_int_values: int) -> list:
        return list(self.options)

    def to_dict(self) -> dict:
        return {"type": "Choice", "options": list(self.options), **self._when_dict()}

    def __repr__(self) -> str:
        return f"Choice({self.options!r})"


class Fixed(Dimension):
    """A value that does not vary. A plain value in a Space dict means ``Fixed(value)``."""

    n_encoded = 0

    def __init__(self, value, *, when=None):
        super().__init__(when)
        if not _is_json_scalar(value):
            raise SpaceError(f"a fixed value must be str, int, float, bool or None, got {value!r}")
        self.value = value

    def sample(self, rng):
        return self.value

    def encode(self, value) -> list[float]:
        return []

    def decode(self, u):
        return self.value

    def check(self, value):
        if not Choice._same(value, self.value):
            self._fail(f"is fixed to {self.value!r}, got {value!r}")
        return self.value

    def finite_values(self) -> list:
        return [self.value]

    def grid(self, points_per_dim: int, max_int_values: int) -> list:
        return [self.value]

    def to_dict(self) -> dict:
        return {"type": "Fixed", "value": self.value, **self._when_dict()}

    def __repr__(self) -> str:
        return f"Fixed({self.value!r})"


_DIMENSION_TYPES = {"Float": Float, "Int": Int, "Choice": Choice, "Fixed": Fixed}


def dimension_from_dict(spec: dict) -> Dimension:
    spec = dict(spec)
    kind = spec.pop("type")
    when = spec.pop("when", None)
    when = [tuple(c) for c in when] if when else None
    if kind == "Choice":
        return Choice(spec["options"], when=when)
    if kind == "Fixed":
        return Fixed(spec["value"], when=when)
    return _DIMENSION_TYPES[kind](spec.pop("low"), spec.pop("high"), **spec, when=when)


def _condition_never_holding(dim: Dimension, dims: dict) -> Condition | None:
    """The first condition of ``dim`` that no value of its parent can satisfy (checked for
    finite parents, and order comparisons against a Float's range), else None."""
    for condition in dim.when:
        parent = dims[condition.parent]
        values = parent.finite_values()
        if values is None and isinstance(parent, Float) and _is_number(condition.value):
            if condition.op == "==" and not parent.low <= condition.value <= parent.high:
                return condition
            if condition.op in ("<", "<=", ">", ">="):
                values = [parent.low, parent.high]      # monotone: if any value holds, an end does
        if values is not None and not any(condition.holds(v) for v in values):
            return condition
    return None


# --------------------------------------------------------------------------------------------
# The space
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EncodedDim:
    """One coordinate of the unit-cube encoding.

    ``kind`` is "continuous", "integer" or "onehot"; ``n_values`` counts an Int's values or a
    Choice's options (None for Floats); ``option`` is the Choice option a one-hot coordinate
    stands for; ``group`` lists the indices of every coordinate of the same parameter.
    """

    index: int
    param: str
    kind: str
    n_values: int | None = None
    option: Any = None
    group: tuple[int, ...] = ()


class Space:
    """A named set of dimensions; see the module docstring."""

    def __init__(self, params: dict):
        if isinstance(params, Space):
            params = params.dims
        if not isinstance(params, dict) or not params:
            raise SpaceError(f"a Space needs a non-empty dict of parameters, got {params!r}")
        dims = {}
        for name, dim in params.items():
            if not isinstance(name, str) or not name:
                raise SpaceError(f"parameter names must be non-empty strings, got {name!r}")
            if not isinstance(dim, Dimension):
                if isinstance(dim, (list, tuple, dict, set)):
                    raise SpaceError(f"parameter {name!r}: {dim!r} is neither a dimension nor a fixed value; "
                                     f"for a choice write Choice({list(dim)!r})")
                try:
                    dim = Fixed(dim)
                except SpaceError as exc:
                    raise SpaceError(f"parameter {name!r}: {exc}") from None
            dim = copy.copy(dim)        # the Space owns its dimensions (and writes their names)
            dim.name = name
            dims[name] = dim
        self.dims: dict[str, Dimension] = dims
        self.order = self._dependency_order()
        self._check_conditions()
        self.encoded_dims, self._slices = self._layout()

    # --- structure ----------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self.dims)

    @property
    def n_encoded(self) -> int:
        return len(self.encoded_dims)

    def __len__(self) -> int:
        return len(self.dims)

    def __contains__(self, name) -> bool:
        return name in self.dims

    def __getitem__(self, name) -> Dimension:
        return self.dims[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.dims)

    def __repr__(self) -> str:
        lines = []
        for name, dim in self.dims.items():
            when = " when " + " and ".join(map(str, dim.when)) if dim.when else ""
            lines.append(f"    {name!r}: {dim!r}{when},")
        return "Space({\n" + "\n".join(lines) + "\n})"

    def _dependency_order(self) -> list[str]:
        """Declaration order, except that a parameter always follows the parents of its conditions."""
        for name, dim in self.dims.items():
            for condition in dim.when:
                if condition.parent not in self.dims:
                    raise SpaceError(f"parameter {name!r}: its condition {condition} names {condition.parent!r}, "
                                     f"which is not in the space {list(self.dims)}")
                if condition.parent == name:
                    raise SpaceError(f"parameter {name!r}: its condition {condition} refers to itself")
        order, placed, visiting = [], set(), []

        def place(name):
            if name in placed:
                return
            if name in visiting:
                cycle = " -> ".join(visiting[visiting.index(name):] + [name])
                raise SpaceError(f"parameter {name!r}: conditions form a cycle ({cycle})")
            visiting.append(name)
            for condition in self.dims[name].when:
                place(condition.parent)
            visiting.pop()
            placed.add(name)
            order.append(name)

        for name in self.dims:
            place(name)
        return order

    def _check_conditions(self):
        """A condition that no value of its parent can satisfy leaves a dead parameter: an error."""
        for name, dim in self.dims.items():
            condition = _condition_never_holding(dim, self.dims)
            if condition is not None:
                parent = self.dims[condition.parent]
                values = parent.finite_values()
                takes = f"takes the values {values}" if values is not None else f"lies in [{parent.low}, {parent.high}]"
                raise SpaceError(f"parameter {name!r}: its condition {condition} can never hold; "
                                 f"{condition.parent!r} {takes}")

    def _layout(self):
        encoded, slices = [], {}
        for name, dim in self.dims.items():
            start = len(encoded)
            group = tuple(range(start, start + dim.n_encoded))
            if isinstance(dim, Float):
                encoded.append(EncodedDim(start, name, "continuous", group=group))
            elif isinstance(dim, Int):
                encoded.append(EncodedDim(start, name, "integer", n_values=dim.n_values, group=group))
            elif isinstance(dim, Choice):
                for i, option in enumerate(dim.options):
                    encoded.append(EncodedDim(start + i, name, "onehot", n_values=dim.n_values,
                                              option=option, group=group))
            slices[name] = slice(start, start + dim.n_encoded)
        return encoded, slices

    # --- which parameters exist -----------------------------------------------------------
    def is_active(self, name: str, params: dict) -> bool:
        """True when every condition of ``name`` holds in ``params`` (a parent that is absent fails)."""
        return all(c.parent in params and c.holds(params[c.parent]) for c in self.dims[name].when)

    def _assign(self, value_of) -> dict:
        """Walk the parameters in dependency order, asking ``value_of(name, dim)`` for each active one."""
        params = {}
        for name in self.order:
            if self.is_active(name, params):
                params[name] = value_of(name, self.dims[name])
        return {name: params[name] for name in self.dims if name in params}     # declaration order

    # --- drawing --------------------------------------------------------------------------
    def sample(self, rng=None) -> dict:
        """One random point: each active parameter drawn from its own scale. ``rng``: a seed or Generator."""
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return self._assign(lambda name, dim: dim.sample(rng))

    def validate(self, params: dict) -> dict:
        """Return ``params`` in canonical form; raise SpaceError naming any parameter that is
        missing, unknown, out of range, or present although its condition does not hold."""
        if not isinstance(params, dict):
            raise SpaceError(f"expected a dict of parameters, got {params!r}")
        unknown = [name for name in params if name not in self.dims]
        if unknown:
            raise SpaceError(f"unknown parameter(s) {unknown}; the space has {list(self.dims)}")

        def value_of(name, dim):
            if name not in params:
                raise SpaceError(f"parameter {name!r} is missing (it is active here)")
            return dim.check(params[name])

        canonical = self._assign(value_of)
        extra = [name for name in params if name not in canonical]
        if extra:
            name = extra[0]
            conditions = " and ".join(map(str, self.dims[name].when))
            raise SpaceError(f"parameter {name!r} is given but inactive: its condition {conditions} does not hold")
        return canonical

    def key(self, params: dict) -> str:
        """A hashable fingerprint of a point, equal for equal points (for duplicate detection)."""
        return json.dumps({name: params[name] for name in self.dims if name in params}, sort_keys=True)

    # --- the unit hypercube -----------------------------------------------------------------
    def encode(self, params: dict) -> np.ndarray:
        """``params`` -> a point of ``[0, 1]^d``; inactive coordinates get a neutral value."""
        u = np.empty(self.n_encoded)
        for name, dim in self.dims.items():
            if name in params:
                u[self._slices[name]] = dim.encode(params[name])
            else:
                u[self._slices[name]] = dim.neutral_encoding()
        return u

    def active_mask(self, params: dict) -> np.ndarray:
        """Boolean mask over the encoded coordinates: True where the parameter is active."""
        mask = np.zeros(self.n_encoded, dtype=bool)
        for name in params:
            if name in self._slices:
                mask[self._slices[name]] = True
        return mask

    def decode(self, u) -> dict:
        """Any point of the cube (clipped to it) -> a valid params dict."""
        u = np.asarray(u, dtype=float).reshape(-1)
        if u.shape[0] != self.n_encoded:
            raise ValueError(f"expected a point with {self.n_encoded} coordinates, got {u.shape[0]}")
        if not np.all(np.isfinite(u)):
            raise ValueError(f"cannot decode a point with non-finite coordinates: {u}")
        u = np.clip(u, 0.0, 1.0)
        return self._assign(lambda name, dim: dim.decode(u[self._slices[name]]))

    def snap(self, u) -> np.ndarray:
        """The encoding of the point ``u`` decodes to (integers on bin centres, one-hots exact)."""
        return self.encode(self.decode(u))

    # --- enumeration --------------------------------------------------------------------------
    def grid(self, points_per_dim: int = 5, max_int_values: int = 16) -> Iterator[dict]:
        """Every grid point, in a fixed order: the first parameter varies slowest, like
        ``itertools.product``. Inactive parameters are skipped, so a conditional branch is
        crossed only with the values that activate it."""
        if not isinstance(points_per_dim, int) or points_per_dim < 1:
            raise ValueError(f"points_per_dim must be a positive integer, got {points_per_dim!r}")
        grids = {name: dim.grid(points_per_dim, max_int_values) for name, dim in self.dims.items()}

        def extend(position: int, params: dict):
            if position == len(self.order):
                yield {name: params[name] for name in self.dims if name in params}
                return
            name = self.order[position]
            if not self.is_active(name, params):
                yield from extend(position + 1, params)
                return
            for value in grids[name]:
                params[name] = value
                yield from extend(position + 1, params)
            del params[name]

        yield from extend(0, {})

    def is_finite(self) -> bool:
        return all(dim.finite_values() is not None for dim in self.dims.values())

    def size(self, limit: int = 100_000) -> float:
        """How many distinct points a space of only Ints/Choices/fixed values holds
        (``math.inf`` with any Float, or beyond ``limit``)."""
        cache = self.__dict__.setdefault("_sizes", {})
        if limit not in cache:
            count = 0
            if self.is_finite():
                for _ in self.grid(1, max_int_values=10**12):
                    count += 1
                    if count > limit:
                        break
            cache[limit] = count if self.is_finite() and count <= limit else math.inf
        return cache[limit]

    # --- changing and storing -----------------------------------------------------------------
    def with_overrides(self, overrides: dict | None) -> "Space":
        """A new Space with some entries replaced: a Dimension narrows or widens a parameter,
        a plain value fixes it, a list makes it a Choice, ``None`` removes it. A replacement keeps
        the original's condition unless it declares its own. New names are added at the end.

        Parameters the change leaves unreachable go too: fixing ``n_layers`` to 1 removes
        ``units_2``; removing ``optimizer`` removes ``momentum``. (A parameter named in
        ``overrides`` itself is never dropped: if it is unreachable, that is an error.)
        """
        dims = dict(self.dims)
        for name, replacement in (overrides or {}).items():
            if replacement is None:
                dims.pop(name, None)
                continue
            if not isinstance(replacement, Dimension):
                replacement = Choice(replacement) if isinstance(replacement, (list, tuple)) else Fixed(replacement)
            if name in self.dims and not replacement.when and self.dims[name].when:
                replacement = copy.copy(replacement)
                replacement.when = self.dims[name].when
            dims[name] = replacement
        explicit = set(overrides or {})
        while True:
            unreachable = [name for name, dim in dims.items() if name not in explicit and (
                any(c.parent not in dims for c in dim.when) or _condition_never_holding(dim, dims) is not None)]
            if not unreachable:
                return Space(dims)
            for name in unreachable:
                del dims[name]

    def to_dict(self) -> dict:
        return {name: dim.to_dict() for name, dim in self.dims.items()}

    @classmethod
    def from_dict(cls, spec: dict) -> "Space":
        return cls({name: dimension_from_dict(entry) for name, entry in spec.items()})

    def __eq__(self, other) -> bool:
        return isinstance(other, Space) and self.to_dict() == other.to_dict()
