"""The unified schema and label constants (no data needed)."""

from __future__ import annotations

import pytest

from redheart.training.data import schema
from redheart.training.data.schema import (
    CORE_EMOTIONS,
    EKMAN_GROUPS,
    FIELDS,
    GOEMOTIONS_LABELS,
    KOTE_LABELS,
    SENTIMENT_GROUPS,
    acceptable_from_ethics,
    goemotions_sentiment,
    multi_hot,
    nsmc_sentiment,
    pair_regret,
)


def test_label_constants():
    assert len(GOEMOTIONS_LABELS) == 28 and GOEMOTIONS_LABELS[-1] == "neutral"
    assert len(set(GOEMOTIONS_LABELS)) == 28
    assert len(KOTE_LABELS) == 44 and len(set(KOTE_LABELS)) == 44
    assert KOTE_LABELS[0] == "불평/불만" and KOTE_LABELS[24] == "없음" and KOTE_LABELS[43] == "안심/신뢰"
    assert CORE_EMOTIONS == ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")
    assert schema.FRAMEWORKS == ("commonsense", "justice", "deontology", "virtue")


@pytest.mark.parametrize("groups", [EKMAN_GROUPS, SENTIMENT_GROUPS])
def test_groupings_partition_the_28_labels(groups):
    members = [n for names in groups.values() for n in names]
    assert sorted(members) == sorted(GOEMOTIONS_LABELS)  # every label exactly once


def test_sentiment_formula():
    idx = GOEMOTIONS_LABELS.index
    assert goemotions_sentiment([idx("joy")]) == 1.0
    assert goemotions_sentiment([idx("anger"), idx("fear")]) == -1.0
    assert goemotions_sentiment([idx("joy"), idx("anger")]) == 0.0
    assert goemotions_sentiment([idx("joy"), idx("love"), idx("anger")]) == pytest.approx(1 / 3)
    assert goemotions_sentiment([idx("neutral")]) == 0.0
    assert goemotions_sentiment([idx("surprise"), idx("curiosity")]) == 0.0  # ambiguous only
    assert goemotions_sentiment([idx("surprise"), idx("joy")]) == 1.0  # ambiguous does not count
    assert nsmc_sentiment(1) == -1.0 and nsmc_sentiment(10) == 1.0
    assert nsmc_sentiment(5) == pytest.approx(-1 / 9)
    with pytest.raises(ValueError):
        nsmc_sentiment(11)


def test_target_helpers():
    assert multi_hot([0, 3], 5) == [1, 0, 0, 1, 0]
    with pytest.raises(ValueError):
        multi_hot([5], 5)
    assert acceptable_from_ethics("commonsense", 1) == 0.0  # label 1 = wrong
    assert acceptable_from_ethics("commonsense", 0) == 1.0
    for fw in ("justice", "deontology", "virtue"):
        assert acceptable_from_ethics(fw, 1) == 1.0
    assert pair_regret(chosen_rank=0, best_alternative_rank=1) == 1.0
    assert pair_regret(chosen_rank=1, best_alternative_rank=0) == 0.0


def test_features_match_fields():
    feats = schema.get_features()
    assert list(feats) == list(FIELDS)
    assert feats["emotion"].length == 28 and feats["kote"].length == 44 and feats["surd"].length == 4


def test_label_spaces_have_one_source():
    """The data layer uses the model configuration's label spaces, not copies of them."""
    from redheart.configuration_redheart import labels

    assert schema.GOEMOTIONS_LABELS is labels.GOEMOTIONS_LABELS
    assert schema.KOTE_LABELS is labels.KOTE_LABELS
    assert schema.EKMAN_GROUPS is labels.EKMAN_GROUPS
