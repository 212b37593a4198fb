"""``nnhp report``: tables and plots of a stored study, read without changing the file; ``--serve``
shows them on a local page that follows a running study."""
from __future__ import annotations

import argparse
import shutil
import signal
import tempfile

from .common import check_output_folder, integer, number


def build_report_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="tables and plots of a stored study",
        description="Read a study file (SQLite, from --storage) without changing it (SQLite's read-only "
                    "mode) and write an HTML page with the top trials, hyperparameter importance, the search "
                    "history, value against each hyperparameter, parallel coordinates, Hyperband's rungs and "
                    "the learning curves (PNG; plots need matplotlib), every trial in a sortable table, plus a "
                    "CSV of all trials. With --serve, show the page on http://127.0.0.1:PORT/ and keep it "
                    "up to date while a study runs (Ctrl-C stops).",
        epilog="examples:\n  nnhp report study.db --out report/\n  nnhp report study.db --serve --port 8000",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study_file", help="the SQLite file a study was stored in")
    parser.add_argument("--out", default=None, help="output folder (default: report/, or a temporary folder with --serve)")
    parser.add_argument("--serve", action="store_true", help="serve the report on 127.0.0.1 and refresh it")
    parser.add_argument("--port", type=integer(0), default=8000, help="port for --serve (default 8000; 0: any free port)")
    parser.add_argument("--refresh", type=number(1.0), default=5.0, help="seconds between page refreshes (default 5)")
    parser.set_defaults(handler=run_report)


def run_report(args) -> int:
    from ..report import ReportServer, load_studies, text_table, write_report

    if args.serve:
        out = check_output_folder(args.out, "--out") if args.out else tempfile.mkdtemp(prefix="nnhp-report-")
        server = ReportServer(args.study_file, out, port=args.port, refresh=args.refresh)
        # Ctrl-C stops the server even where the shell started us with SIGINT ignored (a background
        # job), which would otherwise leave Python without its KeyboardInterrupt handler.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print(f"serving {args.study_file} on {server.url} (refreshed every {args.refresh:g}s; Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped")
        finally:
            server.close()
            if not args.out:                # our temporary folder: nothing left behind
                shutil.rmtree(out, ignore_errors=True)
        return 0
    out = args.out or "report"
    check_output_folder(out, "--out")
    for study in load_studies(args.study_file):
        print(f"study {study['name']!r} ({study['direction']}), {len(study['trials'])} trials")
        print(text_table(study))
    written = write_report(args.study_file, out)
    print(f"wrote {len(written)} files; open {written[0]}")
    return 0
