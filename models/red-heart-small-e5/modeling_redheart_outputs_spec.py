"""What each task family predicts: the named raw outputs (logit space) shared by heads, analyzers and fusion."""

from __future__ import annotations

import torch
from torch import nn


def task_output_dims(config) -> dict[str, dict[str, int]]:
    """Raw outputs per task family; heads and analyzers both predict exactly these, so they can be fused."""
    return {
        "emotion": {
            "emotion_logits": len(config.emotion_labels),
            "kote_logits": len(config.kote_labels),
            "sentiment": 1,
        },
        "bentham": {
            "element_logits": len(config.bentham_elements),
            "weight_logits": len(config.bentham_elements),
            "acceptability_logits": len(config.acceptability_frameworks),
        },
        "regret": {"regret_logit": 1, "utility_log_std": 1},
        "surd": {"surd_logits": 4},
    }


class OutputLayer(nn.Module):
    """One linear map from a task vector to all of a task's named raw outputs."""

    def __init__(self, hidden_size: int, dims: dict[str, int]) -> None:
        super().__init__()
        self.dims = dict(dims)
        self.proj = nn.Linear(hidden_size, sum(self.dims.values()))

    def forward(self, hidden: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(self.dims, self.proj(hidden).split(list(self.dims.values()), dim=-1), strict=True))
