"""Evaluation metrics in numpy (hand-checkable; the tests compare them with scikit-learn and toy inputs).

Why not ``evaluate.load("f1")``: the ``evaluate`` library fetches its metric scripts from the Hugging Face Hub,
which is unreachable here, and its F1 script is a thin wrapper of scikit-learn's ``f1_score`` anyway. These
functions compute the same numbers without a network.

* :func:`multilabel_f1` -- macro-F1 (the mean of the per-label F1 over all labels; a label with no gold and no
  predicted positive counts 0, scikit-learn's ``zero_division=0``) and micro-F1 (from pooled counts);
* :func:`choose_threshold` -- the one global decision threshold, from a grid, that maximises macro-F1 on a
  validation part (ties: the lowest);
* :func:`choose_label_thresholds` -- one threshold per label, each maximising that label's F1 on a validation
  part; labels with fewer than ``min_positives`` gold positives there keep the global threshold;
* :func:`shrunk_thresholds` / :func:`choose_shrinkage` -- the per-label thresholds pulled toward the global one by
  a weight chosen by cross-validation on the validation part itself: per-label thresholds from a few positives
  per label fit that part's noise (KOTE's validation part has 192 rows for 44 labels);
* :func:`pairwise_accuracy` -- share of pairs whose first item scores strictly higher;
* :func:`binary_accuracy`;
* :func:`binary_macro_f1` -- the mean of the F1 of both classes of a 0/1 decision (scikit-learn's
  ``f1_score(average="macro", labels=[0, 1], zero_division=0)``); beside accuracy because a majority guess scores
  the majority share in accuracy but only ``p / (1 + p)`` here (0.444 on ETHICS virtue's 80/20 split);
* :func:`expected_calibration_error` -- equal-width bins over [0, 1]: sum_b (n_b / N) |accuracy_b - confidence_b|;
* :func:`bootstrap_interval` -- the seeded percentile-bootstrap interval of any of these over the evaluated items, so
  a reader sees whether a gap to a bar is larger than the sampling noise of the set.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

THRESHOLD_GRID = tuple(round(x, 2) for x in np.arange(0.05, 0.951, 0.05))
#: Weights of :func:`shrunk_thresholds` that :func:`choose_shrinkage` tries (0: per label, 1: one global threshold).
SHRINKAGE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: Folds of :func:`choose_shrinkage`'s cross-validation.
SHRINKAGE_FOLDS = 5
#: Resamples of :func:`bootstrap_interval` (the interval's ends move by about 0.002 between seeds at 200).
BOOTSTRAP_RESAMPLES = 200


def _as_bool(a) -> np.ndarray:
    return np.asarray(a).astype(bool)


def multilabel_f1(y_true, y_pred) -> dict[str, float]:
    """Macro- and micro-F1 of 0/1 matrices ``[N, C]``; also the per-label F1 list."""
    t, p = _as_bool(y_true), _as_bool(y_pred)
    if t.shape != p.shape or t.ndim != 2:
        raise ValueError(f"y_true and y_pred must be [N, C] of the same shape, got {t.shape} and {p.shape}")
    tp = (t & p).sum(axis=0).astype(np.float64)
    fp = (~t & p).sum(axis=0).astype(np.float64)
    fn = (t & ~p).sum(axis=0).astype(np.float64)
    denom = 2 * tp + fp + fn
    per_label = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    micro_denom = 2 * tp.sum() + fp.sum() + fn.sum()
    micro = float(2 * tp.sum() / micro_denom) if micro_denom > 0 else 0.0
    return {"macro_f1": float(per_label.mean()), "micro_f1": micro, "per_label_f1": per_label.tolist()}


def choose_threshold(probs, y_true, grid=THRESHOLD_GRID) -> tuple[float, float]:
    """``(threshold, macro-F1 there)``: the grid value maximising macro-F1 of ``probs >= threshold``."""
    probs = np.asarray(probs, dtype=np.float64)
    best_t, best_f = float(grid[0]), -1.0
    for t in grid:
        f = multilabel_f1(y_true, probs >= t)["macro_f1"]
        if f > best_f + 1e-12:
            best_t, best_f = float(t), f
    return best_t, best_f


def choose_label_thresholds(probs, y_true, grid=THRESHOLD_GRID, min_positives: int = 5) -> list[float]:
    """Per label, the grid value maximising that label's F1 of ``probs >= t`` (ties: the lowest); labels with
    fewer than ``min_positives`` gold positives keep the global :func:`choose_threshold` value."""
    probs, t = np.asarray(probs, dtype=np.float64), _as_bool(y_true)
    if probs.shape != t.shape or probs.ndim != 2:
        raise ValueError(f"probs and y_true must be [N, C] of one shape, got {probs.shape} and {t.shape}")
    global_t, _ = choose_threshold(probs, t, grid)
    out = []
    for c in range(t.shape[1]):
        if t[:, c].sum() < min_positives:
            out.append(global_t)
            continue
        f1 = [multilabel_f1(t[:, c : c + 1], probs[:, c : c + 1] >= g)["macro_f1"] for g in grid]
        out.append(float(grid[int(np.argmax(np.asarray(f1) > max(f1) - 1e-12))]))
    return out


def shrunk_thresholds(probs, y_true, weight: float, grid=THRESHOLD_GRID) -> list[float]:
    """``weight * global + (1 - weight) * per_label``: :func:`choose_label_thresholds` pulled toward
    :func:`choose_threshold`'s one global value (0: per label, 1: global)."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must lie in [0, 1], got {weight}")
    global_t, _ = choose_threshold(probs, _as_bool(y_true), grid)
    per_label = choose_label_thresholds(probs, y_true, grid)
    # rounded: 0.5375, not 0.5375000000000001, in a config a person reads
    return [round(weight * global_t + (1.0 - weight) * t, 6) for t in per_label]


def choose_shrinkage(
    probs,
    y_true,
    groups=None,
    *,
    weights=SHRINKAGE_WEIGHTS,
    folds: int = SHRINKAGE_FOLDS,
    seed: int = 0,
    grid=THRESHOLD_GRID,
) -> tuple[float, dict[float, float]]:
    """``(weight, {weight: cross-validated macro-F1})``: the :func:`shrunk_thresholds` weight that scores best on
    rows it did not choose its thresholds on.

    The rows are split into ``folds`` seeded folds (rows sharing a ``groups`` value -- a comment and its
    translation -- stay in one fold); for each fold the thresholds are chosen on the others and applied to it, and
    the pooled decisions of all folds give one macro-F1 per weight. Ties go to the larger weight (fewer free
    parameters)."""
    probs, t = np.asarray(probs, dtype=np.float64), _as_bool(y_true)
    if probs.shape != t.shape or probs.ndim != 2:
        raise ValueError(f"probs and y_true must be [N, C] of one shape, got {probs.shape} and {t.shape}")
    groups = np.arange(len(t)) if groups is None else np.asarray(groups)
    if groups.shape != (len(t),):
        raise ValueError(f"groups must have one entry per row ({len(t)}), got shape {groups.shape}")
    unique, group_index = np.unique(groups, return_inverse=True)
    if folds < 2 or len(unique) < folds:
        raise ValueError(
            f"need folds >= 2 and at least that many groups, got {folds} folds, {len(unique)} groups"
        )
    fold = np.random.default_rng(seed).permutation(len(unique))[group_index] % folds
    scores = {}
    for w in weights:
        decided = np.zeros_like(t)
        for k in range(folds):
            fit, held = fold != k, fold == k
            decided[held] = probs[held] >= np.asarray(shrunk_thresholds(probs[fit], t[fit], w, grid))
        scores[float(w)] = multilabel_f1(t, decided)["macro_f1"]
    best = max(scores.values())
    return max(w for w, f in scores.items() if f > best - 1e-12), scores


def pairwise_accuracy(score_first, score_second) -> float:
    """Share of pairs with ``score_first > score_second`` (a tie counts as wrong)."""
    a, b = np.asarray(score_first, dtype=np.float64), np.asarray(score_second, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"need two non-empty score arrays of one shape, got {a.shape} and {b.shape}")
    return float((a > b).mean())


def binary_accuracy(prob, y_true, threshold: float = 0.5) -> float:
    """Accuracy of ``prob >= threshold`` against 0/1 labels."""
    prob, y = np.asarray(prob, dtype=np.float64), np.asarray(y_true, dtype=np.float64)
    if prob.shape != y.shape or prob.size == 0:
        raise ValueError(f"need non-empty arrays of one shape, got {prob.shape} and {y.shape}")
    return float(((prob >= threshold) == (y >= 0.5)).mean())


def binary_macro_f1(prob, y_true, threshold: float = 0.5) -> float:
    """Macro-F1 over both classes of ``prob >= threshold`` against 0/1 labels (the decision accuracy uses).

    Both classes always count, so a class never predicted and never gold scores 0 (scikit-learn with
    ``labels=[0, 1], zero_division=0``): a constant guess cannot reach more than ``p / (1 + p)``.
    """
    prob, y = np.asarray(prob, dtype=np.float64), np.asarray(y_true, dtype=np.float64)
    if prob.shape != y.shape or prob.ndim != 1 or prob.size == 0:
        raise ValueError(f"need two non-empty 1-D arrays of one shape, got {prob.shape} and {y.shape}")
    pred, gold = prob >= threshold, y >= 0.5
    return multilabel_f1(np.stack([gold, ~gold], axis=1), np.stack([pred, ~pred], axis=1))["macro_f1"]


def expected_calibration_error(confidence, correct, n_bins: int = 15) -> dict[str, float | list]:
    """ECE with ``n_bins`` equal-width bins (a confidence of exactly 0 goes to the first bin).

    Returns ``ece``, the maximum gap ``mce`` and per-bin ``(count, mean confidence, accuracy)``.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    if conf.shape != hit.shape or conf.ndim != 1 or conf.size == 0:
        raise ValueError(f"need two non-empty 1-D arrays of one shape, got {conf.shape} and {hit.shape}")
    if (conf < 0).any() or (conf > 1).any():
        raise ValueError("confidences must lie in [0, 1]")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    ece, mce, bins = 0.0, 0.0, []
    for b in range(n_bins):
        sel = index == b
        n = int(sel.sum())
        if n == 0:
            bins.append((0, None, None))
            continue
        c, a = float(conf[sel].mean()), float(hit[sel].mean())
        gap = abs(a - c)
        ece += n / conf.size * gap
        mce = max(mce, gap)
        bins.append((n, c, a))
    return {"ece": float(ece), "mce": float(mce), "bins": bins, "n": int(conf.size), "n_bins": n_bins}


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> list[float]:
    """``[low, high]``: the percentile-bootstrap interval of ``statistic(rows)`` over ``n`` items.

    ``statistic`` takes an index array (rows drawn with replacement from ``range(n)``) and returns the metric on
    those rows; the interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles over ``resamples``
    draws (Efron & Tibshirani 1993, ch. 13). Seeded, so one evaluation always reports one interval.
    """
    if n < 1 or resamples < 1 or not 0.0 < level < 1.0:
        raise ValueError(f"need n >= 1, resamples >= 1 and 0 < level < 1, got {n}, {resamples}, {level}")
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, size=n)) for _ in range(resamples)], dtype=np.float64)
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return [float(low), float(high)]
