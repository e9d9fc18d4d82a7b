"""LoRA adapters on an encoder: pinning the base checkpoint and merging the adapter at load.

A fine-tuned Red Heart model ships only what it changed in its encoder: a LoRA adapter in peft's format
(`adapter_config.json` + `adapter_model.safetensors`, a few MB) beside the model, and the SHA-256 of the
base checkpoint's weights it was trained on. At load the base is checked against that checksum (a
different base is an error naming the files, never silent drift), and every adapted linear layer is merged,
`W += (alpha / r) * B @ A` (`alpha / sqrt(r)` with rsLoRA), so inference runs the plain encoder at full
speed. The merge needs no peft: it is the documented LoRA update, and a test checks it against peft's own
`merge_and_unload`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file

from .errors import EncoderLoadError
from .files import sha256_files

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def _model_files(name: str, model_folder: str | None, adapter: str) -> Path:
    """The local folder holding the model's files: the folder itself, or the Hub snapshot of the adapter."""
    if model_folder and Path(model_folder).is_dir():
        return Path(model_folder)
    if not model_folder:
        raise EncoderLoadError(
            f"encoder {name!r}: adapter {adapter!r} is relative to the model's folder, but the model has none"
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model_folder, allow_patterns=[f"{adapter}/*"]))
    except Exception as err:
        raise EncoderLoadError(
            f"encoder {name!r}: cannot fetch adapter {adapter!r} of model {model_folder!r}: {err}"
        ) from err


def resolve_adapters(specs: dict[str, dict], model_folder: str | None) -> dict[str, dict]:
    """Encoder entries with each relative `adapter` path joined to the model's folder."""
    out = {}
    for name, spec in specs.items():
        adapter = spec.get("adapter")
        if adapter and not Path(adapter).is_absolute():
            spec = {**spec, "adapter": str(_model_files(name, model_folder, adapter) / adapter)}
        out[name] = spec
    return out


def weights_sha256(folder: str | Path) -> str:
    """SHA-256 over the `*.safetensors` weight files of a checkpoint folder (sorted by name, contents only)."""
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise EncoderLoadError(f"no *.safetensors weights in {folder} to check against a pinned sha256")
    return sha256_files(files)


def check_base(name: str, folder: str | Path, expected: str) -> None:
    """Raise `EncoderLoadError` unless the weights in `folder` hash to `expected`."""
    if not Path(folder).is_dir():
        raise EncoderLoadError(
            f"encoder {name!r}: a pinned sha256 needs a local checkpoint folder, got {folder!r}"
        )
    actual = weights_sha256(folder)
    if actual != expected:
        raise EncoderLoadError(
            f"encoder {name!r}: the base checkpoint at {folder} has weights sha256 {actual}, but the model was "
            f"trained on {expected}; its adapter would run on another base. Install the pinned encoder "
            "version (see the model card) or retrain"
        )


def read_adapter(name: str, folder: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """The adapter's peft config and weights; a missing, unreadable or non-LoRA adapter is an `EncoderLoadError`."""
    config_path, weights_path = folder / ADAPTER_CONFIG, folder / ADAPTER_WEIGHTS
    for path in (config_path, weights_path):
        if not path.is_file():
            raise EncoderLoadError(f"encoder {name!r}: the adapter file {path} is missing")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        weights = load_file(str(weights_path))
    except Exception as err:
        raise EncoderLoadError(f"encoder {name!r}: cannot read the adapter in {folder}: {err}") from err
    if config.get("peft_type") != "LORA":
        raise EncoderLoadError(
            f"encoder {name!r}: {config_path} is not a LoRA adapter (peft_type {config.get('peft_type')!r})"
        )
    if config.get("modules_to_save"):
        raise EncoderLoadError(f"encoder {name!r}: {config_path}: modules_to_save is not supported")
    return config, weights


def lora_pairs(weights: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Module path (inside the encoder) -> (A, B) from peft's key names."""
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in weights.items():
        for part in ("lora_A", "lora_B"):
            marker = f".{part}."
            if marker in key:
                module = key.split(marker)[0].removeprefix("base_model.model.")
                pairs.setdefault(module, {})[part] = tensor
    return {module: (ab.get("lora_A"), ab.get("lora_B")) for module, ab in pairs.items()}


def merge_adapter(name: str, model: torch.nn.Module, folder: str | Path) -> int:
    """Merge the LoRA adapter in `folder` into `model` in place; return the number of merged layers."""
    folder = Path(folder)
    config, weights = read_adapter(name, folder)
    pairs = lora_pairs(weights)
    if not pairs:
        raise EncoderLoadError(f"encoder {name!r}: {folder / ADAPTER_WEIGHTS} holds no LoRA weights")
    r = int(config["r"])
    scale = float(config["lora_alpha"]) / (math.sqrt(r) if config.get("use_rslora") else r)
    modules = dict(model.named_modules())
    with torch.no_grad():
        for path, (a, b) in sorted(pairs.items()):
            layer = modules.get(path)
            if a is None or b is None or layer is None or not isinstance(layer, torch.nn.Linear):
                raise EncoderLoadError(
                    f"encoder {name!r}: the adapter in {folder} does not fit this encoder (layer {path!r}); it "
                    "was trained on another architecture"
                )
            if a.shape != (r, layer.in_features) or b.shape != (layer.out_features, r):
                raise EncoderLoadError(
                    f"encoder {name!r}: the adapter in {folder} has shapes {tuple(a.shape)}/{tuple(b.shape)} "
                    f"for layer {path!r} ({layer.in_features}->{layer.out_features}, r={r}); it was trained on "
                    "another base"
                )
            delta = (b.float() @ a.float()) * scale
            layer.weight.add_(delta.to(layer.weight.dtype))
    return len(pairs)
