"""Which data each evaluation reads: the evaluations and their anchors, the evaluation settings of a training run,
and the example tables of the eval sides (seeded samples) and of the validation parts (held out of training)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...configuration_redheart.tasks import LANGUAGE_IDS, TASK_LABELS
from ..collate import ExampleTable
from .model_folder import EvaluationError, training_info

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
#: NSMC star-rating boundaries of the positive-vs-negative task, on the sentiment scale (rating - 5.5) / 4.5.
NSMC_NEGATIVE_MAX = (4 - 5.5) / 4.5
NSMC_POSITIVE_MIN = (9 - 5.5) / 4.5


def seeded_sample(n: int, cap: int | None, seed: int) -> np.ndarray:
    if cap is None or n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))


def served_languages(encoders: dict[str, dict]) -> set[str]:
    out: set[str] = set()
    for spec in encoders.values():
        if spec.get("enabled", True):
            out |= set(LANGUAGE_IDS) if "*" in spec["languages"] else set(spec["languages"])
    return out


@dataclass
class EvaluationSettings:
    """The training run's config and the resolved evaluation settings."""

    cfg: Any
    max_per_set: int | None
    batch_size: int
    ece_bins: int


def evaluation_settings(
    model_dir: str | Path,
    info: dict[str, Any],
    *,
    max_per_set: int | None | str,
    cache_dir: str | None,
    batch_size: int | None,
    ece_bins: int | None,
    progress: bool,
) -> EvaluationSettings:
    """The run's :class:`~.config.TrainConfig` (defaults without one) with the evaluation's overrides."""
    from ..config import TrainConfig, config_from_dict

    if info.get("config"):
        cfg = config_from_dict(info["config"], source=f"{model_dir}/redheart_training.json")
    else:
        cfg = TrainConfig()
    if cache_dir is not None:
        cfg.features.cache_dir = cache_dir
    cfg.train.progress = progress
    if max_per_set == "config":
        max_per_set = cfg.eval.max_per_set
    return EvaluationSettings(
        cfg=cfg,
        max_per_set=max_per_set or None,
        batch_size=batch_size or cfg.eval.batch_size,
        ece_bins=ece_bins or cfg.eval.ece_bins,
    )


def plan_sets(
    settings: EvaluationSettings, encoders: dict[str, dict], data_dir: str | None, wanted: set[str]
) -> tuple[Any, list[str], dict[str, str]]:
    """The run's data config, the sets of ``wanted`` to build (sorted: a set's place seeds its eval sample) and
    the sets no enabled encoder can read, with the reason."""
    from ..data import SET_LANGUAGES, SETS
    from ..prepare import data_config_of

    data_config = data_config_of(settings.cfg, data_dir)
    languages = served_languages(encoders)
    ordered = sorted(wanted)
    skipped = {
        s: f"no enabled encoder reads {SET_LANGUAGES[s]!r} texts"
        for s in ordered
        if SET_LANGUAGES[s] not in languages
    }
    return data_config, [s for s in ordered if s in SETS and s not in skipped], skipped


def evaluated_rows(
    name: str, ev: ExampleTable, index: int, settings: EvaluationSettings, seed: int
) -> tuple[np.ndarray, int]:
    """Rows of a set's eval side that are evaluated (NSMC: polar ratings only; then the seeded sample), and how
    many were available. ``index``: the set's place in :func:`plan_sets`'s list."""
    keep = np.arange(len(ev))
    if name == "nsmc":
        polar = (ev.sentiment <= NSMC_NEGATIVE_MAX + 1e-6) | (ev.sentiment >= NSMC_POSITIVE_MIN - 1e-6)
        keep = np.flatnonzero(polar)
    pick = seeded_sample(len(keep), settings.max_per_set, seed=int(seed) * 7919 + index)
    return keep[pick], len(keep)


def build_tables(
    settings: EvaluationSettings,
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
    from ..data import build_splits
    from ..prepare import validation_split

    wanted = {s for s, _ in EVALUATIONS.values()} if evaluations else set(validation_sets)
    data_config, sets, skipped = plan_sets(settings, encoders, data_dir, wanted)
    data_config.sets = sets
    splits = build_splits(data_config)
    t = settings.cfg.train
    tables: dict[str, ExampleTable] = {}
    sizes: dict[str, dict[str, int]] = {}
    for index, name in enumerate(sets if evaluations else ()):
        ev = ExampleTable.from_dataset(splits.eval[name], what=f"{name} eval side")
        rows, available = evaluated_rows(name, ev, index, settings, data_config.seed)
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
    """``(train side, evaluated rows)`` of one data set, as Datasets, exactly as
    :func:`~redheart.training.evaluate.evaluate_model` on ``model_dir`` with ``max_per_set`` builds and samples
    them, so that a baseline (``benchmarks/probe_encoders.py``) is scored on the very rows the model's figure was
    measured on.

    Only ``dataset`` is built: every set has its own seed stream, so its sides do not depend on the others.
    """
    from ...configuration_redheart import RedHeartConfig
    from ..data import build_splits

    wanted = {s for s, _ in EVALUATIONS.values()}
    if dataset not in wanted:
        raise ValueError(f"{dataset!r} is not an evaluated data set; known: {sorted(wanted)}")
    settings = evaluation_settings(
        model_dir,
        training_info(model_dir),
        max_per_set=max_per_set,
        cache_dir=None,
        batch_size=None,
        ece_bins=None,
        progress=False,
    )
    encoders = RedHeartConfig.from_pretrained(str(model_dir)).encoders
    data_config, sets, skipped = plan_sets(settings, encoders, data_dir, wanted)
    if dataset not in sets:
        raise EvaluationError(f"{model_dir}: {dataset} is not evaluated: {skipped.get(dataset, 'not built')}")
    data_config.sets = [dataset]
    splits = build_splits(data_config)
    ev = splits.eval[dataset]
    table = ExampleTable.from_dataset(ev, what=f"{dataset} eval side")
    rows, _ = evaluated_rows(dataset, table, sets.index(dataset), settings, data_config.seed)
    return splits.train[dataset], ev.select(rows.tolist())
