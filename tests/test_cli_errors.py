"""Every bad input to the ``nnhp`` command ends in one plain line and exit code 2, never a traceback.

Each case runs ``python -m nnhp ...`` in a subprocess, as a user would (issue 12). The cases run
concurrently in one fixture (a subprocess mostly waits for NumPy to import); each test then reads
its own result and asserts: exit code 2, exactly one line starting ``nnhp <command>: error:``, that
line naming the problem, no "Traceback" anywhere, and files handed to the command unchanged.
"""
import hashlib
import os
import pathlib
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_nnhp(args, cwd, timeout=120):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "NNHP_JIT": "0"}
    env.pop("NNHP_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "nnhp", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def digest(path) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def _files(folder: pathlib.Path) -> dict:
    """The input files the cases read: written once, each named for what is wrong with it."""
    texts = {
        "space3.toml": "space = 3\n",
        "three.toml": 'trials = "three"\n',
        "syntax.toml": "trials = 3\nsearcher = [\n",
        "dropstr.toml": 'data = "moons"\ndrop = "dropout"\n',
        "misspelled.toml": 'data = "moons"\n[space]\nlearning_rate = [0.1, 0.01]\n',
        "single.csv": "x,y\n" + "".join(f"{i},0\n" for i in range(20)),
        "empty_target.csv": "a,b,t\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(20)) + "7,7,\n",
        "nan_label.csv": "a,b,t\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(29)) + "3,3,NaN\n",
        "notes.db": "these are notes, not a database\n" * 10,
    }
    for name, text in texts.items():
        (folder / name).write_text(text)
    (folder / "adir.csv").mkdir()
    (folder / "existing.txt").write_text("keep me\n")
    return texts


def _study_files(folder: pathlib.Path) -> None:
    """A real study file, then damaged copies of it."""
    result = run_nnhp(["tune", "--data", "moons", "--searcher", "random", "--trials", "2", "--max-epochs", "2",
                       "--set", "n_layers=1", "--set", "units=8", "--storage", "good.db", "--quiet", "--no-refit"],
                      folder)
    assert result.returncode == 0, result.stderr
    data = (folder / "good.db").read_bytes()
    (folder / "half.db").write_bytes(data[: len(data) // 2])
    page = 4096
    zeroed = bytearray(data)
    zeroed[2 * page:] = bytes(len(data) - 2 * page)         # every page after the schema's: zeros
    (folder / "zeroed.db").write_bytes(bytes(zeroed))
    blob = folder / "blob.db"
    blob.write_bytes(data)
    with sqlite3.connect(blob) as db:                        # every checkpoint's bytes zeroed
        db.execute("UPDATE checkpoints SET data = zeroblob(length(data))")
    with sqlite3.connect(blob) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with sqlite3.connect(folder / "foreign.db") as db:
        db.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    with sqlite3.connect(folder / "foreign.db") as db:
        db.execute("PRAGMA journal_mode=DELETE")


TUNE = ["tune", "--data", "moons", "--searcher", "random", "--trials", "1", "--max-epochs", "2", "--quiet"]
STORE = TUNE + ["--set", "n_layers=1", "--set", "units=8", "--no-refit", "--storage"]

# name: (arguments, what the error line must contain, files that must stay byte for byte as they were)
CASES = {
    "trials_zero": (["tune", "--trials", "0"], "--trials", []),
    "trials_negative": (["tune", "--trials", "-1"], "--trials", []),
    "timeout_negative": (["tune", "--timeout", "-1"], "--timeout", []),
    "max_epochs_zero_hyperband": (["tune", "--max-epochs", "0", "--searcher", "hyperband"], "--max-epochs", []),
    "unknown_set_name": (TUNE + ["--set", "foo=3"], "unknown hyperparameter 'foo'", []),
    "misspelled_drop": (TUNE + ["--drop", "dropuot"], "did you mean 'dropout'", []),
    "epochs_zero": (TUNE + ["--set", "epochs=0"], "'epochs' must be an integer >= 1", []),
    "n_layers_zero": (TUNE + ["--set", "n_layers=0"], "'n_layers' must be an integer >= 1", []),
    "inactive_units": (TUNE + ["--set", "n_layers=1", "--set", "units_2=64"], "units_2", []),
    "batch_size_zero": (TUNE + ["--set", "batch_size=0"], "'batch_size' must be an integer >= 1", []),
    "negative_lr": (TUNE + ["--set", "lr=-1"], "'lr' must be a positive number", []),
    "units_not_a_number": (TUNE + ["--set", "units_1=abc"], "'units_1' must be an integer", []),
    "set_without_value": (TUNE + ["--set", "optimizer"], "NAME=VALUE", []),
    "tune_patience_negative": (["tune", "--patience", "-1"], "--patience", []),
    "train_patience_negative": (["train", "--data", "moons", "--patience", "-1"], "--patience", []),
    "toml_space_not_a_table": (["tune", "--config", "space3.toml"], "space3.toml: space must be a table", []),
    "toml_wrong_type": (["tune", "--config", "three.toml"], "three.toml: trials must be an integer", []),
    "toml_syntax": (["tune", "--config", "syntax.toml"], "syntax.toml: not valid TOML", []),
    "toml_drop_string": (["tune", "--config", "dropstr.toml"], "drop must be a list", []),
    "toml_misspelled_space": (["tune", "--config", "misspelled.toml"], "did you mean 'lr'", []),
    "toml_missing": (["tune", "--config", "nowhere.toml"], "config file not found", []),
    "out_in_missing_folder": (["train", "--data", "moons", "--epochs", "1", "--out", "nodir/m.npz"],
                              "nodir/m.npz", []),
    "tune_out_in_missing_folder": (TUNE + ["--out", "nodir/m.npz"], "nodir/m.npz", []),
    "export_extension": (TUNE + ["--export", "trials.txt"], ".csv or .json", []),
    "data_is_a_directory": (["train", "--data", "adir.csv"], "is a directory", []),
    "unknown_data_set": (["train", "--data", "mnist"], "unknown data set 'mnist'", []),
    "report_out_is_a_file": (["report", "good.db", "--out", "existing.txt"], "existing file", ["existing.txt"]),
    "bench_out_is_a_file": (["bench", "optimizers", "--data", "moons", "--out", "existing.txt"], "existing file",
                            ["existing.txt"]),
    "bench_epochs_zero": (["bench", "optimizers", "--epochs", "0"], "--epochs", []),
    "huge_model": (["train", "--data", "moons", "--hidden", "1000000", "1000000"], "needs", []),
    "single_class": (["train", "--data", "single.csv"], "single class", []),
    "classification_loss_on_regression": (["train", "--data", "regression", "--loss", "cross_entropy"],
                                          "does not fit", []),
    "unknown_activation": (["train", "--data", "moons", "--activation", "rellu"], "did you mean 'relu'", []),
    "empty_target": (["train", "--data", "empty_target.csv"], "line 22", []),
    "nan_label_names_the_csv_line": (["train", "--data", "nan_label.csv"], "line 31", []),
    "test_size_out_of_range": (["train", "--data", "moons", "--test-size", "1.5"], "--test-size", []),
    "task_for_a_builtin": (["train", "--data", "moons", "--task", "regression"], "classification problem", []),
    "storage_truncated": (STORE + ["half.db"], "half.db", ["half.db"]),
    "storage_zeroed_pages": (STORE + ["zeroed.db"], "zeroed.db", ["zeroed.db"]),
    "storage_zeroed_checkpoints": (STORE + ["blob.db"], "checkpoint", ["blob.db"]),
    "storage_not_sqlite": (STORE + ["notes.db"], "not an SQLite database", ["notes.db"]),
    "storage_foreign_sqlite": (STORE + ["foreign.db"], "not an nnhp study database", ["foreign.db"]),
    "storage_is_a_directory": (STORE + ["adir.csv"], "directory", []),
    "storage_in_missing_folder": (STORE + ["nodir/s.db"], "does not exist", []),
    "storage_other_data": (["tune", "--data", "spirals", "--searcher", "random", "--trials", "2", "--max-epochs", "2",
                            "--set", "n_layers=1", "--set", "units=8", "--storage", "good.db", "--quiet"],
                           "--name tune-2", ["good.db"]),
    "storage_other_seed": (["tune", "--data", "moons", "--searcher", "random", "--trials", "2", "--max-epochs", "2",
                            "--set", "n_layers=1", "--set", "units=8", "--storage", "good.db", "--quiet",
                            "--seed", "1"], "seed=0 when created, seed=1 now", ["good.db"]),
    "report_not_sqlite": (["report", "notes.db", "--out", "r1"], "not an SQLite database", ["notes.db"]),
    "report_truncated": (["report", "half.db", "--out", "r2"], "half.db", ["half.db"]),
    "report_foreign": (["report", "foreign.db", "--out", "r3"], "not an nnhp study database", ["foreign.db"]),
    "report_missing": (["report", "nowhere.db"], "study file not found", []),
}

try:
    import cupy  # noqa: F401
except Exception:        # no CuPy here: asking for it must be one plain line
    CASES["cupy_missing"] = (["train", "--data", "moons", "--backend", "cupy", "--epochs", "1"], "CuPy", [])


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_errors")
    _files(folder)
    _study_files(folder)
    before = {name: digest(folder / name) for case in CASES.values() for name in case[2]}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(run_nnhp, case[0], folder) for name, case in CASES.items()}
        results = {name: future.result() for name, future in futures.items()}
    return folder, results, before


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_plain_line_and_exit_code_2(outcomes, case):
    folder, results, before = outcomes
    args, expected, untouched = CASES[case]
    result = results[case]
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.returncode == 2, (result.returncode, result.stderr)
    command = args[0]
    errors = [line for line in result.stderr.splitlines() if line.startswith(f"nnhp {command}: error: ")]
    assert len(errors) == 1, result.stderr
    assert expected in errors[0], errors[0]
    for name in untouched:
        assert digest(folder / name) == before[name], f"{name} was changed"


def test_the_zero_byte_study_file_stays_empty(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    result = run_nnhp(["report", "empty.db", "--out", "r"], tmp_path)
    assert result.returncode == 2 and "empty file" in result.stderr and "Traceback" not in result.stderr
    assert empty.stat().st_size == 0 and not (tmp_path / "r").exists()
