"""Batched prediction over an :class:`~.collate.ExampleTable`, and the validation metrics used while training."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch

from ..configuration_redheart.tasks import IGNORE_INDEX, MULTILABEL_TASKS, TASK_LABELS
from .collate import Collator, ExampleTable, batch_texts
from .collate import routes as collate_routes
from .metrics import binary_accuracy, choose_threshold, multilabel_f1, pairwise_accuracy

LABEL_KEYS = frozenset(TASK_LABELS.values())
#: The outputs the training metrics and the evaluation read.
PREDICTED_FIELDS = (
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
    collected = _Collected()
    losses: dict[str, list[float]] = {}
    starts = range(0, len(rows), batch_size)
    for start in tqdm(starts, desc=desc, disable=not progress, leave=False):
        chunk = rows[start : start + batch_size].tolist()
        batch = collator(chunk)
        if not with_losses:
            batch = {k: v for k, v in batch.items() if k not in LABEL_KEYS}
        with autocast() if autocast is not None else nullcontext():
            result = model(**to_device(batch, device))
        outputs = {name: getattr(result, name) for name in PREDICTED_FIELDS}
        collected.add(
            {k: v.float().cpu().numpy() for k, v in outputs.items() if v is not None},
            len(chunk),
            collator.texts_and_pairs(chunk)[3],
        )
        if with_losses and result.task_losses:
            for task, value in result.task_losses.items():
                losses.setdefault(task, []).append(float(value.detach().float().cpu()))
    if was_training:
        model.train()
    arrays = collected.arrays()
    if with_losses:
        arrays["losses"] = {k: float(np.mean(v)) for k, v in losses.items()}
    return arrays


def predict_from_tokens(
    runner: Any,
    encoders: Any,
    table: ExampleTable,
    max_length: int | None,
    *,
    batch_size: int = 128,
    progress: bool = False,
    desc: str = "predict from tokens",
) -> dict[str, np.ndarray]:
    """:func:`predict`'s outputs from a runner reading token ids: the ONNX graphs (``redheart.onnx_backend``), or
    torch with quantized layers (``evaluation.predictions.TorchRunner``).

    Each text is cut as the feature stores cut it (content tokens up to ``max_length`` minus the special tokens;
    None: the encoder's own window, as a tuned encoder's collator reads it), so
    torch (on cached features) and a runner read the same tokens and their metrics are comparable.
    """
    from tqdm.auto import tqdm

    routes = collate_routes({n: {**encoders[n].spec, "enabled": True} for n in encoders})
    collected = _Collected()
    for start in tqdm(range(0, len(table), batch_size), desc=desc, disable=not progress, leave=False):
        chunk = list(range(start, min(start + batch_size, len(table))))
        texts, langs, _, pairs = batch_texts(table, chunk)
        by_route: dict[tuple[str, ...], list[int]] = {}
        for i, lang in enumerate(langs):
            by_route.setdefault(tuple(routes[lang]), []).append(i)
        merged: dict[str, np.ndarray] = {}
        for route, members in by_route.items():
            feeds = {}
            for name in route:
                handle = encoders[name]
                budget = handle.content_budget(max_length)
                tokens = handle.tokenize([texts[i] for i in members])
                ids, mask = handle.pad([handle.with_specials(t.ids[:budget]) for t in tokens])
                feeds[f"{name}_input_ids"], feeds[f"{name}_attention_mask"] = ids.numpy(), mask.numpy()
            feeds["language_ids"] = np.array([langs[i] for i in members], dtype=np.int64)
            for name, value in runner.run(route, feeds).items():
                if name in PREDICTED_FIELDS and value is not None:
                    merged.setdefault(name, np.zeros((len(texts), *value.shape[1:]), dtype=np.float32))
                    merged[name][members] = value
        collected.add(merged, len(chunk), pairs)
    return collected.arrays()


class _Collected:
    """Per-batch outputs gathered into per-example arrays (``utility_worse``: the worse side's utility, or NaN)."""

    def __init__(self) -> None:
        self.out: dict[str, list[np.ndarray]] = {name: [] for name in PREDICTED_FIELDS}
        self.worse: list[np.ndarray] = []

    def add(self, outputs: dict[str, np.ndarray], n: int, pairs: np.ndarray) -> None:
        """``outputs`` of a batch of ``n`` examples followed by their pairs' worse sides."""
        for name, value in outputs.items():
            self.out[name].append(value[:n])
        w = np.full(n, np.nan, dtype=np.float32)
        if len(pairs):
            w[pairs[:, 0]] = outputs["utility"][pairs[:, 1]]
        self.worse.append(w)

    def arrays(self) -> dict[str, Any]:
        arrays: dict[str, Any] = {k: np.concatenate(v) for k, v in self.out.items() if v}
        arrays["utility_worse"] = np.concatenate(self.worse)
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
