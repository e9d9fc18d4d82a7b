"""The backbone: a transformer over the fused encoder tokens and per-task attention pooling."""

from __future__ import annotations

import torch
from torch import nn

from .attention import RedHeartBlock


class TaskAttentionPooling(nn.Module):
    """Per-task attention pooling: each task has its own query, key and value maps, so it reads the text its own way.

    Computed in the absorbed form (as `RedHeartAttention.absorbed_cross_attention`): each task query is mapped
    into the token space once, instead of every token being projected to `num_tasks` keys and values.
    """

    #: Kept float32 by int8 quantization: :meth:`forward` reads their weights as matrices.
    float_linears = ("key", "value")

    def __init__(self, hidden_size: int, num_tasks: int, eps: float) -> None:
        super().__init__()
        self.num_tasks = num_tasks
        self.queries = nn.Parameter(torch.zeros(num_tasks, hidden_size))
        self.key = nn.Linear(hidden_size, num_tasks * hidden_size)
        self.value = nn.Linear(hidden_size, num_tasks * hidden_size)
        self.norm = nn.LayerNorm(hidden_size, eps=eps)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """tokens [B, L, d], mask [B, L] -> task vectors [B, T, d]."""
        tasks, width, dtype = self.num_tasks, tokens.shape[-1], tokens.dtype
        queries = self.queries.to(dtype)
        # Batched matmuls rather than einsum: the same sums, and single MatMul nodes in the ONNX graph.
        key_weight = self.key.weight.to(dtype).view(tasks, width, width)  # [T, o, i]
        absorbed = torch.bmm(queries[:, None, :], key_weight)[:, 0]  # [T, i]: sum_o q_to W_toi
        bias_term = (queries * self.key.bias.to(dtype).view(tasks, width)).sum(-1)  # constant over tokens
        scores = torch.matmul(absorbed, tokens.transpose(1, 2)) + bias_term[None, :, None]  # [B, T, L]
        scores = (scores * width**-0.5).masked_fill(~mask[:, None, :], torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=-1)
        mixed = torch.matmul(weights, tokens)  # [B, T, i]: attention-weighted raw tokens
        value_weight = self.value.weight.to(dtype).view(tasks, width, width)  # [T, o, i]
        per_task = torch.matmul(mixed.transpose(0, 1), value_weight.transpose(1, 2))  # [T, B, o]
        values = per_task.transpose(0, 1)  # [B, T, o]
        return self.norm(values + self.value.bias.to(dtype).view(tasks, width))


class RedHeartBackbone(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        cfg = config.backbone
        self.layers = nn.ModuleList(
            RedHeartBlock(
                config,
                cfg.hidden_size,
                cfg.num_attention_heads,
                cfg.intermediate_size,
                cfg.hidden_dropout_prob,
                cfg.attention_probs_dropout_prob,
                cfg.hidden_act,
                cfg.layer_norm_eps,
            )
            for _ in range(cfg.num_hidden_layers)
        )
        self.final_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.pooling = TaskAttentionPooling(cfg.hidden_size, len(cfg.tasks), cfg.layer_norm_eps)
        self.tasks = list(cfg.tasks)

    def forward(
        self, tokens: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return contextual tokens [B, L, d] and one pooled vector [B, d] per task."""
        for layer in self.layers:
            tokens = layer(tokens, None, mask)
        tokens = self.final_norm(tokens)
        pooled = self.pooling(tokens, mask)
        return tokens, {task: pooled[:, i] for i, task in enumerate(self.tasks)}
