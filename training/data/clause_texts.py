"""Texts of two or more clauses from the data folder: what the SURD decomposition explains and its head learns.

The exact SURD of a text (``pipelines/explain``) needs at least two clauses. ``EVAL_SOURCES`` are held-out files
(``benchmarks/eval_surd_head.py`` scores the neural head on them); ``TRAIN_SOURCES`` are training-side files of the
same kinds (``training/surd_head.py`` distils the exact shares into the head on them), so the two never share a
file.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ...pipelines.explain import split_clauses

#: Source -> (file under the data folder, reader kind, text column for tsv files, language).
EVAL_SOURCES: dict[str, tuple[str, str, int | None, str]] = {
    "goemotions_en": ("goemotions_en/dev.tsv", "tsv", 0, "en"),
    "goemotions_ko": ("goemotions_ko/dev.tsv", "tsv", 0, "ko"),
    "kote": ("kote/val.tsv", "tsv", 1, "ko"),
    "ethics_cm": ("ethics/commonsense/cm_test.csv", "cm", None, "en"),
    "ethics_util": ("ethics/utilitarianism/util_test.csv", "util", None, "en"),
}
TRAIN_SOURCES: dict[str, tuple[str, str, int | None, str]] = {
    "goemotions_en": ("goemotions_en/train.tsv", "tsv", 0, "en"),
    "goemotions_ko": ("goemotions_ko/train.tsv", "tsv", 0, "ko"),
    "ethics_util": ("ethics/utilitarianism/util_train.csv", "util", None, "en"),
}


def read_source(root: Path, name: str, sources: dict = EVAL_SOURCES) -> list[str]:
    """All texts of one source, in file order (ETHICS commonsense: the short scenarios; utilitarianism: both
    scenarios of each pair)."""
    if name not in sources:
        raise ValueError(f"unknown source {name!r}; choose from {sorted(sources)}")
    rel, kind, column, _ = sources[name]
    path = Path(root) / rel
    if not path.is_file():
        raise FileNotFoundError(
            f"{name}: {path} not found (is --data-dir / RH_DATA_DIR the shared data folder?)"
        )
    texts: list[str] = []
    with path.open(encoding="utf-8", newline="") as handle:
        if kind == "tsv":
            for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                if len(row) > column and row[column].strip():
                    texts.append(row[column].strip())
        elif kind == "cm":
            for row in csv.DictReader(handle):
                if row.get("is_short", "True") == "True" and row["input"].strip():
                    texts.append(row["input"].strip())
        else:
            for row in csv.reader(handle):
                texts.extend(cell.strip() for cell in row[:2] if cell.strip())
    return texts


def sample_texts(texts: list[str], count: int, seed: int) -> list[str]:
    """Up to ``count`` distinct texts with at least two clauses, drawn at random with ``seed``."""
    unique = list(dict.fromkeys(texts))
    order = np.random.default_rng(seed).permutation(len(unique))
    out = []
    for i in order:
        if len(split_clauses(unique[i])) >= 2:
            out.append(unique[i])
            if len(out) == count:
                break
    return out
