"""Images of a request: what a served model accepts, checked against the caps, then read off the model thread.

Every transport hands the service the same kinds of image: a base64 string or a ``data:`` URI (REST and MCP
send JSON), encoded bytes, a PIL image or a numpy array (the Gradio app). A string is never a file path: a
served model reads no file a client names. :func:`check_image` runs before any work is admitted (cheap: type,
base64, byte size); :func:`read_image` decodes the picture into the grayscale image the face analyzer reads,
so the model thread only detects and classifies. Each failure is a :class:`~.errors.ServiceError` naming the
field (``image``, ``images[2]``) and, for a size, the limit.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidImage, TooLarge
from .settings import ServingSettings

__all__ = ["RequestImage", "check_image", "decode_base64", "read_image"]

EXPECTED = "base64 of an image file (JPEG, PNG, BMP, GIF, TIFF or WebP) or a data: URI holding one"
_DATA_URI = re.compile(r"data:(?P<type>[^,;]*)(?P<params>(;[^,;]*)*),", re.IGNORECASE)


@dataclass(frozen=True)
class RequestImage:
    """A checked image of a request and the field that named it (for error messages)."""

    value: Any
    field: str


def decode_base64(value: str, field: str, max_bytes: int) -> bytes:
    """The bytes of a base64 string or ``data:...;base64,`` URI; refused past ``max_bytes`` before decoding."""
    payload = value.strip()
    match = _DATA_URI.match(payload)
    if match:
        if ";base64" not in match.group("params").lower():
            raise InvalidImage(
                f"{field}: a data: URI must be base64-encoded (data:image/png;base64,...)", field=field
            )
        payload = payload[match.end() :]
    payload = "".join(payload.split())  # line breaks of wrapped base64
    if not payload:
        raise InvalidImage(f"{field} is empty; expected {EXPECTED}", field=field)
    approximate = len(payload) * 3 // 4 - payload[-2:].count("=")
    if approximate > max_bytes:
        raise TooLarge(
            f"{field} holds about {approximate:,} bytes, more than the limit of {max_bytes:,} (max_image_bytes)",
            field=field,
            limit=max_bytes,
        )
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as err:
        raise InvalidImage(f"{field} is not valid base64 ({err}); expected {EXPECTED}", field=field) from err


def check_image(image: Any, field: str, settings: ServingSettings) -> RequestImage | None:
    """``None``, or the image as bytes / PIL image / array with its field; raises InvalidImage or TooLarge."""
    if image is None:
        return None
    if isinstance(image, str):
        image = decode_base64(image, field, settings.max_image_bytes)
    elif isinstance(image, (bytes, bytearray, memoryview)):
        image = bytes(image)
        if len(image) > settings.max_image_bytes:
            raise TooLarge(
                f"{field} has {len(image):,} bytes, more than the limit of {settings.max_image_bytes:,} "
                "(max_image_bytes)",
                field=field,
                limit=settings.max_image_bytes,
            )
    elif not (isinstance(image, np.ndarray) or _is_pil(image)):
        raise InvalidImage(
            f"{field}: got {type(image).__name__}; expected {EXPECTED}, image bytes, a PIL image or an array",
            field=field,
        )
    return RequestImage(image, field)


def read_image(image: RequestImage, settings: ServingSettings) -> Any:
    """The decoded grayscale ``LoadedImage`` (the pipeline passes it through as it is)."""
    from ..encoders.image.errors import ImageInputError
    from ..encoders.image.inputs import ImageLimits, load_image

    pixels = _pixels(image.value)
    if settings.image_oversize == "error" and pixels is not None and pixels > settings.image_max_pixels:
        raise TooLarge(
            f"{image.field} has {pixels:,} pixels, more than the limit of {settings.image_max_pixels:,} "
            "(image_max_pixels)",
            field=image.field,
            limit=settings.image_max_pixels,
        )
    limits = ImageLimits(settings.image_max_pixels, settings.image_oversize)
    try:
        return load_image(image.value, limits, what=image.field)
    except ImageInputError as err:
        raise InvalidImage(str(err), field=image.field) from err


def _pixels(value: Any) -> int | None:
    """Width x height, read from the header for encoded bytes (None when it cannot be read: the reader says why)."""
    if isinstance(value, np.ndarray):
        return int(value.shape[0] * value.shape[1]) if value.ndim >= 2 else None
    if isinstance(value, bytes):
        from PIL import Image

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(value)) as opened:
                    width, height = opened.size
        except Exception:  # corrupt or not an image: load_image gives the error that names the fault
            return None
        return width * height
    width, height = value.size
    return width * height


def _is_pil(value: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:
        return False
    return isinstance(value, Image.Image)
