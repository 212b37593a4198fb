"""The README's promises: CI runs its exact test command, and its tour code runs."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_ci_runs_the_readme_test_command_exactly():
    readme = (ROOT / "README.md").read_text()
    test_commands = [line for block in _bash_blocks(readme) for line in block.splitlines()
                     if "pytest" in line]
    assert len(test_commands) == 1, test_commands
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert test_commands[0].strip() in ci_lines


def test_readme_names_a_main_job_that_tunes_on_a_builtin_data_set():
    readme = (ROOT / "README.md").read_text()
    first_block = _bash_blocks(readme)[0]
    assert "nnhp tune" in first_block and "--data digits" in first_block
