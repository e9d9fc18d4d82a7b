"""GoEmotions (Demszky et al. 2020): Reddit comments, 27 emotions + neutral, multi-label.

Local layout (``$RH_DATA_DIR/goemotions_en``): ``train.tsv``/``dev.tsv`` without header, columns ``text``,
comma-separated label ids, ``comment_id``; ``labels.txt``. The Korean set (``goemotions_ko``) is a machine
translation of the same rows (row-aligned; mediocre quality), columns ``text``, label ids; ``label.txt``.

Targets: ``emotion`` = 28-wide multi-hot; ``sentiment`` = :func:`~.schema.goemotions_sentiment` (official
sentiment grouping: ``(n_pos - n_neg) / (n_pos + n_neg)``, 0 for neutral/ambiguous-only). Aligned EN/KO rows
share their ``group`` (``goemotions:<split>:<row>``).

Hub route (online): ``google-research-datasets/go_emotions`` config ``simplified`` (columns ``text``,
``labels``, ``id``; our ``dev`` = its ``validation``). The Korean set has no default Hub id: pass
``source=<id>`` of a data set with ``text`` and ``labels`` columns.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from .common import (
    FileIssues,
    IssueLog,
    ResolvedSource,
    Rows,
    SourceSpec,
    iter_tsv,
    load_hub_split,
    read_text,
    require_columns,
    require_file,
    text_and_label_ids,
)
from .loader import LoadOptions, SetReader, load
from .schema import GOEMOTIONS_LABELS, NUM_EMOTIONS, goemotions_sentiment, multi_hot

SPECS = {
    "en": SourceSpec(
        name="goemotions_en",
        folder="goemotions_en",
        files={"train": "train.tsv", "dev": "dev.tsv"},
        expected="GoEmotions EN: train.tsv/dev.tsv (TSV, no header: text, label ids, comment_id) and labels.txt",
        hub_id="google-research-datasets/go_emotions",
        hub_config="simplified",
        hub_splits={"dev": "validation"},
    ),
    "ko": SourceSpec(
        name="goemotions_ko",
        folder="goemotions_ko",
        files={"train": "train.tsv", "dev": "dev.tsv"},
        expected="GoEmotions KO: train.tsv/dev.tsv (TSV, no header: text, label ids) and label.txt",
    ),
}
_LABEL_FILES = {"en": "labels.txt", "ko": "label.txt"}


def _check_label_file(res: ResolvedSource, language: str) -> None:
    """The label file must list exactly :data:`GOEMOTIONS_LABELS` in order (else ids would be misread)."""
    path = require_file(res.path / _LABEL_FILES[language], res.spec)
    names = tuple(x.strip() for x in read_text(path).splitlines() if x.strip())
    if names != GOEMOTIONS_LABELS:
        raise ValueError(
            f"{path}: label names/order differ from GoEmotions' 28 labels; got {names[:5]}... "
            f"({len(names)} names). Label ids would be misread."
        )


def read_goemotions(language: str, split: str, res: ResolvedSource, issues: IssueLog) -> Rows:
    """Parse one split into unified rows (``split`` field = the file's split name)."""
    if language not in SPECS:
        raise ValueError(f"language must be 'en' or 'ko', got {language!r}")
    name = SPECS[language].name
    rows = Rows()
    if res.kind == "hub":
        ds = load_hub_split(res, split)
        require_columns(ds, ["text", "labels"], res)
        fi = issues.open(f"hub:{res.hub_id}/{split}", unit="item")
        ids = ds["id"] if "id" in ds.column_names else None
        for i, (text, labels) in enumerate(zip(ds["text"], ds["labels"], strict=True)):
            fi.rows += 1
            raw = ",".join(str(x) for x in labels) if isinstance(labels, list) else str(labels)
            _add(rows, fi, i + 1, text, raw, ids[i] if ids else None, name, language, split, i)
        issues.close(fi, f"{name}/{split}")
        return rows
    _check_label_file(res, language)
    path = res.file(split)
    fi = issues.open(path)
    n_cols = 3 if language == "en" else 2
    for k, (line, parts) in enumerate(iter_tsv(path, n_cols, fi)):
        _add(rows, fi, line, parts[0], parts[1], parts[2] if n_cols == 3 else None, name, language, split, k)
    issues.close(fi, f"{name}/{split}")
    return rows


def _add(
    rows: Rows,
    fi: FileIssues,
    line: int,
    text: str,
    raw_labels: str,
    row_id: str | None,
    name: str,
    language: str,
    split: str,
    position: int,
) -> None:
    parsed = text_and_label_ids(fi, line, text, raw_labels, NUM_EMOTIONS)
    if parsed is None:
        return
    text, ids = parsed
    # The row position (0-based among the file's data lines) aligns EN and KO; it is the pair's group.
    rows.add(
        id=str(row_id) if row_id else f"{split}:{line}",
        group=f"goemotions:{split}:{position}",
        text=text,
        language=language,
        source=name,
        split=split,
        emotion=multi_hot(ids, NUM_EMOTIONS),
        sentiment=goemotions_sentiment(ids),
    )
    fi.kept += 1


#: One reader per language; the row group (``goemotions:<split>:<row>``) aligns EN and KO.
READERS: dict[str, SetReader] = {
    language: SetReader(spec.name, spec, partial(read_goemotions, language))
    for language, spec in SPECS.items()
}


def load_goemotions(language: str = "en", split: str = "train", **options: Any):
    """GoEmotions ``language`` ("en"/"ko"), original ``split`` ("train"/"dev") as a unified-schema Dataset.

    ``options``: the fields of :class:`~.loader.LoadOptions` (``data_dir``, ``max_samples``, ...).
    """
    if language not in READERS:
        raise ValueError(f"language must be 'en' or 'ko', got {language!r}")
    return load(READERS[language], split, LoadOptions(**options))
