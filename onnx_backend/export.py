"""Export a Red Heart model and its encoders to ONNX, checked against torch.

Every encoder becomes one graph (:func:`.encoder_export.export_encoder`: the TorchScript exporter, then onnxruntime's
fused transformer kernels), every route (the encoders a text is read by) one graph of the Red Heart model on their
states (``torch.onnx.export``, the ``torch.export``-based exporter), each with a dynamic batch axis and dynamic
token axes; int8 (:mod:`.quantize`) quantizes the encoder graphs (``scope="encoders"``) or every graph
(``"all"``). Every route is then run by the same runtime the pipeline uses (:class:`.session.OnnxRunner`) on sample
texts of other lengths than the export example and compared with torch output by output; the largest absolute
differences are written into the manifest (and printed by the command line). The folder is written under a
temporary name and renamed when complete, so an interrupted export never leaves a folder that looks finished.
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
from .encoder_export import export_encoder
from .graph import InferenceGraph, input_names, model_input_names, model_routes, route_key
from .manifest import FORMAT_VERSION, PRECISIONS, model_fingerprint, write_manifest
from .quantize import check_scope, quantize_int8

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


def token_inputs(encoders: Any, route: Sequence[str], texts: Iterable[str]) -> list[torch.Tensor]:
    """Token inputs for ``texts`` (:func:`.graph.input_names`): per encoder padded ids and mask, then language ids."""
    texts = list(texts)
    tensors: list[torch.Tensor] = []
    for name in route:
        handle = encoders[name]
        budget = handle.content_budget()
        rows = [handle.with_specials(t.ids[:budget]) for t in handle.tokenize(texts)]
        tensors.extend(handle.pad(rows))
    tensors.append(torch.tensor([detect_language(t).language_id for t in texts], dtype=torch.long))
    return tensors


def _dynamic_shapes(encoders: Any, route: Sequence[str]) -> tuple:
    """The model graph's dynamic axes: one batch axis, and per encoder one token axis of its states and mask."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    shapes: list[Any] = []
    for name in route:
        tokens = torch.export.Dim(f"{name}_tokens", min=2, max=encoders[name].max_tokens)
        shapes.extend([{0: batch, 1: tokens}, {0: batch, 1: tokens}])
    shapes.append({0: batch})
    return tuple(shapes)


def _with_weights(folder: Path, file: str) -> list[str]:
    """The weight file written beside graph ``file``, if any."""
    return [f"{file}.data"] if (folder / f"{file}.data").is_file() else []


def _export_encoders(
    encoders: Any,
    modules: Mapping[str, torch.nn.Module],
    names: Sequence[str],
    work: Path,
    int8_scope: str | None,
    say,
) -> dict[str, Any]:
    """Every encoder's fp32 (fused) graph, and its int8 quantization unless ``int8_scope`` is None, in ``work``;
    their manifest entries by name."""
    entries: dict[str, Any] = {}
    for name in names:
        started = time.perf_counter()
        say(f"exporting encoder {name!r} to ONNX ...", flush=True)
        fp32, int8 = f"{name}.fp32.onnx", f"{name}.int8.onnx"
        example = tuple(token_inputs(encoders, (name,), EXAMPLE_TEXTS)[:2])
        entry = {**export_encoder(modules[name], example, work / fp32), "files": {"fp32": fp32}}
        if int8_scope is not None:
            quantize_int8(work / fp32, work / int8, keep_gelu_fed=int8_scope == "encoders")
            entry["files"]["int8"] = int8
        entry["weights"] = {p: _with_weights(work, file) for p, file in entry["files"].items()}
        entries[name] = {**entry, "export_seconds": round(time.perf_counter() - started, 1)}
    return entries


def _export_model(
    graph: InferenceGraph, encoders: Any, route: Sequence[str], work: Path, int8_scope: str | None, say
) -> dict[str, Any]:
    """The route's model graph in ``work`` (fp32; quantized too under ``int8_scope="all"``); its manifest entry."""
    key = route_key(route)
    started = time.perf_counter()
    say(f"exporting the model graph of route {key!r} to ONNX (a minute or so) ...", flush=True)
    with torch.inference_mode():
        example = [t.detach() for t in graph.model_inputs(*token_inputs(encoders, route, EXAMPLE_TEXTS))]
        graph.model(*example)  # fixes the output names
    fp32 = f"model.{key}.fp32.onnx"
    torch.onnx.export(
        graph.model,
        tuple(example),
        str(work / fp32),
        dynamo=True,
        input_names=model_input_names(route),
        output_names=graph.model.output_names,
        dynamic_shapes={"inputs": _dynamic_shapes(encoders, route)},  # forward(*inputs)
        external_data=True,
        verbose=False,
    )
    files = {"fp32": fp32}
    if int8_scope == "encoders":
        files["int8"] = fp32  # the model graph stays float32
    elif int8_scope == "all":
        files["int8"] = f"model.{key}.int8.onnx"
        quantize_int8(work / fp32, work / files["int8"], keep_gelu_fed=False)
    return {
        "route": list(route),
        "inputs": input_names(route),
        "outputs": graph.model.output_names,
        "files": files,
        "weights": {p: _with_weights(work, file) for p, file in files.items()},
        "export_seconds": round(time.perf_counter() - started, 1),
    }


def _max_differences(runner: Any, graph: InferenceGraph, inputs: list[torch.Tensor]) -> dict[str, float]:
    """Largest absolute difference per output between the runner's graphs and torch on ``inputs``."""
    feeds = {name: tensor.numpy() for name, tensor in zip(input_names(graph.route), inputs, strict=True)}
    results = runner.run(graph.route, feeds)
    with torch.inference_mode():
        expected = graph.named_outputs(*inputs)
    return {
        name: float(np.abs(results[name] - value.float().numpy()).max()) for name, value in expected.items()
    }


def _keep_only(manifest: dict[str, Any], work: Path, precisions: Sequence[str]) -> None:
    """Drop the files and manifest entries of the precisions not asked for (fp32 graphs of an int8-only export,
    except a model graph int8 shares)."""
    entries = [*manifest["encoders"].values(), *manifest["routes"].values()]
    kept = {f for e in entries for p in precisions for f in (e["files"][p], *e["weights"][p])}
    for entry in entries:
        for precision in [p for p in entry["files"] if p not in precisions]:
            for file in (entry["files"].pop(precision), *entry["weights"].pop(precision)):
                if file not in kept:
                    (work / file).unlink(missing_ok=True)


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
    from .session import OnnxRunner

    unknown = sorted(set(precisions) - set(PRECISIONS))
    if unknown or not precisions:
        raise ValueError(f"precisions must be a non-empty subset of {PRECISIONS}, got {list(precisions)}")
    check_scope(quantize_scope)
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
    }
    try:
        used = sorted({name for route in routes for name in route}, key=list(encoders32).index)
        manifest["encoders"] = _export_encoders(encoders, encoders32, used, work, quantize_scope, say)
        graphs = {route_key(r): InferenceGraph(model32, encoders32, r).eval() for r in routes}
        manifest["routes"] = {
            key: _export_model(graph, encoders, graph.route, work, quantize_scope, say)
            for key, graph in graphs.items()
        }
        with torch.inference_mode():
            example = token_inputs(encoders, routes[0], EXAMPLE_TEXTS)
            manifest["parts"] = list(graphs[route_key(routes[0])].model_output(*example).parts or ())
        _keep_only(manifest, work, precisions)
        for precision in precisions:
            runner = OnnxRunner(work, manifest, precision)
            for key, graph in graphs.items():
                check = token_inputs(encoders, graph.route, CHECK_TEXTS)
                differences = _max_differences(runner, graph, check)
                manifest["routes"][key].setdefault("max_abs_diff", {})[precision] = differences
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
