"""What evaluation reads from a saved model folder: the model itself, its training run's record, its averaging and
SURD-step records, and how a folder is named in results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: The repository root: results name a model folder inside it by its relative path (no local path in a card).
REPO = Path(__file__).resolve().parents[2]


class EvaluationError(ValueError):
    """The model folder or the evaluation data is not usable (the message says which and why)."""


def load_model(model_dir: str | Path):
    """`RedHeartModel.from_pretrained` (float32) with clear errors for a missing folder or another architecture."""
    from ...modeling_redheart import RedHeartModel

    folder = Path(model_dir)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise EvaluationError(f"{folder}: no config.json; expected a saved Red Heart model (save_pretrained)")
    model_type = json.loads(config_path.read_text(encoding="utf-8")).get("model_type")
    if model_type != "redheart":
        raise EvaluationError(
            f"{config_path}: model_type {model_type!r} is not 'redheart' (another architecture)"
        )
    import torch

    # Computed in float32 whatever the stored dtype (a bfloat16 shipped model is evaluated as the pipeline runs
    # it on CPUs without native bf16: rounded weights, full-precision arithmetic).
    return RedHeartModel.from_pretrained(str(folder), dtype=torch.float32).eval()


def training_info(model_dir: str | Path) -> dict[str, Any]:
    """The training run's settings: ``redheart_training.json`` of a saved model, or the ``trainer_state.json`` of
    the checkpoint a ``model/`` folder belongs to; empty when neither exists (defaults are used)."""
    from ..trainer import TRAINING_RECORD

    for path in (Path(model_dir) / TRAINING_RECORD, Path(model_dir).parent / "trainer_state.json"):
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    return {}


def averaging_record(model_dir: str | Path) -> dict[str, Any] | None:
    """The record of a model averaged from several (``redheart.training.average``), or None."""
    from ..average import RECORD

    path = Path(model_dir) / RECORD
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def shown_path(path: str | Path) -> str:
    """``path`` relative to the repository when it lies inside it, else absolute."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(resolved)


def surd_head_metric(model_dir: str | Path) -> dict[str, Any] | None:
    """The SURD step's held-out error of the reported shares (``redheart_surd_head.json``), or None without one."""
    from ..surd_head import RECORD

    path = Path(model_dir) / RECORD
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    return {
        "mae": record["heldout_mae_after"],
        "head_mae": record.get("heldout_mae_head", record["heldout_mae_after"]),
        "mean_shares_mae": record["heldout_mae_mean_shares"],
        "n": record["heldout_targets"],
    }
