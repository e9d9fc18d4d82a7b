"""The documented fusion of face and text emotions (pipelines/image/fusion.py), checked against its formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from redheart.configuration_redheart.labels import CORE_LABELS
from redheart.pipelines.image.fusion import (
    FACE_ACCURACY,
    FACE_TO_CORE,
    VALENCE_SIGNS,
    face_observation,
    fuse,
    kalman_update,
    read_through_channel,
)

FER = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def _one_hot(label: str, views: int = 2) -> np.ndarray:
    row = np.array([1.0 if name == label else 0.0 for name in FER])
    return np.tile(row, (views, 1))


def test_labels_and_signs():
    assert [FACE_TO_CORE[f] for f in FER] == list(CORE_LABELS)
    signs = dict(zip(CORE_LABELS, VALENCE_SIGNS, strict=True))
    assert signs == {
        "anger": -1,
        "disgust": -1,
        "fear": -1,
        "joy": 1,
        "sadness": -1,
        "surprise": 0,
        "neutral": 0,
    }


def test_the_noisy_channel_keeps_a_distribution():
    q = read_through_channel(
        np.array([[0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], [0.2, 0.1, 0.1, 0.2, 0.2, 0.1, 0.1]])
    )
    assert q.sum(-1) == pytest.approx([1.0, 1.0])
    assert q[0, 3] == pytest.approx(FACE_ACCURACY) and q[0, 0] == pytest.approx((1 - FACE_ACCURACY) / 6)


def test_kalman_update_is_precision_weighting():
    mean, variance, gain = kalman_update(0.2, 0.04, 0.8, 0.12)
    assert gain == pytest.approx(0.25)
    assert mean == pytest.approx((0.2 / 0.04 + 0.8 / 0.12) / (1 / 0.04 + 1 / 0.12))
    assert variance == pytest.approx(1 / (1 / 0.04 + 1 / 0.12))


def test_one_face_observation_follows_the_formulas():
    views = np.array([_one_hot("happy")[0], 0.5 * _one_hot("happy")[0] + 0.5 * _one_hot("neutral")[0]])
    obs = face_observation([views], [100.0], FER)
    q = read_through_channel(views)
    joy = CORE_LABELS.index("joy")
    assert obs.core[joy] == pytest.approx(q[:, 3].mean())
    p = np.clip(q[:, 3].mean(), 0.01, 0.99)
    assert obs.core_variance[joy] == pytest.approx(p * (1 - p) + q[:, 3].var())
    v = q @ VALENCE_SIGNS
    assert obs.valence == pytest.approx(v.mean())
    assert obs.valence_variance == pytest.approx(
        4 * ((1 + v.mean()) / 2) * (1 - (1 + v.mean()) / 2) + v.var()
    )


def test_faces_mix_by_area():
    happy, sad = _one_hot("happy"), _one_hot("sad")
    alone = face_observation([happy], [1.0], FER)
    mixed = face_observation([happy, sad], [300.0, 100.0], FER)
    joy = CORE_LABELS.index("joy")
    assert mixed.core[joy] == pytest.approx(0.75 * alone.core[joy] + 0.25 * (1 - FACE_ACCURACY) / 6)
    assert mixed.core_variance[joy] > alone.core_variance[joy]  # the faces disagree: a wider mixture


def _text(joy: float = 0.2, neutral: float = 0.5) -> dict[str, float]:
    core = dict.fromkeys(CORE_LABELS, 0.1)
    core["joy"], core["neutral"] = joy, neutral
    return core


def test_a_happy_face_raises_joy_and_valence():
    fusion = fuse(_text(joy=0.2), 0.1, 0.6, face_observation([_one_hot("happy")], [1.0], FER))
    assert 0.2 < fusion.core["joy"] < FACE_ACCURACY
    assert fusion.core["neutral"] < 0.5 and fusion.valence > 0.1
    for label in CORE_LABELS:
        low, high = sorted((_text()[label], fusion.face_core[label]))
        assert low - 1e-12 <= fusion.core[label] <= high + 1e-12  # between the two readings
        assert 0 < fusion.core_gain[label] < 1


def test_confidence_follows_agreement():
    happy = face_observation([_one_hot("happy")], [1.0], FER)
    agree = fuse(_text(joy=0.9), 0.8, 0.6, happy)
    disagree = fuse(_text(joy=0.01), -0.95, 0.6, happy)
    assert agree.consistency > 0.9 and agree.confidence > 0.6
    assert disagree.consistency < 0.5 and disagree.confidence < 0.6
    d2 = (happy.valence + 0.95) ** 2 / (4 * 0.025 * 0.975 + happy.valence_variance)
    assert disagree.consistency == pytest.approx(math.exp(-d2 / 2))
    assert disagree.confidence == pytest.approx(0.6 + disagree.valence_gain * (disagree.consistency - 0.6))
    assert fuse(_text(), 0.0, None, happy).confidence is None
