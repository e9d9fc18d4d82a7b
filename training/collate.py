"""Unified-schema rows -> model batches.

:class:`ExampleTable` holds one row per training example as numpy arrays (built column-wise from Arrow):
the example's text, an optional second text (the less pleasant scenario of an ETHICS utilitarianism pair),
its language and the targets of every task, ``-100`` where a row is not labelled for a task.

Mapping of the schema fields onto ``RedHeartModel.forward``'s labels:

* ``emotion`` -> ``emotion_labels`` [B, 28]; ``kote`` -> ``kote_labels`` [B, 44]; ``sentiment`` -> ``sentiment_labels``;
* ``acceptable`` with ``acceptability_framework`` f -> ``acceptability_labels`` [B, 4], -100 except column f;
* ``utility_worse``: the row's ``text`` (more pleasant) and ``utility_worse`` (less pleasant) both enter the
  batch; the pair becomes a row of ``utility_pairs`` (index of the better, index of the worse). The second
  text carries no other label;
* ``regret`` -> ``regret_labels`` (ETHICS utilitarianism regret rows: 1 for choosing the worse scenario, 0
  for the better); ``surd`` -> ``surd_labels``.

Rows that carry no target of the trained tasks (TimeTravel: its regret would have to be derived from the
model's own utility, which this trainer does not do; SQuARe's ``sensitive_question``) are dropped and counted.

:class:`Collator` turns a list of example indices into the keyword arguments of the model: per encoder, the
cached hidden states of the texts routed to it (``en`` texts to ``en`` and ``*`` encoders, ``ko`` texts to
``ko`` and ``*`` encoders, as the pipeline routes them), and the label tensors of the trained tasks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..configuration_redheart.labels import ACCEPTABILITY_FRAMEWORKS, SURD_SHARES
from ..configuration_redheart.tasks import IGNORE_INDEX, LANGUAGE_IDS, TASK_LABELS


def _column(table, name: str):
    return table.column(name).combine_chunks()


def _floats(col) -> np.ndarray:
    """A nullable float column -> float32 array with -100 for null."""
    arr = col.to_numpy(zero_copy_only=False).astype(np.float32)
    arr[np.asarray(col.is_null().to_numpy(zero_copy_only=False))] = IGNORE_INDEX
    return arr


def _matrix(col, width: int) -> np.ndarray:
    """A nullable fixed-width list column -> [n, width] float32 with -100 rows for null."""
    n = len(col)
    out = np.full((n, width), IGNORE_INDEX, dtype=np.float32)
    valid = ~np.asarray(col.is_null().to_numpy(zero_copy_only=False))
    if valid.any():
        import pyarrow.compute as pc

        values = pc.filter(col, valid).flatten().to_numpy(zero_copy_only=False)
        out[valid] = values.reshape(int(valid.sum()), width).astype(np.float32)
    return out


@dataclass
class ExampleTable:
    """Training/evaluation examples as arrays (see the module docstring)."""

    text: list[str]
    worse: list[str | None]
    language: np.ndarray
    source: np.ndarray
    emotion: np.ndarray
    kote: np.ndarray
    sentiment: np.ndarray
    acceptability: np.ndarray
    regret: np.ndarray
    surd: np.ndarray
    dropped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.text)

    @classmethod
    def from_dataset(cls, dataset, tasks: Sequence[str] | None = None, what: str = "dataset") -> ExampleTable:
        """Build from a unified-schema ``datasets.Dataset``; keep rows labelled for at least one of ``tasks``."""
        from .data.schema import NUM_EMOTIONS, NUM_KOTE

        if len(dataset) == 0:
            from .data import EmptySplitError

            raise EmptySplitError(f"{what}: no rows")
        table = dataset.with_format("arrow")[:]
        languages = _column(table, "language").to_pylist()
        bad = sorted({x for x in languages if x not in LANGUAGE_IDS})
        if bad:
            raise ValueError(
                f"{what}: rows with unknown language(s) {bad}; expected one of {list(LANGUAGE_IDS)}"
            )
        framework = _column(table, "acceptability_framework").to_pylist()
        acceptable = _floats(_column(table, "acceptable"))
        accept = np.full((len(languages), len(ACCEPTABILITY_FRAMEWORKS)), IGNORE_INDEX, dtype=np.float32)
        for i, (f, y) in enumerate(zip(framework, acceptable, strict=True)):
            if f is not None and y != IGNORE_INDEX:
                if f not in ACCEPTABILITY_FRAMEWORKS:
                    raise ValueError(f"{what}: row {i} has unknown acceptability_framework {f!r}")
                accept[i, ACCEPTABILITY_FRAMEWORKS.index(f)] = y
        out = cls(
            text=_column(table, "text").to_pylist(),
            worse=_column(table, "utility_worse").to_pylist(),
            language=np.array([LANGUAGE_IDS[x] for x in languages], dtype=np.int64),
            source=np.array(_column(table, "source").to_pylist(), dtype=object),
            emotion=_matrix(_column(table, "emotion"), NUM_EMOTIONS),
            kote=_matrix(_column(table, "kote"), NUM_KOTE),
            sentiment=_floats(_column(table, "sentiment")),
            acceptability=accept,
            regret=_floats(_column(table, "regret")),
            surd=_matrix(_column(table, "surd"), len(SURD_SHARES)),
        )
        if tasks is None:
            return out
        keep = np.zeros(len(out), dtype=bool)
        for task in tasks:
            keep |= out.labelled(task)
        if not keep.all():
            dropped = dict(Counter(out.source[~keep].tolist()))
            out = out.select(np.flatnonzero(keep))
            out.dropped = dropped
        if len(out) == 0:
            from .data import EmptySplitError

            raise EmptySplitError(f"{what}: no row carries a target of the trained tasks {list(tasks)}")
        return out

    def labelled(self, task: str) -> np.ndarray:
        """Rows labelled for ``task`` (boolean array)."""
        if task == "utility":
            return np.array([w is not None for w in self.worse], dtype=bool)
        values = {
            "emotion": self.emotion,
            "kote": self.kote,
            "sentiment": self.sentiment,
            "acceptability": self.acceptability,
            "regret": self.regret,
            "surd": self.surd,
        }[task]
        return (values != IGNORE_INDEX).any(axis=-1) if values.ndim > 1 else values != IGNORE_INDEX

    def select(self, index: Sequence[int] | np.ndarray) -> ExampleTable:
        index = np.asarray(index, dtype=np.int64)
        return ExampleTable(
            text=[self.text[i] for i in index],
            worse=[self.worse[i] for i in index],
            language=self.language[index],
            source=self.source[index],
            emotion=self.emotion[index],
            kote=self.kote[index],
            sentiment=self.sentiment[index],
            acceptability=self.acceptability[index],
            regret=self.regret[index],
            surd=self.surd[index],
            dropped=dict(self.dropped),
        )

    def texts(self) -> list[str]:
        """Every text the examples need features for (both sides of utility pairs)."""
        return self.text + [w for w in self.worse if w is not None]

    def texts_by_language(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for text, worse, lang in zip(self.text, self.worse, self.language.tolist(), strict=True):
            out.setdefault(lang, []).append(text)
            if worse is not None:
                out[lang].append(worse)
        return out

    def task_counts(self) -> dict[str, int]:
        return {task: int(self.labelled(task).sum()) for task in TASK_LABELS}

    def composition(self) -> dict[str, int]:
        return dict(sorted(Counter(self.source.tolist()).items()))


def texts_by_language(tables: Iterable[ExampleTable]) -> dict[int, list[str]]:
    """Every text of ``tables`` (both sides of utility pairs) by language id: what their encoder features are
    computed from."""
    out: dict[int, list[str]] = {}
    for table in tables:
        for lang, texts in table.texts_by_language().items():
            out.setdefault(lang, []).extend(texts)
    return out


def routes(encoders: dict[str, dict[str, Any]]) -> dict[int, list[str]]:
    """Language id -> the enabled encoders that read it (``*`` reads every language), as the pipeline routes."""
    out: dict[int, list[str]] = {}
    for lang, lid in LANGUAGE_IDS.items():
        out[lid] = [
            n for n, s in encoders.items() if s.get("enabled", True) and ({lang, "*"} & set(s["languages"]))
        ]
    return out


def batch_texts(
    table: ExampleTable, rows: Sequence[int]
) -> tuple[list[str], list[int], list[int], np.ndarray]:
    """A batch's texts (the examples, then the worse sides of pairs), their languages, the owning example of each
    text (-1 for a worse side), and the utility pairs (better, worse) as indices into the texts."""
    texts = [table.text[r] for r in rows]
    langs = [int(table.language[r]) for r in rows]
    owner = list(range(len(rows)))
    pairs = []
    for i, r in enumerate(rows):
        if table.worse[r] is not None:
            pairs.append((i, len(texts)))
            texts.append(table.worse[r])
            langs.append(int(table.language[r]))
            owner.append(-1)
    return texts, langs, owner, np.array(pairs, dtype=np.int64).reshape(-1, 2)


class Collator:
    """Example indices -> ``RedHeartModel.forward`` keyword arguments (cached features + trained labels)."""

    def __init__(
        self, table: ExampleTable, stores: dict[str, Any], encoders: dict[str, dict], tasks: Sequence[str]
    ):
        self.table = table
        self.stores = stores
        self.tasks = list(tasks)
        self.routes = routes(encoders)
        for lid in np.unique(table.language).tolist():
            served = [n for n in self.routes[lid] if n in stores]
            if not served:
                lang = {v: k for k, v in LANGUAGE_IDS.items()}[lid]
                raise ValueError(
                    f"no enabled encoder reads '{lang}' texts (encoders and their languages: "
                    f"{ {n: s['languages'] for n, s in encoders.items()} }); drop the '{lang}' data sets or add an "
                    f"encoder with languages ['{lang}'] or ['*']"
                )

    def lengths(self) -> np.ndarray:
        """Tokens each example brings (the longest of its texts over its encoders): for length-grouped batches."""
        t = self.table
        out = np.zeros(len(t), dtype=np.int64)
        for i, (text, worse, lang) in enumerate(zip(t.text, t.worse, t.language.tolist(), strict=True)):
            for name in self.routes[lang]:
                if name in self.stores:
                    n = self._length(name, text)
                    out[i] = max(out[i], n if worse is None else max(n, self._length(name, worse)))
        return out

    def _length(self, name: str, text: str) -> int:
        return int(self.stores[name].features(text).shape[0])

    def texts_and_pairs(self, rows: Sequence[int]) -> tuple[list[str], list[int], list[int], np.ndarray]:
        """See :func:`batch_texts`."""
        return batch_texts(self.table, rows)

    def encoder_inputs(
        self, texts: Sequence[str], langs: Sequence[int]
    ) -> dict[str, dict[str, torch.Tensor]]:
        states, masks = {}, {}
        for name, store in self.stores.items():
            routed = [
                text if name in self.routes[lang] else None for text, lang in zip(texts, langs, strict=True)
            ]
            if all(r is None for r in routed):
                continue
            states[name], masks[name] = store.batch(routed)
        return {"encoder_hidden_states": states, "encoder_attention_mask": masks}

    def labels(self, rows: Sequence[int], n_texts: int, pairs: np.ndarray) -> dict[str, torch.Tensor]:
        t = self.table
        rows = np.asarray(rows, dtype=np.int64)
        extra = n_texts - len(rows)

        def pad(values: np.ndarray) -> torch.Tensor:
            if extra:
                fill = np.full((extra, *values.shape[1:]), IGNORE_INDEX, dtype=np.float32)
                values = np.concatenate([values, fill])
            return torch.from_numpy(np.ascontiguousarray(values))

        out: dict[str, torch.Tensor] = {}
        for task in self.tasks:
            if task == "utility":
                out["utility_pairs"] = torch.from_numpy(pairs)
            else:
                out[TASK_LABELS[task]] = pad(getattr(t, task)[rows])
        return out

    def __call__(self, rows: Sequence[int]) -> dict[str, Any]:
        texts, langs, _, pairs = self.texts_and_pairs(rows)
        batch = self.encoder_inputs(texts, langs)
        batch["language_ids"] = torch.tensor(langs, dtype=torch.long)
        batch.update(self.labels(rows, len(texts), pairs))
        return batch
