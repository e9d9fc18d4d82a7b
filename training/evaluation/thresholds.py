"""The emotion and KOTE decision thresholds an evaluation applies: the model's own, or chosen on validation parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...configuration_redheart.tasks import MULTILABEL_TASKS
from ..collate import ExampleTable
from ..metrics import SHRINKAGE_FOLDS, choose_shrinkage, multilabel_f1, shrunk_thresholds


def choose_thresholds(
    tables: dict[str, ExampleTable], preds: dict[str, dict[str, Any]], num_labels: dict[str, int]
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Per-label emotion and KOTE decision thresholds from their validation parts (0.5 where there is none), pulled
    toward one global threshold by the weight that cross-validation on those parts chooses
    (:func:`~..metrics.choose_shrinkage`), and where each came from.

    GoEmotions EN and KO share thresholds, and their validation parts are the same comments (row ``i`` of one is
    the translation of row ``i`` of the other: the same seeded split of row-aligned sets), so row ``i`` of each part
    is one cross-validation group."""
    thresholds, source = {}, {}
    parts = {"emotion": ("val:goemotions_en", "val:goemotions_ko"), "kote": ("val:kote",)}
    for task in MULTILABEL_TASKS:
        keys = [k for k in parts[task] if k in tables]
        if not keys:
            thresholds[task] = [0.5] * num_labels[task]
            source[task] = "0.5 (no validation part available)"
            continue
        y = np.concatenate([getattr(tables[k], task) for k in keys])
        p = np.concatenate([preds[k][f"{task}_probs"] for k in keys])
        groups = np.concatenate([np.arange(len(tables[k])) for k in keys])
        if len(np.unique(groups)) >= SHRINKAGE_FOLDS:
            weight, cv = choose_shrinkage(p, y, groups)
            tried = ", ".join(f"{w:g}: {score:.3f}" for w, score in cv.items())
            how = f"{SHRINKAGE_FOLDS}-fold cross-validated macro-F1 by weight: {tried}"
        else:
            weight, how = (
                1.0,
                f"fewer than {SHRINKAGE_FOLDS} rows: too few to cross-validate a per-label choice",
            )
        thresholds[task] = shrunk_thresholds(p, y, weight)
        f = multilabel_f1(y, p >= np.asarray(thresholds[task]))["macro_f1"]
        names = ", ".join(k[4:] for k in keys)
        source[task] = (
            f"per label on the validation part of {names} ({len(y)} rows, macro-F1 {f:.3f} there), pulled toward "
            f"one global threshold by weight {weight:g} ({how})"
        )
    return thresholds, source


def model_thresholds(
    model_dir: str | Path, config, tables: dict[str, ExampleTable], preds: dict[str, dict[str, Any]]
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """The model's own thresholds when its config has them (with how its calibration chose them, when its record
    says), else :func:`choose_thresholds`."""
    from ..calibrate import threshold_source

    stored = getattr(config, "decision_thresholds", None)
    if stored and all(task in stored for task in MULTILABEL_TASKS):
        stored = {task: list(values) for task, values in stored.items()}
        recorded = threshold_source(model_dir, stored) or {}
        return stored, {
            t: f"the model's config: {recorded[t]}" if t in recorded else "the model's config" for t in stored
        }
    sizes = {"emotion": len(config.emotion_labels), "kote": len(config.kote_labels)}
    return choose_thresholds(tables, preds, sizes)
