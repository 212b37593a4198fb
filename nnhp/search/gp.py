"""Gaussian-process Bayesian optimization: spend few trials by modelling the objective.

Random search throws darts; Bayesian optimization looks at where the darts landed
before throwing the next one. It keeps a *surrogate model* of the objective, a cheap
stand-in fitted to every (configuration, value) pair seen so far, and picks the next
configuration where the surrogate says an improvement is most likely or largest.

1. The surrogate: Gaussian-process regression
---------------------------------------------
A Gaussian process (GP) is a prior over functions f: [0,1]^d -> R such that the values
at any finite set of points are jointly Gaussian, with covariance given by a *kernel*
``k(x, x')`` (how similar f(x) and f(x') are). We use the Matern-5/2 kernel with one
length scale per input dimension ("ARD", automatic relevance determination)::

    r^2     = sum_j (x_j - x'_j)^2 / l_j^2
    k(x,x') = s2 * (1 + sqrt(5) r + 5/3 r^2) * exp(-sqrt(5) r)

``s2`` is the signal variance (how far f strays from its mean), ``l_j`` says over what
distance f changes along dimension j (a huge ``l_j`` means "dimension j does not
matter"). Matern-5/2 functions are twice differentiable: smooth, but less rigid than
the squared-exponential kernel, which suits loss landscapes.

Observations are noisy, ``y_i = f(x_i) + eps_i`` with ``eps_i ~ N(0, noise)``. Write
``K = k(X, X) + noise * I`` (n x n) for the n observed points and ``k_* = k(X, x_*)``
for a new point. Conditioning the joint Gaussian of (y, f(x_*)) on y gives the
*posterior*, again Gaussian, in closed form::

    mean(x_*) = k_*^T K^{-1} y
    var(x_*)  = k(x_*, x_*) - k_*^T K^{-1} k_*

We never form ``K^{-1}``: with the Cholesky factor ``K = L L^T`` we solve
``alpha = K^{-1} y`` by two triangular solves once, then ``mean = k_*^T alpha`` and
``var = k(x_*,x_*) - |L^{-1} k_*|^2``. That is O(n^3) once per fit and O(n^2) per
prediction, and numerically stable (K is symmetric positive definite; a small jitter
keeps it so).

The outputs are *normalized* first (y -> (y - mean) / std), so a prior with mean 0 and
``s2`` near 1 is sensible whatever the scale of the objective.

2. Fitting the kernel: maximize the marginal likelihood
-------------------------------------------------------
The kernel hyperparameters ``theta = (log l_1..log l_d, log s2, log noise)`` are chosen
by maximizing the log marginal likelihood, the log density of the observed y under
the GP prior (f integrated out)::

    log p(y | theta) = -1/2 y^T K^{-1} y - 1/2 log det K - n/2 log(2 pi)
                     = -1/2 y^T alpha   - sum_i log L_ii  - n/2 log(2 pi)

The first term rewards fitting the data, the second penalizes complexity (a flexible
kernel spreads its probability over many data sets). Its gradient is::

    d log p / d theta_k = 1/2 tr( (alpha alpha^T - K^{-1}) dK/dtheta_k )

with, for Matern-5/2 (``D_j = x_j - x'_j``)::

    dK/d log l_j   = 5/3 s2 (1 + sqrt(5) r) exp(-sqrt(5) r) * D_j^2 / l_j^2
    dK/d log s2    = K - noise * I
    dK/d log noise = noise * I

We add weak log-normal priors on the hyperparameters (maximum a posteriori rather than
maximum likelihood: with 10 points the likelihood alone often picks absurd length
scales) and optimize with L-BFGS-B inside bounds, restarting from a few points.

3. Choosing the next point: expected improvement
------------------------------------------------
Let ``best`` be the smallest value seen so far (we always minimize internally). At x
the GP says ``f(x) ~ N(mu, sigma^2)``. The improvement is ``max(best - f(x), 0)`` and
its expectation has a closed form; with ``z = (best - mu) / sigma``::

    EI(x) = sigma * (z * Phi(z) + phi(z)) = sigma * h(z)

(Phi, phi: standard normal cdf and pdf). EI is large where mu is low (exploitation)
or sigma is large (exploration). Far from the incumbent, z is very negative and EI
underflows to exactly 0 in floating point, leaving the optimizer a flat landscape.
So we maximize ``log EI = log sigma + log h(z)`` with ``log h`` evaluated stably
(see :func:`log_h`), as suggested by Ament et al., "Unexpected Improvements to
Expected Improvement for Bayesian Optimization" (NeurIPS 2023).

The alternative *upper confidence bound* (for minimization a lower bound),
``-(mu - beta^(1/2) sigma)``, trades the two off with an explicit ``beta``.

The acquisition is maximized over the unit cube by scoring many quasi-random
candidates (plus perturbations of the best points so far), then polishing the best
few with L-BFGS-B using the analytic gradient, and finally snapping to a valid point
of the space (integers rounded, one category per one-hot group).

SciPy is needed (the ``bo`` extra: ``pip install nnhp[bo]``); it is imported only when
a GP is actually fitted.
"""
from __future__ import annotations

import math

import numpy as np

from ..blas import limit_blas_threads
from .searcher import Proposal, Searcher, resolve_seed

SQRT5 = math.sqrt(5.0)
LOG_2PI = math.log(2.0 * math.pi)
JITTER = 1e-8


def _require_scipy():
    try:
        import scipy.linalg
        import scipy.linalg.lapack
        import scipy.optimize
        import scipy.special
        import scipy.stats  # noqa: F401
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "GPSearch needs SciPy (Cholesky solves, L-BFGS-B, Sobol points). "
            "Install it with `pip install nnhp[bo]` or `pip install scipy`.") from error
    return scipy


# --------------------------------------------------------------------------- kernel

def _scaled_sq_dist(A: np.ndarray, B: np.ndarray, length_scales: np.ndarray) -> np.ndarray:
    """r^2 between rows of A and B, each dimension divided by its length scale."""
    A = A / length_scales
    B = B / length_scales
    sq = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
    return np.maximum(sq, 0.0)   # cancellation can leave tiny negatives


def matern52(A: np.ndarray, B: np.ndarray, length_scales, signal_var: float = 1.0) -> np.ndarray:
    """Matern-5/2 ARD kernel matrix k(A, B) (shape len(A) x len(B)).

    ``k = s2 (1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r)``, ``r^2 = sum_j (a_j-b_j)^2/l_j^2``.
    """
    r = np.sqrt(_scaled_sq_dist(np.atleast_2d(A), np.atleast_2d(B),
                                np.asarray(length_scales, dtype=float)))
    return signal_var * (1.0 + SQRT5 * r + (5.0 / 3.0) * r * r) * np.exp(-SQRT5 * r)


# ------------------------------------------------------------------ hyperparameters

class KernelPrior:
    """Weak priors and hard bounds on ``theta = (log l, log s2, log noise)``.

    Inputs live in [0,1]^d and outputs are standardized, so fixed numbers make sense:

    * length scales, ``t_j = log(l_j / 0.5)``: ``log p = -0.2 cosh(2 t_j)``. Nearly flat
      for ``l`` between ~0.2 and ~1.4, then a steep wall on both sides (it is the
      shape of Optuna's prior ``-(0.1/x + 0.1 x)`` on ``x = 1/l^2``, centred at 0.5
      instead of 1). The wall matters: with 10-30 points the likelihood happily
      declares a dimension irrelevant (``l`` -> 10) and the search then never moves
      along it. (We first tried the "dimension-scaled" log-normal prior of Hvarfner et
      al., 2024, median ``l = e^sqrt2 sqrt d``, 10 for d = 6: too smooth to exploit;
      Hartmann-6 regret after 50 evaluations 0.22 vs 0.12, 4-5 seeds);
    * ``log s2 ~ N(0, 1)``: standardized outputs have unit variance;
    * ``log noise ~ N(log 1e-3, 2^2)``: most tuning objectives are nearly
      deterministic, but the noise may grow to absorb genuine scatter.
    Bounds: ``l in [1e-2, 1e2]``, ``s2 in [1e-2, 1e2]``, ``noise in [1e-6, 1]``.
    ``mean``/``std`` also say where random restarts of the fit are drawn.
    """

    LENGTH_SCALE_CENTRE = 0.5

    def __init__(self, dim: int):
        self.dim = dim
        self.mean = np.concatenate([np.full(dim, math.log(self.LENGTH_SCALE_CENTRE)),
                                    [0.0, math.log(1e-3)]])
        self.std = np.concatenate([np.full(dim, 1.5), [1.0, 2.0]])
        self.bounds = ([(math.log(1e-2), math.log(1e2))] * dim
                       + [(math.log(1e-2), math.log(1e2)), (math.log(1e-6), 0.0)])

    def log_density(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Log prior density (up to a constant) and its gradient."""
        dim = self.dim
        z = (theta[dim:] - self.mean[dim:]) / self.std[dim:]
        t = theta[:dim] - math.log(self.LENGTH_SCALE_CENTRE)
        value = -0.5 * float(z @ z) - 0.2 * float(np.cosh(2.0 * t).sum())
        return value, np.concatenate([-0.4 * np.sinh(2.0 * t), -z / self.std[dim:]])

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        low, high = np.array(self.bounds).T
        return np.clip(self.mean + self.std * rng.standard_normal(len(self.mean)), low, high)

    def mode(self) -> np.ndarray:
        low, high = np.array(self.bounds).T
        return np.clip(self.mean, low, high)


def log_marginal_likelihood(theta: np.ndarray, X: np.ndarray, y: np.ndarray,
                            return_grad: bool = True):
    """``log p(y | X, theta)`` of a zero-mean GP with Matern-5/2 ARD kernel, and its gradient.

    ``theta = (log l_1, ..., log l_d, log s2, log noise)``. Returns ``(lml, grad)``
    (``grad`` of the same shape as theta) or just ``lml``; ``-inf`` if K is not
    positive definite. Formulas in the module docstring, section 2.
    """
    scipy = _require_scipy()
    n, dim = X.shape
    length_scales = np.exp(theta[:dim])
    signal_var, noise = math.exp(theta[dim]), math.exp(theta[dim + 1])
    r = np.sqrt(_scaled_sq_dist(X, X, length_scales))
    decay = np.exp(-SQRT5 * r)
    K_f = signal_var * (1.0 + SQRT5 * r + (5.0 / 3.0) * r * r) * decay
    K = K_f + (noise + JITTER) * np.eye(n)
    L, info = scipy.linalg.lapack.dpotrf(K, lower=1, clean=1)
    if info != 0:                                   # not positive definite
        return (-np.inf, np.zeros_like(theta)) if return_grad else -np.inf
    alpha = scipy.linalg.cho_solve((L, True), y, check_finite=False)
    lml = -0.5 * float(y @ alpha) - float(np.log(np.diag(L)).sum()) - 0.5 * n * LOG_2PI
    if not return_grad:
        return lml
    K_inv, _ = scipy.linalg.lapack.dpotri(L, lower=1)   # lower triangle of K^{-1}
    K_inv = K_inv + np.tril(K_inv, -1).T
    W = np.outer(alpha, alpha) - K_inv          # d lml / dK = W / 2
    grad = np.empty_like(theta)
    # dK/dlog l_j = G * D_j^2 / l_j^2, G = 5/3 s2 (1 + sqrt5 r) e^{-sqrt5 r};
    # sum_ab M_ab (x_aj - x_bj)^2 = 2 sum_a x_aj^2 (M 1)_a - 2 x_j^T M x_j for symmetric M.
    M = W * ((5.0 / 3.0) * signal_var * (1.0 + SQRT5 * r) * decay)
    row_sums = M.sum(1)
    quad = 2.0 * (X * X).T @ row_sums - 2.0 * np.einsum("aj,aj->j", X, M @ X)
    grad[:dim] = 0.5 * quad / (length_scales ** 2)
    grad[dim] = 0.5 * float((W * K_f).sum())
    grad[dim + 1] = 0.5 * noise * float(np.trace(W))
    return lml, grad


# ------------------------------------------------------------------------ regression

class GaussianProcess:
    """GP regression on the unit cube with Matern-5/2 ARD kernel and fitted hyperparameters.

    >>> gp = GaussianProcess().fit(X, y)        # X: (n, d) in [0,1]^d, y: (n,)
    >>> mean, var = gp.predict(X_new)           # in the units of y
    """

    def __init__(self, n_restarts: int = 2, seed: int | None = 0, theta: np.ndarray | None = None,
                 optimize: bool = True, max_iter: int = 200):
        self.n_restarts = n_restarts
        self.rng = np.random.default_rng(seed)
        self.theta = None if theta is None else np.asarray(theta, dtype=float)
        self.optimize = optimize
        self.max_iter = max_iter

    # -- fitting --
    def fit(self, X: np.ndarray, y: np.ndarray, warm_start: np.ndarray | None = None):
        """Standardize y, fit theta by MAP (L-BFGS-B, restarts), precompute the Cholesky factor."""
        scipy = _require_scipy()
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float).ravel()
        if X.ndim != 2 or len(X) != len(y) or len(y) == 0:
            raise ValueError(f"GaussianProcess.fit expects X (n, d) and y (n,), got {X.shape}, {y.shape}")
        self.X = X
        self.y_mean = float(y.mean())
        self.y_std = float(y.std()) if y.std() > 0 else 1.0
        self.y_norm = (y - self.y_mean) / self.y_std
        prior = KernelPrior(X.shape[1])
        self.prior = prior
        if self.optimize:
            starts = [prior.mode()]
            if warm_start is not None:
                starts.insert(0, np.clip(warm_start, *np.array(prior.bounds).T))
            elif self.theta is not None and len(self.theta) == len(prior.mean):
                starts.insert(0, self.theta)
            starts += [prior.sample(self.rng) for _ in range(self.n_restarts)]

            def negative_log_posterior(theta):
                lml, grad = log_marginal_likelihood(theta, X, self.y_norm)
                if not np.isfinite(lml):
                    return 1e25, np.zeros_like(theta)
                log_prior, prior_grad = prior.log_density(theta)
                return -(lml + log_prior), -(grad + prior_grad)

            best = None
            for start in starts:
                result = scipy.optimize.minimize(negative_log_posterior, start, jac=True,
                                                 method="L-BFGS-B", bounds=prior.bounds,
                                                 options={"maxiter": self.max_iter})
                if best is None or result.fun < best.fun:
                    best = result
            self.theta = best.x
        elif self.theta is None:
            self.theta = prior.mode()
        self._factorize()
        return self

    def _factorize(self):
        scipy = _require_scipy()
        dim = self.X.shape[1]
        self.length_scales = np.exp(self.theta[:dim])
        self.signal_var = math.exp(self.theta[dim])
        self.noise = math.exp(self.theta[dim + 1])
        K = matern52(self.X, self.X, self.length_scales, self.signal_var)
        K[np.diag_indices_from(K)] += self.noise + JITTER
        self.L = scipy.linalg.cholesky(K, lower=True, check_finite=False)
        self.alpha = scipy.linalg.cho_solve((self.L, True), self.y_norm, check_finite=False)
        self._K_inv = None

    def condition_on(self, X_extra: np.ndarray, y_extra: np.ndarray):
        """Add fantasy observations (normalized units) without refitting theta (constant liar)."""
        if len(X_extra):
            self.X = np.vstack([self.X, X_extra])
            self.y_norm = np.concatenate([self.y_norm, y_extra])
            self._factorize()
        return self

    # -- prediction --
    def predict_normalized(self, Xs: np.ndarray, return_grad: bool = False):
        """Posterior mean and variance in normalized units (optionally their x-gradients).

        ``mean = k_*^T alpha``, ``var = s2 - |L^{-1} k_*|^2`` (module docstring, section 1).
        With ``return_grad``: ``d mean/dx`` and ``d var/dx``, each (m, d), using
        ``dk/dx = -5/3 s2 (1 + sqrt5 r) e^{-sqrt5 r} (x - x_i) / l^2``.
        """
        scipy = _require_scipy()
        Xs = np.atleast_2d(np.asarray(Xs, dtype=float))
        r = np.sqrt(_scaled_sq_dist(Xs, self.X, self.length_scales))
        decay = np.exp(-SQRT5 * r)
        k_star = self.signal_var * (1.0 + SQRT5 * r + (5.0 / 3.0) * r * r) * decay   # (m, n)
        mean = k_star @ self.alpha
        if not return_grad:
            v = scipy.linalg.solve_triangular(self.L, k_star.T, lower=True, check_finite=False)
            return mean, np.maximum(self.signal_var - (v * v).sum(0), 1e-12)
        # The gradient path runs for a few points at a time inside L-BFGS-B, where two
        # SciPy triangular solves cost more in call overhead than in arithmetic: use the
        # explicit K^{-1} (computed once per factorization) and plain matrix products.
        if self._K_inv is None:
            K_inv, _ = scipy.linalg.lapack.dpotri(self.L, lower=1)
            self._K_inv = K_inv + np.tril(K_inv, -1).T
        K_inv_k = k_star @ self._K_inv                                               # (m, n)
        var = np.maximum(self.signal_var - (k_star * K_inv_k).sum(1), 1e-12)
        # G[a, i] = dk(x_a, x_i)/d r^2 * 2 ... folded: dk/dx_a = -G[a,i] (x_a - X_i) / l^2
        G = (5.0 / 3.0) * self.signal_var * (1.0 + SQRT5 * r) * decay             # (m, n)
        inv_l2 = 1.0 / self.length_scales ** 2

        def contract(weights):   # sum_i weights[a,i] * dk(x_a,X_i)/dx_a
            wG = weights * G
            return -(wG.sum(1)[:, None] * Xs - wG @ self.X) * inv_l2

        mean_grad = contract(np.broadcast_to(self.alpha, G.shape))
        var_grad = -2.0 * contract(K_inv_k)
        return mean, var, mean_grad, var_grad

    def predict(self, Xs: np.ndarray):
        """Posterior mean and variance of f at the rows of Xs, in the units of y."""
        mean, var = self.predict_normalized(Xs)
        return self.y_mean + self.y_std * mean, var * self.y_std ** 2


# ------------------------------------------------------------------- acquisitions

def _normal_pdf(z):
    return np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def expected_improvement(mean, std, best):
    """``EI = E[max(best - f, 0)] = std * (z Phi(z) + phi(z))``, ``z = (best - mean)/std`` (minimizing)."""
    scipy = _require_scipy()
    z = (best - np.asarray(mean, dtype=float)) / std
    return std * (z * scipy.special.ndtr(z) + _normal_pdf(z))


def log_h(z):
    """``log(phi(z) + z Phi(z))``, accurate for every z (EI = sigma * h(z)).

    * z > -1: no cancellation, evaluate directly.
    * z <= -1: ``h = phi(z) (1 + z Phi(z)/phi(z))`` and the Mills-type ratio
      ``Phi(z)/phi(z) = sqrt(pi/2) erfcx(-z/sqrt2)`` has no underflow, so
      ``log h = log phi(z) + log1p(z sqrt(pi/2) erfcx(-z/sqrt2))``.
    * z < -1e3: that log1p argument is ~ -1 + 1/z^2 and loses all digits; use the
      asymptotic series ``h ~ phi(z)/z^2 (1 - 3/z^2 + 15/z^4)``.
    """
    scipy = _require_scipy()
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    log_phi = -0.5 * z * z - 0.5 * LOG_2PI
    upper = z > -1.0
    zu = z[upper]
    out[upper] = np.log(_normal_pdf(zu) + zu * scipy.special.ndtr(zu))
    middle = (~upper) & (z >= -1e3)
    zm = z[middle]
    out[middle] = log_phi[middle] + np.log1p(
        zm * math.sqrt(math.pi / 2.0) * scipy.special.erfcx(-zm / math.sqrt(2.0)))
    tail = z < -1e3
    zt = z[tail]
    inv2 = 1.0 / (zt * zt)
    out[tail] = log_phi[tail] + np.log(inv2) + np.log1p(-3.0 * inv2 + 15.0 * inv2 * inv2)
    return out


def log_expected_improvement(mean, std, best, return_dz: bool = False):
    """``log EI = log std + log h(z)`` (minimizing); optionally ``d log h / dz = Phi(z)/h(z)``."""
    scipy = _require_scipy()
    z = (best - np.asarray(mean, dtype=float)) / std
    lh = log_h(z)
    value = np.log(std) + lh
    if return_dz:
        return value, z, np.exp(scipy.special.log_ndtr(z) - lh)
    return value


def lower_confidence_bound(mean, std, beta: float = 4.0):
    """UCB for minimization, as a score to maximize: ``-(mean - sqrt(beta) std)``."""
    return -(np.asarray(mean, dtype=float) - math.sqrt(beta) * std)


def acquisition_and_grad(gp: GaussianProcess, U: np.ndarray, best: float,
                         kind: str = "log_ei", beta: float = 4.0, return_grad: bool = True):
    """Score rows of U (unit cube) by the acquisition, in normalized GP units; higher is better.

    ``log_ei``: ``log sigma + log h(z)``, ``z = (best - mu)/sigma``; by the chain rule
    ``d/dx = (dsigma/sigma)(1 - z h'(z)/h(z)) - (h'(z)/h(z)) dmu/sigma`` with ``h' = Phi``.
    ``ucb``: ``-(mu - sqrt(beta) sigma)``.
    """
    if return_grad:
        mean, var, mean_grad, var_grad = gp.predict_normalized(U, return_grad=True)
    else:
        mean, var = gp.predict_normalized(U)
    std = np.sqrt(var)
    if kind == "log_ei":
        if not return_grad:
            return log_expected_improvement(mean, std, best)
        value, z, dlogh_dz = log_expected_improvement(mean, std, best, return_dz=True)
        std_grad = var_grad / (2.0 * std)[:, None]
        grad = (std_grad * ((1.0 - z * dlogh_dz) / std)[:, None]
                - mean_grad * (dlogh_dz / std)[:, None])
        return value, grad
    if kind == "ucb":
        value = lower_confidence_bound(mean, std, beta)
        if not return_grad:
            return value
        std_grad = var_grad / (2.0 * std)[:, None]
        return value, -mean_grad + math.sqrt(beta) * std_grad
    raise ValueError(f"acquisition must be 'log_ei' or 'ucb', got {kind!r}")


def maximize_acquisition(gp: GaussianProcess, best: float, rng: np.random.Generator,
                         project=None, is_taken=None, incumbents: np.ndarray | None = None,
                         kind: str = "log_ei", beta: float = 4.0, n_candidates: int = 1024,
                         n_local: int = 512, n_refine: int = 10, max_iter: int = 100) -> np.ndarray:
    """Return the valid point of the unit cube with the highest acquisition found.

    1. Score ``n_candidates`` scrambled-Sobol points and ``n_local`` Gaussian
       perturbations of the ``incumbents`` (the best points so far: the optimum of a
       BO acquisition is often close to them, and random points rarely land there in
       several dimensions).
    2. Polish ``n_refine`` starts with L-BFGS-B on the continuous relaxation, using
       the analytic gradient: the best candidate, the best point observed so far, and
       candidates drawn in proportion to ``exp(acquisition)`` (the local-search
       initialization of Optuna's GPSampler). All starts go into one L-BFGS-B problem
       (the sum of their acquisitions, separable, so each block follows its own
       gradient): one SciPy call instead of ``n_refine``.
    3. ``project`` snaps points to valid ones (round integers, one-hot argmax, neutral
       inactive dimensions); the projected pool is re-scored and the best point not
       ``is_taken`` (already observed or pending) wins.
    """
    scipy = _require_scipy()
    dim = gp.X.shape[1]
    project = project or (lambda U: U)
    sobol = scipy.stats.qmc.Sobol(dim, scramble=True, seed=rng)
    pools = [sobol.random(n_candidates)]
    if incumbents is not None and len(incumbents) and n_local:
        picks = incumbents[rng.integers(len(incumbents), size=n_local)]
        scales = np.array([0.2, 0.05, 0.01, 0.002])[rng.integers(4, size=n_local)][:, None]
        pools.append(np.clip(picks + scales * gp.length_scales.clip(max=1.0)
                             * rng.standard_normal(picks.shape), 0.0, 1.0))
    raw = np.vstack(pools)
    if getattr(project, "vectorized", False):     # cheap to snap: score only valid points
        raw = project(raw)
    raw_scores = acquisition_and_grad(gp, raw, best, kind, beta, return_grad=False)
    order = np.argsort(-raw_scores)
    # Starts: the best candidate, the incumbent itself (nudged off its observed point, where
    # sigma = 0), and the rest drawn with probability proportional to exp(score) (a
    # "roulette": mostly good candidates, but from several basins, not ten copies of one).
    chosen = [order[0]]
    weights = np.exp(np.clip(raw_scores - raw_scores[order[0]], -700.0, 0.0))
    weights[order[0]] = 0.0
    n_roulette = min(n_refine - 2, int(np.count_nonzero(weights > 0)))
    if n_roulette > 0:
        chosen += list(rng.choice(len(raw), size=n_roulette, replace=False, p=weights / weights.sum()))
    starts = raw[chosen]
    if incumbents is not None and len(incumbents):
        nudged = np.clip(incumbents[:1] + 1e-3 * rng.standard_normal((1, dim)), 0.0, 1.0)
        starts = np.vstack([starts, nudged])

    def negative_total(flat):
        values, grads = acquisition_and_grad(gp, flat.reshape(-1, dim), best, kind, beta)
        return -float(values.sum()), -grads.ravel()

    result = scipy.optimize.minimize(negative_total, starts.ravel(), jac=True, method="L-BFGS-B",
                                     bounds=[(0.0, 1.0)] * starts.size,
                                     options={"maxiter": max_iter})
    pool = np.vstack([result.x.reshape(-1, dim), raw[order[:64]]])
    pool = project(pool)
    scores = acquisition_and_grad(gp, pool, best, kind, beta, return_grad=False)
    for index in np.argsort(-scores):
        if is_taken is None or not is_taken(pool[index]):
            return pool[index]
    # Everything near the optimum is taken: take the best untaken random point.
    extra = project(rng.random((4 * n_candidates, dim)))
    scores = acquisition_and_grad(gp, extra, best, kind, beta, return_grad=False)
    for index in np.argsort(-scores):
        if is_taken is None or not is_taken(extra[index]):
            return extra[index]
    return extra[int(np.argmax(scores))]


# ------------------------------------------------------------------ the searcher

def yeo_johnson(y: np.ndarray, lam):
    """The Yeo-Johnson power transform ``psi_lambda(y)`` (elementwise; ``lam`` may be an array
    broadcasting against y)::

        y >= 0:  ((y + 1)^lam - 1) / lam            (log(y + 1) at lam = 0)
        y <  0:  -((1 - y)^(2 - lam) - 1) / (2 - lam)  (-log(1 - y) at lam = 2)
    """
    y, lam = np.broadcast_arrays(np.asarray(y, dtype=float), np.asarray(lam, dtype=float))
    out = np.empty(y.shape)
    pos = y >= 0
    lp, yp = lam[pos], y[pos]
    small = np.abs(lp) < 1e-8
    out[pos] = np.where(small, np.log1p(yp), np.expm1(lp * np.log1p(yp)) / np.where(small, 1.0, lp))
    ln, yn = 2.0 - lam[~pos], y[~pos]
    small = np.abs(ln) < 1e-8
    out[~pos] = -np.where(small, np.log1p(-yn), np.expm1(ln * np.log1p(-yn)) / np.where(small, 1.0, ln))
    return out


def warp_outputs(y: np.ndarray, lambdas: np.ndarray = np.linspace(-2.0, 1.0, 61)) -> np.ndarray:
    """Yeo-Johnson transform of y with the exponent that makes it most Gaussian (max likelihood).

    A GP assumes Gaussian outputs; objectives are often heavy-tailed (a loss that
    explodes for bad learning rates, Rosenbrock's 1e4 walls). A few huge values then
    set the output scale and flatten the region that matters. The monotone transform
    ``psi_lambda`` (Yeo & Johnson, 2000; see :func:`yeo_johnson`) keeps the order of the
    values, so the minimum is still the minimum. ``lambda`` maximizes the profile
    log-likelihood ``-n/2 log var(psi_lambda(y)) + (lambda - 1) sum sign(y) log(1 + |y|)``
    over a grid in [-2, 1]: ``lambda < 1`` compresses large (bad) values and stretches
    small (good) ones; ``lambda > 1`` would compress the few very good values, exactly
    the ones the search must resolve, so it is not allowed (1 = no change).
    """
    scaled = (y - np.median(y)) / (np.std(y) + 1e-300)
    with np.errstate(all="ignore"):
        warped = yeo_johnson(scaled[None, :], lambdas[:, None])          # (n_lambdas, n)
        log_lik = (-0.5 * len(y) * np.log(warped.var(axis=1))
                   + (lambdas - 1.0) * np.sum(np.sign(scaled) * np.log1p(np.abs(scaled))))
    log_lik[~np.isfinite(log_lik)] = -np.inf
    best = int(np.argmax(log_lik))
    if not np.isfinite(log_lik[best]) or np.ptp(warped[best]) == 0:
        return y
    return warped[best]


class _Projector:
    """Snap many unit-cube points to valid encodings at once (``space.snap`` row by row is slow).

    Floats pass through; each Int coordinate goes to its value's encoding (the Int's own
    ``decode``/``encode``, applied elementwise); each one-hot group becomes exactly one 1
    at its arg-max. Spaces with conditions fall back to ``space.snap`` per row, since
    which coordinates are active (and so neutral) depends on the other values.
    """

    def __init__(self, space):
        self.space = space
        self.conditional = any(dim.when for dim in space.dims.values())
        self.vectorized = not self.conditional
        self.integer_dims, self.onehot_groups = [], []
        for encoded in space.encoded_dims:
            if encoded.kind == "integer":
                dim = space.dims[encoded.param]
                snap = np.frompyfunc(lambda u, dim=dim: dim.encode(dim.decode(u))[0], 1, 1)
                self.integer_dims.append((encoded.index, snap))
            elif encoded.kind == "onehot" and encoded.index == encoded.group[0]:
                self.onehot_groups.append(list(encoded.group))

    def __call__(self, U: np.ndarray) -> np.ndarray:
        U = np.clip(np.atleast_2d(U), 0.0, 1.0)
        if self.conditional:
            return np.array([self.space.snap(u) for u in U]).reshape(len(U), -1)
        U = U.copy()
        for index, snap in self.integer_dims:
            U[:, index] = snap(U[:, index]).astype(float)
        for group in self.onehot_groups:
            winners = np.argmax(U[:, group], axis=1)
            U[:, group] = 0.0
            U[np.arange(len(U)), np.asarray(group)[winners]] = 1.0
        return U


class GPSearch(Searcher):
    """Bayesian optimization with a Gaussian process (see the module docstring for the math).

    ``GPSearch(seed=0, n_initial=10, acquisition="log_ei")``:

    * the first ``n_initial`` trials are a Latin hypercube on the unit cube (each
      coordinate's ``n_initial`` strata are hit once: spread out more evenly than
      random points), decoded into the space; ``initial_design="sobol"`` or
      ``"random"`` for the alternatives;
    * objective values pass through a fitted Yeo-Johnson transform
      (:func:`warp_outputs`; ``output_warping=False`` turns it off), so a few huge
      losses do not flatten the model where the good values are;
    * then every ``ask`` fits a GP to the completed trials and maximizes the
      acquisition (``"log_ei"`` or ``"ucb"`` with ``beta``) over valid points
      (:func:`maximize_acquisition`);
    * trials still running are *pending*: the GP is told a "constant lie" for each
      (the best value seen so far), which collapses the uncertainty at that point, so
      several asks before any tell spread out instead of proposing the same point;
    * failed trials are left out of the hyperparameter fit; afterwards each is added as
      a pessimistic fantasy (the worst value seen), which steers the search away from
      regions that crash without letting a crash distort the model's scales;
    * a point equal to any earlier trial (complete, failed or pending), or closer to one
      than ``min_distance`` (max-norm on the unit cube), is never proposed;
    * ``xi`` > 0 asks EI for improvements larger than ``xi`` (normalized units): more
      exploration, less precision. Default 0.

    Kernel hyperparameters are refitted with ``n_restarts`` random restarts while there
    are at most ``full_refit_until`` observations; after that from the previous
    optimum (plus a full refit every ``full_refit_every`` asks), which keeps a
    suggestion fast as the history grows.

    What an ask proposes is a function of the seed and the study's trials alone, so a study
    reopened from storage in a new process goes on exactly as an uninterrupted one would:
    ask ``k`` (``k`` trials in the study) draws from ``np.random.default_rng([seed, k, 1])``
    (see :func:`~nnhp.search.searcher.resolve_seed`; ``seed=None`` draws a seed once), and the
    previous optimum and the count of model-based asks are read from the trials, each of which
    records the hyperparameters its GP was fitted with as ``info["theta"]``.
    """

    name = "gp"

    def __init__(self, seed: int | None = 0, n_initial: int = 10, acquisition: str = "log_ei", *,
                 beta: float = 4.0, n_candidates: int = 1024, n_restarts: int = 2,
                 full_refit_until: int = 60, full_refit_every: int = 10, output_warping: bool = True, xi: float = 0.0,
                 min_distance: float = 1e-4, initial_design: str = "lhs"):
        if acquisition not in ("log_ei", "ucb"):
            raise ValueError(f"acquisition must be 'log_ei' or 'ucb', got {acquisition!r}")
        if n_initial < 1:
            raise ValueError(f"n_initial must be >= 1, got {n_initial!r}")
        self.seed = resolve_seed(seed)
        self.n_initial = int(n_initial)
        self.acquisition = acquisition
        self.beta = beta
        self.n_candidates = n_candidates
        self.n_restarts = n_restarts
        self.full_refit_until = full_refit_until
        self.full_refit_every = full_refit_every
        self.output_warping = output_warping
        self.xi = float(xi)
        self.min_distance = float(min_distance)
        if initial_design not in ("lhs", "sobol", "random"):
            raise ValueError(f"initial_design must be 'lhs', 'sobol' or 'random', got {initial_design!r}")
        self.initial_design = initial_design
        self._design = None
        self._projector = None
        self._encodings = {}             # trial id -> its point of the unit cube
        self.last_gp = None

    def __repr__(self) -> str:
        return f"GPSearch(seed={self.seed}, n_initial={self.n_initial}, acquisition={self.acquisition!r})"

    # -- the initial design --
    def _initial_point(self, space, index: int) -> np.ndarray:
        """Point ``index`` of the initial design: a Latin hypercube of ``n_initial`` points
        ("lhs": each coordinate's n strata hit once, in random combinations), a scrambled
        Sobol sequence ("sobol"), or independent uniform points ("random"); past
        ``n_initial`` (failed or duplicate initial trials) the points are uniform."""
        scipy = _require_scipy()
        dim = max(space.n_encoded, 1)
        if self._design is None:
            if self.initial_design == "lhs":
                self._design = scipy.stats.qmc.LatinHypercube(dim, seed=self.seed).random(self.n_initial)
            elif self.initial_design == "sobol":
                size = 2 ** int(math.ceil(math.log2(self.n_initial)))
                self._design = scipy.stats.qmc.Sobol(dim, scramble=True, seed=self.seed).random(size)
            else:
                self._design = np.empty((0, dim))
        if index < min(len(self._design), self.n_initial):
            return self._design[index, :space.n_encoded]
        return np.random.default_rng([self.seed, index]).random(space.n_encoded)

    def _encode(self, space, trial) -> np.ndarray:
        cached = self._encodings.get(trial.id)
        if cached is None or cached[0] is not space:
            cached = self._encodings[trial.id] = (space, space.encode(trial.params))
        return cached[1]

    # -- the protocol --
    def ask(self, study):
        _require_scipy()                  # load SciPy's BLAS before limiting its threads
        with limit_blas_threads(1):       # small matrices: see nnhp.blas
            return self._ask(study)

    def _ask(self, study):
        space = study.space
        if space.n_encoded == 0:                     # nothing to search: one fixed point
            return Proposal(params=space.decode(np.empty(0)), info={"searcher": "gp", "phase": "fixed"})
        sign = -1.0 if getattr(study, "direction", "minimize") == "maximize" else 1.0
        trials = list(study.trials)
        taken = {space.key(t.params) for t in trials}
        complete = [t for t in trials if t.state == "complete" and t.value is not None
                    and math.isfinite(t.value)]
        pending = [t for t in trials if t.state == "running"]
        failed = [t for t in trials if t.state == "failed"]
        # A generator for this ask alone, seeded by (seed, trials so far) rather than one whose
        # state runs on from ask to ask: then nothing about the draws lives only in this process's
        # memory. The third word keeps it apart from the design's (seed, index) stream above.
        rng = np.random.default_rng([self.seed, len(trials), 1])

        if len(trials) < self.n_initial or len(complete) < 2:
            index = len(trials)
            for attempt in range(index, index + 64):
                params = space.decode(self._initial_point(space, attempt))
                if space.key(params) not in taken:
                    break
            else:
                params = space.sample(rng)
            return Proposal(params=params, info={"searcher": "gp", "phase": "initial"})

        X = np.array([self._encode(space, t) for t in complete])
        y = sign * np.array([t.value for t in complete], dtype=float)
        if self.output_warping and len(y) >= 3 and np.ptp(y) > 0:
            y = warp_outputs(y)
        # The previous fit, as recorded with the latest model-based trial (also for a study
        # reopened in a new process): its optimum is the warm start, their count the refit rhythm.
        fitted = [t.info["theta"] for t in trials
                  if t.info.get("phase") == "model" and len(t.info.get("theta", ())) == X.shape[1] + 2]
        previous = np.array(fitted[-1], dtype=float) if fitted else None
        full = len(complete) <= self.full_refit_until or len(fitted) % self.full_refit_every == 0
        gp = GaussianProcess(n_restarts=self.n_restarts if full else 0, seed=rng.integers(2**31),
                             max_iter=200 if full else 50)
        gp.fit(X, y, warm_start=previous)
        best = float(gp.y_norm.min())
        target = best - self.xi     # EI counts only improvements beyond xi (normalized units)
        # Fantasies, added after the hyperparameters are fitted on real results only:
        # pending trials get the optimistic lie "as good as the best" (constant liar),
        # failed ones the pessimistic "as bad as the worst", so the search neither
        # crowds around a running point nor walks back into a region that crashes.
        worst = float(gp.y_norm.max())
        fantasies = [(t, best) for t in pending] + [(t, worst) for t in failed]
        if fantasies:
            gp.condition_on(np.array([self._encode(space, t) for t, _ in fantasies]),
                            np.array([lie for _, lie in fantasies]))
        if self._projector is None or self._projector.space is not space:
            self._projector = _Projector(space)

        # A point within min_distance (max-norm, unit cube) of an earlier one is as good as
        # taken: re-measuring next to a known value teaches little, and without this rule
        # EI can creep towards a boundary optimum in ever smaller steps (seen on Branin).
        seen = gp.X                                   # observed, pending and failed points

        def is_taken(u):
            if self.min_distance > 0 and np.min(np.max(np.abs(seen - u), axis=1)) < self.min_distance:
                return True
            return space.key(space.decode(u)) in taken

        incumbents = X[np.argsort(y)[:5]]
        u = maximize_acquisition(gp, target, rng, project=self._projector, is_taken=is_taken,
                                 incumbents=incumbents, kind=self.acquisition, beta=self.beta,
                                 n_candidates=self.n_candidates)
        self.last_gp = gp
        return Proposal(params=space.decode(u),
                        info={"searcher": "gp", "phase": "model", "theta": gp.theta.tolist()})

    def tell(self, study, trial):
        """Nothing to update: every ask refits on the study's trials (failed ones excluded)."""
