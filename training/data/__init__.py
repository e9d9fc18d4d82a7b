"""Data layer: loaders for every data set onto one unified example schema, named splits, mixtures,
target checks and the data report (``python -m redheart.training.data``).

One module per data set (``goemotions``, ``kote``, ``ethics``, ``kosbi_square``, ``nsmc``, ``timetravel``, and
``distilled_acceptability`` for a teacher's targets) gives its source spec and reader; ``loader`` turns a reader
into a Dataset; ``catalog`` is the set table that builds the named train/eval splits; ``mixture`` interleaves them;
``report`` checks and reports them.

Importing this package is cheap: the names below are loaded on first use (``schema`` never imports
``datasets``).

Typical use (as in training/prepare.py)::

    from .data import DataConfig, build_splits, check_heads, format_report

    splits = build_splits(DataConfig.from_dict(cfg["data"]))   # RH_DATA_DIR or data_dir
    print(format_report(splits.report()))
    check_heads(splits.train, heads=["emotion", "sentiment", "acceptability", "utility", "regret"])
    train_ds = splits.mixture(split="train")                     # weighted, seeded interleave
"""

from __future__ import annotations

from ...lazy_exports import lazy_getattr

_EXPORTS = {
    # schema (import-light)
    "GOEMOTIONS_LABELS": "schema",
    "KOTE_LABELS": "schema",
    "EKMAN_GROUPS": "schema",
    "SENTIMENT_GROUPS": "schema",
    "CORE_EMOTIONS": "schema",
    "FRAMEWORKS": "schema",
    "FIELDS": "schema",
    "TASK_FIELDS": "schema",
    "get_features": "schema",
    # common
    "DataNotFoundError": "common",
    "EmptySplitError": "common",
    "MalformedDataError": "common",
    "IssueLog": "common",
    "resolve_source": "common",
    # loaders: one generic load(reader, split, options) and one load_* per set
    "LoadOptions": "loader",
    "SetReader": "loader",
    "load": "loader",
    "load_goemotions": "goemotions",
    "load_kote": "kote",
    "load_ethics": "ethics",
    "load_ethics_util": "ethics",
    "load_kosbi": "kosbi_square",
    "load_square": "kosbi_square",
    "load_nsmc": "nsmc",
    "load_nsmc_splits": "nsmc",
    "load_timetravel": "timetravel",
    # catalog (the set table) / mixture / report
    "CATALOG": "catalog",
    "DataConfig": "catalog",
    "DataSplits": "catalog",
    "SETS": "catalog",
    "SET_TASKS": "catalog",
    "SET_LANGUAGES": "catalog",
    "DEFAULT_WEIGHTS": "catalog",
    "build_splits": "catalog",
    "build_set": "catalog",
    "mix_datasets": "mixture",
    "composition": "mixture",
    "TargetVarianceError": "report",
    "HEAD_FIELDS": "report",
    "check_target_variance": "report",
    "check_heads": "report",
    "target_stats": "report",
    "data_report": "report",
    "format_report": "report",
    # targets of the neural SURD head (exact clause-subset shares)
    "surd_labels": "surd_targets",
    "surd_shares": "surd_targets",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
