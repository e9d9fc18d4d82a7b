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
scores best (:func:`choose_thresholds`). Never chosen on the reported data.

Every metric comes with its 95 % percentile-bootstrap interval over the evaluated rows (``ci95``, 200 seeded
resamples, :func:`~.metrics.bootstrap_interval`): how far a figure may move on another sample of the same size, to
read a gap to a bar against (two models scored on the same rows share most of that noise). A model with a SURD step
record (``redheart_surd_head.json``) also gets ``surd_head_heldout``, the reported SURD shares' held-out error.

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

from ..configuration_redheart.labels import ACCEPTABILITY_FRAMEWORKS
from ..configuration_redheart.tasks import LANGUAGE_IDS, MULTILABEL_TASKS, TASK_LABELS
from .collate import Collator, ExampleTable
from .metrics import (
    SHRINKAGE_FOLDS,
    binary_accuracy,
    binary_macro_f1,
    bootstrap_interval,
    choose_shrinkage,
    expected_calibration_error,
    multilabel_f1,
    pairwise_accuracy,
    shrunk_thresholds,
)

#: Published anchors the model card puts side by side with the results (BERT-base fine-tuned end to end).
ANCHORS = {
    "goemotions_en_dev": {
        "metric": "macro_f1",
        "value": 0.46,
        "source": "GoEmotions paper (Demszky et al. 2020), BERT-base, 28 labels (test split)",
    },
    "ethics_util_test": {
        "metric": "pairwise_accuracy",
        "value": 0.734,
        "source": "ETHICS paper (Hendrycks et al. 2021), BERT-base, utilitarianism test",
    },
    "ethics_commonsense_heldout": {
        "metric": "accuracy",
        "value": 0.865,
        "source": "ETHICS paper, BERT-base, commonsense test (trained on cm_train, 13.9k examples)",
    },
}

#: Evaluation name -> (data set, kind); the data set's eval side is used.
EVALUATIONS = {
    "goemotions_en_dev": ("goemotions_en", "emotion"),
    "goemotions_ko_dev": ("goemotions_ko", "emotion"),
    "kote_heldout": ("kote", "kote"),
    "ethics_util_test": ("ethics_util", "utility"),
    "ethics_commonsense_heldout": ("ethics_commonsense", "acceptability"),
    "ethics_justice_test": ("ethics_justice", "acceptability"),
    "ethics_deontology_test": ("ethics_deontology", "acceptability"),
    "ethics_virtue_test": ("ethics_virtue", "acceptability"),
    "kosbi_heldout": ("kosbi", "acceptability"),
    "nsmc_heldout": ("nsmc", "sentiment"),
    "ethics_util_regret_test": ("ethics_util_regret", "regret"),
}
#: Acceptability set -> the framework its labels judge (KoSBi: commonsense).
SET_FRAMEWORK = {
    "ethics_commonsense": "commonsense",
    "kosbi": "commonsense",
    "ethics_justice": "justice",
    "ethics_deontology": "deontology",
    "ethics_virtue": "virtue",
}
#: Sets whose validation part (held out of training) chooses the emotion and KOTE thresholds.
THRESHOLD_SETS = ("goemotions_en", "goemotions_ko", "kote")
#: Sets whose validation part calibrates the model (thresholds, the utility reference).
CALIBRATION_SETS = (*THRESHOLD_SETS, "ethics_util")
#: Tasks the evaluation reads outputs of (every labelled task but SURD, which has no evaluation set).
EVALUATED_TASKS = [task for task in TASK_LABELS if task != "surd"]
#: Entries of the training run's ``redheart_training.json`` copied into the results.
TRAINING_KEYS = ("composition", "tasks", "validation_sizes", "wall_seconds", "step", "features", "memory")
#: NSMC star-rating boundaries of the positive-vs-negative task, on the sentiment scale (rating - 5.5) / 4.5.
NSMC_NEGATIVE_MAX = (4 - 5.5) / 4.5
NSMC_POSITIVE_MIN = (9 - 5.5) / 4.5


#: The repository root: results name a model folder inside it by its relative path (no local path in a card).
REPO = Path(__file__).resolve().parents[1]


class EvaluationError(ValueError):
    """The model folder or the evaluation data is not usable (the message says which and why)."""


def load_model(model_dir: str | Path):
    """`RedHeartModel.from_pretrained` (float32) with clear errors for a missing folder or another architecture."""
    from ..modeling_redheart import RedHeartModel

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
    from .trainer import TRAINING_RECORD

    for path in (Path(model_dir) / TRAINING_RECORD, Path(model_dir).parent / "trainer_state.json"):
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    return {}


def averaging_record(model_dir: str | Path) -> dict[str, Any] | None:
    """The record of a model averaged from several (``redheart.training.average``), or None."""
    from .average import RECORD

    path = Path(model_dir) / RECORD
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def shown_path(path: str | Path) -> str:
    """``path`` relative to the repository when it lies inside it, else absolute."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(resolved)


def surd_head_metric(model_dir: str | Path) -> dict[str, Any] | None:
    """The SURD step's held-out error of the reported shares (``redheart_surd_head.json``), or None without one."""
    from .surd_head import RECORD

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


def _sample(n: int, cap: int | None, seed: int) -> np.ndarray:
    if cap is None or n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))


def _served_languages(encoders: dict[str, dict]) -> set[str]:
    out: set[str] = set()
    for spec in encoders.values():
        if spec.get("enabled", True):
            out |= set(LANGUAGE_IDS) if "*" in spec["languages"] else set(spec["languages"])
    return out


@dataclass
class _Settings:
    """The training run's config and the resolved evaluation settings."""

    cfg: Any
    max_per_set: int | None
    batch_size: int
    ece_bins: int


def _settings(
    model_dir: str | Path,
    info: dict[str, Any],
    *,
    max_per_set: int | None | str,
    cache_dir: str | None,
    batch_size: int | None,
    ece_bins: int | None,
    progress: bool,
) -> _Settings:
    """The run's :class:`~.config.TrainConfig` (defaults without one) with the evaluation's overrides."""
    from .config import TrainConfig, config_from_dict

    if info.get("config"):
        cfg = config_from_dict(info["config"], source=f"{model_dir}/redheart_training.json")
    else:
        cfg = TrainConfig()
    if cache_dir is not None:
        cfg.features.cache_dir = cache_dir
    cfg.train.progress = progress
    if max_per_set == "config":
        max_per_set = cfg.eval.max_per_set
    return _Settings(
        cfg=cfg,
        max_per_set=max_per_set or None,
        batch_size=batch_size or cfg.eval.batch_size,
        ece_bins=ece_bins or cfg.eval.ece_bins,
    )


def _plan(
    settings: _Settings, encoders: dict[str, dict], data_dir: str | None, wanted: set[str]
) -> tuple[Any, list[str], dict[str, str]]:
    """The run's data config, the sets of ``wanted`` to build (sorted: a set's place seeds its eval sample) and
    the sets no enabled encoder can read, with the reason."""
    from .data import SET_LANGUAGES, SETS
    from .prepare import data_config_of

    data_config = data_config_of(settings.cfg, data_dir)
    languages = _served_languages(encoders)
    ordered = sorted(wanted)
    skipped = {
        s: f"no enabled encoder reads {SET_LANGUAGES[s]!r} texts"
        for s in ordered
        if SET_LANGUAGES[s] not in languages
    }
    return data_config, [s for s in ordered if s in SETS and s not in skipped], skipped


def _eval_rows(
    name: str, ev: ExampleTable, index: int, settings: _Settings, seed: int
) -> tuple[np.ndarray, int]:
    """Rows of a set's eval side that are evaluated (NSMC: polar ratings only; then the seeded sample), and how
    many were available. ``index``: the set's place in :func:`_plan`'s list."""
    keep = np.arange(len(ev))
    if name == "nsmc":
        polar = (ev.sentiment <= NSMC_NEGATIVE_MAX + 1e-6) | (ev.sentiment >= NSMC_POSITIVE_MIN - 1e-6)
        keep = np.flatnonzero(polar)
    pick = _sample(len(keep), settings.max_per_set, seed=int(seed) * 7919 + index)
    return keep[pick], len(keep)


def _tables(
    settings: _Settings,
    encoders: dict[str, dict],
    data_dir: str | None,
    *,
    evaluations: bool = True,
    validation_sets: tuple[str, ...] = THRESHOLD_SETS,
    all_held_out: bool = False,
) -> tuple[dict[str, ExampleTable], dict[str, dict[str, int]], dict[str, str]]:
    """``eval:<set>`` (seeded samples of the eval sides; only with ``evaluations``) and ``val:<set>`` (the
    validation parts of ``validation_sets``: the training run's capped sample, or with ``all_held_out`` every row
    held out of training) as example tables; their sizes; and the sets no enabled encoder can read, with the
    reason."""
    from .data import build_splits
    from .prepare import validation_split

    wanted = {s for s, _ in EVALUATIONS.values()} if evaluations else set(validation_sets)
    data_config, sets, skipped = _plan(settings, encoders, data_dir, wanted)
    data_config.sets = sets
    splits = build_splits(data_config)
    t = settings.cfg.train
    tables: dict[str, ExampleTable] = {}
    sizes: dict[str, dict[str, int]] = {}
    for index, name in enumerate(sets if evaluations else ()):
        ev = ExampleTable.from_dataset(splits.eval[name], what=f"{name} eval side")
        rows, available = _eval_rows(name, ev, index, settings, data_config.seed)
        tables[f"eval:{name}"] = ev.select(rows)
        sizes[name] = {"available": available, "evaluated": len(rows)}
    for name in validation_sets:
        if name in sets:
            cap = None if all_held_out else t.validation_max_per_set
            _, val = validation_split(splits.train[name], t.validation_fraction, cap, t.seed)
            if len(val):
                tables[f"val:{name}"] = ExampleTable.from_dataset(val, what=f"{name} validation part")
                sizes.setdefault(name, {})["validation_for_threshold"] = len(val)
    return tables, sizes, skipped


def evaluated_split(
    model_dir: str | Path,
    dataset: str,
    *,
    data_dir: str | None = None,
    max_per_set: int | None | str = "config",
) -> tuple[Any, Any]:
    """``(train side, evaluated rows)`` of one data set, as Datasets, exactly as :func:`evaluate_model` on
    ``model_dir`` with ``max_per_set`` builds and samples them, so that a baseline (``benchmarks/
    probe_encoders.py``) is scored on the very rows the model's figure was measured on.

    Only ``dataset`` is built: every set has its own seed stream, so its sides do not depend on the others.
    """
    from ..configuration_redheart import RedHeartConfig
    from .data import build_splits

    wanted = {s for s, _ in EVALUATIONS.values()}
    if dataset not in wanted:
        raise ValueError(f"{dataset!r} is not an evaluated data set; known: {sorted(wanted)}")
    settings = _settings(
        model_dir,
        training_info(model_dir),
        max_per_set=max_per_set,
        cache_dir=None,
        batch_size=None,
        ece_bins=None,
        progress=False,
    )
    encoders = RedHeartConfig.from_pretrained(str(model_dir)).encoders
    data_config, sets, skipped = _plan(settings, encoders, data_dir, wanted)
    if dataset not in sets:
        raise EvaluationError(f"{model_dir}: {dataset} is not evaluated: {skipped.get(dataset, 'not built')}")
    data_config.sets = [dataset]
    splits = build_splits(data_config)
    ev = splits.eval[dataset]
    table = ExampleTable.from_dataset(ev, what=f"{dataset} eval side")
    rows, _ = _eval_rows(dataset, table, sets.index(dataset), settings, data_config.seed)
    return splits.train[dataset], ev.select(rows.tolist())


def _predictions(
    model, tables: dict[str, ExampleTable], stores: dict[str, Any], batch_size: int, progress: bool
) -> dict[str, dict[str, Any]]:
    """The model's outputs on every table (from the cached features of its encoders)."""
    from .predict import predict

    preds = {}
    for key, table in tables.items():
        collator = Collator(table, stores, model.config.encoders, EVALUATED_TASKS)
        preds[key] = predict(
            model, collator, batch_size=batch_size, progress=progress, desc=f"evaluate {key}"
        )
    return preds


def _onnx_predictions(
    model,
    tables: dict[str, ExampleTable],
    settings: _Settings,
    folder: str | None,
    precision: str,
    progress: bool,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The outputs of the exported ONNX graphs on every table, and the encoders they hold."""
    from ..encoders.bank import EncoderBank
    from ..onnx_backend import load_runner
    from .predict import predict_onnx

    bank = EncoderBank.from_config(model.config, dtype="float32")
    runner = load_runner(model, bank, folder, precision)
    max_length = settings.cfg.features.max_length
    preds = {
        key: predict_onnx(
            runner,
            bank,
            table,
            max_length,
            batch_size=settings.batch_size,
            progress=progress,
            desc=f"evaluate {key}",
        )
        for key, table in tables.items()
    }
    used = {item["name"]: {**item, "onnx": runner.describe()} for item in bank.describe()}
    return preds, used


def choose_thresholds(
    tables: dict[str, ExampleTable], preds: dict[str, dict[str, Any]], num_labels: dict[str, int]
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Per-label emotion and KOTE decision thresholds from their validation parts (0.5 where there is none), pulled
    toward one global threshold by the weight that cross-validation on those parts chooses
    (:func:`~.metrics.choose_shrinkage`), and where each came from.

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


def _thresholds(
    model_dir: str | Path, config, tables: dict[str, ExampleTable], preds: dict[str, dict[str, Any]]
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """The model's own thresholds when its config has them (with how its calibration chose them, when its record
    says), else :func:`choose_thresholds`."""
    from .calibrate import threshold_source

    stored = getattr(config, "decision_thresholds", None)
    if stored and all(task in stored for task in MULTILABEL_TASKS):
        stored = {task: list(values) for task, values in stored.items()}
        recorded = threshold_source(model_dir, stored) or {}
        return stored, {
            t: f"the model's config: {recorded[t]}" if t in recorded else "the model's config" for t in stored
        }
    sizes = {"emotion": len(config.emotion_labels), "kote": len(config.kote_labels)}
    return choose_thresholds(tables, preds, sizes)


def _metric(kind: str, dataset: str, table: ExampleTable, pred: dict[str, Any], thresholds: dict[str, float]):
    """The metrics of one evaluation (see the module docstring), each with its 95 % percentile-bootstrap interval
    over the evaluated rows (``ci95``; pairs for utilitarianism)."""
    return _reported(*_scores(kind, dataset, table, pred, thresholds), len(table))


def _reported(scores: dict[str, Any], extra: dict[str, Any], n: int) -> dict[str, Any]:
    """The values of :func:`_scores`' metric functions on all ``n`` rows, its other fields, and the intervals."""
    every = np.arange(n)
    return {
        **{name: score(every) for name, score in scores.items()},
        **extra,
        "ci95": {name: bootstrap_interval(score, n) for name, score in scores.items()},
    }


def _scores(
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


def _calibration(
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


@dataclass
class ScoredModel:
    """One model's evaluation, kept for a paired comparison (:mod:`.compare`): the results dict, and per evaluation
    its metric functions of row indices (:func:`_scores`: one resample scores both models on the same rows) and its
    rows' texts (text, and the worse scenario of a utilitarianism pair), to check that two models read the same rows."""

    results: dict[str, Any]
    scores: dict[str, dict[str, Callable[[np.ndarray], float]]]
    rows: dict[str, list[tuple[str, str | None]]]


def _crosslingual(tables: dict[str, ExampleTable], preds: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """How the model's Korean judgements follow its English ones on the same texts: GoEmotions dev EN and KO are
    one set of comments in two languages (row ``i`` of one translates row ``i`` of the other; checked by their
    identical label rows). Acceptability is supervised in English by ETHICS and in Korean only by KoSBi, so this is
    where a language's own bias shows. None without both sides, or when they are not row-aligned."""
    en, ko = tables.get("eval:goemotions_en"), tables.get("eval:goemotions_ko")
    if en is None or ko is None or len(en) != len(ko) or not np.array_equal(en.emotion, ko.emotion):
        return None
    said = {lang: preds[f"eval:goemotions_{lang}"] for lang in ("en", "ko")}
    accept = {lang: p["acceptability_probs"] for lang, p in said.items()}

    def pearson(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0

    def mean_r(rows: np.ndarray) -> float:
        columns = range(len(ACCEPTABILITY_FRAMEWORKS))
        return float(np.mean([pearson(accept["en"][rows, j], accept["ko"][rows, j]) for j in columns]))

    def mean_shift(rows: np.ndarray) -> float:
        return float((accept["ko"][rows] - accept["en"][rows]).mean())

    frameworks = {}
    for j, name in enumerate(ACCEPTABILITY_FRAMEWORKS):
        a, b = accept["en"][:, j], accept["ko"][:, j]
        frameworks[name] = {
            "pearson_r": pearson(a, b),
            "decision_agreement": float(((a >= 0.5) == (b >= 0.5)).mean()),
            "mean_shift": float((b - a).mean()),
            "unacceptable_share": {"en": float((a < 0.5).mean()), "ko": float((b < 0.5).mean())},
        }
    n, every = len(en), np.arange(len(en))
    return {
        "pearson_r": mean_r(every),
        "mean_shift": mean_shift(every),
        "decision_agreement": float(np.mean([f["decision_agreement"] for f in frameworks.values()])),
        "sentiment_r": pearson(said["en"]["sentiment"], said["ko"]["sentiment"]),
        "utility_r": pearson(said["en"]["utility"], said["ko"]["utility"]),
        "n_pairs": n,
        "acceptability": frameworks,
        "ci95": {"pearson_r": bootstrap_interval(mean_r, n), "mean_shift": bootstrap_interval(mean_shift, n)},
    }


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
) -> ScoredModel:
    """Run every evaluation of the module docstring on the model in ``model_dir``.

    ``max_per_set``: rows per evaluation set; ``"config"`` = the training config's ``eval.max_per_set``,
    ``None`` or 0 = all. ``batch_size`` / ``ece_bins``: None = the training config's ``eval`` section.
    ``backend="onnx"``: the outputs come from the exported ONNX graphs (``onnx_folder``, default: the cache folder,
    exported on first use) in ``onnx_precision``, reading the same tokens as the torch features.
    """
    from .features import build_stores

    started = time.perf_counter()
    model = load_model(model_dir)
    config = model.config
    info = training_info(model_dir)
    settings = _settings(
        model_dir,
        info,
        max_per_set=max_per_set,
        cache_dir=cache_dir,
        batch_size=batch_size,
        ece_bins=ece_bins,
        progress=progress,
    )
    tables, sizes, skipped = _tables(settings, config.encoders, data_dir)
    texts: dict[int, list[str]] = {}
    for table in tables.values():
        for lang, items in table.texts_by_language().items():
            texts.setdefault(lang, []).extend(items)
    if backend == "onnx":
        preds, encoders_used = _onnx_predictions(
            model, tables, settings, onnx_folder, onnx_precision, progress
        )
    elif backend == "torch":
        stores = build_stores(settings.cfg, config, texts, None, print_fn)
        preds = _predictions(model, tables, stores, settings.batch_size, progress)
        encoders_used = _encoders_used(config, stores)
    else:
        raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
    thresholds, threshold_source = _thresholds(model_dir, config, tables, preds)
    metrics: dict[str, dict[str, Any]] = {}
    scores, rows = {}, {}
    for name, (dataset, kind) in EVALUATIONS.items():
        key = f"eval:{dataset}"
        if key in tables:
            scores[name], extra = _scores(kind, dataset, tables[key], preds[key], thresholds)
            metrics[name] = _reported(scores[name], extra, len(tables[key]))
            rows[name] = list(zip(tables[key].text, tables[key].worse, strict=True))
    calibration = _calibration(tables, preds, settings.ece_bins)
    if calibration is not None:
        metrics["confidence_calibration"] = calibration
    crosslingual = _crosslingual(tables, preds)
    if crosslingual is not None:
        metrics["crosslingual_agreement"] = crosslingual
    surd = surd_head_metric(model_dir)
    if surd is not None:
        metrics["surd_head_heldout"] = surd
    results = {
        "model_dir": shown_path(model_dir),
        "encoders": encoders_used,
        "backend": backend if backend == "torch" else f"onnx-{onnx_precision}",
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


def _encoders_used(config, stores: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The enabled encoders: name or path, the revision their features were computed with, size, languages."""
    return {
        n: {
            "model_name_or_path": s["model_name_or_path"],
            "revision": stores[n].revision if n in stores else s.get("revision"),
            "hidden_size": s["hidden_size"],
            "languages": s["languages"],
        }
        for n, s in config.encoders.items()
        if s["enabled"]
    }


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
