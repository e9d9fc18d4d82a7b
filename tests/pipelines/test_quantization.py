"""int8 linear layers for the torch backend: which layers are converted, that the outputs stay those of the float
model up to int8 rounding, how the pipeline, the orchestrator and the serving settings report and refuse it."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
from transformers import pipeline

import redheart  # noqa: F401  (registers the task)
from redheart.configuration_redheart import RedHeartConfig
from redheart.encoders.bank import EncoderBank
from redheart.modeling_redheart import RedHeartModel
from redheart.pipelines import ProductionConfig, quantization
from redheart.pipelines.quantization import (
    MODEL_MIN_INT8_WEIGHTS,
    check_quantization,
    is_quantized,
    parameter_count,
    quantize_int8,
    quantized_linear_names,
)
from redheart.serving.settings import ServingSettings

TEXTS = ["I broke my promise to a friend and worked late.", "친구와의 약속을 어기고 야근을 했다."]


def _inputs(model: RedHeartModel) -> dict:
    torch.manual_seed(0)
    states, masks = {}, {}
    for name, spec in model.config.encoders.items():
        if spec["enabled"]:
            states[name] = torch.randn(2, 12, spec["hidden_size"])
            masks[name] = torch.ones(2, 12, dtype=torch.long)
    return {"encoder_hidden_states": states, "encoder_attention_mask": masks}


def test_every_linear_layer_but_those_kept_becomes_int8(tiny_system):
    model = RedHeartModel.from_pretrained(str(tiny_system)).eval()
    linears = {name for name, m in model.named_modules() if type(m) is nn.Linear}
    kept = {
        f"{name}.{child}" for name, m in model.named_modules() for child in getattr(m, "float_linears", ())
    }
    assert any(name.endswith(".k_proj") for name in kept) and any(name.endswith(".key") for name in kept)
    assert kept < linears and any(name.endswith(".down") for name in linears - kept)
    assert quantized_linear_names(model) == linears - kept
    count = parameter_count(model)
    with torch.inference_mode():
        reference = model(**_inputs(model))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's deprecation warnings are silenced for the call
        quantize_int8(model)  # no size floor: every layer of the tiny model
    layers = dict(model.named_modules())
    assert all(isinstance(layers[name], DynamicLinear) for name in linears - kept)
    assert all(type(layers[name]) is nn.Linear for name in kept)
    assert is_quantized(model) and parameter_count(model) == count
    with torch.inference_mode():
        quantized = model(**_inputs(model))
    probs, expected = quantized.emotion_probs, reference.emotion_probs
    assert not torch.equal(probs, expected)  # the int8 products did run
    torch.testing.assert_close(probs, expected, atol=0.03, rtol=0)


def test_a_size_floor_keeps_small_layers_float(tiny_system):
    """``min_weights``: only layers with at least that many weights convert (the model's floor, 2^19, keeps the whole
    shipped small model float32 and converts the 330m model's 768-wide layers)."""
    model = RedHeartModel.from_pretrained(str(tiny_system)).eval()
    sizes = {name: m.weight.numel() for name, m in model.named_modules() if type(m) is nn.Linear}
    floor = sorted(set(sizes.values()))[-2]  # the two largest sizes convert
    chosen = quantized_linear_names(model, floor)
    assert chosen and chosen == {name for name in quantized_linear_names(model) if sizes[name] >= floor}
    quantize_int8(model, floor)
    layers = dict(model.named_modules())
    assert {name for name in sizes if isinstance(layers[name], DynamicLinear)} == chosen
    assert MODEL_MIN_INT8_WEIGHTS == 2**19
    small = RedHeartModel(RedHeartConfig.from_preset("small"))
    assert max(m.weight.numel() for m in small.modules() if type(m) is nn.Linear) < MODEL_MIN_INT8_WEIGHTS


def test_the_pipeline_runs_model_and_encoders_in_int8_and_says_so(tiny_system, monkeypatch):
    floats = pipeline("ethics-emotion", model=str(tiny_system), dtype="float32")
    kept = pipeline("ethics-emotion", model=str(tiny_system), quantize="int8")
    assert not is_quantized(kept.model)  # every tiny-model layer is under the model's size floor
    assert all(is_quantized(h.model) for h in kept.encoders.values())
    monkeypatch.setattr(quantization, "MODEL_MIN_INT8_WEIGHTS", 0)  # the tiny model as if it were large
    pipe = pipeline("ethics-emotion", model=str(tiny_system), quantize="int8")
    assert is_quantized(pipe.model) and all(is_quantized(h.model) for h in pipe.encoders.values())
    for (
        handle
    ) in pipe.encoders.values():  # the BERT-family down-projections (layer.<i>.output.dense) stay float
        layers = dict(handle.model.named_modules())
        downs = [n for n in layers if re.search(r"layer\.\d+\.output\.dense$", n)]
        assert downs and all(type(layers[n]) is nn.Linear for n in downs)
        assert isinstance(layers[downs[0].replace("output.dense", "intermediate.dense")], DynamicLinear)
    assert not is_quantized(floats.model)
    results = pipe(TEXTS)
    for result, reference in zip(results, floats(TEXTS), strict=True):
        model = result["metadata"]["model"]
        assert (model["backend"], model["dtype"]) == ("torch-int8", "float32")
        assert model == pipe.describe_model()
        got = result["analysis"]["emotion"]["labels"]
        want = reference["analysis"]["emotion"]["labels"]
        assert got.keys() == want.keys()
        assert max(abs(got[k] - want[k]) for k in got) < 0.05
        assert got != want
    # a bad item in a batch gets its error and leaves the others' outputs as they were alone
    mixed = pipe([TEXTS[0], "", TEXTS[1]], errors="return")
    assert mixed[1]["error"] is not None
    assert mixed[0]["analysis"] == results[0]["analysis"] and mixed[2]["analysis"] == results[1]["analysis"]


def test_the_orchestrator_and_serving_settings_take_it(tiny_system):
    from redheart.pipelines import ProductionOrchestrator

    orchestrator = ProductionOrchestrator(
        ProductionConfig(model=str(tiny_system), quantize="int8", cache_size=0)
    )
    assert orchestrator.describe()["model"]["backend"] == "torch-int8"
    assert ServingSettings(quantize="int8").quantize == "int8"


@pytest.mark.parametrize("bad", ["int4", "INT8", 8])
def test_an_unknown_quantization_is_refused_everywhere_before_loading(tiny_system, bad):
    with pytest.raises(
        ValueError, match=r"quantize=.* is not supported; use None \(float weights\) or one of 'int8'"
    ):
        check_quantization(bad)
    with pytest.raises(ValueError, match="is not supported"):
        pipeline("ethics-emotion", model=str(tiny_system), quantize=bad)
    with pytest.raises(ValueError, match=r"ProductionConfig\.quantize="):
        ProductionConfig(model=str(tiny_system), quantize=bad)
    with pytest.raises(ValueError, match=r"ServingSettings\.quantize="):
        ServingSettings(quantize=bad)


def test_what_cannot_go_with_int8_is_refused(tiny_system):
    folder = str(tiny_system)
    with pytest.raises(
        ValueError, match="quantizes the torch backend; with backend='onnx' use onnx_precision"
    ):
        pipeline("ethics-emotion", model=folder, quantize="int8", backend="onnx")
    for option in ("dtype", "encoder_dtype"):
        with pytest.raises(
            ValueError, match=f"float32 around its int8 products; {option}='bfloat16' conflicts"
        ):
            pipeline("ethics-emotion", model=folder, quantize="int8", **{option: "bfloat16"})
    model = RedHeartModel.from_pretrained(folder)
    bank = EncoderBank.from_config(model.config, dtype="float32")
    with pytest.raises(ValueError, match=r"a shared bank \(encoders=\) would be changed"):
        pipeline("ethics-emotion", model=model, quantize="int8", encoders=bank)
    assert not any(is_quantized(h.model) for h in bank.values())  # the refused bank is left as it was
