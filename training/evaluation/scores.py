"""Each evaluation's metrics as functions of row indices (so that a resample can score two models on the same rows),
their values with bootstrap intervals, and the confidence calibration error."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...configuration_redheart.labels import ACCEPTABILITY_FRAMEWORKS
from ...configuration_redheart.tasks import MULTILABEL_TASKS
from ..collate import ExampleTable
from ..metrics import (
    binary_accuracy,
    binary_macro_f1,
    bootstrap_interval,
    expected_calibration_error,
    multilabel_f1,
    pairwise_accuracy,
)
from .sets import SET_FRAMEWORK


def reported(scores: dict[str, Any], extra: dict[str, Any], n: int) -> dict[str, Any]:
    """The values of :func:`metric_functions`' functions on all ``n`` rows, its other fields, and each one's 95 %
    percentile-bootstrap interval over the evaluated rows (``ci95``; pairs for utilitarianism)."""
    every = np.arange(n)
    return {
        **{name: score(every) for name, score in scores.items()},
        **extra,
        "ci95": {name: bootstrap_interval(score, n) for name, score in scores.items()},
    }


def metric_functions(
    kind: str, dataset: str, table: ExampleTable, pred: dict[str, Any], thresholds: dict[str, float]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The metric functions of one evaluation (each maps row indices to its value) and its other fields."""
    n = len(table)
    if kind in MULTILABEL_TASKS:
        y, hit = getattr(table, kind), pred[f"{kind}_probs"] >= np.asarray(thresholds[kind])
        return {
            "macro_f1": lambda rows: multilabel_f1(y[rows], hit[rows])["macro_f1"],
            "micro_f1": lambda rows: multilabel_f1(y[rows], hit[rows])["micro_f1"],
        }, {"n": n}
    if kind == "utility":
        better, worse = pred["utility"], pred["utility_worse"]
        return {"pairwise_accuracy": lambda rows: pairwise_accuracy(better[rows], worse[rows])}, {
            "n_pairs": n
        }
    if kind == "acceptability":
        col = ACCEPTABILITY_FRAMEWORKS.index(SET_FRAMEWORK[dataset])
        y, prob = table.acceptability[:, col], pred["acceptability_probs"][:, col]
        return {
            "accuracy": lambda rows: binary_accuracy(prob[rows], y[rows]),
            "macro_f1": lambda rows: binary_macro_f1(prob[rows], y[rows]),
        }, {"n": n, "majority_baseline": float(max(y.mean(), 1 - y.mean()))}
    if kind == "sentiment":
        positive, said = table.sentiment > 0, pred["sentiment"] > 0
        return {"accuracy": lambda rows: float((said[rows] == positive[rows]).mean())}, {
            "n": n,
            "positive_share": float(positive.mean()),
        }
    if kind == "regret":
        potential, chose_worse = pred["regret_potential"], table.regret
        return {"accuracy": lambda rows: binary_accuracy(potential[rows], chose_worse[rows])}, {"n": n}
    raise ValueError(f"unknown evaluation kind {kind!r}")


def confidence_calibration(
    tables: dict[str, ExampleTable], preds: dict[str, dict[str, Any]], ece_bins: int
) -> dict[str, Any] | None:
    """ECE of ``confidence`` against "the top emotion is a gold label" on the GoEmotions eval sides."""
    calib = {}
    for key in ("eval:goemotions_en", "eval:goemotions_ko"):
        if key in tables and "confidence" in preds[key]:
            top = preds[key]["emotion_probs"].argmax(axis=1)
            correct = tables[key].emotion[np.arange(len(top)), top] == 1
            calib[key[5:]] = (preds[key]["confidence"], correct)
    if not calib:
        return None
    conf = np.concatenate([c for c, _ in calib.values()])
    hit = np.concatenate([h for _, h in calib.values()])
    ece = expected_calibration_error(conf, hit, ece_bins)
    return {
        "ece": ece["ece"],
        "mce": ece["mce"],
        "n": ece["n"],
        "n_bins": ece_bins,
        "mean_confidence": float(conf.mean()),
        "top1_accuracy": float(hit.mean()),
        "on": sorted(calib),
        "per_set_ece": {k: expected_calibration_error(c, h, ece_bins)["ece"] for k, (c, h) in calib.items()},
    }
