"""Biosignal and audio front ends on simulated signals with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from redheart.analysis import (
    AUDIO_FEATURES,
    BIOSIGNAL_FEATURE_NAMES,
    BIOSIGNAL_FEATURES,
    ECG_FEATURES,
    EDA_FEATURES,
    EEG_FEATURES,
    N_MELS,
    audio_features,
    biosignal_vector,
    dsp_inputs,
    ecg_features,
    eda_features,
    eeg_band_powers,
)


@pytest.fixture(scope="module")
def nk():
    return pytest.importorskip("neurokit2", reason="neurokit2 (the 'signals' extra) is needed for ECG/EDA")


def _rhythm(freq: float, fs: float = 256.0, seconds: float = 8.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    return 20.0 * np.sin(2 * np.pi * freq * t) + 2.0 * rng.normal(size=t.size)


# --- EEG ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("freq", "band"), [(2.5, "delta"), (6.0, "theta"), (10.0, "alpha"), (20.0, "beta"), (40.0, "gamma")]
)
def test_rhythm_lands_in_its_band(freq, band):
    feats = eeg_band_powers(_rhythm(freq), 256.0)
    assert max(feats.relative, key=feats.relative.__getitem__) == band
    assert feats.relative[band] > 0.8
    assert sum(feats.relative.values()) == pytest.approx(1.0)
    assert feats.absolute[band] == pytest.approx(200.0, rel=0.15)  # sine power = amplitude² / 2


def test_multichannel_eeg_averages_channels():
    x = np.stack([_rhythm(10.0, seed=1), _rhythm(10.0, seed=2)])
    feats = eeg_band_powers(x, 256.0)
    assert feats.n_channels == 2 and feats.relative["alpha"] > 0.8
    assert feats.as_vector().shape == (EEG_FEATURES,)


@pytest.mark.parametrize(
    ("signal", "rate", "match"),
    [
        (_rhythm(10.0, fs=90.0), 90.0, "too low"),  # Nyquist must exceed the 45 Hz gamma edge
        (_rhythm(10.0, seconds=1.0), 256.0, "too short"),
        (np.r_[np.nan, _rhythm(10.0)], 256.0, "NaN"),
        (np.zeros(1024), 256.0, "no power"),
        (_rhythm(10.0), -5.0, "positive"),
    ],
)
def test_eeg_bad_input(signal, rate, match):
    with pytest.raises(ValueError, match=match):
        eeg_band_powers(signal, rate)


# --- ECG ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bpm", [70, 95])
def test_simulated_ecg_heart_rate(nk, bpm):
    ecg = nk.ecg_simulate(duration=30, sampling_rate=250, heart_rate=bpm, random_state=bpm)
    feats = ecg_features(ecg, 250)
    assert feats.heart_rate_bpm == pytest.approx(bpm, abs=2.0)
    assert feats.n_beats == pytest.approx(bpm / 2, abs=3)
    assert 0 < feats.rmssd_ms < 200 and 0 < feats.sdnn_ms < 200
    assert feats.as_vector().shape == (ECG_FEATURES,)


def test_ecg_bad_input(nk):
    ecg = nk.ecg_simulate(duration=12, sampling_rate=250, heart_rate=70, random_state=0)
    with pytest.raises(ValueError, match="too low"):
        ecg_features(ecg[::5], 50)
    with pytest.raises(ValueError, match="too short"):
        ecg_features(ecg[:1000], 250)
    with pytest.raises(ValueError, match="infinite"):
        ecg_features(np.r_[ecg, np.inf], 250)


# --- EDA ----------------------------------------------------------------------------------------------


def test_simulated_eda_has_a_positive_phasic_component(nk):
    with_scr = eda_features(nk.eda_simulate(duration=30, sampling_rate=50, scr_number=3, random_state=0), 50)
    flat = eda_features(nk.eda_simulate(duration=30, sampling_rate=50, scr_number=0, random_state=0), 50)
    assert with_scr.phasic_max > 0.5
    assert with_scr.scr_count >= 2 and with_scr.scr_mean_amplitude > 0.5
    assert with_scr.phasic_std > 5 * flat.phasic_std
    assert with_scr.tonic_mean > 0
    assert with_scr.as_vector().shape == (EDA_FEATURES,)


def test_eda_bad_input(nk):
    eda = nk.eda_simulate(duration=20, sampling_rate=50, scr_number=1, random_state=0)
    with pytest.raises(ValueError, match="too low"):
        eda_features(eda[::10], 5)
    with pytest.raises(ValueError, match="too short"):
        eda_features(eda[:200], 50)
    with pytest.raises(ValueError, match="NaN"):
        eda_features(np.r_[eda, np.nan], 50)


# --- audio --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("freq", "rate"), [(1000.0, 16000), (3000.0, 16000), (1000.0, 8000), (500.0, 44100)])
def test_pure_tone_energy_in_the_right_mel_band(freq, rate):
    t = np.arange(rate) / rate
    feats = audio_features(0.5 * np.sin(2 * np.pi * freq * t), rate)
    band = int(np.argmax(feats.log_mel_mean))
    nearest = int(np.argmin(np.abs(feats.band_centres_hz - freq)))
    assert abs(band - nearest) <= 1
    assert feats.log_mel_mean[band] - np.median(feats.log_mel_mean) > 5.0  # well above the floor
    assert feats.log_mel.shape == (pytest.approx(98, abs=2), N_MELS)  # 1 s: 25 ms frames every 10 ms
    assert feats.as_vector().shape == (AUDIO_FEATURES,) == (2 * N_MELS,)


def test_every_mel_filter_sees_some_fft_bins():
    from redheart.analysis.mel import mel_filterbank

    fb = mel_filterbank(16000, 512, N_MELS, 20.0, 8000.0)
    assert fb.shape == (N_MELS, 257)
    assert np.all(fb.sum(axis=1) > 0)


def test_audio_bad_input():
    tone = np.sin(np.arange(8000.0))
    with pytest.raises(ValueError, match="too low"):
        audio_features(tone, 4000)
    with pytest.raises(ValueError, match="too short"):
        audio_features(tone[:100], 16000)
    with pytest.raises(ValueError, match="1-D"):
        audio_features(np.stack([tone, tone]), 16000)


# --- the DSP encoder's inputs -------------------------------------------------------------------------


def test_biosignal_vector_layout_matches_the_model(nk):
    assert BIOSIGNAL_FEATURES == EEG_FEATURES + ECG_FEATURES + EDA_FEATURES == 16
    assert N_MELS == 64
    assert len(BIOSIGNAL_FEATURE_NAMES) == BIOSIGNAL_FEATURES == len(set(BIOSIGNAL_FEATURE_NAMES))
    eeg = eeg_band_powers(_rhythm(10.0), 256.0)
    ecg = ecg_features(nk.ecg_simulate(duration=15, sampling_rate=250, heart_rate=60, random_state=0), 250)
    only_eeg = biosignal_vector(eeg=eeg)
    both = biosignal_vector(eeg=eeg, ecg=ecg)
    assert only_eeg.dtype == np.float32 and only_eeg.shape == (BIOSIGNAL_FEATURES,)
    assert not biosignal_vector().any()
    assert only_eeg[:EEG_FEATURES] == pytest.approx(eeg.as_vector().astype(np.float32))
    assert not only_eeg[EEG_FEATURES:].any()
    assert both[BIOSIGNAL_FEATURE_NAMES.index("ecg_heart_rate_hz")] == pytest.approx(1.0, abs=0.05)
    assert only_eeg[BIOSIGNAL_FEATURE_NAMES.index("eeg_rel_alpha")] == pytest.approx(eeg.relative["alpha"])


def test_dsp_inputs_have_the_model_keys():
    tone = audio_features(np.sin(2 * np.pi * 440 * np.arange(16000) / 16000), 16000)
    eeg = eeg_band_powers(_rhythm(10.0), 256.0)
    assert dsp_inputs() == {}
    inputs = dsp_inputs(eeg=eeg, audio=tone)
    assert set(inputs) == {"biosignals", "audio"}
    assert inputs["audio"].shape == (tone.n_frames, N_MELS) and inputs["audio"].dtype == np.float32
    assert set(dsp_inputs(audio=tone)) == {"audio"}
