"""Fusion of external-encoder states: per-encoder projection to the model width plus an encoder-type embedding.

Encoders tokenise differently, so their sequences are not aligned: the fused sequence is their concatenation,
masked, and the backbone's attention mixes them. Any subset of the configured encoders may be present.
"""

from __future__ import annotations

import torch
from torch import nn


class EncoderFusion(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        width = config.backbone.hidden_size
        self.encoder_names = list(config.encoders)
        self.projections = nn.ModuleDict(
            {name: nn.Linear(spec["hidden_size"], width) for name, spec in config.encoders.items()}
        )
        self.type_embeddings = nn.Embedding(len(self.encoder_names), width)
        self.norm = nn.LayerNorm(width, eps=config.backbone.layer_norm_eps)
        self.dropout = nn.Dropout(config.backbone.hidden_dropout_prob)

    def forward(
        self, hidden_states: dict[str, torch.Tensor], attention_mask: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return fused tokens [B, L, d] and their boolean mask [B, L] (encoders in config order)."""
        tokens, masks = [], []
        for index, name in enumerate(self.encoder_names):
            if name not in hidden_states:
                continue
            states = self.projections[name](hidden_states[name])
            type_id = torch.full(states.shape[:2], index, dtype=torch.long, device=states.device)
            tokens.append(states + self.type_embeddings(type_id))
            masks.append(attention_mask[name].to(torch.bool))
        return self.dropout(self.norm(torch.cat(tokens, dim=1))), torch.cat(masks, dim=1)
