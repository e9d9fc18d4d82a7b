"""The paired comparison: its difference intervals against the normal interval of per-row differences, its verdicts,
its refusals, and `python -m redheart.training.compare` on the shipped model against a copy with other thresholds
(real data), checked against scikit-learn on the pipeline's outputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from redheart.training.compare import (
    HEADLINE,
    ComparisonError,
    format_comparison,
    is_gain,
    paired_comparison,
)
from redheart.training.evaluate import ScoredModel

ROWS = 2000


def _scored(correct: dict[str, np.ndarray], rows: dict[str, list] | None = None) -> ScoredModel:
    """A model whose every headline metric is the accuracy of its 0/1 ``correct`` vector on the drawn rows."""
    scores = {name: {key: (lambda r, c=correct[name]: float(c[r].mean()))} for name, key in HEADLINE}
    rows = rows or {name: [(str(i), None) for i in range(len(c))] for name, c in correct.items()}
    return ScoredModel({"model_dir": "m"}, scores, rows)


def _pair(seed: int, flips: float, gain: float) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Baseline right on ~60 % of rows; the candidate disagrees with it on a ``flips`` share of rows, and is right
    on an extra ``gain`` share."""
    rng = np.random.default_rng(seed)
    base, cand = {}, {}
    for name, _ in HEADLINE:
        b = rng.random(ROWS) < 0.6
        c = np.where(rng.random(ROWS) < flips, ~b, b) | (rng.random(ROWS) < gain)
        base[name], cand[name] = b.astype(float), c.astype(float)
    return cand, base


def test_paired_intervals_match_the_normal_interval_of_per_row_differences():
    cand, base = _pair(seed=0, flips=0.1, gain=0.02)
    comparison = paired_comparison(_scored(cand), _scored(base))
    errors = []
    for name, key in HEADLINE:
        d = cand[name] - base[name]  # an accuracy difference on the same rows is the mean per-row difference
        se = d.std(ddof=1) / np.sqrt(ROWS)
        errors.append(se)
        got = comparison["metrics"][name]
        assert got["metric"] == key and got["difference"] == pytest.approx(d.mean())
        assert got["ci"] == pytest.approx([d.mean() - 1.96 * se, d.mean() + 1.96 * se], abs=0.003)
    mean = np.mean([(cand[n] - base[n]).mean() for n, _ in HEADLINE])
    se = np.sqrt(np.sum(np.square(errors))) / len(HEADLINE)  # the sets are disjoint: independent draws
    headline = comparison["headline"]
    assert headline["difference"] == pytest.approx(mean)
    assert headline["ci"] == pytest.approx([mean - 1.96 * se, mean + 1.96 * se], abs=0.001)
    # unpaired, the two models' own intervals would be far wider: each accuracy's own standard error ~0.011
    own = np.sqrt(0.6 * 0.4 / ROWS)
    assert headline["ci"][1] - headline["ci"][0] < 0.5 * 2 * 1.96 * np.sqrt(2) * own / np.sqrt(len(HEADLINE))


def test_verdicts_a_real_gain_no_change_and_a_coin_flip():
    cand, base = _pair(seed=1, flips=0.0, gain=0.02)  # right wherever the baseline is, and on 0.8 % more
    gain = paired_comparison(_scored(cand), _scored(base))
    assert is_gain(gain) and gain["headline"]["not_better_share"] == 0.0
    assert "verdict: a gain" in format_comparison(gain)

    same = paired_comparison(_scored(base), _scored(base))
    assert same["headline"]["difference"] == 0.0 and same["headline"]["ci"] == [0.0, 0.0]
    assert not is_gain(same) and same["headline"]["not_better_share"] == 1.0

    rng = np.random.default_rng(2)  # another model as good, right on other rows: its difference is noise
    cand = {name: (rng.random(ROWS) < 0.6).astype(float) for name, _ in HEADLINE}
    noise = paired_comparison(_scored(cand), _scored(base))
    assert noise["headline"]["ci"][0] < 0 < noise["headline"]["ci"][1] and not is_gain(noise)
    assert "not a gain" in format_comparison(noise)


def test_comparison_refuses_other_rows_and_missing_evaluations():
    cand, base = _pair(seed=3, flips=0.1, gain=0.0)
    name = HEADLINE[3][0]
    other_rows = {n: [(str(i), None) for i in range(ROWS)] for n, _ in HEADLINE}
    other_rows[name] = [(f"other {i}", None) for i in range(ROWS)]
    with pytest.raises(ComparisonError, match=f"{name}: the models were scored on different rows"):
        paired_comparison(_scored(cand, other_rows), _scored(base))
    partial = _scored(base)
    del partial.scores[name]
    with pytest.raises(ComparisonError, match="not evaluated for both models"):
        paired_comparison(_scored(cand), partial)
    with pytest.raises(ValueError, match="resamples >= 1"):
        paired_comparison(_scored(cand), _scored(base), resamples=0)


def test_compare_cli_on_the_shipped_model_against_other_thresholds(data_dir, monkeypatch, tmp_path, capsys):
    from sklearn.metrics import f1_score
    from transformers import pipeline

    import redheart  # noqa: F401  (registers the task)
    from redheart.pipelines.registration import DEFAULT_MODEL_DIR
    from redheart.training import compare
    from redheart.training.evaluation import sets

    rows = 40
    two = (("ethics_deontology_test", "accuracy"), ("kote_heldout", "macro_f1"))
    monkeypatch.setattr(compare, "HEADLINE", two)
    monkeypatch.setattr(
        sets,
        "EVALUATIONS",
        {k: v for k, v in sets.EVALUATIONS.items() if v[0] in ("ethics_deontology", "kote")},
    )
    other = tmp_path / "other-thresholds"
    shutil.copytree(DEFAULT_MODEL_DIR, other)
    config = json.loads((other / "config.json").read_text())
    config["decision_thresholds"]["kote"] = [0.3] * len(config["kote_labels"])
    (other / "config.json").write_text(json.dumps(config))
    out = tmp_path / "comparison.json"
    argv = [str(other), str(DEFAULT_MODEL_DIR), "--data-dir", str(data_dir), "--max-per-set", str(rows)]
    assert compare.main([*argv, "--out", str(out), "--resamples", "300", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    comparison = json.loads(out.read_text())
    assert "verdict:" in printed and comparison["resamples"] == 300

    deontology = comparison["metrics"]["ethics_deontology_test"]  # the same weights: no difference at all
    assert deontology["difference"] == 0.0 and deontology["ci"] == [0.0, 0.0]

    # KOTE: the macro-F1 of the pipeline's probabilities at both threshold sets, by scikit-learn
    pipe = pipeline("ethics-emotion", model=str(DEFAULT_MODEL_DIR), dtype="float32")
    labels = pipe.model.config.kote_labels
    _, held = sets.evaluated_split(DEFAULT_MODEL_DIR, "kote", data_dir=str(data_dir), max_per_set=rows)
    said = [pipe(text, top_k=None)["analysis"]["emotion"]["kote"] for text in held["text"]]
    probs = np.array([[out[name] for name in labels] for out in said])
    gold = np.asarray(held["kote"])
    shipped = pipe.model.config.decision_thresholds["kote"]
    f1 = {
        t: f1_score(gold, probs >= np.asarray(thr), average="macro", zero_division=0)
        for t, thr in (("candidate", [0.3] * len(labels)), ("baseline", shipped))
    }
    kote = comparison["metrics"]["kote_heldout"]
    for side in ("candidate", "baseline"):
        assert kote[side] == pytest.approx(f1[side], abs=0.01)  # features vs the pipeline path
    assert kote["difference"] == pytest.approx(f1["candidate"] - f1["baseline"], abs=0.01)
    assert kote["difference"] != 0.0 and kote["ci"][0] <= kote["difference"] <= kote["ci"][1]
    assert comparison["headline"]["difference"] == pytest.approx(kote["difference"] / 2)
