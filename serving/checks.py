"""What a request may ask for: the analysis options and the texts, checked before any work is admitted.

Option errors raise :class:`~.errors.InvalidRequest` naming the field. Text errors raise the pipeline's
``InputError`` naming the text (``texts[3]``, ``alternatives[0][1]``), so that a list can report them in
place; the caps come from :class:`~.settings.ServingSettings`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..pipelines.text import InputError, normalise_text
from .errors import InvalidRequest

TRUNCATION = ("chunk", "first", "error")
#: Explainer options a request may set, and the most clauses it may ask for (2^6 - 1 = 63 subsets per text).
EXPLAIN_OPTIONS = (
    "judgement",
    "bins",
    "binning",
    "value_range",
    "min_spread",
    "max_clauses",
    "empty_judgement",
)
MAX_EXPLAIN_CLAUSES = 6


def check_options(
    top_k: Any = 3, threshold: Any = None, truncation: Any = "chunk", explain: Any = False
) -> dict[str, Any]:
    """The validated analysis options (raises :class:`InvalidRequest` naming the field)."""
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise InvalidRequest(f"top_k must be a positive integer or null, got {top_k!r}", field="top_k")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise InvalidRequest(
                f"threshold must be a number in [0, 1] or null, got {threshold!r}", field="threshold"
            )
        threshold = float(threshold)
    if truncation not in TRUNCATION:
        raise InvalidRequest(
            f"truncation must be one of {list(TRUNCATION)}, got {truncation!r}", field="truncation"
        )
    if isinstance(explain, Mapping):
        unknown = sorted(set(explain) - set(EXPLAIN_OPTIONS))
        if unknown:
            raise InvalidRequest(
                f"explain options are {list(EXPLAIN_OPTIONS)}, got also {unknown}", field="explain"
            )
        clauses = explain.get("max_clauses", MAX_EXPLAIN_CLAUSES)
        if (
            isinstance(clauses, bool)
            or not isinstance(clauses, int)
            or not 1 <= clauses <= MAX_EXPLAIN_CLAUSES
        ):
            raise InvalidRequest(
                f"explain.max_clauses must be an integer from 1 to {MAX_EXPLAIN_CLAUSES}, got {clauses!r}",
                field="explain.max_clauses",
                limit=MAX_EXPLAIN_CLAUSES,
            )
        explain = dict(explain)
    elif not isinstance(explain, bool):
        raise InvalidRequest(
            f"explain must be true, false or an object of options, got {explain!r}", field="explain"
        )
    return {"top_k": top_k, "threshold": threshold, "truncation": truncation, "explain": explain}


def check_text(text: Any, field: str, max_chars: int) -> None:
    """Raise ``InputError`` for a text that is not a string, is too long or that the pipeline would refuse."""
    if not isinstance(text, str):
        raise InputError(f"{field} must be a string, got {type(text).__name__}")
    if len(text) > max_chars:
        raise InputError(
            f"{field} has {len(text)} characters, more than the limit of {max_chars} (max_text_chars)"
        )
    try:
        normalise_text(text, max_chars=max_chars)
    except InputError as err:
        raise InputError(f"{field}: {err.reason}") from err


def check_item(
    text: Any, alternatives: Any, field: str, alt_field: str, *, max_chars: int, max_alternatives: int
) -> None:
    """:func:`check_text` for a text and each of its alternatives (a non-empty list, at most the cap)."""
    check_text(text, field, max_chars)
    if alternatives is None:
        return
    if isinstance(alternatives, (str, bytes)) or not isinstance(alternatives, Sequence) or not alternatives:
        raise InputError(f"{alt_field} must be a non-empty list of texts or null")
    if len(alternatives) > max_alternatives:
        raise InputError(
            f"{alt_field} holds {len(alternatives)} texts, more than the limit of {max_alternatives} (max_alternatives)"
        )
    for j, alternative in enumerate(alternatives):
        check_text(alternative, f"{alt_field}[{j}]", max_chars)
