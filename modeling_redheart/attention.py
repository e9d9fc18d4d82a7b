"""Multi-head attention (self or cross) with transformers' attention-implementation dispatch (SDPA by default)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference attention; `attention_mask` is boolean (True = attend), broadcastable to [B, H, Q, K]."""
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights.masked_fill(~attention_mask, torch.finfo(weights.dtype).min)
    weights = nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return output, weights


class RedHeartAttention(nn.Module):
    """Attention from `hidden_states` (queries) to `context` (keys/values; itself for self-attention).

    The kernel comes from `config._attn_implementation` ("sdpa", "eager", ...), as in transformers models.
    """

    is_causal = False

    def __init__(self, config, hidden_size: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.config = config
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = dropout
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.o_proj = nn.Linear(hidden_size, hidden_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        context: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`key_mask`: [B, K] booleans, True where a key may be attended to."""
        context = hidden_states if context is None else context
        batch, q_len, _ = hidden_states.shape
        k_len = context.shape[1]
        query = self.q_proj(hidden_states).view(batch, q_len, self.num_heads, self.head_dim).transpose(1, 2)
        key = self.k_proj(context).view(batch, k_len, self.num_heads, self.head_dim).transpose(1, 2)
        value = self.v_proj(context).view(batch, k_len, self.num_heads, self.head_dim).transpose(1, 2)
        mask = None if key_mask is None else key_mask[:, None, None, :].to(torch.bool)
        attention: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        output, _ = attention(
            self, query, key, value, mask,
            dropout=self.dropout if self.training else 0.0, scaling=self.scaling, is_causal=False,
        )  # fmt: skip
        return self.o_proj(output.reshape(batch, q_len, -1))


class FeedForward(nn.Module):
    """Position-wise MLP of a transformer block."""

    def __init__(self, hidden_size: int, intermediate_size: int, activation: str, dropout: float) -> None:
        super().__init__()
        self.up = nn.Linear(hidden_size, intermediate_size)
        self.act = ACT2FN[activation]
        self.down = nn.Linear(intermediate_size, hidden_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down(self.act(self.up(hidden_states))))


class RedHeartBlock(GradientCheckpointingLayer):
    """Pre-norm transformer block: (self- or cross-) attention then MLP, each with a residual connection.

    Used by the backbone (self-attention over fused tokens), the analyzers (cross-attention from task queries to
    backbone tokens and head summaries) and the DSP encoder. Activation checkpointing comes from
    `GradientCheckpointingLayer` (`model.gradient_checkpointing_enable()`).
    """

    def __init__(self, config, hidden_size: int, num_heads: int, intermediate_size: int, dropout: float,
                 attention_dropout: float, activation: str = "gelu", eps: float = 1e-12) -> None:  # fmt: skip
        super().__init__()
        self.attention_norm = nn.LayerNorm(hidden_size, eps=eps)
        self.attention = RedHeartAttention(config, hidden_size, num_heads, attention_dropout)
        self.attention_dropout = nn.Dropout(dropout)
        self.mlp_norm = nn.LayerNorm(hidden_size, eps=eps)
        self.mlp = FeedForward(hidden_size, intermediate_size, activation, dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        context: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        normed = self.attention_norm(hidden_states)
        context = normed if context is None else context
        hidden_states = hidden_states + self.attention_dropout(self.attention(normed, context, key_mask))
        return hidden_states + self.mlp(self.mlp_norm(hidden_states))
