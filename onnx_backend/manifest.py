"""What an exported ONNX folder holds, and which model it was exported from.

``redheart_onnx.json`` records the format version, the *fingerprint* of the model it was exported from (SHA-256
over the Red Heart model's and its encoders' weights, as float32, and the architecture sub-configs), per encoder
its graph files and the kernels fused in them, and per route its model graph files, input and output names and
the measured difference to torch. Loading a folder checks all of
it: a folder exported from other weights, by another format version, or missing a file is an error that names
the file and what was expected -- never a graph silently run for the wrong model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

MANIFEST = "redheart_onnx.json"
#: Bump when the graph's inputs/outputs or the folder layout change (3: encoder graphs apart from the model's).
FORMAT_VERSION = 3
PRECISIONS = ("fp32", "int8")
#: The sub-configs that shape the exported graph (label spaces and thresholds only affect post-processing).
GRAPH_CONFIGS = ("backbone", "heads", "analyzers", "auxiliary")
#: Config keys that say how a model was loaded, not what it computes.
LOAD_KEYS = frozenset({"dtype", "torch_dtype", "transformers_version", "_name_or_path"})


class OnnxVersionError(ValueError):
    """An exported folder does not belong to this model or this version of the library."""


def _hash_weights(digest: Any, module: torch.nn.Module) -> None:
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to(torch.float32).contiguous().cpu().numpy().tobytes())


def model_fingerprint(model: torch.nn.Module, encoders: Mapping[str, torch.nn.Module]) -> str:
    """SHA-256 of the weights (as float32, so stored and compute dtypes do not matter) and graph configs."""
    digest = hashlib.sha256(f"redheart-onnx-{FORMAT_VERSION}".encode())
    config = model.config
    graph_config = {
        name: {k: v for k, v in getattr(config, name).to_dict().items() if k not in LOAD_KEYS}
        for name in GRAPH_CONFIGS
        if hasattr(config, name)
    }
    digest.update(json.dumps(graph_config, sort_keys=True, default=str).encode())
    _hash_weights(digest, model)
    for name in sorted(encoders):
        digest.update(name.encode())
        _hash_weights(digest, encoders[name])
    return digest.hexdigest()


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of ``folder``, or None when the folder holds no export (no manifest file)."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OnnxVersionError(f"{path}: unreadable ONNX manifest ({exc}); export again") from exc
    if not isinstance(manifest, dict):
        raise OnnxVersionError(f"{path}: the ONNX manifest is not a JSON object; export again")
    return manifest


def check_manifest(folder: Path, manifest: dict[str, Any], fingerprint: str, precision: str) -> None:
    """Raise :class:`OnnxVersionError` unless ``folder`` holds ``precision`` graphs of the model ``fingerprint``."""
    path = Path(folder) / MANIFEST
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise OnnxVersionError(
            f"{path}: ONNX export format version {version!r}, this library reads version {FORMAT_VERSION}; "
            "export the model again (python -m redheart.onnx_backend)"
        )
    if manifest.get("fingerprint") != fingerprint:
        raise OnnxVersionError(
            f"{path}: exported from another model version (fingerprint {str(manifest.get('fingerprint'))[:16]}...), "
            f"expected {fingerprint[:16]}... for the loaded model; export this model again"
        )
    encoders = manifest.get("encoders", {})
    for key, route in manifest.get("routes", {}).items():
        graphs = [(f"route {key!r}", route)]
        for name in route.get("route", ()):
            if name not in encoders:
                raise OnnxVersionError(
                    f"{path}: route {key!r} reads encoder {name!r}, which has no graph entry"
                )
            graphs.append((f"encoder {name!r}", encoders[name]))
        for what, entry in graphs:
            name = entry.get("files", {}).get(precision)
            if name is None:
                raise OnnxVersionError(
                    f"{path}: {what} has no {precision} graph (has {sorted(entry.get('files', {}))}); "
                    f"export with --precision {precision}"
                )
            for file in (name, *entry.get("weights", {}).get(precision, [])):
                if not (Path(folder) / file).is_file():
                    raise FileNotFoundError(
                        f"{Path(folder) / file}: a file of the {precision} graph of {what} is missing"
                    )
