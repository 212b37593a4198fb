"""The ``nnhp`` command (nnhp/cli/): outputs checked before the work, SIGTERM, the TOML reader (issue 12).

Bad input of every kind is in ``test_cli_errors.py``; the tune subcommand's behaviour in ``test_tuning.py``.
"""
import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import time
import types

import pytest

import nnhp
from nnhp.cli import main

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_an_out_path_without_npz_prints_the_file_it_wrote(tmp_path, capsys):
    assert main(["train", "--data", "moons", "--hidden", "4", "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "adir")]) == 0
    assert f"saved model to {tmp_path / 'adir.npz'}" in capsys.readouterr().out     # said "to adir" before
    assert nnhp.load(tmp_path / "adir.npz").n_inputs == 2


@pytest.mark.parametrize("command", [
    ["train", "--data", "moons", "--epochs", "1"],
    ["tune", "--data", "moons", "--searcher", "random", "--trials", "1", "--max-epochs", "2"],
])
def test_outputs_are_checked_before_any_training(tmp_path, capsys, monkeypatch, command):
    monkeypatch.setattr(nnhp, "fit", lambda *a, **k: pytest.fail("trained before checking --out"))
    monkeypatch.setattr(nnhp, "tune", lambda *a, **k: pytest.fail("tuned before checking --out"))
    assert main([*command, "--out", str(tmp_path / "nodir" / "m.npz")]) == 2
    err = capsys.readouterr().err
    assert "nodir/m.npz: the folder" in err and ".tmp" not in err


def test_tune_names_its_new_study_flag_when_the_stored_one_is_for_other_data(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    args = ["tune", "--searcher", "random", "--trials", "2", "--max-epochs", "2", "--set", "n_layers=1",
            "--set", "units=8", "--storage", db, "--quiet", "--no-refit"]
    assert main([*args, "--data", "moons"]) == 0
    capsys.readouterr()
    assert main([*args, "--data", "regression"]) == 2
    err = capsys.readouterr().err
    assert "direction='maximize' when created, direction='minimize' now" in err
    assert "task='classification' when created, task='regression' now" in err
    assert "Run with --name tune-2" in err
    assert main([*args, "--data", "regression", "--name", "tune-2"]) == 0


def test_sigterm_marks_the_running_trial_interrupted_and_exits_cleanly(tmp_path):
    db = tmp_path / "s.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NNHP_JIT": "0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "nnhp", "tune", "--data", "spirals", "--searcher", "random", "--trials", "20",
         "--max-epochs", "500", "--set", "n_layers=2", "--set", "units=64", "--set", "epochs=500",
         "--set", "batch_size=32", "--storage", str(db), "--quiet"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:            # wait until a trial is running
            time.sleep(0.2)
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
                    if connection.execute("SELECT count(*) FROM trials WHERE state = 'running'").fetchone()[0]:
                        break
            except sqlite3.Error:
                continue
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("nnhp tune: terminated (SIGTERM)")
    from nnhp.search import Study
    trials = Study(storage=str(db), name="tune", fail_stale=False).trials
    assert trials and not [t for t in trials if t.state == "running"]          # left 'running' before
    assert trials[-1].state == "failed" and trials[-1].interrupted and "Terminated" in trials[-1].error


# --- the TOML reader: tomllib, else tomli (Python 3.10) --------------------------------------------------
def _fake_tomli(monkeypatch):
    """Python 3.10 here: no tomllib, and tomli (installed on 3.10 from the test extra) in its place."""
    import tomllib
    calls = []
    tomli = types.ModuleType("tomli")
    tomli.TOMLDecodeError = tomllib.TOMLDecodeError

    def load(handle):
        calls.append("load")
        return tomllib.load(handle)

    tomli.load, tomli.loads = load, tomllib.loads
    monkeypatch.setitem(sys.modules, "tomllib", None)          # import tomllib -> ImportError
    monkeypatch.setitem(sys.modules, "tomli", tomli)
    return calls


def test_a_config_file_is_read_with_tomli_where_tomllib_is_missing(tmp_path, monkeypatch):
    from nnhp.cli import config
    calls = _fake_tomli(monkeypatch)
    assert config.toml_module().__name__ == "tomli"
    path = tmp_path / "tune.toml"
    path.write_text('data = "moons"\ntrials = 3\n[space]\noptimizer = ["adam", "sgd"]\n')
    settings, overrides, drop = config.read_config(str(path))
    assert calls == ["load"] and settings == {"data": "moons", "trials": 3}
    assert overrides == {"optimizer": ["adam", "sgd"]} and drop == []
    path.write_text("trials = [\n")
    with pytest.raises(ValueError, match="tune.toml: not valid TOML"):        # tomli's error class
        config.read_config(str(path))


def test_without_tomllib_or_tomli_a_config_file_asks_for_tomli(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tomllib", None)
    monkeypatch.setitem(sys.modules, "tomli", None)
    (tmp_path / "tune.toml").write_text("trials = 3\n")
    assert main(["tune", "--config", str(tmp_path / "tune.toml")]) == 2
    assert "pip install tomli" in capsys.readouterr().err


def test_the_package_declares_tomli_for_python_3_10():
    text = (ROOT / "pyproject.toml").read_text()
    assert "tomli>=2; python_version<'3.11'" in text and '"nnhp.cli"' in text
