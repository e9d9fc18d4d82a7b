"""Input validation shared by the analysis modules.

Every public function in this package turns user data into float arrays through these helpers so
that bad input fails early with a message that names the offending argument, instead of surfacing
later as a NaN or a division by zero deep inside a numerical routine.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def finite_array(x: Any, name: str, *, ndim: tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``x`` as a float64 array, raising ``ValueError`` for NaN/inf or a wrong rank."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, could not convert it to floats: {exc}") from exc
    if ndim is not None and arr.ndim not in ndim:
        allowed = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"{name} must be {allowed}, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    bad = ~np.isfinite(arr)
    if bad.any():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(bad.sum()) - n_nan
        raise ValueError(
            f"{name} contains {n_nan} NaN and {n_inf} infinite value(s); clean or drop them first"
        )
    return arr


def strictly_increasing(t: np.ndarray, name: str = "timestamps") -> np.ndarray:
    """Raise ``ValueError`` unless the 1-D array ``t`` is strictly increasing; return its steps."""
    dt = np.diff(t)
    if dt.size and not np.all(dt > 0):
        k = int(np.argmax(dt <= 0))
        raise ValueError(
            f"{name} must be strictly increasing; {name}[{k + 1}]={t[k + 1]!r} <= {name}[{k}]={t[k]!r}"
        )
    return dt


def as_timestamps(t: Any, name: str = "timestamps") -> np.ndarray:
    """Numeric or ``datetime64`` timestamps as float64 (datetimes become seconds since the first)."""
    arr = np.asarray(t)
    if np.issubdtype(arr.dtype, np.datetime64):
        if np.isnat(arr).any():
            raise ValueError(f"{name} contains NaT")
        arr = (arr - arr.reshape(-1)[0]) / np.timedelta64(1, "s")
    arr = finite_array(arr, name, ndim=(1,))
    strictly_increasing(arr, name)
    return arr


def positive_scalar(x: Any, name: str) -> float:
    """A finite, strictly positive float."""
    try:
        value = float(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {x!r}") from exc
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {x!r}")
    return value
