"""``RequestGuard``: the ASGI layer every HTTP request passes before the routes see it.

In order: it names the request (``X-Request-ID``: the client's, if it is a plain token of at most 128
characters, else a new one; echoed in the response), checks the API key (bearer token; the health checks
and the monitor page shell are open), reads the whole body under the byte cap (413; an oversized body is
read to its end and dropped, never held) and the time cap (408), refuses a body that is not UTF-8 (400),
and only then runs the app with the body replayed. It counts requests by route and status, times them,
tracks the requests in flight, and writes one ``start`` and one ``end`` line per request to the request
log when one is set. Its refusals, and any error no route handled (500), use the one error shape of
:mod:`.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .errors import error_body
from .prometheus import ServingMetrics
from .settings import API_KEY_ENV, ServingSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("redheart.serving")

#: Routes anyone may call even when an API key is set (no data flows through them).
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/monitor"})
#: Routes counted by name in the metrics (anything else is "other", so scanners cannot grow the label set).
KNOWN_ROUTES = frozenset(
    {
        "/v1/analyze",
        "/v1/streams",
        "/v1/schema",
        "/v1/model",
        "/v1/model/card",
        "/v1/monitor",
        "/healthz",
        "/readyz",
        "/metrics",
        "/monitor",
        "/docs",
        "/openapi.json",
    }
)
REQUEST_ID_HEADER = b"x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: Most bytes of an oversized body read and dropped before answering 413 (beyond it the connection closes).
DRAIN_BYTES = 64 * 1024 * 1024


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str, limit: float | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.limit = status, code, message, limit


class RequestLog:
    """JSON lines, one ``start`` and one ``end`` per request id, appended (safe across worker processes)."""

    def __init__(self, path: str | None) -> None:
        self._file = None if path is None else open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self._lock = threading.Lock()

    def write(self, **entry: Any) -> None:
        if self._file is not None:
            line = json.dumps({"t": time.time(), **entry}, ensure_ascii=False) + "\n"
            with self._lock:
                self._file.write(line)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class RequestGuard:
    """Names, authenticates, bounds, measures and logs every HTTP request (see the module doc)."""

    def __init__(
        self, app: ASGIApp, settings: ServingSettings, metrics: ServingMetrics, log: RequestLog
    ) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        route = path if path in KNOWN_ROUTES else "other"
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        self.log.write(event="start", id=request_id, method=scope["method"], path=path)
        self.metrics.inflight_requests.inc()
        try:
            try:
                has_body = scope["method"] in BODY_METHODS
                await self._authenticate(scope, receive if has_body else None)
                if has_body:
                    receive = await self._buffered(scope, receive)
            except _Refusal as refusal:
                self.metrics.error(refusal.code)
                await _send_error(send_with_id, refusal, request_id)
                return
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as err:  # answered here, so the connection stays usable for the client
                logger.exception("unhandled error in request %s", request_id)
                self.metrics.error("internal_error")
                if response_started:
                    raise
                message = f"internal error ({type(err).__name__}); the server log names it by the request id"
                await _send_error(send_with_id, _Refusal(500, "internal_error", message), request_id)
        finally:
            self.metrics.inflight_requests.dec()
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.http_seconds.labels(route).observe(time.perf_counter() - started)
            self.log.write(event="end", id=request_id, status=status, answered=response_started)

    async def _authenticate(self, scope: Scope, receive: Receive | None) -> None:
        """Refuse a request without the right bearer token; its body (if any) is read and dropped first."""
        key = self.settings.api_key
        if key is None or scope["path"] in PUBLIC_PATHS:
            return
        try:
            self._check_token(scope, key)
        except _Refusal:
            if receive is not None:  # read what the client is sending, so that it reads the answer
                with contextlib.suppress(_Refusal):
                    await self._buffered(scope, receive)
            raise

    @staticmethod
    def _check_token(scope: Scope, key: str) -> None:
        header = _header(scope, b"authorization")
        if header is None:
            raise _Refusal(
                401,
                "unauthorized",
                f"this server needs an API key: send the header 'Authorization: Bearer <key>' (the key is the "
                f"server's {API_KEY_ENV})",
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
            raise _Refusal(401, "unauthorized", "wrong API key (expected 'Authorization: Bearer <key>')")

    async def _buffered(self, scope: Scope, receive: Receive) -> Receive:
        """Read the whole body under the byte and time caps; return a ``receive`` that replays it.

        An oversized body is read to its end and dropped (up to :data:`DRAIN_BYTES`, within the time cap)
        before the 413, so the client, still sending, reads the answer instead of a reset connection.
        """
        limit = self.settings.max_body_bytes
        announced = _header(scope, b"content-length")
        too_large = announced is not None and announced.isdigit() and int(announced) > limit
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.body_timeout_s
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
            except TimeoutError:
                if too_large:
                    break
                raise _Refusal(
                    408,
                    "body_timeout",
                    f"the body did not arrive within {self.settings.body_timeout_s:g} s (body_timeout_s)",
                    self.settings.body_timeout_s,
                ) from None
            if message["type"] == "http.disconnect":
                raise _Refusal(499, "client_disconnected", "the client closed the connection while sending")
            chunk = message.get("body", b"")
            size += len(chunk)
            too_large = too_large or size > limit
            if not too_large:
                chunks.append(chunk)
            if not message.get("more_body", False) or size > DRAIN_BYTES:
                break
        if too_large:
            chunks.clear()
            shown = int(announced) if announced is not None and announced.isdigit() else size
            raise _Refusal(
                413,
                "body_too_large",
                f"the body has {shown} bytes, more than the limit of {limit} (max_body_bytes)",
                limit,
            )
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as err:
            raise _Refusal(
                400,
                "invalid_utf8",
                f"the body is not valid UTF-8 (byte 0x{body[err.start]:02x} at position {err.start}); send JSON "
                "encoded as UTF-8",
            ) from None
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        return replay


async def _send_error(send: Send, refusal: _Refusal, request_id: str) -> None:
    body = json.dumps(
        error_body(refusal.code, refusal.message, refusal.status, limit=refusal.limit, request_id=request_id)
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if refusal.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    if refusal.status in (408, 413, 499):
        headers.append((b"connection", b"close"))  # the rest of the body is not read
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _request_id(scope: Scope) -> str:
    given = _header(scope, REQUEST_ID_HEADER)
    if given is not None and _REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex
