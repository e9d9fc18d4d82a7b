"""SURD explanations of one text (``explain=True``): which clauses drive the judgement, and how.

DESIGN.md "SURD, exactly", use (2): clauses switched on and off give a joint distribution of
(clauses present, judgement), and SURD says whether the parts act alone (unique), redundantly, or only
together (synergy), and how much of the judgement they leave unexplained (leak).

Clauses (:func:`split_clauses`) -- a simple, documented heuristic over whitespace-separated words:
    * a clause ends after a word ending in ``. ! ? … ; : ,`` (or their full-width forms);
    * a clause starts at an English conjunction word (:data:`EN_CONJUNCTIONS`: but, and, because,
      although, though, while, whereas, unless, yet) or a Korean conjunction word (:data:`KO_CONJUNCTIONS`:
      그리고, 하지만, 그런데, 근데, 그래서, 그러나, 그러니까, 왜냐하면); the conjunction stays with the clause it
      introduces;
    * a Korean clause ends after a word (eojeol) with a connective ending (:data:`KO_ENDINGS`): -지만,
      -는데/-은데/-인데, -니까, -면서, -고 (not the quotative -다고/-라고/-냐고/-자고, nor the nouns of
      :data:`KO_GO_NOUNS` such as 최고, 광고, 사고), and -서 only as -아서/-어서 and their contractions (the
      syllable before 서 has no final consonant and the vowel ㅏ ㅐ ㅓ ㅕ ㅘ ㅙ ㅝ: 가서, 해서, 떨어져서, 와서;
      not 경찰서, 보고서, 에서);
    * a piece with fewer than ``min_letters`` (2) letters is merged into its neighbour.
    No parser is involved, so "and" also splits noun phrases ("my mom / and dad were happy") and a
    quoted question splits at its "?"; pass ``clauses=[...]`` to use your own segmentation instead.

Subsets -- every non-empty subset of the clauses (``2^n - 1``), each clause's text joined in the original
order with single spaces, is analysed by the callable ``analyze(list_of_texts) -> list_of_results``
(batched). ``n`` is capped by ``max_clauses`` (default 6, i.e. 63 texts per explanation): longer texts are
cut into clauses and then the adjacent pair with the fewest characters is merged until ``n <= max_clauses``
(the result says so under ``cap``). Subsets are never sampled, because the decomposition is only exact
over all of them.

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
decompose: the explanation has ``status = "constant"``, no shares, and :func:`surd_shares` returns ``None``
(a ``surd_labels`` row of -100, i.e. unlabelled; never a made-up target). A text with one clause has
``status = "single_clause"`` and is handled the same way.

Per clause (share of H(judgement)): ``unique``, and ``redundant``/``synergistic`` with every joint term
split equally among its clauses (:class:`redheart.analysis.AgentSummary`); ``role`` is the largest of
``alone`` (unique), ``redundantly``, ``jointly`` (synergy), or ``none`` when the clause takes part in
less than ``ROLE_MIN_SHARE`` (5 %) of H. ``groups`` lists every term (unique, redundant or synergistic,
per clause set) with at least 1 % of H, largest first.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..analysis.surd import surd_from_distribution

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_JUDGEMENT",
    "DEFAULT_MAX_CLAUSES",
    "EN_CONJUNCTIONS",
    "IGNORE_LABEL",
    "JUDGEMENTS",
    "KO_CONJUNCTIONS",
    "KO_ENDINGS",
    "SHARE_ORDER",
    "ClausePlan",
    "explain_from_values",
    "explain_text",
    "explain_texts",
    "plan_clauses",
    "split_clauses",
    "subset_masks",
    "subset_text",
    "surd_labels",
    "surd_shares",
]

DEFAULT_MAX_CLAUSES = 6
#: Hard upper bound on ``max_clauses`` (2^12 - 1 = 4095 model calls per text).
MAX_CLAUSES_LIMIT = 12
DEFAULT_BINS = 3
DEFAULT_JUDGEMENT = "ethical_score"
ROLE_MIN_SHARE = 0.05
GROUP_MIN_SHARE = 0.01
IGNORE_LABEL = -100.0

#: Named judgements: path into an ethics-emotion pipeline result and the natural value range.
JUDGEMENTS: dict[str, tuple[tuple[str, ...], tuple[float, float]]] = {
    "ethical_score": (("integrated", "ethical_score"), (0.0, 1.0)),
    "valence": (("analysis", "emotion", "sentiment"), (-1.0, 1.0)),
    "regret": (("analysis", "regret", "potential"), (0.0, 1.0)),
}

EN_CONJUNCTIONS = frozenset(
    {"but", "and", "because", "although", "though", "while", "whereas", "unless", "yet"}
)
KO_CONJUNCTIONS = frozenset(
    {"그리고", "하지만", "그런데", "근데", "그래서", "그러나", "그러니까", "왜냐하면"}
)
#: Korean connective endings that close a clause (-고 and -서 have extra conditions, see the module doc).
KO_ENDINGS = ("지만", "는데", "은데", "인데", "니까", "면서", "고", "서")
_QUOTATIVE_GO = ("다고", "라고", "냐고", "자고")
KO_GO_NOUNS = frozenset(
    {
        "최고",
        "광고",
        "사고",
        "창고",
        "재고",
        "원고",
        "참고",
        "경고",
        "신고",
        "금고",
        "보고",
        "공고",
        "수고",
        "선고",
        "회고",
        "부고",
        "제고",
        "통고",
        "예고",
        "고고",
        "마고",
        "잔고",
        "등고",
    }
)
_CLAUSE_END = frozenset(".!?…;:,。！？；：，")
_TRAILING = frozenset(".!?…;:,。！？；：，\"'”’)]}»")
_HANGUL_BASE, _HANGUL_LAST = 0xAC00, 0xD7A3
#: Medial vowels of the syllable before -서 that make it -아서/-어서 (ㅏ ㅐ ㅓ ㅕ ㅘ ㅙ ㅝ).
_SEO_MEDIALS = frozenset({0, 1, 4, 6, 9, 10, 14})


# ----------------------------------------------------------------------------------------------------
# clauses


def _letters(s: str) -> int:
    return sum(1 for ch in s if ch.isalpha())


def _is_hangul_syllable(ch: str) -> bool:
    return _HANGUL_BASE <= ord(ch) <= _HANGUL_LAST


def _ko_connective(word: str) -> bool:
    """Does this eojeol (trailing punctuation removed) end in a clause-closing connective ending?"""
    if len(word) < 2 or not all(_is_hangul_syllable(ch) for ch in word[-2:]) or word in KO_CONJUNCTIONS:
        return False
    for ending in KO_ENDINGS:
        if not word.endswith(ending) or len(word) <= len(ending):
            continue
        if ending == "고":
            return not word.endswith(_QUOTATIVE_GO) and word not in KO_GO_NOUNS
        if ending == "서":
            code = ord(word[-2]) - _HANGUL_BASE
            return code % 28 == 0 and (code // 28) % 21 in _SEO_MEDIALS
        return True
    return False


def _strip_trailing(word: str) -> str:
    end = len(word)
    while end > 0 and word[end - 1] in _TRAILING:
        end -= 1
    return word[:end]


def split_clauses(text: str, *, min_letters: int = 2) -> list[str]:
    """Cut ``text`` into clauses by the rules of the module doc; returns the clause strings in order."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    text = unicodedata.normalize("NFC", text)
    words: list[tuple[int, int]] = []
    start = None
    for i, ch in enumerate(text):
        if ch.isspace():
            if start is not None:
                words.append((start, i))
                start = None
        elif start is None:
            start = i
    if start is not None:
        words.append((start, len(text)))
    if not words:
        return []
    groups: list[list[int]] = [[0]]
    for k in range(1, len(words)):
        prev = text[slice(*words[k - 1])]
        word = text[slice(*words[k])]
        bare_prev = _strip_trailing(prev)
        bare = _strip_trailing(word).lower().lstrip("\"'“‘([{«")
        boundary = (
            prev[-1] in _CLAUSE_END
            or bare in EN_CONJUNCTIONS
            or bare in KO_CONJUNCTIONS
            or _ko_connective(bare_prev)
        )
        if boundary:
            groups.append([k])
        else:
            groups[-1].append(k)
    pieces = [(words[g[0]][0], words[g[-1]][1]) for g in groups]
    # merge pieces that are too small into a neighbour (the previous one; the first into the next)
    merged: list[tuple[int, int]] = []
    for span in pieces:
        if merged and _letters(text[slice(*span)]) < min_letters:
            merged[-1] = (merged[-1][0], span[1])
        else:
            merged.append(span)
    if len(merged) > 1 and _letters(text[slice(*merged[0])]) < min_letters:
        merged[1] = (merged[0][0], merged[1][1])
        merged.pop(0)
    return [text[a:b] for a, b in merged]


@dataclass(frozen=True)
class ClausePlan:
    """The clauses of one text after capping, and how they were obtained."""

    text: str
    clauses: tuple[str, ...]
    original_count: int
    merged: bool
    max_clauses: int
    source: str  # "split" or "given"

    @property
    def n(self) -> int:
        return len(self.clauses)

    def cap_info(self) -> dict[str, Any]:
        return {
            "max_clauses": self.max_clauses,
            "clauses_found": self.original_count,
            "merged": self.merged,
            "n_clauses": self.n,
            "n_subsets": 2**self.n - 1 if self.n else 0,
            "rule": "adjacent clauses with the fewest characters merged until n <= max_clauses",
        }


def plan_clauses(
    text: str,
    *,
    clauses: Sequence[str] | None = None,
    max_clauses: int = DEFAULT_MAX_CLAUSES,
    min_letters: int = 2,
) -> ClausePlan:
    """Split (or take ``clauses``) and cap at ``max_clauses`` by merging the shortest adjacent pair."""
    if (
        isinstance(max_clauses, bool)
        or not isinstance(max_clauses, int)
        or not 2 <= max_clauses <= MAX_CLAUSES_LIMIT
    ):
        raise ValueError(f"max_clauses must be an integer in [2, {MAX_CLAUSES_LIMIT}], got {max_clauses!r}")
    if clauses is None:
        found = split_clauses(text, min_letters=min_letters)
        source = "split"
    else:
        if isinstance(clauses, str) or not all(isinstance(c, str) for c in clauses):
            raise ValueError("clauses must be a list of strings")
        found = [c.strip() for c in clauses]
        if any(not c for c in found):
            raise ValueError("clauses must not be empty strings")
        source = "given"
    parts = [c.strip() for c in found]
    original = len(parts)
    while len(parts) > max_clauses:
        k = min(range(len(parts) - 1), key=lambda i: len(parts[i]) + len(parts[i + 1]))
        parts[k : k + 2] = [parts[k] + " " + parts[k + 1]]
    return ClausePlan(text, tuple(parts), original, len(parts) < original, max_clauses, source)


def subset_masks(n: int) -> list[int]:
    """The non-empty subsets of ``n`` clauses as bit masks 1 .. 2^n - 1 (bit i = clause i present)."""
    return list(range(1, 2**n))


def subset_text(clauses: Sequence[str], mask: int) -> str:
    """The present clauses, in their original order, joined with single spaces."""
    return " ".join(c for i, c in enumerate(clauses) if mask >> i & 1)


def _members(mask: int, n: int) -> list[int]:
    return [i for i in range(n) if mask >> i & 1]


# ----------------------------------------------------------------------------------------------------
# judgement


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


# ----------------------------------------------------------------------------------------------------
# decomposition


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
        {"clauses": _members(m, n), "value": float(v), "state": int(s)}
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


def surd_shares(
    text: str, analyze: Callable[[list[str]], Sequence[Any]], **options: Any
) -> list[float] | None:
    """Exact SURD shares ``[redundant, unique, synergistic, leak]`` of one text, or ``None`` if undefined.

    ``None`` for a single clause or a constant judgement (H = 0): such a text has no SURD target.
    """
    exp = explain_text(text, analyze, **options)
    return None if exp["status"] != "ok" else [float(exp["shares"][k]) for k in SHARE_ORDER]


def surd_labels(
    texts: Sequence[str], analyze: Callable[[list[str]], Sequence[Any]], **options: Any
) -> tuple[np.ndarray, list[str]]:
    """``surd_labels`` targets for the neural SURD head: float32 [N, 4] and each text's status.

    Rows are ``[redundant, unique, synergistic, leak]`` (summing to 1); a text without a decomposition
    (status ``"single_clause"`` or ``"constant"``) gets a row of -100, the model's "unlabelled" marker.
    """
    exps = explain_texts(texts, analyze, **options)
    labels = np.full((len(exps), 4), IGNORE_LABEL, dtype=np.float32)
    for i, exp in enumerate(exps):
        if exp["status"] == "ok":
            labels[i] = [exp["shares"][k] for k in SHARE_ORDER]
    return labels, [e["status"] for e in exps]


#: Order of the neural head's shares (``configuration_redheart.labels.SURD_SHARES``).
SHARE_ORDER = ("redundant", "unique", "synergistic", "leak")

METHOD: dict[str, str] = {
    "clauses": "punctuation, English/Korean conjunction words, Korean connective endings (-고 -지만 -는데 -서 ...)",
    "subsets": "all 2^n - 1 non-empty clause subsets, uniform weights, clauses joined in order with spaces",
    "cap": "clauses beyond max_clauses merged pairwise (shortest adjacent pair first), never sampled",
    "judgement": "fixed: equal-width bins over the natural range; range: equal-width bins over the subset values",
    "surd": "exact SURD of p(judgement state, clause indicators) (Martinez-Sanchez et al. 2024)",
    "empty_subset": "absent (no text): clause indicators are never all off, a small redundancy for few clauses",
}
