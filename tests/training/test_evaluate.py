"""`python -m redheart.training.evaluate` on the shipped model (real data): its figures against the same metrics
computed here from the pipeline's outputs with scikit-learn, its intervals, and the SURD step's record."""

from __future__ import annotations

import json

import numpy as np
import pytest

from redheart.pipelines.registration import DEFAULT_MODEL_DIR

ROWS = 40


def _evaluate_argv(monkeypatch, tmp_path, data_dir, datasets: tuple[str, ...]) -> list[str]:
    """The evaluation's command line on the shipped model, ``ROWS`` rows of only ``datasets``, into
    ``tmp_path/results.json``."""
    from redheart.training.evaluation import sets

    kept = {k: v for k, v in sets.EVALUATIONS.items() if v[0] in datasets}
    monkeypatch.setattr(sets, "EVALUATIONS", kept)
    out = tmp_path / "results.json"
    return [
        str(DEFAULT_MODEL_DIR),
        "--data-dir",
        str(data_dir),
        "--max-per-set",
        str(ROWS),
        "--out",
        str(out),
    ]


def _deontology_accuracy(pipe, data_dir) -> float:
    """Accuracy of the pipeline's own deontology answers on the evaluated rows, computed with scikit-learn."""
    from sklearn.metrics import accuracy_score

    from redheart.training.evaluation import sets

    _, rows = sets.evaluated_split(
        DEFAULT_MODEL_DIR, "ethics_deontology", data_dir=str(data_dir), max_per_set=ROWS
    )
    said = [pipe(text)["analysis"]["bentham"]["acceptability"]["deontology"] >= 0.5 for text in rows["text"]]
    return accuracy_score([label >= 0.5 for label in rows["acceptable"]], said)


def test_evaluate_cli_matches_the_pipeline_and_sklearn(data_dir, monkeypatch, tmp_path, capsys):
    from sklearn.metrics import f1_score
    from transformers import pipeline

    import redheart  # noqa: F401  (registers the task)
    from redheart.training import evaluate
    from redheart.training.evaluation import sets
    from redheart.training.surd_head import RECORD

    argv = _evaluate_argv(monkeypatch, tmp_path, data_dir, ("ethics_deontology", "kote"))
    assert evaluate.main([*argv, "--no-progress"]) == 0
    assert "results:" in capsys.readouterr().out
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["model_dir"] == "models/red-heart-small-e5"  # inside the repository: no local path

    pipe = pipeline("ethics-emotion", model=str(DEFAULT_MODEL_DIR), dtype="float32")
    config = pipe.model.config

    deontology = results["metrics"]["ethics_deontology_test"]
    assert deontology["n"] == ROWS
    assert deontology["accuracy"] == pytest.approx(_deontology_accuracy(pipe, data_dir), abs=1.5 / ROWS)

    _, rows = sets.evaluated_split(DEFAULT_MODEL_DIR, "kote", data_dir=str(data_dir), max_per_set=ROWS)
    said = [pipe(text, top_k=None)["analysis"]["emotion"]["kote"] for text in rows["text"]]
    # in the model's label order, which the thresholds follow
    probs = np.array([[labels[name] for name in config.kote_labels] for labels in said])
    predicted = probs >= np.asarray(config.decision_thresholds["kote"])
    expected = f1_score(np.asarray(rows["kote"]), predicted, average="macro", zero_division=0)
    kote = results["metrics"]["kote_heldout"]
    assert kote["macro_f1"] == pytest.approx(expected, abs=0.01)  # features vs the pipeline path

    for metrics in (deontology, kote):  # every figure inside its own bootstrap interval, which is not a point
        for key, (low, high) in metrics["ci95"].items():
            assert low <= metrics[key] <= high and high - low > 0.01

    record = json.loads((DEFAULT_MODEL_DIR / RECORD).read_text())
    surd = results["metrics"]["surd_head_heldout"]
    assert (surd["mae"], surd["n"]) == (record["heldout_mae_after"], record["heldout_targets"])


def test_evaluate_quantized_matches_the_quantized_pipeline(data_dir, monkeypatch, tmp_path):
    """``--quantize int8``: the encoders run live from token ids with int8 linear layers; the figure is the one the
    int8 pipeline's own answers give (up to texts near the threshold: activations are scaled per call)."""
    from transformers import pipeline

    import redheart  # noqa: F401  (registers the task)
    from redheart.training import evaluate

    argv = _evaluate_argv(monkeypatch, tmp_path, data_dir, ("ethics_deontology",))
    assert evaluate.main([*argv, "--no-progress", "--quantize", "int8"]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["backend"] == "torch-int8"
    assert {e["runner"]["quantize"] for e in results["encoders"].values()} == {"int8"}

    pipe = pipeline("ethics-emotion", model=str(DEFAULT_MODEL_DIR), quantize="int8")
    deontology = results["metrics"]["ethics_deontology_test"]
    assert deontology["accuracy"] == pytest.approx(_deontology_accuracy(pipe, data_dir), abs=2.5 / ROWS)
    assert evaluate.main([*argv, "--quantize", "int8", "--backend", "onnx"]) == 2  # refused, said on stderr
