"""Masked task losses. A label value of -100 marks "no label" (per row, or per element for acceptability)."""

from __future__ import annotations

import torch
from torch import nn

from ..configuration_redheart.tasks import IGNORE_INDEX, TASK_LABELS


def _rows(labels: torch.Tensor) -> torch.Tensor:
    """Rows that carry a label (a row of -100 is missing)."""
    return (labels != IGNORE_INDEX).all(dim=-1) if labels.dim() > 1 else labels != IGNORE_INDEX


def _positive_weighting(targets: torch.Tensor, pos_weight: torch.Tensor | None) -> torch.Tensor | float:
    """Per-element loss weights: ``pos_weight`` of its label for a positive target, 1 for a negative one."""
    if pos_weight is None:
        return 1.0
    return 1 + (pos_weight.to(targets.dtype) - 1) * targets


def focal_loss(
    logits: torch.Tensor, labels: torch.Tensor, gamma: float, pos_weight: torch.Tensor | None = None
) -> torch.Tensor | None:
    """Multi-label focal loss (Lin et al. 2017) over the labelled rows; None when no row is labelled.

    ``pos_weight`` [C]: a positive label's term is multiplied by its label's weight (class balance).
    """
    rows = _rows(labels)
    if not rows.any():
        return None
    logits, targets = logits[rows], labels[rows].to(logits.dtype)
    bce = nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = torch.exp(-bce)
    return (_positive_weighting(targets, pos_weight) * (1 - p_t) ** gamma * bce).mean()


def masked_mse(prediction: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
    rows = _rows(labels)
    return nn.functional.mse_loss(prediction[rows], labels[rows].to(prediction.dtype)) if rows.any() else None


def masked_bce(
    logits: torch.Tensor, labels: torch.Tensor, pos_weight: torch.Tensor | None = None
) -> torch.Tensor | None:
    """Element-wise masked BCE (each acceptability framework may be labelled on its own); ``pos_weight`` [C] as
    in :func:`focal_loss`."""
    keep = labels != IGNORE_INDEX
    if not keep.any():
        return None
    targets = labels.to(logits.dtype)
    bce = nn.functional.binary_cross_entropy_with_logits(logits, targets.clamp(min=0), reduction="none")
    return (_positive_weighting(targets.clamp(min=0), pos_weight) * bce)[keep].mean()


def masked_huber(prediction: torch.Tensor, labels: torch.Tensor, delta: float) -> torch.Tensor | None:
    rows = _rows(labels)
    if not rows.any():
        return None
    return nn.functional.huber_loss(prediction[rows], labels[rows].to(prediction.dtype), delta=delta)


def pairwise_utility_loss(
    utility: torch.Tensor, utility_std: torch.Tensor, pairs: torch.Tensor
) -> torch.Tensor | None:
    """Pairwise logistic (Bradley-Terry) loss with a Thurstone-style scale from the predicted spread.

    pairs [P, 2] holds (index of the more pleasant, index of the less pleasant) example of the batch:
    loss = -log sigmoid((u_a - u_b) / sqrt(1 + s_a^2 + s_b^2)), so the spread s is grounded by the same pairs.
    """
    if pairs.numel() == 0:
        return None
    better, worse = pairs[:, 0], pairs[:, 1]
    scale = torch.sqrt(1 + utility_std[better] ** 2 + utility_std[worse] ** 2)
    return -nn.functional.logsigmoid((utility[better] - utility[worse]) / scale).mean()


def surd_loss(raw_shares: torch.Tensor, labels: torch.Tensor, sum_weight: float) -> torch.Tensor | None:
    """MSE to the exact SURD shares plus a sum-to-one penalty on the unnormalised predicted shares."""
    rows = _rows(labels)
    if not rows.any():
        return None
    pred = raw_shares[rows]
    return (
        nn.functional.mse_loss(pred, labels[rows].to(pred.dtype))
        + sum_weight * ((pred.sum(-1) - 1) ** 2).mean()
    )


def range_penalty(weights: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Squared distance of the Bentham weights outside [low, high] (zero inside)."""
    return (nn.functional.relu(low - weights) ** 2 + nn.functional.relu(weights - high) ** 2).mean()


def loss_item_counts(labels: dict[str, torch.Tensor | None]) -> dict[str, int]:
    """How many items each task loss of a batch is a mean over (up to a constant factor per task).

    ``labels`` holds the label keywords of `RedHeartModel.forward` (``emotion_labels``, ``utility_pairs``, ...).
    Rows for the row-masked losses (focal, MSE, Huber, SURD), elements for acceptability (each framework is
    masked on its own), pairs for utility; ``confidence`` counts the emotion rows it is trained on. Training
    over several micro-batches or processes uses these counts to weigh each part's mean by its share of the
    global batch (``loss_scales`` of `RedHeartModel.forward`), so the loss is that of one big batch.
    """
    counts: dict[str, int] = {}
    for task, key in TASK_LABELS.items():
        value = labels.get(key)
        if value is None:
            continue
        if task == "utility":
            counts[task] = int(value.shape[0])
        elif task == "acceptability":
            counts[task] = int((value != IGNORE_INDEX).sum())
        else:
            counts[task] = int(_rows(value).sum())
    if "emotion" in counts:
        counts["confidence"] = counts["emotion"]
    return counts
