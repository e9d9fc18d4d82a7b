"""Batched prediction over an :class:`~.collate.ExampleTable`, and the validation metrics used while training."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch

from ..configuration_redheart.tasks import IGNORE_INDEX, MULTILABEL_TASKS, TASK_LABELS
from .collate import Collator, ExampleTable
from .metrics import binary_accuracy, choose_threshold, multilabel_f1, pairwise_accuracy

LABEL_KEYS = frozenset(TASK_LABELS.values())
OUTPUT_FIELDS = (
    "emotion_probs",
    "kote_probs",
    "sentiment",
    "acceptability_probs",
    "utility",
    "regret_potential",
    "confidence",
)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    out = {}
    for key, value in batch.items():
        if isinstance(value, dict):
            out[key] = {
                k: to_device(v, device) if isinstance(v, dict) else v.to(device) for k, v in value.items()
            }
        elif isinstance(value, torch.Tensor):
            out[key] = value.to(device)
        else:
            out[key] = value
    return out


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    collator: Collator,
    rows: np.ndarray | None = None,
    *,
    batch_size: int = 128,
    with_losses: bool = False,
    autocast: Callable[[], Any] | None = None,
    progress: bool = False,
    desc: str = "predict",
) -> dict[str, np.ndarray | dict]:
    """Model outputs per example (``utility_worse`` = the utility of a pair's less pleasant side, NaN without one).

    ``with_losses`` also passes the labels and returns the mean raw (unweighted) task losses over batches.
    """
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rows = np.arange(len(collator.table)) if rows is None else np.asarray(rows)
    out: dict[str, list] = {name: [] for name in OUTPUT_FIELDS}
    worse: list[np.ndarray] = []
    losses: dict[str, list[float]] = {}
    starts = range(0, len(rows), batch_size)
    for start in tqdm(starts, desc=desc, disable=not progress, leave=False):
        chunk = rows[start : start + batch_size].tolist()
        batch = collator(chunk)
        if not with_losses:
            batch = {k: v for k, v in batch.items() if k not in LABEL_KEYS}
        with autocast() if autocast is not None else nullcontext():
            result = model(**to_device(batch, device))
        n = len(chunk)
        for name in OUTPUT_FIELDS:
            value = getattr(result, name)
            if value is not None:
                out[name].append(value[:n].float().cpu().numpy())
        u = result.utility.float().cpu().numpy()
        w = np.full(n, np.nan, dtype=np.float32)
        _, _, _, pairs = collator.texts_and_pairs(chunk)
        if len(pairs):
            w[pairs[:, 0]] = u[pairs[:, 1]]
        worse.append(w)
        if with_losses and result.task_losses:
            for task, value in result.task_losses.items():
                losses.setdefault(task, []).append(float(value.detach().float().cpu()))
    if was_training:
        model.train()
    arrays: dict[str, Any] = {k: np.concatenate(v) for k, v in out.items() if v}
    arrays["utility_worse"] = np.concatenate(worse)
    if with_losses:
        arrays["losses"] = {k: float(np.mean(v)) for k, v in losses.items()}
    return arrays


def task_metrics(
    table: ExampleTable, pred: dict[str, Any], tasks, thresholds: dict[str, float] | None = None
):
    """Metrics per task over the rows labelled for it; thresholds for emotion/kote are chosen here when not given.

    Returns ``(metrics, thresholds)``; metrics has ``<task>/<name>`` keys and ``val_score`` = the mean of the
    primary metric of every task present (emotion/kote macro-F1, sentiment sign accuracy, acceptability
    accuracy, utility pairwise accuracy, regret accuracy).
    """
    thresholds = dict(thresholds or {})
    metrics: dict[str, float] = {}
    primary: list[float] = []
    for task in tasks:
        rows = table.labelled(task)
        if not rows.any():
            continue
        if task in MULTILABEL_TASKS:
            y = getattr(table, task)[rows]
            probs = pred[f"{task}_probs"][rows]
            if task not in thresholds:
                thresholds[task], _ = choose_threshold(probs, y)
            f1 = multilabel_f1(y, probs >= thresholds[task])
            metrics[f"{task}/macro_f1"] = f1["macro_f1"]
            metrics[f"{task}/micro_f1"] = f1["micro_f1"]
            metrics[f"{task}/threshold"] = thresholds[task]
            primary.append(f1["macro_f1"])
        elif task == "sentiment":
            y = table.sentiment[rows]
            s = pred["sentiment"][rows]
            polar = y != 0
            if polar.any():
                metrics["sentiment/sign_accuracy"] = float(((s[polar] > 0) == (y[polar] > 0)).mean())
                primary.append(metrics["sentiment/sign_accuracy"])
            metrics["sentiment/mae"] = float(np.abs(s - y).mean())
        elif task == "acceptability":
            y = table.acceptability[rows]
            p = pred["acceptability_probs"][rows]
            keep = y != IGNORE_INDEX
            metrics["acceptability/accuracy"] = binary_accuracy(p[keep], y[keep])
            primary.append(metrics["acceptability/accuracy"])
        elif task == "utility":
            metrics["utility/pairwise_accuracy"] = pairwise_accuracy(
                pred["utility"][rows], pred["utility_worse"][rows]
            )
            primary.append(metrics["utility/pairwise_accuracy"])
        elif task == "regret":
            metrics["regret/accuracy"] = binary_accuracy(pred["regret_potential"][rows], table.regret[rows])
            primary.append(metrics["regret/accuracy"])
    if primary:
        metrics["val_score"] = float(np.mean(primary))
    return metrics, thresholds
