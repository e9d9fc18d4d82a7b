"""Output dataclass of `RedHeartModel`: every task output of docs/DESIGN.md, with which parts produced them."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput


@dataclass
class RedHeartOutput(ModelOutput):
    r"""
    loss (`torch.Tensor`, *optional*): total loss, returned when labels are given.
    task_losses (`dict[str, torch.Tensor]`, *optional*): each labelled task's loss, plus the regularisers
        (`load_balancing`, `bentham_range`).
    emotion_logits (`[B, 28]`): GoEmotions logits (calibrated by temperature when the auxiliary module is on).
    emotion_probs (`[B, 28]`): independent sigmoid probabilities of the 28 labels (multi-label).
    kote_probs (`[B, 44]`): KOTE label probabilities.
    emotion_core (`[B, 7]`): Ekman groups, max of member probabilities (`configuration_redheart.labels.CORE_FORMULA`).
    emotion_cultural (`[B, 3]`): jeong, han, chemyeon as documented compositions of KOTE probabilities.
    sentiment (`[B]`): valence in [-1, 1].
    bentham_elements (`[B, 10]`): latent element intensities in [0, 1].
    bentham_weights (`[B, 10]`): learned element weights (weighting layers).
    utility (`[B]`): hedonic utility, sum_i sign_i * weight_i * element_i (higher = more pleasant).
    utility_std (`[B]`): predicted spread of the utility (grounded by the pairwise utility loss).
    acceptability_probs (`[B, 4]`): acceptability per ETHICS framework.
    regret_potential (`[B]`): anticipated regret in [0, 1].
    surd_shares (`[B, 4]`): redundant, unique, synergistic, leak; non-negative and summing to 1.
    confidence (`[B]`, *optional*): calibrated confidence (needs the auxiliary module).
    uncertainty (`dict[str, torch.Tensor]`, *optional*): per-task variance of the Kalman-fused raw outputs.
    expert_load (`[E]`, *optional*): fraction of routing slots each emotion expert received in this batch.
    task_vectors (`dict[str, torch.Tensor]`): the pooled task vectors [B, d] (useful for probes and caching).
    parts (`tuple[str, ...]`): the parts that ran (e.g. `("fusion", "backbone", "heads", "analyzers", "kalman")`).
    """

    loss: torch.Tensor | None = None
    task_losses: dict[str, torch.Tensor] | None = None
    emotion_logits: torch.Tensor | None = None
    emotion_probs: torch.Tensor | None = None
    kote_probs: torch.Tensor | None = None
    emotion_core: torch.Tensor | None = None
    emotion_cultural: torch.Tensor | None = None
    sentiment: torch.Tensor | None = None
    bentham_elements: torch.Tensor | None = None
    bentham_weights: torch.Tensor | None = None
    utility: torch.Tensor | None = None
    utility_std: torch.Tensor | None = None
    acceptability_probs: torch.Tensor | None = None
    regret_potential: torch.Tensor | None = None
    surd_shares: torch.Tensor | None = None
    confidence: torch.Tensor | None = None
    uncertainty: dict[str, torch.Tensor] | None = None
    expert_load: torch.Tensor | None = None
    task_vectors: dict[str, torch.Tensor] | None = None
    parts: tuple[str, ...] | None = None
