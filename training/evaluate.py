"""Evaluate a saved Red Heart model on the held-out parts of the real data sets; results as JSON (+ model card).

``python -m redheart.training.evaluate MODEL_DIR [--out results.json] [--max-per-set N] [--model-card]``

What is measured (each on data the model was not trained on):

=============================  ====================================================================================
``goemotions_en_dev``          macro-/micro-F1 over the 28 labels on the GoEmotions EN dev split
``goemotions_ko_dev``          the same on the (machine-translated) Korean dev split
``kote_heldout``               macro-/micro-F1 over the 44 KOTE labels on the held-out part of KOTE val
``ethics_util_test``           pairwise accuracy: u(more pleasant) > u(less pleasant) on ETHICS util_test
``ethics_<framework>_test``    accuracy and macro-F1 (both classes) of ``acceptability[framework] >= 0.5`` on ETHICS
                               justice/deontology/virtue test, beside the majority-class share; commonsense on the
                               held-out part of cm_test (there is no cm_train here, so commonsense is trained on
                               the rest of cm_test: ``ethics_commonsense_heldout``)
``kosbi_heldout``              the same of ``acceptability[commonsense]`` on the held-out KoSBi contexts
``nsmc_heldout``               positive-vs-negative accuracy (ratings 1-4 vs 9-10; 5-8 left out) of the sign of
                               ``sentiment`` on the held-out movies (split by movie_id)
``ethics_util_regret_test``    accuracy of ``regret >= 0.5`` (chose the less pleasant scenario) on util_test
``confidence_calibration``     expected calibration error (15 equal-width bins) of ``confidence`` against
                               "the top emotion is a gold label", on GoEmotions EN + KO dev
``crosslingual_agreement``     whether the Korean judgements follow the English ones on the same comments
                               (GoEmotions dev EN and its Korean translation, row by row): per acceptability
                               framework the Pearson r of the two probabilities, the share of equal decisions and
                               the mean shift Korean minus English; r of sentiment and of utility
=============================  ====================================================================================

Decision thresholds: one per label, the model's own (``config.decision_thresholds``, stored by
``python -m redheart.training.calibrate``) when it has them; otherwise chosen here the same way -- per label, the
grid value (0.05 ... 0.95) with the best F1 on the **validation part** (the groups held out of the training data
by ``training.validation_split``: GoEmotions EN+KO train, KOTE train side, recomputed from the training run's saved
settings in ``redheart_training.json``), the global best for labels with fewer than 5 positives there; then pulled
toward the one global best threshold by the weight (0, 0.25, ..., 1) that 5-fold cross-validation on that same part
scores best (:func:`~.evaluation.thresholds.choose_thresholds`). Never chosen on the reported data.

Every metric comes with its 95 % percentile-bootstrap interval over the evaluated rows (``ci95``, 200 seeded
resamples, :func:`~.metrics.bootstrap_interval`): how far a figure may move on another sample of the same size, to
read a gap to a bar against (two models scored on the same rows share most of that noise). A model with a SURD step
record (``redheart_surd_head.json``) also gets ``surd_head_heldout``, the reported SURD shares' held-out error.

The parts live in ``training/evaluation/``: ``sets`` (what each evaluation reads), ``predictions`` (the model's
outputs on them), ``thresholds``, ``scores`` (metrics, intervals, calibration error), ``crosslingual``, and
``model_folder`` (what is read from the model's folder).

Metrics are computed with numpy (:mod:`.metrics`): ``evaluate.load(...)`` needs the Hugging Face Hub for its
metric scripts, which is unreachable offline. ``--max-per-set N`` evaluates a seeded sample of N rows (pairs for
utilitarianism) per set; the JSON records every sample size.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..pipelines.quantization import QUANTIZATIONS, backend_label, check_quantization
from .collate import texts_by_language
from .evaluation import sets
from .evaluation.crosslingual import crosslingual_agreement
from .evaluation.model_folder import (
    EvaluationError,
    averaging_record,
    load_model,
    shown_path,
    surd_head_metric,
    training_info,
)
from .evaluation.predictions import describe_encoders, predict_tables, predict_tables_from_tokens
from .evaluation.scores import confidence_calibration, metric_functions, reported
from .evaluation.sets import ANCHORS, build_tables, evaluation_settings
from .evaluation.thresholds import model_thresholds

#: Entries of the training run's ``redheart_training.json`` copied into the results.
TRAINING_KEYS = ("composition", "tasks", "validation_sizes", "wall_seconds", "step", "features", "memory")


@dataclass
class ScoredModel:
    """One model's evaluation, kept for a paired comparison (:mod:`.compare`): the results dict, and per evaluation
    its metric functions of row indices (:func:`~.evaluation.scores.metric_functions`: one resample scores both
    models on the same rows) and its rows' texts (text, and the worse scenario of a utilitarianism pair), to check
    that two models read the same rows."""

    results: dict[str, Any]
    scores: dict[str, dict[str, Callable[[np.ndarray], float]]]
    rows: dict[str, list[tuple[str, str | None]]]


def evaluate_model(model_dir: str | Path, **options: Any) -> dict[str, Any]:
    """Run every evaluation of the module docstring on the model in ``model_dir``; return the results dict
    (``options``: those of :func:`score_model`)."""
    return score_model(model_dir, **options).results


def score_model(
    model_dir: str | Path,
    *,
    data_dir: str | None = None,
    max_per_set: int | None | str = "config",
    cache_dir: str | None = None,
    batch_size: int | None = None,
    ece_bins: int | None = None,
    progress: bool = True,
    print_fn=print,
    backend: str = "torch",
    onnx_folder: str | None = None,
    onnx_precision: str = "int8",
    quantize: str | None = None,
) -> ScoredModel:
    """Run every evaluation of the module docstring on the model in ``model_dir``.

    ``max_per_set``: rows per evaluation set; ``"config"`` = the training config's ``eval.max_per_set``,
    ``None`` or 0 = all. ``batch_size`` / ``ece_bins``: None = the training config's ``eval`` section.
    ``backend="onnx"``: the outputs come from the exported ONNX graphs (``onnx_folder``, default: the cache folder,
    exported on first use) in ``onnx_precision``, reading the same tokens as the torch features.
    ``quantize="int8"`` (torch only): the model's and encoders' linear layers as dynamic int8
    (:mod:`redheart.pipelines.quantization`), the encoders run live on the same tokens.
    """
    from .features import build_stores

    started = time.perf_counter()
    model = load_model(model_dir)
    config = model.config
    info = training_info(model_dir)
    settings = evaluation_settings(
        model_dir,
        info,
        max_per_set=max_per_set,
        cache_dir=cache_dir,
        batch_size=batch_size,
        ece_bins=ece_bins,
        progress=progress,
    )
    check_quantization(quantize, backend)
    tables, sizes, skipped = build_tables(settings, config.encoders, data_dir)
    if backend == "onnx" or quantize is not None:
        preds, encoders_used = predict_tables_from_tokens(
            model,
            tables,
            settings,
            quantize=quantize,
            onnx_folder=onnx_folder,
            onnx_precision=onnx_precision,
            progress=progress,
        )
    elif backend == "torch":
        stores = build_stores(settings.cfg, config, texts_by_language(tables.values()), None, print_fn)
        preds = predict_tables(model, tables, stores, settings.batch_size, progress)
        encoders_used = describe_encoders(config, stores)
    else:
        raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
    thresholds, threshold_source = model_thresholds(model_dir, config, tables, preds)
    metrics: dict[str, dict[str, Any]] = {}
    scores, rows = {}, {}
    for name, (dataset, kind) in sets.EVALUATIONS.items():
        key = f"eval:{dataset}"
        if key in tables:
            scores[name], extra = metric_functions(kind, dataset, tables[key], preds[key], thresholds)
            metrics[name] = reported(scores[name], extra, len(tables[key]))
            rows[name] = list(zip(tables[key].text, tables[key].worse, strict=True))
    calibration = confidence_calibration(tables, preds, settings.ece_bins)
    if calibration is not None:
        metrics["confidence_calibration"] = calibration
    crosslingual = crosslingual_agreement(tables, preds)
    if crosslingual is not None:
        metrics["crosslingual_agreement"] = crosslingual
    surd = surd_head_metric(model_dir)
    if surd is not None:
        metrics["surd_head_heldout"] = surd
    results = {
        "model_dir": shown_path(model_dir),
        "encoders": encoders_used,
        "backend": backend_label(backend, quantize, onnx_precision),
        "preset_shape": {
            "backbone_hidden": config.backbone.hidden_size,
            "backbone_layers": config.backbone.num_hidden_layers,
            "parameters": int(sum(p.numel() for p in model.parameters())),
        },
        "trained_tasks": list(config.trained_tasks),
        "thresholds": thresholds,
        "threshold_source": threshold_source,
        "metrics": metrics,
        "anchors": ANCHORS,
        "sizes": sizes,
        "not_evaluated": skipped,
        "metric_backend": "numpy (redheart.training.metrics); evaluate's metric scripts need the Hugging Face Hub, "
        "unreachable offline",
        "training": {k: info.get(k) for k in TRAINING_KEYS},
        "averaged": averaging_record(model_dir),
        "evaluation_seconds": round(time.perf_counter() - started, 1),
        "max_per_set": settings.max_per_set,
    }
    return ScoredModel(results, scores, rows)


def format_results(results: dict[str, Any]) -> str:
    lines = [f"== Evaluation of {results['model_dir']}"]
    for name, m in results["metrics"].items():
        main = {k: v for k, v in m.items() if isinstance(v, float)}
        size = m.get("n", m.get("n_pairs"))
        anchor = results["anchors"].get(name)
        ci = m.get("ci95", {})
        shown = ", ".join(
            f"{k} {v:.4f}" + (f" [{ci[k][0]:.4f}, {ci[k][1]:.4f}]" if k in ci else "")
            for k, v in main.items()
        )
        extra = f"   [anchor {anchor['metric']} {anchor['value']}]" if anchor else ""
        lines.append(f"  {name:<28} {shown} (n={size}){extra}")
    for name, why in results.get("not_evaluated", {}).items():
        lines.append(f"  {name:<28} not evaluated: {why}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m redheart.training.evaluate", description=__doc__.split("\n")[0]
    )
    p.add_argument("model_dir", help="a saved Red Heart model (e.g. runs/small/best)")
    p.add_argument(
        "--data-dir", default=None, help="data folder (default: the training run's, then $RH_DATA_DIR)"
    )
    p.add_argument("--out", default=None, help="results JSON (default: MODEL_DIR/eval_results.json)")
    p.add_argument(
        "--max-per-set",
        type=int,
        default=None,
        help="seeded sample of N rows per evaluation set (0 = all; default: the training config's eval section)",
    )
    p.add_argument("--cache-dir", default=None, help="feature cache root (default: the training run's)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument(
        "--model-card", action="store_true", help="also write MODEL_DIR/README.md from the results"
    )
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        default="torch",
        help="onnx: the exported graphs (redheart.onnx_backend)",
    )
    p.add_argument(
        "--onnx-folder", default=None, help="an ONNX export (default: the cache, exported on first use)"
    )
    p.add_argument("--onnx-precision", choices=("int8", "fp32"), default="int8")
    p.add_argument(
        "--quantize",
        choices=QUANTIZATIONS,
        default=None,
        help="torch backend: the linear layers of model and encoders as dynamic int8 (encoders run live)",
    )
    args = p.parse_args(argv)
    try:
        cap = "config" if args.max_per_set is None else args.max_per_set
        results = evaluate_model(
            args.model_dir,
            data_dir=args.data_dir,
            max_per_set=cap,
            cache_dir=args.cache_dir,
            batch_size=args.batch_size,
            progress=not args.no_progress,
            backend=args.backend,
            onnx_folder=args.onnx_folder,
            onnx_precision=args.onnx_precision,
            quantize=args.quantize,
        )
    except (EvaluationError, FileNotFoundError, ValueError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(args.model_dir) / "eval_results.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=float) + "\n", encoding="utf-8")
    print(format_results(results))
    print(f"results: {out}")
    if args.model_card:
        from ..model_cards.generate import write_model_card

        print(f"model card: {write_model_card(out, args.model_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
