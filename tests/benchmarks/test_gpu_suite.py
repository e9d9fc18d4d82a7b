"""The GPU suite's dry run (tiny sizes, the stages' real code paths) and its report of a stage that fails."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

SUITE = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_suite.sh"


def _suite(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run([str(SUITE), *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_dry_run_measures_every_stage(tmp_path):
    run = _suite("--dry-run", "--out", str(tmp_path))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((tmp_path / "gpu_suite.json").read_text())
    header = summary["header"]
    assert header["dry_run"] and header["torch"] == torch.__version__
    assert header["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert header["device"].startswith("CPU: ") and header["packages"]["torch"]
    assert list(summary["stages"]) == ["inference", "training", "finetune", "finetune-bf16"]
    assert {s["status"] for s in summary["stages"].values()} == {"ok"}
    assert summary["seconds"] < summary["total_budget_s"]

    inference = summary["stages"]["inference"]["figures"]
    assert str(inference["dtype"]).endswith("bfloat16")  # "torch.bfloat16" or "bfloat16"
    for label in ("short", "long"):
        assert 0 < inference[label]["p50_ms_single_text"] <= inference[label]["p95_ms_single_text"]
        assert inference[label]["texts_per_s_batched"] > 0
    training = summary["stages"]["training"]
    assert training["figures"]["samples_per_s"] > 0 and training["figures"]["activation_checkpointing"]
    assert training["figures"]["bf16"] and training["figures"]["process_peak_rss_mib"] > 0
    if importlib.util.find_spec("bitsandbytes") is None:
        assert training["figures"]["optim"] == "adamw" and "8-bit AdamW skipped" in training["notes"][0]
    else:
        assert training["figures"]["optim"] == "adamw8bit"
    for name, precision in (("finetune", "no"), ("finetune-bf16", "bf16")):
        figures = summary["stages"][name]["figures"]
        assert figures["mixed_precision"] == precision and figures["samples_per_s"] > 0
        assert figures["lora"]["r"] == 16 and figures["timed_steps"] == 2
        assert 0 < figures["trainable_parameters"] < figures["parameters"]  # the encoder's base stays frozen
    page = (tmp_path / "gpu_suite.md").read_text()
    assert "# Red Heart GPU suite (dry run)" in page and f"CPU capability {header['cpu_capability']}" in page


def test_a_stage_over_budget_is_reported_and_the_others_still_run(tmp_path):
    run = _suite(
        "--dry-run", "--out", str(tmp_path), "--stages", "training,finetune", "--budget", "training=1"
    )
    assert run.returncode == 1  # not every stage measured
    stages = json.loads((tmp_path / "gpu_suite.json").read_text())["stages"]
    assert list(stages) == ["training", "finetune"]
    assert stages["training"]["status"] == "timeout" and "budget of 1 s" in stages["training"]["error"]
    assert stages["finetune"]["status"] == "ok" and stages["finetune"]["figures"]["samples_per_s"] > 0
    assert "## training: timeout" in (tmp_path / "gpu_suite.md").read_text()
