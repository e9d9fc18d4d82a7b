"""Token pooling in fusion (``backbone.token_pool_stride``): exact masked means, padding invariance, budgets."""

from __future__ import annotations

import pytest
import torch
from transformers import pipeline

import redheart  # noqa: F401  (registers the task)
from redheart.configuration_redheart import RedHeartConfig
from redheart.configuration_redheart.presets import preset_kwargs
from redheart.encoders.testing import build_tiny_system
from redheart.modeling_redheart import RedHeartModel
from redheart.modeling_redheart.fusion import pool_tokens

from conftest import make_inputs

LONG_KO = " ".join(["오늘은 정말 행복한 하루였다. 그런데 부모님께 거짓말을 해서 마음이 무겁다."] * 12)


def _backbone(**changes) -> dict:
    return {**preset_kwargs("tiny")["backbone"], **changes}


def _strided_model(stride: int, **changes) -> RedHeartModel:
    torch.manual_seed(0)
    config = RedHeartConfig.from_preset("tiny", backbone=_backbone(token_pool_stride=stride, **changes))
    return RedHeartModel(config).eval()


def test_pool_tokens_is_the_masked_window_mean():
    gen = torch.Generator().manual_seed(0)
    states = torch.randn(3, 11, 5, generator=gen)
    mask = torch.ones(3, 11, dtype=torch.bool)
    mask[1, 7:] = False
    mask[2, 2:] = False
    pooled, pooled_mask = pool_tokens(states, mask, 3)
    assert pooled.shape == (3, 1 + 4, 5)  # first token + ceil(10 / 3) windows
    for b in range(3):
        assert torch.equal(pooled[b, 0], states[b, 0])
        for w in range(4):
            rows = [i for i in range(1 + 3 * w, min(1 + 3 * (w + 1), 11)) if mask[b, i]]
            assert bool(pooled_mask[b, w + 1]) == bool(rows)
            if rows:
                torch.testing.assert_close(pooled[b, w + 1], states[b, rows].mean(dim=0))


def test_pool_tokens_length_is_the_configured_pooled_length():
    """The validation budget (``pooled_length``) and the fusion (``pool_tokens``) count fused tokens alike."""
    for stride in (1, 2, 4, 5):
        backbone = RedHeartConfig.from_preset("tiny", backbone=_backbone(token_pool_stride=stride)).backbone
        for length in range(1, 20):
            pooled, mask = pool_tokens(
                torch.zeros(1, length, 2), torch.ones(1, length, dtype=torch.bool), stride
            )
            assert pooled.shape[1] == mask.shape[1] == backbone.pooled_length(length), (stride, length)


def test_stride_one_is_the_identity():
    states, mask = torch.randn(2, 6, 4), torch.ones(2, 6, dtype=torch.bool)
    pooled, pooled_mask = pool_tokens(states, mask, 1)
    assert pooled is states and pooled_mask is mask


def test_padding_does_not_change_a_strided_example():
    model = _strided_model(4)
    inputs = make_inputs(model.config, batch=1, lengths=(9, 6), modality=False)
    padded = {
        "encoder_hidden_states": {
            n: torch.cat([h, torch.randn(1, 13, h.shape[-1])], dim=1)
            for n, h in inputs["encoder_hidden_states"].items()
        },
        "encoder_attention_mask": {
            n: torch.cat([m, torch.zeros(1, 13, dtype=m.dtype)], dim=1)
            for n, m in inputs["encoder_attention_mask"].items()
        },
        "language_ids": inputs["language_ids"],
    }
    with torch.no_grad():
        a, b = model(**inputs), model(**padded)
    for name in ("emotion_probs", "kote_probs", "utility", "regret_potential", "surd_shares", "confidence"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), atol=1e-5, rtol=1e-5)


def test_fused_limit_counts_pooled_tokens():
    stride, limit = 4, 40
    model = _strided_model(stride, max_fused_tokens=limit)
    backbone = model.config.backbone
    assert all(backbone.pooled_length(backbone.encoder_tokens_for(n)) == n for n in range(1, 60))
    assert all(backbone.pooled_length(backbone.encoder_tokens_for(n) + 1) == n + 1 for n in range(1, 60))
    longest = backbone.encoder_tokens_for(limit // 2)
    with torch.no_grad():
        model(**make_inputs(model.config, lengths=(longest, longest), modality=False))
        with pytest.raises(ValueError, match="max_fused_tokens"):
            model(**make_inputs(model.config, lengths=(longest + 1, longest), modality=False))


def test_stride_must_be_positive():
    with pytest.raises(ValueError, match="token_pool_stride"):
        RedHeartConfig.from_preset("tiny", backbone=_backbone(token_pool_stride=0))


def test_pipeline_windows_use_the_pooled_budget(tmp_path):
    """A fused budget of 40 tokens holds 4x more encoder tokens at stride 4: fewer windows, none rejected."""
    counts = {}
    for stride in (1, 4):
        folder = build_tiny_system(
            tmp_path / f"s{stride}",
            max_length=256,
            backbone=_backbone(max_fused_tokens=40, token_pool_stride=stride),
        )
        result = pipeline("ethics-emotion", model=str(folder))(LONG_KO, max_chunks=64)
        counts[stride] = result["metadata"]["chunks"]["count"]
    assert counts[4] < counts[1] / 3, counts
