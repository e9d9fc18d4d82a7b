"""SURD explanations of one text (``explain=True``): which clauses drive the judgement, and how.

docs/DESIGN.md "SURD, exactly", use (2): clauses switched on and off give a joint distribution of
(clauses present, judgement), and SURD says whether the parts act alone (unique), redundantly, or only
together (synergy), and how much of the judgement they leave unexplained (leak). Every non-empty subset of
a text's clauses (:mod:`.clauses`) is analysed by the callable ``analyze(list_of_texts) -> list_of_results``
(batched, deduplicated across texts).

Judgement -- a number read from each result (``judgement``: ``"ethical_score"`` (default,
``integrated.ethical_score`` in [0, 1]), ``"valence"`` (``analysis.emotion.sentiment`` in [-1, 1]),
``"regret"`` (``analysis.regret.potential`` in [0, 1]), or a callable with ``value_range``), cut into
``bins`` (3) states:
    * ``binning="fixed"`` (default): equal-width bins over the judgement's natural range (ethical score:
      < 1/3 unacceptable, 1/3 .. 2/3 uncertain, >= 2/3 acceptable; valence: negative / neutral / positive);
      a change counts only if it crosses a bin edge;
    * ``binning="range"``: equal-width bins over this text's own subset values (min .. max), i.e. which
      clauses move the judgement up or down; a spread below ``min_spread`` (default 5 % of the natural
      range) counts as constant.

Distribution and decomposition -- every non-empty subset has probability ``1 / (2^n - 1)``; the joint
array ``p[judgement state, x_1, ..., x_n]`` (``x_i`` = clause i present) goes to
:func:`redheart.analysis.surd_from_distribution`, so the decomposition is exact (no estimation). The empty
subset has no text and therefore no judgement, so by default it is absent; this makes the clause indicators
dependent (they are never all off), and that dependence is information SURD reports: a judgement decided by
one clause alone shows a redundant share of 0.27 with 2 clauses, 0.02 with 3 and 0.004 with 4 (the rest is
that clause's unique share); an XOR of two of 3 clauses puts 0.11 of H in a synergy with the third clause.
If the caller has a judgement for the empty text (``empty_judgement``, e.g. a neutral prior it stands
behind), all ``2^n`` subsets are used, the indicators are independent and the textbook answers are exact:
one deciding clause = unique 1; AND of two clauses = redundant 0.384, synergistic 0.616 (SURD's AND gate);
XOR = synergistic 1.

Constant judgement -- if every subset falls in one state, H(judgement) = 0 and there is nothing to
decompose: the explanation has ``status = "constant"`` and no shares (and, as a training target, a row of
-100, i.e. unlabelled; never a made-up target: ``redheart.training.data.surd_targets``). A text with one
clause has ``status = "single_clause"`` and is handled the same way.

Per clause (share of H(judgement)): ``unique``, and ``redundant``/``synergistic`` with every joint term
split equally among its clauses (:class:`redheart.analysis.AgentSummary`); ``role`` is the largest of
``alone`` (unique), ``redundantly``, ``jointly`` (synergy), or ``none`` when the clause takes part in
less than ``ROLE_MIN_SHARE`` (5 %) of H. ``groups`` lists every term (unique, redundant or synergistic,
per clause set) with at least 1 % of H, largest first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ...analysis.surd import surd_from_distribution
from .clauses import DEFAULT_MAX_CLAUSES, plan_clauses, subset_masks, subset_members, subset_text

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_JUDGEMENT",
    "JUDGEMENTS",
    "METHOD",
    "Judgement",
    "explain_from_values",
    "explain_text",
    "explain_texts",
]

DEFAULT_BINS = 3
DEFAULT_JUDGEMENT = "ethical_score"
ROLE_MIN_SHARE = 0.05
GROUP_MIN_SHARE = 0.01

#: Named judgements: path into an ethics-emotion pipeline result and the natural value range.
JUDGEMENTS: dict[str, tuple[tuple[str, ...], tuple[float, float]]] = {
    "ethical_score": (("integrated", "ethical_score"), (0.0, 1.0)),
    "valence": (("analysis", "emotion", "sentiment"), (-1.0, 1.0)),
    "regret": (("analysis", "regret", "potential"), (0.0, 1.0)),
}


Judgement = str | Callable[[Any], float]


def _judgement_reader(
    judgement: Judgement, value_range: tuple[float, float] | None
) -> tuple[str, Callable[[Any], float], tuple[float, float] | None]:
    if callable(judgement):
        name = getattr(judgement, "__name__", "custom")
        return name, judgement, value_range
    if judgement not in JUDGEMENTS:
        raise ValueError(
            f"unknown judgement {judgement!r}; choose one of {sorted(JUDGEMENTS)} or pass a callable"
        )
    path, natural = JUDGEMENTS[judgement]

    def read(result: Any) -> float:
        if isinstance(result, Mapping) and "error" in result and path[0] not in result:
            raise ValueError(f"the model refused a clause subset: {result['error']}")
        node = result
        for key in path:
            if not isinstance(node, Mapping) or key not in node:
                raise ValueError(
                    f"a result has no '{'.'.join(path)}' for judgement {judgement!r} (is analyze returning "
                    "ethics-emotion pipeline results?)"
                )
            node = node[key]
        return float(node)

    return judgement, read, value_range if value_range is not None else natural


def _discretise(
    values: np.ndarray,
    bins: int,
    binning: str,
    value_range: tuple[float, float] | None,
    min_spread: float | None,
) -> tuple[np.ndarray, list[float], str | None]:
    """States 0..bins-1 of the subset values, the bin edges, and a reason if the judgement is constant."""
    if binning == "fixed":
        if value_range is None:
            raise ValueError("binning='fixed' needs value_range for a custom judgement")
        lo, hi = value_range
        edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)]
    elif binning == "range":
        lo, hi = float(values.min()), float(values.max())
        spread = min_spread
        if spread is None:
            if value_range is None:
                raise ValueError("binning='range' needs min_spread (or value_range) for a custom judgement")
            spread = 0.05 * (value_range[1] - value_range[0])
        if hi - lo < spread:
            return (
                np.zeros(values.shape[0], dtype=np.int64),
                [lo, hi],
                (
                    f"the judgement varies by {hi - lo:.3g} over the clause subsets, less than min_spread={spread:.3g}"
                ),
            )
        edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)]
    else:
        raise ValueError(f"binning must be 'fixed' or 'range', got {binning!r}")
    lo, hi = edges[0], edges[-1]
    states = np.clip(np.floor((values - lo) / (hi - lo) * bins), 0, bins - 1).astype(np.int64)
    if np.unique(states).size < 2:
        return (
            states,
            edges,
            f"every clause subset falls in the same judgement state ({int(states[0])} of {bins})",
        )
    return states, edges, None


def explain_from_values(
    clauses: Sequence[str],
    values: Sequence[float],
    *,
    judgement_name: str = "judgement",
    bins: int = DEFAULT_BINS,
    binning: str = "fixed",
    value_range: tuple[float, float] | None = None,
    min_spread: float | None = None,
    empty_value: float | None = None,
) -> dict[str, Any]:
    """The explanation from the judgement of every non-empty clause subset (``values[mask - 1]``).

    The decomposition is exact over the uniform distribution of the ``2^n - 1`` subsets (module doc), or of
    all ``2^n`` subsets when ``empty_value`` (the judgement of the empty text, supplied by the caller) is given.
    """
    n = len(clauses)
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    if value_range is not None:
        lo, hi = (float(x) for x in value_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise ValueError(f"value_range must be (low, high) with low < high, got {value_range!r}")
        value_range = (lo, hi)
    vals = np.asarray(values, dtype=np.float64).reshape(-1)
    expected = 2**n - 1
    if vals.shape[0] != expected and not (n < 2 and vals.shape[0] == 0):
        raise ValueError(f"{n} clauses have {expected} non-empty subsets, got {vals.shape[0]} values")
    if not np.isfinite(vals).all():
        raise ValueError("the judgement is not finite for some clause subsets")
    if empty_value is not None and not math.isfinite(float(empty_value)):
        raise ValueError(f"empty_value must be finite, got {empty_value!r}")
    base: dict[str, Any] = {
        "clauses": [{"index": i, "text": c} for i, c in enumerate(clauses)],
        "n_clauses": n,
        "n_subsets": expected + (1 if empty_value is not None else 0),
        "judgement": {
            "name": judgement_name,
            "bins": bins,
            "binning": binning,
            "value_range": list(value_range) if value_range is not None else None,
        },
        "empty_subset": "absent"
        if empty_value is None
        else {"value": float(empty_value), "source": "caller"},
    }
    if n < 2:
        return {
            **base,
            "status": "single_clause",
            "reason": "fewer than two clauses: nothing to decompose",
            "shares": None,
            "per_clause": [],
            "groups": [],
            "subsets": [{"clauses": [0], "value": float(v)} for v in vals],
        }
    masks = subset_masks(n)
    if empty_value is not None:
        vals = np.concatenate([[float(empty_value)], vals])
        masks = [0, *masks]
    states, edges, constant = _discretise(vals, bins, binning, value_range, min_spread)
    base["judgement"]["edges"] = [float(e) for e in edges]
    base["subsets"] = [
        {"clauses": subset_members(m, n), "value": float(v), "state": int(s)}
        for m, v, s in zip(masks, vals, states, strict=True)
    ]
    if constant is not None:
        return {
            **base,
            "status": "constant",
            "reason": constant + ": H(judgement) = 0, nothing to decompose",
            "shares": None,
            "per_clause": [],
            "groups": [],
        }
    joint = np.zeros((bins,) + (2,) * n)
    for m, s in zip(masks, states, strict=True):
        joint[(int(s), *(m >> i & 1 for i in range(n)))] += 1.0
    names = [f"c{i}" for i in range(n)]
    res = surd_from_distribution(joint, agent_names=names)
    h = res.entropy_target
    per_clause = []
    for a in res.agent_summary():
        unique, redundant, synergistic = a.unique / h, a.redundant / h, a.synergistic / h
        total = unique + redundant + synergistic
        role = "none"
        if total >= ROLE_MIN_SHARE:
            role = max(
                (("alone", unique), ("redundantly", redundant), ("jointly", synergistic)),
                key=lambda item: item[1],
            )[0]
        per_clause.append(
            {
                "index": a.index,
                "text": clauses[a.index],
                "unique": unique,
                "redundant": redundant,
                "synergistic": synergistic,
                "involved": a.involved / h,
                "mutual_information": a.mutual_information / h,
                "role": role,
            }
        )
    groups = []
    for kind, terms in (
        ("unique", res.unique),
        ("redundant", res.redundant),
        ("synergistic", res.synergistic),
    ):
        for key, value in terms.items():
            if value / h >= GROUP_MIN_SHARE:
                groups.append({"kind": kind, "clauses": list(key), "share": value / h})
    groups.sort(key=lambda g: -g["share"])
    return {
        **base,
        "status": "ok",
        "shares": res.shares(),
        "dominant": res.dominant(),
        "entropy_bits": h,
        "per_clause": per_clause,
        "groups": groups,
        "decomposition": res.to_dict(),
    }


def _run(
    analyze: Callable[[list[str]], Sequence[Any]], texts: list[str], batch_size: int | None
) -> list[Any]:
    size = len(texts) if not batch_size else int(batch_size)
    if size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    out: list[Any] = []
    for start in range(0, len(texts), size):
        chunk = texts[start : start + size]
        got = analyze(chunk)
        if isinstance(got, Mapping) or not isinstance(got, Sequence) or len(got) != len(chunk):
            raise ValueError(
                f"analyze must return one result per text (a list of {len(chunk)}), got {type(got).__name__}"
                + (f" of length {len(got)}" if isinstance(got, Sequence) else "")
            )
        out.extend(got)
    return out


def explain_texts(
    texts: Sequence[str],
    analyze: Callable[[list[str]], Sequence[Any]],
    *,
    judgement: Judgement = DEFAULT_JUDGEMENT,
    bins: int = DEFAULT_BINS,
    binning: str = "fixed",
    value_range: tuple[float, float] | None = None,
    min_spread: float | None = None,
    max_clauses: int = DEFAULT_MAX_CLAUSES,
    clauses: Sequence[Sequence[str] | None] | None = None,
    batch_size: int | None = None,
    empty_judgement: float | None = None,
) -> list[dict[str, Any]]:
    """Explanations of several texts; all subset texts go through ``analyze`` together (deduplicated)."""
    if isinstance(texts, str):
        raise ValueError("texts must be a list of strings; use explain_text for one text")
    if clauses is not None and len(clauses) != len(texts):
        raise ValueError(f"length mismatch: {len(texts)} texts but {len(clauses)} clause lists")
    name, read, natural = _judgement_reader(judgement, value_range)
    plans = [
        plan_clauses(t, clauses=None if clauses is None else clauses[i], max_clauses=max_clauses)
        for i, t in enumerate(texts)
    ]
    wanted: dict[str, int] = {}
    for plan in plans:
        if plan.n >= 2:
            for m in subset_masks(plan.n):
                wanted.setdefault(subset_text(plan.clauses, m), len(wanted))
    ordered = list(wanted)
    results = _run(analyze, ordered, batch_size) if ordered else []
    value_of = {}
    for text, result in zip(ordered, results, strict=True):
        value = read(result)
        if not math.isfinite(value):
            raise ValueError(f"the judgement of {text!r} is not finite: {value}")
        value_of[text] = value
    out = []
    for plan in plans:
        values = [value_of[subset_text(plan.clauses, m)] for m in subset_masks(plan.n)] if plan.n >= 2 else []
        exp = explain_from_values(
            plan.clauses,
            values,
            judgement_name=name,
            bins=bins,
            binning=binning,
            value_range=natural,
            min_spread=min_spread,
            empty_value=empty_judgement,
        )
        exp["text"] = plan.text
        exp["cap"] = plan.cap_info()
        exp["clause_source"] = plan.source
        exp["method"] = METHOD
        out.append(exp)
    return out


def explain_text(text: str, analyze: Callable[[list[str]], Sequence[Any]], **options: Any) -> dict[str, Any]:
    """The SURD explanation of one text (module doc); ``options`` as for :func:`explain_texts`.

    ``clauses=[...]`` (one list of strings) replaces the automatic clause split.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    given = options.pop("clauses", None)
    return explain_texts([text], analyze, clauses=None if given is None else [given], **options)[0]


#: The method, as reported in every explanation under ``method``.
METHOD: dict[str, str] = {
    "clauses": "punctuation, English/Korean conjunction words, Korean connective endings (-고 -지만 -는데 -서 ...)",
    "subsets": "all 2^n - 1 non-empty clause subsets, uniform weights, clauses joined in order with spaces",
    "cap": "clauses beyond max_clauses merged pairwise (shortest adjacent pair first), never sampled",
    "judgement": "fixed: equal-width bins over the natural range; range: equal-width bins over the subset values",
    "surd": "exact SURD of p(judgement state, clause indicators) (Martinez-Sanchez et al. 2024)",
    "empty_subset": "absent (no text): clause indicators are never all off, a small redundancy for few clauses",
}
