"""Weight averaging (``redheart.training.average``): the mean against tensors averaged here, the LoRA update error
against its definition, the averaged adapter as the pipeline merges it, the record in the model card, and refusals.

The models are tiny local systems (no data): a LoRA adapter on ``enc_a`` saved as training saves it, and a second
model of the same "lineage" made by nudging every weight of the first.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import pipeline

import redheart  # noqa: F401  (registers the task)
from redheart.encoders import load_encoder
from redheart.encoders.adapters import weights_sha256
from redheart.encoders.testing import build_tiny_system
from redheart.training.average import RECORD, AverageError, average_models, main
from redheart.training.calibrate import RECORD as CALIBRATION_RECORD
from redheart.training.surd_head import RECORD as SURD_RECORD

ADAPTER = Path("encoders") / "enc_a"


def add_adapter(model_dir: Path, seed: int, r: int = 2) -> None:
    """A LoRA adapter (peft format) on the model's ``enc_a``, named by its config entry with the base's checksum."""
    from peft import LoraConfig, get_peft_model

    config_path = model_dir / "config.json"
    config = json.loads(config_path.read_text())
    spec = config["encoders"]["enc_a"]
    adapted = get_peft_model(
        load_encoder("enc_a", {k: v for k, v in spec.items() if k not in ("adapter", "sha256")}).model,
        LoraConfig(r=r, lora_alpha=4, target_modules=["query", "value"]),
    )
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in adapted.named_parameters():
            if "lora_" in name:  # B starts at zero; a trained adapter has both
                param.copy_(torch.randn(param.shape, generator=generator) * 0.1)
    adapted.save_pretrained(model_dir / ADAPTER)
    spec.update(adapter=str(ADAPTER), sha256=weights_sha256(spec["model_name_or_path"]))
    config_path.write_text(json.dumps(config))


def nudge(folder: Path, seed: int, scale: float = 0.01) -> None:
    """Move every weight of the saved model and its adapter a little (a later stage of one run)."""
    generator = torch.Generator().manual_seed(seed)
    for path in (folder / "model.safetensors", folder / ADAPTER / "adapter_model.safetensors"):
        tensors = load_file(str(path))
        moved = {k: t + scale * torch.randn(t.shape, generator=generator) for k, t in tensors.items()}
        save_file(moved, str(path), metadata={"format": "pt"})


@pytest.fixture(scope="module")
def lineage(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("average")
    first = build_tiny_system(root / "first", max_length=32)
    add_adapter(first, seed=0)
    second = root / "second"
    shutil.copytree(first, second)
    nudge(second, seed=1)
    (second / SURD_RECORD).write_text("{}")  # the last model's SURD step, which says nothing of the average
    (second / CALIBRATION_RECORD).write_text("{}")  # nor do its thresholds' records
    return first, second


def test_the_average_is_the_weighted_mean_and_loads_as_such(lineage, tmp_path):
    first, second = lineage
    record = average_models([first, second], tmp_path / "soup", weights=[1, 3])
    out = tmp_path / "soup"
    assert record["weights"] == [0.25, 0.75]
    for rel in ("model.safetensors", ADAPTER / "adapter_model.safetensors"):
        a, b, mean = (load_file(str(folder / rel)) for folder in (first, second, out))
        assert set(mean) == set(a)
        for key in a:
            assert torch.allclose(mean[key], 0.25 * a[key] + 0.75 * b[key], atol=1e-6), key
    # The LoRA update error, from its definition: || mean(B) mean(A) - mean(B A) || / || mean(B A) ||.
    a, b = (load_file(str(folder / ADAPTER / "adapter_model.safetensors")) for folder in (first, second))
    num = den = 0.0
    for key in a:
        if "lora_A" in key:
            key_b = key.replace("lora_A", "lora_B")
            exact = 0.25 * a[key_b].double() @ a[key].double() + 0.75 * b[key_b].double() @ b[key].double()
            approx = (0.25 * a[key_b] + 0.75 * b[key_b]).double() @ (0.25 * a[key] + 0.75 * b[key]).double()
            num += float((approx - exact).square().sum())
            den += float(exact.square().sum())
    assert 0 < record["lora_update_error"]["enc_a"] == pytest.approx((num / den) ** 0.5, rel=1e-6)
    assert json.loads((out / RECORD).read_text()) == record
    assert (out / "config.json").read_text() == (second / "config.json").read_text()
    assert not (out / SURD_RECORD).exists() and not (out / CALIBRATION_RECORD).exists()
    # The pipeline merges the averaged adapter: W + (alpha / r) mean(B) mean(A) on each adapted layer.
    pipe = pipeline("ethics-emotion", model=str(out))
    merged = pipe.encoders["enc_a"].model.encoder.layer[0].attention.self.query.weight
    base = load_encoder("enc_a", {**pipe.model.config.encoders["enc_a"], "adapter": None}).model
    mean = load_file(str(out / ADAPTER / "adapter_model.safetensors"))
    prefix = "base_model.model.encoder.layer.0.attention.self.query"
    delta = 2.0 * mean[f"{prefix}.lora_B.weight"] @ mean[f"{prefix}.lora_A.weight"]
    assert torch.allclose(merged, base.encoder.layer[0].attention.self.query.weight + delta, atol=1e-5)


def test_cli_writes_the_record_that_evaluation_and_the_card_report(lineage, tmp_path, capsys):
    from redheart.model_cards.generate import training_text
    from redheart.training.evaluation.model_folder import averaging_record

    first, second = lineage
    assert main([str(first), str(second), "--out", str(tmp_path / "soup")]) == 0
    assert "Averaged 2 models" in capsys.readouterr().out
    record = averaging_record(tmp_path / "soup")
    assert record["weights"] == [0.5, 0.5] and record["sources"] == [str(first), str(second)]
    text = training_text({"averaged": record})
    assert "weighted mean of 2 trained models" in text and f"`{second}` (0.50)" in text
    assert averaging_record(first) is None
    # an existing folder is never overwritten
    assert main([str(first), str(second), "--out", str(tmp_path / "soup")]) == 2
    assert "exists" in capsys.readouterr().err
    # a model whose adapter file is missing: the file named, nothing written
    broken = tmp_path / "broken"
    shutil.copytree(second, broken)
    (broken / ADAPTER / "adapter_model.safetensors").unlink()
    assert main([str(first), str(broken), "--out", str(tmp_path / "none")]) == 2
    assert "adapter_model.safetensors is missing" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_models_that_do_not_average_are_refused_naming_why(lineage, tmp_path):
    first, second = lineage
    with pytest.raises(AverageError, match="at least two"):
        average_models([first], tmp_path / "one")
    with pytest.raises(AverageError, match="2 positive numbers"):
        average_models([first, second], tmp_path / "w", weights=[1, -1])
    with pytest.raises(AverageError, match="expected a saved Red Heart model"):
        average_models([first, tmp_path], tmp_path / "x")
    # adapters trained apart: their mean is not an average model
    apart = tmp_path / "apart"
    shutil.copytree(first, apart)
    shutil.rmtree(apart / ADAPTER)
    add_adapter(apart, seed=5)
    with pytest.raises(AverageError, match="not trained in one\\s+lineage"):
        average_models([first, apart], tmp_path / "y")
    # another rank
    shutil.rmtree(apart / ADAPTER)
    add_adapter(apart, seed=0, r=4)
    with pytest.raises(AverageError, match="adapter_config.json: .*differs"):
        average_models([first, apart], tmp_path / "z")
    # another base pinned for the encoder
    other_base = tmp_path / "other-base"
    shutil.copytree(second, other_base)
    config = json.loads((other_base / "config.json").read_text())
    config["encoders"]["enc_a"]["sha256"] = "0" * 64
    (other_base / "config.json").write_text(json.dumps(config))
    with pytest.raises(AverageError, match="encoder 'enc_a'.*sha256"):
        average_models([first, other_base], tmp_path / "v")
    # another architecture
    wider = build_tiny_system(tmp_path / "wider", max_length=32, use_auxiliary=False)
    with pytest.raises(AverageError, match="differ in architecture"):
        average_models([first, wider], tmp_path / "u")
    assert not any((tmp_path / name).exists() for name in ("one", "w", "x", "y", "z", "v", "u"))
