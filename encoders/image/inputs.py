"""Image inputs: a file path, encoded bytes, a PIL image or a numpy array, read into one grayscale array.

Every face step works on grayscale (the classifier reads gray faces), so :func:`load_image` returns a
``uint8 [height, width]`` image and what it did to get there. What it accepts, and refuses with an
:class:`~.errors.ImageInputError` that names what was expected:

* a path (``str`` or ``os.PathLike``) to a file, or ``bytes``/``bytearray``/``memoryview`` holding one, in
  one of ``SUPPORTED_FORMATS``; a file that is missing, empty, in another format, corrupt or truncated is
  refused. EXIF orientation is applied (phone photos are often stored sideways); an animated GIF gives its
  first frame;
* a ``PIL.Image.Image`` (any mode PIL can turn into grayscale; 16-bit ones are scaled to 8 bits);
* a numpy array, channels last: ``[h, w]``, ``[h, w, 1]``, ``[h, w, 3]`` (RGB) or ``[h, w, 4]`` (RGBA; alpha is
  ignored), of dtype ``uint8`` (0-255), ``uint16`` (0-65535) or floating point with values in [0, 1]. Arrays
  from OpenCV are BGR: the grayscale weights then swap red and blue (a small effect on faces).

Size: an image of more than ``max_pixels`` pixels (default 25 million) is either shrunk to fit
(``oversize="downscale"``, the default: area-averaged, aspect kept; a JPEG is decoded at a reduced size
directly) or refused (``oversize="error"``). Encoded images above PIL's decompression-bomb limit
(``PIL.Image.MAX_IMAGE_PIXELS``, about 89 million pixels) are refused either way, before decoding.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ImageInputError, ImageTypeError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "OVERSIZE_MODES",
    "SUPPORTED_FORMATS",
    "ImageLimits",
    "LoadedImage",
    "load_image",
]

#: Encoded formats read (PIL format names).
SUPPORTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP")
DEFAULT_MAX_PIXELS = 25_000_000
OVERSIZE_MODES = ("downscale", "error")
EXPECTED = (
    "a file path, encoded image bytes (JPEG, PNG, BMP, GIF, TIFF or WebP), a PIL.Image.Image, or a numpy "
    "array [height, width] / [height, width, 1|3|4] of uint8, uint16 or floats in [0, 1]"
)


@dataclass(frozen=True)
class ImageLimits:
    """``max_pixels``: largest image analysed at full size; ``oversize``: ``"downscale"`` or ``"error"`` beyond it."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    oversize: str = "downscale"

    def __post_init__(self) -> None:
        if not isinstance(self.max_pixels, int) or isinstance(self.max_pixels, bool) or self.max_pixels < 1:
            raise ValueError(f"max_pixels must be a positive integer, got {self.max_pixels!r}")
        if self.oversize not in OVERSIZE_MODES:
            raise ValueError(f"oversize must be one of {OVERSIZE_MODES}, got {self.oversize!r}")


@dataclass(frozen=True)
class LoadedImage:
    """A grayscale image ready for face detection, and how it was obtained."""

    gray: np.ndarray
    original_size: tuple[int, int]
    source: str
    format: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the analysed image."""
        return int(self.gray.shape[1]), int(self.gray.shape[0])

    @property
    def scale(self) -> float:
        """Analysed width / original width (1.0 unless the image was downscaled)."""
        return self.size[0] / self.original_size[0]

    @property
    def downscaled(self) -> bool:
        return self.size != self.original_size

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "format": self.format,
            "original_size": list(self.original_size),
            "analysed_size": list(self.size),
            "downscaled": self.downscaled,
        }


def _fit(width: int, height: int, limits: ImageLimits, what: str) -> tuple[int, int] | None:
    """The size to shrink to (None when the image fits); raises when it does not fit and must not shrink."""
    pixels = width * height
    if pixels <= limits.max_pixels:
        return None
    if limits.oversize == "error":
        raise ImageInputError(
            f"{what}: {width}x{height} = {pixels:,} pixels is more than max_pixels={limits.max_pixels:,}; "
            "pass a smaller image, raise the limit, or let it be downscaled (oversize='downscale')"
        )
    factor = math.sqrt(limits.max_pixels / pixels)
    return max(1, math.floor(width * factor)), max(1, math.floor(height * factor))


def _shrink(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    if gray.shape[1] * gray.shape[0] <= size[0] * size[1]:
        return gray
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def _gray_from_array(array: np.ndarray, what: str, limits: ImageLimits) -> LoadedImage:
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ImageInputError(f"{what}: array of dtype {array.dtype} is not an image; expected {EXPECTED}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        hint = (
            " (it looks channels-first: transpose it to [height, width, channels])"
            if array.ndim == 3 and array.shape[0] in (1, 3, 4)
            else ""
        )
        raise ImageInputError(
            f"{what}: array of shape {tuple(array.shape)} is not an image{hint}; expected [height, width] "
            "grayscale or [height, width, 1|3|4] channels-last"
        )
    height, width = int(array.shape[0]), int(array.shape[1])
    if height < 1 or width < 1:
        raise ImageInputError(f"{what}: array of shape {tuple(array.shape)} has no pixels")
    target = _fit(width, height, limits, what)
    if array.dtype == np.uint8:
        pixels = array
    elif array.dtype == np.uint16:
        pixels = (array.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ImageInputError(f"{what}: float array holds NaN or infinity; expected values in [0, 1]")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise ImageInputError(
                f"{what}: float array values span [{low:.4g}, {high:.4g}]; expected values in [0, 1] "
                "(or pass uint8 0-255)"
            )
        pixels = (array.astype(np.float32) * 255.0).round().astype(np.uint8)
    else:
        raise ImageInputError(
            f"{what}: array dtype {array.dtype} is not supported; expected uint8 (0-255), uint16 (0-65535) "
            "or float32/float64 in [0, 1]"
        )
    import cv2

    if pixels.ndim == 3:
        code = cv2.COLOR_RGB2GRAY if pixels.shape[2] == 3 else cv2.COLOR_RGBA2GRAY
        pixels = cv2.cvtColor(np.ascontiguousarray(pixels), code)
    gray = np.ascontiguousarray(pixels)
    if target is not None:
        gray = _shrink(gray, target)
    return LoadedImage(gray, (width, height), "array")


def _gray_from_pil(image: Any, what: str, limits: ImageLimits, source: str) -> LoadedImage:
    from PIL import ImageOps

    fmt = getattr(image, "format", None)
    original = image.size
    target = _fit(*original, limits, what)
    try:
        if target is not None and fmt == "JPEG":
            image.draft("RGB", target)  # decode at 1/2, 1/4 or 1/8 of the size: fast and small
        image.load()
        decoded = image.size
        image = ImageOps.exif_transpose(image)
        if image.size != decoded:  # rotated by a quarter turn: so is the original size
            original = (original[1], original[0])
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            pixels = np.clip(np.asarray(image, dtype=np.int64), 0, 65535).astype(np.uint16)
        elif image.mode == "F":
            pixels = np.asarray(image, dtype=np.float32)
        elif image.mode in ("L", "RGB", "RGBA"):  # the array rules' grayscale, whatever the input kind
            pixels = np.asarray(image)
        else:
            pixels = np.asarray(image.convert("L" if image.mode in ("1", "LA", "La") else "RGB"))
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        raise ImageInputError(
            f"{what}: corrupt or truncated {fmt or 'image'} data ({exc}); expected a complete image file"
        ) from exc
    loaded = _gray_from_array(pixels, what, limits)
    return LoadedImage(loaded.gray, original, source, fmt)


def _open_encoded(data: Any, what: str, limits: ImageLimits, source: str) -> LoadedImage:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(data)
    except UnidentifiedImageError as exc:
        raise ImageInputError(
            f"{what}: not an image in a format that can be read; expected one of {', '.join(SUPPORTED_FORMATS)}"
        ) from exc
    except Image.DecompressionBombError as exc:
        raise ImageInputError(
            f"{what}: too many pixels to decode safely ({exc}); expected at most "
            f"{Image.MAX_IMAGE_PIXELS:,} pixels"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageInputError(f"{what}: corrupt image data ({exc}); expected a complete image file") from exc
    with image:
        if image.format not in SUPPORTED_FORMATS:
            raise ImageInputError(
                f"{what}: unsupported image format {image.format}; expected one of {', '.join(SUPPORTED_FORMATS)}"
            )
        width, height = image.size
        if Image.MAX_IMAGE_PIXELS is not None and width * height > Image.MAX_IMAGE_PIXELS:
            raise ImageInputError(
                f"{what}: {width}x{height} = {width * height:,} pixels is more than the decoder's safety limit "
                f"of {Image.MAX_IMAGE_PIXELS:,} (PIL.Image.MAX_IMAGE_PIXELS); expected a smaller image"
            )
        return _gray_from_pil(image, what, limits, source)


def load_image(image: Any, limits: ImageLimits | None = None, *, what: str = "image") -> LoadedImage:
    """Read one image input (module doc); ``what`` names it in error messages."""
    limits = limits or ImageLimits()
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise ImageInputError(
                f"{what}: image file not found: {str(path)!r}"
                if not path.exists()
                else f"{what}: {path} is not a file"
            )
        if path.stat().st_size == 0:
            raise ImageInputError(f"{what}: image file {str(path)!r} is empty")
        return _open_encoded(path, what, limits, "path")
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        if not data:
            raise ImageInputError(f"{what}: empty image bytes; expected an encoded image file")
        import io

        return _open_encoded(io.BytesIO(data), what, limits, "bytes")
    if isinstance(image, np.ndarray):
        return _gray_from_array(image, what, limits)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is part of the vision extra
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        try:
            copy = image.copy()  # loads a lazily opened image; the caller's object is left as it was
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageInputError(
                f"{what}: the PIL image cannot be loaded ({exc}); expected a complete image"
            ) from exc
        return _gray_from_pil(copy, what, limits, "pil")
    raise ImageTypeError(f"{what}: got {type(image).__name__}; expected {EXPECTED}")
