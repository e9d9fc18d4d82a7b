"""One loader for every data set: a :class:`SetReader` per set and the :class:`LoadOptions` all of them take.

Each set module (``goemotions.py``, ``kote.py``, ...) says only what differs: where the set lives (its
:class:`~.common.SourceSpec`) and how one original split becomes unified rows (its reader). Resolving the
source, counting malformed rows, labelling the split and drawing the seeded sample are done here, once, by
:func:`load`; the catalog (``catalog.py``) uses the same readers for its named train/eval sides.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from .common import IssueLog, ResolvedSource, Rows, SourceSpec, finish_rows, resolve_source

#: ``(original split, resolved source, issue log) -> unified rows`` of one data set.
Reader = Callable[[str, ResolvedSource, IssueLog], Rows]


@dataclass(frozen=True)
class LoadOptions:
    """Where an original split is read from and how its rows are labelled and sampled.

    ``data_dir`` / ``source``: see :func:`~.common.resolve_source`; ``issues`` collects malformed rows (a
    fresh log when None); ``max_samples`` rows are drawn with ``seed``; ``split_label`` replaces the
    ``split`` field (default: the original split's name).
    """

    data_dir: str | os.PathLike | None = None
    source: str | os.PathLike | None = None
    issues: IssueLog | None = None
    max_samples: int | None = None
    seed: int = 0
    split_label: str | None = None


@dataclass(frozen=True)
class SetReader:
    """One data set as the loader sees it: ``name`` (in messages), its source ``spec`` and its ``read``."""

    name: str
    spec: SourceSpec
    read: Reader


def load(reader: SetReader, split: str, options: LoadOptions | None = None):
    """Original ``split`` of ``reader``'s set as a unified-schema ``datasets.Dataset``."""
    opts = options if options is not None else LoadOptions()
    res = resolve_source(reader.spec, data_dir=opts.data_dir, source=opts.source)
    rows = reader.read(split, res, opts.issues if opts.issues is not None else IssueLog())
    return finish_rows(
        rows,
        split_label=opts.split_label or split,
        max_samples=opts.max_samples,
        seed=opts.seed,
        what=f"{reader.name}/{split}",
    )
