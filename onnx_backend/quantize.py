"""int8 dynamic quantization of an exported graph with onnxruntime's quantizer (the maintained route).

Weights of the matrix products become int8 (per output channel); activations are quantized on the fly per
batch. ``scope="encoders"`` quantizes only the encoders' nodes and keeps the small Red Heart model in float32:
the encoders hold almost all of the compute, while the model's calibrated heads are where rounding shows in
the outputs. ``scope="all"`` quantizes every matrix product.
"""

from __future__ import annotations

import ast
from pathlib import Path

import onnx

SCOPES = ("encoders", "all")
#: The exported graph's module path of the Red Heart model (``InferenceGraph.model``).
MODEL_SCOPE = "model"


def _node_scopes(node: onnx.NodeProto) -> list[str]:
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                return list(ast.literal_eval(prop.value))
            except (ValueError, SyntaxError):
                return []
    return []


def model_nodes(path: Path) -> list[str]:
    """Names of the nodes that belong to the Red Heart model (not to an encoder) in an exported graph."""
    graph = onnx.load(str(path), load_external_data=False).graph
    names = []
    for node in graph.node:
        scopes = _node_scopes(node)
        if len(scopes) > 1 and scopes[1] == MODEL_SCOPE:
            names.append(node.name)
    return names


def quantize_int8(source: Path, target: Path, scope: str = "encoders") -> None:
    """Write the int8 dynamic quantization of ``source`` to ``target``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    exclude = model_nodes(source) if scope == "encoders" else []
    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        nodes_to_exclude=exclude,
        op_types_to_quantize=["MatMul", "Gemm"],
    )
