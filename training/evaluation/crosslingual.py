"""Whether the model's Korean judgements follow its English ones on the same comments."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...configuration_redheart.labels import ACCEPTABILITY_FRAMEWORKS
from ..collate import ExampleTable
from ..metrics import bootstrap_interval


def crosslingual_agreement(
    tables: dict[str, ExampleTable], preds: dict[str, dict[str, Any]]
) -> dict[str, Any] | None:
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
