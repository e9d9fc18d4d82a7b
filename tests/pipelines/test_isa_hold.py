"""The benchmarks' ``--isa``: real processes rerun held, the CPUID hold's answers read by a separately compiled probe."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from redheart.pipelines import isa_hold
from redheart.pipelines.isa_hold import limit_isa, onnx_hold_refusal
from redheart.pipelines.precision import CPU_BF16_ENV, ISA_LIMITS

REASON = isa_hold.unavailable_reason("avx2")
needs_hold = pytest.mark.skipif(REASON is not None, reason=f"no CPUID hold on this machine: {REASON}")

#: Prints CPUID leaf 7's AVX512F (EBX bit 16) and AVX512-VNNI (ECX bit 11), and leaf 7.1's AVX512-BF16 (EAX bit 5).
PROBE = r"""
#include <cpuid.h>
#include <stdio.h>
int main(void) {
    unsigned a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    printf("avx512f=%u avx512vnni=%u ", (b >> 16) & 1, (c >> 11) & 1);
    __cpuid_count(7, 1, a, b, c, d);
    printf("avx512bf16=%u\n", (a >> 5) & 1);
    return 0;
}
"""


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any ISA limit or preload, plus ``extra``."""
    dropped = {*ISA_LIMITS["avx2"], "LD_PRELOAD", CPU_BF16_ENV}
    return {**{k: v for k, v in os.environ.items() if k not in dropped}, **extra}


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("probe")
    (folder / "probe.c").write_text(PROBE)
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    subprocess.run([compiler, str(folder / "probe.c"), "-o", str(folder / "probe")], check=True)
    return folder / "probe"


def features(probe: Path, **environment: str) -> dict[str, int]:
    out = subprocess.run([str(probe)], env=clean_environment(**environment), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return {k: int(v) for k, v in (pair.split("=") for pair in out.stdout.split())}


@needs_hold
def test_the_hold_clears_the_avx512_bits_cpuid_reports(probe):
    if not features(probe)["avx512f"]:  # the probe without the library sees the CPU's own bits
        pytest.skip("this CPU has no AVX-512 to hide: the hold could not change what CPUID reports")
    held = features(probe, **isa_hold.preload_environment("avx2", {}))
    assert held == {"avx512f": 0, "avx512vnni": 0, "avx512bf16": 0}


@needs_hold
def test_torch_reads_avx2_from_cpuid_alone():
    """No ATEN_CPU_CAPABILITY: torch's own CPU detection reads the masked CPUID, and cpuid_held() says so."""
    code = (
        "import torch\n"
        "from redheart.pipelines.precision import cpuid_held\n"
        "print(torch.backends.cpu.get_cpu_capability(), cpuid_held())\n"
    )
    env = clean_environment(**isa_hold.preload_environment("avx2", {}))
    held = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert held.returncode == 0, held.stderr
    assert held.stdout.split() == ["AVX2", "True"]
    free = subprocess.run(
        [sys.executable, "-c", code], env=clean_environment(), capture_output=True, text=True
    )
    assert free.stdout.split()[1] == "False"


@needs_hold
@pytest.mark.parametrize("faulthandler", [False, True])
def test_a_real_segmentation_fault_still_kills_the_process(faulthandler):
    """The library answers CPUID traps only: a real fault reaches the default action, or a handler installed
    later (Python's faulthandler) that the library chains behind its own."""
    code = "import ctypes, torch\nprint('before', flush=True)\nctypes.string_at(0)\nprint('after')\n"
    argv = [sys.executable, *(["-X", "faulthandler"] if faulthandler else []), "-c", code]
    env = clean_environment(**isa_hold.preload_environment("avx2", {}))
    run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == -signal.SIGSEGV
    assert run.stdout.split() == ["before"]
    assert ("Fatal Python error: Segmentation fault" in run.stderr) == faulthandler


@needs_hold
def test_the_library_is_built_once_per_source():
    first = isa_hold.library("avx2")
    assert first.is_file() and first.name.startswith("cpuid_avx2-")
    isa_hold.library.cache_clear()
    assert isa_hold.library("avx2") == first  # found in the cache, keyed by the source's digest


def test_a_level_without_a_hold_says_so():
    with pytest.raises(
        isa_hold.CpuidHoldUnavailable, match="no CPUID hold for 'avx3'; there is one for avx2"
    ):
        isa_hold.library("avx3")


def test_without_cpuid_faulting_onnx_is_refused(monkeypatch):

    monkeypatch.setattr(isa_hold, "cpu_flags", lambda: frozenset({"avx2"}))
    isa_hold.library.cache_clear()
    try:
        refusal = onnx_hold_refusal("avx2")
    finally:
        isa_hold.library.cache_clear()
    assert refusal is not None and "no CPUID faulting ('cpuid_fault')" in refusal
    assert onnx_hold_refusal(None) is None


def test_the_preload_goes_first_and_keeps_the_others(monkeypatch):
    monkeypatch.setattr(isa_hold, "library", lambda level: Path("/x/cpuid_avx2-1.so"))
    environment = {"LD_PRELOAD": "/lib/other.so /x/cpuid_avx2-1.so"}
    assert isa_hold.preload_environment("avx2", environment) == {
        "LD_PRELOAD": "/x/cpuid_avx2-1.so /lib/other.so"
    }


def test_the_avx2_limit_reruns_a_real_process_held_to_avx2(tmp_path):
    """limit_isa reruns the process with ISA_LIMITS' environment, and torch (not a fake) then runs at AVX2."""
    script = tmp_path / "held.py"
    script.write_text(
        "import sys\n"
        "print('started', flush=True)\n"
        "from redheart.pipelines.isa_hold import limit_isa\n"
        "from redheart.pipelines.precision import fastest_dtype, isa_limit, machine_info, machine_line\n"
        "limit_isa(sys.argv[1])\n"
        "import torch\n"
        "print(torch.backends.cpu.get_cpu_capability(), isa_limit(), fastest_dtype('cpu'))\n"
        "print(machine_line(machine_info('float32')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in (*ISA_LIMITS["avx2"], CPU_BF16_ENV)}
    run = subprocess.run(
        [sys.executable, str(script), "avx2"], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    started, rerun, held, line = run.stdout.splitlines()
    assert started == rerun == "started"  # once as started, once rerun with the limit
    assert held == "AVX2 avx2 torch.float32"
    assert "CPU capability AVX2 (bf16 emulated) | kernels held to avx2 by ATEN_CPU_CAPABILITY, " in line
    assert "computes in float32" in line
    preloaded = REASON is None  # the rerun preloads the CPUID hold where it can be built
    assert ("| CPUID masked to AVX2 (onnxruntime held too) |" in line) == preloaded


def test_an_unknown_isa_limit_is_a_value_error():
    with pytest.raises(ValueError, match="unknown ISA limit 'avx3'; use one of avx2"):
        limit_isa("avx3")
    limit_isa(None)  # nothing to hold: returns
