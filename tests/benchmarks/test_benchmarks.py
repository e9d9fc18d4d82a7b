"""The inference benchmark runs end to end (``--quick``: tiny system) and writes the numbers it prints."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

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
