"""The REST API: a FastAPI app over one :class:`~.service.AnalysisService` (``python -m redheart.serving``).

Routes: ``POST /v1/analyze`` (one text or a list, with the pipeline's options), ``POST /v1/streams``
(``analyze_stream``), ``GET /v1/schema`` (the output JSON Schema), ``GET /v1/model`` (model and encoder
identity, settings), ``GET /v1/model/card`` (the model card), ``GET /healthz`` (the process answers),
``GET /readyz`` (the model is loaded), ``GET /metrics`` (Prometheus), ``GET /v1/monitor`` (live figures as
JSON) and ``GET /monitor`` (a page that plots them), ``GET /docs`` and ``/openapi.json``.

The model loads in the background after the server starts, so ``/healthz`` answers at once and ``/readyz``
(and every analysis route) says 503 until it is loaded. Every error, from any layer, is the JSON of
:func:`~.errors.error_body`; a 503 carries ``Retry-After``. Shutdown (SIGINT/SIGTERM) stops accepting
connections, lets requests in flight finish (``shutdown_timeout_s``), then waits for admitted work and
releases the model.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .errors import NotReady, ServiceError, error_body
from .guard import RequestGuard, RequestLog
from .prometheus import CONTENT_TYPE, ServingMetrics
from .rest_models import (
    AnalyzeRequest,
    AnalyzeResponse,
    ErrorResponse,
    StreamRequest,
    StreamResponse,
    add_analysis_schema,
)
from .service import AnalysisService
from .settings import ServingSettings

logger = logging.getLogger("redheart.serving")
MONITOR_PAGE = Path(__file__).with_name("monitor.html")
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed JSON or a body that is not UTF-8"},
    401: {"model": ErrorResponse, "description": "Missing or wrong API key (when the server has one)"},
    408: {"model": ErrorResponse, "description": "The body did not arrive in time"},
    413: {
        "model": ErrorResponse,
        "description": "Body, texts per request, stream items or an image's bytes or pixels over a limit",
    },
    422: {
        "model": ErrorResponse,
        "description": "A field has a wrong type or value, or an image is not valid base64 or cannot be read "
        "(named in `field`)",
    },
    503: {"model": ErrorResponse, "description": "Overloaded or still loading; retry after `Retry-After` s"},
    501: {
        "model": ErrorResponse,
        "description": "An image was sent to a server without the `vision` extra or the face model",
    },
    504: {"model": ErrorResponse, "description": "No answer within the request timeout"},
}
DESCRIPTION = (
    "Ethics- and emotion-aware text analysis (Korean + English): emotions, Bentham utility, regret, exact SURD; "
    "a photo sent with a text (`image`, base64) adds its faces' expressions (`analysis.emotion.face`). "
    "A result follows the `Analysis` schema (the pipeline's `analysis.schema.json`). Errors share one shape: "
    '`{"error": {"code", "message", "status", "field"?, "limit"?, "request_id"?}}`.'
)


class ServerState:
    """The service once loaded (or why it failed), shared by the routes."""

    def __init__(
        self, settings: ServingSettings, metrics: ServingMetrics, service: AnalysisService | None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.service = service
        self.load_error: str | None = None

    async def load(self) -> None:
        try:
            self.service = await AnalysisService.open(self.settings, metrics=self.metrics)
            logger.info("model loaded: %s", self.service.describe()["model"])
        except Exception as err:  # reported by /readyz; the process stays up to say why
            self.load_error = f"{type(err).__name__}: {err}"
            logger.exception("the model could not be loaded")

    def ready(self) -> AnalysisService:
        if self.service is not None:
            return self.service
        if self.load_error is not None:
            raise NotReady(f"the model could not be loaded: {self.load_error}")
        raise NotReady("the model is still loading", retry_after_s=max(self.settings.retry_after_s, 1))


def create_app(settings: ServingSettings | None = None, *, service: AnalysisService | None = None) -> FastAPI:
    """The app; without ``service`` it loads ``settings.model`` in the background and releases it at shutdown."""
    settings = settings if settings is not None else ServingSettings.from_env()
    metrics = service.metrics if service is not None else ServingMetrics()
    state = ServerState(settings, metrics, service)
    log = RequestLog(settings.request_log)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loading = None if state.service is not None else asyncio.create_task(state.load())
        try:
            yield
        finally:
            if loading is not None:
                if not loading.done():
                    loading.cancel()
                elif state.service is not None:
                    await state.service.aclose()
            log.close()

    from .. import __version__

    app = FastAPI(title="Red Heart", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.red_heart = state
    _add_routes(app, state)
    _add_error_handlers(app)
    app.add_middleware(RequestGuard, settings=settings, metrics=metrics, log=log)
    if settings.cors_origins:  # outermost, so preflights and refusals carry the CORS headers
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "x-request-id"],
            expose_headers=["x-request-id", "retry-after"],
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            app.openapi_schema = add_analysis_schema(document, AnalysisService.output_schema())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


def _add_routes(app: FastAPI, state: ServerState) -> None:
    @app.post(
        "/v1/analyze", response_model=None, responses={200: {"model": AnalyzeResponse}, **ERROR_RESPONSES}
    )
    async def analyze(body: AnalyzeRequest, request: Request) -> JSONResponse:
        """Analyse `text` (answered as `result`) or `texts` (answered as `results`, errors in place), each
        optionally with a photo (`image` / `images`, base64)."""
        service = state.ready()
        options = body.options()
        if body.text is not None:
            result = await service.analyze(
                body.text, alternatives=body.alternatives, image=body.image, **options
            )
            return JSONResponse({"request_id": _request_id(request), "result": result})
        results = await service.analyze_many(
            body.texts, alternatives=body.alternatives, images=body.images, **options
        )
        return JSONResponse({"request_id": _request_id(request), "results": results})

    @app.post(
        "/v1/streams", response_model=None, responses={200: {"model": StreamResponse}, **ERROR_RESPONSES}
    )
    async def streams(body: StreamRequest, request: Request) -> JSONResponse:
        """Analyse a stream item by item, then smooth (Kalman + RTS), find periods and run SURD."""
        service = state.ready()
        stream = await service.analyze_stream(body.texts, body.timestamps, stream_options=body.stream_options)
        return JSONResponse({"request_id": _request_id(request), "stream": stream})

    @app.get("/v1/schema")
    async def schema() -> JSONResponse:
        """The JSON Schema of one analysis result."""
        return JSONResponse(AnalysisService.output_schema())

    @app.get("/v1/model", responses={503: ERROR_RESPONSES[503]})
    async def model() -> JSONResponse:
        """The served model (name, revision, backend, dtype computed in, CPU capability), encoders, settings."""
        return JSONResponse(state.ready().describe())

    @app.get("/v1/model/card", response_class=PlainTextResponse, responses={503: ERROR_RESPONSES[503]})
    async def model_card() -> PlainTextResponse:
        """The model card (README.md of the model folder), as Markdown."""
        return PlainTextResponse(state.ready().model_card(), media_type="text/markdown; charset=utf-8")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process answers (no model needed)."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: ERROR_RESPONSES[503]})
    async def readyz() -> dict[str, Any]:
        """The model is loaded and requests are served."""
        service = state.ready()
        return {"status": "ready", "model": service.describe()["model"]}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        """Prometheus metrics: stage latency histograms, requests, texts, errors, queue depth, cache, model."""
        return Response(state.metrics.exposition(), media_type=CONTENT_TYPE)

    @app.get("/v1/monitor")
    async def monitor_data() -> JSONResponse:
        """Live figures for the monitor page (stages, cache, queue depth, counter totals)."""
        if state.service is None:
            return JSONResponse(
                {"ready": False, "load_error": state.load_error, "totals": state.metrics.totals()}
            )
        return JSONResponse({"ready": True, **state.service.snapshot()})

    @app.get("/monitor", response_class=HTMLResponse, include_in_schema=False)
    async def monitor_page() -> HTMLResponse:
        return HTMLResponse(MONITOR_PAGE.read_text(encoding="utf-8"))


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, err: ServiceError) -> JSONResponse:
        headers = {} if err.retry_after_s is None else {"Retry-After": str(err.retry_after_s)}
        return JSONResponse(err.to_json(_request_id(request)), status_code=err.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, err: RequestValidationError) -> JSONResponse:
        status, code, message, field = describe_validation(err.errors())
        app.state.red_heart.metrics.error(code)
        return JSONResponse(
            error_body(code, message, status, field, request_id=_request_id(request)), status_code=status
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        message = f"{request.method} {request.url.path}: {err.detail}"
        return JSONResponse(
            error_body(code, message, err.status_code, request_id=_request_id(request)),
            status_code=err.status_code,
            headers=getattr(err, "headers", None),
        )


def describe_validation(errors: list[dict[str, Any]]) -> tuple[int, str, str, str | None]:
    """(status, code, message, field) of FastAPI's validation errors: malformed JSON is 400, the rest 422.

    An unknown field is the most specific complaint, so when there is one only unknown fields are reported;
    the union branches pydantic tried (``bool``, ``list[str]``, ``ExplainOptions``) are left out of paths.
    """
    for error in errors:
        if error.get("type") == "json_invalid":
            detail = (error.get("ctx") or {}).get("error", "")
            return 400, "malformed_json", f"the body is not valid JSON: {detail}".rstrip(": "), None
    unknown = [e for e in errors if e.get("type") == "extra_forbidden"]
    # the deepest complaint first: of the union branches tried, the one that got furthest says most
    chosen = sorted(unknown or errors, key=lambda e: -len(field_path(e.get("loc", ())) or ""))
    first = chosen[0] if chosen else {}
    field = field_path(first.get("loc", ()))
    if field is None and first.get("type") in ("missing", "model_attributes_type", "dict_type"):
        return (
            422,
            "invalid_request",
            "the body must be a JSON object (sent as Content-Type: application/json)",
            None,
        )
    parts: list[str] = []
    for error in chosen:
        where = field_path(error.get("loc", ())) or "body"
        message = "unknown field" if unknown else str(error.get("msg")).removeprefix("Value error, ")
        if f"{where}: {message}" not in parts:
            parts.append(f"{where}: {message}")
    more = f" (and {len(parts) - 5} more)" if len(parts) > 5 else ""
    return 422, "unknown_field" if unknown else "invalid_request", "; ".join(parts[:5]) + more, field


def field_path(location: Any) -> str | None:
    """``("body", "texts", 1)`` -> ``"texts[1]"``, leaving out the union branches pydantic names in paths."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not _is_branch(part) and not (part == "body" and not path):
            path += f".{part}" if path else part
    return path or None


_TYPE_TAGS = frozenset({"bool", "int", "float", "str", "list", "dict", "tuple", "none"})


def _is_branch(part: str) -> bool:
    """A union branch in a pydantic error location (``list[str]``, ``bool``, a model name), not a field."""
    return "[" in part or part[:1].isupper() or part in _TYPE_TAGS
