"""The task vocabulary: one home for the task names, the ignore index and the language ids.

The model, the pipeline, the data loaders and training all import these names from here; no module keeps a
second copy. Label spaces (emotion labels, frameworks, SURD shares) live beside it in `labels.py`.
Import-light on purpose (no torch).
"""

from __future__ import annotations

#: Label value that marks "no label" (a whole row, or one element of acceptability), as in transformers.
IGNORE_INDEX = -100

#: The model's four task streams, in order: one head and one analyzer each (heads.py, analyzers.py), and the
#: order of the Kalman fusion and the utility module's per-task parameters.
MODEL_TASKS: tuple[str, ...] = ("emotion", "bentham", "regret", "surd")

#: Supervised targets: keys of `RedHeartConfig.loss_weights`, `trained_tasks` and the output's `task_losses`
#: (`confidence` is the calibration loss, supervised by the other targets' correctness).
TASK_LOSSES: tuple[str, ...] = (
    "emotion",
    "kote",
    "sentiment",
    "utility",
    "acceptability",
    "regret",
    "surd",
    "confidence",
)

#: Target -> the label keyword of `RedHeartModel.forward` that carries it.
TASK_LABELS: dict[str, str] = {
    "emotion": "emotion_labels",
    "kote": "kote_labels",
    "sentiment": "sentiment_labels",
    "acceptability": "acceptability_labels",
    "utility": "utility_pairs",
    "regret": "regret_labels",
    "surd": "surd_labels",
}

#: Targets that are multi-label emotion sets (scored by macro-F1 over per-label thresholds).
MULTILABEL_TASKS: tuple[str, ...] = ("emotion", "kote")

#: Model language ids (`RedHeartModel.forward(language_ids=...)`): 0 English, 1 Korean, 2 other/mixed.
LANGUAGE_IDS: dict[str, int] = {"en": 0, "ko": 1}
OTHER_LANGUAGE_ID = 2
