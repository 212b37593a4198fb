"""The report in a real browser: headless Chromium (Debian's ``chromium``) loads the page, every
image loads, nothing on the console is an error, and a click on a header sorts the trial table.
Skipped where chromium is not installed (``apt-get install chromium``)."""
import json
import math
import re
import shutil
import subprocess

import pytest

from nnhp import report
from nnhp.search import Choice, Float, RandomSearch, Study

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")

# Runs first on the copied page: keeps every error the page raises.
CATCH = "<script>window.__errors = []; window.addEventListener('error', e => __errors.push(String(e.message)));</script>"
# Runs after load: which images failed, then sorts by 'value' and reports the column.
CHECK = """<script>
window.addEventListener('load', function () {
  var broken = Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src);
  var headers = Array.from(document.querySelectorAll('table.trials th')).map(th => th.textContent);
  var column = headers.indexOf('value');
  document.querySelectorAll('table.trials th')[column].click();
  var values = Array.from(document.querySelector('table.trials').tBodies[0].rows).map(r => r.cells[column].textContent);
  var out = document.createElement('pre'); out.id = 'result';
  out.textContent = JSON.stringify({images: document.images.length, broken: broken, errors: window.__errors, values: values});
  document.body.appendChild(out);
});
</script>"""


def _chromium(*args, timeout=60):
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--virtual-time-budget=5000", *args], capture_output=True, text=True, timeout=timeout)


def test_report_in_headless_chromium(tmp_path):
    pytest.importorskip("matplotlib")
    path = str(tmp_path / "study.db")
    study = Study({"lr": Float(1e-4, 1e-1, log=True), "act": Choice(["relu", "tanh"]),
                   "momentum": Float(0, 1, when=("act", "==", "relu"))},
                  searcher=RandomSearch(seed=0), storage=path, name="browser")

    def objective(trial):
        if trial.id == 2:
            raise RuntimeError("diverged")
        for epoch in range(3):
            trial.report(abs(math.log10(trial.params["lr"]) + 2) + 1 / (epoch + 1), epoch)
        return abs(math.log10(trial.params["lr"]) + 2)

    study.optimize(objective, n_trials=15)
    out = tmp_path / "report"
    report.write_report(path, str(out))
    page = (out / "index.html").read_text()
    (out / "check.html").write_text(page.replace("<title>", CATCH + "<title>", 1) + CHECK)

    shot = out / "screenshot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1300,1600", (out / "index.html").as_uri())
    assert shot.read_bytes()[:4] == b"\x89PNG"

    run = _chromium("--dump-dom", (out / "check.html").as_uri())
    result = json.loads(re.search(r'<pre id="result">(.*?)</pre>', run.stdout, re.S).group(1))
    assert result["images"] >= 5 and result["broken"] == [] and result["errors"] == []
    assert not re.search(r"CONSOLE.*(Uncaught|Error)", run.stderr)
    values = [float(v) for v in result["values"] if v]
    assert values == sorted(values) and len(result["values"]) == len(study.trials)
    assert result["values"][-1] == ""                     # the failed trial (no value) sorts last
