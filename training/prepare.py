"""From a training config to example tables: data sets, report, target checks, validation part, mixture.

* The data layer builds each selected set's named train/eval splits (``redheart.training.data``).
* The data report is printed; every head to be trained is checked for target variance (a constant or
  missing target is refused with :class:`~.data.TargetVarianceError`).
* A validation part is held out of every set's train side **by group** (a group is never on both sides):
  a group is in it when a seeded hash of ``(seed, group)`` falls below ``validation_fraction``, so the
  decision depends on the group alone and is the same in every set (the aligned GoEmotions EN/KO rows, the
  ETHICS pairs shared by ``ethics_util``/``ethics_util_regret``). At most ``validation_max_per_set`` of those
  rows are used (seeded); the rest of the held-out rows are used by nobody. The validation part serves the
  periodic evaluation, the best checkpoint and the decision thresholds of the final evaluation.
* The remaining train rows are mixed with the configured weights (seeded interleave) into the training table.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..configuration_redheart.tasks import TASK_LABELS
from .collate import ExampleTable, texts_by_language
from .config import TrainConfig

logger = logging.getLogger(__name__)


def _unit_hash(seed: int, group: str) -> float:
    digest = hashlib.sha256(f"{seed}\x1fvalidation\x1f{group}".encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


def validation_split(dataset, fraction: float, max_rows: int | None, seed: int):
    """``(train, validation)`` of one set's train side (see the module docstring)."""
    groups = dataset.select_columns(["group"]).with_format("arrow")[:]["group"].to_pylist()
    held = np.array([_unit_hash(seed, g) < fraction for g in groups], dtype=bool)
    train_idx = np.flatnonzero(~held)
    val_idx = np.flatnonzero(held)
    if max_rows is not None and len(val_idx) > max_rows:
        rng = np.random.default_rng(
            int.from_bytes(hashlib.sha256(f"{seed}:valcap".encode()).digest()[:4], "little")
        )
        val_idx = np.sort(rng.choice(val_idx, size=max_rows, replace=False))
    return dataset.select(train_idx), dataset.select(val_idx)


def default_tasks(data_config) -> list[str]:
    """Every labelled task (a key of ``TASK_LABELS``) that some selected set with a positive weight supplies."""
    from .data import SET_TASKS

    tasks: list[str] = []
    for name in data_config.selected_sets():
        if data_config.weights.get(name, 0.0) <= 0 and data_config.sets is None:
            continue
        for task in SET_TASKS[name]:
            if task in TASK_LABELS and task not in tasks:
                tasks.append(task)
    return [t for t in TASK_LABELS if t in tasks]


@dataclass
class PreparedData:
    train: ExampleTable
    validation: dict[str, ExampleTable]
    tasks: list[str]
    report_text: str
    head_stats: dict[str, Any]
    splits: Any
    composition: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)

    def all_texts_by_language(self) -> dict[int, list[str]]:
        return texts_by_language([self.train, *self.validation.values()])


def data_config_of(cfg: TrainConfig, data_dir: str | None = None):
    from .data import DataConfig

    raw = dict(cfg.data)
    if data_dir is not None:
        raw["data_dir"] = data_dir
    return DataConfig.from_dict(raw)


def prepare_data(cfg: TrainConfig, *, data_dir: str | None = None, print_fn=print) -> PreparedData:
    """Build, report, check, split and mix the training data of ``cfg`` (see the module docstring)."""
    from .data import build_splits, check_heads, format_report, mix_datasets

    data_config = data_config_of(cfg, data_dir)
    splits = build_splits(data_config)
    report_text = format_report(splits.report())
    print_fn("== Data report\n" + report_text)
    tasks = list(cfg.train.tasks) if cfg.train.tasks is not None else default_tasks(data_config)
    if not tasks:
        raise ValueError(
            f"{cfg.source}: no trainable task: the selected data sets label none of {list(TASK_LABELS)}"
        )
    t = cfg.train
    train_sets, val_sets = {}, {}
    for name, ds in splits.train.items():
        tr, va = validation_split(ds, t.validation_fraction, t.validation_max_per_set, t.seed)
        if len(tr) == 0:
            from .data import EmptySplitError

            raise EmptySplitError(
                f"data set {name!r}: its train side is empty after holding out the validation part"
            )
        train_sets[name] = tr
        if len(va):
            val_sets[name] = va
    head_stats = check_heads(train_sets, heads=tasks)
    weights = {k: data_config.weights.get(k, 0.0) for k in train_sets}
    if data_config.sets is not None:  # explicitly selected sets take part even when their default weight is 0
        weights = {k: (w if w > 0 else 1.0) for k, w in weights.items()}
    num_samples = t.samples if t.samples is not None else data_config.mixture_size
    mixed = mix_datasets(
        train_sets,
        weights,
        seed=data_config.seed,
        stopping_strategy=data_config.stopping_strategy,
        num_samples=num_samples,
    )
    train = ExampleTable.from_dataset(mixed, tasks, what="training mixture")
    validation = {}
    for name, va in val_sets.items():
        try:
            validation[name] = ExampleTable.from_dataset(va, tasks, what=f"validation part of {name}")
        except ValueError:
            continue  # a validation part without a trained target (e.g. TimeTravel) is not evaluated
    if train.dropped:
        print_fn(
            "Rows without a target of the trained tasks are left out of training: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(train.dropped.items()))
            + " (TimeTravel regret is not derived from the model's own utility in this trainer)"
        )
    return PreparedData(
        train=train,
        validation=validation,
        tasks=tasks,
        report_text=report_text,
        head_stats=head_stats,
        splits=splits,
        composition=train.composition(),
        dropped=train.dropped,
    )
