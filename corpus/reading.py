"""Corpus inputs as a lazy stream of ``(row, id, text)`` records: memory stays flat however large the input.

Why a reader of its own rather than ``datasets`` for local files: a corpus run must never drop or silently
mangle a row, and Arrow's readers stop at the first undecodable byte or bad line of a file. Here every line
(JSON lines) or record (CSV/TSV) is decoded on its own, so a bad one becomes a :class:`Record` with an
``error`` and the rows around it are read as usual. A Hub dataset goes through
``datasets.load_dataset(..., streaming=True)``, the only way to read one without downloading it (there a row
its Arrow reader cannot decode stops the run: that check is the dataset's).

Formats (by suffix; ``.gz`` may follow the text formats):

* JSON lines (``.jsonl``, ``.ndjson``, ``.json``): one object per line, read line by line as bytes. Row ``n``
  is line ``n + 1``: a blank line, a line that is not UTF-8, not JSON or not an object is a row with an error.
  The first object of a file stands for its header: without the text column the file is refused.
* CSV (``.csv``, standard quoting: the csv module, so a quoted field may hold commas and line breaks) and TSV
  (``.tsv``, ``.tab``: plain tab-separated, no quoting -- the IANA format and NSMC's, whose reviews hold quote
  marks); ``quoting`` overrides (``"csv"`` or ``"none"``). Unquoted files are read line by line, split on
  ``\\n`` only (a bare ``\\r`` inside a review stays in its text; the csv module would end the row there). The
  first line is the header unless ``header=False`` (columns are then named ``"0"``, ``"1"``, ...). Undecodable
  bytes in the text or id field make that row an error.
* Parquet (``.parquet``, ``.pq``): read one row group at a time, only the text and id columns; row groups
  holding none of the wanted rows are skipped without reading them.

A folder is read as its files of these formats in name order, a glob pattern as its matches in name order;
rows are numbered from 0 across the files. ``limit`` stops after that many rows.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

#: File suffix (before an optional ``.gz``) -> format.
FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
QUOTING_MODES = ("csv", "none")
#: Undecodable bytes, as ``surrogateescape`` decodes them.
_ESCAPED_BYTES = re.compile("[\udc80-\udcff]")
#: Rows read from a Parquet file per Arrow batch.
_PARQUET_BATCH = 4096


class CorpusInputError(ValueError):
    """The input cannot be read as a corpus (no such file, unknown format, a missing column): the run stops."""


class ColumnError(CorpusInputError):
    """A file (or dataset) lacks the text or id column; the message names the file and the columns it has."""


@dataclass(frozen=True)
class Record:
    """One input row: its position, id and text as read (any type), or why it could not be read."""

    row: int
    id: Any
    text: Any
    error: str | None = None


class RowSelection(Protocol):
    """Which rows a process wants (the shard plan): rows it does not want are counted, not decoded."""

    def __contains__(self, row: int) -> bool: ...

    def overlaps(self, start: int, stop: int) -> bool: ...


class AllRows:
    """Every row (one process, or reading for a check)."""

    def __contains__(self, row: int) -> bool:
        return True

    def overlaps(self, start: int, stop: int) -> bool:
        return stop > start


@dataclass(frozen=True)
class Columns:
    """The text and id columns to read (``id`` None: the row number is the id)."""

    text: str = "text"
    id: str | None = None

    def check(self, names: Iterable[str], where: str) -> None:
        """Refuse a file without the text (or id) column, naming the file and the columns it does have."""
        names = list(names)
        for option, name in (("--text-column", self.text), ("--id-column", self.id)):
            if name is not None and name not in names:
                raise ColumnError(
                    f"{where} has no column {name!r} (its columns: {', '.join(map(repr, names)) or 'none'}); "
                    f"name the right one with {option}"
                )


@dataclass(frozen=True)
class CorpusSource:
    """Where the corpus comes from (files or a Hub dataset) and how to read it; see the module doc."""

    files: tuple[Path, ...] = ()
    dataset: str | None = None
    dataset_config: str | None = None
    split: str = "train"
    data_files: tuple[str, ...] = ()
    columns: Columns = field(default_factory=Columns)
    quoting: str | None = None
    header: bool = True
    limit: int | None = None

    def __post_init__(self) -> None:
        if bool(self.files) == bool(self.dataset):
            raise CorpusInputError("give either input files or a dataset id, not both or neither")
        if self.quoting is not None and self.quoting not in QUOTING_MODES:
            raise CorpusInputError(f"quoting must be one of {QUOTING_MODES}, got {self.quoting!r}")
        if self.limit is not None and self.limit < 0:
            raise CorpusInputError(f"limit must be >= 0, got {self.limit}")
        for path in self.files:
            file_format(path)  # an unknown suffix fails here, before any model loads

    @classmethod
    def from_path(cls, spec: str | Path, **options: Any) -> CorpusSource:
        """A file, a folder (its corpus files in name order) or a glob pattern (its matches in name order)."""
        path = Path(spec).expanduser()
        if path.is_file():
            files = [path]
        elif path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and _suffix(p) in FORMATS)
            if not files:
                raise CorpusInputError(
                    f"folder {str(path)!r} holds no corpus file ({', '.join(sorted(FORMATS))}, optionally .gz)"
                )
        elif glob.has_magic(str(spec)):
            files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
            if not files:
                raise CorpusInputError(f"no file matches {str(spec)!r}")
        else:
            raise CorpusInputError(f"no such file or folder: {str(spec)!r}")
        return cls(files=tuple(p.resolve() for p in files), **options)

    def describe(self) -> dict[str, Any]:
        """What was read, for the manifest and the options check of a rerun (JSON-safe)."""
        if self.dataset:
            source: dict[str, Any] = {
                "dataset": self.dataset,
                "config": self.dataset_config,
                "split": self.split,
                "data_files": list(self.data_files),
            }
        else:
            source = {"files": [str(p) for p in self.files], "formats": [file_format(p) for p in self.files]}
            if any(file_format(p) in ("csv", "tsv") for p in self.files):
                source["quoting"] = self.quoting
                source["header"] = self.header
        return {**source, "text_column": self.columns.text, "id_column": self.columns.id, "limit": self.limit}

    def check(self) -> None:
        """Open every file (or the dataset) and check its columns: a wrong column fails before the model loads."""
        if self.dataset:
            next(iter(self._dataset_rows()), None)
            return
        for path in self.files:
            names = _file_columns(path, self)
            if names is not None:
                self.columns.check(names, str(path))

    def known_rows(self) -> int | None:
        """The number of rows when it is known without reading them (Parquet footers, ``limit``), else None."""
        total = None
        if self.files and all(file_format(p) == "parquet" for p in self.files):
            import pyarrow.parquet as pq

            total = sum(pq.ParquetFile(p).metadata.num_rows for p in self.files)
        if self.limit is not None:
            total = self.limit if total is None else min(total, self.limit)
        return total

    def records(self, selection: RowSelection | None = None) -> RecordStream:
        """The rows in ``selection`` (default: all), in order; the stream counts every row it passes."""
        return RecordStream(self, selection or AllRows())

    def _dataset_rows(self) -> Iterator[dict[str, Any]]:
        try:
            import datasets
        except ImportError as exc:  # pragma: no cover - datasets is part of the corpus extra
            raise CorpusInputError(
                "--dataset needs the datasets package: pip install 'red-heart[corpus]'"
            ) from exc
        dataset = datasets.load_dataset(
            self.dataset,
            self.dataset_config,
            split=self.split,
            streaming=True,
            data_files=list(self.data_files) or None,
        )
        where = f"dataset {self.dataset!r} (split {self.split!r})"
        for n, example in enumerate(dataset):
            if n == 0:
                names = getattr(dataset, "column_names", None) or list(example)
                self.columns.check(names, where)
            yield example


class RecordStream:
    """Iterates the selected records of a source; ``rows`` is the number of rows passed so far (all rows,
    selected or not), so after a full pass it is the corpus size (up to ``limit``)."""

    def __init__(self, source: CorpusSource, selection: RowSelection) -> None:
        self.source = source
        self.selection = selection
        self.rows = 0

    def __iter__(self) -> Iterator[Record]:
        limit = self.source.limit
        if limit == 0:
            return
        for item in self._items():
            self.rows += 1
            if item is not None:
                yield item
            if limit is not None and self.rows >= limit:
                return

    def _items(self) -> Iterator[Record | None]:
        """Every row: a Record when selected, None when only counted."""
        source, want = self.source, self.selection
        if source.dataset:
            yield from _dataset_records(source, want)
            return
        for path in source.files:
            start = self.rows
            kind = file_format(path)
            if kind == "jsonl":
                yield from _jsonl_records(path, start, want, source.columns)
            elif kind == "parquet":
                yield from _parquet_records(path, start, want, source.columns, source.limit)
            else:
                yield from _delimited_records(path, start, want, source, kind)


# ------------------------------------------------------------------------------------------------------------
# formats
# ------------------------------------------------------------------------------------------------------------
def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def file_format(path: Path) -> str:
    """``jsonl``, ``csv``, ``tsv`` or ``parquet`` from the file name; anything else is refused."""
    suffix = _suffix(path)
    kind = FORMATS.get(suffix)
    if kind is None or (kind == "parquet" and path.name.lower().endswith(".gz")):
        raise CorpusInputError(
            f"{str(path)!r}: unknown corpus format {suffix or '(no suffix)'!r}; use JSON lines "
            "(.jsonl/.ndjson/.json), CSV (.csv), TSV (.tsv/.tab), optionally gzipped (.gz), or Parquet (.parquet)"
        )
    return kind


@contextmanager
def _open_bytes(path: Path) -> Iterator[IO[bytes]]:
    with gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb") as handle:
        yield handle


def _file_columns(path: Path, source: CorpusSource) -> list[str] | None:
    """The column names of a file (for JSON lines: the keys of its first object; None if it has none)."""
    kind = file_format(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except Exception as exc:
            raise CorpusInputError(f"{str(path)!r} is not a readable Parquet file ({exc})") from exc
    if kind == "jsonl":
        with _open_bytes(path) as handle:
            for raw in handle:
                try:
                    value = json.loads(raw.decode("utf-8-sig"))
                except (UnicodeDecodeError, ValueError):
                    continue  # a bad line is that row's error, not the file's
                if isinstance(value, list):
                    raise CorpusInputError(
                        f"{str(path)!r} holds a JSON array; the corpus reader takes JSON lines (one object per line)"
                    )
                if isinstance(value, dict):
                    return list(value)
        return None
    if _quoting(source, kind) == "none":
        with _open_bytes(path) as handle:
            line = handle.readline()
        first = (
            _split_line(line, kind).decode("utf-8-sig", "replace").split(_delimiter(kind)) if line else None
        )
    else:
        with _open_text(path) as handle:
            first = next(_csv_reader(handle, kind), None)
    if first is None:
        return None
    return list(first) if source.header else [str(i) for i in range(len(first))]


def _jsonl_records(path: Path, start: int, want: RowSelection, columns: Columns) -> Iterator[Record | None]:
    with _open_bytes(path) as handle:
        for n, raw in enumerate(handle):
            row = start + n
            if row not in want:
                yield None
                continue
            yield _jsonl_record(raw, row, f"{path.name} line {n + 1}", columns, first=n == 0)


def _jsonl_record(raw: bytes, row: int, where: str, columns: Columns, first: bool) -> Record:
    try:
        line = raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as exc:
        return Record(
            row, None, None, f"ReadError: {where} is not valid UTF-8 ({exc.reason} at byte {exc.start})"
        )
    if not line.strip():
        return Record(row, None, None, f"ReadError: {where} is blank")
    try:
        value = json.loads(line)
    except ValueError as exc:
        return Record(row, None, None, f"ReadError: {where} is not valid JSON ({exc})")
    if not isinstance(value, dict):
        return Record(row, None, None, f"ReadError: {where} is a JSON {type(value).__name__}, not an object")
    key = _id_of(value.get(columns.id)) if columns.id else row
    if columns.text not in value:
        fields = ", ".join(map(repr, value)) or "none"
        return Record(row, key, None, f"ReadError: {where} has no field {columns.text!r} (fields: {fields})")
    return Record(row, key, value[columns.text])


@contextmanager
def _open_text(path: Path) -> Iterator[IO[str]]:
    with _open_bytes(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        try:
            yield text
        finally:
            text.detach()


def _quoting(source: CorpusSource, kind: str) -> str:
    return source.quoting or ("csv" if kind == "csv" else "none")


def _delimiter(kind: str) -> str:
    return "," if kind == "csv" else "\t"


def _split_line(raw: bytes, kind: str) -> bytes:
    """A line without its ``\\n`` or ``\\r\\n`` (a ``\\r`` inside the line stays: it is part of the field)."""
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    return raw[:-1] if raw.endswith(b"\r") else raw


def _csv_reader(handle: IO[str], kind: str) -> Iterator[list[str]]:
    # Texts longer than csv's default field limit (128 KiB) are the pipeline's to refuse (max_chars), by row.
    csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, 2**31 - 1)))
    return csv.reader(handle, delimiter=_delimiter(kind))


def _delimited_records(
    path: Path, start: int, want: RowSelection, source: CorpusSource, kind: str
) -> Iterator[Record | None]:
    if _quoting(source, kind) == "none":
        yield from _plain_records(path, start, want, source, kind)
    else:
        yield from _quoted_records(path, start, want, source, kind)


def _plain_records(
    path: Path, start: int, want: RowSelection, source: CorpusSource, kind: str
) -> Iterator[Record | None]:
    """Unquoted CSV/TSV: one line (split on ``\\n`` only) is one row; fields are decoded one by one.

    Not the csv module: it also ends a record at a bare ``\\r``, and 133 NSMC reviews hold one, which would
    split each of them into two broken rows.
    """
    delimiter = _delimiter(kind).encode()
    with _open_bytes(path) as handle:
        lines = iter(handle)
        names = None
        if source.header:
            first = next(lines, None)
            if first is None:
                return
            names = _split_line(first, kind).decode("utf-8-sig", "replace").split(_delimiter(kind))
        index: dict[str, int] | None = None
        for n, raw in enumerate(lines):
            row = start + n
            if row not in want:
                yield None
                continue
            fields = _split_line(raw, kind).split(delimiter)
            if index is None:
                names = names or [str(i) for i in range(len(fields))]
                source.columns.check(names, str(path))
                index = {name: i for i, name in enumerate(names)}
            where = f"{path.name} line {n + (2 if source.header else 1)}"
            yield _plain_record(fields, raw, row, where, index, len(names), source.columns)


def _plain_record(
    fields: list[bytes], raw: bytes, row: int, where: str, index: dict[str, int], width: int, columns: Columns
) -> Record:
    if not raw.strip():
        return Record(row, None, None, f"ReadError: {where} is blank")
    text_at, id_at = index[columns.text], index[columns.id] if columns.id else None
    if len(fields) <= max(text_at, id_at or 0):
        return Record(row, None, None, f"ReadError: {where} has {len(fields)} fields, the header has {width}")
    values = {}
    for name, at in (("text", text_at), ("id", id_at)):
        if at is None:
            continue
        try:
            values[name] = fields[at].decode("utf-8")
        except UnicodeDecodeError as exc:
            byte = fields[at][exc.start]
            return Record(
                row,
                None,
                None,
                f"ReadError: {where}: the {name} field is not valid UTF-8 (byte 0x{byte:02x})",
            )
    return Record(row, values["id"] if id_at is not None else row, values["text"])


def _quoted_records(
    path: Path, start: int, want: RowSelection, source: CorpusSource, kind: str
) -> Iterator[Record | None]:
    """Quoted CSV (the csv module: a quoted field may hold delimiters and line breaks)."""
    columns = source.columns
    with _open_text(path) as handle:
        reader = _csv_reader(handle, kind)
        names = None
        if source.header:
            names = next(reader, None)
            if names is None:
                return
        index: dict[str, int] | None = None
        n = -1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # e.g. an over-long field: this record is the error, reading goes on
                n += 1
                yield (
                    Record(start + n, None, None, f"ReadError: {path.name} line {reader.line_num}: {exc}")
                    if start + n in want
                    else None
                )
                continue
            n += 1
            row = start + n
            if row not in want:
                yield None
                continue
            if index is None:
                names = names or [str(i) for i in range(len(fields))]
                columns.check(names, str(path))
                index = {name: i for i, name in enumerate(names)}
            where = f"{path.name} line {reader.line_num}"
            yield _quoted_record(fields, row, where, index, len(names), columns)


def _quoted_record(
    fields: list[str], row: int, where: str, index: dict[str, int], width: int, columns: Columns
) -> Record:
    if not fields:
        return Record(row, None, None, f"ReadError: {where} is blank")
    text_at, id_at = index[columns.text], index[columns.id] if columns.id else None
    if len(fields) <= max(text_at, id_at or 0):
        return Record(row, None, None, f"ReadError: {where} has {len(fields)} fields, the header has {width}")
    text = fields[text_at]
    key: Any = fields[id_at] if id_at is not None else row
    for name, value in (("text", text), ("id", key if id_at is not None else "")):
        bad = _ESCAPED_BYTES.search(value)
        if bad:
            byte = ord(bad.group()) - 0xDC00
            return Record(
                row,
                None,
                None,
                f"ReadError: {where}: the {name} field is not valid UTF-8 (byte 0x{byte:02x})",
            )
    return Record(row, key, text)


def _parquet_records(
    path: Path, start: int, want: RowSelection, columns: Columns, limit: int | None
) -> Iterator[Record | None]:
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(path)
    columns.check(handle.schema_arrow.names, str(path))
    wanted = [columns.text] + ([columns.id] if columns.id and columns.id != columns.text else [])
    row = start
    for group in range(handle.num_row_groups):
        size = handle.metadata.row_group(group).num_rows
        if not want.overlaps(row, row + size) or (limit is not None and row >= limit):
            yield from (None for _ in range(size))  # counted, never read
            row += size
            continue
        for batch in handle.iter_batches(batch_size=_PARQUET_BATCH, row_groups=[group], columns=wanted):
            texts = batch.column(columns.text).to_pylist()
            keys = batch.column(columns.id).to_pylist() if columns.id else None
            for i, text in enumerate(texts):
                if row in want:
                    yield Record(row, _id_of(keys[i]) if keys is not None else row, text)
                else:
                    yield None
                row += 1


def _dataset_records(source: CorpusSource, want: RowSelection) -> Iterator[Record | None]:
    columns = source.columns
    for row, example in enumerate(source._dataset_rows()):
        if row not in want:
            yield None
            continue
        key = _id_of(example.get(columns.id)) if columns.id else row
        yield Record(row, key, example.get(columns.text))


def _id_of(value: Any) -> str | None:
    """Ids are stored as text (a column of mixed or changing types would not make one Parquet column)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, default=str)
