"""RedHeartConfig: presets, serialisation, and clear errors naming the bad field."""

from __future__ import annotations

import pytest

from redheart.configuration_redheart import PRESET_NAMES, RedHeartConfig


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_presets_build_and_round_trip(preset, tmp_path):
    config = RedHeartConfig.from_preset(preset)
    config.save_pretrained(tmp_path)
    loaded = RedHeartConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert loaded.backbone.hidden_size == config.backbone.hidden_size
    assert loaded.encoders == config.encoders


def test_330m_preset_is_the_design_shape():
    config = RedHeartConfig.from_preset("330m")
    assert (
        config.backbone.hidden_size,
        config.backbone.num_hidden_layers,
        config.backbone.num_attention_heads,
    ) == (768, 6, 12)
    assert config.heads.emotion_num_experts == 8
    assert set(config.encoders) == {"kcelectra", "roberta", "klue_bert"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backbone": {"hidden_size": -8}}, "hidden_size"),
        ({"backbone": {"hidden_size": 30, "num_attention_heads": 4}}, "num_attention_heads"),
        ({"analyzers": {"emotion_layers": 0}}, "emotion_layers"),
        ({"heads": {"emotion_top_k": 9, "emotion_num_experts": 8}}, "emotion_top_k"),
        ({"heads": {"bentham_weight_range": [2.0, 1.0]}}, "bentham_weight_range"),
        ({"backbone": {"hidden_dropout_prob": 1.5}}, "hidden_dropout_prob"),
        ({"emotion_labels": ["joy", "joy"]}, "emotion_labels"),
        ({"kote_labels": []}, "kote_labels"),
        ({"encoders": {"x": {"model_name_or_path": "m", "hidden_size": 8, "colour": "red"}}}, "colour"),
        ({"encoders": {"x": {"model_name_or_path": "m", "hidden_size": 0}}}, "hidden_size"),
        (
            {"encoders": {"x": {"model_name_or_path": "m", "hidden_size": 8, "languages": ["fr"]}}},
            "languages",
        ),
        ({"encoders": {"x": {"model_name_or_path": "m", "hidden_size": 8, "enabled": False}}}, "enabled"),
        ({"use_heads": False, "use_analyzers": False}, "use_heads"),
        ({"loss_weights": {"telepathy": 1.0}}, "telepathy"),
        ({"trained_tasks": ["telepathy"]}, "telepathy"),
        ({"surd_clause_shares": {"1": [0.25, 0.25, 0.25, 0.25]}}, "surd_clause_shares has key '1'"),
        ({"surd_clause_shares": {"2": [0.5, 0.5, 0.5, 0.0]}}, r"surd_clause_shares\['2'\] must hold 4"),
        ({"surd_clause_shares": {"2": [0.5, 0.5]}}, r"surd_clause_shares\['2'\] must hold 4"),
        ({"surd_clause_shares": {}}, "surd_clause_shares must be a non-empty dict"),
    ],
)
def test_invalid_values_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RedHeartConfig.from_preset("tiny", **kwargs)


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown Red Heart preset"):
        RedHeartConfig.from_preset("huge")


def test_encoder_defaults_filled():
    config = RedHeartConfig.from_preset("tiny")
    spec = config.encoders["enc_a"]
    assert spec["enabled"] is True and spec["revision"] is None and spec["max_length"] == 512
    assert config.enabled_encoders == ["enc_a", "enc_b"]
