"""One pipeline result -> one flat output row, and the Parquet schema those rows share.

Why flat: a corpus is read back with pandas, Polars, DuckDB or ``datasets``, where one column per number is
what a query or a plot wants; nested JSON would have to be unpacked by every reader. The rule is one column per
number of the pipeline's JSON result (``pipelines/analysis.schema.json``), named by its path without
``analysis.`` -- ``emotion.labels.joy`` is ``result["analysis"]["emotion"]["labels"]["joy"]``,
``integrated.confidence`` is ``result["integrated"]["confidence"]`` -- so the JSON documentation names every
column. Columns, in order:

==================================  ====================  =====================================================
column                              type                  what
==================================  ====================  =====================================================
``row``                             int64                 the row's position in the input (from 0)
``id``                              string / int64        the ``--id-column`` value as text, or the row number
``text``                            string                the text as read (null when it is not a string)
``error``                           string                why the row has no analysis (null when it has one)
``language``                        string                ``metadata.language.detected`` (ko, en, mixed, other)
``chunks``, ``truncated``           int32, bool           ``metadata.chunks.count`` / ``.truncated``
``emotion.predicted``               list<string>          decided GoEmotions labels (the model's thresholds)
``emotion.kote_predicted``          list<string>          decided KOTE labels
``emotion.sentiment``               float32               valence in [-1, 1]
``bentham.utility``, ``_std``       float32               utility and its predicted spread
``bentham.utility_percentile``      float32               share of ETHICS scenarios with lower utility
``regret.potential``                float32               anticipated regret in [0, 1]
``integrated.*``                    float32               overall_sentiment, ethical_score, regret_potential,
                                                          causal_clarity, confidence
``bentham.acceptability.<f>``       float32               per ETHICS framework (the model's order)
``surd.shares.<s>``                 float32               redundant, unique, synergistic, leak
``emotion.core.<g>``                float32               7 Ekman groups + neutral
``emotion.cultural.<c>``            float32               jeong, han, chemyeon
``emotion.labels.<l>``              float32               28 GoEmotions probabilities (the model's order)
``emotion.kote.<l>``                float32               44 KOTE probabilities
``bentham.elements.<e>``, weights   float32               10 Bentham elements and their weights (latent)
==================================  ====================  =====================================================

A row with an ``error`` has nulls in every analysis column; a number the model does not produce (no decision
thresholds, no utility reference, ``use_auxiliary`` off) is null in every row. Left out, because they follow
from the columns above: ``emotion.top``/``kote_top`` (the highest scores), ``regret.scenarios`` (utility plus or
minus its spread; their regret needs alternatives, which a corpus row does not have), ``regret.utility`` and
``model_potential`` (copies). Floats are float32, the precision the model computes in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ..configuration_redheart.labels import CORE_LABELS, CULTURAL_LABELS, SURD_SHARES

#: Version of this flat layout, recorded with every shard: a rerun under another layout is refused.
FLAT_VERSION = 1
#: Columns every row has before the analysis.
ROW_COLUMNS = ("row", "id", "text", "error")
#: Single numbers: column -> path in the result.
SCALARS = (
    ("emotion.sentiment", ("analysis", "emotion", "sentiment")),
    ("bentham.utility", ("analysis", "bentham", "utility")),
    ("bentham.utility_std", ("analysis", "bentham", "utility_std")),
    ("bentham.utility_percentile", ("analysis", "bentham", "utility_percentile")),
    ("regret.potential", ("analysis", "regret", "potential")),
    ("integrated.overall_sentiment", ("integrated", "overall_sentiment")),
    ("integrated.ethical_score", ("integrated", "ethical_score")),
    ("integrated.regret_potential", ("integrated", "regret_potential")),
    ("integrated.causal_clarity", ("integrated", "causal_clarity")),
    ("integrated.confidence", ("integrated", "confidence")),
)


@dataclass(frozen=True)
class Column:
    """One output column: its name, where its value sits in the pipeline's result, its Arrow type."""

    name: str
    path: tuple[str, ...]
    type: pa.DataType


def label_groups(config: Any) -> dict[str, tuple[str, ...]]:
    """Per-label groups of the model (column prefix -> labels, in the model's order), for columns and manifest."""
    return {
        "bentham.acceptability": tuple(config.acceptability_frameworks),
        "surd.shares": tuple(SURD_SHARES),
        "emotion.core": tuple(CORE_LABELS),
        "emotion.cultural": tuple(CULTURAL_LABELS),
        "emotion.labels": tuple(config.emotion_labels),
        "emotion.kote": tuple(config.kote_labels),
        "bentham.elements": tuple(config.bentham_elements),
        "bentham.weights": tuple(config.bentham_elements),
    }


def analysis_columns(config: Any) -> list[Column]:
    """The analysis columns for a model config (see the module doc), in output order."""
    strings = pa.list_(pa.string())
    columns = [
        Column("language", ("metadata", "language", "detected"), pa.string()),
        Column("chunks", ("metadata", "chunks", "count"), pa.int32()),
        Column("truncated", ("metadata", "chunks", "truncated"), pa.bool_()),
        Column("emotion.predicted", ("analysis", "emotion", "predicted"), strings),
        Column("emotion.kote_predicted", ("analysis", "emotion", "kote_predicted"), strings),
    ]
    columns += [Column(name, path, pa.float32()) for name, path in SCALARS]
    for prefix, labels in label_groups(config).items():
        path = ("analysis", *prefix.split("."))
        columns += [Column(f"{prefix}.{label}", (*path, label), pa.float32()) for label in labels]
    return columns


def output_schema(config: Any, id_is_text: bool) -> pa.Schema:
    """The Parquet schema of every shard: the row columns, then :func:`analysis_columns`."""
    fields = [
        pa.field("row", pa.int64(), nullable=False),
        pa.field("id", pa.string() if id_is_text else pa.int64()),
        pa.field("text", pa.string()),
        pa.field("error", pa.string()),
    ]
    fields += [pa.field(column.name, column.type) for column in analysis_columns(config)]
    return pa.schema(fields)


def _lookup(result: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = result
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def flatten(result: Mapping[str, Any], columns: list[Column]) -> dict[str, Any]:
    """The analysis columns of one successful result (a value the result lacks is None)."""
    return {column.name: _lookup(result, column.path) for column in columns}


def error_message(entry: Mapping[str, Any]) -> str:
    """``"<type>: <reason>"`` from the pipeline's ``{"error": {...}}`` entry, without its batch position
    (``input [3]: ...`` names a place in one pipeline call, which means nothing in the corpus)."""
    error = entry["error"]
    message = str(error.get("message", ""))
    index = error.get("index")
    prefix = f"input [{index}]: "
    if index is not None and message.startswith(prefix):
        message = message[len(prefix) :]
    return f"{error.get('type', 'Error')}: {message}"
