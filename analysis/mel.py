"""Mel filterbank and log-mel spectrogram with numpy/scipy (no torchaudio or librosa needed).

The mel scale is the HTK one, mel = 2595 log10(1 + f / 700); filters are triangles between the centres
of their neighbours on that scale, area-normalised (Slaney style) so that wide high-frequency bands do
not dominate merely by collecting more FFT bins.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import stft


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_band_edges(n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """The ``n_mels + 2`` band edges in Hz; band i spans edges[i]..edges[i+2] and peaks at edges[i+1]."""
    return mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))


def mel_filterbank(sampling_rate: float, n_fft: int, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """Triangular filters as a matrix [n_mels, n_fft // 2 + 1] acting on a power spectrum."""
    freqs = np.fft.rfftfreq(n_fft, d=1.0 / sampling_rate)
    edges = mel_band_edges(n_mels, f_min, f_max)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lower) / (centre - lower)
    falling = (upper - freqs[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights * (2.0 / (upper - lower))


def log_mel_spectrogram(
    audio: np.ndarray,
    sampling_rate: float,
    *,
    n_mels: int,
    f_min: float,
    f_max: float,
    win_s: float = 0.025,
    hop_s: float = 0.010,
) -> np.ndarray:
    """Natural-log mel energies [n_frames, n_mels] from 25 ms Hann frames every 10 ms."""
    win = int(round(win_s * sampling_rate))
    hop = int(round(hop_s * sampling_rate))
    n_fft = 1 << (win - 1).bit_length()
    _, _, z = stft(
        audio,
        fs=sampling_rate,
        window="hann",
        nperseg=win,
        noverlap=win - hop,
        nfft=n_fft,
        boundary=None,
        padded=False,
    )
    power = np.abs(z) ** 2  # [n_freq, n_frames]
    fb = mel_filterbank(sampling_rate, n_fft, n_mels, f_min, f_max)
    return np.log(fb @ power + 1e-10).T
