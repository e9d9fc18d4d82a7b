"""Calibrate a saved Red Heart model on held-out validation data and store the result in its config.

``python -m redheart.training.calibrate MODEL_DIR [--data-dir DIR]``

Two things a person reads need more than probabilities, and both are chosen on the **validation part** of the
training sets (the groups held out of training by ``training.validation_split``; never the evaluation sets):

All the held-out rows are used (training samples at most ``validation_max_per_set`` of them for its periodic
evaluation; the rest are used by nobody), so the thresholds rest on thousands of rows, not a hundred.

* ``decision_thresholds`` -- one threshold per GoEmotions and per KOTE label, each maximising that label's F1
  (:func:`~.metrics.choose_label_thresholds`), pulled toward one global threshold as far as cross-validation on the
  same rows says pays (:func:`~.evaluation.thresholds.choose_thresholds`); the pipeline's ``emotion.predicted`` /
  ``kote_predicted`` sets;
* ``utility_reference`` -- the 101 percentiles (0, 1, ..., 100) of the model's utility over both scenarios of
  every ETHICS utilitarianism validation pair; the pipeline reports ``bentham.utility_percentile``, the share
  of those everyday scenarios a text's utility exceeds (a bounded scale, unlike the raw utility).

Both are written into ``MODEL_DIR/config.json`` (validated by `RedHeartConfig` on the next load), and how they were
chosen into ``MODEL_DIR/redheart_calibration.json`` (:data:`RECORD`), which evaluation and the model card quote.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .collate import texts_by_language
from .evaluation.model_folder import EvaluationError, load_model, training_info
from .evaluation.predictions import predict_tables
from .evaluation.sets import CALIBRATION_SETS, build_tables, evaluation_settings
from .evaluation.thresholds import choose_thresholds

#: How the thresholds and the utility reference in a model's config were chosen (written beside it).
RECORD = "redheart_calibration.json"
#: Percentile levels of the utility reference.
REFERENCE_LEVELS = np.linspace(0.0, 1.0, 101)


def utility_reference(preds: dict[str, Any]) -> list[float] | None:
    """Quantiles of the utility over both scenarios of the ETHICS utilitarianism validation pairs."""
    if "val:ethics_util" not in preds:
        return None
    pred = preds["val:ethics_util"]
    values = np.concatenate([pred["utility"], pred["utility_worse"]])
    return np.quantile(values, REFERENCE_LEVELS).tolist()


def calibrate_model(
    model_dir: str | Path,
    *,
    data_dir: str | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    print_fn=print,
) -> dict[str, Any]:
    """Choose the thresholds and the utility reference of the model in ``model_dir``; store them in its
    config.json; return them with where they came from."""
    from ..configuration_redheart import RedHeartConfig
    from .features import build_stores

    model = load_model(model_dir)
    config = model.config
    settings = evaluation_settings(
        model_dir,
        training_info(model_dir),
        max_per_set=None,
        cache_dir=None,
        batch_size=batch_size,
        ece_bins=None,
        progress=progress,
    )
    tables, sizes, skipped = build_tables(
        settings,
        config.encoders,
        data_dir,
        evaluations=False,
        validation_sets=CALIBRATION_SETS,
        all_held_out=True,
    )
    if not tables:
        raise EvaluationError(f"{model_dir}: no validation part to calibrate on ({skipped or 'no sets'})")
    stores = build_stores(settings.cfg, config, texts_by_language(tables.values()), None, print_fn)
    preds = predict_tables(model, tables, stores, settings.batch_size, progress)
    sizes_of = {"emotion": len(config.emotion_labels), "kote": len(config.kote_labels)}
    thresholds, source = choose_thresholds(tables, preds, sizes_of)
    reference = utility_reference(preds)
    config_path = Path(model_dir) / "config.json"
    stored = json.loads(config_path.read_text(encoding="utf-8"))
    stored["decision_thresholds"] = thresholds
    stored["utility_reference"] = reference
    config_path.write_text(json.dumps(stored, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    RedHeartConfig.from_pretrained(str(model_dir))  # what was written loads (validation raises otherwise)
    result = {
        "decision_thresholds": thresholds,
        "threshold_source": source,
        "utility_reference": reference,
        "utility_reference_source": (
            f"percentiles over {2 * sizes['ethics_util']['validation_for_threshold']} scenarios of the ETHICS "
            "utilitarianism validation part"
            if reference is not None
            else None
        ),
        "sizes": sizes,
        "not_calibrated": skipped,
    }
    record = {k: v for k, v in result.items() if k != "utility_reference"}
    (Path(model_dir) / RECORD).write_text(
        json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return result


def threshold_source(model_dir: str | Path, thresholds: dict[str, list[float]]) -> dict[str, str] | None:
    """How ``thresholds`` (a model's stored ones) were chosen, from its calibration record; None without one, or
    when the config's thresholds are no longer the ones its calibration chose (edited by hand, averaged)."""
    path = Path(model_dir) / RECORD
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    return record["threshold_source"] if record.get("decision_thresholds") == thresholds else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m redheart.training.calibrate", description=__doc__.split("\n")[0]
    )
    p.add_argument("model_dir", help="a saved Red Heart model (e.g. runs/small/best)")
    p.add_argument(
        "--data-dir", default=None, help="data folder (default: the training run's, then $RH_DATA_DIR)"
    )
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        result = calibrate_model(
            args.model_dir, data_dir=args.data_dir, batch_size=args.batch_size, progress=not args.no_progress
        )
    except (EvaluationError, FileNotFoundError, ValueError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {k: v for k, v in result.items() if k != "utility_reference"}, indent=2, ensure_ascii=False
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
