"""Images in the ``ethics-emotion`` pipeline: reading them, and fusing the faces' expressions with the text.

The pipeline imports this package only when an image is given, so a saved model's remote code (which ships
only the per-text path) and text-only use never need OpenCV or the face model. ``prepare.py`` reads the
inputs, ``fusion.py`` holds the documented fusion rule, ``section.py`` writes the result's image part.
"""

from .fusion import (
    FACE_ACCURACY,
    FACE_TO_CORE,
    FUSION_FORMULA,
    FaceObservation,
    Fusion,
    face_observation,
    fuse,
)
from .prepare import check_image_options, load_face_analyzer, prepare_image, require_vision
from .section import add_face_analysis

__all__ = [
    "FACE_ACCURACY",
    "FACE_TO_CORE",
    "FUSION_FORMULA",
    "FaceObservation",
    "Fusion",
    "add_face_analysis",
    "check_image_options",
    "face_observation",
    "fuse",
    "load_face_analyzer",
    "prepare_image",
    "require_vision",
]
