"""The options of a stream analysis: one frozen dataclass, validated in one place.

:class:`StreamOptions` lists every analysis option of ``analyze_stream`` with its default and meaning.
Its construction checks what can be checked without the stream; :meth:`StreamOptions.resolve` checks the
rest against the stream's signals and length and fills in the defaults that depend on them (the SURD target
and agents, the per-signal noise parameters).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_SURD_AGENTS",
    "DEFAULT_SURD_FALLBACK_TARGET",
    "DEFAULT_SURD_TARGET",
    "MIN_ITEMS",
    "READING_OPTIONS",
    "ResolvedOptions",
    "StreamOptions",
]

#: Default SURD agents (current item) and target (``lag`` items later; valence if regret is not analysed).
DEFAULT_SURD_AGENTS: tuple[str, ...] = ("valence", "sadness", "anger")
DEFAULT_SURD_TARGET = "regret"
DEFAULT_SURD_FALLBACK_TARGET = "valence"
#: Fewest items when the noise parameters are estimated from the stream.
MIN_ITEMS = 3
#: Options of ``analyze_stream`` for reading the results (``readings_from_results``), not for the analysis.
READING_OPTIONS = frozenset({"uncertainty", "temperatures", "min_var"})


@dataclass(frozen=True)
class ResolvedOptions:
    """The stream-dependent part of the options: given noise parameters per signal (``None``: estimate)
    and the SURD target and agents."""

    process_var: np.ndarray | None
    obs_scale: np.ndarray | None
    surd_target: str
    surd_agents: tuple[str, ...]


@dataclass(frozen=True)
class StreamOptions:
    """How a stream is smoothed, searched for periods and decomposed; the defaults are those of a plain call.

    ``process_var`` and ``obs_scale`` take a number, one value per analysed signal (a sequence in signal
    order or ``{name: value}``), or ``None`` to estimate them by maximum likelihood.
    """

    #: Random-walk variance ``q`` of the smoothed state per time unit (``None``: estimated).
    process_var: Any = None
    #: Scale ``s`` of the readings' variances, ``Var(y_k) = s var_k`` (``None``: estimated; 1: absolute).
    obs_scale: Any = None
    #: Half-width of the uncertainty band in smoothed standard deviations (1.96: 95 %).
    band_z: float = 1.96
    #: Search the trajectories for periods (Welch spectrum).
    spectrum: bool = True
    #: Trajectories of the spectrum: ``"smoothed"`` or ``"raw"`` (the readings).
    spectrum_series: str = "smoothed"
    #: Most periods reported per signal.
    top_periods: int = 3
    #: Weakest reported peak, as a share of the signal's power, in [0, 1].
    min_relative_power: float = 0.05
    #: The driven signal of SURD (``None``: regret, or valence when regret is not analysed).
    surd_target: str | None = None
    #: The driving signals of SURD (``None``: those of valence, sadness, anger that are analysed).
    surd_agents: Sequence[str] | None = None
    #: Items between the agents and the target (a positive integer).
    surd_lag: int = 1
    #: States per variable: an integer >= 2, or ``"auto"`` (as many as the stream's length supports).
    surd_bins: int | str = "auto"
    #: ``"quantile"`` (equal-mass) or ``"equal"`` (equal-width) states.
    surd_binning: str = "quantile"
    #: Series of SURD: the ``"raw"`` readings or the causal ``"filtered"`` estimate (never the smoothed one,
    #: which mixes later readings into earlier items and would leak the future into the agents).
    surd_series: str = "raw"
    #: Run the SURD decomposition.
    run_surd: bool = True

    def __post_init__(self) -> None:
        if self.spectrum_series not in ("smoothed", "raw"):
            raise ValueError(f"spectrum_series must be 'smoothed' or 'raw', got {self.spectrum_series!r}")
        if self.surd_series not in ("raw", "filtered"):
            raise ValueError(
                f"surd_series must be 'raw' or 'filtered', got {self.surd_series!r} (the two-sided smoothed "
                "series mixes later readings into earlier items and would leak the future into the agents)"
            )
        band_z = self.band_z
        if (
            isinstance(band_z, bool)
            or not isinstance(band_z, (int, float))
            or not math.isfinite(band_z)
            or band_z <= 0
        ):
            raise ValueError(f"band_z must be a positive number, got {band_z!r}")
        top = self.top_periods
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise ValueError(f"top_periods must be a positive integer, got {top!r}")
        if not 0.0 <= float(self.min_relative_power) <= 1.0:
            raise ValueError(f"min_relative_power must be in [0, 1], got {self.min_relative_power!r}")

    @staticmethod
    def check_names(names: Iterable[str], *, also_known: Iterable[str] = ()) -> None:
        """``TypeError`` for a name that is neither an option nor in ``also_known``."""
        known = _OPTION_NAMES | frozenset(also_known)
        unknown = sorted(set(names) - known)
        if unknown:
            raise TypeError(f"unknown stream analysis options {unknown}; known: {sorted(known)}")

    @classmethod
    def parse(
        cls, options: StreamOptions | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> StreamOptions:
        """Options from a :class:`StreamOptions`, a dict of options, or keywords (which override them)."""
        given = dict(options) if isinstance(options, Mapping) else {}
        given.update(fields)
        cls.check_names(given)
        if isinstance(options, StreamOptions):
            return dataclasses.replace(options, **given) if given else options
        return cls(**given)

    def resolve(self, names: tuple[str, ...], n_items: int) -> ResolvedOptions:
        """Check the options against a stream of ``n_items`` items of the signals ``names``."""
        q_given = _per_signal(self.process_var, names, "process_var")
        s_given = _per_signal(self.obs_scale, names, "obs_scale")
        if (q_given is None or s_given is None) and n_items < MIN_ITEMS:
            raise ValueError(
                f"a stream needs at least {MIN_ITEMS} items to estimate its noise parameters, got {n_items}; "
                "give process_var and obs_scale to analyse shorter streams"
            )
        target = self.surd_target
        if target is None:
            target = DEFAULT_SURD_TARGET if DEFAULT_SURD_TARGET in names else DEFAULT_SURD_FALLBACK_TARGET
        agents = (
            tuple(self.surd_agents)
            if self.surd_agents is not None
            else tuple(a for a in DEFAULT_SURD_AGENTS if a in names)
        )
        if self.run_surd:
            for name in (target, *agents):
                if name not in names:
                    raise ValueError(f"unknown signal {name!r}; the stream has {list(names)}")
            if not agents:
                raise ValueError("surd_agents must name at least one signal")
            if len(set(agents)) != len(agents):
                raise ValueError(f"surd_agents must be distinct, got {list(agents)}")
            lag, bins = self.surd_lag, self.surd_bins
            if isinstance(lag, bool) or not isinstance(lag, (int, np.integer)) or lag < 1:
                raise ValueError(f"surd_lag must be a positive integer (items), got {lag!r}")
            if bins != "auto" and (
                isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2
            ):
                raise ValueError(f"surd_bins must be 'auto' or an integer >= 2, got {bins!r}")
            if self.surd_binning not in ("quantile", "equal"):
                raise ValueError(f"surd_binning must be 'quantile' or 'equal', got {self.surd_binning!r}")
        return ResolvedOptions(q_given, s_given, target, agents)


_OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(StreamOptions))


def _per_signal(value: Any, names: Sequence[str], what: str) -> np.ndarray | None:
    """A number, a sequence in signal order or ``{name: value}`` as one non-negative float per signal."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f"{what} names unknown signals {unknown}")
        missing = [n for n in names if n not in value]
        if missing:
            raise ValueError(f"{what} must give every analysed signal; missing {missing}")
        arr = np.array([float(value[n]) for n in names])
    else:
        arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (len(names),)).astype(np.float64)
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"{what} must be finite and non-negative")
    return arr
