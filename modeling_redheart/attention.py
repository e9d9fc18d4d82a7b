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
    Cross-attention from fewer queries than `head_dim` (the analyzers: 2 queries over hundreds of tokens) takes
    the absorbed form instead (:meth:`absorbed_cross_attention`): the same function, reassociated so that no
    context token is projected to a key or a value.
    """

    is_causal = False
    #: Linear layers int8 quantization keeps float32 (``redheart.pipelines.quantization``): their weights are
    #: read as matrices by :meth:`absorbed_cross_attention`.
    float_linears = ("k_proj", "v_proj")

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
        """`context`: None for self-attention. `key_mask`: [B, K] booleans, True where a key may be attended to."""
        if context is not None and hidden_states.shape[1] < self.head_dim:
            return self.absorbed_cross_attention(hidden_states, context, key_mask)
        return self.projected_attention(hidden_states, context, key_mask)

    def projected_attention(
        self, hidden_states: torch.Tensor, context: torch.Tensor | None, key_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """The textbook form: project queries, keys and values, then the configured attention kernel."""
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
            self,
            query,
            key,
            value,
            mask,
            dropout=self.dropout if self.training else 0.0,
            scaling=self.scaling,
            is_causal=False,
        )
        return self.o_proj(output.reshape(batch, q_len, -1))

    def absorbed_cross_attention(
        self, hidden_states: torch.Tensor, context: torch.Tensor, key_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """Exact attention for few queries over a long context, at O(K * H * Q * d) instead of O(K * d^2).

        Per head h: q_h . (W_k^h c_j + b_k^h) = (W_k^h^T q_h) . c_j + q_h . b_k^h, so each query is mapped into
        the context space once; and sum_j a_j (W_v^h c_j + b_v^h) = W_v^h (sum_j a_j c_j) + b_v^h because the
        weights sum to 1. The key-bias term is constant over keys (softmax ignores it) and is kept so that
        every parameter stays in the graph, as in the projected form.
        """
        batch, q_len, _ = hidden_states.shape
        heads, head_dim = self.num_heads, self.head_dim
        query = self.q_proj(hidden_states).view(batch, q_len, heads, head_dim).transpose(1, 2)  # [B, H, Q, e]
        dtype = query.dtype  # the projection's output dtype (bf16 under autocast)
        context = context.to(dtype)
        key_weight, key_bias = self.k_proj.weight.to(dtype), self.k_proj.bias.to(dtype)
        value_weight, value_bias = self.v_proj.weight.to(dtype), self.v_proj.bias.to(dtype)

        # One batched product per head over all (text, query) rows: a matmul broadcasting the [H, e, d] weights
        # over the batch would first copy them once per text (torch expands, then copies, its operands).
        rows = query.transpose(0, 1).reshape(heads, batch * q_len, head_dim)  # [H, B*Q, e]
        absorbed = torch.bmm(rows, key_weight.view(heads, head_dim, -1))  # [H, B*Q, d]
        absorbed = absorbed.view(heads, batch, q_len, -1).transpose(0, 1)  # [B, H, Q, d]
        scores = torch.bmm(absorbed.reshape(batch, heads * q_len, -1), context.transpose(1, 2))
        scores = scores.view(batch, heads, q_len, -1)  # [B, H, Q, K]
        scores = scores + torch.matmul(query, key_bias.view(heads, head_dim, 1))  # [B, H, Q, 1]
        scores = scores * self.scaling
        if key_mask is not None:
            hidden = ~key_mask[:, None, None, :].to(torch.bool)
            scores = scores.masked_fill(hidden, torch.finfo(scores.dtype).min)
        weights = nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(dtype)
        weights = nn.functional.dropout(weights, p=self.dropout, training=self.training)

        mixed = torch.bmm(
            weights.reshape(batch, heads * q_len, -1), context
        )  # attention-weighted raw context
        mixed = mixed.view(batch, heads, q_len, -1).transpose(0, 1).reshape(heads, batch * q_len, -1)
        value_weight = value_weight.view(heads, head_dim, -1).transpose(1, 2)  # [H, d, e]
        output = torch.bmm(mixed, value_weight).view(heads, batch, q_len, head_dim)  # [H, B, Q, e]
        output = output.permute(1, 2, 0, 3)  # [B, Q, H, e]
        output = output + value_bias.view(heads, head_dim)
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

    def __init__(
        self,
        config,
        hidden_size: int,
        num_heads: int,
        intermediate_size: int,
        dropout: float,
        attention_dropout: float,
        activation: str = "gelu",
        eps: float = 1e-12,
    ) -> None:
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
        hidden_states = hidden_states + self.attention_dropout(self.attention(normed, context, key_mask))
        return hidden_states + self.mlp(self.mlp_norm(hidden_states))
