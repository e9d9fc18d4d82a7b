"""Signal front ends for the auxiliary DSP encoder: EEG, ECG, EDA/GSR and audio.

Each extractor turns a raw recording into named features using established signal processing
(scipy.signal's Welch estimator, neurokit2's R-peak detector and EDA decomposition, a standard log-mel
filterbank) rather than learning it from scratch. The model's DSP encoder takes two inputs
(``modality_features`` in the model's forward), which :func:`dsp_inputs` builds:

* ``"biosignals"``: one vector of ``BIOSIGNAL_FEATURES`` (16) floats, laid out as
  ``[ EEG (10) | ECG (3) | EDA (3) ]`` (names in ``BIOSIGNAL_FEATURE_NAMES``), built by
  :func:`biosignal_vector`; a missing modality is all zeros;
* ``"audio"``: log-mel frames ``[n_frames, N_MELS]`` (64 bands, 25 ms windows every 10 ms, 16 kHz).

Heavy-tailed quantities enter the vector log-compressed; the names say exactly what each entry is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
from scipy.signal import resample_poly, welch

from ._checks import finite_array, positive_scalar
from .mel import log_mel_spectrogram, mel_band_edges

__all__ = [
    "AUDIO_FEATURES",
    "AUDIO_RATE",
    "BIOSIGNAL_FEATURES",
    "BIOSIGNAL_FEATURE_NAMES",
    "ECG_FEATURES",
    "EDA_FEATURES",
    "EEG_BANDS",
    "EEG_FEATURES",
    "N_MELS",
    "AudioFeatures",
    "ECGFeatures",
    "EDAFeatures",
    "EEGFeatures",
    "audio_features",
    "biosignal_vector",
    "dsp_inputs",
    "ecg_features",
    "eda_features",
    "eeg_band_powers",
]

EEG_BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 45.0),
}
EEG_FEATURE_NAMES = tuple(f"eeg_log10_power_{b}" for b in EEG_BANDS) + tuple(
    f"eeg_rel_{b}" for b in EEG_BANDS
)
ECG_FEATURE_NAMES = ("ecg_heart_rate_hz", "ecg_log1p_rmssd_ms", "ecg_log1p_sdnn_ms")
EDA_FEATURE_NAMES = ("eda_tonic_mean_us", "eda_phasic_std_us", "eda_scr_rate_per_min")
BIOSIGNAL_FEATURE_NAMES = EEG_FEATURE_NAMES + ECG_FEATURE_NAMES + EDA_FEATURE_NAMES

EEG_FEATURES = len(EEG_FEATURE_NAMES)  # 10
ECG_FEATURES = len(ECG_FEATURE_NAMES)  # 3
EDA_FEATURES = len(EDA_FEATURE_NAMES)  # 3
BIOSIGNAL_FEATURES = len(BIOSIGNAL_FEATURE_NAMES)  # 16, the model's auxiliary.biosignal_features

#: Mel bands per audio frame, the model's auxiliary.audio_num_mel_bins.
N_MELS = 64
#: Audio is resampled to this rate so that every mel band means the same frequencies for any input.
AUDIO_RATE = 16000
AUDIO_FMIN, AUDIO_FMAX = 20.0, 8000.0
#: Length of :meth:`AudioFeatures.as_vector` (per-band mean and standard deviation over time).
AUDIO_FEATURES = 2 * N_MELS

# Minimum sampling rates and durations, with the reason each exists.
EEG_MIN_RATE = 2.0 * EEG_BANDS["gamma"][1]  # Nyquist for the top of the gamma band (must exceed it)
EEG_WINDOW_S = 2.0  # Welch window: 0.5 Hz resolution resolves the 3 Hz-wide delta band
ECG_MIN_RATE = 100.0  # the QRS complex has content up to ~40 Hz; R-peak detectors assume >= 100 Hz
ECG_MIN_S = 10.0  # enough beats for RR statistics
EDA_MIN_RATE = 10.0  # neurokit2 cleans EDA with a 3 Hz low-pass filter
EDA_MIN_S = 10.0  # the tonic level needs several seconds; an SCR lasts a few seconds
#: SCRs smaller than this (µS) are treated as noise; 0.05 µS is a common scoring criterion (Boucsein).
SCR_MIN_AMPLITUDE = 0.05
AUDIO_MIN_RATE = 8000.0  # telephone-band speech; lower rates lose most of the speech spectrum
AUDIO_MIN_S = 0.1


def _signal(
    x: Any,
    name: str,
    rate: Any,
    min_rate: float,
    min_s: float,
    *,
    strict_rate: bool = False,
    ndim: tuple[int, ...] = (1,),
) -> tuple[np.ndarray, float]:
    """Validate a recording and its sampling rate; return (array, rate)."""
    arr = finite_array(x, name, ndim=ndim)
    fs = positive_scalar(rate, f"{name} sampling_rate")
    if fs < min_rate or (strict_rate and fs <= min_rate):
        relation = "above" if strict_rate else "at least"
        raise ValueError(f"{name} sampling rate {fs:g} Hz is too low: it must be {relation} {min_rate:g} Hz")
    n = arr.shape[-1]
    if n < min_s * fs:
        raise ValueError(
            f"{name} too short: {n} samples = {n / fs:.3g} s at {fs:g} Hz, need at least {min_s:g} s"
        )
    return arr, fs


def _neurokit():
    try:
        import neurokit2 as nk
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("ECG and EDA features need neurokit2: pip install 'red-heart[signals]'") from exc
    return nk


# ----------------------------------------------------------------------------------------------------
# EEG


@dataclass(frozen=True)
class EEGFeatures:
    """Absolute band powers (signal units², e.g. µV²) and powers relative to the 1-45 Hz total."""

    absolute: dict[str, float]
    relative: dict[str, float]
    total_power: float
    n_channels: int

    def as_vector(self) -> np.ndarray:
        logs = [np.log10(self.absolute[b] + 1e-12) for b in EEG_BANDS]
        return np.array(logs + [self.relative[b] for b in EEG_BANDS], dtype=np.float64)


def eeg_band_powers(eeg: Any, sampling_rate: float) -> EEGFeatures:
    """Delta/theta/alpha/beta/gamma power from the Welch PSD (2 s Hann windows, 50 % overlap).

    ``eeg`` is [n_samples] or [n_channels, n_samples]; with several channels the PSD is averaged over
    channels. Band b collects PSD bins with lo <= f < hi; relative power divides by the 1-45 Hz sum.
    """
    x, fs = _signal(eeg, "eeg", sampling_rate, EEG_MIN_RATE, EEG_WINDOW_S, strict_rate=True, ndim=(1, 2))
    x2 = x[None, :] if x.ndim == 1 else x
    nper = int(round(EEG_WINDOW_S * fs))
    freqs, psd = welch(x2, fs=fs, nperseg=nper, noverlap=nper // 2, axis=-1)
    psd = psd.mean(axis=0)
    df = freqs[1] - freqs[0]
    absolute = {b: float(psd[(freqs >= lo) & (freqs < hi)].sum() * df) for b, (lo, hi) in EEG_BANDS.items()}
    total = sum(absolute.values())
    if total <= 0:
        raise ValueError(
            "eeg has no power between 1 and 45 Hz (a flat signal?); relative powers are undefined"
        )
    relative = {b: v / total for b, v in absolute.items()}
    return EEGFeatures(absolute=absolute, relative=relative, total_power=total, n_channels=x2.shape[0])


# ----------------------------------------------------------------------------------------------------
# ECG


@dataclass(frozen=True)
class ECGFeatures:
    """Mean heart rate and time-domain HRV from RR intervals between detected R-peaks."""

    heart_rate_bpm: float
    rmssd_ms: float
    sdnn_ms: float
    pnn50: float
    n_beats: int
    r_peaks: np.ndarray = field(repr=False)

    def as_vector(self) -> np.ndarray:
        return np.array(
            [self.heart_rate_bpm / 60.0, np.log1p(self.rmssd_ms), np.log1p(self.sdnn_ms)], dtype=np.float64
        )


def ecg_features(ecg: Any, sampling_rate: float) -> ECGFeatures:
    """Heart rate (60 / mean RR), RMSSD, SDNN (sample SD) and pNN50 from neurokit2's R-peaks."""
    x, fs = _signal(ecg, "ecg", sampling_rate, ECG_MIN_RATE, ECG_MIN_S)
    nk = _neurokit()
    cleaned = nk.ecg_clean(x, sampling_rate=int(round(fs)))
    _, info = nk.ecg_peaks(cleaned, sampling_rate=int(round(fs)), correct_artifacts=True)
    peaks = np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
    if peaks.size < 4:
        raise ValueError(f"ecg: only {peaks.size} R-peaks detected in {x.size / fs:.3g} s; need at least 4")
    rr_ms = np.diff(peaks) / fs * 1000.0
    d_rr = np.diff(rr_ms)
    return ECGFeatures(
        heart_rate_bpm=float(60000.0 / rr_ms.mean()),
        rmssd_ms=float(np.sqrt(np.mean(d_rr**2))),
        sdnn_ms=float(np.std(rr_ms, ddof=1)),
        pnn50=float(np.mean(np.abs(d_rr) > 50.0)),
        n_beats=int(peaks.size),
        r_peaks=peaks,
    )


# ----------------------------------------------------------------------------------------------------
# EDA / GSR


@dataclass(frozen=True)
class EDAFeatures:
    """Tonic level and phasic (skin-conductance response) activity, in µS if the input is in µS."""

    tonic_mean: float
    tonic_slope_per_min: float
    phasic_std: float
    phasic_max: float
    scr_count: int
    scr_rate_per_min: float
    scr_mean_amplitude: float
    tonic: np.ndarray = field(repr=False)
    phasic: np.ndarray = field(repr=False)

    def as_vector(self) -> np.ndarray:
        return np.array([self.tonic_mean, self.phasic_std, self.scr_rate_per_min], dtype=np.float64)


def eda_features(eda: Any, sampling_rate: float) -> EDAFeatures:
    """Split skin conductance into tonic and phasic parts and detect SCRs with ``neurokit2.eda_process``.

    The input is expected in µS; SCRs below ``SCR_MIN_AMPLITUDE`` are not counted.
    """
    x, fs = _signal(eda, "eda", sampling_rate, EDA_MIN_RATE, EDA_MIN_S)
    nk = _neurokit()
    frame, info = nk.eda_process(x, sampling_rate=int(round(fs)))
    tonic = frame["EDA_Tonic"].to_numpy(dtype=np.float64)
    phasic = frame["EDA_Phasic"].to_numpy(dtype=np.float64)
    minutes = x.size / fs / 60.0
    slope = float(np.polyfit(np.arange(x.size) / fs / 60.0, tonic, 1)[0])
    amps = np.asarray(info.get("SCR_Amplitude", []), dtype=np.float64)
    amps = amps[np.isfinite(amps) & (amps >= SCR_MIN_AMPLITUDE)]
    return EDAFeatures(
        tonic_mean=float(tonic.mean()),
        tonic_slope_per_min=slope,
        phasic_std=float(phasic.std()),
        phasic_max=float(phasic.max()),
        scr_count=int(amps.size),
        scr_rate_per_min=float(amps.size / minutes),
        scr_mean_amplitude=float(amps.mean()) if amps.size else 0.0,
        tonic=tonic,
        phasic=phasic,
    )


# ----------------------------------------------------------------------------------------------------
# audio


@dataclass(frozen=True)
class AudioFeatures:
    """Natural-log mel energies per frame ``[n_frames, N_MELS]`` and the bands' centre frequencies."""

    log_mel: np.ndarray
    band_centres_hz: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(self.log_mel.shape[0])

    @property
    def log_mel_mean(self) -> np.ndarray:
        return self.log_mel.mean(axis=0)

    @property
    def log_mel_std(self) -> np.ndarray:
        return self.log_mel.std(axis=0)

    def as_vector(self) -> np.ndarray:
        """A fixed-length summary (``AUDIO_FEATURES``): per-band mean, then per-band std over time."""
        return np.concatenate([self.log_mel_mean, self.log_mel_std]).astype(np.float64)


def audio_features(audio: Any, sampling_rate: float) -> AudioFeatures:
    """Log-mel frames of mono audio after resampling to ``AUDIO_RATE`` (20 Hz - 8 kHz, ``N_MELS`` bands)."""
    x, fs = _signal(audio, "audio", sampling_rate, AUDIO_MIN_RATE, AUDIO_MIN_S)
    if fs != AUDIO_RATE:
        ratio = Fraction(AUDIO_RATE / fs).limit_denominator(1000)
        x = resample_poly(x, ratio.numerator, ratio.denominator)
    logmel = log_mel_spectrogram(x, AUDIO_RATE, n_mels=N_MELS, f_min=AUDIO_FMIN, f_max=AUDIO_FMAX)
    return AudioFeatures(log_mel=logmel, band_centres_hz=mel_band_edges(N_MELS, AUDIO_FMIN, AUDIO_FMAX)[1:-1])


# ----------------------------------------------------------------------------------------------------
# the encoder's inputs


def biosignal_vector(
    *, eeg: EEGFeatures | None = None, ecg: ECGFeatures | None = None, eda: EDAFeatures | None = None
) -> np.ndarray:
    """The ``BIOSIGNAL_FEATURES`` float32 vector ``[EEG | ECG | EDA]``; an absent modality is zeros.

    A present EEG is recognisable by its relative powers summing to one and a present ECG by a non-zero
    heart rate, so zero-filling stays unambiguous for them.
    """
    parts = [
        np.zeros(size) if feats is None else feats.as_vector()
        for feats, size in ((eeg, EEG_FEATURES), (ecg, ECG_FEATURES), (eda, EDA_FEATURES))
    ]
    return np.concatenate(parts).astype(np.float32)


def dsp_inputs(
    *,
    eeg: EEGFeatures | None = None,
    ecg: ECGFeatures | None = None,
    eda: EDAFeatures | None = None,
    audio: AudioFeatures | None = None,
) -> dict[str, np.ndarray]:
    """One example's ``modality_features``: ``"biosignals"`` [16] and/or ``"audio"`` [n_frames, N_MELS].

    Keys are present only for what was given (no biosignal at all means no ``"biosignals"`` key); the
    caller batches and pads audio frames and converts to tensors.
    """
    out: dict[str, np.ndarray] = {}
    if eeg is not None or ecg is not None or eda is not None:
        out["biosignals"] = biosignal_vector(eeg=eeg, ecg=ecg, eda=eda)
    if audio is not None:
        out["audio"] = audio.log_mel.astype(np.float32)
    return out
