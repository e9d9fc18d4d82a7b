"""``Admission``: a bounded count of pending texts, so waiting work never grows without bound.

Each request is admitted for its number of texts; past ``max_pending_texts`` it is refused at once
(:class:`~.errors.Overloaded`, retry after ``retry_after_s``), and a request that alone needs more is
:class:`~.errors.TooLarge`. The caller waits at most ``request_timeout_s`` (:class:`~.errors.RequestTimeout`)
while the admitted work runs on, shielded, and frees its place only when it has really finished -- so the
count is the work the model still has to do, not the callers still waiting. :meth:`Admission.drain` closes
the door and waits for what was admitted.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .errors import Overloaded, RequestTimeout, TooLarge
from .prometheus import ServingMetrics
from .settings import ServingSettings

T = TypeVar("T")


class Admission:
    """Pending-text accounting with refusals, timeouts and a drain (see the module doc)."""

    def __init__(self, settings: ServingSettings, metrics: ServingMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.pending = 0
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._closed = False

    async def run(self, units: int, work: Callable[[], Awaitable[T]]) -> T:
        """Admit ``units`` texts, start ``work()`` and wait for it at most ``request_timeout_s``."""
        self._admit(units)
        task = asyncio.ensure_future(self._released_after(units, work()))
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.settings.request_timeout_s)
        except TimeoutError as err:
            self.metrics.error("timeout")
            raise RequestTimeout(
                f"no answer within {self.settings.request_timeout_s:g} s (request_timeout_s); the work still "
                "finishes and is counted, retry later or send fewer texts",
                limit=self.settings.request_timeout_s,
            ) from err

    async def drain(self) -> None:
        """Refuse new work and wait for admitted work (up to ``shutdown_timeout_s``)."""
        self._closed = True
        tasks = [t for t in self._tasks if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=self.settings.shutdown_timeout_s)

    def _admit(self, units: int) -> None:
        limit = self.settings.max_pending_texts
        if units > limit:
            raise TooLarge(
                f"the request needs {units} text slots (texts and alternatives), more than the limit of {limit} "
                "(max_pending_texts)",
                field="texts",
                limit=limit,
            )
        with self._lock:
            if self._closed:
                self.metrics.error("shutting_down")
                raise Overloaded("the server is shutting down", retry_after_s=self.settings.retry_after_s)
            if self.pending + units > limit:
                self.metrics.error("overloaded")
                raise Overloaded(
                    f"{self.pending} texts are waiting; {units} more would pass the limit of {limit} "
                    f"(max_pending_texts): retry after {self.settings.retry_after_s} s",
                    limit=limit,
                    retry_after_s=self.settings.retry_after_s,
                )
            self.pending += units
            self.metrics.pending_texts.set(self.pending)

    async def _released_after(self, units: int, work: Awaitable[T]) -> T:
        try:
            return await work
        finally:
            with self._lock:
                self.pending -= units
                self.metrics.pending_texts.set(self.pending)

    def _forget(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved, so an abandoned task's error is not logged as "never retrieved"
