"""Documented formulas that turn raw task outputs into docs/DESIGN.md's outputs (no learned parameters here)."""

from __future__ import annotations

import torch
from torch import nn

from .configuration_redheart_labels import CULTURAL_COMPOSITIONS, EKMAN_GROUPS


class DerivedOutputs(nn.Module):
    """Index buffers for the Ekman core groups and the cultural compositions."""

    def __init__(self, config) -> None:
        super().__init__()
        emotion_index = {label: i for i, label in enumerate(config.emotion_labels)}
        kote_index = {label: i for i, label in enumerate(config.kote_labels)}
        self.core_members = [
            [emotion_index[m] for m in members if m in emotion_index] for members in EKMAN_GROUPS.values()
        ]
        self.cultural_members = [
            ([kote_index[m] for m in a if m in kote_index], [kote_index[m] for m in b if m in kote_index])
            for a, b in CULTURAL_COMPOSITIONS.values()
        ]
        self.register_buffer(
            "signs", torch.tensor(config.bentham_signs, dtype=torch.float32), persistent=False
        )

    def core(self, emotion_probs: torch.Tensor) -> torch.Tensor:
        """p(group) = max of the group's member probabilities."""
        return torch.stack([emotion_probs[:, idx].amax(dim=-1) for idx in self.core_members], dim=-1)

    def cultural(self, kote_probs: torch.Tensor) -> torch.Tensor:
        """p = sqrt(max_A p * max_B p): high only when both components are present."""
        return torch.stack(
            [
                torch.sqrt(kote_probs[:, a].amax(-1) * kote_probs[:, b].amax(-1) + 1e-12)
                for a, b in self.cultural_members
            ],
            dim=-1,
        )

    def utility(self, elements: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Hedonic sum: sum_i sign_i * weight_i * element_i."""
        return (self.signs.to(elements.dtype) * weights * elements).sum(dim=-1)
