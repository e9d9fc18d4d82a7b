"""Fusion of external-encoder states: optional token pooling, per-encoder projection to the model width and an
encoder-type embedding.

Encoders tokenise differently, so their sequences are not aligned: the fused sequence is their concatenation,
masked, and the backbone's attention mixes them. Any subset of the configured encoders may be present.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def pool_tokens(states: torch.Tensor, mask: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the first token, mean-pool the rest over windows of ``stride`` tokens, ignoring masked ones.

    states [B, L, H], mask [B, L] (bool) -> [B, 1 + ceil((L - 1) / stride), H] and its mask (a window is
    present when any of its tokens is). Pooling commutes with the affine projection that follows, so pooling
    first is exact and cheaper.
    """
    if stride == 1 or states.shape[1] <= 1:
        return states, mask
    batch, length, width = states.shape
    windows = (
        length - 1 + stride - 1
    ) // stride  # ceil; no negative floor division (an exported graph truncates)
    pad = windows * stride - (length - 1)
    rest = F.pad(states[:, 1:], (0, 0, 0, pad)).view(batch, windows, stride, width)
    weights = F.pad(mask[:, 1:], (0, pad)).view(batch, windows, stride).to(states.dtype)
    counts = weights.sum(dim=2)
    pooled = (rest * weights[..., None]).sum(dim=2) / counts.clamp(min=1)[..., None]
    return torch.cat([states[:, :1], pooled], dim=1), torch.cat([mask[:, :1], counts > 0], dim=1)


class EncoderFusion(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        width = config.backbone.hidden_size
        self.stride = config.backbone.token_pool_stride
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
            states, mask = pool_tokens(hidden_states[name], attention_mask[name].to(torch.bool), self.stride)
            states = self.projections[name](states)
            type_id = torch.full(states.shape[:2], index, dtype=torch.long, device=states.device)
            tokens.append(states + self.type_embeddings(type_id))
            masks.append(mask)
        return self.dropout(self.norm(torch.cat(tokens, dim=1))), torch.cat(masks, dim=1)
