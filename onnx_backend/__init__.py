"""ONNX backend: the whole inference path (encoders + Red Heart model) as ONNX graphs run by onnxruntime.

* :mod:`.graph` -- the exported modules: an encoder, and the model on a route's encoder states (flat tensors);
* :mod:`.encoder_export` -- an encoder's graph with onnxruntime's fused transformer kernels (Attention, SkipLayerNorm);
* :mod:`.export` -- every encoder and every route's model graph (dynamic batch and sequence axes), checked
  against torch;
* :mod:`.quantize` -- int8 dynamic quantization with onnxruntime's quantizer;
* :mod:`.manifest` -- what an exported folder holds and which model it was exported from (a fingerprint of the
  weights); a folder from another model or format version is a clear error;
* :mod:`.session` -- the runtime the pipeline calls with ``backend="onnx"``.

Export from the command line: ``python -m redheart.onnx_backend OUT_DIR [--model M] [--precision int8 fp32]``.
Needs the ``onnx`` extra (onnx, onnxscript, onnxruntime).
"""

from ..lazy_exports import lazy_getattr

#: Where each public name lives; imported on first use, so that :mod:`.graph` (pure torch, also the reference the
#: evaluation runs quantized torch through) imports without the ``onnx`` extra.
_HOMES = {
    "export_onnx": "export",
    "OnnxVersionError": "manifest",
    "model_fingerprint": "manifest",
    "OnnxRunner": "session",
    "load_runner": "session",
}

__all__ = sorted(_HOMES)
__getattr__ = lazy_getattr(__name__, _HOMES)
