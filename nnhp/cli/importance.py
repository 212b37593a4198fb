"""``nnhp importance``: which hyperparameters decide whether a trial is among the best (PED-ANOVA)."""
from __future__ import annotations

import argparse

from .common import fraction, integer


def build_importance_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "importance", help="which hyperparameters matter, with bootstrap intervals",
        description="Read a study file read-only and print each hyperparameter's PED-ANOVA importance "
                    "(nnhp.search.importance: how unlike all trials the best --gamma of them are in that "
                    "parameter, less what chance alone gives) with a 95%% bootstrap interval. The numbers "
                    "are those of nnhp.search.importance.importance(..., seed=SEED) and of nnhp report.",
        epilog="example:\n  nnhp importance study.db --study digits", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study_file", help="the SQLite file a study was stored in")
    parser.add_argument("--study", help="the study's name (default: every study in the file)")
    parser.add_argument("--gamma", type=fraction, default=0.1, help="the fraction of trials counted as the best (default 0.1)")
    parser.add_argument("--bootstrap", type=integer(1), default=100, help="bootstrap resamples (default 100)")
    parser.add_argument("--seed", type=integer(0), default=0, help="seed of the bootstrap and the null (default 0)")
    parser.set_defaults(handler=run_importance)


def run_importance(args) -> int:
    from ..report import load_studies
    from ..search.importance import format_importance, importance

    studies = load_studies(args.study_file)
    if args.study is not None:
        studies = [s for s in studies if s["name"] == args.study]
        if not studies:
            raise ValueError(f"{args.study_file} holds no study named {args.study!r}")
    for study in studies:
        print(f"study {study['name']!r} ({study['direction']}), {len(study['trials'])} trials")
        if study.get("error"):
            print(f"cannot be read: {study['error']}")
            continue
        print(format_importance(importance(study, gamma=args.gamma, n_bootstrap=args.bootstrap, seed=args.seed)))
    return 0
