"""SURD explanations of one text (``explain=True``): which clauses drive the judgement, and how.

* :mod:`.clauses` -- cutting a text into clauses, capping their number, and the clause subsets;
* :mod:`.explanation` -- the judgement of every subset and its exact SURD decomposition.

The pipeline imports :mod:`.clauses` always (every result reports its clause count, which selects the SURD
shares) and :mod:`.explanation` only when an explanation is asked for, so a saved model's remote code carries the
clause splitter but not the decomposition; the training targets built from explanations live in
``redheart.training.data.surd_targets``. docs/DESIGN.md "SURD, exactly".
"""

from .clauses import (
    DEFAULT_MAX_CLAUSES,
    EN_CONJUNCTIONS,
    KO_CONJUNCTIONS,
    KO_ENDINGS,
    ClausePlan,
    clause_count,
    plan_clauses,
    split_clauses,
    subset_masks,
    subset_text,
)
from .explanation import (
    DEFAULT_BINS,
    DEFAULT_JUDGEMENT,
    JUDGEMENTS,
    explain_from_values,
    explain_text,
    explain_texts,
)

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_JUDGEMENT",
    "DEFAULT_MAX_CLAUSES",
    "EN_CONJUNCTIONS",
    "JUDGEMENTS",
    "KO_CONJUNCTIONS",
    "KO_ENDINGS",
    "ClausePlan",
    "clause_count",
    "explain_from_values",
    "explain_text",
    "explain_texts",
    "plan_clauses",
    "split_clauses",
    "subset_masks",
    "subset_text",
]
