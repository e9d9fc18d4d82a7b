"""Training throughput and memory of a Red Heart preset: samples/s and peak memory per optimiser choice.

Run:  python benchmarks/bench_training.py --preset small [--optim adamw|adamw8bit] [--micro-batch 16] [--seq 128]
                                        [--dtype auto|float32|bfloat16|float16] [--checkpointing] [--steps 5]
                                        [--warmup 2] [--json OUT] [--isa avx2]

The encoders are frozen with cached features in real training, so a step here starts from encoder hidden
states: random ``[micro-batch, seq, hidden]`` tensors for every enabled encoder of the preset (their real
hidden sizes), with real padding, and valid labels for every task (the losses of all heads run). Reported:
samples/s over the timed steps, seconds per step, and the memory report of the training loop (weights,
gradients, optimiser state, activations saved for backward; ``torch.cuda.max_memory_allocated`` on CUDA, the
process's peak RSS on CPU). Without CUDA the GPU figure the design targets (330m, 8-bit AdamW, bf16,
activation checkpointing, micro-batch 16, seq 128: < 8 GB) is printed as open.

The weights stay float32; ``--dtype`` is the autocast dtype of the forward pass: ``auto`` (default) autocasts to
bfloat16 where the device computes it natively (a GPU with bf16, a CPU with AVX-512 BF16 or AMX) and not at all
elsewhere -- bf16-autocast fine-tuning ran 25x slower on a CPU that emulates bf16 -- an explicit half dtype
autocasts as asked (warned once when emulated), ``float32`` never (``--bf16`` = ``--dtype bfloat16``). The header
line names the CPU capability and the dtype chosen (``redheart.pipelines.precision``).
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import nullcontext

import torch

from redheart.configuration_redheart import RedHeartConfig
from redheart.modeling_redheart import RedHeartModel
from redheart.pipelines.isa_hold import add_isa_argument, limit_isa
from redheart.pipelines.precision import (
    DTYPE_CHOICES,
    dtype_name,
    machine_info,
    machine_line,
    resolve_dtype,
)
from redheart.training.config import TrainConfig
from redheart.training.memory import ActivationMeter, format_memory_report, memory_report
from redheart.training.trainer import build_optimizer

TARGET = "330m preset + 8-bit AdamW + bf16 autocast + activation checkpointing, micro-batch 16, seq 128"
#: Accelerate's name of each autocast dtype (what the memory report prints).
MIXED_PRECISION = {torch.float32: "no", torch.bfloat16: "bf16", torch.float16: "fp16"}


def synthetic_batch(
    config: RedHeartConfig, batch: int, seq: int, device: torch.device, seed: int = 0
) -> dict:
    gen = torch.Generator().manual_seed(seed)
    states, masks = {}, {}
    for name in config.enabled_encoders:
        hidden = config.encoders[name]["hidden_size"]
        states[name] = torch.randn(batch, seq, hidden, generator=gen)
        mask = torch.ones(batch, seq, dtype=torch.long)
        lengths = torch.randint(seq // 4, seq + 1, (batch,), generator=gen)
        for i, n in enumerate(lengths.tolist()):
            mask[i, n:] = 0
        masks[name] = mask
    emotion = (torch.rand(batch, len(config.emotion_labels), generator=gen) < 0.1).float()
    kote = (torch.rand(batch, len(config.kote_labels), generator=gen) < 0.1).float()
    surd = torch.rand(batch, 4, generator=gen)
    half = batch // 2
    out = {
        "encoder_hidden_states": states,
        "encoder_attention_mask": masks,
        "language_ids": torch.randint(0, 2, (batch,), generator=gen),
        "emotion_labels": emotion,
        "kote_labels": kote,
        "sentiment_labels": torch.rand(batch, generator=gen) * 2 - 1,
        "acceptability_labels": torch.randint(0, 2, (batch, 4), generator=gen).float(),
        "utility_pairs": torch.stack([torch.arange(half), torch.arange(half) + half], dim=1),
        "regret_labels": torch.rand(batch, generator=gen),
        "surd_labels": surd / surd.sum(-1, keepdim=True),
    }
    return {
        k: ({n: t.to(device) for n, t in v.items()} if isinstance(v, dict) else v.to(device))
        for k, v in out.items()
    }


def run(
    preset: str,
    optim: str,
    micro_batch: int,
    seq: int,
    dtype: str | torch.dtype,
    checkpointing: bool,
    steps: int,
    warmup: int,
) -> dict:
    """One timed run; ``dtype`` is the autocast dtype asked for (``"auto"``: by the device's capability)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    compute = resolve_dtype(dtype, device)
    config = RedHeartConfig.from_preset(preset)
    config.backbone.max_fused_tokens = max(
        config.backbone.max_fused_tokens, seq * len(config.enabled_encoders)
    )
    torch.manual_seed(0)
    model = RedHeartModel(config).to(device).train()
    if checkpointing:
        model.activation_checkpointing_enable()
    cfg = TrainConfig()
    cfg.train.optim = optim
    optimizer = build_optimizer(model, cfg)
    batch = synthetic_batch(config, micro_batch, seq, device)
    autocast = (
        (lambda: torch.autocast(device.type, dtype=compute)) if compute != torch.float32 else nullcontext
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    meter = ActivationMeter()
    times = []
    for step in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with meter.record() if step == 0 else nullcontext(), autocast():
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    report = memory_report(
        model,
        optimizer,
        meter.bytes,
        device,
        micro_batch_size=micro_batch,
        optim=optim,
        mixed_precision=MIXED_PRECISION[compute],
        activation_checkpointing=checkpointing,
    )
    seconds = sum(times) / len(times)
    return {
        "preset": preset,
        "optim": optim,
        "micro_batch": micro_batch,
        "seq_per_encoder": seq,
        "encoders": len(config.enabled_encoders),
        "dtype": dtype_name(compute),
        "bf16": compute == torch.bfloat16,
        "activation_checkpointing": checkpointing,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "seconds_per_step": seconds,
        "samples_per_second": micro_batch / seconds,
        "timed_steps": steps,
        "memory": report,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="small", choices=("tiny", "small", "330m"))
    p.add_argument("--optim", default="adamw", choices=("adamw", "adamw8bit"))
    p.add_argument("--micro-batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=128, help="tokens per encoder")
    p.add_argument(
        "--dtype",
        default="auto",
        choices=DTYPE_CHOICES,
        help="autocast dtype (default auto: bf16 where the device computes it natively, else none)",
    )
    p.add_argument("--bf16", action="store_true", help="the same as --dtype bfloat16")
    p.add_argument("--checkpointing", action="store_true")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--json", default=None, help="also write the result here")
    add_isa_argument(p)
    args = p.parse_args()
    limit_isa(args.isa)
    dtype = "bfloat16" if args.bf16 else args.dtype
    result = run(
        args.preset,
        args.optim,
        args.micro_batch,
        args.seq,
        dtype,
        args.checkpointing,
        args.steps,
        args.warmup,
    )
    result["machine"] = machine_info(result["dtype"], result["device"])
    autocast = "no autocast (float32)" if result["dtype"] == "float32" else f"{result['dtype']} autocast"
    print(machine_line(result["machine"]))
    print(
        f"{args.preset} / {args.optim} / micro-batch {args.micro_batch} / seq {args.seq} x {result['encoders']} "
        f"encoder(s) / dtype {dtype} -> {autocast} / checkpointing {args.checkpointing}: "
        f"{result['samples_per_second']:.2f} samples/s, {result['seconds_per_step']:.3f} s/step"
    )
    print(format_memory_report(result["memory"]))
    if not torch.cuda.is_available():
        print(
            f"GPU figure ({TARGET}, target < 8 GB): open -- no CUDA device here; run this script with "
            "--preset 330m --optim adamw8bit --bf16 --checkpointing --micro-batch 16 --seq 128 on a GPU"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
