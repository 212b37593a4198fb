"""The benchmark's outputs (Markdown, CSV, JSON, plots) and the ``nnhp bench optimizers`` command."""
import csv
import json
import math

import pytest

from nnhp.bench import Budget, Workload, benchmark_optimizers, markdown, ranking_table, write_report

TINY = Workload("tiny", "moons, 8 tanh units", "moons", (8,), activation="tanh", batch_size=32, epochs=3,
                data_options=(("n_samples", 200), ("noise", 0.2)))


@pytest.fixture(scope="module")
def result():
    return benchmark_optimizers([TINY], ["sgd", "adam"], Budget(studies=1, trials=3, seeds=2, lr_factors=(0.5, 1, 2)))


def test_ranking_table_lists_every_submission_with_its_score(result):
    table = ranking_table(result)
    lines = table.splitlines()
    assert lines[0].startswith("| rank | submission | AlgoPerf score | targets reached | lr window | tiny |")
    assert len(lines) == 2 + 4
    for rank, submission in enumerate(result.ranking, 1):
        assert f"| {rank} | {submission} | {result.scores[submission]:.3f} |" in table


def test_markdown_states_the_target_and_its_rule(result):
    text = markdown(result)
    assert "## Ranking" in text and "### tiny" in text
    assert "derived from this run (AlgoPerf rule)" in text
    assert "adam@defaults" in text


def test_write_report_files(result, tmp_path):
    paths = write_report(result, str(tmp_path))
    names = sorted(p.rsplit("/", 1)[-1] for p in paths)
    assert names == ["curves.png", "lr_sensitivity.png", "profiles.png", "results.csv", "results.json", "results.md"]
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert {row["submission"] for row in rows} == {"sgd", "adam", "sgd@defaults", "adam@defaults"}
    assert {"steps_to_target", "seconds_to_target", "val_median", "test_q75", "overhead_vs_sgd", "score"} <= set(rows[0])
    document = json.loads((tmp_path / "results.json").read_text())     # strict JSON: no bare Infinity
    assert document["ranking"] == result.ranking
    assert set(document["lr_sweeps"]) == {"tiny/sgd", "tiny/adam"}
    for submission, by_workload in result.ratios.items():
        expected = "inf" if math.isinf(by_workload["tiny"]) else by_workload["tiny"]
        assert document["ratios"][submission]["tiny"] == expected
    assert (tmp_path / "profiles.png").stat().st_size > 1000


def test_lr_window_counts_sweep_rates_near_the_target(result):
    for name in ("sgd", "adam"):
        row = result.row("tiny", name)
        finals = [final for _, _, final in result.sweeps[("tiny", name)]]
        assert row["lr_points"] == 3
        assert row["lr_window"] == sum(f is not None and f <= 1.25 * row["target"] for f in finals)
    assert result.row("tiny", "adam@defaults")["lr_window"] is None


def test_sgd_overhead_is_one(result):
    assert result.row("tiny", "sgd")["overhead_vs_sgd"] == 1.0
    assert result.row("tiny", "adam")["overhead_vs_sgd"] > 0


def test_cli_runs_resumes_and_writes(tmp_path, capsys):
    from nnhp.cli import main
    arguments = ["bench", "optimizers", "--data", "moons", "--optimizers", "sgd", "adam", "--epochs", "2",
                 "--hidden", "8", "--studies", "1", "--trials", "2", "--seeds", "1", "--out", str(tmp_path)]
    assert main(arguments) == 0
    captured = capsys.readouterr()
    assert "| rank | submission |" in captured.out and f"wrote {tmp_path}/profiles.png" in captured.out
    assert "tune 1/1: 2 trials (2 run now)" in captured.err                   # progress on stderr
    assert (tmp_path / "bench.db").exists()
    first = (tmp_path / "results.csv").read_text()
    assert main(arguments) == 0                                                # the same command again
    assert "tune 1/1: 2 trials (0 run now)" in capsys.readouterr().err         # resumed: nothing to run
    strip = lambda text: [line.split(",")[:6] for line in text.splitlines()]   # noqa: E731 (no clock columns)
    assert strip((tmp_path / "results.csv").read_text()) == strip(first)


def test_cli_help_and_bad_flags(capsys):
    from nnhp.cli import main
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = capsys.readouterr().out
    assert "--quick" in text and "--workers" in text and "resumes where it stopped" in text
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "optimizers", "--workloads", "digit"])
    assert exit_info.value.code == 2
    assert "unknown workload 'digit'" in capsys.readouterr().err
    assert main(["bench", "optimizers", "--data", "moons", "--workloads", "digits_mlp"]) != 0
    assert "--data (your own workload) or --workloads" in capsys.readouterr().err
