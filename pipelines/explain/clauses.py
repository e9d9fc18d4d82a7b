"""Clauses of a text and the clause subsets an explanation analyses (docs/DESIGN.md "SURD, exactly").

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

Subsets -- every non-empty subset of the clauses (``2^n - 1``, :func:`subset_masks`), each clause's text
joined in the original order with single spaces (:func:`subset_text`). ``n`` is capped by ``max_clauses``
(default 6, i.e. 63 texts per explanation): longer texts are cut into clauses and then the adjacent pair
with the fewest characters is merged until ``n <= max_clauses`` (:func:`plan_clauses`; the explanation says
so under ``cap``). Subsets are never sampled, because the decomposition is only exact over all of them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_MAX_CLAUSES",
    "EN_CONJUNCTIONS",
    "KO_CONJUNCTIONS",
    "KO_ENDINGS",
    "KO_GO_NOUNS",
    "MAX_CLAUSES_LIMIT",
    "ClausePlan",
    "clause_count",
    "plan_clauses",
    "split_clauses",
    "subset_masks",
    "subset_members",
    "subset_text",
]

DEFAULT_MAX_CLAUSES = 6
#: Hard upper bound on ``max_clauses`` (2^12 - 1 = 4095 model calls per text).
MAX_CLAUSES_LIMIT = 12

EN_CONJUNCTIONS = frozenset(
    {"but", "and", "because", "although", "though", "while", "whereas", "unless", "yet"}
)
KO_CONJUNCTIONS = frozenset(
    {"그리고", "하지만", "그런데", "근데", "그래서", "그러나", "그러니까", "왜냐하면"}
)
#: Korean connective endings that close a clause (-고 and -서 have extra conditions, see the module doc).
KO_ENDINGS = ("지만", "는데", "은데", "인데", "니까", "면서", "고", "서")
_QUOTATIVE_GO = ("다고", "라고", "냐고", "자고")
#: Nouns ending in 고 that are not the connective -고.
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


def clause_count(text: str, max_clauses: int = DEFAULT_MAX_CLAUSES) -> int:
    """How many clauses :func:`plan_clauses` gives ``text`` (capping merges clauses down to ``max_clauses``),
    without merging them: every result reports it, so long texts must not pay for the merges."""
    return min(len(split_clauses(text)), max_clauses)


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


def subset_members(mask: int, n: int) -> list[int]:
    """The clause indices present in the subset ``mask``."""
    return [i for i in range(n) if mask >> i & 1]
