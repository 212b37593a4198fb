"""``python -m nnhp.fused --compile`` (compile and measure the kernels now) or ``--show``."""
from __future__ import annotations

import argparse
import os
import sys

from . import calibrate, table


def _acquire_lock(target: str) -> bool:
    """Take the machine-wide calibration lock for ``target`` (False: another process has it)."""
    lock = table.lock_path(target)
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if table.lock_is_live(target):
                return False
            lock.unlink(missing_ok=True)        # left behind by a process that died
            continue
        os.write(handle, str(os.getpid()).encode())
        os.close(handle)
        return True
    return False


def _print_table(target: str, dtype: str) -> None:
    contents = table.load(target)
    speedups = (contents or {"speedups": {}})["speedups"].get(dtype)
    if not speedups:
        print(f"{target} {dtype}: not measured yet")
        return
    print(f"{target} {dtype}: speed-up of the fused kernel over the plain code, by array size "
          f"(used where >= {table.MARGIN}):")
    header = "".join(f"{'2^' + str(size_class):>8}" for size_class in table.CLASSES)
    print(f"  {'family':<28}{header}")
    for family, by_class in sorted(speedups.items()):
        cells = ""
        for size_class in table.CLASSES:
            value = by_class.get(str(size_class))
            cells += f"{'-':>7} " if value is None else f"{value:>7.2f}" + ("*" if value >= table.MARGIN else " ")
        print(f"  {family:<28}{cells}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnhp.fused", description=__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--compile", action="store_true", help="compile the kernels and measure them now")
    action.add_argument("--show", action="store_true", help="print the measurements auto decides by")
    parser.add_argument("--target", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--dtypes", nargs="+", default=["float32"], choices=("float32", "float64"))
    parser.add_argument("--families", nargs="+", choices=calibrate.families(), metavar="FAMILY",
                        help="measure only these kernel families (default: all)")
    parser.add_argument("--classes", nargs="+", type=int, choices=table.CLASSES, metavar="EXPONENT",
                        help="measure only these size classes, by exponent (default: all)")
    parser.add_argument("--background", action="store_true",
                        help="as started by auto: lowest priority, quiet, one per machine")
    args = parser.parse_args(argv)
    if args.show:
        described = ", ".join(f"{key} {value}" for key, value in table.machine(args.target).items())
        print(f"measured for: {described}\nfile: {table.path(args.target)}")
        for dtype in args.dtypes:
            _print_table(args.target, dtype)
        return 0
    if args.background:
        if hasattr(os, "nice"):
            os.nice(19)              # the user's own work comes first
        if not _acquire_lock(args.target):
            return 0
    try:
        progress = None if args.background else (
            lambda family, size_class, value: print(f"  {family:<28} 2^{size_class:<3} {value:6.2f}x", flush=True))
        calibrate.calibrate(args.target, args.dtypes, progress=progress, names=args.families,
                            classes=args.classes)
    finally:
        if args.background:
            table.lock_path(args.target).unlink(missing_ok=True)
    print(f"measured {args.target} {' '.join(args.dtypes)} -> {table.path(args.target)}")
    for dtype in args.dtypes:
        _print_table(args.target, dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main())
