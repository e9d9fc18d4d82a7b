"""KOTE (Jeon et al. 2022): native Korean online comments, 44 emotions, multi-label.

Local layout (``$RH_DATA_DIR/kote``): ``val.tsv`` only (5,000 rows), no header, columns ``id``, ``text``,
comma-separated label ids in :data:`~.schema.KOTE_LABELS` order. The catalog splits it seeded into
train/eval (one row = one group). Target: ``kote`` = 44-wide multi-hot.

Hub route (online): ``searle-j/kote`` (columns ``ID``, ``text``, ``labels``; our ``val`` = its
``validation``; it also has ``train``/``test``). Not testable offline; the column names are checked.
"""

from __future__ import annotations

from typing import Any

from .common import (
    FileIssues,
    IssueLog,
    ResolvedSource,
    Rows,
    SourceSpec,
    iter_tsv,
    load_hub_split,
    require_columns,
    text_and_label_ids,
)
from .loader import LoadOptions, SetReader, load
from .schema import NUM_KOTE, multi_hot

SPEC = SourceSpec(
    name="kote",
    folder="kote",
    files={"val": "val.tsv"},
    expected="KOTE: val.tsv (TSV, no header: id, text, comma-separated label ids 0..43)",
    hub_id="searle-j/kote",
    hub_splits={"val": "validation"},
)


def read_kote(split: str, res: ResolvedSource, issues: IssueLog) -> Rows:
    rows = Rows()
    if res.kind == "hub":
        ds = load_hub_split(res, split)
        require_columns(ds, ["text", "labels"], res)
        fi = issues.open(f"hub:{res.hub_id}/{split}", unit="item")
        id_col = "ID" if "ID" in ds.column_names else ("id" if "id" in ds.column_names else None)
        ids = ds[id_col] if id_col else None
        for i, (text, labels) in enumerate(zip(ds["text"], ds["labels"], strict=True)):
            fi.rows += 1
            raw = ",".join(str(x) for x in labels) if isinstance(labels, list) else str(labels)
            _add(rows, fi, i + 1, str(ids[i]) if ids else f"{split}:{i + 1}", text, raw, split)
        issues.close(fi, f"kote/{split}")
        return rows
    path = res.file(split)
    fi = issues.open(path)
    for line, (row_id, text, raw) in iter_tsv(path, 3, fi):
        _add(rows, fi, line, row_id.strip() or f"{split}:{line}", text, raw, split)
    issues.close(fi, f"kote/{split}")
    return rows


def _add(rows: Rows, fi: FileIssues, line: int, row_id: str, text: str, raw: str, split: str) -> None:
    parsed = text_and_label_ids(fi, line, text, raw, NUM_KOTE)
    if parsed is None:
        return
    text, ids = parsed
    rows.add(
        id=row_id,
        group=f"kote:{row_id}",
        text=text,
        language="ko",
        source="kote",
        split=split,
        kote=multi_hot(ids, NUM_KOTE),
    )
    fi.kept += 1


READER = SetReader("kote", SPEC, read_kote)


def load_kote(split: str = "val", **options: Any):
    """KOTE original ``split`` (locally only "val") as a unified-schema Dataset.

    ``options``: the fields of :class:`~.loader.LoadOptions` (``data_dir``, ``max_samples``, ...).
    """
    return load(READER, split, LoadOptions(**options))
