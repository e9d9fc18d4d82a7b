"""When each item of a stream happened: timestamps as float64 in one unit.

``None``: item positions 0, 1, 2, ...; numbers: used as given (any unit); ``datetime``/``date``,
``numpy.datetime64`` or ISO-8601 strings: seconds since the first item (time-zone-aware values in UTC).
They must be strictly increasing (items sharing a time must be merged or ordered by the caller). Process
variances and periods are per / in these units.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np

__all__ = ["stream_timestamps"]


def stream_timestamps(timestamps: Any, n: int) -> tuple[np.ndarray, str, str | None]:
    """Timestamps as float64, their unit and origin: ``(t, unit, origin)``.

    ``None`` -> item positions 0..n-1 (unit ``"item"``); numbers -> as given (unit ``"given"``);
    ``datetime``/``date``/``numpy.datetime64``/ISO-8601 strings -> seconds since the first item (unit
    ``"second"``, origin = the first timestamp in ISO format). Raises ``ValueError`` for a length mismatch,
    non-finite values, or timestamps that are not strictly increasing.
    """
    if timestamps is None:
        return np.arange(n, dtype=np.float64), "item", None
    if isinstance(timestamps, (str, bytes)) or not hasattr(timestamps, "__len__"):
        raise ValueError("timestamps must be a sequence with one timestamp per item, or None")
    if len(timestamps) != n:
        raise ValueError(f"length mismatch: {n} items but {len(timestamps)} timestamps")
    if n == 0:
        raise ValueError("a stream needs at least one item")
    arr = np.asarray(timestamps)
    unit, origin = "given", None
    first = arr.reshape(-1)[0]
    if arr.dtype.kind in "OUS" and isinstance(first, (str, _dt.date, np.datetime64)) or arr.dtype.kind == "M":
        try:
            dt = np.array([_to_datetime64(x) for x in arr.reshape(-1)], dtype="datetime64[us]")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"timestamps could not be read as dates/times: {exc}") from exc
        if np.isnat(dt).any():
            raise ValueError("timestamps contain NaT")
        origin = str(dt[0])
        t = (dt - dt[0]) / np.timedelta64(1, "s")
        unit = "second"
    else:
        try:
            t = np.asarray(arr, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"timestamps must be numbers or dates/times: {exc}") from exc
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    if not np.isfinite(t).all():
        raise ValueError("timestamps contain NaN or infinite values")
    steps = np.diff(t)
    if steps.size and not (steps > 0).all():
        k = int(np.argmax(steps <= 0))
        raise ValueError(
            f"timestamps must be strictly increasing; timestamps[{k + 1}] <= timestamps[{k}] "
            f"({arr.reshape(-1)[k + 1]!r} <= {arr.reshape(-1)[k]!r}); merge items that share a time or order them"
        )
    return t, unit, origin


def _to_datetime64(x: Any) -> np.datetime64:
    if isinstance(x, _dt.datetime):
        if x.tzinfo is not None:
            x = x.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return np.datetime64(x, "us")
    if isinstance(x, (_dt.date, np.datetime64)):
        return np.datetime64(x, "us")
    if isinstance(x, str):
        parsed = _dt.datetime.fromisoformat(x.strip())
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return np.datetime64(parsed, "us")
    raise TypeError(f"cannot read {x!r} as a date/time")
