"""int8 weights for the torch backend: dynamic quantization of the model's and the encoders' linear layers.

Why: a forward pass on a CPU streams every weight once, so at small batches its time follows the weights' bytes.
bfloat16 halves them only where the CPU computes bf16 natively (AVX-512 BF16, AMX); on AVX2 float32 is the
fastest float dtype. ``quantize="int8"`` (a construction option of the pipeline, the orchestrator and the serving
layer) turns linear layers into torch's dynamic int8 linear layer -- weights int8 per output channel, activations
quantized on the fly with one scale per call -- run by FBGEMM's int8 kernels (AVX2 or AVX-512; ``--isa avx2`` holds
them too); everything else (embeddings, normalisation, attention products, nonlinearities) computes in float32.
Measured held to AVX2 kernels, 12 base-size feed-forward blocks at 52 tokens: 48.7 ms float32 -> 18.5 ms int8.

Kept float32:

* an encoder's feed-forward down-projections, ``layer.<i>.output.dense`` (the BERT family's name: BERT, RoBERTa,
  XLM-R, ELECTRA; :data:`ENCODER_DOWN_PROJECTION`): fed by a GELU whose outliers one per-tensor activation scale
  rounds worst, as the ONNX backend's quantizer also found (``onnx_backend/quantize.py``);
* linear layers whose weight a Red Heart module reads as a matrix (absorbed attention, task pooling), listed in
  the module's ``float_linears`` attribute;
* a Red Heart model's layers of fewer than :data:`MODEL_MIN_INT8_WEIGHTS` (2^19) weights (:func:`quantize_system`):
  the whole shipped ``small`` model (256 wide, at most 1024 x 384), where int8 saved about 1 ms of a 23 ms call and
  cost commonsense accuracy 0.003; the ``330m`` model's 768-wide layers and up are int8. Held to AVX2 at one text,
  a 256 x 256 layer ran 10 us in float32 and 22 us in int8 (the per-call activation quantization), 768 x 3072 208
  vs 55 us.

Measured on the shipped model, full evaluation sets against torch float32: every linear layer int8 cost up to 0.028
macro-F1 (GoEmotions-KO), all of it from the encoder's down-projections; with them float32 every figure but one
stayed within 0.01 (commonsense accuracy -0.013 with the model's layers int8, -0.0102 with the size floor); smoothing
the down-projections' inputs (SmoothQuant, alpha 0.5, 24 built-in calibration sentences) instead cost up to 0.038.
README, "int8 on torch".

Built on ``torch.ao.quantization.quantize_dynamic`` (eager mode), which torch marks deprecated in favour of
torchao; the pinned torch ships it, and torchao 0.18's eager int8 path ran the 12 blocks above in 37.8 ms natively
where this one took 14.2 ms. The deprecation warnings are silenced for the call; a torch without it is a clear
ImportError.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

#: Accepted ``quantize`` values (None: float weights).
QUANTIZATIONS = ("int8",)
#: Fewest weights a Red Heart model's linear layer needs to run as int8 (module doc).
MODEL_MIN_INT8_WEIGHTS = 1 << 19
#: An encoder's feed-forward down-projection, by its name in the BERT family of Hugging Face models.
ENCODER_DOWN_PROJECTION = re.compile(r"(^|\.)layer\.\d+\.output\.dense$")


def check_quantization(value: Any, backend: str = "torch") -> str | None:
    """``value`` if it is None or a known quantization for the torch ``backend``, else a ``ValueError``: naming the
    accepted values, or saying that another backend has its own precision option."""
    if value is not None and value not in QUANTIZATIONS:
        accepted = ", ".join(repr(name) for name in QUANTIZATIONS)
        raise ValueError(
            f"quantize={value!r} is not supported; use None (float weights) or one of {accepted}"
        )
    if value is not None and backend != "torch":
        raise ValueError(
            f"quantize={value!r} quantizes the torch backend; with backend={backend!r} use onnx_precision"
        )
    return value


def backend_label(backend: str, quantize: str | None = None, onnx_precision: str = "int8") -> str:
    """What computed the outputs, as results and metadata name it: ``torch``, ``torch-int8``, ``onnx-<precision>``."""
    if backend == "onnx":
        return f"onnx-{onnx_precision}"
    return backend if quantize is None else f"{backend}-{quantize}"


def quantized_linear_names(module: nn.Module, min_weights: int = 0) -> set[str]:
    """Names of the linear layers :func:`quantize_int8` converts: every ``nn.Linear`` of at least ``min_weights``
    weights but the kept ones (a parent's ``float_linears``, an encoder's down-projections)."""
    kept = {
        f"{name}.{child}" if name else child
        for name, parent in module.named_modules()
        for child in getattr(parent, "float_linears", ())
    }
    return {
        name
        for name, layer in module.named_modules()
        if type(layer) is nn.Linear
        and layer.weight.numel() >= min_weights
        and name not in kept
        and not ENCODER_DOWN_PROJECTION.search(name)
    }


def quantize_system(model: nn.Module, encoders: Iterable[nn.Module]) -> None:
    """``quantize="int8"`` for a Red Heart model and its encoders, in place: the model's layers of at least
    :data:`MODEL_MIN_INT8_WEIGHTS` weights, every encoder layer but the kept ones (module doc)."""
    quantize_int8(model, MODEL_MIN_INT8_WEIGHTS)
    for encoder in encoders:
        quantize_int8(encoder)


def quantize_int8(module: nn.Module, min_weights: int = 0) -> nn.Module:
    """Convert ``module``'s linear layers (:func:`quantized_linear_names`) to dynamic int8 in place, after casting
    it to float32; returns it."""
    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    except ImportError as exc:  # pragma: no cover - a torch release that dropped eager quantization
        raise ImportError(
            f"quantize='int8' needs torch.ao.quantization.quantize_dynamic, which torch {torch.__version__} lacks; "
            "install the torch version red-heart pins"
        ) from exc
    module.float()
    spec = dict.fromkeys(quantized_linear_names(module, min_weights), per_channel_dynamic_qconfig)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated")
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions")
        quantize_dynamic(module, spec, dtype=torch.qint8, inplace=True)
    return module


def is_quantized(module: nn.Module) -> bool:
    """Whether any layer of ``module`` is a dynamic int8 linear layer."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return any(isinstance(layer, DynamicLinear) for layer in module.modules())


def parameter_count(module: nn.Module) -> int:
    """``module``'s parameters, a dynamic int8 linear layer's packed weight and bias (not parameters) included."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    count = sum(p.numel() for p in module.parameters())
    for layer in module.modules():
        if isinstance(layer, DynamicLinear):
            weight, bias = layer._weight_bias()
            count += weight.numel() + (0 if bias is None else bias.numel())
    return count
