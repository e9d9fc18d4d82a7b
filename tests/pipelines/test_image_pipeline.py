"""Images in the pipeline and the orchestrator: real pictures, the fused result, and bad images failing alone."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from transformers import pipeline

import redheart
from redheart.encoders.image import FACE_GROUNDING
from redheart.pipelines import InputError, ProductionConfig, ProductionOrchestrator
from redheart.pipelines.text import InputTypeError

data = pytest.importorskip("skimage.data", reason="the real test pictures ship with scikit-image")
Image = pytest.importorskip("PIL.Image", reason="image tests need the vision extra")

SCHEMA = json.loads((Path(redheart.pipelines.__file__).parent / "analysis.schema.json").read_text())
EN = "We finally won the match and everyone was cheering."
KO = "드디어 경기에서 이겨서 모두가 환호했다."


@pytest.fixture(scope="module")
def pipe(tiny_system, face_analyzer):
    return pipeline("ethics-emotion", model=str(tiny_system), face_analyzer=face_analyzer)


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def _without_image_parts(result: dict) -> dict:
    """The text-only fields of a result with an image."""
    out = json.loads(json.dumps(result))
    emotion, integrated, meta = out["analysis"]["emotion"], out["integrated"], out["metadata"]
    emotion["core"] = emotion.pop("core_text")
    for key in ("face", "face_fusion"):
        emotion.pop(key)
    integrated.update(integrated.pop("text_only"))
    integrated.pop("face_effect")
    meta.pop("image")
    for path in ("analysis.emotion.core_text", "analysis.emotion.face"):
        meta["grounding"].pop(path)
    for grounding in meta["grounding"].values():
        grounding.pop("source", None)
    meta["untrained"].remove("analysis.emotion.core_text")
    meta["formulas"].pop("face_fusion", None)
    meta["formulas"].pop("confidence", None)
    meta["formulas"]["overall_sentiment"] = "emotion.sentiment"
    return out


def test_a_smiling_photo_joins_the_text_analysis(pipe, tiny_pipeline, astronaut):
    text_only = pipe(EN)
    assert text_only == tiny_pipeline(EN)  # a text-only result is what it always was
    result = pipe(EN, image=astronaut)
    jsonschema.validate(result, SCHEMA)
    jsonschema.validate(text_only, SCHEMA)
    emotion, integrated = result["analysis"]["emotion"], result["integrated"]
    (face,) = emotion["face"]
    assert face["top"]["label"] == "happy" and face["top"]["score"] > 0.9
    assert emotion["face_fusion"]["applied"] and emotion["face_fusion"]["faces"] == 1
    assert emotion["core"]["joy"] > emotion["core_text"]["joy"]
    assert emotion["core"]["sadness"] < emotion["core_text"]["sadness"]
    effect = integrated["face_effect"]
    assert integrated["overall_sentiment"] > integrated["text_only"]["overall_sentiment"]
    assert effect["overall_sentiment"] == pytest.approx(
        integrated["overall_sentiment"] - integrated["text_only"]["overall_sentiment"]
    )
    assert effect["confidence"] == pytest.approx(
        integrated["confidence"] - integrated["text_only"]["confidence"]
    )
    meta = result["metadata"]
    assert meta["grounding"]["analysis.emotion.face"] == {
        "status": "pretrained",
        "task": None,
        "source": FACE_GROUNDING,
    }
    assert meta["image"]["faces"] == 1 and meta["image"]["source"] == "array"
    assert "face_fusion" in meta["formulas"]
    assert _without_image_parts(result) == text_only  # the image changes only what it says it changes


def test_no_face_gives_an_empty_list_and_a_note(pipe):
    text_only = pipe(EN)
    result = pipe(EN, image=data.coffee())
    jsonschema.validate(result, SCHEMA)
    emotion = result["analysis"]["emotion"]
    assert emotion["face"] == [] and not emotion["face_fusion"]["applied"]
    assert "no face" in emotion["face_fusion"]["note"]
    assert emotion["core"] == emotion["core_text"] == text_only["analysis"]["emotion"]["core"]
    assert result["integrated"]["overall_sentiment"] == text_only["integrated"]["overall_sentiment"]
    assert result["integrated"]["face_effect"]["overall_sentiment"] == 0.0


def test_one_image_per_text_in_any_form(pipe, astronaut, tmp_path):
    path = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut).save(path, "JPEG", quality=95)
    results = pipe(
        [EN, KO, {"text": EN, "image": _png(astronaut)}, EN],
        image=[np.hstack([astronaut, astronaut]), str(path), None, Image.fromarray(astronaut[:, ::-1])],
    )
    two, from_path, from_bytes, mirrored = (r["analysis"]["emotion"]["face"] for r in results)
    assert [f["top"]["label"] for f in two] == ["happy", "happy"] and two[0]["box"]["x"] < two[1]["box"]["x"]
    assert [f["top"]["label"] for f in from_path + from_bytes + mirrored] == ["happy"] * 3
    assert results[1]["metadata"]["image"]["format"] == "JPEG"
    assert results[3]["metadata"]["image"]["source"] == "pil"
    for result in results:
        jsonschema.validate(result, SCHEMA)


def test_a_bad_image_fails_only_its_item(pipe, astronaut):
    png = _png(astronaut)
    images = [astronaut, png[: len(png) // 2], b"hello", np.zeros((8, 8), np.int64), {"pixels": 1}, None]
    results = pipe([EN] * len(images), image=images, errors="return")
    assert results[0]["analysis"]["emotion"]["face"][0]["top"]["label"] == "happy"
    assert "face" not in results[5]["analysis"]["emotion"]
    errors = [r["error"] for r in results[1:5]]
    assert [e["index"] for e in errors] == [1, 2, 3, 4]
    assert "corrupt or truncated PNG" in errors[0]["message"]
    assert "expected one of JPEG" in errors[1]["message"]
    assert "dtype int64 is not supported; expected uint8" in errors[2]["message"]
    assert errors[3]["type"] == "InputTypeError" and "expected a file path" in errors[3]["message"]
    with pytest.raises(InputError, match=r"input \[1\]: image: corrupt or truncated PNG"):
        pipe([EN, EN], image=[astronaut, png[:100]])
    with pytest.raises(InputTypeError, match="image: got list"):
        pipe(EN, image=[astronaut])


def test_image_options_and_misuse(pipe, astronaut):
    with pytest.raises(InputError, match="more than max_pixels=100,000"):
        pipe(EN, image=astronaut, image_max_pixels=100_000, image_oversize="error")
    small = pipe(EN, image=astronaut, image_max_pixels=200_000)
    assert small["metadata"]["image"]["downscaled"] and small["metadata"]["image"]["original_size"] == [
        512,
        512,
    ]
    with pytest.raises(ValueError, match="oversize must be one of"):
        pipe(EN, image=astronaut, image_oversize="crop")
    with pytest.raises(ValueError, match="image= must be a list of the same length"):
        pipe([EN, EN], image=[astronaut])
    with pytest.raises(ValueError, match="image given both"):
        pipe([{"text": EN, "image": astronaut}], image=[astronaut])


def test_the_orchestrator_reads_images(tiny_system, face_analyzer, pipe, astronaut):
    config = ProductionConfig(model=str(tiny_system), face_analyzer=face_analyzer, max_wait_ms=50)

    async def main():
        async with ProductionOrchestrator(config) as orch:
            single = await orch.process(text=EN, image=astronaut)
            bad = await asyncio.gather(orch.process(text=EN, image=b"not an image"), return_exceptions=True)
            batch = await orch.process_batch([EN, KO], image=[None, b"not an image"])
            with pytest.raises(ValueError, match="one entry"):
                await orch.process_batch([EN, KO], image=[astronaut])
            return single, bad[0], batch, orch.metrics()

    single, bad, batch, metrics = asyncio.run(main())
    expected = pipe(EN, image=astronaut)
    assert single["analysis"]["emotion"]["face"] == expected["analysis"]["emotion"]["face"]
    for key in ("overall_sentiment", "confidence"):
        assert single["integrated"][key] == pytest.approx(expected["integrated"][key], abs=1e-5)
    assert isinstance(bad, InputError) and "expected one of JPEG" in str(bad)
    assert "face" not in batch[0]["analysis"]["emotion"] and batch[1]["error"]["index"] == 1
    assert metrics["stages"]["face"]["count"] >= 1
