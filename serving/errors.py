"""The errors of the serving layer: each carries a stable ``code``, an HTTP status and what to fix.

Every transport turns them into the same JSON shape (:meth:`ServiceError.to_json`)::

    {"error": {"code": "too_many_texts", "message": "...", "status": 413,
               "field": "texts", "limit": 64, "request_id": "..."}}

``field`` and ``limit`` appear when one field or one limit is at fault; ``request_id`` when a transport
knows it. An invalid item inside a list is not an exception: it is reported in place (:func:`item_error`).
"""

from __future__ import annotations

from typing import Any

from ..pipelines.text import InputError


class ServiceError(Exception):
    """A request the service refuses or cannot answer; ``code`` is stable, ``message`` says what to do."""

    code = "error"
    status = 500

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        limit: int | float | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.limit = limit
        self.retry_after_s = retry_after_s

    def to_json(self, request_id: str | None = None) -> dict[str, Any]:
        return error_body(self.code, self.message, self.status, self.field, self.limit, request_id)


class InvalidRequest(ServiceError):
    """A field has a wrong value (422)."""

    code = "invalid_request"
    status = 422


class InvalidText(InvalidRequest):
    """The one text of a request is empty, too long or otherwise refused by the pipeline (422)."""

    code = "invalid_text"


class InvalidImage(InvalidRequest):
    """An image that cannot be read: bad base64, a corrupt or truncated file, an unsupported format (422)."""

    code = "invalid_image"


class TooLarge(ServiceError):
    """The request is bigger than a limit (413): body bytes, texts per request, stream items, image size."""

    code = "too_large"
    status = 413


class ImagesUnavailable(ServiceError):
    """This server cannot read images: the ``vision`` extra or the face model's weights are missing (501)."""

    code = "images_unavailable"
    status = 501


class Overloaded(ServiceError):
    """More pending texts than ``max_pending_texts``: retry after ``retry_after_s`` (503)."""

    code = "overloaded"
    status = 503


class NotReady(ServiceError):
    """The model is still loading (503)."""

    code = "not_ready"
    status = 503


class RequestTimeout(ServiceError):
    """The answer took longer than ``request_timeout_s`` (504)."""

    code = "timeout"
    status = 504


def error_body(
    code: str,
    message: str,
    status: int,
    field: str | None = None,
    limit: int | float | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The one JSON error shape of every route and transport."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if field is not None:
        error["field"] = field
    if limit is not None:
        error["limit"] = limit
    if request_id is not None:
        error["request_id"] = request_id
    return {"error": error}


def item_error(index: int, err: BaseException) -> dict[str, Any]:
    """The in-place entry of an invalid item of a list: ``{"error": {code, message, type, index}}``, with
    ``field`` and ``limit`` when a service error names them."""
    if isinstance(err, ServiceError):
        code, message = err.code, err.message
    elif isinstance(err, InputError):
        code, message = "invalid_text", err.reason
    else:
        code, message = "internal_error", f"{type(err).__name__}: {err}"
    entry: dict[str, Any] = {"code": code, "message": message, "type": type(err).__name__, "index": index}
    if isinstance(err, ServiceError):
        entry.update({k: v for k, v in (("field", err.field), ("limit", err.limit)) if v is not None})
    return {"error": entry}


def raise_item_error(entry: dict[str, Any], field: str) -> None:
    """Raise the service error of an in-place entry (the one item of a single-text request); ``field`` is the
    text's name when the entry names none."""
    kinds = {cls.code: cls for cls in (InvalidImage, TooLarge, ImagesUnavailable)}
    if entry["code"] == "internal_error":
        raise RuntimeError(entry["message"])
    kind = kinds.get(entry["code"], InvalidText)
    raise kind(entry["message"], field=entry.get("field", field), limit=entry.get("limit"))
