"""The result of a SURD decomposition and the summaries derived from it.

All information quantities are in bits. The parts satisfy, exactly up to rounding,

    sum(redundant) + sum(unique) + sum(synergistic) == total_mi
    total_mi + leak_bits == entropy_target

so the normalised shares returned by :meth:`SurdResult.shares` add up to one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Key = tuple[int, ...]


@dataclass(frozen=True)
class AgentSummary:
    """How much of the explained information one agent takes part in (bits).

    ``redundant`` and ``synergistic`` split each joint term equally among the agents in its key, so the
    ``total`` of all agents adds up to the result's ``total_mi``. The equal split is a presentation
    convention for explanations, not part of SURD itself; ``involved`` is the unsplit sum of every term
    the agent appears in.
    """

    index: int
    name: str
    mutual_information: float
    unique: float
    redundant: float
    synergistic: float
    involved: float

    @property
    def total(self) -> float:
        return self.unique + self.redundant + self.synergistic


@dataclass(frozen=True)
class SurdResult:
    """Redundant, unique and synergistic causality of agents towards a target, plus the leak.

    Keys are tuples of 0-based agent indices (sorted). ``unique`` has a key ``(i,)`` for every agent;
    ``synergistic`` has a key for every evaluated agent subset of size 2..``max_order``; ``redundant``
    has a key for every agent subset of size >= 2 when there are at most 16 agents, otherwise only for
    the subsets that received a non-zero amount (a missing key then means zero). ``mutual_information``
    holds I(T; A_j) for every evaluated subset j. When ``truncated`` is true, subsets larger than
    ``max_order`` were not evaluated: ``total_mi`` is then the information reachable with at most
    ``max_order`` agents at once (a lower bound on I(T; all agents)) and ``leak`` an upper bound.
    """

    redundant: dict[Key, float]
    unique: dict[Key, float]
    synergistic: dict[Key, float]
    mutual_information: dict[Key, float]
    total_mi: float
    entropy_target: float
    leak_bits: float
    agent_names: tuple[str, ...]
    max_order: int
    truncated: bool
    n_samples: int | None = None
    n_states: tuple[int, ...] | None = None
    lags: tuple[int, ...] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_agents(self) -> int:
        return len(self.agent_names)

    @property
    def leak(self) -> float:
        """Relative information leak H(T | agents) / H(T), in [0, 1]."""
        return min(1.0, max(0.0, self.leak_bits / self.entropy_target))

    @property
    def redundant_total(self) -> float:
        return float(sum(self.redundant.values()))

    @property
    def unique_total(self) -> float:
        return float(sum(self.unique.values()))

    @property
    def synergistic_total(self) -> float:
        return float(sum(self.synergistic.values()))

    def shares(self) -> dict[str, float]:
        """Redundant / unique / synergistic / leak shares of H(T), summing to exactly 1.

        Normalisation: ``leak`` is the relative leak H(T|A)/H(T); the three causal shares are the part
        totals divided by H(T) and then rescaled so that they add up to ``1 - leak`` (the rescaling only
        removes floating-point residue, because the parts add up to I(T; A) = H(T) - H(T|A)). If no
        information is explained, all three causal shares are 0 and the leak is 1.
        """
        leak = self.leak
        parts = {
            "redundant": self.redundant_total,
            "unique": self.unique_total,
            "synergistic": self.synergistic_total,
        }
        total = sum(parts.values())
        scale = (1.0 - leak) / total if total > 0 else 0.0
        out = {k: v * scale for k, v in parts.items()}
        out["leak"] = leak if total > 0 else 1.0
        return out

    def dominant(self) -> str:
        """The largest of the four shares: 'redundant', 'unique', 'synergistic' or 'leak'."""
        shares = self.shares()
        return max(shares, key=shares.__getitem__)

    def label(self, key: Key) -> str:
        """Human-readable name of an agent subset, e.g. ``'valence+regret'``."""
        return "+".join(self.agent_names[i] for i in key)

    def term_shares(self) -> dict[str, float]:
        """Every term as a share of H(T), labelled ``'R[a+b]'``, ``'U[a]'``, ``'S[a+b]'``, plus ``'leak'``."""
        h = self.entropy_target
        out: dict[str, float] = {}
        for prefix, terms in (("R", self.redundant), ("U", self.unique), ("S", self.synergistic)):
            for key, value in terms.items():
                out[f"{prefix}[{self.label(key)}]"] = value / h
        out["leak"] = self.leak
        return out

    def agent_summary(self) -> list[AgentSummary]:
        """Per-agent participation (see :class:`AgentSummary`), in agent order."""
        out = []
        for i, name in enumerate(self.agent_names):
            red = sum(v / len(k) for k, v in self.redundant.items() if i in k)
            syn = sum(v / len(k) for k, v in self.synergistic.items() if i in k)
            involved = sum(
                v for terms in (self.redundant, self.synergistic) for k, v in terms.items() if i in k
            )
            uni = self.unique.get((i,), 0.0)
            out.append(
                AgentSummary(
                    index=i,
                    name=name,
                    mutual_information=self.mutual_information.get((i,), 0.0),
                    unique=uni,
                    redundant=float(red),
                    synergistic=float(syn),
                    involved=float(involved + uni),
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view with subset keys written as agent labels."""

        def named(terms: dict[Key, float]) -> dict[str, float]:
            return {self.label(k): float(v) for k, v in terms.items()}

        return {
            "agents": list(self.agent_names),
            "redundant": named(self.redundant),
            "unique": named(self.unique),
            "synergistic": named(self.synergistic),
            "mutual_information": named(self.mutual_information),
            "total_mi": self.total_mi,
            "entropy_target": self.entropy_target,
            "leak": self.leak,
            "leak_bits": self.leak_bits,
            "shares": self.shares(),
            "max_order": self.max_order,
            "truncated": self.truncated,
            "n_samples": self.n_samples,
            "n_states": list(self.n_states) if self.n_states is not None else None,
            "lags": list(self.lags) if self.lags is not None else None,
            "notes": list(self.notes),
            "units": "bits",
        }
