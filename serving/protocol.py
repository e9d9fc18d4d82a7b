"""``SlowClientGuardProtocol``: uvicorn's h11 protocol with a deadline for each request's headers.

uvicorn bounds idle keep-alive connections but not a client that sends its headers a byte at a time
(slowloris): such a connection would stay open for ever and, many of them, fill ``max_connections``. Here a
connection must deliver each request's complete headers within ``header_timeout_s`` of opening (or of the
previous answer), else it is closed. The body has its own deadline in :class:`~.guard.RequestGuard`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


class SlowClientGuardProtocol(H11Protocol):
    """h11 protocol that closes a connection whose request headers do not arrive in time."""

    #: Seconds to deliver a request's headers; set once per process by the app factory from the settings.
    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._armed_for: Any = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            self._arm()  # before the parent starts a pipelined request, which then counts as on time
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._armed_for = self.cycle  # a new request replaces the cycle; until then the headers are late
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self.cycle is self._armed_for and not self.transport.is_closing():
            self.logger.info(
                "closing a connection whose request headers took more than %g s", self.header_timeout_s
            )
            self.transport.close()
