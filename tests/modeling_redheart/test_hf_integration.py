"""Hugging Face behaviour: save/load, Auto classes, the trust_remote_code route, checkpointing, SDPA, bf16."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoConfig, AutoModel

import redheart
from redheart.configuration_redheart import RedHeartConfig
from redheart.modeling_redheart import RedHeartModel

from conftest import make_inputs, make_labels


def _outputs(model, inputs):
    out = model(**inputs)
    return torch.cat(
        [
            out.emotion_probs,
            out.kote_probs,
            out.utility[:, None],
            out.surd_shares,
            out.regret_potential[:, None],
            out.confidence[:, None],
        ],
        dim=-1,
    )


def test_save_load_round_trip_identical(tiny_model, tiny_config, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = RedHeartModel.from_pretrained(tmp_path).eval()
    inputs = make_inputs(tiny_config)
    assert torch.equal(_outputs(tiny_model, inputs), _outputs(loaded, inputs))


def test_auto_classes_resolve(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), RedHeartConfig)
    assert isinstance(AutoModel.from_pretrained(tmp_path), RedHeartModel)
    assert isinstance(AutoModel.from_config(RedHeartConfig.from_preset("tiny")), RedHeartModel)


HUB_ROUTE = textwrap.dedent(
    """
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "redheart" or name.startswith("redheart."):
                raise ModuleNotFoundError(f"blocked: {name}")
    sys.meta_path.insert(0, Block())
    import torch
    from transformers import AutoModel
    try:
        import redheart  # noqa: F401
        raise SystemExit("redheart should not be importable here")
    except ModuleNotFoundError:
        pass
    folder, io = sys.argv[1], sys.argv[2]
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    assert "transformers_modules" in type(model).__module__, type(model).__module__
    inputs, expected = torch.load(io, weights_only=False)
    out = model(**inputs)
    assert torch.equal(out.utility, expected), "remote-code model differs"
    model.save_pretrained(folder + "_again")
    again = AutoModel.from_pretrained(folder + "_again", trust_remote_code=True).eval()
    assert torch.equal(again(**inputs).utility, expected)
    print("HUB-ROUTE-OK")
    """
)


def test_trust_remote_code_without_the_library(tiny_model, tiny_config, tmp_path):
    folder = tmp_path / "model"
    tiny_model.save_pretrained(folder)
    inputs = make_inputs(tiny_config)
    torch.save((inputs, tiny_model(**inputs).utility), tmp_path / "io.pt")
    script = tmp_path / "hub_route.py"
    script.write_text(HUB_ROUTE)
    env = {"HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, str(script), str(folder), str(tmp_path / "io.pt")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert "HUB-ROUTE-OK" in result.stdout, result.stderr[-3000:]


def _zero_dropout_config() -> RedHeartConfig:
    return RedHeartConfig.from_preset(
        "tiny",
        backbone={
            **RedHeartConfig.from_preset("tiny").backbone.to_dict(),
            "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0,
        },
        heads={**RedHeartConfig.from_preset("tiny").heads.to_dict(), "dropout": 0.0},
        analyzers={**RedHeartConfig.from_preset("tiny").analyzers.to_dict(), "dropout": 0.0},
    )


def _clean(sub: dict) -> dict:
    return {k: v for k, v in sub.items() if k not in ("model_type", "transformers_version")}


def test_gradient_checkpointing_gives_the_same_gradients():
    config = _zero_dropout_config()
    torch.manual_seed(0)
    model = RedHeartModel(config).train()
    inputs, labels = make_inputs(config, batch=8), make_labels(config, batch=8)
    model(**inputs, **labels).loss.backward()
    plain = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.activation_checkpointing_enable()
    assert model.backbone.layers[0].gradient_checkpointing
    model(**inputs, **labels).loss.backward()
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, plain[name], rtol=1e-4, atol=1e-6, msg=name)


def test_attention_dispatches_through_sdpa(tiny_config, monkeypatch):
    model = RedHeartModel(tiny_config).eval()
    assert model.config._attn_implementation == "sdpa"
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting)
    inputs = make_inputs(tiny_config)
    sdpa = model(**inputs).emotion_probs
    # self-attention: 2 backbone layers + 1 DSP layer; the analyzers' cross-attention from 2 queries takes the
    # absorbed form (tests/test_attention.py), which no kernel choice applies to
    assert len(calls) == 2 + 1
    model.set_attn_implementation("eager")
    calls.clear()
    eager = model(**inputs).emotion_probs
    assert calls == []
    torch.testing.assert_close(sdpa, eager, rtol=1e-4, atol=1e-5)


def test_bf16_forward(tiny_config):
    model = RedHeartModel(tiny_config).eval().to(torch.bfloat16)
    inputs = make_inputs(tiny_config)
    for group in ("encoder_hidden_states", "modality_features"):
        inputs[group] = {k: v.to(torch.bfloat16) for k, v in inputs[group].items()}
    out = model(**inputs)
    assert out.emotion_probs.dtype == torch.bfloat16
    assert torch.isfinite(out.emotion_probs.float()).all() and torch.isfinite(out.utility.float()).all()


def test_transformers_conventions(tiny_model):
    classes = {type(m).__name__ for m in tiny_model.modules()}
    assert set(tiny_model._no_split_modules) <= classes
    assert tiny_model.supports_gradient_checkpointing and tiny_model._supports_sdpa
    # _init_weights: norms start at identity, biases at zero, added parameters at the configured std.
    ln = tiny_model.backbone.final_norm
    assert torch.equal(ln.weight, torch.ones_like(ln.weight)) and torch.equal(
        ln.bias, torch.zeros_like(ln.bias)
    )
    assert torch.equal(
        tiny_model.fusion.projections["enc_a"].bias,
        torch.zeros_like(tiny_model.fusion.projections["enc_a"].bias),
    )
    std = tiny_model.config.initializer_range
    for param in (tiny_model.backbone.pooling.queries, tiny_model.heads.bentham.weight_in):
        assert 0.5 * std < param.std().item() < 1.5 * std
    assert redheart.RedHeartModel is RedHeartModel


def test_config_subconfig_dicts_round_trip():
    config = _zero_dropout_config()
    assert _clean(config.heads.to_dict())["dropout"] == 0.0


def test_corrupt_or_missing_weights_are_errors_naming_the_file(tmp_path):
    from redheart.configuration_redheart import RedHeartConfig
    from redheart.modeling_redheart import RedHeartModel

    RedHeartModel(RedHeartConfig.from_preset("tiny")).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(OSError, match="model.safetensors.*corrupt or truncated"):
        RedHeartModel.from_pretrained(str(tmp_path))
    weights.unlink()
    with pytest.raises(OSError, match="model.safetensors"):
        RedHeartModel.from_pretrained(str(tmp_path))
