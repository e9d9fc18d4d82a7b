"""Stream analysis behind ``EthicsEmotionPipeline.analyze_stream(texts, timestamps)``.

A conversation or diary is analysed item by item by the pipeline; this module turns the per-item results
into time series and analyses them (DESIGN.md "Streams, Kalman and DSP"). It never invents data: every
point of every series is one item's reading (no series is simulated from scalars).

Readings (:func:`readings_from_results`)
    Per item, ``valence`` = ``analysis.emotion.sentiment`` (in [-1, 1]); the seven core emotions
    ``anger .. neutral`` = ``analysis.emotion.core`` (probabilities); ``regret`` =
    ``analysis.regret.model_potential`` (the regret head; ``potential`` if that key is absent).

Observation variance of a reading (``var_k``; the per-item noise of the Kalman model)
    Every probability ``p`` below enters the formulas clipped to ``p~ = clip(p, 0.01, 0.99)`` (valence
    through ``p = (1 + v) / 2``), so that a reading of exactly 0 or 1 cannot claim near-zero noise and pin
    the smoothed state.

    * ``"model"`` -- when the model's own uncertainty is available for every item (the Kalman-fused
      variance of the raw outputs, ``RedHeartOutput.uncertainty``, a variance in logit space), it is mapped
      to the reading's scale by the delta method:

      - probability ``p = sigmoid(z / T)``: ``Var(p) = (p~ (1 - p~) / T)^2 Var(z)``  (``T``: the calibration
        temperature of the emotion logits, 1 unless given);
      - core emotion ``p_g = max_{l in g} p_l``: the delta method through the group's arg-max member ``l*``
        (the max is locally that member), ``Var(p_g) = (p~_l* (1 - p~_l*) / T)^2 Var(z_l*)``;
      - valence ``v = tanh(s)``: ``Var(v) = (1 - v^2)^2 Var(s)`` (``1 - v^2 = 4 p (1 - p)``, clipped as above);
      - regret ``r = sigmoid(z)``: ``Var(r) = (r~ (1 - r~))^2 Var(z)``.

    * ``"bernoulli"`` -- otherwise: a probability reading ``p`` gets the Bernoulli variance ``p~ (1 - p~)``
      of the event it predicts, and valence ``v`` the variance ``1 - v^2 = 4 p~ (1 - p~)`` of a +-1 outcome
      with ``P(+1) = p = (1 + v) / 2``. Readings near 0.5 (valence near 0) are the least certain.

    Both are floored at ``min_var`` (1e-6, only to keep them positive). Neither has a trustworthy absolute
    scale (the fused variance's scale is not identified by training: the fusion gain only depends on the
    ratio of the two learned variances), so by default they are used as *relative* noise levels:
    the observation variance is ``s * var_k`` with a per-signal scale ``s`` estimated with the process variance (below). Pass
    ``obs_scale=1`` to use them as absolute variances.

Smoothing (:func:`analyze_readings`)
    Per signal, a local-level model ``x_k = x_{k-1} + w_k, w_k ~ N(0, q (t_k - t_{k-1}))`` (process noise
    grows with the gap), ``y_k = x_k + v_k, v_k ~ N(0, s var_k)``, filtered forward and smoothed backwards
    (Rauch-Tung-Striebel) by :func:`redheart.analysis.kalman_smooth`. ``q`` and ``s`` are maximum-likelihood
    estimates (the innovation likelihood of the filter, maximised on a log10 grid of +-4 decades around a
    data-driven centre, refined twice to 1/32 decade, about 7 %), unless given. Bands are
    ``mean +- z sd`` of the smoothed state (z = 1.96: 95 %).

Timestamps (:func:`stream_timestamps`)
    ``None``: item positions 0, 1, 2, ...; numbers: used as given (any unit); ``datetime``/``date``,
    ``numpy.datetime64`` or ISO-8601 strings: seconds since the first item (time-zone-aware values in UTC).
    They must be strictly increasing (items sharing a time must be merged or ordered by the caller).
    Process variances and periods are per / in these units.

Periodicity
    The smoothed trajectories (``spectrum_series="raw"`` for the readings) are linearly resampled onto a
    uniform grid (step = median gap, coarsened so the grid has at most ``max(4 n, 1024)`` points) and
    Welch's PSD is taken (:func:`redheart.analysis.welch_spectrum`, linear detrend). Peaks are reported per
    signal (:func:`redheart.analysis.dominant_periods`), keeping only periods seen at least twice
    (period <= span / 2). A stream with fewer than 8 items (or a grid of fewer than 8 points) gets
    ``{"status": "skipped", "reason": ...}`` instead of a spectrum.

SURD
    Which signals drive a later one: target ``surd_target`` at item ``k + lag`` versus agents
    ``surd_agents`` at item ``k`` (lag in items, not time units). Defaults: target = ``regret`` (next
    item), agents = ``valence``, ``sadness``, ``anger``; the series are the raw readings (``"filtered"``, the
    causal Kalman estimate, is the other choice; the two-sided smoothed series is refused because it mixes
    later readings into earlier items, which would leak the future into the agents). Each variable is cut
    into ``surd_bins`` equal-mass (quantile) states; ``"auto"`` picks the largest ``b`` in 4, 3, 2 with at
    least ``MIN_SAMPLES_PER_CELL`` (2) aligned samples per cell of the agents' joint histogram
    (``n - lag >= 2 b^n_agents``).

Errors versus explanations
    Malformed input raises ``ValueError``: mismatched lengths, timestamps that are not strictly increasing,
    non-finite readings, unknown signal names, a bad lag, fewer than ``MIN_ITEMS`` (3) items while noise
    parameters must be estimated, an error entry among the results. A stream that is merely too short or
    too flat for one analysis still gets the others: ``spectrum`` or ``surd`` then hold
    ``{"status": "skipped", "reason": ...}`` (too few items for the spectrum or for the bin count, a
    constant target).

Result of :func:`analyze_readings` (JSON-safe: plain dicts, lists, floats, strings; no NaN/inf):
``n_items``, ``signals``, ``time`` (timestamps, unit, origin, gaps), ``readings`` (per signal: value,
variance, variance_source), ``smoothed`` (per signal: mean, variance, lower, upper, filtered_mean,
filtered_variance), ``band``, ``noise`` (per signal: process_var, obs_scale, their sources, log-likelihood),
``spectrum``, ``surd`` (status, target, agents, lag, bins, shares, dominant, term_shares, agent_summary,
decomposition), ``method`` (these formulas) and ``notes``.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..analysis.kalman import kalman_smooth
from ..analysis.spectral import Spectrum, dominant_periods, welch_spectrum
from ..analysis.surd import ConstantTargetError, surd
from ..configuration_redheart.labels import CORE_LABELS, EKMAN_GROUPS

__all__ = [
    "DEFAULT_SIGNALS",
    "DEFAULT_SURD_AGENTS",
    "MIN_ITEMS",
    "MIN_SAMPLES_PER_CELL",
    "MIN_VAR",
    "StreamReadings",
    "analyze_readings",
    "analyze_stream_results",
    "check_stream_request",
    "readings_from_results",
    "stream_timestamps",
]

#: Signals read from every item, in this order.
DEFAULT_SIGNALS: tuple[str, ...] = ("valence", *CORE_LABELS, "regret")
#: Default SURD agents (current item) and target (``lag`` items later).
DEFAULT_SURD_AGENTS: tuple[str, ...] = ("valence", "sadness", "anger")
DEFAULT_SURD_TARGET = "regret"
DEFAULT_SURD_FALLBACK_TARGET = "valence"
#: Fewest items when the noise parameters are estimated from the stream.
MIN_ITEMS = 3
#: Probabilities are clipped to [P_CLIP, 1 - P_CLIP] in the variance formulas (valence: (1 + v) / 2 is).
P_CLIP = 0.01
#: Absolute floor of a reading's variance before scaling (only keeps variances positive).
MIN_VAR = 1e-6
#: "auto" SURD bins need at least this many aligned samples per cell of the agents' joint histogram.
MIN_SAMPLES_PER_CELL = 2.0
#: Candidate bin counts of "auto", largest first.
AUTO_BINS = (4, 3, 2)
#: Minimum number of full cycles for a reported period.
MIN_CYCLES = 2.0
#: Log10 half-width of the first noise-parameter grid around the data-driven centre, and its step.
_GRID_HALF_DECADES = 4.0
_GRID_STEP = 0.5
_GRID_REFINEMENTS = 2


# ----------------------------------------------------------------------------------------------------
# readings


@dataclass(frozen=True)
class StreamReadings:
    """Per-item readings ``values`` [n, d] of the signals ``names`` with their variances [n, d].

    ``variance_source`` says per signal how the variance was obtained (``"model"``, ``"bernoulli"`` or
    ``"given"``); see the module doc for the formulas.
    """

    names: tuple[str, ...]
    values: np.ndarray
    variances: np.ndarray
    variance_source: tuple[str, ...]

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float64)
        variances = np.asarray(self.variances, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != len(self.names):
            raise ValueError(f"values must be [n_items, {len(self.names)}], got shape {values.shape}")
        if variances.shape != values.shape:
            raise ValueError(f"variances have shape {variances.shape}, values {values.shape}")
        if len(self.variance_source) != len(self.names):
            raise ValueError("variance_source needs one entry per signal")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"signal names must be unique, got {self.names}")
        if values.shape[0] == 0:
            raise ValueError("a stream needs at least one item")
        for arr, what in ((values, "readings"), (variances, "variances")):
            bad = ~np.isfinite(arr)
            if bad.any():
                k, j = map(int, np.argwhere(bad)[0])
                raise ValueError(
                    f"{what} contain non-finite values (first: item {k}, signal {self.names[j]!r})"
                )
        if (variances < 0).any():
            raise ValueError("variances must be non-negative")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "variances", variances)

    @property
    def n_items(self) -> int:
        return int(self.values.shape[0])

    def index(self, name: str) -> int:
        if name not in self.names:
            raise ValueError(f"unknown signal {name!r}; the stream has {list(self.names)}")
        return self.names.index(name)

    def select(self, names: Sequence[str]) -> StreamReadings:
        cols = [self.index(n) for n in names]
        return StreamReadings(
            tuple(names),
            self.values[:, cols],
            self.variances[:, cols],
            tuple(self.variance_source[c] for c in cols),
        )

    @classmethod
    def from_arrays(
        cls,
        names: Sequence[str],
        values: Any,
        variances: Any = None,
        *,
        probability: Sequence[bool] | None = None,
        min_var: float = MIN_VAR,
    ) -> StreamReadings:
        """Readings from arrays; without ``variances`` the Bernoulli rule is applied (module doc).

        ``probability`` marks which signals are probabilities in [0, 1] (default: every name except
        ``valence``, which is read as a value in [-1, 1]).
        """
        names = tuple(str(n) for n in names)
        vals = np.asarray(values, dtype=np.float64)
        if vals.ndim == 1 and len(names) == 1:
            vals = vals[:, None]
        if vals.ndim != 2 or vals.shape[1] != len(names):
            raise ValueError(
                f"values must be [n_items, {len(names)}] for signals {list(names)}, got {vals.shape}"
            )
        if variances is not None:
            var = np.broadcast_to(np.asarray(variances, dtype=np.float64), vals.shape).copy()
            return cls(names, vals, var, ("given",) * len(names))
        kinds = [n != "valence" for n in names] if probability is None else list(probability)
        if len(kinds) != len(names):
            raise ValueError("probability needs one flag per signal")
        var = (
            np.column_stack([_bernoulli_var(vals[:, j], kinds[j], min_var) for j in range(len(names))])
            if np.isfinite(vals).all()
            else np.full_like(vals, np.nan)
        )
        return cls(names, vals, var, ("bernoulli",) * len(names))


def _bernoulli_var(x: np.ndarray, is_probability: bool, min_var: float) -> np.ndarray:
    """``p~ (1 - p~)`` for probabilities, ``4 p~ (1 - p~)`` with ``p = (1 + v) / 2`` for valence (= 1 - v^2);
    ``p~`` is ``p`` clipped to [P_CLIP, 1 - P_CLIP]; floored at ``min_var``."""
    p = np.clip(x if is_probability else (1.0 + x) / 2.0, P_CLIP, 1.0 - P_CLIP)
    var = p * (1.0 - p) * (1.0 if is_probability else 4.0)
    return np.maximum(var, min_var)


def _slope(p: float) -> float:
    """``p~ (1 - p~)``: the sigmoid's slope at a probability, with ``p`` clipped like the Bernoulli rule."""
    q = min(max(p, P_CLIP), 1.0 - P_CLIP)
    return q * (1.0 - q)


def _path(result: Mapping, path: tuple[str, ...], index: int) -> Any:
    node: Any = result
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            raise ValueError(
                f"results[{index}] has no '{'.'.join(path)}' (expected an ethics-emotion pipeline result; "
                f"missing key {key!r})"
            )
        node = node[key]
    return node


def _as_vector(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64).reshape(-1)


def _item_uncertainty(result: Mapping) -> dict[str, np.ndarray] | None:
    """The model's raw-output variances of one result, if the pipeline passed them through."""
    tensors = result.get("tensors") if isinstance(result.get("tensors"), Mapping) else {}
    meta = result.get("metadata") if isinstance(result.get("metadata"), Mapping) else {}
    for source in (tensors.get("uncertainty"), meta.get("uncertainty")):
        if isinstance(source, Mapping) and source:
            return {str(k): _as_vector(v) for k, v in source.items() if v is not None}
    flat = {
        k[len("uncertainty_") :]: _as_vector(v)
        for k, v in tensors.items()
        if k.startswith("uncertainty_") and v is not None
    }
    return flat or None


def readings_from_results(
    results: Sequence[Mapping],
    *,
    signals: Sequence[str] | None = None,
    uncertainty: Sequence[Mapping[str, Any] | None] | None = None,
    temperatures: Mapping[str, float] | None = None,
    min_var: float = MIN_VAR,
) -> StreamReadings:
    """Per-item readings and their variances from ethics-emotion pipeline results (module doc).

    ``uncertainty`` optionally gives, per item, the model's raw-output variances by task (the model's
    ``RedHeartOutput.uncertainty`` for that item: ``"emotion"`` [n_labels + n_kote + 1] in the order
    emotion logits, KOTE logits, sentiment; ``"regret"`` [2]: regret logit, utility log-std). Without it they
    are looked up in each result (``tensors["uncertainty"]``, ``tensors["uncertainty_<task>"]`` or
    ``metadata["uncertainty"]``). A signal uses ``"model"`` variances only if every item has them,
    otherwise ``"bernoulli"`` for the whole stream. ``temperatures["emotion_logits"]`` is the emotion
    calibration temperature (default 1).
    """
    if isinstance(results, (str, bytes, Mapping)) or not isinstance(results, Sequence):
        raise ValueError("results must be a list of per-item pipeline results")
    n = len(results)
    if n == 0:
        raise ValueError("a stream needs at least one item")
    names = tuple(signals) if signals is not None else DEFAULT_SIGNALS
    unknown = sorted(set(names) - set(DEFAULT_SIGNALS))
    if unknown:
        raise ValueError(f"unknown signals {unknown}; available: {list(DEFAULT_SIGNALS)}")
    if uncertainty is not None and len(uncertainty) != n:
        raise ValueError(f"length mismatch: {n} results but {len(uncertainty)} uncertainty entries")
    temp = float((temperatures or {}).get("emotion_logits", 1.0))
    if not math.isfinite(temp) or temp <= 0:
        raise ValueError(f"temperatures['emotion_logits'] must be positive, got {temp}")

    values = np.empty((n, len(names)))
    model_var = np.full((n, len(names)), np.nan)
    for i, result in enumerate(results):
        if not isinstance(result, Mapping):
            raise ValueError(f"results[{i}] is a {type(result).__name__}, not a pipeline result dict")
        if "error" in result and "analysis" not in result:
            raise ValueError(f"results[{i}] is an error entry, a stream needs every item: {result['error']}")
        emotion = _path(result, ("analysis", "emotion"), i)
        regret = _path(result, ("analysis", "regret"), i)
        u = uncertainty[i] if uncertainty is not None else _item_uncertainty(result)
        u = {str(k): _as_vector(v) for k, v in u.items() if v is not None} if u else {}
        labels = emotion.get("labels")
        n_labels = len(labels) if isinstance(labels, Mapping) else None
        n_kote = len(emotion["kote"]) if isinstance(emotion.get("kote"), Mapping) else None
        emo_u = u.get("emotion")
        if emo_u is not None and (
            n_labels is None or n_kote is None or emo_u.shape[0] != n_labels + n_kote + 1
        ):
            emo_u = None  # layout unknown: do not guess
        for j, name in enumerate(names):
            if name == "valence":
                v = float(_path(result, ("analysis", "emotion", "sentiment"), i))
                values[i, j] = v
                if emo_u is not None:
                    model_var[i, j] = (4.0 * _slope((1.0 + v) / 2.0)) ** 2 * emo_u[n_labels + n_kote]
            elif name == "regret":
                r = float(regret["model_potential"] if "model_potential" in regret else regret["potential"])
                values[i, j] = r
                reg_u = u.get("regret")
                if reg_u is not None and reg_u.shape[0] >= 1:
                    model_var[i, j] = _slope(r) ** 2 * reg_u[0]
            else:
                values[i, j] = float(_path(result, ("analysis", "emotion", "core", name), i))
                if emo_u is not None:
                    keys = list(labels)
                    members = [keys.index(m) for m in EKMAN_GROUPS[name] if m in labels]
                    if members:
                        probs = [float(labels[keys[m]]) for m in members]
                        best = members[int(np.argmax(probs))]
                        p = max(probs)
                        model_var[i, j] = (_slope(p) / temp) ** 2 * emo_u[best]
    if not np.isfinite(values).all():
        k, j = map(int, np.argwhere(~np.isfinite(values))[0])
        raise ValueError(f"results[{k}] has a non-finite {names[j]} reading")
    variances = np.empty_like(values)
    sources = []
    for j, name in enumerate(names):
        if np.isfinite(model_var[:, j]).all():
            variances[:, j] = np.maximum(model_var[:, j], min_var)
            sources.append("model")
        else:
            variances[:, j] = _bernoulli_var(values[:, j], name != "valence", min_var)
            sources.append("bernoulli")
    return StreamReadings(names, values, variances, tuple(sources))


# ----------------------------------------------------------------------------------------------------
# time


def stream_timestamps(timestamps: Any, n: int) -> tuple[np.ndarray, str, str | None]:
    """Timestamps as float64, their unit and origin: ``(t, unit, origin)``.

    ``None`` -> item positions 0..n-1 (unit ``"item"``); numbers -> as given (unit ``"given"``);
    ``datetime``/``date``/``numpy.datetime64``/ISO-8601 strings -> seconds since the first item (unit
    ``"second"``, origin = the first timestamp in ISO format). Raises ``ValueError`` for a length mismatch,
    non-finite values, or timestamps that are not strictly increasing.
    """
    if timestamps is None:
        return np.arange(n, dtype=np.float64), "item", None
    if isinstance(timestamps, (str, bytes)) or not hasattr(timestamps, "__len__"):
        raise ValueError("timestamps must be a sequence with one timestamp per item, or None")
    if len(timestamps) != n:
        raise ValueError(f"length mismatch: {n} items but {len(timestamps)} timestamps")
    if n == 0:
        raise ValueError("a stream needs at least one item")
    arr = np.asarray(timestamps)
    unit, origin = "given", None
    first = arr.reshape(-1)[0]
    if arr.dtype.kind in "OUS" and isinstance(first, (str, _dt.date, np.datetime64)) or arr.dtype.kind == "M":
        try:
            dt = np.array([_to_datetime64(x) for x in arr.reshape(-1)], dtype="datetime64[us]")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"timestamps could not be read as dates/times: {exc}") from exc
        if np.isnat(dt).any():
            raise ValueError("timestamps contain NaT")
        origin = str(dt[0])
        t = (dt - dt[0]) / np.timedelta64(1, "s")
        unit = "second"
    else:
        try:
            t = np.asarray(arr, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"timestamps must be numbers or dates/times: {exc}") from exc
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    if not np.isfinite(t).all():
        raise ValueError("timestamps contain NaN or infinite values")
    steps = np.diff(t)
    if steps.size and not (steps > 0).all():
        k = int(np.argmax(steps <= 0))
        raise ValueError(
            f"timestamps must be strictly increasing; timestamps[{k + 1}] <= timestamps[{k}] "
            f"({arr.reshape(-1)[k + 1]!r} <= {arr.reshape(-1)[k]!r}); merge items that share a time or order them"
        )
    return t, unit, origin


def _to_datetime64(x: Any) -> np.datetime64:
    if isinstance(x, _dt.datetime):
        if x.tzinfo is not None:
            x = x.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return np.datetime64(x, "us")
    if isinstance(x, (_dt.date, np.datetime64)):
        return np.datetime64(x, "us")
    if isinstance(x, str):
        parsed = _dt.datetime.fromisoformat(x.strip())
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return np.datetime64(parsed, "us")
    raise TypeError(f"cannot read {x!r} as a date/time")


# ----------------------------------------------------------------------------------------------------
# noise parameters


def _fit_noise(
    t: np.ndarray, y: np.ndarray, v: np.ndarray, q_given: np.ndarray | None, s_given: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[int, str]]]:
    """Maximum-likelihood (q, s) per column on a refined log10 grid: (q, s, loglik, parameters at the edge)."""
    n, d = y.shape
    gaps = np.diff(t)
    dy = np.diff(y, axis=0)
    spread = np.maximum(np.var(dy, axis=0) if n > 1 else np.zeros(d), 1e-12)
    q_centre = np.log10(spread / max(float(np.mean(gaps)), 1e-300))
    s_centre = np.log10(np.maximum(spread / 2.0, 1e-12) / np.maximum(np.median(v, axis=0), 1e-300))
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
        var = np.tile(v, (1, g)) * (10.0**log_s).reshape(1, -1)
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
    return 10.0**best_q, 10.0**best_s, ll_best, edge


def _per_signal(value: Any, names: Sequence[str], what: str) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f"{what} names unknown signals {unknown}")
        missing = [n for n in names if n not in value]
        if missing:
            raise ValueError(f"{what} must give every analysed signal; missing {missing}")
        arr = np.array([float(value[n]) for n in names])
    else:
        arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (len(names),)).astype(np.float64)
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"{what} must be finite and non-negative")
    return arr


# ----------------------------------------------------------------------------------------------------
# analysis


def _floats(x: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(x, dtype=np.float64).reshape(-1)]


def _skipped(reason: str, **extra: Any) -> dict[str, Any]:
    return {"status": "skipped", "reason": reason, **extra}


def _spectrum_section(
    t: np.ndarray, series: np.ndarray, names: tuple[str, ...], which: str, top: int, min_relative_power: float
) -> dict[str, Any]:
    n = t.shape[0]
    span = float(t[-1] - t[0]) if n > 1 else 0.0
    if n < 8:
        return _skipped(f"a spectrum needs at least 8 items, the stream has {n}", series=which)
    median_gap = float(np.median(np.diff(t)))
    max_points = max(4 * n, 1024)
    step = median_gap
    note = None
    if span / step + 1 > max_points:
        step = span / (max_points - 1)
        note = (
            f"the median gap {median_gap:g} would need more than {max_points} grid points over the span "
            f"{span:g}; the grid step was coarsened to {step:g}"
        )
    try:
        spec = welch_spectrum(t, series, step=step)
    except ValueError as exc:
        return _skipped(str(exc), series=which)
    periods: dict[str, list[dict[str, float]]] = {}
    for j, name in enumerate(names):
        one = Spectrum(spec.frequencies, spec.power[:, j], spec.step, spec.n_points)
        found = dominant_periods(one, top=max(top * 3, top), min_relative_power=min_relative_power)
        kept = [p for p in found if p.period * MIN_CYCLES <= span + 1e-12][:top]
        periods[name] = [
            {
                "period": p.period,
                "frequency": p.frequency,
                "relative_power": p.relative_power,
                "power": p.power,
            }
            for p in kept
        ]
    strongest = max(
        ((name, p) for name, ps in periods.items() for p in ps),
        key=lambda item: item[1]["relative_power"],
        default=None,
    )
    out: dict[str, Any] = {
        "status": "ok",
        "series": which,
        "step": float(spec.step),
        "n_points": int(spec.n_points),
        "span": span,
        "min_cycles": MIN_CYCLES,
        "periods": periods,
        "strongest": None if strongest is None else {"signal": strongest[0], **strongest[1]},
    }
    if note:
        out["note"] = note
    return out


def _surd_section(
    series: np.ndarray,
    names: tuple[str, ...],
    which: str,
    target: str,
    agents: tuple[str, ...],
    lag: int,
    bins: int | str,
    binning: str,
) -> dict[str, Any]:
    n = series.shape[0]
    aligned = n - lag
    info: dict[str, Any] = {
        "target": target,
        "agents": list(agents),
        "lag": lag,
        "series": which,
        "binning": binning,
        "n_items": n,
        "n_aligned": max(aligned, 0),
    }
    k = len(agents)
    if bins == "auto":
        chosen = next((b for b in AUTO_BINS if aligned >= MIN_SAMPLES_PER_CELL * b**k), None)
        if chosen is None:
            need = int(math.ceil(MIN_SAMPLES_PER_CELL * 2**k)) + lag
            return _skipped(
                f"too few items for SURD: {n} items give {max(aligned, 0)} (agents at k, target at k + {lag}) "
                f"pairs, but {k} agents with 2 states each need at least {int(MIN_SAMPLES_PER_CELL * 2**k)} "
                f"pairs ({need} items); use fewer agents",
                **info,
            )
        bins = chosen
    info["bins"] = bins
    if aligned < 2:
        return _skipped(f"a stream of {n} items is too short for lag {lag}", **info)
    target_series = series[:, names.index(target)]
    agent_series = series[:, [names.index(a) for a in agents]]
    try:
        res = surd(
            target_series,
            agent_series,
            lags=lag,
            bins=bins,
            binning=binning,
            agent_names=agents,
            min_samples_per_cell=MIN_SAMPLES_PER_CELL,
        )
    except ConstantTargetError:
        return _skipped(
            f"the target {target!r} is constant over the stream (one state after binning): there is no "
            "information to decompose",
            **info,
        )
    except ValueError as exc:
        return _skipped(str(exc), **info)
    summary = [
        {
            "agent": a.name,
            "mutual_information": a.mutual_information,
            "unique": a.unique,
            "redundant": a.redundant,
            "synergistic": a.synergistic,
            "involved": a.involved,
        }
        for a in res.agent_summary()
    ]
    return {
        "status": "ok",
        **info,
        "shares": res.shares(),
        "dominant": res.dominant(),
        "term_shares": res.term_shares(),
        "agent_summary": summary,
        "decomposition": res.to_dict(),
    }


def _check_options(
    names: tuple[str, ...],
    n: int,
    *,
    process_var: Any = None,
    obs_scale: Any = None,
    band_z: float = 1.96,
    spectrum_series: str = "smoothed",
    top_periods: int = 3,
    min_relative_power: float = 0.05,
    surd_target: str | None = None,
    surd_agents: Sequence[str] | None = None,
    surd_lag: int = 1,
    surd_bins: int | str = "auto",
    surd_binning: str = "quantile",
    surd_series: str = "raw",
    run_surd: bool = True,
    spectrum: bool = True,
) -> tuple[np.ndarray | None, np.ndarray | None, str, tuple[str, ...]]:
    """Validate the analysis options for ``names`` and ``n`` items; return (q, s, SURD target, SURD agents)."""
    if spectrum_series not in ("smoothed", "raw"):
        raise ValueError(f"spectrum_series must be 'smoothed' or 'raw', got {spectrum_series!r}")
    if surd_series not in ("raw", "filtered"):
        raise ValueError(
            f"surd_series must be 'raw' or 'filtered', got {surd_series!r} (the two-sided smoothed series "
            "mixes later readings into earlier items and would leak the future into the agents)"
        )
    if (
        isinstance(band_z, bool)
        or not isinstance(band_z, (int, float))
        or not math.isfinite(band_z)
        or band_z <= 0
    ):
        raise ValueError(f"band_z must be a positive number, got {band_z!r}")
    if isinstance(top_periods, bool) or not isinstance(top_periods, int) or top_periods < 1:
        raise ValueError(f"top_periods must be a positive integer, got {top_periods!r}")
    if not 0.0 <= float(min_relative_power) <= 1.0:
        raise ValueError(f"min_relative_power must be in [0, 1], got {min_relative_power!r}")
    q_given = _per_signal(process_var, names, "process_var")
    s_given = _per_signal(obs_scale, names, "obs_scale")
    if (q_given is None or s_given is None) and n < MIN_ITEMS:
        raise ValueError(
            f"a stream needs at least {MIN_ITEMS} items to estimate its noise parameters, got {n}; "
            "give process_var and obs_scale to analyse shorter streams"
        )
    target = surd_target
    if target is None:
        target = DEFAULT_SURD_TARGET if DEFAULT_SURD_TARGET in names else DEFAULT_SURD_FALLBACK_TARGET
    agents = (
        tuple(surd_agents) if surd_agents is not None else tuple(a for a in DEFAULT_SURD_AGENTS if a in names)
    )
    if run_surd:
        for name in (target, *agents):
            if name not in names:
                raise ValueError(f"unknown signal {name!r}; the stream has {list(names)}")
        if not agents:
            raise ValueError("surd_agents must name at least one signal")
        if len(set(agents)) != len(agents):
            raise ValueError(f"surd_agents must be distinct, got {list(agents)}")
        if isinstance(surd_lag, bool) or not isinstance(surd_lag, (int, np.integer)) or surd_lag < 1:
            raise ValueError(f"surd_lag must be a positive integer (items), got {surd_lag!r}")
        if surd_bins != "auto" and (
            isinstance(surd_bins, bool) or not isinstance(surd_bins, (int, np.integer)) or surd_bins < 2
        ):
            raise ValueError(f"surd_bins must be 'auto' or an integer >= 2, got {surd_bins!r}")
        if surd_binning not in ("quantile", "equal"):
            raise ValueError(f"surd_binning must be 'quantile' or 'equal', got {surd_binning!r}")
    return q_given, s_given, target, agents


def check_stream_request(
    n_items: int, timestamps: Any = None, *, signals: Sequence[str] | None = None, **options: Any
) -> None:
    """Raise ``ValueError`` (``TypeError`` for an unknown option) for a stream request that would fail.

    Cheap: call it before running the model on ``n_items`` texts, with the ``timestamps`` and the options
    that will go to :func:`analyze_stream_results`.
    """
    unknown = sorted(set(options) - _OPTION_NAMES)
    if unknown:
        raise TypeError(f"unknown stream analysis options {unknown}; known: {sorted(_OPTION_NAMES)}")
    if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 1:
        raise ValueError(f"a stream needs at least one item, got {n_items!r}")
    names = tuple(signals) if signals is not None else DEFAULT_SIGNALS
    bad = sorted(set(names) - set(DEFAULT_SIGNALS))
    if bad:
        raise ValueError(f"unknown signals {bad}; available: {list(DEFAULT_SIGNALS)}")
    stream_timestamps(timestamps, n_items)
    _check_options(names, n_items, **{k: v for k, v in options.items() if k not in _READING_OPTIONS})


#: Options of :func:`analyze_stream_results` besides ``signals`` (readings, then analysis).
_READING_OPTIONS = frozenset({"uncertainty", "temperatures", "min_var"})
_OPTION_NAMES = _READING_OPTIONS | frozenset(
    {"process_var", "obs_scale", "band_z", "spectrum", "spectrum_series", "top_periods", "min_relative_power",
     "surd_target", "surd_agents", "surd_lag", "surd_bins", "surd_binning", "surd_series", "run_surd"}
)  # fmt: skip


def analyze_readings(
    readings: StreamReadings,
    timestamps: Any = None,
    *,
    signals: Sequence[str] | None = None,
    process_var: Any = None,
    obs_scale: Any = None,
    band_z: float = 1.96,
    spectrum: bool = True,
    spectrum_series: str = "smoothed",
    top_periods: int = 3,
    min_relative_power: float = 0.05,
    surd_target: str | None = None,
    surd_agents: Sequence[str] | None = None,
    surd_lag: int = 1,
    surd_bins: int | str = "auto",
    surd_binning: str = "quantile",
    surd_series: str = "raw",
    run_surd: bool = True,
) -> dict[str, Any]:
    """Smooth, band, search for periods and run SURD over per-item readings (module doc); JSON-safe dict.

    ``timestamps``: see :func:`stream_timestamps`. ``process_var`` / ``obs_scale``: a number, one per
    analysed signal (sequence or ``{name: value}``), or ``None`` (default) to estimate by maximum
    likelihood. ``signals`` restricts the analysed signals (default: all in ``readings``).
    """
    if not isinstance(readings, StreamReadings):
        raise ValueError(
            "readings must be a StreamReadings (see readings_from_results / StreamReadings.from_arrays)"
        )
    if signals is not None:
        readings = readings.select(signals)
    names = readings.names
    n = readings.n_items
    t, unit, origin = stream_timestamps(timestamps, n)
    q_given, s_given, target, agents = _check_options(
        names, n, process_var=process_var, obs_scale=obs_scale, band_z=band_z, spectrum_series=spectrum_series,
        top_periods=top_periods, min_relative_power=min_relative_power, surd_target=surd_target,
        surd_agents=surd_agents, surd_lag=surd_lag, surd_bins=surd_bins, surd_binning=surd_binning,
        surd_series=surd_series, run_surd=run_surd,
    )  # fmt: skip

    notes: list[str] = []
    y, v = readings.values, readings.variances
    if q_given is not None and s_given is not None:
        q, s = q_given, s_given
        ll = kalman_smooth(t, y, v * s[None, :], process_var=q).log_likelihood
    else:
        q, s, ll, edge = _fit_noise(t, y, v, q_given, s_given)
        notes.extend(
            f"{names[j]!r}: the {what} estimate lies at the edge of the search range" for j, what in edge
        )
    res = kalman_smooth(t, y, v * s[None, :], process_var=q)
    lower, upper = res.band(band_z)
    if n < 10 and (q_given is None or s_given is None):
        notes.append(f"noise parameters estimated from only {n} items are unreliable")

    readings_out = {
        name: {
            "value": _floats(y[:, j]),
            "variance": _floats(v[:, j]),
            "variance_source": readings.variance_source[j],
        }
        for j, name in enumerate(names)
    }
    smoothed = {
        name: {
            "mean": _floats(res.smoothed_mean[:, j]),
            "variance": _floats(res.smoothed_var[:, j]),
            "lower": _floats(lower[:, j]),
            "upper": _floats(upper[:, j]),
            "filtered_mean": _floats(res.filtered_mean[:, j]),
            "filtered_variance": _floats(res.filtered_var[:, j]),
        }
        for j, name in enumerate(names)
    }
    noise = {
        name: {
            "process_var": float(q[j]),
            "obs_scale": float(s[j]),
            "process_var_source": "given" if q_given is not None else "maximum_likelihood",
            "obs_scale_source": "given" if s_given is not None else "maximum_likelihood",
            "log_likelihood": float(ll[j]),
        }
        for j, name in enumerate(names)
    }

    if spectrum:
        series = res.smoothed_mean if spectrum_series == "smoothed" else y
        spectrum_out = _spectrum_section(t, series, names, spectrum_series, top_periods, min_relative_power)
    else:
        spectrum_out = _skipped("spectrum=False")
    if run_surd:
        series = y if surd_series == "raw" else res.filtered_mean
        surd_out = _surd_section(
            series, names, surd_series, target, agents, int(surd_lag), surd_bins, surd_binning
        )
    else:
        surd_out = _skipped("run_surd=False")

    gaps = np.diff(t)
    out = {
        "n_items": n,
        "signals": list(names),
        "time": {
            "timestamps": _floats(t),
            "unit": unit,
            "origin": origin,
            "gaps": None
            if n < 2
            else {"min": float(gaps.min()), "median": float(np.median(gaps)), "max": float(gaps.max())},
        },
        "readings": readings_out,
        "smoothed": smoothed,
        "band": {"z": float(band_z), "of": "smoothed state: mean +- z * sqrt(variance)"},
        "noise": noise,
        "spectrum": spectrum_out,
        "surd": surd_out,
        "method": METHOD,
        "notes": notes,
    }
    return _json_safe(out)


def analyze_stream_results(
    results: Sequence[Mapping],
    timestamps: Any = None,
    *,
    uncertainty: Sequence[Mapping[str, Any] | None] | None = None,
    temperatures: Mapping[str, float] | None = None,
    min_var: float = MIN_VAR,
    **options: Any,
) -> dict[str, Any]:
    """:func:`readings_from_results` then :func:`analyze_readings` (the body of ``analyze_stream``)."""
    if timestamps is not None and hasattr(timestamps, "__len__") and len(timestamps) != len(results):
        raise ValueError(f"length mismatch: {len(results)} items but {len(timestamps)} timestamps")
    readings = readings_from_results(
        results,
        signals=options.pop("signals", None),
        uncertainty=uncertainty,
        temperatures=temperatures,
        min_var=min_var,
    )
    return analyze_readings(readings, timestamps, **options)


#: The formulas, as reported in every result under ``method``.
METHOD: dict[str, str] = {
    "state_model": "x_k = x_{k-1} + w_k, w_k ~ N(0, q (t_k - t_{k-1})); y_k = x_k + v_k, v_k ~ N(0, s var_k)",
    "smoother": "Kalman filter (diffuse start) + Rauch-Tung-Striebel smoother, per signal",
    "noise_parameters": "q and s by maximum likelihood of the filter innovations (log grid, refined), unless given",
    "variance_model": "delta method on the model's Kalman-fused raw-output variance: sigmoid p -> (p(1-p)/T)^2 var(z), "
    "core = arg-max member, tanh v -> (1-v^2)^2 var(s); p clipped to [0.01, 0.99]",
    "variance_bernoulli": "probability p -> p(1-p); valence v -> 1 - v^2 = 4p(1-p) with p = (1+v)/2; p clipped to "
    "[0.01, 0.99]",
    "band": "smoothed mean +- z * smoothed sd",
    "spectrum": "linear resampling at the median gap, Welch PSD (Hann, 50% overlap, linear detrend), "
    "peaks with period <= span/2",
    "surd": "target at item k+lag vs agents at item k, quantile bins, exact SURD (Martinez-Sanchez et al. 2024)",
}


def _json_safe(x: Any) -> Any:
    """Plain Python containers and numbers; NaN/inf (which should not occur) become None."""
    if isinstance(x, Mapping):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_json_safe(v) for v in x.tolist()]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(float(x)) else None
    return x
