"""LoRA adapters: the merge at load matches peft's own, the base is pinned, bad adapters are clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModel

from redheart.encoders import EncoderLoadError, load_encoder
from redheart.encoders.adapters import merge_adapter, resolve_adapters, weights_sha256
from redheart.encoders.testing import build_tiny_encoder

peft = pytest.importorskip("peft")


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("base") / "enc", family="bert", hidden_size=24, seed=0)


@pytest.fixture(scope="module")
def adapter(base, tmp_path_factory) -> Path:
    """A peft LoRA adapter with non-zero B (a trained one), saved in peft's format."""
    model = AutoModel.from_pretrained(base)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value", "dense"])
    wrapped = peft.get_peft_model(model, config)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in wrapped.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.2)
    out = tmp_path_factory.mktemp("adapter") / "e"
    wrapped.save_pretrained(out)
    return out


def _spec(base: Path, **extra) -> dict:
    return {"model_name_or_path": str(base), "hidden_size": 24, "languages": ["*"], "max_length": 32, **extra}


def test_merge_matches_peft_merge_and_unload(base, adapter):
    ids = torch.tensor([[2, 5, 9, 11, 3]])
    reference = peft.PeftModel.from_pretrained(AutoModel.from_pretrained(base), adapter).merge_and_unload()
    ours = AutoModel.from_pretrained(base)
    plain = ours(input_ids=ids).last_hidden_state
    assert merge_adapter("e", ours, adapter) > 0
    got, want = ours(input_ids=ids).last_hidden_state, reference(input_ids=ids).last_hidden_state
    assert (got - want).abs().max() < 1e-5
    assert (got - plain).abs().max() > 1e-3  # the adapter changed the encoder


def test_load_encoder_merges_and_names_the_adapter_in_its_revision(base, adapter):
    plain = load_encoder("e", _spec(base))
    adapted = load_encoder("e", _spec(base, adapter=str(adapter), sha256=weights_sha256(base)))
    assert adapted.revision != plain.revision and "adapter-" in adapted.revision
    ids = [[2, 7, 8, 3]]
    assert (adapted.run(ids)[0] - plain.run(ids)[0]).abs().max() > 1e-3


def test_pinned_base_mismatch_is_an_error(base, adapter):
    with pytest.raises(EncoderLoadError, match="trained on 0{64}"):
        load_encoder("e", _spec(base, adapter=str(adapter), sha256="0" * 64))


def test_adapter_of_another_architecture_is_an_error(adapter, tmp_path):
    other = build_tiny_encoder(tmp_path / "wide", family="bert", hidden_size=32, seed=0)
    spec = {**_spec(other, adapter=str(adapter)), "hidden_size": 32}
    with pytest.raises(EncoderLoadError, match="trained on another base"):
        load_encoder("e", spec)


@pytest.mark.parametrize("broken", ["missing_weights", "corrupt_weights", "not_lora"])
def test_broken_adapter_files_are_errors_naming_the_file(base, adapter, tmp_path, broken):
    folder = tmp_path / "a"
    shutil.copytree(adapter, folder)
    if broken == "missing_weights":
        (folder / "adapter_model.safetensors").unlink()
        match = "adapter_model.safetensors is missing"
    elif broken == "corrupt_weights":
        (folder / "adapter_model.safetensors").write_bytes(b"\x00garbage")
        match = "cannot read the adapter"
    else:
        config = json.loads((folder / "adapter_config.json").read_text())
        (folder / "adapter_config.json").write_text(json.dumps({**config, "peft_type": "IA3"}))
        match = "is not a LoRA adapter"
    with pytest.raises(EncoderLoadError, match=match):
        load_encoder("e", _spec(base, adapter=str(folder)))


def test_relative_adapter_paths_resolve_against_the_model_folder(tmp_path):
    specs = {"e": {"adapter": "encoders/e"}, "f": {"adapter": "/abs/x"}, "g": {}}
    out = resolve_adapters(specs, str(tmp_path))
    assert out["e"]["adapter"] == str(tmp_path / "encoders" / "e")
    assert out["f"]["adapter"] == "/abs/x" and "adapter" not in out["g"]
    with pytest.raises(EncoderLoadError, match="has none"):
        resolve_adapters(specs, None)


def test_weights_sha256_is_the_sha256_of_the_weight_file(base):
    import hashlib

    assert weights_sha256(base) == hashlib.sha256((base / "model.safetensors").read_bytes()).hexdigest()
