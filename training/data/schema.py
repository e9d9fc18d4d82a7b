"""The unified example schema and the label-name constants shared by data, model and pipeline.

This module is deliberately import-light: it imports only the standard library at module level, so the
model and the pipeline can use the label constants without pulling in ``datasets`` or ``pyarrow``.
:func:`get_features` and :func:`arrow_schema` import them lazily.

Every data set is mapped onto ONE row schema (:data:`FIELDS`). A field a data set does not label is
``None`` (Arrow null), never 0, so that training can mask its loss per task.

=========================  ==================================================================================
field                      meaning
=========================  ==================================================================================
``id``                     row id, unique within its ``source`` (e.g. the GoEmotions comment id)
``group``                  unit of splitting: rows of one group are always on the same side of a split
                           (NSMC movie, KoSBi context, ETHICS minimal pair, GoEmotions EN/KO aligned row)
``text``                   the input text (never empty)
``language``               ``"en"`` or ``"ko"``
``source``                 catalog name of the data set, e.g. ``"goemotions_en"``
``split``                  ``"train"``/``"eval"`` in the catalog's named splits; the file's own split name
                           (``"train"``, ``"dev"``, ``"test"``, ``"val"``, ...) when a loader is called directly
``emotion``                28-wide multi-hot over :data:`GOEMOTIONS_LABELS` (GoEmotions EN + KO)
``kote``                   44-wide multi-hot over :data:`KOTE_LABELS` (KOTE)
``sentiment``              valence in [-1, 1]: GoEmotions via :func:`goemotions_sentiment`, NSMC via
                           :func:`nsmc_sentiment`
``acceptability_framework`` one of :data:`FRAMEWORKS` (ETHICS, KoSBi -> ``"commonsense"``)
``acceptable``             1.0 = morally acceptable under that framework, 0.0 = not
``utility_worse``          ETHICS utilitarianism: ``text`` is the MORE pleasant scenario, this the less pleasant
``alternatives``           counterfactual alternatives to ``text`` (ETHICS util regret rows, TimeTravel)
``regret``                 decision-theoretic regret in [0, 1] of choosing ``text`` over ``alternatives``
``surd``                   4 SURD shares (always None from these data sets; exact SURD targets come later)
``sensitive_question``     SQuARe ``sensitive?`` (1 = a question whose answers can cause harm). Kept OUT of
                           ``acceptable``: a sensitive question is not an unacceptable act.
=========================  ==================================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# --------------------------------------------------------------------------------------------- labels
# The label spaces and languages live in one place, the model's configuration package (stdlib-only modules).
from ...configuration_redheart.labels import ACCEPTABILITY_FRAMEWORKS as FRAMEWORKS
from ...configuration_redheart.labels import EKMAN_GROUPS, GOEMOTIONS_LABELS, KOTE_LABELS, SENTIMENT_GROUPS
from ...configuration_redheart.labels import SURD_SHARES as SURD_COMPONENTS
from ...configuration_redheart.tasks import LANGUAGE_IDS

NUM_EMOTIONS = len(GOEMOTIONS_LABELS)  # 28
NUM_KOTE = len(KOTE_LABELS)  # 44

CORE_EMOTIONS: tuple[str, ...] = tuple(EKMAN_GROUPS)

#: Label ids (into :data:`GOEMOTIONS_LABELS`) per Ekman core group / sentiment group.
EKMAN_GROUP_IDS: dict[str, tuple[int, ...]] = {
    g: tuple(GOEMOTIONS_LABELS.index(n) for n in names) for g, names in EKMAN_GROUPS.items()
}
SENTIMENT_GROUP_IDS: dict[str, tuple[int, ...]] = {
    g: tuple(GOEMOTIONS_LABELS.index(n) for n in names) for g, names in SENTIMENT_GROUPS.items()
}

LANGUAGES: tuple[str, ...] = tuple(LANGUAGE_IDS)

# --------------------------------------------------------------------------------------------- fields

#: (name, kind, fixed length or None). Kinds: string, int8_list, float32, string_list, float32_list.
FIELD_SPECS: tuple[tuple[str, str, int | None], ...] = (
    ("id", "string", None),
    ("group", "string", None),
    ("text", "string", None),
    ("language", "string", None),
    ("source", "string", None),
    ("split", "string", None),
    ("emotion", "int8_list", NUM_EMOTIONS),
    ("kote", "int8_list", NUM_KOTE),
    ("sentiment", "float32", None),
    ("acceptability_framework", "string", None),
    ("acceptable", "float32", None),
    ("utility_worse", "string", None),
    ("alternatives", "string_list", None),
    ("regret", "float32", None),
    ("surd", "float32_list", len(SURD_COMPONENTS)),
    ("sensitive_question", "float32", None),
)
FIELDS: tuple[str, ...] = tuple(name for name, _, _ in FIELD_SPECS)
#: Fields every row must carry (non-null).
REQUIRED_FIELDS: tuple[str, ...] = ("id", "group", "text", "language", "source", "split")

#: Training task -> the schema field that holds its target. ``utility`` is pairwise (``text`` preferred over
#: ``utility_worse``); ``acceptability`` is per framework (``acceptability_framework``).
TASK_FIELDS: dict[str, str] = {
    "emotion": "emotion",
    "kote": "kote",
    "sentiment": "sentiment",
    "acceptability": "acceptable",
    "utility": "utility_worse",
    "regret": "regret",
    "surd": "surd",
    "sensitive_question": "sensitive_question",
}


def get_features():
    """The ``datasets.Features`` of the unified schema (imports ``datasets`` lazily)."""
    from datasets import Features, List, Value

    out = {}
    for name, kind, length in FIELD_SPECS:
        if kind == "string":
            out[name] = Value("string")
        elif kind == "float32":
            out[name] = Value("float32")
        elif kind == "int8_list":
            out[name] = List(Value("int8"), length=length)
        elif kind == "float32_list":
            out[name] = List(Value("float32"), length=length if length is not None else -1)
        elif kind == "string_list":
            out[name] = List(Value("string"))
        else:  # pragma: no cover - guarded by FIELD_SPECS
            raise ValueError(f"unknown field kind {kind!r}")
    return Features(out)


def arrow_schema():
    """The ``pyarrow.Schema`` of the unified schema (imports ``datasets`` lazily)."""
    return get_features().arrow_schema


# --------------------------------------------------------------------------------------------- targets


def multi_hot(label_ids: Iterable[int], width: int) -> list[int]:
    """``width``-wide 0/1 list with a 1 at every id in ``label_ids`` (ids must be in ``range(width)``)."""
    out = [0] * width
    for i in label_ids:
        if not 0 <= i < width:
            raise ValueError(f"label id {i} out of range 0..{width - 1}")
        out[i] = 1
    return out


_POS = frozenset(SENTIMENT_GROUP_IDS["positive"])
_NEG = frozenset(SENTIMENT_GROUP_IDS["negative"])


def goemotions_sentiment(label_ids: Sequence[int]) -> float:
    """Valence of a GoEmotions example from the official sentiment grouping of its labels.

    ``(n_pos - n_neg) / (n_pos + n_neg)`` over the distinct labels, where positive/negative are
    :data:`SENTIMENT_GROUPS`; ``0.0`` when the example has only neutral and/or ambiguous labels
    (realization, surprise, curiosity, confusion: their valence is undetermined, 0 is the midpoint).
    Result in [-1, 1]: all-positive -> 1, all-negative -> -1, mixed -> in between.
    """
    ids = set(label_ids)
    n_pos = len(ids & _POS)
    n_neg = len(ids & _NEG)
    if n_pos + n_neg == 0:
        return 0.0
    return (n_pos - n_neg) / (n_pos + n_neg)


def nsmc_sentiment(rating: int) -> float:
    """Valence of an NSMC star rating 1..10: ``(rating - 5.5) / 4.5`` (1 -> -1, 10 -> 1)."""
    if not 1 <= rating <= 10:
        raise ValueError(f"NSMC rating {rating} out of range 1..10")
    return (rating - 5.5) / 4.5


def acceptable_from_ethics(framework: str, label: int) -> float:
    """ETHICS label -> acceptability: commonsense label 1 = wrong -> 0.0; justice/deontology/virtue 1 -> 1.0."""
    if label not in (0, 1):
        raise ValueError(f"ETHICS label {label!r} is not 0/1")
    if framework == "commonsense":
        return float(1 - label)
    if framework in FRAMEWORKS:  # justice, deontology, virtue
        return float(label)
    raise ValueError(f"unknown framework {framework!r}; expected one of {FRAMEWORKS}")


def pair_regret(chosen_rank: int, best_alternative_rank: int) -> float:
    """Decision-theoretic regret ``max(0, u(best alternative) - u(chosen))`` with rank utilities (0 or 1)."""
    return float(max(0, best_alternative_rank - chosen_rank))
