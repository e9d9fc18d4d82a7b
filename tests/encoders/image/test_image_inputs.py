"""Reading image inputs: every accepted kind agrees, and every bad one is refused naming what was expected."""

from __future__ import annotations

import io

import numpy as np
import pytest

from redheart.encoders.image.errors import ImageInputError, ImageTypeError
from redheart.encoders.image.inputs import ImageLimits, load_image

pytest.importorskip("cv2", reason="image tests need the vision extra")
Image = pytest.importorskip("PIL.Image", reason="image tests need the vision extra")


@pytest.fixture(scope="module")
def astronaut():
    data = pytest.importorskip("skimage.data", reason="the real test pictures ship with scikit-image")
    return data.astronaut()


def _encoded(array: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **options)
    return buffer.getvalue()


def test_path_bytes_pil_and_array_agree(astronaut, tmp_path):
    png = _encoded(astronaut, "PNG")
    path = tmp_path / "astronaut.png"
    path.write_bytes(png)
    from_array = load_image(astronaut)
    for given, source in ((str(path), "path"), (path, "path"), (png, "bytes"), (bytearray(png), "bytes")):
        loaded = load_image(given)
        assert loaded.source == source and loaded.format == "PNG"
        np.testing.assert_array_equal(loaded.gray, from_array.gray)
    from_pil = load_image(Image.fromarray(astronaut))
    assert from_pil.source == "pil" and np.abs(from_pil.gray.astype(int) - from_array.gray).max() <= 1
    assert from_array.gray.dtype == np.uint8 and from_array.size == (512, 512) and not from_array.downscaled


def test_array_kinds(astronaut):
    gray = load_image(astronaut).gray
    as_float = load_image(astronaut.astype(np.float32) / 255.0).gray
    as_uint16 = load_image(astronaut.astype(np.uint16) * 257).gray
    with_alpha = load_image(np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])).gray
    for other in (as_float, as_uint16, with_alpha):
        assert np.abs(other.astype(int) - gray).max() <= 1
    np.testing.assert_array_equal(load_image(gray[..., None]).gray, gray)
    sixteen_bit_png = load_image(_encoded(gray.astype(np.uint16) * 257, "PNG"))
    np.testing.assert_array_equal(sixteen_bit_png.gray, gray)


def test_exif_orientation_is_applied(astronaut):
    tall = astronaut[:, :256]
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to show
    loaded = load_image(_encoded(tall, "JPEG", exif=exif))
    assert loaded.size == (512, 256) and loaded.original_size == (512, 256)


def test_corrupt_truncated_and_unsupported_files(astronaut, tmp_path):
    png = _encoded(astronaut, "PNG")
    with pytest.raises(ImageInputError, match="corrupt or truncated PNG"):
        load_image(png[: len(png) // 2])
    with pytest.raises(ImageInputError, match="the PIL image cannot be loaded"):
        load_image(Image.open(io.BytesIO(png[: len(png) // 2])))
    jpeg = _encoded(astronaut, "JPEG")
    with pytest.raises(ImageInputError, match="corrupt or truncated JPEG"):
        load_image(jpeg[: len(jpeg) // 3])
    with pytest.raises(
        ImageInputError, match="not an image in a format that can be read; expected one of JPEG"
    ):
        load_image(b"%PDF-1.4 not a picture")
    with pytest.raises(ImageInputError, match="unsupported image format ICO; expected one of JPEG, PNG"):
        load_image(_encoded(astronaut[:64, :64], "ICO"))
    with pytest.raises(ImageInputError, match="empty image bytes"):
        load_image(b"")
    with pytest.raises(ImageInputError, match="image file not found"):
        load_image(str(tmp_path / "missing.jpg"))
    with pytest.raises(ImageInputError, match="is not a file"):
        load_image(tmp_path)
    empty = tmp_path / "empty.png"
    empty.touch()
    with pytest.raises(ImageInputError, match="is empty"):
        load_image(empty)


def test_a_50_megapixel_image_is_downscaled_or_refused(tmp_path):
    big = np.zeros((5000, 10_000), dtype=np.uint8)
    big[1000:1100, 2000:2100] = 255
    loaded = load_image(big)
    assert loaded.downscaled and loaded.original_size == (10_000, 5000)
    assert loaded.size[0] * loaded.size[1] <= 25_000_000 and abs(loaded.scale - 0.7071) < 1e-3
    with pytest.raises(ImageInputError, match=r"50,000,000 pixels is more than max_pixels=25,000,000"):
        load_image(big, ImageLimits(oversize="error"))
    jpeg = tmp_path / "big.jpg"
    Image.fromarray(big).save(jpeg, "JPEG", quality=50)
    small = load_image(jpeg, ImageLimits(max_pixels=1_000_000))
    assert small.original_size == (10_000, 5000) and small.size[0] * small.size[1] <= 1_000_000
    with pytest.raises(ImageInputError, match="more than max_pixels=1,000,000"):
        load_image(jpeg, ImageLimits(max_pixels=1_000_000, oversize="error"))
    with pytest.raises(ValueError, match="oversize must be one of"):
        ImageLimits(oversize="crop")
    with pytest.raises(ValueError, match="max_pixels must be a positive integer"):
        ImageLimits(max_pixels=0)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((8, 8), dtype=np.int64), r"dtype int64 is not supported; expected uint8 \(0-255\)"),
        (np.zeros((8, 8), dtype=bool), "dtype bool is not supported"),
        (np.zeros((8, 8), dtype=np.complex64), "dtype complex64 is not supported"),
        (np.zeros((8, 8), dtype=object), "array of dtype object is not an image"),
        (np.full((8, 8), 2.0), r"values span \[2, 2\]; expected values in \[0, 1\]"),
        (np.full((8, 8), np.nan), "NaN or infinity"),
        (np.zeros((3, 64, 64), dtype=np.uint8), "looks channels-first"),
        (np.zeros((8, 8, 2), dtype=np.uint8), r"shape \(8, 8, 2\) is not an image"),
        (np.zeros((2, 8, 8, 3), dtype=np.uint8), "expected \\[height, width\\] grayscale"),
        (np.zeros(64, dtype=np.uint8), "shape \\(64,\\) is not an image"),
        (np.zeros((0, 8), dtype=np.uint8), "has no pixels"),
    ],
)
def test_bad_arrays_name_what_was_expected(array, message):
    with pytest.raises(ImageInputError, match=message):
        load_image(array)


@pytest.mark.parametrize("thing", [{"pixels": []}, [[0, 1], [1, 0]], 3.5, object()])
def test_a_non_image_object_is_a_type_error(thing):
    with pytest.raises(ImageTypeError, match="expected a file path, encoded image bytes"):
        load_image(thing)
    assert issubclass(ImageTypeError, TypeError)
