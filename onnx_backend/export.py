"""Export a Red Heart model and its encoders to ONNX, one graph per route, checked against torch.

Each route (the encoders a text is read by; one for a single multilingual encoder) becomes one graph
(:class:`.graph.InferenceGraph`) exported with ``torch.onnx.export`` (the ``torch.export``-based exporter) with a
dynamic batch axis and a dynamic token axis per encoder, then optionally quantized to int8 (:mod:`.quantize`).
Every graph is run with onnxruntime on sample texts of other lengths than the export example and compared with
torch output by output; the largest absolute differences are written into the manifest (and printed by the
command line). The folder is written under a temporary name and renamed when complete, so an interrupted export
never leaves a folder that looks finished.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..pipelines.text import detect_language
from .graph import InferenceGraph, input_names, model_routes, route_key
from .manifest import FORMAT_VERSION, PRECISIONS, model_fingerprint, write_manifest
from .quantize import quantize_int8

#: The export traces the graph on these (two rows of different lengths: padding is part of the trace).
EXAMPLE_TEXTS = ("I broke a promise to a friend to work overtime.", "오늘 동생이 시험에 합격해서 너무 기뻤다")
#: Checked after export: other lengths and batch sizes than the example, Korean, English and a longer text.
CHECK_TEXTS = (
    "I returned the wallet I found, with all the money still inside.",
    "친구와의 약속을 어기고 야근을 했다",
    "ok",
    "My grandmother passed away last week. I keep thinking about the things I never said to her, and about "
    "the afternoons we spent together in her garden when I was a child; I wish I had visited more often.",
)


def _inputs(encoders: Any, route: Sequence[str], texts: Iterable[str]) -> list[torch.Tensor]:
    """Graph inputs for ``texts``: per encoder padded ids and mask (cut to its window), then language ids."""
    texts = list(texts)
    tensors: list[torch.Tensor] = []
    for name in route:
        handle = encoders[name]
        budget = handle.max_tokens - handle.num_special
        rows = [handle.with_specials(t.ids[:budget]) for t in handle.tokenize(texts)]
        tensors.extend(handle.pad(rows))
    tensors.append(torch.tensor([detect_language(t).language_id for t in texts], dtype=torch.long))
    return tensors


def _dynamic_shapes(encoders: Any, route: Sequence[str]) -> tuple:
    batch = torch.export.Dim("batch", min=1, max=4096)
    shapes: list[Any] = []
    for name in route:
        tokens = torch.export.Dim(f"{name}_tokens", min=2, max=encoders[name].max_tokens)
        shapes.extend([{0: batch, 1: tokens}, {0: batch, 1: tokens}])
    shapes.append({0: batch})
    return tuple(shapes)


def _max_differences(path: Path, graph: InferenceGraph, inputs: list[torch.Tensor]) -> dict[str, float]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {name: tensor.numpy() for name, tensor in zip(input_names(graph.route), inputs, strict=True)}
    results = session.run(None, feeds)
    with torch.inference_mode():
        expected = graph.named_outputs(*inputs)
    return {
        name: float(np.abs(result - expected[name].float().numpy()).max())
        for name, result in zip(graph.output_names or [], results, strict=True)
    }


def export_onnx(
    model: torch.nn.Module,
    encoders: Any,
    out_dir: str | Path,
    precisions: Sequence[str] = PRECISIONS,
    *,
    quantize_scope: str = "encoders",
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Export ``model`` with the loaded ``encoders`` (an :class:`~redheart.encoders.bank.EncoderBank`) to ``out_dir``.

    The model and encoders are copied and exported in float32 whatever dtype they compute in. Returns the manifest.
    """
    unknown = sorted(set(precisions) - set(PRECISIONS))
    if unknown or not precisions:
        raise ValueError(f"precisions must be a non-empty subset of {PRECISIONS}, got {list(precisions)}")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} is not empty; pass overwrite=True (--overwrite) to replace it")
    say = print if progress else (lambda *a, **k: None)
    modules = {name: encoders[name].model for name in encoders}
    fingerprint = model_fingerprint(model, modules)
    model32 = copy.deepcopy(model).float().eval()
    encoders32 = {name: copy.deepcopy(module).float().eval() for name, module in modules.items()}
    routes = model_routes(encoders.languages)
    work = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "fingerprint": fingerprint,
        "model": getattr(model.config, "_name_or_path", None) or None,
        "torch": torch.__version__,
        "int8": {
            "method": "onnxruntime dynamic quantization, int8 weights per channel",
            "scope": quantize_scope,
        },
        "routes": {},
    }
    try:
        for route in routes:
            key = route_key(route)
            graph = InferenceGraph(model32, encoders32, route).eval()
            example, check = _inputs(encoders, route, EXAMPLE_TEXTS), _inputs(encoders, route, CHECK_TEXTS)
            with torch.inference_mode():
                graph(*example)  # fixes the output names
            fp32 = work / f"{key}.fp32.onnx"
            started = time.perf_counter()
            say(f"exporting route {key!r} to ONNX (a minute or so per route) ...", flush=True)
            torch.onnx.export(
                graph,
                tuple(example),
                str(fp32),
                dynamo=True,
                input_names=input_names(route),
                output_names=graph.output_names,
                dynamic_shapes={"inputs": _dynamic_shapes(encoders, route)},  # forward(*inputs)
                external_data=True,  # weights beside the graph (<name>.data): a route may pass protobuf's 2 GB
                verbose=False,
            )
            entry: dict[str, Any] = {
                "route": list(route),
                "inputs": input_names(route),
                "outputs": graph.output_names,
                "files": {},
                "weights": {},
                "max_abs_diff": {},
            }
            if "int8" in precisions:
                int8 = work / f"{key}.int8.onnx"
                quantize_int8(fp32, int8, quantize_scope)
                entry["files"]["int8"] = int8.name
                entry["max_abs_diff"]["int8"] = _max_differences(int8, graph, check)
            if "fp32" in precisions:
                entry["files"]["fp32"] = fp32.name
                entry["weights"] = {"fp32": [f"{fp32.name}.data"]} if Path(f"{fp32}.data").exists() else {}
                entry["max_abs_diff"]["fp32"] = _max_differences(fp32, graph, check)
            else:
                fp32.unlink()
                Path(f"{fp32}.data").unlink(missing_ok=True)
            entry["export_seconds"] = round(time.perf_counter() - started, 1)
            manifest["routes"][key] = entry
            with torch.inference_mode():
                manifest["parts"] = list(graph.model_output(*example).parts or ())
        write_manifest(work, manifest)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        work.rename(out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def describe_differences(manifest: Mapping[str, Any]) -> str:
    """The manifest's largest output differences to torch, one line per route and precision."""
    lines = []
    for key, route in manifest["routes"].items():
        for precision, diffs in route["max_abs_diff"].items():
            worst = max(diffs, key=diffs.get)
            listed = ", ".join(f"{name} {value:.2g}" for name, value in diffs.items())
            lines.append(f"{key} {precision}: largest {worst} {diffs[worst]:.3g} | {listed}")
    return "\n".join(lines)
