"""An independent numpy forward pass of a Keras 2 HDF5 model, to check the torch conversion without TensorFlow.

It interprets the file's own layer graph (``model_config``) in Keras's NHWC layout, in float64, with
TensorFlow's semantics written out from their definitions rather than borrowed from torch:

* convolutions are cross-correlations, ``y[i, j, o] = sum_{di, dj, c} x[i s + di, j s + dj, c] K[di, dj, c, o]``;
* ``padding="valid"`` pads nothing; ``padding="same"`` gives ``ceil(n / s)`` outputs and pads
  ``max((ceil(n / s) - 1) s + k - n, 0)`` cells, the smaller half before and the larger half after (so a
  3x3 stride-2 max-pool on an even size pads only after -- unlike torch's symmetric ``padding=1``); max
  pooling pads with -inf, convolutions with 0;
* ``SeparableConv2D`` is a depthwise convolution (``K[di, dj, c, m]`` gives channel ``c * M + m``) followed by
  a 1x1 pointwise one; ``BatchNormalization`` is ``gamma (x - mean) / sqrt(var + eps) + beta``.

Only the layer kinds the mini-XCEPTION uses are implemented; any other one is a ``FaceModelFormatError``.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import FaceModelFormatError
from .keras_h5 import KerasLayer, KerasModelFile

__all__ = ["keras_forward", "same_padding"]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``"same"`` padding (before, after) of one spatial axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad(
    x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], mode: str, value: float
) -> np.ndarray:
    if mode == "valid":
        return x
    if mode != "same":
        raise FaceModelFormatError(f"padding {mode!r} is not supported (expected 'valid' or 'same')")
    rows = same_padding(x.shape[1], kernel[0], stride[0])
    cols = same_padding(x.shape[2], kernel[1], stride[1])
    return np.pad(x, ((0, 0), rows, cols, (0, 0)), constant_values=value)


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]):
    """Yield ``(di, dj, x[:, di::s, dj::s, :])`` cut to the output size, for every kernel offset."""
    out_h = (x.shape[1] - kernel[0]) // stride[0] + 1
    out_w = (x.shape[2] - kernel[1]) // stride[1] + 1
    for di in range(kernel[0]):
        for dj in range(kernel[1]):
            yield (
                di,
                dj,
                x[
                    :,
                    di : di + (out_h - 1) * stride[0] + 1 : stride[0],
                    dj : dj + (out_w - 1) * stride[1] + 1 : stride[1],
                    :,
                ],
            )


def _conv(x: np.ndarray, kernel: np.ndarray, stride: tuple[int, int], padding: str) -> np.ndarray:
    k = kernel.shape[:2]
    x = _pad(x, k, stride, padding, 0.0)
    out = None
    for di, dj, view in _windows(x, k, stride):
        term = np.tensordot(view, kernel[di, dj].astype(np.float64), axes=([3], [0]))
        out = term if out is None else out + term
    return out


def _depthwise(x: np.ndarray, kernel: np.ndarray, stride: tuple[int, int], padding: str) -> np.ndarray:
    k = kernel.shape[:2]
    x = _pad(x, k, stride, padding, 0.0)
    out = None
    for di, dj, view in _windows(x, k, stride):
        term = (view[..., :, None] * kernel[di, dj].astype(np.float64)).reshape(*view.shape[:3], -1)
        out = term if out is None else out + term
    return out


def _max_pool(x: np.ndarray, pool: tuple[int, int], stride: tuple[int, int], padding: str) -> np.ndarray:
    x = _pad(x, pool, stride, padding, -np.inf)
    out = None
    for _, _, view in _windows(x, pool, stride):
        out = view if out is None else np.maximum(out, view)
    return out


def _activation(x: np.ndarray, name: str) -> np.ndarray:
    if name == "linear":
        return x
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "softmax":
        shifted = np.exp(x - x.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)
    raise FaceModelFormatError(f"activation {name!r} is not supported")


def _layer(layer: KerasLayer, inputs: list[np.ndarray]) -> np.ndarray:
    c, w, kind = layer.config, layer.weights, layer.kind
    if kind == "InputLayer":
        return inputs[0]
    if kind == "Add":
        return np.sum(inputs, axis=0)
    x = inputs[0]
    if kind == "Conv2D":
        y = _conv(x, w["kernel"], tuple(c["strides"]), c["padding"])
        if c.get("use_bias", True):
            y = y + w["bias"].astype(np.float64)
        return _activation(y, c.get("activation", "linear"))
    if kind == "SeparableConv2D":
        y = _depthwise(x, w["depthwise_kernel"], tuple(c["strides"]), c["padding"])
        y = _conv(y, w["pointwise_kernel"], (1, 1), "valid")
        if c.get("use_bias", True):
            y = y + w["bias"].astype(np.float64)
        return _activation(y, c.get("activation", "linear"))
    if kind == "BatchNormalization":
        scale = w["gamma"].astype(np.float64) / np.sqrt(
            w["moving_variance"].astype(np.float64) + c["epsilon"]
        )
        return (x - w["moving_mean"].astype(np.float64)) * scale + w["beta"].astype(np.float64)
    if kind == "Activation":
        return _activation(x, c["activation"])
    if kind == "MaxPooling2D":
        return _max_pool(x, tuple(c["pool_size"]), tuple(c["strides"]), c["padding"])
    if kind == "GlobalAveragePooling2D":
        return x.mean(axis=(1, 2))
    raise FaceModelFormatError(f"layer {layer.name!r}: Keras layer kind {kind!r} is not supported")


def keras_forward(model: KerasModelFile, images: np.ndarray, *, until: str | None = None) -> np.ndarray:
    """Run ``images`` (NHWC, as the Keras model takes them) through the file's graph in float64.

    Returns the output layer's values (``until`` names another layer to stop at, e.g. the one before the
    final softmax to compare logits).
    """
    values: dict[str, np.ndarray] = {}
    x = np.asarray(images, dtype=np.float64)
    target = until or model.output
    for layer in model.layers.values():
        inputs = [values[name] for name in layer.inputs] if layer.inputs else [x]
        values[layer.name] = _layer(layer, inputs)
        if layer.name == target:
            return values[target]
    raise FaceModelFormatError(f"layer {target!r} is not in the model")
