"""`python -m redheart`: the main job, run as a user runs it, against the pipeline called directly."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from transformers import pipeline

import redheart  # noqa: F401  (registers the task)
from redheart.__main__ import main, summary
from redheart.pipelines.registration import DEFAULT_MODEL_DIR

TEXTS = ["친구와의 약속을 어기고 야근을 했다.", "I returned the wallet with all the money inside."]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "redheart", *args], capture_output=True, text=True, timeout=300
    )


def test_json_output_equals_the_pipeline(tiny_system):
    run = _run("--model", str(tiny_system), "--json", *TEXTS)
    assert run.returncode == 0, run.stderr
    printed = json.loads(run.stdout)
    direct = pipeline("ethics-emotion", model=str(tiny_system))(TEXTS)
    assert len(printed) == 2
    for got, want in zip(printed, direct, strict=True):
        assert got["analysis"]["emotion"]["labels"] == pytest.approx(
            want["analysis"]["emotion"]["labels"], abs=1e-6
        )
        assert got["integrated"] == pytest.approx(want["integrated"], abs=1e-6)


def test_quantized_json_output_equals_the_quantized_pipeline(tiny_system):
    run = _run("--model", str(tiny_system), "--quantize", "int8", "--json", *TEXTS)
    assert run.returncode == 0, run.stderr
    printed = json.loads(run.stdout)
    direct = pipeline("ethics-emotion", model=str(tiny_system), quantize="int8")(TEXTS)
    for got, want in zip(printed, direct, strict=True):
        assert got["metadata"]["model"]["backend"] == "torch-int8"
        assert got["analysis"]["emotion"]["labels"] == pytest.approx(
            want["analysis"]["emotion"]["labels"], abs=1e-6
        )
    assert _run("--quantize", "int4", "x").returncode == 2  # argparse names the choices


def test_summary_shows_the_results_numbers(tiny_pipeline):
    result = tiny_pipeline(TEXTS[1])
    text = summary(TEXTS[1], result)
    assert f"sentiment {result['analysis']['emotion']['sentiment']:+.2f}" in text
    assert f"regret potential {result['integrated']['regret_potential']:.2f}" in text
    top = result["analysis"]["emotion"]["top"][0]
    assert f"{top['label']} {top['score']:.2f}" in text


def test_missing_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(OSError, match="nowhere"):
        main(["--model", str(tmp_path / "nowhere"), "x"])


@pytest.mark.skipif(
    not (DEFAULT_MODEL_DIR / "config.json").is_file(), reason="no shipped model in this checkout"
)
def test_default_run_uses_the_shipped_model():
    run = _run("--json", TEXTS[0])
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)[0]
    assert result["metadata"]["model"]["name_or_path"] == str(DEFAULT_MODEL_DIR)
    assert (
        "predicted" in result["analysis"]["emotion"]
        and 0 <= result["analysis"]["bentham"]["utility_percentile"] <= 1
    )


@pytest.mark.skipif(
    not (DEFAULT_MODEL_DIR / "config.json").is_file(), reason="no shipped model in this checkout"
)
def test_pipeline_without_a_model_loads_the_shipped_one():
    pipe = pipeline("ethics-emotion")
    assert pipe.model.config.name_or_path == str(DEFAULT_MODEL_DIR)
    assert pipe.model.config.encoders["e5"]["sha256"]  # the base encoder is pinned
    result = pipe("I kept my promise to a friend.")
    thresholds = pipe.model.config.decision_thresholds["emotion"]
    labels = result["analysis"]["emotion"]["labels"]
    assert set(result["analysis"]["emotion"]["predicted"]) == {
        k for k, t in zip(labels, thresholds, strict=True) if labels[k] >= t
    }
