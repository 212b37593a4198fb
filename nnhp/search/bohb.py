"""BOHB: Hyperband's brackets, with new configurations proposed by a density model.

Hyperband (:mod:`nnhp.search.hyperband`) is robust and cheap but never learns: every bracket
starts from configurations drawn at random. Falkner, Klein & Hutter ("BOHB: Robust and Efficient
Hyperparameter Optimization at Scale", ICML 2018) keep Hyperband's brackets, rungs and promotions
unchanged and replace only that draw. A configuration that starts a bracket comes from a model
fitted to the results seen so far, on the *largest budget that has enough of them*: small budgets
fill up first and guide the early brackets, the more faithful large budgets take over as they
fill.

Two models are offered: the paper's tree-structured Parzen estimator of that budget's results
(``model="kde"``, NumPy only), and a Gaussian process fitted to the results of *every* budget that
scores the same candidates by their expected improvement at the full budget (``model="gp"``, the
default, which needs SciPy), chosen because it found better configurations on every benchmark we
ran (the last section).

The paper's model: a tree-structured Parzen estimator (TPE)
-----------------------------------------------------------
Take the ``n`` completed trials of that budget (running trials are not results yet; failed ones
have no value) and sort them from best to worst, respecting the study's direction. The best
``n_good`` are *good*, the worst ``n_bad`` are *bad*::

    n_good = max(min_points, floor(top_fraction n)),   n_bad = max(min_points, n - n_good)

(the two sets overlap while ``n < 2 min_points``; a budget needs ``n >= min_points + 2`` results,
and ``min_points`` defaults to the number of hyperparameters searched plus one, as in the paper.)
Fit a density to each, ``l(x)`` to the good points and ``g(x)`` to the bad ones. Bergstra et al.
(2011) show that maximizing ``l(x) / g(x)`` maximizes expected improvement over the
``top_fraction`` quantile: it picks the point most typical of good results and least typical
of bad ones.

Both densities are kernel density estimates on the unit cube of :meth:`Space.encode`, each a
mean of product kernels, one per observation ``x_i``::

    p(x) = 1/n sum_i  prod_{numeric j} K_h_j(x_j | x_ij)  prod_{choices c} K_w_c(x_c | x_ic)

* A numeric coordinate (a Float, or an Int at its value's bin centre) gets a Gaussian kernel
  truncated to ``[0, 1]`` and divided by its mass there, so ``p`` is a density on the cube::

      K_h(x | x_i) = phi((x - x_i) / h) / (h (Phi((1 - x_i) / h) - Phi(-x_i / h)))

  with Scott's rule for the bandwidth, ``h_j = max(sigma_j n^(-1/(D+4)), min_bandwidth)``:
  ``sigma_j`` the spread of coordinate j over the n points, ``D`` the number of kernel factors.
* A Choice's one-hot group is one categorical variable with ``C`` options (``C + 1`` when the
  parameter is conditional: "inactive", the all-zero group, is a value too). Its kernel is the
  Aitchison-Aitken kernel with the weight of Laplace's rule of succession, ``w = C / (n + C)``::

      K_w(x | x_i) = (1 - w) [x = x_i] + w / C,    so    1/n sum_i K_w(x | x_i) = (count(x) + 1) / (n + C)

  the smoothed frequency: no option ever gets probability zero, and the smoothing fades as
  results accumulate.

Conditional parameters: an inactive parameter keeps :meth:`Space.encode`'s neutral value (0.5 on
its numeric coordinate, the all-zero one-hot group), in the observations and in the candidates
alike. The kernels thus treat "inactive" as one more point of the coordinate, the same way in
``l`` and in ``g``, so it mostly cancels in their ratio.

Choosing the configuration
--------------------------
Both models choose among the same candidates. Draw ``n_candidates`` points from ``l`` with every
bandwidth widened ``bandwidth_factor`` times (the paper's ``b_w``: more exploration around the
good points; a categorical weight becomes ``min(1, bandwidth_factor w)``): pick a good point,
draw each numeric coordinate from its widened truncated Gaussian, keep each choice with
probability ``1 - w`` or redraw it uniformly. Snap each candidate to a valid configuration
(``Space.decode`` then ``Space.encode``: integers to bin centres, conditional parameters switched
on or off by their parents), and return the one with the largest ``log l(x) - log g(x)`` (the
unwidened densities), or with ``model="gp"`` the largest expected improvement (below). With
probability ``random_fraction``, or while no budget has enough results, the configuration is
drawn at random from the space instead, which keeps BOHB at worst a constant factor slower than
Hyperband. That random configuration is Hyperband's own: it comes from the generator Hyperband
uses for the same bracket and index (the coin and the candidates have a generator of their own).
With the same seed, BOHB's trials are Hyperband's until its model starts, and after that BOHB
differs from Hyperband only where the model chose: common random numbers, so that a comparison of
the two measures the model and not the luck of two different sets of draws.
Each bracket-starting trial records ``info["sampled_by"]`` ("model" or "random") and, for model
proposals, ``info["model_budget"]``.

Stopping and reopening
----------------------
As in Hyperband, BOHB keeps nothing between asks. Configuration ``j`` of bracket ``k`` uses
generators seeded by ``(seed, k, j, 1)`` (the coin for ``random_fraction``, the candidates) and
``(seed, k, j)`` (a random configuration, as Hyperband's), and the
model is refitted from ``study.trials`` when it is needed. A serial study reopened from storage
therefore proposes exactly what the uninterrupted one would; an interrupted bracket-starting
trial is proposed again with the params it had (they are read back, not redrawn).

A Gaussian process over every budget instead of ``l / g`` (``model="gp"``, the default)
----------------------------------------------------------------------------------------
``model="gp"`` keeps the KDE as the proposer of candidates and lets a
:class:`~nnhp.search.gp.GaussianProcess` (Matern-5/2, hyperparameters by maximum a posteriori;
:mod:`nnhp.search.gp`) choose among them. The GP is fitted to *every* finite result, of every
budget, with the budget as one more input: its fidelity ::

    fidelity(b) = log(b / min_budget) / log(max_budget / min_budget)     in [0, 1]

so a configuration's results at 9, 27 and 81 epochs are three observations of one smooth surface
``f(x, fidelity)``, and the GP learns from the data how far a low budget's ranking carries to the
full one (the length scale of the fidelity input). It picks the candidate with the largest
expected improvement *at the full budget*, ``EI(x) = E[max(best - f(x, 1), 0)]``, where ``best`` is
the lowest predicted full-budget mean among the configurations already tried (their full-budget
values are mostly not observed yet, so the GP's prediction stands in for them). Rung 0 has many
cheap results and the top rung a few faithful ones: a single budget's model discards one or the
other, this one uses both.

Measured on the three synthetic multi-fidelity objectives of ``tests/test_search_bohb.py``
(mixed Float / Int / Choice spaces; noise and a configuration-dependent bias that shrink as the
budget grows), two Hyperband iterations, 10 seeds: the true value of the incumbent (the best
reported result at the full budget), mean +- standard error, lower is better::

                      Hyperband         BOHB, model="kde"   BOHB, model="gp"
    Mixed (min 0)      0.363 +- 0.047    0.280 +- 0.076      0.077 +- 0.030
    Hartmann (-3.32)  -1.937 +- 0.134   -2.424 +- 0.100     -3.036 +- 0.021
    CountingOnes (-8) -6.983 +- 0.088   -7.748 +- 0.034     -7.898 +- 0.018

produced by ``.venv/bin/python tests/test_search_bohb.py`` (about 6 minutes on 2 busy cores).
(Before BOHB's random configurations became Hyperband's own draws, other draws gave 0.262,
-2.425, -7.640 with the KDE and 0.044, -3.029, -7.911 with the GP: the same within the seeds'
spread.)
The GP fitted to the model budget's results alone, as the KDE is (the previous default), gave
0.119 +- 0.025 on Mixed and -2.494 +- 0.121 on Hartmann in the same setting: using every budget
is what moved it. On the MLP tuning suite of ``benchmarks/bench_tune.py`` at 4 x max_epochs (one
bracket) the difference from Hyperband is within the seeds' spread; over two Hyperband iterations
(28 x max_epochs, five sets, 5 seeds) BOHB reached Hyperband's best validation score with fewer
epochs on 3 of the 5 sets and 12 of 25 seeds (as many on 5, more on 8). Over one iteration (12 x,
all eight sets, 5 seeds, random draws shared with Hyperband) its test median is at least
Hyperband's on 7 of 8 sets, but it reaches the validation score of the model Hyperband returns
with fewer epochs on only 1 of 8 (benchmarks/RESULTS.md): on those small validation sets the
model does not yet pay at the full budget. The GP costs tens of milliseconds per model proposal,
nothing next to a trial.
"""
from __future__ import annotations

import importlib.util
import math

import numpy as np

from ..blas import limit_blas_threads
from .hyperband import Hyperband, _direction_sign
from .trial import COMPLETE

__all__ = ["BOHB", "KernelDensity"]


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    """``Phi(z) = erfc(-z / sqrt 2) / 2``, elementwise (NumPy has no erf; SciPy stays optional)."""
    return 0.5 * np.vectorize(math.erfc, otypes=[float])(-np.asarray(z, dtype=float) / math.sqrt(2.0))


def _log_mean_exp(log_values: np.ndarray, axis: int) -> np.ndarray:
    """``log(mean(exp(a)))`` along ``axis``, without overflow or underflow."""
    top = log_values.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.mean(np.exp(log_values - top), axis=axis))


class KernelDensity:
    """A product-kernel density estimate on the unit cube of a Space (module docstring).

    ``KernelDensity(space, points, min_bandwidth)``: ``points`` are encoded configurations, one
    per row. ``log_pdf(U)`` scores rows of U; ``sample(rng, n, bandwidth_factor)`` draws n rows.
    """

    def __init__(self, space, points: np.ndarray, min_bandwidth: float = 1e-3):
        self.points = np.asarray(points, dtype=float)
        n = len(self.points)
        self.numeric = [e.index for e in space.encoded_dims if e.kind != "onehot"]
        # One categorical variable per Choice: (its one-hot coordinates, its number of values).
        self.choices = [(list(e.group), e.n_values + (1 if space.dims[e.param].when else 0))
                        for e in space.encoded_dims if e.kind == "onehot" and e.index == e.group[0]]
        n_factors = len(self.numeric) + len(self.choices)
        self.centres = self.points[:, self.numeric]
        scott = n ** (-1.0 / (n_factors + 4))
        self.bandwidths = np.maximum(self.centres.std(axis=0) * scott, min_bandwidth)
        self.codes = [self._codes(self.points, coords) for coords, _ in self.choices]
        self.weights = [n_values / (n + n_values) for _, n_values in self.choices]

    @staticmethod
    def _codes(U: np.ndarray, coords: list) -> np.ndarray:
        """A one-hot group's option index per row; ``len(coords)`` for the all-zero (inactive) group."""
        group = U[:, coords]
        return np.where(group.max(axis=1) > 0.5, group.argmax(axis=1), len(coords))

    def log_pdf(self, U: np.ndarray) -> np.ndarray:
        """``log p(u)`` for each row u of U: the log of the mean over points of the product kernels."""
        U = np.atleast_2d(U)
        log_kernels = np.zeros((len(U), len(self.points)))          # (query, point)
        if self.numeric:
            h = self.bandwidths
            z = (U[:, None, self.numeric] - self.centres[None]) / h
            mass = _normal_cdf((1.0 - self.centres) / h) - _normal_cdf(-self.centres / h)   # (point, coord)
            log_kernels += (-0.5 * z * z - 0.5 * math.log(2 * math.pi) - np.log(h)
                            - np.log(mass)[None]).sum(axis=2)
        for (coords, n_values), codes, w in zip(self.choices, self.codes, self.weights):
            same = self._codes(U, coords)[:, None] == codes[None, :]
            log_kernels += np.log(np.where(same, 1.0 - w + w / n_values, w / n_values))
        return _log_mean_exp(log_kernels, axis=1)

    def sample(self, rng: np.random.Generator, n: int, bandwidth_factor: float = 1.0) -> np.ndarray:
        """n rows drawn from the density with every bandwidth widened ``bandwidth_factor`` times
        (not yet snapped to valid configurations)."""
        picks = rng.integers(len(self.points), size=n)
        U = self.points[picks].copy()
        if self.numeric:
            U[:, self.numeric] = _truncated_normal(rng, self.centres[picks], bandwidth_factor * self.bandwidths)
        for (coords, n_values), codes, w in zip(self.choices, self.codes, self.weights):
            redraw = (rng.random(n) < min(1.0, bandwidth_factor * w)) | (codes[picks] == len(coords))
            options = np.where(redraw, rng.integers(len(coords), size=n), codes[picks])
            U[:, coords] = 0.0
            U[np.arange(n), np.asarray(coords)[options]] = 1.0
        return U


def _truncated_normal(rng: np.random.Generator, mean: np.ndarray, std: np.ndarray,
                      max_rounds: int = 100) -> np.ndarray:
    """Draws from ``N(mean, std^2)`` restricted to ``[0, 1]``, by redrawing those that fall outside.

    With ``std <= 1.5`` and ``mean`` in ``[0, 1]`` at least a quarter of the draws land inside,
    so a handful of rounds suffice; anything still outside after ``max_rounds`` is clipped.
    """
    std = np.broadcast_to(std, mean.shape)
    x = mean + std * rng.standard_normal(mean.shape)
    for _ in range(max_rounds):
        outside = (x < 0.0) | (x > 1.0)
        if not outside.any():
            break
        x[outside] = mean[outside] + std[outside] * rng.standard_normal(int(outside.sum()))
    return np.clip(x, 0.0, 1.0)


def _finite_results(trials) -> list:
    """The completed trials with a budget and a finite value: what the models learn from."""
    return [t for t in trials if t.state == COMPLETE and t.budget is not None
            and t.value is not None and math.isfinite(t.value)]


class BOHB(Hyperband):
    """BOHB (Falkner et al., 2018): Hyperband whose new configurations come from a model of its results.

    ``BOHB(max_budget=81, eta=3, min_budget=1, seed=0, max_iterations=None, *, random_fraction=1/3,
    top_fraction=0.15, n_candidates=64, bandwidth_factor=3.0, min_bandwidth=1e-3, min_points=None,
    model="auto")``; "auto" is "gp" where SciPy is installed, else "kde". The schedule, promotions
    (``parent_id``, checkpoints) and reopening are Hyperband's (:class:`~nnhp.search.hyperband.Hyperband`); the configuration that starts a
    bracket is proposed as in the module docstring. ``min_points=None`` means the number of
    hyperparameters searched plus one. ``model="gp"`` scores the candidates by a
    Gaussian process's expected improvement (needs SciPy: ``pip install nnhp[bo]``);
    ``model="kde"`` by the paper's ``l(x) / g(x)`` (NumPy only).
    """

    name = "bohb"

    def __init__(self, max_budget: float = 81, eta: int = 3, min_budget: float = 1,
                 seed: int | None = 0, max_iterations: int | None = None, *,
                 random_fraction: float = 1 / 3, top_fraction: float = 0.15, n_candidates: int = 64,
                 bandwidth_factor: float = 3.0, min_bandwidth: float = 1e-3, min_points: int | None = None,
                 model: str = "auto"):
        super().__init__(max_budget, eta, min_budget, seed, max_iterations)
        if not 0.0 <= random_fraction <= 1.0:
            raise ValueError(f"random_fraction must be in [0, 1], got {random_fraction!r}")
        if not 0.0 < top_fraction < 1.0:
            raise ValueError(f"top_fraction must be in (0, 1), got {top_fraction!r}")
        if n_candidates < 1:
            raise ValueError(f"n_candidates must be >= 1, got {n_candidates!r}")
        if bandwidth_factor <= 0 or min_bandwidth <= 0:
            raise ValueError(f"bandwidth_factor and min_bandwidth must be > 0, got "
                             f"{bandwidth_factor!r} and {min_bandwidth!r}")
        if min_points is not None and min_points < 1:
            raise ValueError(f"min_points must be >= 1 or None, got {min_points!r}")
        if model not in ("auto", "kde", "gp"):
            raise ValueError(f"model must be 'auto', 'kde' or 'gp', got {model!r}")
        if model == "auto":
            # The GP needs SciPy (the `bo` extra); NumPy alone still gets the paper's model.
            model = "gp" if importlib.util.find_spec("scipy") is not None else "kde"
        self.random_fraction, self.top_fraction = float(random_fraction), float(top_fraction)
        self.n_candidates, self.bandwidth_factor = int(n_candidates), float(bandwidth_factor)
        self.min_bandwidth, self.min_points, self.model = float(min_bandwidth), min_points, model

    def __repr__(self) -> str:
        return f"BOHB(max_budget={self.max_budget}, eta={self.eta}, min_budget={self.min_budget}, " \
               f"seed={self.seed}, model={self.model!r})"

    def configuration_sampler(self, study):
        """``sample(key, j) -> (params, notes)``: a new configuration from the model, or at random."""
        space, sign, trials = study.space, _direction_sign(study), study.trials
        hyperbands_draw = super().configuration_sampler(study)
        # A bracket-starting trial that was interrupted is proposed again as it was, not redrawn.
        drawn = {}
        for trial in trials:
            if trial.info.get("searcher") == self.name and trial.info.get("rung") == 0:
                drawn.setdefault((trial.info.get("bracket"), trial.info.get("config")), trial)

        def sample(key, index):
            if (key, index) in drawn:
                earlier = drawn[(key, index)]
                notes = {name: earlier.info[name] for name in ("sampled_by", "model_budget") if name in earlier.info}
                return dict(earlier.params), notes
            # A random configuration is Hyperband's own draw for the same (bracket, index); the coin
            # and the model's candidates have a generator of their own.
            rng = np.random.default_rng([self.seed, key, index, 1])
            explore = rng.random() < self.random_fraction
            budget, observations = self._model_budget(space, trials)
            if explore or budget is None:
                params, _ = hyperbands_draw(key, index)
                return params, {"sampled_by": "random"}
            params = self._propose(space, sign, observations, rng, trials)
            return params, {"sampled_by": "model", "model_budget": budget}

        return sample

    def _min_points(self, space) -> int:
        """The paper's ``d + 1``, ``d`` the number of hyperparameters searched (a Choice of five
        options is one, not the five coordinates of its one-hot code: counting coordinates would
        leave the default tuning space's model waiting past Hyperband's first iteration)."""
        if self.min_points is not None:
            return int(self.min_points)
        return len({encoded.param for encoded in space.encoded_dims}) + 1

    def _model_budget(self, space, trials):
        """The largest budget with at least ``min_points + 2`` finite results, and those results;
        ``(None, [])`` when there is none (or nothing to model: a space of fixed values)."""
        results = {}
        for trial in _finite_results(trials):
            results.setdefault(trial.budget, []).append(trial)
        enough = [budget for budget, done in results.items() if len(done) >= self._min_points(space) + 2]
        if not enough or space.n_encoded == 0:
            return None, []
        budget = max(enough)
        return budget, results[budget]

    def _propose(self, space, sign: float, observations, rng: np.random.Generator, trials=()) -> dict:
        """The candidate drawn from ``l`` that maximizes ``l(x) / g(x)`` (or, with ``model="gp"``,
        the expected improvement at the full budget of a GP fitted to all ``trials``' results)."""
        ranked = sorted(observations, key=lambda t: (sign * t.value, t.id))       # best first
        n, min_points = len(ranked), self._min_points(space)
        n_good = max(min_points, int(self.top_fraction * n))
        n_bad = max(min_points, n - n_good)
        encoded = np.array([space.encode(t.params) for t in ranked])
        good = KernelDensity(space, encoded[:n_good], self.min_bandwidth)
        candidates = good.sample(rng, self.n_candidates, self.bandwidth_factor)
        candidates = np.array([space.snap(u) for u in candidates])
        if self.model == "gp":
            scores = self._expected_improvement_at_full_budget(space, sign, trials, candidates, rng)
        else:
            bad = KernelDensity(space, encoded[-n_bad:], self.min_bandwidth)
            scores = good.log_pdf(candidates) - bad.log_pdf(candidates)
        return space.decode(candidates[int(np.argmax(scores))])

    def fidelity(self, budget: float) -> float:
        """``log(budget / min_budget) / log(max_budget / min_budget)``: 0 at the smallest budget, 1 at the full one."""
        span = math.log(self.max_budget / self.min_budget)
        return math.log(budget / self.min_budget) / span if span > 0 else 1.0

    def _expected_improvement_at_full_budget(self, space, sign: float, trials, candidates: np.ndarray,
                                             rng) -> np.ndarray:
        """log EI at fidelity 1 of each candidate, under a GP fitted to every finite result with its
        fidelity as one more input (module docstring); lower is better inside, whatever the direction."""
        from .gp import GaussianProcess, _require_scipy, log_expected_improvement

        results = _finite_results(trials)
        X = np.array([[*space.encode(t.params), self.fidelity(t.budget)] for t in results])
        y = sign * np.array([t.value for t in results])
        at_full_budget = lambda U: np.column_stack([U, np.ones(len(U))])
        _require_scipy()                  # load SciPy's BLAS before limiting its threads
        with limit_blas_threads(1):       # small matrices: see nnhp.blas
            gp = GaussianProcess(n_restarts=1, seed=int(rng.integers(2**31))).fit(X, y)
            mean, var = gp.predict_normalized(at_full_budget(candidates))
            best = float(gp.predict_normalized(at_full_budget(X[:, :-1]))[0].min())
        return log_expected_improvement(mean, np.sqrt(var), best)
