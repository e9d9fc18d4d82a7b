"""Positive-label weights from label frequencies, and the optimiser's faster heads."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from redheart.configuration_redheart import RedHeartConfig
from redheart.training.class_balance import MAX_WEIGHT, positive_weights
from redheart.training.config import ConfigError, config_from_dict
from redheart.training.trainer import build_optimizer, is_head_parameter


def _table() -> SimpleNamespace:
    emotion = np.zeros((200, 28), dtype=np.int64)
    emotion[:50, 0] = 1  # 50 of 150 labelled rows
    emotion[0, 1] = 1  # 1 of 150 -> sqrt(149) > MAX_WEIGHT
    emotion[150:] = -100  # unlabelled rows (another set's)
    kote = np.full((200, 44), -100, dtype=np.int64)  # no KOTE row
    accept = np.full((200, 4), -100, dtype=np.int64)
    accept[:40, 3] = 0
    accept[40:50, 3] = 1  # virtue: 10 acceptable of 50
    accept[50:60, 0] = 1  # commonsense: only positives
    return SimpleNamespace(emotion=emotion, kote=kote, acceptability=accept)


def test_sqrt_weights_follow_label_frequencies():
    weights = positive_weights(_table(), "sqrt")
    assert weights["emotion"][0] == pytest.approx(math.sqrt(100 / 50), abs=1e-4)
    assert weights["emotion"][1] == MAX_WEIGHT
    assert weights["emotion"][2] == 1.0  # never positive: nothing to weigh up
    assert weights["kote"] == [1.0] * 44
    assert weights["acceptability"] == [1.0, 1.0, 1.0, pytest.approx(2.0, abs=1e-4)]
    RedHeartConfig(positive_weights=weights)  # a valid config value
    assert positive_weights(_table(), "none") is None
    with pytest.raises(ValueError, match="class_balance must be one of"):
        positive_weights(_table(), "inverse")


def test_config_rejects_mismatched_positive_weights():
    with pytest.raises(
        ValueError, match=r"positive_weights\['emotion'\] must hold one value per label \(28\), got 3"
    ):
        RedHeartConfig(positive_weights={"emotion": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="positive_weights has unknown label space 'virtue'"):
        RedHeartConfig(positive_weights={"virtue": [2.0]})
    with pytest.raises(ValueError, match=r"positive_weights\['acceptability'\] must lie in \(0, 1e4\)"):
        RedHeartConfig(positive_weights={"acceptability": [1.0, -2.0, 1.0, 1.0]})
    with pytest.raises(ConfigError, match="train.class_balance must be one of"):
        config_from_dict({"train": {"class_balance": "inverse"}}, source="bad.yaml")
    with pytest.raises(ConfigError, match="train.head_lr_multiplier must be in"):
        config_from_dict({"train": {"head_lr_multiplier": 0}}, source="bad.yaml")


def test_heads_learn_at_the_multiplied_rate(tiny_model):
    assert is_head_parameter("heads.emotion.router.weight") and is_head_parameter("module.analyzers.x")
    assert not is_head_parameter("backbone.layers.0.ffn.up.weight")
    cfg = config_from_dict({"train": {"lr": 1e-4, "head_lr_multiplier": 10.0}}, source="test")
    optimizer = build_optimizer(tiny_model, cfg)
    rate = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    for name, param in tiny_model.named_parameters():
        expected = 1e-3 if name.split(".")[0] in ("heads", "analyzers") else 1e-4
        assert rate[id(param)] == pytest.approx(expected), name
    assert {n.split(".")[0] for n, _ in tiny_model.named_parameters()} >= {"heads", "backbone"}
    # a multiplier of 1 keeps the two groups (decay, no decay) that earlier checkpoints' optimiser states hold
    plain = build_optimizer(tiny_model, config_from_dict({"train": {}}, source="test"))
    assert [g["weight_decay"] for g in plain.param_groups] == [0.01, 0.0]
    assert sum(len(g["params"]) for g in plain.param_groups) == len(list(tiny_model.parameters()))
    assert isinstance(plain, torch.optim.AdamW)
