"""The ``nnhp`` command: train a model, tune hyperparameters, benchmark, report.

    nnhp train  --data digits --hidden 128 64 --optimizer adam --lr 1e-3 --epochs 50 --out model.npz
    nnhp tune   --data digits --searcher hyperband --trials 50 --storage study.db
    nnhp bench  optimizers --data digits --out bench-out/
    nnhp report study.db --out report/
    nnhp importance study.db

``--data`` takes a built-in data set (digits, moons, spirals, regression) or a CSV path
with ``--target COLUMN``. Run ``nnhp COMMAND --help`` for every option.

One module per subcommand (``train.py``, ``tune.py``, ``bench.py``, ``report.py``, ``importance.py``), the flags they
share in ``common.py``, the TOML file of ``tune --config`` in ``config.py``. This file runs them:

* a bad flag, a bad file or a bad value ends in **one line** on stderr naming the problem
  (``nnhp tune: error: ...``) and exit code 2 -- never a traceback;
* Ctrl-C (exit 130) and SIGTERM (exit 143) stop a search the same way: the running trial is
  marked interrupted in the study, and the command exits cleanly.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import sys
import threading

from .bench import build_bench_parser, run_bench
from .common import DATA_DEFAULTS, Parser, load_split
from .importance import build_importance_parser, run_importance
from .report import build_report_parser, run_report
from .train import EXAMPLES, build_train_parser, run_train
from .tune import TUNE_DEFAULTS, build_tune_parser, run_tune

__all__ = ["main", "build_parser", "SUBCOMMANDS", "Terminated", "load_split", "DATA_DEFAULTS", "TUNE_DEFAULTS",
           "run_train", "run_tune", "run_bench", "run_report", "run_importance"]

# Each subcommand is a builder that adds its parser and sets ``handler``.
SUBCOMMANDS = [build_train_parser, build_tune_parser, build_bench_parser, build_report_parser,
               build_importance_parser]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it unwinds exactly as Ctrl-C does: a study
    marks the running trial interrupted (``nnhp.search.trial.interrupted_error``) and stops."""


def build_parser() -> Parser:
    import argparse
    parser = Parser(prog="nnhp", description="nnhp: a from-scratch neural-network and hyperparameter-tuning engine.",
                    epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for build in SUBCOMMANDS:
        build(subparsers)
    return parser


def _user_errors() -> tuple:
    """The exceptions that mean bad input, a bad file or a missing extra (exit code 2)."""
    from ..backend import BackendError
    from ..search import StorageError
    return (ValueError, TypeError, OSError, ImportError, MemoryError, StorageError, BackendError, sqlite3.Error)


def _one_line(exc: BaseException) -> str:
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return text or type(exc).__name__


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return args.handler(args)
    except Terminated:
        print(f"nnhp {args.command}: terminated (SIGTERM); the running trial is marked interrupted", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"nnhp {args.command}: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as exc:
        # Bad input, a bad file or a missing extra: say it plainly, no traceback.
        print(f"nnhp {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:                  # a bug: still one line, the traceback on request
        if os.environ.get("NNHP_DEBUG"):
            raise
        print(f"nnhp {args.command}: internal error: {type(exc).__name__}: {_one_line(exc)} "
              "(set NNHP_DEBUG=1 to see the traceback, and please report it)", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
