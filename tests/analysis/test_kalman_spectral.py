"""Kalman/RTS smoothing over irregular time steps and Welch periodicity of trajectories."""

from __future__ import annotations

import numpy as np
import pytest

from redheart.analysis import dominant_periods, estimate_process_var, kalman_smooth, welch_spectrum
from redheart.analysis.kalman import fit_noise


def _random_walk_stream(seed: int, n: int = 400, d: int = 3, q: float = 0.05):
    """Irregular times, a random walk with variance q per unit time, readings with per-item noise."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1.0, n))
    gaps = np.diff(t, prepend=t[0])
    truth = np.cumsum(rng.normal(size=(n, d)) * np.sqrt(q * gaps)[:, None], axis=0)
    obs_var = rng.uniform(0.1, 1.5, size=(n, d))
    y = truth + rng.normal(size=(n, d)) * np.sqrt(obs_var)
    return t, truth, y, obs_var


def _rmse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean((a - b) ** 2, axis=0))


# --- Kalman / RTS --------------------------------------------------------------------------------------


def test_smoothing_beats_raw_readings_and_filtering():
    t, truth, y, r = _random_walk_stream(0)
    res = kalman_smooth(t, y, r, process_var=0.05)
    raw, filt, smooth = _rmse(y, truth), _rmse(res.filtered_mean, truth), _rmse(res.smoothed_mean, truth)
    assert np.all(smooth < 0.6 * raw)
    assert np.all(smooth < filt)
    assert res.smoothed_mean.shape == y.shape
    assert np.all(res.smoothed_var <= res.filtered_var + 1e-12)


def test_uncertainty_band_is_calibrated():
    t, truth, y, r = _random_walk_stream(1, n=600)
    lo, hi = kalman_smooth(t, y, r, process_var=0.05).band(1.96)
    coverage = np.mean((truth >= lo) & (truth <= hi))
    assert 0.92 < coverage < 0.98


def test_process_noise_grows_with_the_gap():
    y, r = np.zeros(4), np.ones(4)
    short = kalman_smooth([0.0, 1.0, 2.0, 3.0], y, r, process_var=0.5)
    long = kalman_smooth([0.0, 1.0, 2.0, 30.0], y, r, process_var=0.5)
    assert long.filtered_var[3] > short.filtered_var[3]
    # after a long gap the last reading dominates its own estimate
    res = kalman_smooth([0.0, 1.0, 2.0, 30.0], [0.0, 0.0, 0.0, 5.0], r, process_var=0.5)
    assert res.filtered_mean[3] > 4.5
    assert res.smoothed_mean[2] < 1.0  # and barely pulls the earlier, well-separated state


def test_static_level_gives_the_inverse_variance_weighted_mean():
    rng = np.random.default_rng(2)
    y, r = rng.normal(size=20), rng.uniform(0.2, 3.0, 20)
    res = kalman_smooth(np.arange(20.0), y, r, process_var=0.0)
    expected = np.sum(y / r) / np.sum(1 / r)
    assert res.smoothed_mean == pytest.approx(np.full(20, expected), abs=1e-10)
    assert res.smoothed_var == pytest.approx(np.full(20, 1 / np.sum(1 / r)), rel=1e-10)
    assert res.filtered_mean[-1] == pytest.approx(expected, abs=1e-10)


def test_per_item_noise_downweights_unreliable_readings():
    y = np.array([0.0, 0.0, 10.0, 0.0, 0.0])
    trusted = kalman_smooth(np.arange(5.0), y, [0.1, 0.1, 0.1, 0.1, 0.1], process_var=0.1)
    doubted = kalman_smooth(np.arange(5.0), y, [0.1, 0.1, 100.0, 0.1, 0.1], process_var=0.1)
    assert trusted.smoothed_mean[2] > 4.0
    assert abs(doubted.smoothed_mean[2]) < 0.5


def test_maximum_likelihood_process_variance():
    t, _, y, r = _random_walk_stream(3, n=1500, d=2, q=0.2)
    q_hat = estimate_process_var(t, y, r)
    assert np.all((q_hat > 0.1) & (q_hat < 0.4))
    assert kalman_smooth(t, y, r).process_var == pytest.approx(q_hat)


def test_fit_noise_recovers_the_process_variance_and_the_scale_of_relative_variances():
    t, truth, y, r = _random_walk_stream(4, n=1500, d=2, q=0.2)
    fit = fit_noise(t, y, r / 4.0)  # the variances are known only up to a factor (here 4)
    assert np.all((fit.process_var > 0.1) & (fit.process_var < 0.4))
    assert np.all((fit.obs_scale > 4.0 / 1.5) & (fit.obs_scale < 4.0 * 1.5))
    assert fit.at_edge == ()
    smoothed = kalman_smooth(t, y, r / 4.0 * fit.obs_scale, process_var=fit.process_var)
    np.testing.assert_array_equal(fit.log_likelihood, smoothed.log_likelihood)
    # a parameter that is given is held: the other is fitted alone; both given -> their likelihood
    held = fit_noise(t, y, r, obs_scale=1.0)
    assert held.obs_scale == pytest.approx([1.0, 1.0]) and np.all(held.process_var < 0.4)
    both = fit_noise(t, y, r, process_var=[0.2, 0.3], obs_scale=1.0)
    np.testing.assert_array_equal(both.process_var, [0.2, 0.3])
    np.testing.assert_array_equal(both.log_likelihood, kalman_smooth(t, y, r, [0.2, 0.3]).log_likelihood)
    with pytest.raises(ValueError, match="at least 3 observations"):
        fit_noise(t[:2], y[:2], r[:2])
    with pytest.raises(ValueError, match="obs_scale must be non-negative"):
        fit_noise(t, y, r, obs_scale=-1.0)


def test_datetime_timestamps():
    t = np.array(["2024-01-01T00:00", "2024-01-01T00:10", "2024-01-01T02:00"], dtype="datetime64[s]")
    res = kalman_smooth(t, [1.0, 2.0, 3.0], 0.5, process_var=1e-3)
    assert res.timestamps == pytest.approx([0.0, 600.0, 7200.0])


@pytest.mark.parametrize(
    ("t", "y", "r", "match"),
    [
        ([0.0, 1.0, 1.0], [1.0, 2.0, 3.0], 1.0, "strictly increasing"),
        ([0.0, 2.0, 1.0], [1.0, 2.0, 3.0], 1.0, "strictly increasing"),
        ([0.0, 1.0, 2.0], [1.0, np.nan, 3.0], 1.0, "observations contains 1 NaN"),
        ([0.0, np.inf, 2.0], [1.0, 2.0, 3.0], 1.0, "timestamps contains 0 NaN and 1 infinite"),
        ([0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [1.0, -0.5, 1.0], "non-negative"),
        ([0.0, 1.0, 2.0], [1.0, 2.0], 1.0, "length mismatch"),
        ([0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [1.0, 1.0], "does not match"),
    ],
)
def test_kalman_bad_input(t, y, r, match):
    with pytest.raises(ValueError, match=match):
        kalman_smooth(t, y, r, process_var=0.1)


def test_kalman_bad_process_var():
    with pytest.raises(ValueError, match="process_var"):
        kalman_smooth([0.0, 1.0], [1.0, 2.0], 1.0, process_var=-1.0)


# --- spectra ------------------------------------------------------------------------------------------


def test_planted_period_is_found_on_irregular_times():
    rng = np.random.default_rng(4)
    n = 210
    t = np.sort(np.arange(n) + rng.uniform(-0.3, 0.3, n))
    v = np.sin(2 * np.pi * t / 7.0) + 0.5 * rng.normal(size=n) + 0.02 * t  # period 7 + noise + drift
    peaks = dominant_periods(welch_spectrum(t, v))
    assert peaks, "no period found"
    assert peaks[0].period == pytest.approx(7.0, abs=0.25)


def test_each_dimension_gets_its_own_period():
    rng = np.random.default_rng(5)
    t = np.sort(rng.uniform(0, 300, 400))  # strongly irregular sampling
    v = np.column_stack([np.sin(2 * np.pi * t / 7.0), np.cos(2 * np.pi * t / 20.0)])
    v += 0.3 * rng.normal(size=v.shape)
    peaks = dominant_periods(welch_spectrum(t, v), top=10)
    best = {}
    for p in peaks:
        best.setdefault(p.dimension, p)
    assert best[0].period == pytest.approx(7.0, rel=0.05)
    assert best[1].period == pytest.approx(20.0, rel=0.05)


def test_white_noise_has_no_dominant_period_of_note():
    rng = np.random.default_rng(6)
    spec = welch_spectrum(np.arange(512.0), rng.normal(size=512), nperseg=64)
    assert all(p.relative_power < 0.1 for p in dominant_periods(spec))


@pytest.mark.parametrize(
    ("t", "v", "kwargs", "match"),
    [
        (np.arange(5.0), np.ones(5), {}, "too short"),
        (10.0 * np.arange(8.0), np.ones(8), {"step": 20.0}, "4 points after resampling"),
        (np.arange(20.0), np.r_[np.nan, np.ones(19)], {}, "NaN"),
        (np.arange(20.0), np.ones(19), {}, "length mismatch"),
        (np.r_[0.0, np.arange(19.0)], np.ones(20), {}, "strictly increasing"),
        (np.arange(20.0), np.ones(20), {"nperseg": 40}, "nperseg"),
        (np.arange(20.0), np.ones(20), {"step": -1.0}, "step"),
    ],
)
def test_spectrum_bad_input(t, v, kwargs, match):
    with pytest.raises(ValueError, match=match):
        welch_spectrum(t, v, **kwargs)
