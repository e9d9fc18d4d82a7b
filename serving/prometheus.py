"""Prometheus metrics of a served model, fed by the orchestrator's per-stage timings.

One :class:`ServingMetrics` per service, on its own registry (several services in one process never share
counters). :class:`ObservedStageMetrics` replaces the orchestrator's ``StageMetrics`` so every timing it
records (``queue``, ``preprocess``, ``encoders``, ``encoder:<name>``, ``model``, ``face`` -- the faces of
the requests' images --, ``postprocess``, ``request``) also lands in the ``redheart_stage_seconds``
histogram, labelled by stage as it comes. The feature cache and the model's identity are read when scraped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from ..pipelines.stage_metrics import StageMetrics

#: Latency buckets in seconds: 1 ms to 2 minutes (the default request timeout is 30 s).
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ObservedStageMetrics(StageMetrics):
    """``StageMetrics`` that also reports every recorded timing to a callback (a Prometheus histogram)."""

    def __init__(self, observe: Callable[[str, float], None], window: int = 2048) -> None:
        super().__init__(window)
        self._observe = observe

    def record(self, stage: str, seconds: float) -> None:
        super().record(stage, seconds)
        self._observe(stage, seconds)


class _LiveCollector(Collector):
    """Figures read when scraped: the feature cache, and the model's and encoders' identity."""

    def __init__(self, read_cache: Callable[[], dict | None], read_identity: Callable[[], dict]) -> None:
        self._read_cache = read_cache
        self._read_identity = read_identity

    def collect(self) -> Iterable[Any]:
        cache = self._read_cache()
        if cache is not None:
            for key in ("hits", "misses", "entries", "max_entries"):
                yield GaugeMetricFamily(
                    f"redheart_feature_cache_{key}", f"Encoder feature cache: {key}", value=cache[key]
                )
        identity = self._read_identity()
        if identity:
            model = InfoMetricFamily("redheart_model", "The served Red Heart model")
            model.add_metric([], {k: str(v) for k, v in identity["model"].items()})
            yield model
            encoders = InfoMetricFamily(
                "redheart_encoder", "The encoders of the served model", labels=["name"]
            )
            for encoder in identity["encoders"]:
                encoders.add_metric(
                    [encoder["name"]],
                    {
                        "model_name_or_path": str(encoder.get("model_name_or_path")),
                        "revision": str(encoder.get("revision")),
                        "resolved_revision": str(encoder.get("resolved_revision")),
                    },
                )
            yield encoders


class ServingMetrics:
    """The Prometheus registry of one service and the counters the transports update."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.started = time.time()
        self.stage_seconds = Histogram(
            "redheart_stage_seconds",
            "Latency of each orchestrator stage (queue, preprocess, encoders, model, face, postprocess, request)",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "redheart_http_request_seconds",
            "Wall time of HTTP requests, by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "redheart_requests",
            "Requests answered, by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.texts = Counter(
            "redheart_texts", "Texts analysed, by outcome (ok or error)", ["outcome"], registry=self.registry
        )
        self.errors = Counter(
            "redheart_errors", "Errors, by kind (the error code)", ["kind"], registry=self.registry
        )
        self.pending_texts = Gauge(
            "redheart_pending_texts",
            "Texts admitted and not yet answered (the queue depth)",
            registry=self.registry,
        )
        self.inflight_requests = Gauge(
            "redheart_inflight_requests", "Requests being served", registry=self.registry
        )
        self.ready = Gauge("redheart_ready", "1 once the model is loaded", registry=self.registry)

    def stage_observer(self) -> ObservedStageMetrics:
        return ObservedStageMetrics(lambda stage, seconds: self.stage_seconds.labels(stage).observe(seconds))

    def watch(self, read_cache: Callable[[], dict | None], read_identity: Callable[[], dict]) -> None:
        """Report the feature cache and the model identity at every scrape."""
        self.registry.register(_LiveCollector(read_cache, read_identity))

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)

    def totals(self) -> dict[str, Any]:
        """Counter totals as plain JSON (for the monitor page): texts, errors by kind, requests by status."""
        out: dict[str, Any] = {"texts": {}, "errors": {}, "requests": {}}
        for family in self.registry.collect():
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue
                if family.name == "redheart_texts":
                    out["texts"][sample.labels["outcome"]] = sample.value
                elif family.name == "redheart_errors":
                    out["errors"][sample.labels["kind"]] = sample.value
                elif family.name == "redheart_requests":
                    status = sample.labels["status"]
                    out["requests"][status] = out["requests"].get(status, 0) + sample.value
        return out
