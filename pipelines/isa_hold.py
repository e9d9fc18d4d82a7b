"""A benchmark's ``--isa``: rerun the process held to one vector level's kernels, for every library in it.

torch, oneDNN, MKL and FBGEMM each read an environment variable that caps their kernels
(:data:`redheart.pipelines.precision.ISA_LIMITS`); onnxruntime reads none -- its kernel library picks from CPUID
alone. On Linux x86-64 CPUs with CPUID faulting (the ``cpuid_fault`` flag) a small preloaded library
(``cpuid_avx2.c``, compiled here once with the system C compiler into the cache) turns every CPUID instruction into
a trap it answers with the AVX-512, VNNI, BF16 and AMX bits cleared. :func:`limit_isa` reruns a benchmark with both,
so an AVX-512 machine measures the kernel choices of an AVX2 one for every library -- not that CPU's clock, caches
or memory. Benchmarks only: a saved model's shipped code does not include this module.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..cache import cache_dir
from .precision import ISA_LIMITS, cpu_flags, isa_limit

#: The C source of each level's hold.
SOURCES = {"avx2": Path(__file__).with_name("cpuid_avx2.c")}
#: The /proc/cpuinfo flag of CPUID faulting, which the hold needs.
CPUID_FAULT_FLAG = "cpuid_fault"


class CpuidHoldUnavailable(RuntimeError):
    """This machine cannot mask CPUID (another OS or CPU, no CPUID faulting, no C compiler)."""


@functools.cache
def library(level: str) -> Path:
    """The compiled hold for ``level`` (built on first use, keyed by its source); :class:`CpuidHoldUnavailable`
    says why there is none."""
    if level not in SOURCES:
        raise CpuidHoldUnavailable(f"no CPUID hold for {level!r}; there is one for {', '.join(SOURCES)}")
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise CpuidHoldUnavailable(f"CPUID faulting is a Linux x86-64 feature; this is {platform.platform()}")
    if CPUID_FAULT_FLAG not in cpu_flags():
        raise CpuidHoldUnavailable(
            f"this CPU (or its hypervisor) has no CPUID faulting ('{CPUID_FAULT_FLAG}')"
        )
    source = SOURCES[level]
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    target = cache_dir("isa", f"cpuid_{level}-{digest}.so")
    if target.is_file():
        return target
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise CpuidHoldUnavailable("building the CPUID hold needs a C compiler (cc, gcc, or $CC)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / target.name
        run = subprocess.run(
            [compiler, "-O2", "-shared", "-fPIC", str(source), "-o", str(built), "-ldl"],
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            raise CpuidHoldUnavailable(f"{compiler} could not build {source.name}: {run.stderr.strip()}")
        os.replace(built, target)
    return target


def preload_environment(level: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """``{"LD_PRELOAD": ...}`` with the hold for ``level`` ahead of what ``environ`` (default: this process's)
    preloads already."""
    environ = os.environ if environ is None else environ
    path = str(library(level))
    others = [p for p in environ.get("LD_PRELOAD", "").split() if p != path]
    return {"LD_PRELOAD": " ".join([path, *others])}


def unavailable_reason(level: str) -> str | None:
    """Why ``level`` cannot be held by CPUID here, or None when it can."""
    try:
        library(level)
    except CpuidHoldUnavailable as error:
        return str(error)
    return None


def add_isa_argument(parser) -> None:
    """A benchmark's ``--isa`` option (an argparse parser's), which :func:`limit_isa` applies."""
    parser.add_argument(
        "--isa",
        choices=sorted(ISA_LIMITS),
        default=None,
        help="hold torch, oneDNN, MKL and FBGEMM to this vector level's kernels (the process reruns with that "
        "environment), and onnxruntime too where CPUID can be masked: an AVX2 CPU's code path measured on an "
        "AVX-512 machine",
    )


def limit_isa(level: str | None) -> None:
    """Rerun this process (same interpreter and arguments) with ``ISA_LIMITS[level]`` in its environment, and
    the CPUID hold preloaded where this machine has one, unless it already runs so; ``None`` does nothing. The
    variables are read when torch starts, hence the rerun."""
    if level is None or isa_limit() == level:
        return
    if level not in ISA_LIMITS:
        raise ValueError(f"unknown ISA limit {level!r}; use one of {', '.join(ISA_LIMITS)}")
    environment = {**os.environ, **ISA_LIMITS[level]}
    if unavailable_reason(level) is None:
        environment.update(preload_environment(level))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environment)


def onnx_hold_refusal(level: str | None) -> str | None:
    """Why a benchmark must refuse ``--isa level`` for an ONNX system (onnxruntime cannot be held here), or None."""
    reason = None if level is None else unavailable_reason(level)
    return None if reason is None else f"--isa cannot hold onnxruntime here ({reason}): it reads CPUID alone"
