"""Read a Keras 2 HDF5 model file (``model.save``) without Keras: its layer graph and its weights, with h5py.

A Keras 2 ``.hdf5`` file holds the architecture as JSON in the root attribute ``model_config`` (layers in
topological order, each with its ``class_name``, ``config`` and ``inbound_nodes``) and, under
``model_weights/<layer>``, the layer's arrays listed in order by the group attribute ``weight_names``
(``conv2d_1_1/kernel:0``, ...). :func:`read_keras_h5` returns both as plain numpy, which is all the converter
(:mod:`.convert_fer`) and the independent reference forward pass (:mod:`.keras_reference`) need.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FaceModelFormatError, FaceModelSourceNotFoundError

__all__ = ["KerasLayer", "KerasModelFile", "read_keras_h5"]


@dataclass(frozen=True)
class KerasLayer:
    """One layer: Keras class name, its config, the names of the layers it reads, its weights by short name."""

    name: str
    kind: str
    config: dict[str, Any]
    inputs: tuple[str, ...]
    weights: dict[str, np.ndarray] = field(repr=False)


@dataclass(frozen=True)
class KerasModelFile:
    """A parsed Keras HDF5 model: layers in topological order, the output layer, the saving Keras version."""

    path: Path
    keras_version: str | None
    backend: str | None
    layers: dict[str, KerasLayer]
    output: str

    def consumers(self, name: str) -> list[KerasLayer]:
        """The layers that read ``name``'s output, in file order."""
        return [layer for layer in self.layers.values() if name in layer.inputs]


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _inbound(layer: dict[str, Any], path: Path) -> tuple[str, ...]:
    nodes = layer.get("inbound_nodes") or []
    if not nodes:
        return ()
    if len(nodes) != 1:
        raise FaceModelFormatError(f"{path}: layer {layer.get('name')!r} is shared; expected a plain graph")
    return tuple(str(entry[0]) for entry in nodes[0])


def _weights(group: Any, layer: str, path: Path) -> dict[str, np.ndarray]:
    """``{"kernel": array, ...}``: the short name is the part after the last ``/`` without ``:0``."""
    if layer not in group:
        return {}
    node = group[layer]
    out: dict[str, np.ndarray] = {}
    for full in node.attrs.get("weight_names", []):
        full = _text(full)
        if full not in node:
            raise FaceModelFormatError(f"{path}: layer {layer!r} lists weight {full!r}, which is missing")
        short = full.rsplit("/", 1)[-1].split(":", 1)[0]
        out[short] = np.asarray(node[full][()], dtype=np.float32)
    return out


def read_keras_h5(path: str | os.PathLike[str]) -> KerasModelFile:
    """Parse a Keras 2 HDF5 model file; :class:`FaceModelFormatError` when it is not one (or is damaged)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FaceModelSourceNotFoundError(f"Keras model file not found: {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise FaceModelFormatError(f"{path}: not a readable HDF5 file ({exc})") from exc
    with handle:
        if "model_config" not in handle.attrs or "model_weights" not in handle:
            raise FaceModelFormatError(
                f"{path}: no 'model_config' attribute or 'model_weights' group; expected a Keras 2 "
                "model saved with model.save()"
            )
        try:
            config = json.loads(_text(handle.attrs["model_config"]))
            specs = config["config"]["layers"]
            output = str(config["config"]["output_layers"][0][0])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise FaceModelFormatError(f"{path}: unreadable model_config ({exc})") from exc
        group = handle["model_weights"]
        layers: dict[str, KerasLayer] = {}
        for spec in specs:
            name = str(spec["config"]["name"])
            layers[name] = KerasLayer(
                name=name,
                kind=str(spec["class_name"]),
                config=dict(spec["config"]),
                inputs=_inbound(spec, path),
                weights=_weights(group, name, path),
            )
        keras_version = handle.attrs.get("keras_version")
        backend = handle.attrs.get("backend")
    if output not in layers:
        raise FaceModelFormatError(f"{path}: output layer {output!r} is not among the layers")
    return KerasModelFile(
        path=path,
        keras_version=None if keras_version is None else _text(keras_version),
        backend=None if backend is None else _text(backend),
        layers=layers,
        output=output,
    )
