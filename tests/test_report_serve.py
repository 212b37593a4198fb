"""``nnhp report --serve``: a loopback page that follows a study another process is running."""
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from nnhp import report
from nnhp.search import Float, Study

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADD_TRIAL = ("import sys; from nnhp.search import Study, Float; "
             "s = Study({'x': Float(0, 1)}, storage=sys.argv[1], name='live'); s.tell(s.ask(), 0.25)")


def _trial_count(url: str) -> int:
    page = urllib.request.urlopen(url, timeout=10).read().decode()
    return int(re.search(r"<p>(\d+) trials", page).group(1))


def test_served_page_picks_up_a_trial_added_by_another_process(tmp_path):
    path = str(tmp_path / "live.db")
    study = Study({"x": Float(0, 1)}, storage=path, name="live")
    study.optimize(lambda t: t.params["x"], n_trials=3)
    server = report.ReportServer(path, str(tmp_path / "out"), port=0, refresh=1)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert _trial_count(server.url) == 3
        subprocess.run([sys.executable, "-c", ADD_TRIAL, path], check=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": ROOT})
        deadline = time.monotonic() + 2 * server.refresh + 5          # the refresh interval, and slack
        while _trial_count(server.url) != 4:
            assert time.monotonic() < deadline, "the served page never showed the new trial"
            time.sleep(0.2)
        image = urllib.request.urlopen(server.url + "live-history.png", timeout=10).read()
        assert image[:4] == b"\x89PNG"
    finally:
        server.httpd.shutdown()
        server.close()


def test_serve_command_stops_cleanly_on_ctrl_c(tmp_path):
    path = str(tmp_path / "s.db")
    Study({"x": Float(0, 1)}, storage=path, name="s").optimize(lambda t: t.params["x"], n_trials=2)
    data, files = open(path, "rb").read(), sorted(os.listdir(tmp_path))
    process = subprocess.Popen([sys.executable, "-c", "import sys; from nnhp.cli import main; sys.exit(main(sys.argv[1:]))",
                                "report", path, "--serve", "--port", "0"], cwd=str(tmp_path), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        assert _trial_count(url) == 2
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and "stopped" in out, err
    assert sorted(os.listdir(tmp_path)) == files and open(path, "rb").read() == data   # read-only, nothing made
