"""The default-model benchmark runs end to end on the shipped model and writes what it prints."""

from __future__ import annotations

import json


def test_bench_default_measures_the_shipped_model(tmp_path, load_benchmark, capsys):
    bench = load_benchmark("bench_default")
    out = tmp_path / "default.json"
    argv = [
        "--systems",
        "torch auto",
        "torch int8",
        "--runs",
        "3",
        "--batch-size",
        "2",
        "--batches",
        "1",
        "--json",
        str(out),
    ]
    assert bench.main(argv) == 0
    numbers = json.loads(out.read_text())
    for label in ("short", "long"):
        for system in ("torch auto", "torch int8"):
            row = numbers["results"][label][system]
            assert 0 < row["p50_ms"] <= row["p95_ms"] and row["texts_per_s"] > 0
    assert numbers["tokens"]["long"] > 3 * numbers["tokens"]["short"]  # ~120 against one sentence
    assert numbers["meta"]["torch_auto_dtype"] == "float32"  # the suite pins a CPU without native bf16
    printed = capsys.readouterr().out
    assert "CPU capability" in printed and "torch auto" in printed and "torch int8" in printed
