"""The model's outputs on example tables: torch on cached encoder features, or the exported ONNX graphs."""

from __future__ import annotations

from typing import Any

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


def predict_tables_onnx(
    model,
    tables: dict[str, ExampleTable],
    settings: EvaluationSettings,
    folder: str | None,
    precision: str,
    progress: bool,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The outputs of the exported ONNX graphs on every table, and the encoders they hold."""
    from ...encoders.bank import EncoderBank
    from ...onnx_backend import load_runner
    from ..predict import predict_onnx

    bank = EncoderBank.from_config(model.config, dtype="float32")
    runner = load_runner(model, bank, folder, precision)
    max_length = settings.cfg.features.max_length
    preds = {
        key: predict_onnx(
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
    used = {item["name"]: {**item, "onnx": runner.describe()} for item in bank.describe()}
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
