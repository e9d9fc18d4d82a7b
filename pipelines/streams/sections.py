"""The spectrum and SURD sections of a stream analysis (docs/DESIGN.md "Streams, Kalman and DSP").

Periodicity (:func:`spectrum_section`)
    The smoothed trajectories (``spectrum_series="raw"`` for the readings) are linearly resampled onto a
    uniform grid (step = median gap, coarsened so the grid has at most ``max(4 n, 1024)`` points) and
    Welch's PSD is taken (:func:`redheart.analysis.welch_spectrum`, linear detrend). Peaks are reported per
    signal (:func:`redheart.analysis.dominant_periods`), keeping only periods seen at least twice
    (period <= span / 2). A stream with fewer than 8 items (or a grid of fewer than 8 points) gets
    ``{"status": "skipped", "reason": ...}`` instead of a spectrum.

SURD (:func:`surd_section`)
    Which signals drive a later one: target ``surd_target`` at item ``k + lag`` versus agents
    ``surd_agents`` at item ``k`` (lag in items, not time units). Defaults: target = ``regret`` (next
    item), agents = ``valence``, ``sadness``, ``anger``; the series are the raw readings (``"filtered"``, the
    causal Kalman estimate, is the other choice; the two-sided smoothed series is refused because it mixes
    later readings into earlier items, which would leak the future into the agents). Each variable is cut
    into ``surd_bins`` equal-mass (quantile) states; ``"auto"`` picks the largest ``b`` in 4, 3, 2 with at
    least ``MIN_SAMPLES_PER_CELL`` (2) aligned samples per cell of the agents' joint histogram
    (``n - lag >= 2 b^n_agents``).

A stream that is merely too short or too flat for one of them still gets the other: the section then holds
``{"status": "skipped", "reason": ...}`` (too few items for the spectrum or for the bin count, a constant
target).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...analysis.spectral import Spectrum, dominant_periods, welch_spectrum
from ...analysis.surd import ConstantTargetError, surd

__all__ = ["AUTO_BINS", "MIN_CYCLES", "MIN_SAMPLES_PER_CELL", "skipped", "spectrum_section", "surd_section"]

#: "auto" SURD bins need at least this many aligned samples per cell of the agents' joint histogram.
MIN_SAMPLES_PER_CELL = 2.0
#: Candidate bin counts of "auto", largest first.
AUTO_BINS = (4, 3, 2)
#: Minimum number of full cycles for a reported period.
MIN_CYCLES = 2.0


def skipped(reason: str, **extra: Any) -> dict[str, Any]:
    """A section that was not computed, and why."""
    return {"status": "skipped", "reason": reason, **extra}


def spectrum_section(
    t: np.ndarray, series: np.ndarray, names: tuple[str, ...], which: str, top: int, min_relative_power: float
) -> dict[str, Any]:
    """Dominant periods per signal of ``series`` [n, d] at times ``t`` (module doc)."""
    n = t.shape[0]
    span = float(t[-1] - t[0]) if n > 1 else 0.0
    if n < 8:
        return skipped(f"a spectrum needs at least 8 items, the stream has {n}", series=which)
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
        return skipped(str(exc), series=which)
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


def surd_section(
    series: np.ndarray,
    names: tuple[str, ...],
    which: str,
    target: str,
    agents: tuple[str, ...],
    lag: int,
    bins: int | str,
    binning: str,
) -> dict[str, Any]:
    """SURD of ``target`` at item ``k + lag`` given ``agents`` at item ``k`` of ``series`` [n, d]."""
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
            return skipped(
                f"too few items for SURD: {n} items give {max(aligned, 0)} (agents at k, target at k + {lag}) "
                f"pairs, but {k} agents with 2 states each need at least {int(MIN_SAMPLES_PER_CELL * 2**k)} "
                f"pairs ({need} items); use fewer agents",
                **info,
            )
        bins = chosen
    info["bins"] = bins
    if aligned < 2:
        return skipped(f"a stream of {n} items is too short for lag {lag}", **info)
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
        return skipped(
            f"the target {target!r} is constant over the stream (one state after binning): there is no "
            "information to decompose",
            **info,
        )
    except ValueError as exc:
        return skipped(str(exc), **info)
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
