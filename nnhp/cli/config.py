"""``nnhp tune --config tune.toml``: reading the file, and checking every setting in it.

::

    data = "digits"
    searcher = "gp"
    trials = 40
    drop = ["dropout"]
    [space]
    optimizer = ["adam", "adamw"]                 # a list: choose among these
    lr = { low = 1e-4, high = 1e-2, log = true }  # a range (ints -> an integer range)
    batch_size = 64                               # a single value: fixed

TOML is read with the standard library's ``tomllib`` (Python 3.11+), else with ``tomli`` (the same
parser, for Python 3.10: ``pip install tomli``). Every key is checked for its type and range as the
flag of the same name would be (``trials = "three"`` names ``trials``), an unknown key names the
nearest known one, and a syntax error names the file and the line.
"""
from __future__ import annotations

import importlib

from .. import _checks

__all__ = ["toml_module", "read_config", "space_entry", "check_setting", "SETTING_CHECKS"]


def toml_module():
    """``tomllib`` (Python 3.11+) or, on 3.10, ``tomli``; ImportError saying what to install."""
    for name in ("tomllib", "tomli"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("reading a --config file needs Python 3.11+ (tomllib) or the tomli package; "
                      "pip install tomli")


def _optional(check):
    return lambda value, name: None if value is None else check(value, name)


def _integer(low):
    return _optional(lambda value, name: _checks.integer(value, name, low=low, error=ValueError))


def _positive_number(value, name):
    return _checks.number(value, name, low=0.0, low_open=True, error=ValueError)


def _text(value, name):
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string; got {value!r}")
    return value


def _flag(value, name):
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false; got {value!r}")
    return value


#: The searchers ``nnhp tune --searcher`` offers.
SEARCHERS = ["bohb", "hyperband", "asha", "random", "gp", "grid"]


def _searcher(value, name):
    return _checks.one_of(value, "searcher", SEARCHERS)


def _metric(value, name):
    return None if value is None else _checks.one_of(value, "metric", ["accuracy", "loss"])


def _task(value, name):
    return None if value is None else _checks.one_of(value, "task", ["classification", "regression"])


#: Each setting a config file (or a flag) may give, with its check.
SETTING_CHECKS = {
    "searcher": _searcher, "trials": _integer(1), "max_epochs": _integer(1), "storage": _optional(_text),
    "name": _text, "seed": _integer(0), "timeout": _optional(_positive_number), "workers": _integer(1),
    "shared": _optional(_positive_number),
    "patience": _integer(0), "metric": _metric, "top": _integer(1), "out": _optional(_text),
    "export": _optional(_text), "refit": _flag,
    "data": _text, "target": _optional(_text), "task": _task,
    "test_size": lambda value, name: _checks.fraction(value, name),
    "val_size": lambda value, name: _checks.fraction(value, name), "no_standardize": _flag,
}


def check_setting(key: str, value, where: str):
    try:
        return SETTING_CHECKS[key](value, key)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def space_entry(name: str, value, where: str):
    """A [space] entry: a value (fixed), a list (choice) or a {low, high} table (a range)."""
    from ..search import Float, Int
    if isinstance(value, dict):
        unknown = set(value) - {"low", "high", "log", "reverse_log", "step", "type"}
        if unknown or "low" not in value or "high" not in value:
            raise ValueError(f"{where}: [space] {name}: a range needs low and high (and optionally log, reverse_log, "
                             f"step, type = 'int' or 'float'); got {value}")
        kind = value.get("type") or ("int" if all(isinstance(value[k], int) and not isinstance(value[k], bool)
                                                  for k in ("low", "high")) else "float")
        if kind not in ("int", "float"):
            raise ValueError(f"{where}: [space] {name}: type must be 'int' or 'float'; got {kind!r}")
        for key in ("log", "reverse_log"):
            if not isinstance(value.get(key, False), bool):
                raise ValueError(f"{where}: [space] {name}: {key} must be true or false; got {value[key]!r}")
        try:
            if kind == "int":
                return Int(value["low"], value["high"], step=value.get("step", 1), log=value.get("log", False))
            return Float(_checks.number(value["low"], "low"), _checks.number(value["high"], "high"),
                         log=value.get("log", False), reverse_log=value.get("reverse_log", False))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: [space] {name}: {exc}") from None
    if isinstance(value, list) and not value:
        raise ValueError(f"{where}: [space] {name}: an empty list offers nothing to choose")
    if isinstance(value, (list, str, bool, int, float)):
        return value
    raise ValueError(f"{where}: [space] {name}: expected a value, a list or a {{low, high}} table; got {value!r}")


def read_config(path: str) -> tuple[dict, dict, list]:
    """(settings, space overrides, names to drop) from a TOML file, each checked (module docstring)."""
    from ..tuning.catalogue import check_name
    tomllib = toml_module()
    try:
        with open(path, "rb") as handle:
            config = tomllib.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"config file {path} is a directory") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason})") from None
    space_table = config.pop("space", {})
    if not isinstance(space_table, dict):
        raise ValueError(f"{path}: space must be a table ([space] with one line per hyperparameter); "
                         f"got {space_table!r}")
    drop = config.pop("drop", [])
    if not isinstance(drop, list) or not all(isinstance(name, str) for name in drop):
        raise ValueError(f"{path}: drop must be a list of hyperparameter names, like drop = [\"dropout\"]; "
                         f"got {drop!r}")
    known = set(SETTING_CHECKS)
    for key in config:
        if key not in known:
            raise ValueError(f"{path}: unknown settings {[key]}{_checks.did_you_mean(key, [*known, 'drop', 'space'])}"
                             f"; known: {sorted(known)}, drop, [space]")
    settings = {key: check_setting(key, value, path) for key, value in config.items()}
    for name in drop:
        check_name(name, f"{path}: drop")
    overrides = {name: None for name in drop}
    for name, value in space_table.items():
        check_name(name, f"{path}: [space]")
        overrides[name] = space_entry(name, value, path)
    return settings, overrides, drop

