"""``nnhp report``: tables and plots of a stored study, read without changing the file."""
from __future__ import annotations

import argparse

from .common import check_output_folder


def build_report_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="tables and plots of a stored study",
        description="Read a study file (SQLite, from --storage) without changing it (SQLite's read-only "
                    "mode) and write an HTML page with the top trials, the search history, value against "
                    "each hyperparameter and the learning curves (PNG; plots need matplotlib), plus a CSV "
                    "of all trials.",
        epilog="example:\n  nnhp report study.db --out report/", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study_file", help="the SQLite file a study was stored in")
    parser.add_argument("--out", default="report", help="output folder (default: report/)")
    parser.set_defaults(handler=run_report)


def run_report(args) -> int:
    from ..report import load_studies, text_table, write_report

    check_output_folder(args.out, "--out")
    for study in load_studies(args.study_file):
        print(f"study {study['name']!r} ({study['direction']}), {len(study['trials'])} trials")
        print(text_table(study))
    written = write_report(args.study_file, args.out)
    print(f"wrote {len(written)} files; open {written[0]}")
    return 0
