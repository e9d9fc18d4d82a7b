"""Korean against English on the same comments, checked against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr

from redheart.configuration_redheart.labels import ACCEPTABILITY_FRAMEWORKS
from redheart.training.evaluation.crosslingual import crosslingual_agreement


def test_crosslingual_agreement_against_scipy_on_aligned_translations():
    rng = np.random.default_rng(4)
    n = 300

    class Table:  # only what the agreement reads: the label rows that show the two sides are one set of comments
        def __init__(self, emotion: np.ndarray) -> None:
            self.emotion = emotion

        def __len__(self) -> int:
            return len(self.emotion)

    labels = (rng.random((n, 28)) < 0.1).astype(np.float32)
    english = rng.random((n, 4))
    korean = np.clip(0.5 * english + 0.5 * rng.random((n, 4)) + 0.1, 0, 1)  # follows English, shifted up
    preds = {
        f"eval:goemotions_{lang}": {
            "acceptability_probs": probs,
            "sentiment": rng.normal(size=n),
            "utility": rng.normal(size=n),
        }
        for lang, probs in (("en", english), ("ko", korean))
    }
    tables = {"eval:goemotions_en": Table(labels), "eval:goemotions_ko": Table(labels.copy())}
    got = crosslingual_agreement(tables, preds)
    r = [pearsonr(english[:, j], korean[:, j])[0] for j in range(4)]
    assert got["pearson_r"] == pytest.approx(np.mean(r)) and got["n_pairs"] == n
    assert got["mean_shift"] == pytest.approx((korean - english).mean())
    for j, name in enumerate(ACCEPTABILITY_FRAMEWORKS):
        framework = got["acceptability"][name]
        assert framework["pearson_r"] == pytest.approx(r[j])
        assert framework["decision_agreement"] == pytest.approx(
            ((english[:, j] >= 0.5) == (korean[:, j] >= 0.5)).mean()
        )
        assert framework["unacceptable_share"]["ko"] == pytest.approx((korean[:, j] < 0.5).mean())
    en, ko = preds["eval:goemotions_en"], preds["eval:goemotions_ko"]
    assert got["utility_r"] == pytest.approx(pearsonr(en["utility"], ko["utility"])[0])
    assert got["sentiment_r"] == pytest.approx(pearsonr(en["sentiment"], ko["sentiment"])[0])
    for key in ("pearson_r", "mean_shift"):
        low, high = got["ci95"][key]
        assert low <= got[key] <= high and high > low
    # sides that are not one set of comments in two languages (other rows, a sample of each) are not compared
    tables["eval:goemotions_ko"] = Table(labels[::-1].copy())
    assert crosslingual_agreement(tables, preds) is None
    assert crosslingual_agreement({"eval:goemotions_en": Table(labels)}, preds) is None
