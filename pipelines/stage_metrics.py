"""Per-stage latency metrics, readable from Python (``StageMetrics.summary()``); thread-safe."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager


class StageMetrics:
    """Latency samples per named stage (the last ``window`` of each), with count and percentiles."""

    def __init__(self, window: int = 2048) -> None:
        self.window = window
        self._samples: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=window))
        self._counts: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def record(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._samples[stage].append(seconds)
            self._counts[stage] += 1

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.record(stage, time.perf_counter() - start)

    def summary(self) -> dict[str, dict[str, float]]:
        """``{stage: {count, mean_ms, p50_ms, p95_ms, max_ms}}`` over the retained samples."""
        with self._lock:
            snapshot = {
                stage: (sorted(samples), self._counts[stage]) for stage, samples in self._samples.items()
            }
        out = {}
        for stage, (values, count) in snapshot.items():
            if not values:
                continue
            out[stage] = {
                "count": count,
                "mean_ms": 1000 * sum(values) / len(values),
                "p50_ms": 1000 * quantile(values, 0.50),
                "p95_ms": 1000 * quantile(values, 0.95),
                "max_ms": 1000 * values[-1],
            }
        return out

    def reset(self) -> None:
        with self._lock:
            self._samples.clear()
            self._counts.clear()


def quantile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated quantile of already sorted values."""
    position = q * (len(sorted_values) - 1)
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)
