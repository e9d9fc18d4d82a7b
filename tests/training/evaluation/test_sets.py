"""`evaluated_split` gives the very rows `evaluate_model` scores (real data), so a baseline shares them."""

from __future__ import annotations

import numpy as np
import pytest

from redheart.pipelines.registration import DEFAULT_MODEL_DIR


def test_evaluated_split_matches_the_evaluated_tables(data_dir, monkeypatch):
    from redheart.configuration_redheart import RedHeartConfig
    from redheart.training.evaluation import sets
    from redheart.training.evaluation.model_folder import training_info

    # Two small sets keep it cheap; kote is second, so a sample seeded by the wrong place would differ.
    small = {k: v for k, v in sets.EVALUATIONS.items() if v[0] in ("ethics_commonsense", "kote")}
    monkeypatch.setattr(sets, "EVALUATIONS", small)
    settings = sets.evaluation_settings(
        DEFAULT_MODEL_DIR,
        training_info(DEFAULT_MODEL_DIR),
        max_per_set=50,
        cache_dir=None,
        batch_size=None,
        ece_bins=None,
        progress=False,
    )
    encoders = RedHeartConfig.from_pretrained(str(DEFAULT_MODEL_DIR)).encoders
    tables, sizes, _ = sets.build_tables(settings, encoders, str(data_dir))
    for dataset in ("ethics_commonsense", "kote"):
        train, rows = sets.evaluated_split(DEFAULT_MODEL_DIR, dataset, data_dir=str(data_dir), max_per_set=50)
        table = tables[f"eval:{dataset}"]
        assert len(rows) == sizes[dataset]["evaluated"] == 50
        assert list(rows["text"]) == table.text
        assert not set(rows["group"]) & set(train["group"])  # never a training row
    assert np.array_equal(np.asarray(rows["kote"]), table.kote)

    _, everything = sets.evaluated_split(DEFAULT_MODEL_DIR, "kote", data_dir=str(data_dir), max_per_set=0)
    assert len(everything) == sizes["kote"]["available"]
    with pytest.raises(ValueError, match="not an evaluated data set"):
        sets.evaluated_split(DEFAULT_MODEL_DIR, "square", data_dir=str(data_dir))
