"""Discretisation of continuous or categorical samples into integer state codes.

SURD works on a joint probability mass function, so continuous variables have to be binned first.
Equal-width bins (the SURD authors' choice, ``np.histogramdd`` semantics) keep the physical meaning of
each state; quantile bins give every state of a variable the same marginal mass, which is more robust
for skewed readings such as model probabilities clustered near 0. Already-discrete variables (clause
switched on/off, class labels) are coded by their distinct values.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Binning = Literal["equal", "quantile"]


def discretize(x: np.ndarray, bins: int | None, binning: Binning = "equal") -> tuple[np.ndarray, int]:
    """Code a finite 1-D array into states ``0..n_states-1``; return ``(codes, n_states)``.

    ``bins=None`` treats the values as categories. A constant variable gets a single state. With
    quantile binning, tied values always share a state and empty states are dropped, so ``n_states``
    may be smaller than ``bins`` for variables with few distinct values.
    """
    if bins is None:
        _, codes = np.unique(x, return_inverse=True)
        return codes.astype(np.int64).reshape(-1), int(codes.max()) + 1
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer or None (discrete), got {bins!r}")
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:
        return np.zeros(x.shape[0], dtype=np.int64), 1
    if binning == "equal":
        codes = np.floor((x - lo) * (int(bins) / (hi - lo))).astype(np.int64)
        np.clip(codes, 0, int(bins) - 1, out=codes)  # the maximum belongs to the last bin
        return codes, int(bins)
    if binning == "quantile":
        # state = floor(bins * fraction of samples strictly below x): equal mass, ties never split
        order = np.argsort(x)  # ties are regrouped below, so stability is not needed
        xs = x[order]
        idx = np.arange(x.shape[0])
        starts = np.maximum.accumulate(np.where(np.r_[True, xs[1:] != xs[:-1]], idx, 0))  # tie-group start
        below = np.empty_like(idx)
        below[order] = starts
        codes = (below * int(bins)) // x.shape[0]
        present = np.bincount(codes, minlength=int(bins)) > 0
        return (np.cumsum(present) - 1)[codes], int(present.sum())
    raise ValueError(f"binning must be 'equal' or 'quantile', got {binning!r}")
