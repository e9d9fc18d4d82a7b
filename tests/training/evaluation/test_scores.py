"""An evaluation's metrics read the right columns and come with their intervals."""

from __future__ import annotations

import numpy as np
import pytest

from redheart.configuration_redheart.labels import ACCEPTABILITY_FRAMEWORKS
from redheart.training.evaluation.scores import metric_functions, reported
from redheart.training.evaluation.sets import EVALUATIONS, SET_FRAMEWORK


def metric(kind, dataset, table, pred, thresholds):
    """One evaluation's reported figures, as ``score_model`` composes them."""
    return reported(*metric_functions(kind, dataset, table, pred, thresholds), len(table))


def test_acceptability_evaluation_reads_its_frameworks_column():
    assert {d for d, kind in EVALUATIONS.values() if kind == "acceptability"} == set(SET_FRAMEWORK)
    assert set(SET_FRAMEWORK.values()) == set(ACCEPTABILITY_FRAMEWORKS)

    class Table:  # four justice rows; the other framework columns are unlabelled (-100)
        acceptability = np.full((4, 4), -100.0, dtype=np.float32)

        def __len__(self) -> int:
            return 4

    table = Table()
    column = ACCEPTABILITY_FRAMEWORKS.index("justice")
    table.acceptability[:, column] = [1, 0, 1, 1]
    probs = np.zeros((4, 4), dtype=np.float32)
    probs[:, column] = [0.9, 0.2, 0.4, 0.7]
    metrics = metric("acceptability", "ethics_justice", table, {"acceptability_probs": probs}, {})
    intervals = metrics.pop("ci95")
    assert set(intervals) == {"accuracy", "macro_f1"}
    assert intervals["accuracy"][0] <= 0.75 <= intervals["accuracy"][1] <= 1.0
    # predicted 1 0 0 1 against 1 0 1 1: class 1 F1 = 4/5, class 0 F1 = 2/3
    assert metrics == {
        "accuracy": 0.75,
        "macro_f1": pytest.approx((0.8 + 2 / 3) / 2),
        "n": 4,
        "majority_baseline": 0.75,
    }
    # the other frameworks' columns are ignored: the same probabilities elsewhere change nothing
    probs[:, column - 1] = 1.0 - probs[:, column]
    assert metric("acceptability", "ethics_justice", table, {"acceptability_probs": probs}, {}) == {
        **metrics,
        "ci95": intervals,
    }
