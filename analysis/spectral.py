"""Welch spectra and dominant periods of irregularly sampled trajectories.

Welch's method needs uniform sampling, but stream items (messages, diary entries) arrive at irregular
times. The trajectory is therefore first resampled onto a uniform grid by linear interpolation, with
the grid step defaulting to the median gap (so typical spacing is kept and no high-frequency content
is invented between sparse items). Linear interpolation acts as a mild low-pass filter; periods much
shorter than a few typical gaps cannot be resolved and are not reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.signal import find_peaks, welch

from ._checks import as_timestamps, finite_array, positive_scalar

__all__ = ["MIN_POINTS", "Period", "Spectrum", "dominant_periods", "resample_uniform", "welch_spectrum"]

#: Fewest samples (raw and after resampling) for which a spectrum is computed.
MIN_POINTS = 8


@dataclass(frozen=True)
class Spectrum:
    """Power spectral density per dimension; frequency in cycles per time unit of the timestamps."""

    frequencies: np.ndarray  # [n_freq]
    power: np.ndarray  # [n_freq] or [n_freq, d]
    step: float  # grid step used for resampling
    n_points: int  # length of the uniform series


@dataclass(frozen=True)
class Period:
    """A spectral peak: its period (time units), frequency, power density and share of total power."""

    period: float
    frequency: float
    power: float
    relative_power: float
    dimension: int


def resample_uniform(
    timestamps: Any, values: Any, step: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate ``values`` ([n] or [n, d]) at irregular times onto a uniform grid."""
    t = as_timestamps(timestamps)
    v = finite_array(values, "values", ndim=(1, 2))
    if v.shape[0] != t.shape[0]:
        raise ValueError(f"length mismatch: {t.shape[0]} timestamps but {v.shape[0]} values")
    if t.shape[0] < MIN_POINTS:
        raise ValueError(f"series too short for a spectrum: {t.shape[0]} points, need at least {MIN_POINTS}")
    dt = float(np.median(np.diff(t))) if step is None else positive_scalar(step, "step")
    grid = t[0] + dt * np.arange(int(np.floor((t[-1] - t[0]) / dt + 1e-9)) + 1)
    if grid.shape[0] < MIN_POINTS:
        raise ValueError(
            f"series too short for a spectrum: {grid.shape[0]} points after resampling with step {dt:g}, "
            f"need at least {MIN_POINTS}"
        )
    cols = v if v.ndim == 2 else v[:, None]
    out = np.stack([np.interp(grid, t, cols[:, j]) for j in range(cols.shape[1])], axis=1)
    return grid, out if v.ndim == 2 else out[:, 0]


def welch_spectrum(
    timestamps: Any,
    values: Any,
    *,
    step: float | None = None,
    nperseg: int | None = None,
    detrend: Literal["constant", "linear"] = "linear",
) -> Spectrum:
    """Welch PSD (Hann window, 50 % overlap) of a trajectory after uniform resampling.

    ``nperseg`` defaults to min(n, 256) samples; the FFT is zero-padded to 4 × nperseg for a finer
    frequency grid (which interpolates the spectrum, it does not add resolution). A linear trend is
    removed per segment by default so that slow drifts do not swamp the periodic part.
    """
    grid, v = resample_uniform(timestamps, values, step)
    dt = float(grid[1] - grid[0])
    n = grid.shape[0]
    seg = min(n, 256) if nperseg is None else int(nperseg)
    if seg < MIN_POINTS or seg > n:
        raise ValueError(f"nperseg must be between {MIN_POINTS} and the series length {n}, got {nperseg}")
    freqs, power = welch(v, fs=1.0 / dt, nperseg=seg, nfft=4 * seg, detrend=detrend, axis=0)
    return Spectrum(frequencies=freqs, power=power, step=dt, n_points=n)


def dominant_periods(spectrum: Spectrum, *, top: int = 3, min_relative_power: float = 0.05) -> list[Period]:
    """The strongest spectral peaks (excluding the zero frequency), strongest first.

    A peak's relative power is its density over the summed density of its dimension; peaks below
    ``min_relative_power`` of the highest peak in that dimension are dropped as noise. The period is
    refined by parabolic interpolation of log power around the peak bin.
    """
    f = spectrum.frequencies
    power = spectrum.power if spectrum.power.ndim == 2 else spectrum.power[:, None]
    found: list[Period] = []
    for j in range(power.shape[1]):
        pj = power[:, j]
        total = float(pj[1:].sum())
        if total <= 0:
            continue
        peaks, _ = find_peaks(pj)
        peaks = peaks[peaks > 0]
        if peaks.size == 0:
            continue
        peaks = peaks[pj[peaks] >= min_relative_power * pj[peaks].max()]
        for k in peaks:
            a, b, c = np.log(np.maximum(pj[k - 1 : k + 2], 1e-300))
            denom = a - 2 * b + c
            shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
            freq = float(f[k] + shift * (f[1] - f[0]))
            if freq <= 0:
                continue
            found.append(
                Period(
                    period=1.0 / freq,
                    frequency=freq,
                    power=float(pj[k]),
                    relative_power=float(pj[k] / total),
                    dimension=j,
                )
            )
    found.sort(key=lambda p: -p.relative_power)
    return found[:top]
