"""The model's outputs on example tables: torch on cached encoder features, or from token ids -- the exported ONNX
graphs, or torch with int8 linear layers (``quantize="int8"``), which need the encoders run live."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..collate import Collator, ExampleTable
from .sets import EVALUATED_TASKS, EvaluationSettings


def predict_tables(
    model, tables: dict[str, ExampleTable], stores: dict[str, Any], batch_size: int, progress: bool
) -> dict[str, dict[str, Any]]:
    """The model's outputs on every table (from the cached features of its encoders)."""
    from ..predict import predict

    preds = {}
    for key, table in tables.items():
        collator = Collator(table, stores, model.config.encoders, EVALUATED_TASKS)
        preds[key] = predict(
            model, collator, batch_size=batch_size, progress=progress, desc=f"evaluate {key}"
        )
    return preds


class TorchRunner:
    """The ONNX runner's interface (``run(route, feeds)``) on the torch modules: each encoder of the route, then the
    model, from token ids (:class:`redheart.onnx_backend.graph.InferenceGraph`, the export's own reference)."""

    def __init__(self, model: torch.nn.Module, bank: Any, quantize: str | None) -> None:
        self.model, self.bank, self.quantize = model, bank, quantize
        self._graphs: dict[tuple[str, ...], torch.nn.Module] = {}

    def run(self, route: Sequence[str], feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray | None]:
        from ...onnx_backend.graph import ENCODER_INPUTS, InferenceGraph
        from ...pipelines.result import OUTPUT_FIELDS

        route = tuple(route)
        if route not in self._graphs:
            self._graphs[route] = InferenceGraph(self.model, {n: self.bank[n].model for n in route}, route)
        graph = self._graphs[route]
        inputs = [torch.from_numpy(feeds[f"{n}_{part}"]) for n in route for part in ENCODER_INPUTS]
        with torch.inference_mode():
            named = graph.named_outputs(*inputs, torch.from_numpy(feeds["language_ids"]))
        outputs: dict[str, np.ndarray | None] = dict.fromkeys(OUTPUT_FIELDS)
        outputs.update({name: value.float().numpy() for name, value in named.items()})
        return outputs

    def describe(self) -> dict[str, Any]:
        return {"backend": "torch", "quantize": self.quantize}


def predict_tables_from_tokens(
    model,
    tables: dict[str, ExampleTable],
    settings: EvaluationSettings,
    *,
    quantize: str | None = None,
    onnx_folder: str | None = None,
    onnx_precision: str = "int8",
    progress: bool = True,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The outputs on every table from token ids, and the encoders read: torch with ``quantize`` applied to the
    model and the encoders, or (``quantize=None``) the exported ONNX graphs in ``onnx_precision``."""
    from ...encoders.bank import EncoderBank
    from ..predict import predict_from_tokens

    bank = EncoderBank.from_config(model.config, dtype="float32")
    if quantize is not None:
        from ...pipelines.quantization import quantize_system

        quantize_system(model, [handle.model for handle in bank.values()])
        runner: Any = TorchRunner(model, bank, quantize)
    else:
        from ...onnx_backend import load_runner

        runner = load_runner(model, bank, onnx_folder, onnx_precision)
    max_length = settings.cfg.features.max_length
    preds = {
        key: predict_from_tokens(
            runner,
            bank,
            table,
            max_length,
            batch_size=settings.batch_size,
            progress=progress,
            desc=f"evaluate {key}",
        )
        for key, table in tables.items()
    }
    used = {item["name"]: {**item, "runner": runner.describe()} for item in bank.describe()}
    return preds, used


def describe_encoders(config, stores: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The enabled encoders: name or path, the revision their features were computed with, size, languages."""
    return {
        n: {
            "model_name_or_path": s["model_name_or_path"],
            "revision": stores[n].revision if n in stores else s.get("revision"),
            "hidden_size": s["hidden_size"],
            "languages": s["languages"],
        }
        for n, s in config.encoders.items()
        if s["enabled"]
    }
