"""Is a candidate better than the shipped model, or did it draw easier rows? A paired comparison on the same rows.

``python -m redheart.training.compare CANDIDATE BASELINE [--data-dir DIR] [--max-per-set N] [--out FILE]``

Both models are evaluated (:func:`~.evaluate.score_model`) on the same evaluation rows. One seeded bootstrap then
draws each evaluation's rows with replacement and scores **both** models on each draw, so what the two share --
which rows happen to be hard -- cancels out of their difference. For every headline metric (:data:`HEADLINE`) and
for their mean it reports both figures, the difference, the difference's 95 % percentile interval, and the share of
draws in which the candidate was not better. A difference whose interval lies above zero is a gain on these sets,
not luck in the rows; :mod:`.release` replaces the shipped model only on such a gain (:func:`is_gain`).

Why paired: a model's own interval (``ci95`` in ``eval_results.json``; :func:`headline_error` for the mean) says how
far its figure moves on another sample of rows. Two models scored on the same sample move together, so their
difference is much less noisy than their two intervals suggest, and comparing the intervals would call real gains
noise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .evaluate import ScoredModel
from .evaluation.model_folder import EvaluationError

#: (evaluation, metric) pairs whose mean is the headline figure that decides whether a candidate replaces the
#: shipped model (virtue by macro-F1, its bar: accuracy rewards the 80 % majority guess).
HEADLINE = (
    ("goemotions_en_dev", "macro_f1"),
    ("goemotions_ko_dev", "macro_f1"),
    ("kote_heldout", "macro_f1"),
    ("ethics_util_test", "pairwise_accuracy"),
    ("ethics_commonsense_heldout", "accuracy"),
    ("ethics_justice_test", "accuracy"),
    ("ethics_deontology_test", "accuracy"),
    ("ethics_virtue_test", "macro_f1"),
    ("kosbi_heldout", "accuracy"),
    ("nsmc_heldout", "accuracy"),
)
#: Draws of the paired bootstrap (more than the per-figure intervals' 200: this one decides a release).
COMPARISON_RESAMPLES = 1000


class ComparisonError(ValueError):
    """The two evaluations cannot be compared pair by pair (the message says why)."""


def headline_score(results: dict[str, Any]) -> float:
    """Mean of the :data:`HEADLINE` metrics of a results dict (a missing one counts 0)."""
    metrics = results.get("metrics", {})
    return sum(metrics.get(name, {}).get(key, 0.0) for name, key in HEADLINE) / len(HEADLINE)


def headline_error(results: dict[str, Any]) -> float | None:
    """One standard error of :func:`headline_score`: each metric's from its 95 % bootstrap interval (width / 3.92),
    combined as for a mean of independent estimates (the evaluation sets are disjoint); None without intervals."""
    metrics = results.get("metrics", {})
    widths = [metrics.get(name, {}).get("ci95", {}).get(key) for name, key in HEADLINE]
    if any(w is None for w in widths):
        return None
    return float(sum(((hi - lo) / 3.92) ** 2 for lo, hi in widths) ** 0.5 / len(HEADLINE))


def paired_comparison(
    candidate: ScoredModel,
    baseline: ScoredModel,
    *,
    resamples: int = COMPARISON_RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Both models' :data:`HEADLINE` figures, their differences (candidate - baseline) and the differences'
    paired-bootstrap intervals, per metric and for the mean (see the module docstring)."""
    if resamples < 1 or not 0.0 < level < 1.0:
        raise ValueError(f"need resamples >= 1 and 0 < level < 1, got {resamples}, {level}")
    missing = [name for name, _ in HEADLINE if name not in candidate.scores or name not in baseline.scores]
    if missing:
        raise ComparisonError(f"not evaluated for both models: {missing}")
    for name, _ in HEADLINE:
        if candidate.rows[name] != baseline.rows[name]:
            raise ComparisonError(
                f"{name}: the models were scored on different rows ({len(candidate.rows[name])} and "
                f"{len(baseline.rows[name])}); compare models trained with the same data settings, evaluated with "
                "the same max_per_set"
            )
    quantiles = [(1 - level) / 2, (1 + level) / 2]
    rng = np.random.default_rng(seed)
    draws = np.empty((len(HEADLINE), resamples))
    metrics = {}
    for i, (name, key) in enumerate(HEADLINE):
        ours, theirs = candidate.scores[name][key], baseline.scores[name][key]
        n = len(candidate.rows[name])
        for b in range(resamples):
            rows = rng.integers(0, n, size=n)
            draws[i, b] = ours(rows) - theirs(rows)
        every = np.arange(n)
        metrics[name] = _difference(key, ours(every), theirs(every), draws[i], quantiles)
    mean = _difference(
        "mean",
        float(np.mean([m["candidate"] for m in metrics.values()])),
        float(np.mean([m["baseline"] for m in metrics.values()])),
        draws.mean(axis=0),
        quantiles,
    )
    return {
        "candidate": candidate.results.get("model_dir"),
        "baseline": baseline.results.get("model_dir"),
        "metrics": metrics,
        "headline": mean,
        "resamples": resamples,
        "level": level,
        "seed": seed,
    }


def _difference(
    metric: str, ours: float, theirs: float, draws: np.ndarray, quantiles: list[float]
) -> dict[str, Any]:
    low, high = np.quantile(draws, quantiles)
    return {
        "metric": metric,
        "candidate": float(ours),
        "baseline": float(theirs),
        "difference": float(ours - theirs),
        "ci": [float(low), float(high)],
        "not_better_share": float((draws <= 0).mean()),
    }


def is_gain(comparison: dict[str, Any]) -> bool:
    """Whether the headline mean's difference interval lies above zero."""
    return comparison["headline"]["ci"][0] > 0


def format_comparison(comparison: dict[str, Any]) -> str:
    level = round(100 * comparison["level"])
    lines = [
        f"== {comparison['candidate']} against {comparison['baseline']} on the same rows "
        f"(paired bootstrap, {comparison['resamples']} draws; {level} % intervals of the difference)"
    ]
    rows = [*comparison["metrics"].items(), ("headline mean", comparison["headline"])]
    for name, d in rows:
        lo, hi = d["ci"]
        lines.append(
            f"  {name:<28} {d['metric']:<18} {d['candidate']:.4f} vs {d['baseline']:.4f}: {d['difference']:+.4f} "
            f"[{lo:+.4f}, {hi:+.4f}], not better in {d['not_better_share']:.1%} of draws"
        )
    verdict = "a gain" if is_gain(comparison) else "not a gain: the interval reaches zero"
    lines.append(f"  verdict: {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from .evaluate import score_model

    p = argparse.ArgumentParser(
        prog="python -m redheart.training.compare", description=__doc__.split("\n")[0]
    )
    p.add_argument("candidate", help="a saved Red Heart model")
    p.add_argument("baseline", help="the model it is compared with (e.g. models/red-heart-small-e5)")
    p.add_argument("--data-dir", default=None, help="data folder (default: each run's, then $RH_DATA_DIR)")
    p.add_argument(
        "--max-per-set",
        type=int,
        default=0,
        help="seeded sample of N rows per evaluation set (default 0: all)",
    )
    p.add_argument("--resamples", type=int, default=COMPARISON_RESAMPLES)
    p.add_argument("--out", default=None, help="also write the comparison as JSON here")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        scored = [
            score_model(
                m, data_dir=args.data_dir, max_per_set=args.max_per_set, progress=not args.no_progress
            )
            for m in (args.candidate, args.baseline)
        ]
        comparison = paired_comparison(*scored, resamples=args.resamples)
    except (EvaluationError, FileNotFoundError, ValueError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(format_comparison(comparison))
    if args.out:
        Path(args.out).write_text(json.dumps(comparison, indent=2) + "\n", encoding="utf-8")
        print(f"comparison: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
