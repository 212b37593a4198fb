"""The progress line ``tune`` prints after every trial."""
from __future__ import annotations

import sys
import time

from ..search.trial import COMPLETE, RUNNING

__all__ = ["ProgressLine"]


class ProgressLine:
    """A study callback printing ``trial k/n  value  best  elapsed`` after every trial.

    With a ``timeout`` and no trial count it prints the seconds left instead of ``/n``. On a
    terminal the line is rewritten in place (carriage return); elsewhere (logs, pipes) one line
    per trial is printed.
    """

    def __init__(self, n_trials: int | None, metric: str, stream=None, *, timeout: float | None = None):
        self.n_trials, self.metric, self.timeout = n_trials, metric, timeout
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()

    def __call__(self, study, trial) -> None:
        # k counts the study's finished trials (a reopened study goes on from its count),
        # leaving out interrupted ones (a killed process's, or Ctrl-C's).
        count = sum(t.state != RUNNING and not t.interrupted for t in study.trials)
        total = f"/{self.n_trials}" if self.n_trials is not None else ""
        if trial.state == COMPLETE:
            outcome = f"{self.metric} {trial.value:.4f}"
        else:
            outcome = trial.state + (f" ({_short(trial.error)})" if trial.error else "")
        try:
            best = study.best_trial
            best_text = f"best {best.value:.4f} (trial {best.id})"
        except ValueError:
            best_text = "best -"
        elapsed = time.monotonic() - self.started
        line = f"trial {count}{total}  {outcome}  {best_text}  elapsed {elapsed:.1f}s"
        if self.timeout is not None:
            line += f" of {self.timeout:.0f}s"
        if self.live:
            self.stream.write("\r\x1b[2K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()


def _short(text: str, width: int = 60) -> str:
    text = text.splitlines()[0] if text else ""
    return text if len(text) <= width else text[:width - 3] + "..."
