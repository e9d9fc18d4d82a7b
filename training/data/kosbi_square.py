"""KoSBi (Korean social bias) and SQuARe (sensitive questions), naver-ai/korean-safety-benchmarks.

Local layout (``$RH_DATA_DIR/kosbi_square``): ``kosbi_valid.json`` and ``question_valid.json`` (JSON lists;
only the ``valid`` parts are here, so the catalog splits them seeded into train/eval).

KoSBi -> commonsense acceptability (Korean). Each item is a ``context`` and a next ``sentence`` about a
demographic group, labelled ``safe``/``unsafe`` (unsafe = stereotype, prejudice or discrimination):

* sentence rows: ``text`` = ``context + " " + sentence``, ``acceptable`` = 1.0 for ``sentence_label`` safe,
  0.0 for unsafe (the sentence is judged in its context);
* context rows (``include_context=True``, one per distinct context): ``text`` = ``context``,
  ``acceptable`` from ``context_label``; ``undecided`` contexts are skipped (counted in the report).

All rows of one context share a ``group`` (keyed on the Korean context, also for the English translation),
so a context and its sentences are never on both sides of a split. A stray leading ``#`` marker in some
contexts is stripped.

SQuARe is NOT mapped onto acceptability: ``sensitive?`` = 1 marks a question whose answers could cause
harm (contentious, ethical, predictive topics), e.g. "Should we hold a memorial service with gratitude to our
ancestors?". Asking it is not a morally unacceptable act, and its 0 class is not "acceptable" either, so
``acceptable`` stays None. Its label goes to the separate field ``sensitive_question`` (1.0/0.0); no
docs/DESIGN.md output consumes it yet, so the default mixture gives SQuARe weight 0 (it is very imbalanced:
6,636 sensitive / 246 not).

Hub route: no default Hub ids; ``source=<Hub id>`` must have the same columns as the JSON files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import partial
from typing import Any

from .common import (
    FileIssues,
    IssueLog,
    ResolvedSource,
    Rows,
    SourceSpec,
    clean_text,
    load_hub_split,
    parse_binary,
    read_text,
)
from .loader import LoadOptions, SetReader, load

KOSBI_SPEC = SourceSpec(
    name="kosbi",
    folder="kosbi_square",
    files={"valid": "kosbi_valid.json"},
    expected="KoSBi: kosbi_valid.json (JSON list of {context, sentence, context_en, sentence_en, "
    "context_label, sentence_label, ...})",
)
SQUARE_SPEC = SourceSpec(
    name="square",
    folder="kosbi_square",
    files={"valid": "question_valid.json"},
    expected="SQuARe: question_valid.json (JSON list of {question, question_en, 'sensitive?', category})",
)
_SAFE = {"safe": 1.0, "unsafe": 0.0}
_LEADING_HASH = re.compile(r"^#+\s*")


def _items(spec: SourceSpec, split: str, res: ResolvedSource, issues: IssueLog):
    """(file issues, list of dict items) from the local JSON list or a Hub data set."""
    if res.kind == "hub":
        ds = load_hub_split(res, split)
        return issues.open(f"hub:{res.hub_id}/{split}", unit="item"), ds.to_list()
    path = res.file(split)
    fi = issues.open(path, unit="item")
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e}); expected {spec.expected}") from e
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list, got {type(data).__name__}; expected {spec.expected}")
    return fi, data


def _objects(items: list[Any], fi: FileIssues) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(item number, item)`` of every JSON object in ``items``; other items are counted as malformed."""
    for n, item in enumerate(items, start=1):
        fi.rows += 1
        if not isinstance(item, dict):
            fi.bad(n, "item is not a JSON object")
            continue
        yield n, item


def _clean_context(s: Any) -> str:
    return _LEADING_HASH.sub("", clean_text(s))


def read_kosbi(
    split: str, res: ResolvedSource, issues: IssueLog, *, language: str = "ko", include_context: bool = True
) -> Rows:
    if language not in ("ko", "en"):
        raise ValueError(f"language must be 'ko' or 'en', got {language!r}")
    source = "kosbi" if language == "ko" else "kosbi_en"
    suffix = "" if language == "ko" else "_en"
    fi, items = _items(KOSBI_SPEC, split, res, issues)
    rows = Rows()
    seen_contexts: set[str] = set()
    for n, item in _objects(items, fi):
        ctx_key = _clean_context(item.get("context"))
        context = _clean_context(item.get("context" + suffix))
        sentence = clean_text(item.get("sentence" + suffix))
        if not ctx_key or not context or not sentence:
            fi.bad(n, "empty context or sentence")
            continue
        label = item.get("sentence_label")
        if label not in _SAFE:
            fi.bad(n, "sentence_label is not safe/unsafe")
            continue
        group = f"kosbi:{ctx_key}"
        rows.add(
            id=f"{split}:{n}:sentence",
            group=group,
            text=f"{context} {sentence}",
            language=language,
            source=source,
            split=split,
            acceptability_framework="commonsense",
            acceptable=_SAFE[label],
        )
        fi.kept += 1
        if include_context and ctx_key not in seen_contexts:
            seen_contexts.add(ctx_key)
            c_label = item.get("context_label")
            if c_label in _SAFE:
                rows.add(
                    id=f"{split}:{n}:context",
                    group=group,
                    text=context,
                    language=language,
                    source=source,
                    split=split,
                    acceptability_framework="commonsense",
                    acceptable=_SAFE[c_label],
                )
            else:
                fi.skip(f"context_label {c_label!r} (context row not used)")
    issues.close(fi, f"{source}/{split}")
    return rows


def read_square(split: str, res: ResolvedSource, issues: IssueLog, *, language: str = "ko") -> Rows:
    if language not in ("ko", "en"):
        raise ValueError(f"language must be 'ko' or 'en', got {language!r}")
    source = "square" if language == "ko" else "square_en"
    fi, items = _items(SQUARE_SPEC, split, res, issues)
    rows = Rows()
    for n, item in _objects(items, fi):
        key = clean_text(item.get("question"))
        text = clean_text(item.get("question" if language == "ko" else "question_en"))
        if not key or not text:
            fi.bad(n, "empty question")
            continue
        try:
            sensitive = parse_binary(item.get("sensitive?"))
        except ValueError:
            fi.bad(n, "'sensitive?' is not 0/1")
            continue
        rows.add(
            id=f"{split}:{n}",
            group=f"square:{key}",
            text=text,
            language=language,
            source=source,
            split=split,
            sensitive_question=float(sensitive),
        )
        fi.kept += 1
    issues.close(fi, f"{source}/{split}")
    return rows


def kosbi_reader(language: str = "ko", include_context: bool = True) -> SetReader:
    """KoSBi in ``language`` ("ko", or the English translation "en"), with or without its context rows."""
    return SetReader(
        "kosbi", KOSBI_SPEC, partial(read_kosbi, language=language, include_context=include_context)
    )


def square_reader(language: str = "ko") -> SetReader:
    """SQuARe in ``language`` ("ko", or the English translation "en")."""
    return SetReader("square", SQUARE_SPEC, partial(read_square, language=language))


def load_kosbi(split: str = "valid", *, language: str = "ko", include_context: bool = True, **options: Any):
    """KoSBi original ``split`` (locally only "valid") as commonsense-acceptability rows.

    ``options``: the fields of :class:`~.loader.LoadOptions` (``data_dir``, ``max_samples``, ...).
    """
    return load(kosbi_reader(language, include_context), split, LoadOptions(**options))


def load_square(split: str = "valid", *, language: str = "ko", **options: Any):
    """SQuARe original ``split`` (locally only "valid"): ``sensitive_question`` rows (no acceptability).

    ``options``: the fields of :class:`~.loader.LoadOptions` (``data_dir``, ``max_samples``, ...).
    """
    return load(square_reader(language), split, LoadOptions(**options))
