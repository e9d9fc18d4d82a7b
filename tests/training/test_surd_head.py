"""The SURD distillation stage fits only the SURD output layers: other outputs stay identical, the error drops."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
import torch

from redheart.modeling_redheart import RedHeartModel
from redheart.training.collate import Collator
from redheart.training.config import TrainConfig
from redheart.training.features import build_stores
from redheart.training.surd_head import (
    TRAINED_PREFIXES,
    _table,
    clause_count_shares,
    fit_output_layers,
    table_shares,
)

TEXTS = [
    "I broke my promise because my boss called, and my friend waited alone.",
    "She smiled at the kids, but the rain ruined the picnic.",
    "우리는 늦게 도착했지만 모두가 반겨 주었다.",
    "He lied to his mother, so she cried all night.",
    "오늘은 비가 와서 우울했고 일도 많았다.",
    "The dog was hungry, and I gave it my sandwich.",
] * 5


def test_only_the_surd_output_layers_learn(tiny_system, tmp_path):
    model = RedHeartModel.from_pretrained(str(tiny_system)).eval()
    languages = ["ko" if any("\uac00" <= c <= "\ud7a3" for c in t) else "en" for t in TEXTS]
    texts = [f"{t} ({i})" for i, t in enumerate(TEXTS)]  # distinct texts
    rng = np.random.default_rng(0)
    targets = rng.dirichlet([6.0, 2.0, 1.0, 1.0], size=len(texts)).astype(np.float32)  # mean far from uniform
    table = _table(texts, languages, targets)
    cfg = TrainConfig()
    cfg.features.cache_dir, cfg.features.max_length, cfg.train.progress = str(tmp_path), 48, False
    stores = build_stores(cfg, model.config, table.texts_by_language(), None, print)
    collator = Collator(table, stores, model.config.encoders, ["surd"])
    rows = np.arange(len(texts))
    batch = collator(rows)
    with torch.no_grad():
        before = model(**batch)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    train_rows, val_rows = rows[:20], rows[20:]
    history = fit_output_layers(model, collator, train_rows, val_rows, targets[val_rows], epochs=15, lr=1e-2)
    with torch.no_grad():
        after = model(**batch)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, weights[k])}
    assert changed and all(k.startswith(TRAINED_PREFIXES) for k in changed)
    for name in (
        "emotion_probs",
        "kote_probs",
        "utility",
        "acceptability_probs",
        "regret_potential",
        "sentiment",
    ):
        assert torch.equal(getattr(before, name), getattr(after, name)), name
    error = lambda shares: float(np.abs(targets[val_rows] - shares[val_rows].numpy()).mean())  # noqa: E731
    assert history[0]["val_mae"] == error(before.surd_shares)
    best = min(h["val_mae"] for h in history)
    assert abs(error(after.surd_shares) - best) < 1e-6  # the best epoch is the one kept
    assert best < history[0]["val_mae"] - 0.02
    assert all(p.requires_grad for p in model.parameters())  # nothing left frozen


def test_clause_count_table_is_the_renormalised_median_and_pools_rare_counts():
    rng = np.random.default_rng(1)
    counts = np.array([2] * 15 + [3] * 12 + [4] * 3 + [6] * 2)
    targets = rng.dirichlet([2.0, 3.0, 1.0, 0.5], size=len(counts))
    table = clause_count_shares(targets, counts, min_texts=10)
    assert list(table) == ["2", "3", "4", "5", "6"]

    def renormalised_median(rows):
        med = [statistics.median(targets[i, j] for i in rows) for j in range(4)]
        return [m / sum(med) for m in med]

    rows = lambda *ns: [i for i, c in enumerate(counts) if c in ns]  # noqa: E731
    assert table["2"] == pytest.approx(renormalised_median(rows(2)))
    assert table["3"] == pytest.approx(renormalised_median(rows(3)))
    assert table["4"] == pytest.approx(renormalised_median(rows(4, 3)))  # 3 texts: pooled with count 3
    assert table["5"] == pytest.approx(renormalised_median(rows(4, 3)))  # none: pooled the same way
    assert table["6"] == pytest.approx(renormalised_median(rows(6, 4, 3)))
    assert all(sum(v) == pytest.approx(1.0) for v in table.values())
    assert table_shares(table, np.array([2, 6, 9])).tolist() == [table["2"], table["6"], table["6"]]
    with pytest.raises(ValueError, match="at least two clauses"):
        clause_count_shares(targets, np.ones(len(counts), dtype=int))
    with pytest.raises(ValueError, match="one clause count per target row"):
        clause_count_shares(targets, counts[:-1])
