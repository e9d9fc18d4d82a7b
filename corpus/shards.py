"""The output folder: shard plan, atomic shard writes, the completeness check that makes reruns resume, manifest.

Why shards planned by row index: shard ``k`` holds input rows ``[k * S, (k + 1) * S)`` whatever the number of
processes, so one process or eight write the same files, and a rerun knows which rows each file must hold.
Shard ``k`` belongs to process ``k % N``.

Why ``.tmp`` then rename: a shard is written whole to ``part-XXXXX.parquet.tmp`` and renamed when complete
(``os.replace`` is atomic), so a ``part-XXXXX.parquet`` is never half-written by this code. A rerun redoes a
shard that is missing, only a ``.tmp`` (interrupted), or whose final file does not read back with pyarrow or
holds another number of rows (damaged later); it says so, naming the file. Every shard carries, in its Parquet
metadata (key ``redheart.corpus``), the run's *fingerprint* (input, columns, model and its config hash, analysis
options, shard size, flat layout) and its own counts: a rerun with another fingerprint is refused, since mixing
two models or option sets in one output would be silent corruption.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

PART_NAME = "part-{:05d}.parquet"
PART_PATTERN = re.compile(r"^part-(\d{5,})\.parquet(\.tmp)?$")
TMP_SUFFIX = ".tmp"
#: The leading underscore keeps it out of `pd.read_parquet(OUT)` / `pyarrow.dataset` (they skip `_` and `.` files).
MANIFEST_NAME = "_manifest.json"
#: Key of the shard's own metadata in the Parquet file's key-value metadata.
METADATA_KEY = b"redheart.corpus"
#: Rows per Parquet row group inside a shard.
ROW_GROUP_SIZE = 4096


class OptionsMismatchError(ValueError):
    """The output folder was written by a run with another model or other options."""


@dataclass(frozen=True)
class ShardPlan:
    """Shard ``k`` = rows ``[k * shard_size, (k + 1) * shard_size)``, written by process ``k % num_processes``.

    Used as the reader's row selection: a process reads (decodes) only the rows of its own shards.
    """

    shard_size: int
    process_index: int = 0
    num_processes: int = 1

    def __post_init__(self) -> None:
        if self.shard_size < 1:
            raise ValueError(f"shard size must be a positive number of rows, got {self.shard_size}")
        if not 0 <= self.process_index < self.num_processes:
            raise ValueError(f"process {self.process_index} of {self.num_processes}")

    def shard_of(self, row: int) -> int:
        return row // self.shard_size

    def owner(self, shard: int) -> int:
        return shard % self.num_processes

    def __contains__(self, row: int) -> bool:
        return self.owner(self.shard_of(row)) == self.process_index

    def overlaps(self, start: int, stop: int) -> bool:
        """Whether rows ``[start, stop)`` hold a row of this process's shards."""
        if stop <= start:
            return False
        first, last = self.shard_of(start), self.shard_of(stop - 1)
        return last - first + 1 >= self.num_processes or any(
            self.owner(k) == self.process_index for k in range(first, last + 1)
        )

    def count(self, total_rows: int) -> int:
        """Number of shards of a corpus of ``total_rows`` rows."""
        return -(-total_rows // self.shard_size)

    def rows(self, shard: int, total_rows: int) -> range:
        start = shard * self.shard_size
        return range(start, min(start + self.shard_size, total_rows))

    def own_rows(self, total_rows: int) -> int:
        """Rows this process writes in a corpus of ``total_rows`` rows."""
        return sum(
            len(self.rows(k, total_rows))
            for k in range(self.count(total_rows))
            if self.owner(k) == self.process_index
        )


def part_path(out: Path, shard: int) -> Path:
    return out / PART_NAME.format(shard)


def fingerprint_differences(
    recorded: Mapping[str, Any], current: Mapping[str, Any], prefix: str = ""
) -> list[str]:
    """Human-readable differences between two fingerprints (``model.name_or_path: 'a' there, 'b' now``)."""
    out = []
    for key in sorted(set(recorded) | set(current)):
        a, b = recorded.get(key), current.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += fingerprint_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} there, {b!r} now")
    return out


def _refuse(where: Path, recorded: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    differences = fingerprint_differences(recorded, current)
    if differences:
        raise OptionsMismatchError(
            f"{where} was written by a run with other settings ({'; '.join(differences)}). Rerun with the same "
            "model and options to resume, use another output folder, or pass --overwrite to start again"
        )


def shard_metadata(path: Path) -> dict[str, Any]:
    """The shard's own metadata (fingerprint and counts), read from its Parquet footer; raises on damage."""
    metadata = pq.read_metadata(path).metadata or {}
    if METADATA_KEY not in metadata:
        raise ValueError(f"no {METADATA_KEY.decode()} metadata (not written by redheart analyze-corpus)")
    return json.loads(metadata[METADATA_KEY])


def check_output(out: Path, fingerprint: Mapping[str, Any]) -> None:
    """Refuse an output folder written with another fingerprint (manifest or any readable shard)."""
    manifest = out / MANIFEST_NAME
    if manifest.is_file():
        try:
            recorded = json.loads(manifest.read_text(encoding="utf-8")).get("fingerprint")
        except ValueError:
            recorded = None  # a damaged manifest is rewritten at the end
        if isinstance(recorded, Mapping):
            _refuse(manifest, recorded, fingerprint)
    for path in sorted(out.glob("part-*.parquet")):
        try:
            recorded = shard_metadata(path)["fingerprint"]
        except Exception:
            continue  # damaged: check_shard says so and redoes it
        _refuse(path, recorded, fingerprint)


def check_shard(
    out: Path, shard: int, first_row: int, rows: int, fingerprint: Mapping[str, Any]
) -> tuple[bool, str | None]:
    """Whether shard ``shard`` is complete (its file reads back whole, ``rows`` rows from ``first_row``, same
    fingerprint), and a note for the log when an earlier write has to be redone."""
    path = part_path(out, shard)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    if not path.exists():
        if tmp.exists():
            return False, f"{tmp} is an interrupted write (no complete {path.name}): redoing shard {shard}"
        return False, None
    try:
        info = shard_metadata(path)
        table = pq.read_table(path)  # reads every page: a damaged file fails here, not in a user's query
    except Exception as exc:
        return False, f"{path} is corrupt ({type(exc).__name__}: {exc}): redoing shard {shard}"
    _refuse(path, info.get("fingerprint", {}), fingerprint)
    if table.num_rows != rows or info.get("rows") != rows or info.get("first_row") != first_row:
        return False, (
            f"{path} holds {table.num_rows} rows from row {info.get('first_row')}, expected {rows} from row "
            f"{first_row}: redoing shard {shard}"
        )
    return True, None


def write_shard(out: Path, shard: int, table: pa.Table, info: Mapping[str, Any]) -> Path:
    """Write ``table`` as shard ``shard``: to ``.tmp``, flushed to disk, then renamed (atomic)."""
    path = part_path(out, shard)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    metadata = dict(table.schema.metadata or {})
    metadata[METADATA_KEY] = json.dumps(info, ensure_ascii=False, sort_keys=True).encode("utf-8")
    pq.write_table(
        table.replace_schema_metadata(metadata), tmp, compression="zstd", row_group_size=ROW_GROUP_SIZE
    )
    _fsync(tmp)
    os.replace(tmp, path)
    _fsync(out)
    return path


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk; best effort where the platform cannot."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def clear_output(out: Path) -> list[Path]:
    """Remove what an earlier run wrote (shards, interrupted writes, manifest) for ``--overwrite``."""
    removed = []
    for path in sorted(out.iterdir()):
        if PART_PATTERN.match(path.name) or path.name in (MANIFEST_NAME, MANIFEST_NAME + TMP_SUFFIX):
            path.unlink()
            removed.append(path)
    return removed


def stale_parts(out: Path, shards: int) -> list[Path]:
    """Shard files numbered beyond this corpus's ``shards`` (left by an earlier run over more rows)."""
    stale = []
    for path in sorted(out.iterdir()):
        match = PART_PATTERN.match(path.name)
        if match and int(match.group(1)) >= shards:
            stale.append(path)
    return stale


def write_manifest(out: Path, manifest: Mapping[str, Any]) -> Path:
    """``_manifest.json``, replaced atomically like the shards."""
    path = out / MANIFEST_NAME
    tmp = path.with_name(path.name + TMP_SUFFIX)
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    _fsync(tmp)
    os.replace(tmp, path)
    return path


def shard_entries(out: Path, shards: int) -> list[dict[str, Any]]:
    """Per-shard counts for the manifest, from each shard's footer."""
    entries = []
    for k in range(shards):
        path = part_path(out, k)
        info = shard_metadata(path)
        entries.append(
            {
                "file": path.name,
                "first_row": info["first_row"],
                "rows": info["rows"],
                "errors": info["errors"],
                "seconds": info["seconds"],
                "process": info["process"],
                "written": info["written"],
            }
        )
    return entries
