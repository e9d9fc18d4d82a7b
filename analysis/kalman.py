"""Kalman filter and Rauch-Tung-Striebel smoother for local-level (random-walk) states.

Model, independently for each of the ``d`` dimensions (emotion or ethics readings of a stream):

    x_k = x_{k-1} + w_k,   w_k ~ N(0, q * (t_k - t_{k-1}))     (state drifts more over longer gaps)
    y_k = x_k + v_k,       v_k ~ N(0, r_k)                      (r_k given per item, e.g. the model's
                                                                  own predictive variance)

Items of a conversation or diary arrive at irregular times, so the process noise is scaled by the gap.
The first state is initialised diffusely (infinite prior variance), i.e. at the first reading with
that reading's variance. The filter runs forward in time (a loop over items), vectorised over
dimensions; the smoother runs backwards and uses all readings, which is what a retrospective stream
analysis wants.

When the noise levels are not known they are maximum-likelihood estimates of the filter's innovation
likelihood: :func:`estimate_process_var` finds ``q`` alone (the readings' variances taken as absolute;
``kalman_smooth``'s default), :func:`fit_noise` finds ``q`` and a scale ``s`` of the readings' variances
(``r_k = s * obs_var_k``, for variances that are only relative noise levels), either one held fixed if given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from ._checks import as_timestamps, finite_array

__all__ = ["KalmanResult", "NoiseFit", "estimate_process_var", "fit_noise", "kalman_smooth"]

#: :func:`fit_noise`'s first log10 grid spans this many decades either side of its data-driven centre
#: in steps of ``_GRID_STEP``; each of the ``_GRID_REFINEMENTS`` refinements searches 9 points at a
#: quarter of the previous step around the best point (to 1/32 decade, about 7 %).
_GRID_HALF_DECADES = 4.0
_GRID_STEP = 0.5
_GRID_REFINEMENTS = 2


@dataclass(frozen=True)
class KalmanResult:
    """Filtered (causal) and smoothed (two-sided) means and variances, shape like the observations."""

    timestamps: np.ndarray
    filtered_mean: np.ndarray
    filtered_var: np.ndarray
    smoothed_mean: np.ndarray
    smoothed_var: np.ndarray
    process_var: np.ndarray
    log_likelihood: np.ndarray

    def band(self, z: float = 1.96, *, smoothed: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper uncertainty band, mean ± z·sd (z = 1.96 is a 95 % Gaussian band)."""
        mean = self.smoothed_mean if smoothed else self.filtered_mean
        sd = np.sqrt(self.smoothed_var if smoothed else self.filtered_var)
        return mean - z * sd, mean + z * sd


def _prepare(
    timestamps: Any, observations: Any, obs_var: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    t = as_timestamps(timestamps)
    y = finite_array(observations, "observations", ndim=(1, 2))
    squeeze = y.ndim == 1
    y2 = y[:, None] if squeeze else y
    if y2.shape[0] != t.shape[0]:
        raise ValueError(f"length mismatch: {t.shape[0]} timestamps but {y2.shape[0]} observations")
    r = finite_array(obs_var, "obs_var", ndim=(0, 1, 2))
    if r.ndim == 1 and r.shape[0] == y2.shape[0]:
        r = r[:, None]
    try:
        r = np.broadcast_to(r, y2.shape).astype(np.float64)
    except ValueError as exc:
        raise ValueError(
            f"obs_var of shape {r.shape} does not match observations of shape {y.shape} "
            "(give a scalar, one value per item, or one per item and dimension)"
        ) from exc
    if (r < 0).any():
        raise ValueError(f"obs_var must be non-negative; found {int((r < 0).sum())} negative value(s)")
    return t, y2, r, squeeze


def _per_dimension(value: Any, d: int, name: str = "process_var") -> np.ndarray:
    """A non-negative scalar or [d] parameter (``process_var``, ``obs_scale``) as float64 [d]."""
    q = finite_array(value, name, ndim=(0, 1))
    if q.ndim == 1 and q.shape[0] != d:
        raise ValueError(f"{name} has {q.shape[0]} entries for {d} dimensions")
    if (q < 0).any():
        raise ValueError(f"{name} must be non-negative")
    return np.broadcast_to(q, (d,)).astype(np.float64)


def _filter(
    t: np.ndarray, y: np.ndarray, r: np.ndarray, q: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Forward pass: filtered mean/var, one-step predicted var, and the log-likelihood per dimension."""
    n, d = y.shape
    m, p, p_pred = np.empty((n, d)), np.empty((n, d)), np.empty((n, d))
    m[0], p[0], p_pred[0] = y[0], r[0], np.inf  # diffuse start: the first reading alone
    ll = np.zeros(d)
    gaps = np.diff(t)
    for k in range(1, n):
        p_pred[k] = p[k - 1] + q * gaps[k - 1]
        s = p_pred[k] + r[k]
        innov = y[k] - m[k - 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = np.where(s > 0, p_pred[k] / s, 1.0)
            ll += np.where(s > 0, -0.5 * (np.log(2 * np.pi * s) + innov**2 / s), 0.0)
        m[k] = m[k - 1] + gain * innov
        p[k] = (1.0 - gain) * p_pred[k]
    return m, p, p_pred, ll


def _smooth(m: np.ndarray, p: np.ndarray, p_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rauch-Tung-Striebel backward pass for the random-walk model (transition matrix 1)."""
    ms, ps = m.copy(), p.copy()
    for k in range(m.shape[0] - 2, -1, -1):
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.where(p_pred[k + 1] > 0, p[k] / p_pred[k + 1], 0.0)
        ms[k] = m[k] + c * (ms[k + 1] - m[k])
        ps[k] = p[k] + c**2 * (ps[k + 1] - p_pred[k + 1])
    return ms, np.maximum(ps, 0.0)


def estimate_process_var(timestamps: Any, observations: Any, obs_var: Any) -> np.ndarray:
    """Maximum-likelihood process variance per unit time, one per dimension.

    Used when no prior drift rate is known and ``obs_var`` are absolute variances: the innovation likelihood
    of the filter is maximised over log q (bounded scalar search) on a bracket spanning twelve decades around
    the scale of the data. :func:`fit_noise` also estimates a scale of ``obs_var``.
    """
    t, y, r, _ = _prepare(timestamps, observations, obs_var)
    if y.shape[0] < 3:
        raise ValueError(f"need at least 3 observations to estimate the process variance, got {y.shape[0]}")
    mean_gap = float(np.mean(np.diff(t)))
    out = np.empty(y.shape[1])
    for j in range(y.shape[1]):
        scale = max(float(np.var(np.diff(y[:, j]))), float(np.mean(r[:, j])), 1e-12) / mean_gap

        def nll(log_q: float, j: int = j) -> float:
            return -float(_filter(t, y[:, j : j + 1], r[:, j : j + 1], np.array([np.exp(log_q)]))[3][0])

        centre = np.log(scale)
        res = minimize_scalar(nll, bounds=(centre - 14.0, centre + 14.0), method="bounded")
        out[j] = float(np.exp(res.x))
    return out


@dataclass(frozen=True)
class NoiseFit:
    """Noise parameters of the local-level model per dimension, as fitted by :func:`fit_noise`.

    ``at_edge`` lists ``(dimension, "process variance" | "observation scale")`` for every estimate that
    ended at the edge of the first search grid (the likelihood may still rise beyond it).
    """

    process_var: np.ndarray
    obs_scale: np.ndarray
    log_likelihood: np.ndarray
    at_edge: tuple[tuple[int, str], ...]


def fit_noise(
    timestamps: Any,
    observations: Any,
    obs_var: Any,
    *,
    process_var: Any | None = None,
    obs_scale: Any | None = None,
) -> NoiseFit:
    """Maximum-likelihood process variance ``q`` and observation scale ``s`` (``r_k = s * obs_var_k``).

    For readings whose variances are only relative noise levels (their absolute scale is unknown), so ``s``
    is estimated with ``q``. ``process_var`` / ``obs_scale`` (scalar or [d]) hold that parameter fixed. The
    innovation likelihood is maximised per dimension on a joint log10 grid of +-4 decades (step 1/2) around
    a data-driven centre, refined twice to 1/32 decade; a grid (not a continuous search) because every
    dimension and grid point is one column of a single vectorised filter run.
    """
    t, y, r, _ = _prepare(timestamps, observations, obs_var)
    n, d = y.shape
    q_given = None if process_var is None else _per_dimension(process_var, d)
    s_given = None if obs_scale is None else _per_dimension(obs_scale, d, "obs_scale")
    if q_given is not None and s_given is not None:
        ll = kalman_smooth(t, y, r * s_given[None, :], process_var=q_given).log_likelihood
        return NoiseFit(q_given, s_given, ll, ())
    if n < 3:
        raise ValueError(f"need at least 3 observations to estimate the noise parameters, got {n}")
    gaps = np.diff(t)
    dy = np.diff(y, axis=0)
    spread = np.maximum(np.var(dy, axis=0), 1e-12)
    q_centre = np.log10(spread / max(float(np.mean(gaps)), 1e-300))
    s_centre = np.log10(np.maximum(spread / 2.0, 1e-12) / np.maximum(np.median(r, axis=0), 1e-300))
    free_q, free_s = q_given is None, s_given is None
    offsets = np.arange(-_GRID_HALF_DECADES, _GRID_HALF_DECADES + 1e-9, _GRID_STEP)
    best_q = q_centre if free_q else np.log10(np.maximum(q_given, 1e-300))
    best_s = s_centre if free_s else np.log10(np.maximum(s_given, 1e-300))
    first_q, first_s = best_q.copy(), best_s.copy()
    step = _GRID_STEP
    ll_best = np.full(d, -np.inf)
    for level in range(_GRID_REFINEMENTS + 1):
        grid = offsets if level == 0 else np.arange(-4, 5) * step
        gq = grid if free_q else np.zeros(1)
        gs = grid if free_s else np.zeros(1)
        oq, os_ = (a.reshape(-1) for a in np.meshgrid(gq, gs, indexing="ij"))
        g = oq.shape[0]
        log_q = best_q[None, :] + oq[:, None]  # [g, d]
        log_s = best_s[None, :] + os_[:, None]
        obs = np.tile(y, (1, g))  # column c = g_index * d + j
        var = np.tile(r, (1, g)) * (10.0**log_s).reshape(1, -1)
        res = kalman_smooth(t, obs, var, process_var=10.0 ** log_q.reshape(-1))
        ll = res.log_likelihood.reshape(g, d)
        ll = np.where(np.isfinite(ll), ll, -np.inf)
        pick = np.argmax(ll, axis=0)
        best_q = log_q[pick, np.arange(d)]
        best_s = log_s[pick, np.arange(d)]
        ll_best = ll[pick, np.arange(d)]
        step = step / 4.0
    edge = []
    for j in range(d):
        if free_q and abs(best_q[j] - first_q[j]) >= _GRID_HALF_DECADES - 1e-6:
            edge.append((j, "process variance"))
        if free_s and abs(best_s[j] - first_s[j]) >= _GRID_HALF_DECADES - 1e-6:
            edge.append((j, "observation scale"))
    return NoiseFit(10.0**best_q, 10.0**best_s, ll_best, tuple(edge))


def kalman_smooth(
    timestamps: Any,
    observations: Any,
    obs_var: Any,
    process_var: Any | None = None,
) -> KalmanResult:
    """Filter and smooth irregularly timed readings of a drifting quantity.

    ``observations`` is [n] or [n, d]; ``obs_var`` is a scalar, [n] (one per item) or [n, d];
    ``process_var`` is the random-walk variance per unit time (scalar or [d]); ``None`` estimates it by
    maximum likelihood. ``timestamps`` must be strictly increasing (numbers or ``datetime64``, which are
    converted to seconds). An observation variance of 0 pins the state to that reading.
    """
    t, y, r, squeeze = _prepare(timestamps, observations, obs_var)
    q = estimate_process_var(t, y, r) if process_var is None else _per_dimension(process_var, y.shape[1])
    m, p, p_pred, ll = _filter(t, y, r, q)
    ms, ps = _smooth(m, p, p_pred)
    if squeeze:
        m, p, ms, ps = m[:, 0], p[:, 0], ms[:, 0], ps[:, 0]
    return KalmanResult(
        timestamps=t,
        filtered_mean=m,
        filtered_var=p,
        smoothed_mean=ms,
        smoothed_var=ps,
        process_var=q,
        log_likelihood=ll,
    )
