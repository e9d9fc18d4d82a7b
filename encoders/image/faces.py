"""Find faces in a grayscale image and cut them out the way the classifier was used: the ``fer`` recipe.

Detection: OpenCV's frontal-face Haar cascade (``cv2.data.haarcascades``; OpenCV 5 dropped the cascades, hence
``opencv-python-headless<5``) with ``fer``'s settings -- scale factor 1.1, 5 neighbours, faces of at least 50
pixels. A large image is searched on a copy whose longest side is at most ``detect_max_side`` pixels (the
minimum face size shrinks with it, down to the cascade's 24-pixel window), and the boxes are mapped back.
Faces are returned left to right (then top to bottom), at most ``max_faces`` of them (the largest).

Alignment (:func:`crop_faces`), as ``fer`` does: the box is made square by growing its shorter side about the
centre, widened by ``offset`` pixels on every side, cut out of the image (outside the image, the mean of its two
bottom rows fills in), resized to 64x64 (area averaging when shrinking, bilinear when enlarging) and scaled
to [-1, 1] with ``x / 255 * 2 - 1``. There is no rotation step: the cascade finds upright frontal faces only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .mini_xception import INPUT_SIZE

__all__ = ["CASCADE", "FaceBox", "FaceDetector", "crop_faces"]

CASCADE = "haarcascade_frontalface_default.xml"
#: Side of the cascade's training window: nothing smaller can be found.
CASCADE_WINDOW = 24


@dataclass(frozen=True)
class FaceBox:
    """A face in image pixels: left, top, width, height."""

    x: int
    y: int
    width: int
    height: int

    @property
    def area(self) -> int:
        return self.width * self.height

    def scaled(self, factor: float) -> FaceBox:
        """The box in an image ``factor`` times as large."""
        return FaceBox(
            round(self.x * factor),
            round(self.y * factor),
            round(self.width * factor),
            round(self.height * factor),
        )


@dataclass
class FaceDetector:
    """OpenCV Haar-cascade face detector with ``fer``'s settings (module doc)."""

    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_face_size: int = 50
    detect_max_side: int = 1600
    max_faces: int = 16
    cascade: str = CASCADE

    def __post_init__(self) -> None:
        import cv2

        path = cv2.data.haarcascades + self.cascade
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise FileNotFoundError(f"OpenCV could not load the face cascade {path}")

    def describe(self) -> str:
        return (
            f"OpenCV {self._version()} Haar cascade {self.cascade} (scale factor {self.scale_factor}, "
            f"{self.min_neighbors} neighbours, faces >= {self.min_face_size} px)"
        )

    @staticmethod
    def _version() -> str:
        import cv2

        return cv2.__version__

    def detect(self, gray: np.ndarray) -> list[FaceBox]:
        """Faces in a ``uint8 [h, w]`` image, left to right."""
        import cv2

        height, width = gray.shape
        shrink = min(1.0, self.detect_max_side / max(height, width))
        search = gray
        if shrink < 1.0:
            size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
            search = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        smallest = max(CASCADE_WINDOW, math.ceil(self.min_face_size * shrink))
        if min(search.shape) < smallest:
            return []
        found = self._cascade.detectMultiScale(
            search,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            flags=cv2.CASCADE_SCALE_IMAGE,
            minSize=(smallest, smallest),
        )
        boxes = [FaceBox(int(x), int(y), int(w), int(h)) for x, y, w, h in np.asarray(found).reshape(-1, 4)]
        if shrink < 1.0:
            boxes = [box.scaled(1.0 / shrink) for box in boxes]
        boxes = sorted(boxes, key=lambda b: b.area, reverse=True)[: self.max_faces]
        return sorted(boxes, key=lambda b: (b.x, b.y))


def _square(box: FaceBox, offset: int) -> tuple[int, int, int, int]:
    """``fer``'s ``tosquare`` then its offsets: (x1, y1, x2, y2), possibly outside the image."""
    x, y, w, h = box.x, box.y, box.width, box.height
    if h > w:
        x, w = x - (h - w) // 2, h
    elif w > h:
        y, h = y - (w - h) // 2, w
    return x - offset, y - offset, x + w + offset, y + h + offset


def crop_faces(gray: np.ndarray, boxes: list[FaceBox], offset: int = 10) -> np.ndarray:
    """Aligned classifier inputs ``float32 [n, 64, 64]`` in [-1, 1] for ``boxes`` of ``gray`` (module doc)."""
    import cv2

    out = np.empty((len(boxes), INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    if not boxes:
        return out
    fill = float(gray[-2:].mean())
    height, width = gray.shape
    for i, box in enumerate(boxes):
        x1, y1, x2, y2 = _square(box, offset)
        left, top, right, bottom = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
        face = gray[top:bottom, left:right]
        if (left, top, right, bottom) != (x1, y1, x2, y2):
            face = cv2.copyMakeBorder(
                face, top - y1, y2 - bottom, left - x1, x2 - right, cv2.BORDER_CONSTANT, value=fill
            )
        shrinking = face.shape[0] > INPUT_SIZE
        face = cv2.resize(
            face, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        )
        out[i] = face.astype(np.float32) / 255.0 * 2.0 - 1.0
    return out
