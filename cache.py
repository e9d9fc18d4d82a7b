"""Where Red Heart keeps what it builds once (converted encoders, feature caches, quick local models)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$RH_CACHE_DIR/<parts>`` when the variable is set, else ``~/.cache/redheart/<parts>``."""
    root = os.environ.get("RH_CACHE_DIR")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "redheart"
    return base.joinpath(*parts)
