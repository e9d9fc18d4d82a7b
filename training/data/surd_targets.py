"""Targets of the neural SURD head: the exact clause-subset SURD shares of each text.

The neural head predicts ``[redundant, unique, synergistic, leak]`` (``configuration_redheart.labels.
SURD_SHARES``) from the whole text in one pass; its training targets are the exact shares of the clause
explanation (``redheart.pipelines.explain``), which runs the pipeline on every clause subset. A text
without a decomposition (one clause, or a constant judgement: H = 0) has no target and gets the ignore
index instead of a made-up one. docs/DESIGN.md "SURD, exactly".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...configuration_redheart.labels import SURD_SHARES
from ...configuration_redheart.tasks import IGNORE_INDEX
from ...pipelines.explain import explain_text, explain_texts

__all__ = ["surd_labels", "surd_shares"]


def surd_shares(
    text: str, analyze: Callable[[list[str]], Sequence[Any]], **options: Any
) -> list[float] | None:
    """Exact SURD shares ``[redundant, unique, synergistic, leak]`` of one text, or ``None`` if undefined.

    ``None`` for a single clause or a constant judgement (H = 0): such a text has no SURD target.
    ``options`` as for :func:`redheart.pipelines.explain.explain_text`.
    """
    exp = explain_text(text, analyze, **options)
    return None if exp["status"] != "ok" else [float(exp["shares"][k]) for k in SURD_SHARES]


def surd_labels(
    texts: Sequence[str], analyze: Callable[[list[str]], Sequence[Any]], **options: Any
) -> tuple[np.ndarray, list[str]]:
    """``surd_labels`` targets for the neural SURD head: float32 [N, 4] and each text's status.

    Rows are ``[redundant, unique, synergistic, leak]`` (summing to 1); a text without a decomposition
    (status ``"single_clause"`` or ``"constant"``) gets a row of ``IGNORE_INDEX`` (-100), the model's
    "unlabelled" marker. All subset texts go through ``analyze`` together (deduplicated); ``options`` as for
    :func:`redheart.pipelines.explain.explain_texts`.
    """
    exps = explain_texts(texts, analyze, **options)
    labels = np.full((len(exps), len(SURD_SHARES)), IGNORE_INDEX, dtype=np.float32)
    for i, exp in enumerate(exps):
        if exp["status"] == "ok":
            labels[i] = [exp["shares"][k] for k in SURD_SHARES]
    return labels, [e["status"] for e in exps]
