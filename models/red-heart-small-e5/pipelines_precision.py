"""Which floating-point types a device computes natively, and the compute dtype of a stored checkpoint.

Weights are stored small (bfloat16), but on a CPU without native bf16 instructions (AVX-512 BF16 or AMX) torch
emulates bf16 arithmetic: measured on an AVX2 machine, the 675M system ran 2.5x slower in bf16 than in fp32,
and bf16-autocast fine-tuning 25x slower. ``dtype="auto"`` therefore computes a half-precision checkpoint in
float32 on such CPUs and keeps it on hardware that runs it natively (CUDA with bf16, CPUs with AVX-512 BF16 or
AMX). A float32 checkpoint stays float32.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import torch

HALF_DTYPES = (torch.bfloat16, torch.float16)
#: /proc/cpuinfo flags of native CPU bf16 matrix arithmetic.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_capability() -> str:
    """torch's vector-instruction level of this CPU, e.g. ``AVX2`` or ``AVX512``, with ``+bf16`` when native."""
    level = torch.backends.cpu.get_cpu_capability()
    return f"{level}+bf16" if any(f in cpu_flags() for f in BF16_CPU_FLAGS) else level


def native_dtypes(device: torch.device | str) -> frozenset[torch.dtype]:
    """The dtypes ``device`` computes without emulation."""
    device = torch.device(device)
    if device.type == "cuda":
        half = {torch.float16} | ({torch.bfloat16} if torch.cuda.is_bf16_supported() else set())
        return frozenset({torch.float32, *half})
    if device.type == "cpu" and any(f in cpu_flags() for f in BF16_CPU_FLAGS):
        return frozenset({torch.float32, torch.bfloat16})
    return frozenset({torch.float32})


def compute_dtype(stored: torch.dtype, device: torch.device | str) -> torch.dtype:
    """``stored`` where the device runs it natively, else float32."""
    return stored if stored in native_dtypes(device) else torch.float32


@functools.cache
def warn_emulated(dtype: torch.dtype, device: str) -> None:
    """One warning per process when an explicitly requested half dtype is emulated on this device."""
    warnings.warn(
        f"dtype={str(dtype).replace('torch.', '')} is emulated on this {device} ({cpu_capability()}): measured on "
        "an AVX2 CPU, bf16 inference ran 2.5x slower than float32. Use dtype='auto' to compute in float32 here.",
        stacklevel=3,
    )
