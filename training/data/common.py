"""Shared machinery of the data loaders: where data comes from, malformed-row accounting, readers,
seeded splits and the construction of unified-schema ``datasets.Dataset`` objects.

Source resolution (:func:`resolve_source`), in order:

1. an explicit ``source=``: an existing local folder is read as that data set's folder; anything else that
   looks like a Hub id (``owner/name``) is passed to ``datasets.load_dataset``;
2. ``data_dir=`` or the ``RH_DATA_DIR`` environment variable: the data set's folder inside it MUST exist
   (a missing folder or file raises :class:`DataNotFoundError` naming the path and what was expected);
3. neither: the data set's default Hub id, if it has one (online use); otherwise :class:`DataNotFoundError`.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .schema import FIELD_SPECS, FIELDS, REQUIRED_FIELDS

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "RH_DATA_DIR"
CACHE_DIR_ENV = "RH_CACHE_DIR"
MAX_LINES_REPORTED = 5
DEFAULT_MAX_MALFORMED_FRACTION = 0.05


# --------------------------------------------------------------------------------------------- errors


class DataNotFoundError(FileNotFoundError):
    """A data folder or file is missing (the message names the path and what was expected)."""


class EmptySplitError(ValueError):
    """A split has no usable rows."""


class MalformedDataError(ValueError):
    """Too large a share of a file's rows is malformed (probably the wrong file or format)."""


# --------------------------------------------------------------------------------------------- issues


@dataclass
class FileIssues:
    """Malformed and skipped rows of one file. ``unit`` says what ``lines`` count (line or JSON item)."""

    path: str
    unit: str = "line"
    rows: int = 0
    kept: int = 0
    malformed: dict[str, int] = field(default_factory=dict)
    malformed_lines: dict[str, list[int]] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def n_malformed(self) -> int:
        return sum(self.malformed.values())

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def bad(self, line: int | None, reason: str) -> None:
        """Count a malformed row (it is dropped, never turned into a label)."""
        self.malformed[reason] = self.malformed.get(reason, 0) + 1
        lines = self.malformed_lines.setdefault(reason, [])
        if line is not None and len(lines) < MAX_LINES_REPORTED:
            lines.append(int(line))

    def skip(self, reason: str, n: int = 1) -> None:
        """Count a well-formed row that is deliberately not used (e.g. an 'undecided' label)."""
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "unit": self.unit,
            "rows": self.rows,
            "kept": self.kept,
            "malformed": dict(self.malformed),
            "malformed_lines": {k: list(v) for k, v in self.malformed_lines.items()},
            "skipped": dict(self.skipped),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FileIssues:
        return cls(
            path=d["path"],
            unit=d.get("unit", "line"),
            rows=int(d.get("rows", 0)),
            kept=int(d.get("kept", 0)),
            malformed={k: int(v) for k, v in d.get("malformed", {}).items()},
            malformed_lines={k: [int(x) for x in v] for k, v in d.get("malformed_lines", {}).items()},
            skipped={k: int(v) for k, v in d.get("skipped", {}).items()},
        )

    def summary(self) -> str:
        parts = [f"{self.path}: {self.rows} rows, {self.kept} kept"]
        for reason, n in sorted(self.malformed.items(), key=lambda kv: -kv[1]):
            lines = ", ".join(str(x) for x in self.malformed_lines.get(reason, []))
            parts.append(f"  malformed x{n}: {reason} ({self.unit}s {lines})")
        for reason, n in sorted(self.skipped.items(), key=lambda kv: -kv[1]):
            parts.append(f"  skipped x{n}: {reason}")
        return "\n".join(parts)


class IssueLog:
    """Collects :class:`FileIssues` per file across loaders; shown in the data report.

    ``max_malformed_fraction``: a file whose malformed share exceeds it raises :class:`MalformedDataError`
    (a mostly-broken file is the wrong file, not noise). A file with no usable row raises
    :class:`EmptySplitError`.
    """

    def __init__(self, max_malformed_fraction: float = DEFAULT_MAX_MALFORMED_FRACTION) -> None:
        self.max_malformed_fraction = float(max_malformed_fraction)
        self.files: dict[str, FileIssues] = {}

    def open(self, path: str | os.PathLike | None, unit: str = "line") -> FileIssues:
        key = str(path)
        fi = FileIssues(path=key, unit=unit)
        self.files[key] = fi  # re-reading a file replaces its previous record
        return fi

    def add(self, fi: FileIssues) -> None:
        self.files[fi.path] = fi

    def close(self, fi: FileIssues, what: str) -> None:
        """Finish a file: log, and raise when it has no usable row or too many malformed rows."""
        if fi.n_malformed:
            logger.warning("%s: %d malformed row(s) dropped\n%s", what, fi.n_malformed, fi.summary())
        if fi.kept == 0:
            raise EmptySplitError(
                f"{what}: no usable rows in {fi.path} ({fi.rows} rows read, {fi.n_malformed} malformed, "
                f"{fi.n_skipped} skipped).\n{fi.summary()}"
            )
        if fi.rows and fi.n_malformed / fi.rows > self.max_malformed_fraction:
            raise MalformedDataError(
                f"{what}: {fi.n_malformed} of {fi.rows} rows in {fi.path} are malformed "
                f"(> {self.max_malformed_fraction:.0%}); is this the right file?\n{fi.summary()}"
            )

    @property
    def n_malformed(self) -> int:
        return sum(f.n_malformed for f in self.files.values())

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {k: v.to_dict() for k, v in sorted(self.files.items())}

    def summary(self) -> str:
        return "\n".join(f.summary() for _, f in sorted(self.files.items()))


# --------------------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class SourceSpec:
    """Where one data set lives: its folder in the data dir, its files per original split, its Hub id."""

    name: str
    folder: str
    files: Mapping[str, str]
    expected: str
    hub_id: str | None = None
    hub_config: str | None = None
    hub_splits: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResolvedSource:
    kind: str  # "local" | "hub"
    spec: SourceSpec
    path: Path | None = None
    hub_id: str | None = None
    hub_config: str | None = None

    def file(self, split: str) -> Path:
        """The local file of an original split; missing -> :class:`DataNotFoundError`."""
        assert self.path is not None
        if split not in self.spec.files:
            raise DataNotFoundError(
                f"{self.spec.name}: no split {split!r} in this data folder ({self.path}); available: "
                f"{sorted(self.spec.files)}. Expected {self.spec.expected}."
            )
        return require_file(self.path / self.spec.files[split], self.spec)


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def _data_dir_hint() -> str:
    return (
        f"Set {DATA_DIR_ENV} (or pass data_dir=) to the folder that holds the data sets "
        f"(e.g. {DATA_DIR_ENV}=../shared/data)"
    )


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """``data_dir`` if given, else ``$RH_DATA_DIR``, else None. A given folder must exist."""
    raw = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or None
    if raw is None:
        return None
    p = Path(raw).expanduser()
    if not p.is_dir():
        origin = "data_dir" if data_dir is not None else f"${DATA_DIR_ENV}"
        raise DataNotFoundError(
            f"data folder {str(p)!r} (from {origin}) does not exist or is not a folder; expected the folder "
            f"that holds goemotions_en/, kote/, ethics/, ... . {_data_dir_hint()}."
        )
    return p


def require_file(path: Path, spec: SourceSpec) -> Path:
    if not path.is_file():
        raise DataNotFoundError(
            f"{spec.name}: missing file {str(path)!r}; expected {spec.expected}. {_data_dir_hint()}."
        )
    return path


def resolve_source(
    spec: SourceSpec, *, data_dir: str | os.PathLike | None = None, source: str | os.PathLike | None = None
) -> ResolvedSource:
    """Decide where ``spec``'s data comes from (see the module docstring for the order)."""
    if source is not None:
        p = Path(source).expanduser()
        if p.is_dir():
            return ResolvedSource("local", spec, path=p)
        s = str(source)
        if not p.exists() and _HUB_ID.match(s) and "/" in s:
            return ResolvedSource(
                "hub", spec, hub_id=s, hub_config=spec.hub_config if s == spec.hub_id else None
            )
        raise DataNotFoundError(
            f"{spec.name}: source {s!r} is neither an existing folder nor a Hub id (owner/name); expected a "
            f"folder with {spec.expected}."
        )
    root = resolve_data_dir(data_dir)
    if root is not None:
        folder = root / spec.folder
        if not folder.is_dir():
            raise DataNotFoundError(
                f"{spec.name}: missing folder {str(folder)!r}; expected {spec.expected}. {_data_dir_hint()}."
            )
        return ResolvedSource("local", spec, path=folder)
    if spec.hub_id:
        return ResolvedSource("hub", spec, hub_id=spec.hub_id, hub_config=spec.hub_config)
    raise DataNotFoundError(
        f"{spec.name}: no local data ({DATA_DIR_ENV} is not set and no data_dir= given) and no default Hub id. "
        f"{_data_dir_hint()}, or pass source=<folder or Hub id> with {spec.expected}."
    )


def load_hub_split(res: ResolvedSource, split: str):
    """``datasets.load_dataset`` for a Hub source; errors say how to use local data instead."""
    import datasets

    hub_split = res.spec.hub_splits.get(split, split)
    try:
        return datasets.load_dataset(res.hub_id, res.hub_config, split=hub_split)
    except Exception as e:  # network, missing split, gated repo ...
        raise DataNotFoundError(
            f"{res.spec.name}: could not load Hub id {res.hub_id!r} (config {res.hub_config!r}, split "
            f"{hub_split!r}): {type(e).__name__}: {e}. Offline? {_data_dir_hint()}."
        ) from e


def require_columns(ds, columns: Sequence[str], res: ResolvedSource) -> None:
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise ValueError(
            f"{res.spec.name}: Hub data set {res.hub_id!r} lacks columns {missing} (has {ds.column_names}); "
            f"expected {res.spec.expected}."
        )


# --------------------------------------------------------------------------------------------- readers


def read_text(path: Path) -> str:
    """Whole file as text (``.gz`` transparently), UTF-8 with an optional BOM stripped."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    return data.decode("utf-8-sig")


def iter_tsv(
    path: Path, n_cols: int, fi: FileIssues, *, header: Sequence[str] | None = None
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` of a quote-free TSV; wrong column counts are counted in ``fi``.

    Lines are split on ``\\n`` only (a stray ``\\r`` inside a text stays text). Blank lines are malformed
    except a final one. ``header``: the expected first line's fields (checked, not yielded).
    """
    lines = read_text(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    start = 0
    if header is not None:
        if not lines or lines[0].rstrip("\r").split("\t") != list(header):
            got = lines[0][:200] if lines else "<empty file>"
            raise ValueError(f"{path}: expected header columns {list(header)}, got {got!r}")
        start = 1
    for i in range(start, len(lines)):
        line = lines[i].rstrip("\r")
        fi.rows += 1
        if not line.strip():
            fi.bad(i + 1, "blank line")
            continue
        parts = line.split("\t")
        if len(parts) != n_cols:
            fi.bad(i + 1, f"expected {n_cols} tab-separated columns, got {len(parts)}")
            continue
        yield i + 1, parts


def iter_csv(
    path: Path, n_cols: int, fi: FileIssues, *, header: Sequence[str] | None = None
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(first_line_number, fields)`` of a quoted CSV (multi-line fields allowed)."""
    import csv

    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        prev = 0
        first = True
        for row in reader:
            line = prev + 1
            prev = reader.line_num
            if first and header is not None:
                first = False
                if row != list(header):
                    raise ValueError(f"{path}: expected CSV header {list(header)}, got {row[:10]}")
                continue
            first = False
            fi.rows += 1
            if not row or not any(x.strip() for x in row):
                fi.bad(line, "blank line")
                continue
            if len(row) != n_cols:
                fi.bad(line, f"expected {n_cols} CSV columns, got {len(row)}")
                continue
            yield line, row


def parse_label_ids(raw: str, width: int) -> list[int]:
    """``"3,27"`` -> ``[3, 27]``; raises ``ValueError`` (the reason) on non-integers or ids out of range."""
    raw = raw.strip()
    if not raw:
        raise ValueError("no label ids")
    out = []
    for tok in raw.split(","):
        tok = tok.strip()
        if not re.fullmatch(r"\d+", tok):
            raise ValueError(f"label id {tok!r} is not a non-negative integer")
        v = int(tok)
        if v >= width:
            raise ValueError(f"label id out of range 0..{width - 1}")
        out.append(v)
    return sorted(set(out))


def parse_binary(raw: Any) -> int:
    """0/1 from ``0``, ``1``, ``"0"``, ``"1"`` (also ``True``/``False``); else ``ValueError``."""
    if isinstance(raw, bool):
        return int(raw)
    if isinstance(raw, int) and raw in (0, 1):
        return raw
    if isinstance(raw, str) and raw.strip() in ("0", "1"):
        return int(raw.strip())
    raise ValueError("label is not 0/1")


def clean_text(s: Any) -> str:
    """Strip, and turn ``\\r\\n``/``\\r`` into ``\\n``. Non-strings -> ``""`` (then rejected as empty)."""
    if not isinstance(s, str):
        return ""
    return s.replace("\r\n", "\n").replace("\r", "\n").strip()


def text_and_label_ids(
    fi: FileIssues, line: int, text: Any, raw_labels: str, width: int
) -> tuple[str, list[int]] | None:
    """The cleaned text and label ids of a multi-label row, or None when the text is empty or an id is
    invalid (then the row is counted as malformed in ``fi``)."""
    text = clean_text(text)
    if not text:
        fi.bad(line, "empty text")
        return None
    try:
        return text, parse_label_ids(raw_labels, width)
    except ValueError as e:
        fi.bad(line, str(e))
        return None


# --------------------------------------------------------------------------------------------- splits


def group_split(groups: Sequence[str], eval_fraction: float, seed: int) -> list[bool]:
    """Seeded split of rows by group: returns ``is_eval`` per row; a group is never on both sides.

    The sorted unique groups are permuted with ``numpy.random.default_rng(seed)`` and the first
    ``round(eval_fraction * n_groups)`` (at least 1, at most n_groups - 1) go to eval, so the result depends
    only on the set of groups and the seed, not on row order.
    """
    import numpy as np

    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
    uniq = sorted(set(groups))
    if len(uniq) < 2:
        raise EmptySplitError(f"cannot split {len(uniq)} group(s) into train and eval")
    n_eval = min(max(1, round(eval_fraction * len(uniq))), len(uniq) - 1)
    perm = np.random.default_rng(seed).permutation(len(uniq))
    eval_groups = {uniq[i] for i in perm[:n_eval]}
    return [g in eval_groups for g in groups]


def sample_indices(n: int, k: int | None, seed: int) -> list[int] | None:
    """Sorted seeded sample of ``k`` of ``range(n)`` without replacement; None when no sampling is needed."""
    import numpy as np

    if k is None or k >= n:
        return None
    if k < 0:
        raise ValueError(f"max_samples must be >= 0, got {k}")
    return sorted(np.random.default_rng(seed).choice(n, size=k, replace=False).tolist())


def stable_seed(seed: int, *names: str) -> int:
    """A per-purpose seed derived from the config seed (so each data set's split uses its own stream)."""
    h = hashlib.sha256(("\x1f".join([str(seed), *names])).encode()).digest()
    return int.from_bytes(h[:4], "little")


# --------------------------------------------------------------------------------------------- datasets


_SPEC_BY_NAME = {name: (kind, length) for name, kind, length in FIELD_SPECS}


class Rows:
    """Column-wise accumulator of unified-schema rows; absent fields become null."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {f: [] for f in FIELDS}
        self.n = 0

    def add(self, **values: Any) -> None:
        for k in values:
            if k not in self.cols:
                raise KeyError(f"unknown schema field {k!r}")
        for k in REQUIRED_FIELDS:
            if values.get(k) in (None, ""):
                raise ValueError(f"required field {k!r} is empty")
        for k, col in self.cols.items():
            col.append(values.get(k))
        self.n += 1

    def __len__(self) -> int:
        return self.n

    def select(self, indices: Sequence[int] | None) -> Rows:
        if indices is None:
            return self
        out = Rows()
        out.cols = {k: [v[i] for i in indices] for k, v in self.cols.items()}
        out.n = len(indices)
        return out

    def to_dataset(self, what: str):
        """Build the ``datasets.Dataset`` (fixed :func:`~.schema.get_features`); empty -> EmptySplitError."""
        if self.n == 0:
            raise EmptySplitError(f"{what}: the split is empty (no rows after parsing and sampling)")
        return table_to_dataset(self.cols, self.n)


def table_to_dataset(cols: Mapping[str, Any], n: int):
    """Columns (lists or Arrow arrays; missing = all-null) -> ``datasets.Dataset`` with the fixed features."""
    import datasets
    import pyarrow as pa

    from .schema import get_features

    features = get_features()
    schema = features.arrow_schema
    arrays = []
    for f in schema:
        v = cols.get(f.name)
        if v is None:
            arrays.append(pa.nulls(n, type=f.type))
        elif isinstance(v, (pa.Array, pa.ChunkedArray)):
            arrays.append(v.cast(f.type) if v.type != f.type else v)
        elif all(x is None for x in v):
            arrays.append(pa.nulls(n, type=f.type))
        else:
            arrays.append(pa.array(v, type=f.type))
    table = pa.Table.from_arrays(arrays, schema=schema)
    return datasets.Dataset(datasets.table.InMemoryTable(table), info=datasets.DatasetInfo(features=features))


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Cache folder for parsed data: ``explicit``, ``$RH_CACHE_DIR``, or ``~/.cache/redheart/data``."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "redheart" / "data"


def finish_rows(rows: Rows, *, split_label: str, max_samples: int | None, seed: int, what: str):
    """Label the split, draw the seeded ``max_samples`` subsample, build the Dataset."""
    rows = rows.select(sample_indices(len(rows), max_samples, seed))
    rows.cols["split"] = [split_label] * len(rows)
    return rows.to_dataset(what)


def split_rows(rows: Rows, eval_fraction: float, seed: int) -> tuple[Rows, Rows]:
    """Seeded group split of ``rows`` (by the ``group`` field) into (train, eval)."""
    is_eval = group_split(rows.cols["group"], eval_fraction, seed)
    train = rows.select([i for i, e in enumerate(is_eval) if not e])
    ev = rows.select([i for i, e in enumerate(is_eval) if e])
    return train, ev
