"""Per-item readings of a stream and their observation variances (docs/DESIGN.md "Streams, Kalman and DSP").

Readings (:func:`readings_from_results`)
    Per item, ``valence`` = ``analysis.emotion.sentiment`` (in [-1, 1]); the seven core emotions
    ``anger .. neutral`` = ``analysis.emotion.core`` (probabilities); ``regret`` =
    ``analysis.regret.model_potential`` (the regret head; ``potential`` if that key is absent). Every point
    of every series is one item's reading: no series is simulated from scalars.

Observation variance of a reading (``var_k``; the per-item noise of the Kalman model)
    Every probability ``p`` below enters the formulas clipped to ``p~ = clip(p, 0.01, 0.99)`` (valence
    through ``p = (1 + v) / 2``), so that a reading of exactly 0 or 1 cannot claim near-zero noise and pin
    the smoothed state.

    * ``"model"`` -- when the model's own uncertainty is available for every item (the Kalman-fused
      variance of the raw outputs, ``RedHeartOutput.uncertainty``, a variance in logit space), it is mapped
      to the reading's scale by the delta method:

      - probability ``p = sigmoid(z / T)``: ``Var(p) = (p~ (1 - p~) / T)^2 Var(z)``  (``T``: the calibration
        temperature of the emotion logits, 1 unless given);
      - core emotion ``p_g = max_{l in g} p_l``: the delta method through the group's arg-max member ``l*``
        (the max is locally that member), ``Var(p_g) = (p~_l* (1 - p~_l*) / T)^2 Var(z_l*)``;
      - valence ``v = tanh(s)``: ``Var(v) = (1 - v^2)^2 Var(s)`` (``1 - v^2 = 4 p (1 - p)``, clipped as above);
      - regret ``r = sigmoid(z)``: ``Var(r) = (r~ (1 - r~))^2 Var(z)``.

    * ``"bernoulli"`` -- otherwise: a probability reading ``p`` gets the Bernoulli variance ``p~ (1 - p~)``
      of the event it predicts, and valence ``v`` the variance ``1 - v^2 = 4 p~ (1 - p~)`` of a +-1 outcome
      with ``P(+1) = p = (1 + v) / 2``. Readings near 0.5 (valence near 0) are the least certain.

    Both are floored at ``min_var`` (1e-6, only to keep them positive). Neither has a trustworthy absolute
    scale (the fused variance's scale is not identified by training: the fusion gain only depends on the
    ratio of the two learned variances), so by default they are used as *relative* noise levels: the
    observation variance is ``s * var_k`` with a per-signal scale ``s`` estimated with the process variance
    (:func:`redheart.analysis.fit_noise`). Pass ``obs_scale=1`` to use them as absolute variances.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...configuration_redheart.labels import CORE_LABELS, EKMAN_GROUPS

__all__ = ["DEFAULT_SIGNALS", "MIN_VAR", "P_CLIP", "StreamReadings", "check_signals", "readings_from_results"]

#: Signals read from every item, in this order.
DEFAULT_SIGNALS: tuple[str, ...] = ("valence", *CORE_LABELS, "regret")
#: Probabilities are clipped to [P_CLIP, 1 - P_CLIP] in the variance formulas (valence: (1 + v) / 2 is).
P_CLIP = 0.01
#: Absolute floor of a reading's variance before scaling (only keeps variances positive).
MIN_VAR = 1e-6


@dataclass(frozen=True)
class StreamReadings:
    """Per-item readings ``values`` [n, d] of the signals ``names`` with their variances [n, d].

    ``variance_source`` says per signal how the variance was obtained (``"model"``, ``"bernoulli"`` or
    ``"given"``); see the module doc for the formulas.
    """

    names: tuple[str, ...]
    values: np.ndarray
    variances: np.ndarray
    variance_source: tuple[str, ...]

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float64)
        variances = np.asarray(self.variances, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != len(self.names):
            raise ValueError(f"values must be [n_items, {len(self.names)}], got shape {values.shape}")
        if variances.shape != values.shape:
            raise ValueError(f"variances have shape {variances.shape}, values {values.shape}")
        if len(self.variance_source) != len(self.names):
            raise ValueError("variance_source needs one entry per signal")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"signal names must be unique, got {self.names}")
        if values.shape[0] == 0:
            raise ValueError("a stream needs at least one item")
        for arr, what in ((values, "readings"), (variances, "variances")):
            bad = ~np.isfinite(arr)
            if bad.any():
                k, j = map(int, np.argwhere(bad)[0])
                raise ValueError(
                    f"{what} contain non-finite values (first: item {k}, signal {self.names[j]!r})"
                )
        if (variances < 0).any():
            raise ValueError("variances must be non-negative")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "variances", variances)

    @property
    def n_items(self) -> int:
        return int(self.values.shape[0])

    def index(self, name: str) -> int:
        if name not in self.names:
            raise ValueError(f"unknown signal {name!r}; the stream has {list(self.names)}")
        return self.names.index(name)

    def select(self, names: Sequence[str]) -> StreamReadings:
        cols = [self.index(n) for n in names]
        return StreamReadings(
            tuple(names),
            self.values[:, cols],
            self.variances[:, cols],
            tuple(self.variance_source[c] for c in cols),
        )

    @classmethod
    def from_arrays(
        cls,
        names: Sequence[str],
        values: Any,
        variances: Any = None,
        *,
        probability: Sequence[bool] | None = None,
        min_var: float = MIN_VAR,
    ) -> StreamReadings:
        """Readings from arrays; without ``variances`` the Bernoulli rule is applied (module doc).

        ``probability`` marks which signals are probabilities in [0, 1] (default: every name except
        ``valence``, which is read as a value in [-1, 1]).
        """
        names = tuple(str(n) for n in names)
        vals = np.asarray(values, dtype=np.float64)
        if vals.ndim == 1 and len(names) == 1:
            vals = vals[:, None]
        if vals.ndim != 2 or vals.shape[1] != len(names):
            raise ValueError(
                f"values must be [n_items, {len(names)}] for signals {list(names)}, got {vals.shape}"
            )
        if variances is not None:
            var = np.broadcast_to(np.asarray(variances, dtype=np.float64), vals.shape).copy()
            return cls(names, vals, var, ("given",) * len(names))
        kinds = [n != "valence" for n in names] if probability is None else list(probability)
        if len(kinds) != len(names):
            raise ValueError("probability needs one flag per signal")
        var = (
            np.column_stack([_bernoulli_var(vals[:, j], kinds[j], min_var) for j in range(len(names))])
            if np.isfinite(vals).all()
            else np.full_like(vals, np.nan)
        )
        return cls(names, vals, var, ("bernoulli",) * len(names))


def _bernoulli_var(x: np.ndarray, is_probability: bool, min_var: float) -> np.ndarray:
    """``p~ (1 - p~)`` for probabilities, ``4 p~ (1 - p~)`` with ``p = (1 + v) / 2`` for valence (= 1 - v^2);
    ``p~`` is ``p`` clipped to [P_CLIP, 1 - P_CLIP]; floored at ``min_var``."""
    p = np.clip(x if is_probability else (1.0 + x) / 2.0, P_CLIP, 1.0 - P_CLIP)
    var = p * (1.0 - p) * (1.0 if is_probability else 4.0)
    return np.maximum(var, min_var)


def _slope(p: float) -> float:
    """``p~ (1 - p~)``: the sigmoid's slope at a probability, with ``p`` clipped like the Bernoulli rule."""
    q = min(max(p, P_CLIP), 1.0 - P_CLIP)
    return q * (1.0 - q)


def _path(result: Mapping, path: tuple[str, ...], index: int) -> Any:
    node: Any = result
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            raise ValueError(
                f"results[{index}] has no '{'.'.join(path)}' (expected an ethics-emotion pipeline result; "
                f"missing key {key!r})"
            )
        node = node[key]
    return node


def _as_vector(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64).reshape(-1)


def _item_uncertainty(result: Mapping) -> dict[str, np.ndarray] | None:
    """The model's raw-output variances of one result, if the pipeline passed them through."""
    tensors = result.get("tensors") if isinstance(result.get("tensors"), Mapping) else {}
    meta = result.get("metadata") if isinstance(result.get("metadata"), Mapping) else {}
    for source in (tensors.get("uncertainty"), meta.get("uncertainty")):
        if isinstance(source, Mapping) and source:
            return {str(k): _as_vector(v) for k, v in source.items() if v is not None}
    flat = {
        k[len("uncertainty_") :]: _as_vector(v)
        for k, v in tensors.items()
        if k.startswith("uncertainty_") and v is not None
    }
    return flat or None


def check_signals(signals: Sequence[str] | None) -> tuple[str, ...]:
    """The requested signal names (default :data:`DEFAULT_SIGNALS`); ``ValueError`` for unknown ones."""
    names = tuple(signals) if signals is not None else DEFAULT_SIGNALS
    unknown = sorted(set(names) - set(DEFAULT_SIGNALS))
    if unknown:
        raise ValueError(f"unknown signals {unknown}; available: {list(DEFAULT_SIGNALS)}")
    return names


def readings_from_results(
    results: Sequence[Mapping],
    *,
    signals: Sequence[str] | None = None,
    uncertainty: Sequence[Mapping[str, Any] | None] | None = None,
    temperatures: Mapping[str, float] | None = None,
    min_var: float = MIN_VAR,
) -> StreamReadings:
    """Per-item readings and their variances from ethics-emotion pipeline results (module doc).

    ``uncertainty`` optionally gives, per item, the model's raw-output variances by task (the model's
    ``RedHeartOutput.uncertainty`` for that item: ``"emotion"`` [n_labels + n_kote + 1] in the order
    emotion logits, KOTE logits, sentiment; ``"regret"`` [2]: regret logit, utility log-std). Without it they
    are looked up in each result (``tensors["uncertainty"]``, ``tensors["uncertainty_<task>"]`` or
    ``metadata["uncertainty"]``). A signal uses ``"model"`` variances only if every item has them,
    otherwise ``"bernoulli"`` for the whole stream. ``temperatures["emotion_logits"]`` is the emotion
    calibration temperature (default 1).
    """
    if isinstance(results, (str, bytes, Mapping)) or not isinstance(results, Sequence):
        raise ValueError("results must be a list of per-item pipeline results")
    n = len(results)
    if n == 0:
        raise ValueError("a stream needs at least one item")
    names = check_signals(signals)
    if uncertainty is not None and len(uncertainty) != n:
        raise ValueError(f"length mismatch: {n} results but {len(uncertainty)} uncertainty entries")
    temp = float((temperatures or {}).get("emotion_logits", 1.0))
    if not math.isfinite(temp) or temp <= 0:
        raise ValueError(f"temperatures['emotion_logits'] must be positive, got {temp}")

    values = np.empty((n, len(names)))
    model_var = np.full((n, len(names)), np.nan)
    for i, result in enumerate(results):
        if not isinstance(result, Mapping):
            raise ValueError(f"results[{i}] is a {type(result).__name__}, not a pipeline result dict")
        if "error" in result and "analysis" not in result:
            raise ValueError(f"results[{i}] is an error entry, a stream needs every item: {result['error']}")
        emotion = _path(result, ("analysis", "emotion"), i)
        regret = _path(result, ("analysis", "regret"), i)
        u = uncertainty[i] if uncertainty is not None else _item_uncertainty(result)
        u = {str(k): _as_vector(v) for k, v in u.items() if v is not None} if u else {}
        labels = emotion.get("labels")
        n_labels = len(labels) if isinstance(labels, Mapping) else None
        n_kote = len(emotion["kote"]) if isinstance(emotion.get("kote"), Mapping) else None
        emo_u = u.get("emotion")
        if emo_u is not None and (
            n_labels is None or n_kote is None or emo_u.shape[0] != n_labels + n_kote + 1
        ):
            emo_u = None  # layout unknown: do not guess
        for j, name in enumerate(names):
            if name == "valence":
                v = float(_path(result, ("analysis", "emotion", "sentiment"), i))
                values[i, j] = v
                if emo_u is not None:
                    model_var[i, j] = (4.0 * _slope((1.0 + v) / 2.0)) ** 2 * emo_u[n_labels + n_kote]
            elif name == "regret":
                r = float(regret["model_potential"] if "model_potential" in regret else regret["potential"])
                values[i, j] = r
                reg_u = u.get("regret")
                if reg_u is not None and reg_u.shape[0] >= 1:
                    model_var[i, j] = _slope(r) ** 2 * reg_u[0]
            else:
                values[i, j] = float(_path(result, ("analysis", "emotion", "core", name), i))
                if emo_u is not None:
                    keys = list(labels)
                    members = [keys.index(m) for m in EKMAN_GROUPS[name] if m in labels]
                    if members:
                        probs = [float(labels[keys[m]]) for m in members]
                        best = members[int(np.argmax(probs))]
                        p = max(probs)
                        model_var[i, j] = (_slope(p) / temp) ** 2 * emo_u[best]
    if not np.isfinite(values).all():
        k, j = map(int, np.argwhere(~np.isfinite(values))[0])
        raise ValueError(f"results[{k}] has a non-finite {names[j]} reading")
    variances = np.empty_like(values)
    sources = []
    for j, name in enumerate(names):
        if np.isfinite(model_var[:, j]).all():
            variances[:, j] = np.maximum(model_var[:, j], min_var)
            sources.append("model")
        else:
            variances[:, j] = _bernoulli_var(values[:, j], name != "valence", min_var)
            sources.append("bernoulli")
    return StreamReadings(names, values, variances, tuple(sources))
