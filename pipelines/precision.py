"""Which floating-point types a device computes natively, the dtype Red Heart computes in there, and the machine
line every benchmark prints.

Weights are stored small (bfloat16), but on a CPU without native bf16 instructions (AVX-512 BF16 or AMX) torch
emulates bf16 arithmetic: measured on an AVX2 machine, the 675M system ran 2.5x slower in bf16 than in fp32,
and bf16-autocast fine-tuning 25x slower. ``dtype="auto"`` -- the default of the pipeline, the orchestrator (and
so the serving layer), the encoder bank and every benchmark -- therefore computes in the fastest dtype the device
runs natively, whatever the stored dtype: bfloat16 on a GPU with bf16 and on a CPU with AVX-512 BF16 or AMX,
float32 everywhere else (float16 is never picked: its range overflows where bf16's does not). An explicit dtype
is computed as asked, with a one-time warning naming the cost when the device emulates it; an unknown name is a
``ValueError`` that lists the accepted ones, raised before anything is loaded where the caller allows.

A benchmark's ``--isa avx2`` (:func:`redheart.pipelines.isa_hold.limit_isa`) reruns it with torch, oneDNN, MKL
and FBGEMM held to their AVX2 kernels (:data:`ISA_LIMITS`), so that an AVX-512 machine measures what an AVX2 CPU
runs: the same kernel choices, not that CPU's clock or memory. onnxruntime reads no such variable and picks its
kernels from CPUID; where the CPU has CPUID faulting, the rerun also preloads a library
(:mod:`redheart.pipelines.isa_hold`) that makes CPUID itself report an AVX2 CPU, so onnxruntime is held too.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

HALF_DTYPES = (torch.bfloat16, torch.float16)
#: /proc/cpuinfo flags of native CPU bf16 matrix arithmetic.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
#: Environment override of :func:`cpu_has_native_bf16` ("0" or "1").
CPU_BF16_ENV = "RH_CPU_BF16"
#: ``dtype="auto"``: the fastest dtype the device computes natively (:func:`fastest_dtype`).
AUTO = "auto"
#: The dtypes a caller may ask for by name (or as the torch dtype itself).
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
#: Every accepted ``dtype`` name, e.g. for a command line's ``choices``.
DTYPE_CHOICES = (AUTO, *DTYPES)
#: The environment that holds torch (ATen), oneDNN, MKL and FBGEMM (torch's int8 kernels) to one vector level's
#: kernels; each library reads it when it starts.
ISA_LIMITS: dict[str, dict[str, str]] = {
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2",
    },
}
#: The symbol the CPUID hold's library exports (1 when CPUID answers are masked).
CPUID_HELD_SYMBOL = "redheart_cpuid_held"


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


def cpu_has_native_bf16() -> bool:
    """Whether the CPU has bf16 matrix instructions (AVX-512 BF16 or AMX), so torch need not emulate bf16.

    ``RH_CPU_BF16=0`` (or ``1``) overrides the detection: to keep float32 on a bf16 CPU (the test suite does, so
    its float tolerances hold on every machine) or to force bf16 where the flags are hidden (some VMs)."""
    forced = os.environ.get(CPU_BF16_ENV)
    if forced in ("0", "1"):
        return forced == "1"
    # torch's bf16 kernels need its AVX-512 level: held to AVX2 (ATEN_CPU_CAPABILITY), it emulates bf16 too.
    avx512 = torch.backends.cpu.get_cpu_capability().startswith("AVX512")
    return avx512 and any(f in cpu_flags() for f in BF16_CPU_FLAGS)


def isa_limit() -> str | None:
    """The vector level this process's kernels are held to by the environment of :data:`ISA_LIMITS` (None: the
    CPU's own)."""
    for level, env in ISA_LIMITS.items():
        if all(os.environ.get(name) == value for name, value in env.items()):
            return level
    return None


def cpuid_held() -> bool:
    """Whether this process's CPUID answers are masked by the preloaded hold of :mod:`.isa_hold` (Linux only)."""
    if platform.system() != "Linux":
        return False
    probe = getattr(ctypes.CDLL(None), CPUID_HELD_SYMBOL, None)
    return bool(probe and probe())


def cpu_capability() -> str:
    """torch's vector-instruction level of this CPU, e.g. ``AVX2`` or ``AVX512``, with ``+bf16`` when native."""
    level = torch.backends.cpu.get_cpu_capability()
    return f"{level}+bf16" if cpu_has_native_bf16() else level


def native_dtypes(device: torch.device | str) -> frozenset[torch.dtype]:
    """The dtypes ``device`` computes without emulation."""
    device = torch.device(device)
    if device.type == "cuda":
        # including_emulation=False: a pre-Ampere GPU "supports" bf16 only by emulating it.
        bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
        return frozenset({torch.float32, torch.float16, *([torch.bfloat16] if bf16 else [])})
    if device.type == "cpu" and cpu_has_native_bf16():
        return frozenset({torch.float32, torch.bfloat16})
    return frozenset({torch.float32})


def fastest_dtype(device: torch.device | str) -> torch.dtype:
    """What ``dtype="auto"`` computes in on ``device``: bfloat16 where it is native, else float32."""
    return torch.bfloat16 if torch.bfloat16 in native_dtypes(device) else torch.float32


def dtype_name(dtype: torch.dtype | str | None) -> str | None:
    """``torch.bfloat16`` -> ``"bfloat16"`` (names pass through; None stays None), as outputs report it."""
    return None if dtype is None else str(dtype).replace("torch.", "")


def parse_dtype(value: Any) -> torch.dtype | None:
    """None for ``"auto"`` (or None), else the requested torch dtype; anything else is a ``ValueError``.

    Checked up front because transformers turns an unknown name into ``getattr(torch, name)``, an
    AttributeError far from the argument that caused it.
    """
    if value is None or (isinstance(value, str) and value == AUTO):
        return None
    if isinstance(value, str) and value in DTYPES:
        return DTYPES[value]
    if isinstance(value, torch.dtype) and value in DTYPES.values():
        return value
    accepted = ", ".join(repr(name) for name in DTYPE_CHOICES)
    raise ValueError(
        f"dtype={value!r} is not supported; use one of {accepted} (or torch.float32 / torch.bfloat16 / "
        "torch.float16); 'auto' computes in the fastest dtype this device runs natively"
    )


def resolve_dtype(requested: Any, device: torch.device | str) -> torch.dtype:
    """The dtype to compute in on ``device``: ``"auto"`` -> :func:`fastest_dtype`; an explicit dtype -> itself,
    with the one-time :func:`warn_emulated` when the device would emulate it. Unknown names raise ValueError."""
    dtype = parse_dtype(requested)
    if dtype is None:
        return fastest_dtype(device)
    if dtype not in native_dtypes(device):
        warn_emulated(dtype, str(torch.device(device)))
    return dtype


@functools.cache
def warn_emulated(dtype: torch.dtype, device: str) -> None:
    """One warning per process (per dtype and device) when an explicitly requested dtype is emulated there."""
    where = (
        f"this CPU ({cpu_capability()}, no AVX-512 BF16 or AMX)" if device == "cpu" else f"device {device}"
    )
    warnings.warn(
        f"dtype={dtype_name(dtype)} is emulated on {where}: measured on an AVX2 CPU, bf16 inference ran 2.5x "
        "slower than float32 (bf16-autocast fine-tuning 25x slower). Use dtype='auto' to compute in the "
        "fastest dtype this device runs natively.",
        stacklevel=3,
    )


# ------------------------------------------------------------------------------------------------------------
# The machine a figure was measured on (every benchmark prints this line and stores the dict)
# ------------------------------------------------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    """The 1/5/15-minute load average: on a shared machine other processes change the figures."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine_info(
    dtype: torch.dtype | str | None = None, device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """Where a figure was measured: CPU, CPU capability, torch, threads, device, and the dtype computed in."""
    device = torch.device(device)
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_capability": cpu_capability(),
        "native_bf16_cpu": cpu_has_native_bf16(),
        "isa_limit": isa_limit(),
        "cpuid_held": cpuid_held(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "dtype": dtype_name(dtype),
        "load_average": load_average(),
    }


def machine_line(info: Mapping[str, Any]) -> str:
    """One header line of :func:`machine_info` (the same words in every benchmark, so runs compare)."""
    bf16 = "native bf16" if info["native_bf16_cpu"] else "bf16 emulated"
    parts = [
        f"machine: {info['cpu']}",
        f"{info['cores']} cores",
        f"CPU capability {info['cpu_capability']} ({bf16})",
        *(
            [f"kernels held to {info['isa_limit']} by {', '.join(ISA_LIMITS[info['isa_limit']])}"]
            if info.get("isa_limit")
            else []
        ),
        *(["CPUID masked to AVX2 (onnxruntime held too)"] if info.get("cpuid_held") else []),
        f"torch {info['torch']}",
        f"torch threads {info['threads']}",
        f"device {info['device']}" + (f" ({info['gpu']})" if info.get("gpu") else ""),
    ]
    if info.get("dtype"):
        parts.append(f"computes in {info['dtype']}")
    parts.append(f"load average (1/5/15 min) {info['load_average']}")
    return " | ".join(parts)
