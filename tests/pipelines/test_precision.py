"""dtype by capability: what ``dtype="auto"`` computes in on each kind of CPU and GPU (the CPU faked through its
flags, the arithmetic real), that the pipeline and the orchestrator report it, and what a bad dtype gets."""

from __future__ import annotations

import asyncio
import warnings

import pytest
import torch
from transformers import pipeline

import redheart  # noqa: F401  (registers the task)
from redheart.modeling_redheart import RedHeartModel
from redheart.pipelines import ProductionConfig, ProductionOrchestrator
from redheart.pipelines.precision import (
    DTYPE_CHOICES,
    cpu_capability,
    machine_info,
    machine_line,
    parse_dtype,
    resolve_dtype,
)

EN = "I broke my promise to a friend and worked late."
AVX2 = ("AVX2", ())
AVX512 = ("AVX512", ("avx512f", "avx512_vnni"))
AVX512_BF16 = ("AVX512", ("avx512f", "avx512_bf16"))
AMX = ("AVX512", ("avx512f", "amx_tile", "amx_bf16"))
ACCEPTED = "'auto', 'float32', 'bfloat16', 'float16'"


def _encoder_dtypes(pipe) -> set[torch.dtype]:
    return {next(h.model.parameters()).dtype for h in pipe.encoders.values()}


# --------------------------------------------------------------------------------------------------------
# the choice
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cpu", "expected", "capability"),
    [
        (AVX2, torch.float32, "AVX2"),
        (AVX512, torch.float32, "AVX512"),
        (AVX512_BF16, torch.bfloat16, "AVX512+bf16"),
        (AMX, torch.bfloat16, "AVX512+bf16"),
    ],
)
def test_auto_on_a_cpu_is_bf16_only_where_native(fake_cpu, cpu, expected, capability):
    fake_cpu(*cpu)
    assert cpu_capability() == capability
    assert resolve_dtype("auto", "cpu") == expected
    assert resolve_dtype(None, torch.device("cpu")) == expected
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asking for what auto picks, or for float32, never warns
        assert resolve_dtype(expected, "cpu") == expected
        assert resolve_dtype("float32", "cpu") == torch.float32


def test_a_bf16_cpu_held_to_avx2_computes_in_float32(fake_cpu):
    fake_cpu("AVX2", AVX512_BF16[1])  # what ATEN_CPU_CAPABILITY=avx2 makes torch report on such a CPU
    assert cpu_capability() == "AVX2" and resolve_dtype("auto", "cpu") == torch.float32


@pytest.mark.parametrize(("bf16", "expected"), [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_on_a_gpu_follows_its_bf16_support(fake_cpu, monkeypatch, bf16, expected):
    fake_cpu(*AVX2)  # the host CPU does not matter for a GPU device
    asked = []

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        asked.append(including_emulation)
        return bf16

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert resolve_dtype("auto", "cuda:0") == expected
    assert asked == [False]  # a GPU that only emulates bf16 does not count
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_dtype("float16", "cuda") == torch.float16  # native on every CUDA GPU


def test_an_emulated_dtype_asked_for_is_used_and_warned_once(fake_cpu):
    fake_cpu(*AVX512)
    with pytest.warns(UserWarning, match=r"bfloat16 is emulated on this CPU \(AVX512.*2\.5x slower"):
        assert resolve_dtype("bfloat16", "cpu") == torch.bfloat16
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_dtype(torch.bfloat16, "cpu") == torch.bfloat16  # once per process


@pytest.mark.parametrize(
    "bad", ["float17", "bf16", "fp32", "torch.bfloat16", "", torch.float64, torch.int8, 16]
)
def test_an_unknown_dtype_is_a_value_error_naming_the_accepted_ones(bad):
    with pytest.raises(ValueError, match=ACCEPTED):
        parse_dtype(bad)
    with pytest.raises(ValueError, match=ACCEPTED):
        resolve_dtype(bad, "cpu")


def test_accepted_dtypes():
    assert DTYPE_CHOICES == ("auto", "float32", "bfloat16", "float16")
    assert parse_dtype("auto") is None and parse_dtype(None) is None
    assert parse_dtype("bfloat16") is torch.bfloat16 and parse_dtype(torch.float16) is torch.float16


def test_machine_line_names_capability_and_dtype(fake_cpu):
    fake_cpu(*AVX2)
    info = machine_info(torch.float32, "cpu")
    assert (
        info["cpu_capability"] == "AVX2" and info["dtype"] == "float32" and info["torch"] == torch.__version__
    )
    line = machine_line(info)
    assert "CPU capability AVX2 (bf16 emulated)" in line and "computes in float32" in line
    assert f"torch threads {torch.get_num_threads()}" in line
    fake_cpu(*AMX)
    assert "CPU capability AVX512+bf16 (native bf16)" in machine_line(machine_info("bfloat16"))


# --------------------------------------------------------------------------------------------------------
# the pipeline and the orchestrator
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cpu", "dtype", "capability"),
    [(AMX, torch.bfloat16, "AVX512+bf16"), (AVX2, torch.float32, "AVX2")],
)
def test_pipeline_auto_computes_by_capability_and_reports_it(fake_cpu, tiny_system, cpu, dtype, capability):
    fake_cpu(*cpu)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "auto" never warns
        pipe = pipeline("ethics-emotion", model=str(tiny_system))
    assert pipe.model.dtype == dtype and _encoder_dtypes(pipe) == {dtype}
    model = pipe(EN)["metadata"]["model"]
    assert model["dtype"] == str(dtype).removeprefix("torch.") and model["cpu_capability"] == capability
    assert model["backend"] == "torch" and model == pipe.describe_model()


def test_pipeline_auto_computes_a_bf16_checkpoint_in_float32_where_emulated(fake_cpu, tiny_system):
    fake_cpu(*AVX512)
    stored = RedHeartModel.from_pretrained(str(tiny_system), dtype=torch.bfloat16)
    assert stored.dtype == torch.bfloat16
    pipe = pipeline("ethics-emotion", model=stored)
    assert pipe.model.dtype == torch.float32
    assert pipe(EN)["metadata"]["model"]["dtype"] == "float32"


def test_pipeline_rejects_an_unknown_dtype(tiny_system):
    for bad in ("float17", "bf16"):
        with pytest.raises(ValueError, match=ACCEPTED):
            pipeline("ethics-emotion", model=str(tiny_system), dtype=bad)
    with pytest.raises(ValueError, match=ACCEPTED):
        pipeline("ethics-emotion", model=str(tiny_system), encoder_dtype="half")


def test_orchestrator_auto_computes_by_capability_and_reports_it(fake_cpu, tiny_system):
    fake_cpu(*AVX512_BF16)

    async def main():
        async with ProductionOrchestrator(ProductionConfig(model=str(tiny_system), cache_size=0)) as orch:
            return await orch.process(text=EN), (await orch.process_batch([EN]))[0], orch.describe()

    single, batched, described = asyncio.run(main())
    for result in (single, batched):
        assert result["metadata"]["model"]["dtype"] == "bfloat16"
        assert result["metadata"]["model"]["cpu_capability"] == "AVX512+bf16"
    assert described["model"] == single["metadata"]["model"]
    assert [e["name"] for e in described["encoders"]] == ["enc_a", "enc_b"]


def test_orchestrator_rejects_an_unknown_dtype_and_warns_about_an_emulated_one(fake_cpu, tiny_system):
    with pytest.raises(
        ValueError, match=f"ProductionConfig.dtype='float17' is not supported; use one of {ACCEPTED}"
    ):
        ProductionConfig(model=str(tiny_system), dtype="float17")
    fake_cpu(*AVX2)
    with pytest.warns(UserWarning, match="bfloat16 is emulated on this CPU"):
        orch = ProductionOrchestrator(
            ProductionConfig(model=str(tiny_system), dtype="bfloat16", cache_size=0)
        )
    assert orch.pipeline.model.dtype == torch.bfloat16 and _encoder_dtypes(orch.pipeline) == {torch.bfloat16}
    asyncio.run(orch.aclose())
