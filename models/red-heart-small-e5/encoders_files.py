"""File checks shared by the converters and the adapter loader: content checksums and completion markers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_CHUNK = 1 << 22


def sha256_files(paths: Iterable[Path]) -> str:
    """SHA-256 over the contents of ``paths``, in the given order (names do not count)."""
    digest = hashlib.sha256()
    for path in paths:
        with Path(path).open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def read_marker(folder: Path, name: str, marker_format: int, outputs: Iterable[str]) -> dict[str, Any] | None:
    """The completion marker ``folder/name`` of a finished conversion, or None when it is missing, unreadable,
    of another ``marker_format``, or when one of the ``outputs`` files is missing."""
    try:
        info = json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("marker_format") != marker_format:
        return None
    return info if all((folder / output).is_file() for output in outputs) else None
