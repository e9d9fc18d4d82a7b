"""ProductionOrchestrator: async processing, micro-batching, feature cache, metrics, modalities, errors."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from transformers import pipeline

import redheart  # noqa: F401
from redheart.configuration_redheart.presets import preset_kwargs
from redheart.configuration_redheart.tasks import TASK_LOSSES
from redheart.encoders.testing import build_tiny_system
from redheart.pipelines import InputError, ProductionConfig, ProductionOrchestrator
from redheart.pipelines.orchestrator import auto_encoder_workers
from redheart.pipelines.result import DSP_DEPENDENT, DSP_UNTRAINED

KO = "친구와의 약속을 어기고 야근을 했다."
EN = "I broke my promise to a friend and worked late."
TEXTS = [
    EN,
    "I lied to my parents.",
    "The movie was great!",
    "I returned the wallet I found.",
    "I am not sure the decision was right.",
    "My brother helped me.",
]


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    auxiliary = {
        **preset_kwargs("tiny")["auxiliary"],
        "audio_num_mel_bins": 64,
    }  # the signal front end's bands
    return build_tiny_system(tmp_path_factory.mktemp("orch"), max_length=48, auxiliary=auxiliary)


@pytest.fixture(scope="module")
def reference(system):
    return pipeline("ethics-emotion", model=str(system))


def _orchestrator(system, **kwargs):
    return ProductionOrchestrator(ProductionConfig(model=str(system), **kwargs))


def _same(a, b):
    assert a["analysis"]["emotion"]["labels"] == pytest.approx(b["analysis"]["emotion"]["labels"], abs=1e-5)
    assert a["integrated"] == pytest.approx(b["integrated"], abs=1e-5)


def test_process_equals_the_pipeline_and_reports_metrics(system, reference):
    async def main():
        async with _orchestrator(system) as orch:
            first = await orch.process(text=KO)
            second = await orch.process(text=KO)  # served from the feature cache
            return first, second, orch.metrics()

    first, second, metrics = asyncio.run(main())
    _same(first, reference(KO))
    _same(second, first)
    assert metrics["cache"]["hits"] >= 2 and metrics["cache"]["misses"] == 2  # two encoders read KO once
    stages = metrics["stages"]
    for stage in (
        "queue",
        "preprocess",
        "encoders",
        "encoder:enc_a",
        "encoder:enc_b",
        "model",
        "postprocess",
        "request",
    ):
        assert stages[stage]["count"] >= 1 and stages[stage]["p50_ms"] >= 0, stage
    assert stages["request"]["count"] == 2


def test_concurrent_requests_are_micro_batched(system, reference):
    async def main():
        async with _orchestrator(system, max_wait_ms=200, cache_size=0) as orch:
            results = await asyncio.gather(*(orch.process(text=t) for t in TEXTS))
            return results, orch.metrics()

    results, metrics = asyncio.run(main())
    for text, result in zip(TEXTS, results, strict=True):
        _same(result, reference(text))
    assert metrics["stages"]["queue"]["count"] == len(TEXTS)
    assert metrics["stages"]["model"]["count"] < len(TEXTS)  # several requests shared a model call
    assert metrics["cache"] is None


def test_bad_request_fails_alone(system, reference):
    long_text = " ".join([EN] * 40)

    async def main():
        async with _orchestrator(system, max_wait_ms=200, call_options={"max_chunks": 1}) as orch:
            return await asyncio.gather(
                orch.process(text=EN),
                orch.process(text=long_text),
                orch.process(text=""),
                orch.process(text=None),
                orch.process(text=KO),
                return_exceptions=True,
            )

    ok, too_long, empty, missing, ok_ko = asyncio.run(main())
    assert isinstance(too_long, InputError) and "max_chunks=1" in str(too_long)
    assert isinstance(empty, InputError) and "empty" in str(empty)
    assert isinstance(missing, InputError) and "text is required" in str(missing)
    _same(ok, reference(EN))
    _same(ok_ko, reference(KO))


def test_process_batch_returns_error_entries(system, reference):
    async def main():
        async with _orchestrator(system) as orch:
            return await orch.process_batch(
                [EN, None, KO, "   "], alternatives=[["I kept it."], None, None, None]
            )

    results = asyncio.run(main())
    assert results[1]["error"]["index"] == 1 and results[3]["error"]["index"] == 3
    _same(results[0], reference(EN, alternatives=["I kept it."]))
    _same(results[2], reference(KO))
    assert results[0]["analysis"]["regret"]["source"] == "alternatives"


def test_image_without_a_face_is_not_an_error(system, face_analyzer):
    async def main():
        async with _orchestrator(system, face_analyzer=face_analyzer) as orch:
            return await orch.process(text=EN, image=np.zeros((8, 8, 3)))

    emotion = asyncio.run(main())["analysis"]["emotion"]
    assert emotion["face"] == [] and "no face" in emotion["face_fusion"]["note"]


def test_audio_reaches_the_dsp_encoder(system, reference):
    rate = 16000
    t = np.arange(rate) / rate
    voice = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))

    async def main():
        async with _orchestrator(system) as orch:
            with_audio = await orch.process(text=EN, audio=voice, sampling_rate=rate)
            as_tuple = await orch.process(text=EN, audio=(voice, rate))
            errors = []
            for kwargs in (
                {"audio": voice},
                {"audio": np.stack([voice, voice]), "sampling_rate": rate},
                {"audio": voice[:100], "sampling_rate": rate},
            ):
                try:
                    await orch.process(text=EN, **kwargs)
                except InputError as err:
                    errors.append(str(err))
            return with_audio, as_tuple, errors, orch.metrics()

    with_audio, as_tuple, errors, metrics = asyncio.run(main())
    assert "dsp" in with_audio["metadata"]["parts"]
    text_only = reference(EN)
    assert "dsp" not in text_only["metadata"]["parts"]
    assert with_audio["analysis"]["emotion"]["labels"] != text_only["analysis"]["emotion"]["labels"]
    _same(as_tuple, with_audio)
    assert len(errors) == 3 and "sampling rate" in errors[0] and "1-D" in errors[1] and "audio:" in errors[2]
    assert metrics["stages"]["audio_features"]["count"] >= 2


def test_outputs_fed_by_the_untrained_dsp_encoder_are_listed_untrained(tmp_path):
    auxiliary = {**preset_kwargs("tiny")["auxiliary"], "audio_num_mel_bins": 64}
    model_dir = build_tiny_system(
        tmp_path, max_length=48, auxiliary=auxiliary, trained_tasks=list(TASK_LOSSES)
    )
    rate = 16000
    voice = 0.3 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate)

    async def main():
        async with _orchestrator(model_dir) as orch:
            return await orch.process(text=EN), await orch.process(text=EN, audio=voice, sampling_rate=rate)

    text_only, with_audio = asyncio.run(main())
    assert text_only["metadata"]["untrained"] == []
    trained = {p for p, g in text_only["metadata"]["grounding"].items() if g["status"] == "trained"}
    assert set(with_audio["metadata"]["untrained"]) == trained & set(DSP_DEPENDENT)
    assert {
        "analysis.emotion.labels",
        "analysis.emotion.sentiment",
        "integrated.overall_sentiment",
    } <= trained
    assert with_audio["metadata"]["grounding"]["integrated.confidence"]["source"] == DSP_UNTRAINED
    assert with_audio["metadata"]["grounding"]["analysis.bentham.utility"]["status"] == "trained"


def test_audio_needs_matching_mel_bins(tmp_path):
    model_dir = build_tiny_system(tmp_path)  # the tiny preset's 16 mel bins, not the front end's 64

    async def main():
        async with _orchestrator(model_dir) as orch:
            await orch.process(text=EN, audio=np.zeros(16000), sampling_rate=16000)

    with pytest.raises(ValueError, match="16 mel bins.*produces 64"):
        asyncio.run(main())


def test_orchestrator_survives_a_new_event_loop_and_validates_its_config(system):
    orch = _orchestrator(system)
    first = asyncio.run(orch.process(text=EN))
    second = asyncio.run(orch.process(text=EN))  # a new loop: the worker is restarted in it
    _same(first, second)
    asyncio.run(orch.aclose())
    with pytest.raises(ValueError, match="max_batch_size"):
        ProductionConfig(model="x", max_batch_size=0)
    with pytest.raises(ValueError, match="cannot set 'errors'"):
        ProductionOrchestrator(ProductionConfig(model=str(system), call_options={"errors": "raise"}))
    assert auto_encoder_workers(1, None) == 1 and auto_encoder_workers(3, "cuda") == 3
