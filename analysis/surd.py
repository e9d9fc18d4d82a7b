"""Exact SURD: synergistic-unique-redundant decomposition of causality.

Martínez-Sánchez, Arranz & Lozano-Durán, "Decomposing causality into its synergistic, unique, and
redundant components", Nature Communications 15, 9296 (2024).

For every target state t and every agent subset j the specific mutual information

    i(t; A_j) = sum_a p(a | t) log2[ p(t | a) / p(t) ]

is computed from the joint histogram. Per target state the values are sorted; a subset of order k keeps
its value only if it exceeds every value of lower order (otherwise it adds nothing new and is set to
zero). The increments between consecutive sorted values are the information gained by adding that
subset: increments of single agents go to the redundancy of all agents not yet passed (the last single
agent's increment is its unique causality), increments of multi-agent subsets go to their synergy.
Weighting by p(t) and summing over t gives parts that add up to I(T; A); the leak is H(T | A) / H(T).

Differences from the authors' reference code, all in the direction of exactness: zero probabilities are
handled with 0·log 0 = 0 instead of adding 1e-14 to the histogram; ties between a higher-order subset
and the best lower-order one (a copy of an agent adds nothing) are resolved with a relative tolerance
and in favour of the lower order, so a duplicated or copied agent is never reported as synergy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from ._checks import finite_array
from .binning import Binning, discretize
from .surd_result import Key, SurdResult

__all__ = ["ConstantTargetError", "surd", "surd_from_distribution", "surd_from_samples"]

#: Largest joint histogram (cells, float64) built in one piece; beyond it use ``max_order``.
MAX_JOINT_CELLS = 2**24
#: Up to this many agents every redundancy key is listed (2**n of them), above it only non-zero ones.
_ENUMERATE_REDUNDANT_UP_TO = 16
#: Relative tolerance deciding that a higher-order specific MI does not exceed the lower orders.
_TIE_RTOL = 1e-10

BinsSpec = int | None | Sequence[int | None]


class ConstantTargetError(ValueError):
    """The target has a single state, so H(T) = 0 and there is nothing to decompose."""


# ----------------------------------------------------------------------------------------------------
# core: from marginal joint distributions to the decomposition


def _subsets(n_agents: int, max_order: int) -> list[Key]:
    """All agent subsets of size 1..max_order, ordered by size then lexicographically."""
    return [k for r in range(1, max_order + 1) for k in combinations(range(n_agents), r)]


def _entropy_bits(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(-(nz * np.log2(nz)).sum())


def _specific_mi(p_ta: np.ndarray, p_t: np.ndarray) -> np.ndarray:
    """i(t; A) in bits for each target state, from the joint p(t, a) flattened to [n_t, n_a]."""
    p_a = p_ta.sum(axis=0, keepdims=True)
    nz = p_ta > 0
    ratio = np.ones_like(p_ta)
    np.divide(p_ta, p_a * p_t[:, None], out=ratio, where=nz)
    kl = np.where(nz, p_ta * np.log2(ratio), 0.0).sum(axis=1)
    out = np.zeros_like(p_t)
    np.divide(kl, p_t, out=out, where=p_t > 0)
    return np.maximum(out, 0.0)  # a Kullback-Leibler divergence: negative values are rounding only


def _decompose(
    spec: np.ndarray, p_t: np.ndarray, subsets: list[Key], n_agents: int
) -> tuple[dict[Key, float], np.ndarray]:
    """Redundant/unique amounts keyed by agent sets, and synergy per subset (aligned with ``subsets``)."""
    sizes = np.array([len(k) for k in subsets])
    singles = np.flatnonzero(sizes == 1)
    red: dict[Key, float] = {}
    syn = np.zeros(len(subsets))
    tol = _TIE_RTOL * max(1.0, float(spec.max(initial=0.0)))
    for t in np.flatnonzero(p_t > 0):
        vals = spec[t].copy()
        running = vals[singles].max()
        for order in range(2, int(sizes.max()) + 1):
            sel = sizes == order
            kept = np.where(vals[sel] > running + tol, vals[sel], 0.0)
            vals[sel] = kept
            running = max(running, float(kept.max(initial=0.0)))
        order_idx = np.lexsort((sizes, vals))  # ascending value; ties: lower order first
        inc = np.diff(vals[order_idx], prepend=0.0) * p_t[t]
        is_single = sizes[order_idx] == 1
        np.add.at(syn, order_idx[~is_single], inc[~is_single])
        passed = [subsets[i][0] for i in order_idx[is_single]]
        for pos, amount in zip(range(n_agents), inc[is_single], strict=True):
            key = tuple(sorted(passed[pos:]))
            red[key] = red.get(key, 0.0) + float(amount)
    return red, syn


def _decomposition(
    p_t: np.ndarray,
    joint_of: Callable[[Key], np.ndarray],
    n_agents: int,
    max_order: int,
    agent_names: tuple[str, ...],
    **meta: Any,
) -> SurdResult:
    """Run SURD given the target marginal and a function returning p(t, A_j) as [n_t, n_a]."""
    h_t = _entropy_bits(p_t)
    if h_t <= 0:
        raise ConstantTargetError(
            "the target is constant (one state after binning): H(T) = 0, so there is no information "
            "to decompose and the leak H(T|A)/H(T) is undefined"
        )
    subsets = _subsets(n_agents, max_order)
    spec = np.stack([_specific_mi(joint_of(k), p_t) for k in subsets], axis=1)  # [n_t, n_subsets]
    mi = {k: float(p_t @ spec[:, j]) for j, k in enumerate(subsets)}
    red_raw, syn_arr = _decompose(spec, p_t, subsets, n_agents)

    unique = {(i,): 0.0 for i in range(n_agents)}
    redundant: dict[Key, float] = {}
    if n_agents <= _ENUMERATE_REDUNDANT_UP_TO:
        redundant = {k: 0.0 for r in range(2, n_agents + 1) for k in combinations(range(n_agents), r)}
    for key, value in red_raw.items():
        if len(key) == 1:
            unique[key] += value
        elif value != 0.0 or key in redundant:
            redundant[key] = redundant.get(key, 0.0) + value
    synergistic = {k: float(syn_arr[j]) for j, k in enumerate(subsets) if len(k) > 1}

    total = sum(unique.values()) + sum(redundant.values()) + sum(synergistic.values())
    truncated = max_order < n_agents
    notes = list(meta.pop("notes", ()))
    if truncated:
        notes.append(
            f"agent subsets larger than max_order={max_order} were not evaluated: total_mi is a lower "
            "bound on I(T; all agents) and the leak an upper bound"
        )
    return SurdResult(
        redundant=redundant,
        unique=unique,
        synergistic=synergistic,
        mutual_information=mi,
        total_mi=float(total),
        entropy_target=h_t,
        leak_bits=float(max(0.0, h_t - total)),
        agent_names=agent_names,
        max_order=max_order,
        truncated=truncated,
        notes=tuple(notes),
        **meta,
    )


def _check_order(max_order: int | None, n_agents: int) -> int:
    if max_order is None:
        return n_agents
    if isinstance(max_order, bool) or not isinstance(max_order, (int, np.integer)) or max_order < 1:
        raise ValueError(f"max_order must be a positive integer or None, got {max_order!r}")
    return min(int(max_order), n_agents)


def _names(agent_names: Sequence[str] | None, n_agents: int) -> tuple[str, ...]:
    if agent_names is None:
        return tuple(f"A{i}" for i in range(n_agents))
    names = tuple(str(n) for n in agent_names)
    if len(names) != n_agents:
        raise ValueError(f"agent_names has {len(names)} names for {n_agents} agents")
    if len(set(names)) != len(names):
        raise ValueError(f"agent_names must be unique, got {names}")
    return names


# ----------------------------------------------------------------------------------------------------
# front ends


def surd_from_distribution(
    p: Any, *, max_order: int | None = None, agent_names: Sequence[str] | None = None
) -> SurdResult:
    """SURD of a joint probability (or count) array; axis 0 is the target, the other axes the agents.

    This is the exact decomposition of the given distribution; nothing is estimated. The array is
    normalised to sum to one, so raw counts are fine.
    """
    arr = finite_array(p, "p")
    if arr.ndim < 2:
        raise ValueError(f"p needs a target axis and at least one agent axis, got shape {arr.shape}")
    if (arr < 0).any():
        raise ValueError("p contains negative entries; it must be a probability or count array")
    total = arr.sum()
    if total <= 0:
        raise ValueError("p sums to zero")
    arr = arr / total
    n_agents = arr.ndim - 1
    order = _check_order(max_order, n_agents)
    p_t = arr.sum(axis=tuple(range(1, arr.ndim)))

    def joint_of(key: Key) -> np.ndarray:
        drop = tuple(a + 1 for a in range(n_agents) if a not in key)
        return arr.sum(axis=drop).reshape(arr.shape[0], -1)

    return _decomposition(
        p_t, joint_of, n_agents, order, _names(agent_names, n_agents), n_states=tuple(arr.shape)
    )


def _decompose_codes(
    codes: np.ndarray,
    n_states: tuple[int, ...],
    *,
    max_order: int | None,
    agent_names: Sequence[str] | None,
    min_samples_per_cell: float,
    lags: tuple[int, ...] | None,
) -> SurdResult:
    """SURD of integer-coded samples ``codes`` [n_samples, 1 + n_agents] (column 0 = target)."""
    n, n_agents = codes.shape[0], codes.shape[1] - 1
    order = _check_order(max_order, n_agents)
    names = _names(agent_names, n_agents)
    if n_states[0] < 2:
        raise ConstantTargetError(
            "the target is constant (one state after binning): H(T) = 0, so there is no information "
            "to decompose and the leak H(T|A)/H(T) is undefined"
        )
    largest = sorted(n_states[1:], reverse=True)[:order]
    cells = max(math.prod(largest), n_states[0])
    needed = math.ceil(min_samples_per_cell * cells)
    if n < needed:
        raise ValueError(
            f"too few samples for the bin count: {n} samples for {cells} agent-state cells "
            f"(states per agent {list(n_states[1:])}, target {n_states[0]}, max_order {order}); "
            f"need at least {needed} (min_samples_per_cell={min_samples_per_cell}). "
            "Use fewer bins, fewer agents or a lower max_order."
        )

    full_cells = math.prod(n_states)
    if full_cells <= MAX_JOINT_CELLS:
        flat = np.ravel_multi_index(tuple(codes.T), n_states)
        joint = np.bincount(flat, minlength=full_cells).reshape(n_states) / n

        def joint_of(key: Key) -> np.ndarray:
            drop = tuple(a + 1 for a in range(n_agents) if a not in key)
            return joint.sum(axis=drop).reshape(n_states[0], -1)

        p_t = joint.sum(axis=tuple(range(1, joint.ndim)))
    elif order < n_agents:

        def joint_of(key: Key) -> np.ndarray:
            cols = (0, *(a + 1 for a in key))
            dims = tuple(n_states[c] for c in cols)
            flat = np.ravel_multi_index(tuple(codes[:, cols].T), dims)
            return np.bincount(flat, minlength=math.prod(dims)).reshape(dims[0], -1) / n

        p_t = np.bincount(codes[:, 0], minlength=n_states[0]) / n
    else:
        raise ValueError(
            f"the joint histogram would have {full_cells} cells (states {list(n_states)}), more than "
            f"{MAX_JOINT_CELLS}; use fewer bins or set max_order below {n_agents}"
        )
    return _decomposition(
        p_t, joint_of, n_agents, order, names, n_samples=n, n_states=tuple(n_states), lags=lags
    )


def _agents_matrix(agents: Any, n_expected: int | None, name: str) -> np.ndarray:
    """Agents as a float matrix [n_samples, n_agents] from a 2-D array, a 1-D array or a list of 1-D."""
    if isinstance(agents, (list, tuple)) and agents and np.ndim(agents[0]) == 1:
        cols = [finite_array(a, f"{name}[{i}]", ndim=(1,)) for i, a in enumerate(agents)]
        lengths = {len(c) for c in cols}
        if len(lengths) > 1:
            raise ValueError(f"{name} have different lengths: {[len(c) for c in cols]}")
        mat = np.stack(cols, axis=1)
    else:
        mat = finite_array(agents, name, ndim=(1, 2))
        if mat.ndim == 1:
            mat = mat[:, None]
    if n_expected is not None and mat.shape[0] != n_expected:
        hint = ""
        if mat.shape[1] == n_expected:
            hint = " (it looks like [n_agents, n_samples]; pass the transpose)"
        raise ValueError(
            f"length mismatch: target has {n_expected} samples but {name} has {mat.shape[0]}{hint}"
        )
    return mat


def _per_variable_bins(bins: BinsSpec, n_vars: int) -> list[int | None]:
    if bins is None or isinstance(bins, (int, np.integer)):
        return [bins] * n_vars  # type: ignore[list-item]
    spec = list(bins)
    if len(spec) != n_vars:
        raise ValueError(f"bins has {len(spec)} entries, expected {n_vars} (target first, then agents)")
    return spec


def _code_columns(
    columns: np.ndarray, bins: BinsSpec, binning: Binning
) -> tuple[np.ndarray, tuple[int, ...]]:
    per_var = _per_variable_bins(bins, columns.shape[1])
    coded = [discretize(columns[:, j], b, binning) for j, b in enumerate(per_var)]
    codes = np.stack([c for c, _ in coded], axis=1)
    return codes, tuple(s for _, s in coded)


def surd(
    target: Any,
    agents: Any,
    *,
    lags: int | Sequence[int] = 1,
    bins: BinsSpec = 10,
    binning: Binning = "equal",
    max_order: int | None = None,
    agent_names: Sequence[str] | None = None,
    min_samples_per_cell: float = 1.0,
) -> SurdResult:
    """SURD of time series: which agents at time t drive the target at time t + lag.

    ``target`` is 1-D [n]; ``agents`` is an array [n, n_agents], a 1-D series, or a list/tuple of 1-D
    series (a list is always read as columns, never as rows; the target itself may be one of the agents,
    giving its self-causality). ``lags`` is one non-negative integer or
    one per agent: agent i at step t is paired with the target at step t + lags[i], so ``n - max(lags)``
    aligned samples remain. ``bins`` is the number of states per variable (an int, ``None`` for already
    discrete values, or a sequence with the target first). The sample-size guard requires at least
    ``min_samples_per_cell`` aligned samples per cell of the largest evaluated agent histogram.
    """
    t = finite_array(target, "target", ndim=(1,))
    a = _agents_matrix(agents, t.shape[0], "agents")
    n, n_agents = a.shape
    lag_arr = np.broadcast_to(np.asarray(lags), (n_agents,)) if np.ndim(lags) == 0 else np.asarray(lags)
    if lag_arr.shape != (n_agents,):
        raise ValueError(
            f"lags must be one integer or one per agent ({n_agents}), got {list(np.ravel(lags))}"
        )
    if not np.issubdtype(lag_arr.dtype, np.integer) or (lag_arr < 0).any():
        raise ValueError(f"lags must be non-negative integers, got {list(np.ravel(lags))}")
    max_lag = int(lag_arr.max())
    if n - max_lag < 2:
        raise ValueError(f"series of length {n} is too short for lag {max_lag}")
    aligned = np.empty((n - max_lag, n_agents + 1))
    aligned[:, 0] = t[max_lag:]
    for i, lag in enumerate(lag_arr):
        aligned[:, i + 1] = a[max_lag - lag : n - lag, i]
    codes, n_states = _code_columns(aligned, bins, binning)
    return _decompose_codes(
        codes,
        n_states,
        max_order=max_order,
        agent_names=agent_names,
        min_samples_per_cell=min_samples_per_cell,
        lags=tuple(int(x) for x in lag_arr),
    )


def surd_from_samples(
    target_values: Any,
    agent_values: Any,
    *,
    bins: BinsSpec = None,
    binning: Binning = "equal",
    max_order: int | None = None,
    agent_names: Sequence[str] | None = None,
    min_samples_per_cell: float = 1.0,
) -> SurdResult:
    """SURD of i.i.d. samples with no time lag, e.g. clauses switched on/off versus the judgement.

    Row k of ``agent_values`` (an array [n, n_agents], 1-D, or a list of 1-D columns) goes with
    ``target_values[k]``.
    By default (``bins=None``) every variable is treated as discrete; give ``bins`` (an int or one entry
    per variable, target first, ``None`` for discrete ones) to bin continuous values such as scores.
    """
    t = finite_array(target_values, "target_values", ndim=(1,))
    a = _agents_matrix(agent_values, t.shape[0], "agent_values")
    codes, n_states = _code_columns(np.column_stack([t, a]), bins, binning)
    return _decompose_codes(
        codes,
        n_states,
        max_order=max_order,
        agent_names=agent_names,
        min_samples_per_cell=min_samples_per_cell,
        lags=None,
    )
