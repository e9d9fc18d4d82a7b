"""Stream analysis behind ``EthicsEmotionPipeline.analyze_stream(texts, timestamps)``.

A conversation or diary is analysed item by item by the pipeline; this module turns the per-item readings
(:mod:`.readings`) at their times (:mod:`.timestamps`) into smoothed trajectories with bands, and adds the
spectrum and SURD sections (:mod:`.sections`); docs/DESIGN.md "Streams, Kalman and DSP".

Smoothing (:func:`analyze_readings`)
    Per signal, a local-level model ``x_k = x_{k-1} + w_k, w_k ~ N(0, q (t_k - t_{k-1}))`` (process noise
    grows with the gap), ``y_k = x_k + v_k, v_k ~ N(0, s var_k)``, filtered forward and smoothed backwards
    (Rauch-Tung-Striebel) by :func:`redheart.analysis.kalman_smooth`. ``q`` and ``s`` are maximum-likelihood
    estimates (:func:`redheart.analysis.fit_noise`: the innovation likelihood of the filter, maximised on a
    log10 grid of +-4 decades around a data-driven centre, refined twice to 1/32 decade, about 7 %), unless
    given. Bands are ``mean +- z sd`` of the smoothed state (z = 1.96: 95 %).

Errors versus explanations
    Malformed input raises ``ValueError``: mismatched lengths, timestamps that are not strictly increasing,
    non-finite readings, unknown signal names, a bad lag, fewer than ``MIN_ITEMS`` (3) items while noise
    parameters must be estimated, an error entry among the results; an unknown option raises ``TypeError``.
    A stream that is merely too short or too flat for one analysis still gets the others: ``spectrum`` or
    ``surd`` then hold ``{"status": "skipped", "reason": ...}``.

Result of :func:`analyze_readings` (JSON-safe: plain dicts, lists, floats, strings; no NaN/inf):
``n_items``, ``signals``, ``time`` (timestamps, unit, origin, gaps), ``readings`` (per signal: value,
variance, variance_source), ``smoothed`` (per signal: mean, variance, lower, upper, filtered_mean,
filtered_variance), ``band``, ``noise`` (per signal: process_var, obs_scale, their sources, log-likelihood),
``spectrum``, ``surd`` (status, target, agents, lag, bins, shares, dominant, term_shares, agent_summary,
decomposition), ``method`` (these formulas) and ``notes``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...analysis.kalman import fit_noise, kalman_smooth
from .options import READING_OPTIONS, StreamOptions
from .readings import MIN_VAR, StreamReadings, check_signals, readings_from_results
from .sections import skipped, spectrum_section, surd_section
from .timestamps import stream_timestamps

__all__ = ["METHOD", "analyze_readings", "analyze_stream_results", "check_stream_request"]

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


def check_stream_request(
    n_items: int,
    timestamps: Any = None,
    options: StreamOptions | None = None,
    *,
    signals: Sequence[str] | None = None,
    **fields: Any,
) -> None:
    """Raise ``ValueError`` (``TypeError`` for an unknown option) for a stream request that would fail.

    Cheap: call it before running the model on ``n_items`` texts, with the ``timestamps`` and the options
    that will go to :func:`analyze_stream_results` (:class:`StreamOptions` fields and reading options).
    """
    StreamOptions.check_names(fields, also_known=READING_OPTIONS)
    if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 1:
        raise ValueError(f"a stream needs at least one item, got {n_items!r}")
    names = check_signals(signals)
    stream_timestamps(timestamps, n_items)
    analysis = {k: v for k, v in fields.items() if k not in READING_OPTIONS}  # readings are checked when read
    StreamOptions.parse(options, **analysis).resolve(names, n_items)


def analyze_readings(
    readings: StreamReadings,
    timestamps: Any = None,
    options: StreamOptions | None = None,
    *,
    signals: Sequence[str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Smooth, band, search for periods and run SURD over per-item readings (module doc); JSON-safe dict.

    ``timestamps``: see :func:`.stream_timestamps`. ``options`` and keyword ``fields`` (which override it):
    see :class:`StreamOptions`. ``signals`` restricts the analysed signals (default: all in ``readings``).
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
    opts = StreamOptions.parse(options, **fields)
    plan = opts.resolve(names, n)
    q_given, s_given = plan.process_var, plan.obs_scale

    y, v = readings.values, readings.variances
    fit = fit_noise(t, y, v, process_var=q_given, obs_scale=s_given)
    q, s, ll = fit.process_var, fit.obs_scale, fit.log_likelihood
    notes = [
        f"{names[j]!r}: the {what} estimate lies at the edge of the search range" for j, what in fit.at_edge
    ]
    res = kalman_smooth(t, y, v * s[None, :], process_var=q)
    lower, upper = res.band(opts.band_z)
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

    if opts.spectrum:
        series = res.smoothed_mean if opts.spectrum_series == "smoothed" else y
        spectrum_out = spectrum_section(
            t, series, names, opts.spectrum_series, opts.top_periods, opts.min_relative_power
        )
    else:
        spectrum_out = skipped("spectrum=False")
    if opts.run_surd:
        series = y if opts.surd_series == "raw" else res.filtered_mean
        surd_out = surd_section(
            series,
            names,
            opts.surd_series,
            plan.surd_target,
            plan.surd_agents,
            int(opts.surd_lag),
            opts.surd_bins,
            opts.surd_binning,
        )
    else:
        surd_out = skipped("run_surd=False")

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
        "band": {"z": float(opts.band_z), "of": "smoothed state: mean +- z * sqrt(variance)"},
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
    options: StreamOptions | None = None,
    *,
    signals: Sequence[str] | None = None,
    uncertainty: Sequence[Mapping[str, Any] | None] | None = None,
    temperatures: Mapping[str, float] | None = None,
    min_var: float = MIN_VAR,
    **fields: Any,
) -> dict[str, Any]:
    """:func:`.readings_from_results` then :func:`analyze_readings` (the body of ``analyze_stream``)."""
    if timestamps is not None and hasattr(timestamps, "__len__") and len(timestamps) != len(results):
        raise ValueError(f"length mismatch: {len(results)} items but {len(timestamps)} timestamps")
    readings = readings_from_results(
        results, signals=signals, uncertainty=uncertainty, temperatures=temperatures, min_var=min_var
    )
    return analyze_readings(readings, timestamps, options, **fields)


def _floats(x: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(x, dtype=np.float64).reshape(-1)]


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
