"""Faces in real pictures (scikit-image's samples): found, aligned and read by fer's mini-XCEPTION."""

from __future__ import annotations

import numpy as np
import pytest

from redheart.encoders.image import FER_LABELS, NO_FACE_NOTE, FaceBox, FaceDetector, crop_faces, load_image

pytest.importorskip("cv2", reason="image tests need the vision extra")
data = pytest.importorskip("skimage.data", reason="the real test pictures ship with scikit-image")


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()


def _only_face(reading):
    assert len(reading.faces) == 1, reading.faces
    return reading.faces[0]


def test_a_smiling_face_reads_happy(face_analyzer, astronaut):
    face = _only_face(face_analyzer.read(astronaut))
    assert face.top[0] == "happy" and face.top[1] > 0.9
    assert face.probabilities.sum() == pytest.approx(1.0, abs=1e-6)
    assert face.views.shape == (2, len(FER_LABELS))  # the crop and its mirror image
    box = face.box
    assert 150 < box.x < 200 and 40 < box.y < 90 and 80 < box.width < 120  # the astronaut's face
    entry = face.to_dict()
    assert set(entry["probabilities"]) == set(FER_LABELS) and entry["top"]["label"] == "happy"


def test_a_mirrored_copy_agrees(face_analyzer, astronaut):
    face = _only_face(face_analyzer.read(astronaut))
    mirrored = _only_face(face_analyzer.read(np.ascontiguousarray(astronaut[:, ::-1])))
    assert mirrored.top[0] == face.top[0] == "happy"
    assert np.abs(mirrored.probabilities - face.probabilities).max() < 0.05
    assert abs((mirrored.box.x + mirrored.box.width) - (512 - face.box.x)) <= 8  # the same face, mirrored


def test_no_face_gives_an_empty_result_and_a_note(face_analyzer):
    for picture in (data.coffee(), np.full((300, 400, 3), 128, dtype=np.uint8), np.zeros((8, 8))):
        reading = face_analyzer.read(picture)
        assert reading.faces == [] and reading.note == NO_FACE_NOTE


def test_two_faces_give_two_entries_left_to_right(face_analyzer, astronaut):
    reading = face_analyzer.read(np.hstack([astronaut, astronaut]))
    assert len(reading.faces) == 2
    left, right = reading.faces
    assert left.box.x < 512 <= right.box.x and abs(right.box.x - 512 - left.box.x) <= 8
    assert left.top[0] == right.top[0] == "happy"


def test_a_large_image_is_searched_shrunk_and_boxes_map_back(face_analyzer, astronaut):
    large = np.full((2000, 3000, 3), 128, dtype=np.uint8)  # longer than detect_max_side (1600)
    large[1200:1712, 2000:2512] = astronaut
    face = _only_face(face_analyzer.read(large))
    small = _only_face(face_analyzer.read(astronaut))
    assert face.top[0] == "happy"
    assert abs(face.box.x - 2000 - small.box.x) < 8 and abs(face.box.y - 1200 - small.box.y) < 8
    assert abs(face.box.width - small.box.width) < 12


def test_boxes_are_given_in_the_original_image_when_it_was_downscaled(face_analyzer, astronaut):
    from redheart.encoders.image import ImageLimits

    loaded = load_image(astronaut, ImageLimits(max_pixels=300 * 300))
    assert loaded.downscaled and loaded.original_size == (512, 512)
    face = _only_face(face_analyzer.analyze([loaded])[0])
    small = _only_face(face_analyzer.read(astronaut))
    assert abs(face.box.x - small.box.x) < 12 and abs(face.box.width - small.box.width) < 16


def test_crops_are_square_scaled_and_padded_at_the_border():
    gray = np.tile(np.arange(100, dtype=np.uint8), (80, 1))
    crops = crop_faces(gray, [FaceBox(10, 10, 30, 20), FaceBox(-5, 70, 20, 20)])
    assert crops.shape == (2, 64, 64) and crops.dtype == np.float32
    assert crops.min() >= -1.0 and crops.max() <= 1.0
    assert crops[0, 32, 0] < crops[0, 32, -1]  # the horizontal ramp survives
    assert crop_faces(gray, []).shape == (0, 64, 64)


def test_detector_settings_are_described():
    detector = FaceDetector()
    assert "haarcascade_frontalface_default.xml" in detector.describe()
    with pytest.raises(FileNotFoundError, match="could not load the face cascade"):
        FaceDetector(cascade="no_such_cascade.xml")
