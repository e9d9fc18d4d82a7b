"""Masked losses with positive-label weights, against the formulas written out independently."""

from __future__ import annotations

import copy
import math

import torch

from redheart.modeling_redheart import RedHeartModel
from redheart.modeling_redheart.losses import focal_loss, masked_bce

from conftest import make_inputs, make_labels


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_focal_loss_weighs_positive_labels():
    logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 0.0, 1.5], [9.0, 9.0, 9.0]])
    labels = torch.tensor([[1, 0, 1], [0, 1, 0], [-100, -100, -100]])  # the third row is unlabelled
    weight = torch.tensor([4.0, 2.0, 1.0])
    gamma = 2.0
    terms = []
    for r in range(2):
        for c in range(3):
            x, y = logits[r, c].item(), labels[r, c].item()
            p = 1 / (1 + math.exp(-x))
            bce = -(y * _log_sigmoid(x) + (1 - y) * _log_sigmoid(-x))
            p_t = p if y else 1 - p
            terms.append((weight[c].item() if y else 1.0) * (1 - p_t) ** gamma * bce)
    expected = sum(terms) / len(terms)
    assert abs(focal_loss(logits, labels, gamma, weight).item() - expected) < 1e-6
    unweighted = focal_loss(logits, labels, gamma)
    assert abs(focal_loss(logits, labels, gamma, torch.ones(3)).item() - unweighted.item()) < 1e-7
    assert focal_loss(logits, labels, gamma, weight).item() > unweighted.item()


def test_masked_bce_weighs_positive_elements_and_skips_missing_ones():
    logits = torch.tensor([[0.3, -2.0], [1.0, 4.0]])
    labels = torch.tensor([[1, -100], [0, 1]])
    weight = torch.tensor([3.0, 5.0])
    terms = [
        -3.0 * _log_sigmoid(0.3),  # positive, framework 0
        -_log_sigmoid(-1.0),  # negative, framework 0
        -5.0 * _log_sigmoid(4.0),  # positive, framework 1
    ]
    assert abs(masked_bce(logits, labels, weight).item() - sum(terms) / 3) < 1e-6
    plain = (-_log_sigmoid(0.3) - _log_sigmoid(-1.0) - _log_sigmoid(4.0)) / 3
    assert abs(masked_bce(logits, labels).item() - plain) < 1e-6
    assert masked_bce(logits, torch.full_like(labels, -100), weight) is None


def test_model_uses_the_config_positive_weights(tiny_model, tiny_config):
    inputs, labels = make_inputs(tiny_config), make_labels(tiny_config)
    model = copy.deepcopy(tiny_model).eval()  # no dropout: the two passes differ only by the weights
    plain = model(**inputs, **labels).task_losses
    weighted_config = copy.deepcopy(tiny_config)
    weighted_config.positive_weights = {
        "emotion": [3.0] * 28,
        "acceptability": [2.0] * len(tiny_config.acceptability_frameworks),
    }
    weighted = RedHeartModel(weighted_config)
    weighted.load_state_dict(model.state_dict())
    weighted.eval()
    losses = weighted(**inputs, **labels).task_losses
    assert losses["emotion"] > plain["emotion"] and losses["acceptability"] > plain["acceptability"]
    torch.testing.assert_close(losses["kote"], plain["kote"])  # no weights given for KOTE
