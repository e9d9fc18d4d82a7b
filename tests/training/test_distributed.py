"""Multi-process training for real: ``accelerate launch`` with two CPU processes (gloo) against one process.

Every run is a subprocess of ``training/train.py`` on small samples of the real data (RH_DATA_DIR) with the tiny
preset on two tiny local encoders: one process with micro-batch 16 (``python training/train.py``) and two
processes with micro-batch 8 each (``accelerate launch --config_file training/accelerate/cpu-gloo.yaml``), so
the global batch is the same 16 examples. PYTHONHASHSEED=0 makes the data order repeat across processes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from redheart.configuration_redheart import RedHeartConfig
from redheart.configuration_redheart.presets import preset_kwargs
from redheart.modeling_redheart import RedHeartModel
from redheart.modeling_redheart.losses import loss_item_counts
from redheart.training.trainer import global_batch_scales

from conftest import make_inputs, make_labels

REPO = Path(__file__).resolve().parents[2]
TRAIN = REPO / "training" / "train.py"
CPU_CONFIG = REPO / "training" / "accelerate" / "cpu-gloo.yaml"
SETS = {
    "goemotions_en": 160,
    "goemotions_ko": 120,
    "kote": 120,
    "ethics_util": 80,
    "ethics_justice": 80,
    "nsmc": 120,
}
STEPS = 6

#: 2 x 8 against 1 x 16, same global batch: the losses are equal in exact arithmetic (each task's mean is weighed
#: by its share of the global batch's labelled items, see redheart.training.trainer) and differ only by float
#: rounding: gloo sums the two processes' gradients in another order than one backward pass over 16 rows, and
#: matrix products over 8 and 16 rows (padded to different lengths) round differently. Measured here: losses
#: equal to 1e-6, weights to 7e-7 after 6 AdamW steps; the bounds leave a margin of about ten.
LOSS_RTOL = 1e-5
WEIGHT_ATOL = 1e-5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(root: Path, setup: dict, *, exact: bool, **train) -> Path:
    """A training config (JSON is YAML). ``exact``: no dropout and no MoE load-balancing regulariser, the two
    parts of the loss that are not those of the global batch (dropout masks are drawn per process; the
    load-balancing loss is a product of batch means, computed per micro-batch as in Switch Transformers)."""
    model = {"encoders": setup["encoders"]}
    if exact:
        tiny = preset_kwargs("tiny")
        model["backbone"] = {
            **tiny["backbone"],
            "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0,
        }
        model["heads"] = {**tiny["heads"], "dropout": 0.0, "router_aux_loss_coef": 0.0}
        model["analyzers"] = {**tiny["analyzers"], "dropout": 0.0}
    raw = {
        "model": {"preset": "tiny", "config": model},
        "data": {
            "sets": list(SETS),
            "max_samples": dict(SETS),
            "max_eval_samples": {"nsmc": 50},
            "stopping_strategy": "all_exhausted_without_replacement",
        },
        "features": {"cache_dir": setup["features"], "max_length": 32},
        "train": {
            "micro_batch_size": 8,
            "max_steps": STEPS,
            "logging_steps": 1,
            "eval_steps": None,
            "save_steps": None,
            "validation_max_per_set": 12,
            "lr": 1e-3,
            "mixed_precision": "no",
            **train,
        },
    }
    path = root / f"{'exact' if exact else 'default'}-{len(list(root.glob('*.json')))}.json"
    path.write_text(json.dumps(raw))
    return path


def _train(config: Path, out: Path, data: Path, processes: int, *extra: str) -> dict:
    """Run training/train.py (two processes through ``accelerate launch``); return its trainer state."""
    args = [str(TRAIN), "--config", str(config), "--output-dir", str(out), "--data-dir", str(data)]
    args += ["--no-progress", *extra]
    if processes == 1:
        command = [sys.executable, *args]
    else:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_CONFIG)]
        command += ["--num_processes", str(processes), "--main_process_port", str(_free_port()), *args]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert run.stdout.count('"final_model"') == 1, run.stdout[-2000:]  # one result line: one run, not two
    return json.loads((out / "trainer_state.json").read_text())


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def _cat(a, b):
    if isinstance(a, dict):
        return {k: _cat(a[k], b[k]) for k in a}
    return torch.cat([a, b])


def test_scaled_parts_add_up_to_the_whole_batch():
    """Two parts of a batch, labelled unevenly (utility only in the first), with their loss_scales: their mean
    loss and its gradient are the whole batch's (the uncertainty weights' s_t terms included); the plain mean
    of the parts' means is not. In-process, no data: the arithmetic the multi-process runs rely on."""
    heads = {**preset_kwargs("tiny")["heads"], "router_aux_loss_coef": 0.0}  # per micro-batch by design
    config = RedHeartConfig.from_preset("tiny", heads=heads)
    torch.manual_seed(0)
    model = RedHeartModel(config).eval()  # no dropout
    parts = []
    for seed in (0, 1):
        inputs = make_inputs(config, batch=4, seed=seed, modality=False)
        labels = make_labels(config, batch=4, seed=seed)
        if seed == 1:
            labels["emotion_labels"][1:3] = -100
            labels["sentiment_labels"][:3] = -100
            labels["acceptability_labels"][:, 1:] = -100
            labels["utility_pairs"] = torch.zeros((0, 2), dtype=torch.long)
        parts.append({**inputs, **labels})
    whole = {k: _cat(parts[0][k], parts[1][k]) for k in parts[0] if k != "utility_pairs"}
    whole["utility_pairs"] = parts[0]["utility_pairs"]  # indices stay: the first part comes first
    counts = [loss_item_counts(p) for p in parts]
    assert counts[0] != counts[1] and "utility" not in {t for t, n in counts[1].items() if n}
    totals = {
        "items": {t: counts[0].get(t, 0) + counts[1].get(t, 0) for t in counts[0]},
        "holders": {t: (counts[0].get(t, 0) > 0) + (counts[1].get(t, 0) > 0) for t in counts[0]},
        "rows": 8,
    }
    scales = global_batch_scales(counts, [4, 4], totals, parts=2)

    def loss_and_grads(batches, extra):
        model.zero_grad()
        loss = sum(model(**b, **e).loss for b, e in zip(batches, extra, strict=True)) / len(batches)
        loss.backward()
        return float(loss.detach()), {
            n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
        }

    want, want_grads = loss_and_grads([whole], [{}])
    got, got_grads = loss_and_grads(parts, [{"loss_scales": s} for s in scales])
    assert got == pytest.approx(want, rel=1e-6)
    assert got_grads.keys() == want_grads.keys() and "utility.task_log_vars" in got_grads
    for name, grad in want_grads.items():
        torch.testing.assert_close(got_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    plain, _ = loss_and_grads(parts, [{}, {}])
    assert abs(plain - want) > 1e-2  # the mean of the parts' means is another loss


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    """Two tiny local encoders (entries of ``model.config.encoders``) and one feature cache for the module."""
    from redheart.encoders.testing import build_tiny_encoder

    root = tmp_path_factory.mktemp("encoders")
    features = str(root / "features")
    a = build_tiny_encoder(root / "enc_a", hidden_size=24, seed=0)
    b = build_tiny_encoder(root / "enc_b", family="roberta", hidden_size=16, seed=1)
    encoders = {
        "enc_a": {"model_name_or_path": str(a), "hidden_size": 24, "languages": ["*"], "max_length": 32},
        "enc_b": {"model_name_or_path": str(b), "hidden_size": 16, "languages": ["ko"], "max_length": 32},
    }
    return {"encoders": encoders, "features": features}


@pytest.mark.data
@pytest.mark.slow
def test_two_processes_train_the_global_batch_of_one(tmp_path, setup, data_dir):
    config = _config(tmp_path, setup, exact=True)
    two = _train(config, tmp_path / "two", data_dir, 2)  # first: the two processes share the feature encoding
    one = _train(config, tmp_path / "one", data_dir, 1, "--set", "train.micro_batch_size=16")
    assert (two["num_processes"], two["micro_batch_size"], two["global_batch"]) == (2, 8, 16)
    for name in ("enc_a", "enc_b"):  # each process encoded its part of the texts into a shard of its own
        assert len(list(Path(setup["features"]).glob(f"{name}-*/shard-*"))) == 2, name
    assert (one["num_processes"], one["micro_batch_size"], one["global_batch"]) == (1, 16, 16)
    loss_one = np.array([h["loss"] for h in one["history"] if "loss" in h])
    loss_two = np.array([h["loss"] for h in two["history"] if "loss" in h])
    assert len(loss_one) == len(loss_two) == STEPS
    assert np.ptp(loss_one) > 0.1  # the curve moves: an equal curve says something
    np.testing.assert_allclose(loss_two, loss_one, rtol=LOSS_RTOL, atol=0)
    for task in ("emotion", "kote", "sentiment", "utility", "acceptability"):
        a = [h[f"task/{task}"] for h in one["history"] if f"task/{task}" in h]
        b = [h[f"task/{task}"] for h in two["history"] if f"task/{task}" in h]
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6, err_msg=task)
    w_one, w_two = _weights(tmp_path / "one" / "final"), _weights(tmp_path / "two" / "final")
    assert w_one.keys() == w_two.keys()
    worst = max(float((w_one[k] - w_two[k]).abs().max()) for k in w_one)
    assert worst <= WEIGHT_ATOL, worst
    moved = max(float((w_one[k] - _weights(tmp_path / "two" / "best")[k]).abs().max()) for k in w_one)
    assert moved <= WEIGHT_ATOL  # no validation part: best is final, written once by the main process
    speed = {n: np.mean([h["samples_per_s"] for h in s["history"][1:]]) for n, s in (("1", one), ("2", two))}
    print(
        f"\n1 process x 16: {speed['1']:.0f} samples/s; 2 processes x 8: {speed['2']:.0f} samples/s; "
        f"largest loss difference {np.abs(loss_two - loss_one).max():.2e}, weights {worst:.2e}"
    )


@pytest.mark.data
@pytest.mark.slow
def test_two_process_resume_continues_bit_for_bit(tmp_path, setup, data_dir):
    """Dropout on (drawn per process), MoE load balancing on, accumulation 2 across 2 processes: stopping at
    step 3 and resuming gives the same weights bit for bit, since each process gets its own random state back."""
    config = _config(tmp_path, setup, exact=False, grad_accum=2, save_steps=3)
    full = _train(config, tmp_path / "full", data_dir, 2)
    assert (full["num_processes"], full["global_batch"]) == (2, 32)
    checkpoint = tmp_path / "full" / "checkpoint-0000003"
    assert sorted(p.name for p in checkpoint.glob("rng*.pt")) == ["rng-process1.pt", "rng.pt"]
    assert not list((tmp_path / "full").glob("*.tmp"))
    states = [torch.load(checkpoint / n, weights_only=False)["torch"] for n in ("rng.pt", "rng-process1.pt")]
    assert not torch.equal(*states)  # each process draws its own dropout masks
    resumed = _train(config, tmp_path / "resumed", data_dir, 2, "--resume", str(checkpoint))
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in full["history"]]
    a, b = _weights(tmp_path / "full" / "final"), _weights(tmp_path / "resumed" / "final")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=0, msg=name)
