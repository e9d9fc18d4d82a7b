"""The runtime of ``backend="onnx"``: onnxruntime sessions of an exported folder, one per encoder and per route.

:func:`load_runner` finds the folder for a loaded model -- the one given, or the cache folder keyed by the model's
fingerprint (``$RH_CACHE_DIR/onnx/<fingerprint>``), exporting into it on first use -- and checks that it was
exported from exactly these weights (:mod:`.manifest`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import cache_dir
from ..pipelines.result import OUTPUT_FIELDS
from .graph import ENCODER_INPUTS, ENCODER_OUTPUT, route_key
from .manifest import PRECISIONS, check_manifest, model_fingerprint, read_manifest

logger = logging.getLogger(__name__)


class OnnxRunner:
    """Runs the exported graphs of one precision: token ids of a route in, per-window outputs out (each encoder's
    graph, then the route's model graph on their states)."""

    def __init__(
        self,
        folder: str | Path,
        manifest: dict[str, Any],
        precision: str = "int8",
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        if precision not in PRECISIONS:
            raise ValueError(f"onnx precision must be one of {PRECISIONS}, got {precision!r}")
        self.folder, self.manifest, self.precision = Path(folder), manifest, precision
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        # Worker threads busy-wait between the operators of a run -- a sleeping thread's wake-up before each of a
        # short text's ~150 encoder operators cost more than the work (held to AVX2: 29 tokens 10.2 ms without
        # spinning, 7.4 with) -- but stop when the run ends, so that they take no core from the tokenizer, torch
        # parts (faces, streams) or other sessions between runs (onnxruntime's default spins on after it).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.add_session_config_entry("session.force_spinning_stop", "1")

        def session(entry: dict[str, Any]) -> Any:
            path = str(self.folder / entry["files"][precision])
            return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

        self.encoder_sessions = {name: session(entry) for name, entry in manifest["encoders"].items()}
        self.model_sessions = {key: session(route) for key, route in manifest["routes"].items()}

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.manifest.get("parts", ()))

    def run(self, route: Sequence[str], feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray | None]:
        """Outputs by name for one route; ``feeds`` maps the route's input names (per encoder ``<name>_input_ids``
        and ``<name>_attention_mask``, then ``language_ids``) to int64 arrays."""
        key = route_key(route)
        if key not in self.model_sessions:
            raise KeyError(f"no exported graph for route {key!r} (exported: {sorted(self.model_sessions)})")
        model_feeds: dict[str, np.ndarray] = {}
        for name in route:
            ids, mask = feeds[f"{name}_input_ids"], feeds[f"{name}_attention_mask"]
            model_feeds[f"{name}_{ENCODER_OUTPUT}"] = self.encode(name, ids, mask)
            model_feeds[f"{name}_attention_mask"] = mask
        model_feeds["language_ids"] = feeds["language_ids"]
        names = self.manifest["routes"][key]["outputs"]
        outputs: dict[str, np.ndarray | None] = dict.fromkeys(OUTPUT_FIELDS)  # absent outputs stay None
        outputs.update(zip(names, self.model_sessions[key].run(names, model_feeds), strict=True))
        return outputs

    def encode(self, name: str, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Encoder ``name``'s graph: its last hidden states for padded ids and mask."""
        feeds = dict(zip(ENCODER_INPUTS, (input_ids, attention_mask), strict=True))
        (states,) = self.encoder_sessions[name].run([ENCODER_OUTPUT], feeds)
        return states

    def describe(self) -> dict[str, Any]:
        """JSON-safe identity for output metadata."""
        return {
            "backend": "onnx",
            "precision": self.precision,
            "folder": str(self.folder),
            "fingerprint": self.manifest["fingerprint"],
        }


def default_folder(fingerprint: str) -> Path:
    """The cache folder of a model's export."""
    return cache_dir() / "onnx" / fingerprint[:32]


def load_runner(
    model: Any,
    encoders: Any,
    folder: str | Path | None = None,
    precision: str = "int8",
    threads: int | None = None,
) -> OnnxRunner:
    """The ONNX runner of a loaded model and encoder bank; exports into ``folder`` (or the cache) when it is empty."""
    from .export import export_onnx

    if precision not in PRECISIONS:
        raise ValueError(f"onnx precision must be one of {PRECISIONS}, got {precision!r}")
    fingerprint = model_fingerprint(model, {name: encoders[name].model for name in encoders})
    folder = Path(folder) if folder is not None else default_folder(fingerprint)
    manifest = read_manifest(folder)
    if manifest is None:
        if folder.exists() and any(folder.iterdir()):
            raise FileNotFoundError(
                f"{folder} holds no ONNX export (no redheart_onnx.json); give an empty folder"
            )
        logger.warning("exporting the model to ONNX into %s (once; about a minute per route)", folder)
        manifest = export_onnx(model, encoders, folder, PRECISIONS, progress=False)
    check_manifest(folder, manifest, fingerprint, precision)
    return OnnxRunner(folder, manifest, precision, threads)
