"""benchmarks/bench_sklearn.py: its ratios and verdicts on made-up records, and a tiny real run."""
import importlib.util
import pathlib
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "bench_sklearn.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("bench_sklearn", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_sklearn"] = module
    spec.loader.exec_module(module)
    return module


bench = load_benchmark()


def record(method, seed, seconds, accuracy, dataset="wine"):
    return {"dataset": dataset, "method": method, "seed": seed, "seconds": seconds, "accuracy": accuracy,
            "epochs": 200}


def test_time_ratios_are_medians_of_per_round_ratios_to_nnhp():
    # Round 0 ran on a slow patch of the machine (everything took 10x): the per-round ratios
    # (2, 3, 3) stay what they are, where a ratio of medians would not.
    records = [record(bench.NNHP, 0, 1.0, 0.9), record(bench.SKLEARN, 0, 2.0, 0.8),
               record(bench.NNHP, 1, 0.1, 0.95), record(bench.SKLEARN, 1, 0.3, 0.9),
               record(bench.NNHP, 2, 0.1, 0.97), record(bench.SKLEARN, 2, 0.3, 0.95)]
    rows = bench.summarize(records, ["wine"], [bench.NNHP, bench.SKLEARN])
    ours, theirs = rows
    assert ours["ratio"] == 1.0 and theirs["ratio"] == pytest.approx(3.0)
    assert ours["accuracy"] == 0.95 and (theirs["accuracy_min"], theirs["accuracy_max"]) == (0.8, 0.95)
    text = bench.verdict(rows)
    assert "0.9500 vs scikit-learn's 0.9000 (+0.0500, same or better)" in text and "3.00x" in text
    assert "| wine | scikit-learn | 0.9000 [0.8000, 0.9500] | 0.300 | 3.00x | 200 | 3 |" in bench.table(rows)


def test_a_slower_or_less_accurate_nnhp_is_reported_as_such():
    records = [record(bench.NNHP, 0, 2.0, 0.8), record(bench.SKLEARN, 0, 1.0, 0.9)]
    text = bench.verdict(bench.summarize(records, ["wine"], [bench.NNHP, bench.SKLEARN]))
    assert "(-0.1000, lower)" in text and "fit slower" in text


def test_a_tiny_run_trains_both_libraries_the_same_number_of_epochs():
    pytest.importorskip("sklearn")
    pytest.importorskip("threadpoolctl")
    records = bench.run(["wine"], list(bench.METHODS), seeds=[0], epochs=5, verbose=False)
    assert sorted(r["method"] for r in records) == sorted(bench.METHODS)
    assert all(r["epochs"] == 5 and 0.0 <= r["accuracy"] <= 1.0 and r["seconds"] > 0 for r in records)
