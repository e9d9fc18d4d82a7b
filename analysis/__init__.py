"""Analysis tools that ground Red Heart's outputs.

Exact SURD causal decomposition (``surd``), Kalman/RTS smoothing of irregular streams (``kalman``),
Welch spectra of trajectories (``spectral``) and biosignal/audio front ends for the DSP encoder
(``signals``). Everything here is numpy/scipy (neurokit2 for ECG/EDA) and independent of torch.
"""

from .kalman import KalmanResult, NoiseFit, estimate_process_var, fit_noise, kalman_smooth
from .signals import (
    AUDIO_FEATURES,
    BIOSIGNAL_FEATURE_NAMES,
    BIOSIGNAL_FEATURES,
    ECG_FEATURES,
    EDA_FEATURES,
    EEG_BANDS,
    EEG_FEATURES,
    N_MELS,
    AudioFeatures,
    ECGFeatures,
    EDAFeatures,
    EEGFeatures,
    audio_features,
    biosignal_vector,
    dsp_inputs,
    ecg_features,
    eda_features,
    eeg_band_powers,
)
from .spectral import Period, Spectrum, dominant_periods, resample_uniform, welch_spectrum
from .surd import ConstantTargetError, surd, surd_from_distribution, surd_from_samples
from .surd_result import AgentSummary, SurdResult

__all__ = [
    "AUDIO_FEATURES",
    "BIOSIGNAL_FEATURES",
    "BIOSIGNAL_FEATURE_NAMES",
    "ECG_FEATURES",
    "EDA_FEATURES",
    "EEG_BANDS",
    "EEG_FEATURES",
    "N_MELS",
    "AgentSummary",
    "AudioFeatures",
    "ConstantTargetError",
    "ECGFeatures",
    "EDAFeatures",
    "EEGFeatures",
    "KalmanResult",
    "NoiseFit",
    "Period",
    "Spectrum",
    "SurdResult",
    "audio_features",
    "biosignal_vector",
    "dominant_periods",
    "dsp_inputs",
    "ecg_features",
    "eda_features",
    "eeg_band_powers",
    "estimate_process_var",
    "fit_noise",
    "kalman_smooth",
    "resample_uniform",
    "surd",
    "surd_from_distribution",
    "surd_from_samples",
    "welch_spectrum",
]
