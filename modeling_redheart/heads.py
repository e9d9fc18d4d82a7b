"""First-pass task heads: each reads its pooled task vector and predicts its task's raw outputs.

Every head also returns a summary vector (its last hidden state) that the analyzers attend to.
"""

from __future__ import annotations

import torch
from torch import nn

from .outputs_spec import OutputLayer, task_output_dims


class ResidualMLP(nn.Module):
    """Pre-norm residual MLP block: the building unit of the regret, SURD and Bentham trunks."""

    def __init__(self, hidden_size: int, inner_size: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size)
        self.up = nn.Linear(hidden_size, inner_size)
        self.down = nn.Linear(inner_size, hidden_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.dropout(self.down(nn.functional.gelu(self.up(self.norm(hidden)))))


class EmotionMoEHead(nn.Module):
    """Mixture of experts with top-k routing; the load-balancing loss keeps every expert in use."""

    def __init__(self, config) -> None:
        super().__init__()
        cfg, width = config.heads, config.backbone.hidden_size
        self.top_k = cfg.emotion_top_k
        self.num_experts = cfg.emotion_num_experts
        self.router = nn.Linear(width, cfg.emotion_num_experts)
        self.norm = nn.LayerNorm(width)
        self.experts = nn.ModuleList(
            nn.Sequential(
                nn.Linear(width, cfg.emotion_expert_size),
                nn.GELU(),
                nn.Dropout(cfg.dropout),
                nn.Linear(cfg.emotion_expert_size, width),
            )
            for _ in range(cfg.emotion_num_experts)
        )
        self.out_norm = nn.LayerNorm(width)
        self.output = OutputLayer(width, task_output_dims(config)["emotion"])

    def forward(self, task_vector: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, dict]:
        hidden = self.norm(task_vector)
        router_probs = self.router(hidden).softmax(dim=-1)  # [B, E]
        top_probs, top_index = router_probs.topk(self.top_k, dim=-1)
        top_probs = top_probs / top_probs.sum(dim=-1, keepdim=True)
        if torch.compiler.is_exporting():
            mixed = self._mix_dense(hidden, top_probs, top_index)
        else:
            mixed = torch.zeros_like(hidden)
            for expert_id, expert in enumerate(self.experts):
                rows, slot = (top_index == expert_id).nonzero(as_tuple=True)
                if rows.numel():
                    update = expert(hidden[rows]) * top_probs[rows, slot, None]
                    mixed = mixed.index_add(0, rows, update.to(mixed.dtype))  # dtypes differ under autocast
        summary = self.out_norm(task_vector + mixed)
        # Switch-Transformer load balancing: E * sum_e (fraction routed to e) * (mean router prob of e).
        routed = nn.functional.one_hot(top_index, self.num_experts).sum(dim=1).float()  # [B, E]
        fraction = routed.mean(dim=0) / self.top_k
        balance = self.num_experts * (fraction * router_probs.mean(dim=0)).sum()
        routing = {"load_balancing_loss": balance, "expert_load": fraction.detach()}
        return self.output(summary), summary, routing

    def _mix_dense(
        self, hidden: torch.Tensor, top_probs: torch.Tensor, top_index: torch.Tensor
    ) -> torch.Tensor:
        """The same mixture with every expert run on every row and weighted by its gate (0 outside the top k).

        Used while ``torch.export`` traces the graph (ONNX export): the sparse dispatch above has shapes that
        depend on the routing, which an exported graph cannot branch on.
        """
        gates = torch.zeros_like(top_probs[:, :1].expand(-1, self.num_experts)).scatter(
            -1, top_index, top_probs
        )
        outputs = torch.stack([expert(hidden) for expert in self.experts], dim=1)  # [B, E, W]
        return (gates.unsqueeze(-1) * outputs).sum(dim=1).to(hidden.dtype)


class BenthamHead(nn.Module):
    """Bentham's felicific calculus: 10 element intensities and, per element, a weighting layer.

    utility = sum_i sign_i * weight_i * element_i (weights kept in `bentham_weight_range` by a penalty); the
    elements are latent (no labelled data), trained only through the supervised utility and acceptability.
    """

    def __init__(self, config) -> None:
        super().__init__()
        cfg, width = config.heads, config.backbone.hidden_size
        n_elements = len(config.bentham_elements)
        self.trunk = nn.Sequential(
            ResidualMLP(width, cfg.bentham_hidden_size, cfg.dropout),
            ResidualMLP(width, cfg.bentham_hidden_size, cfg.dropout),
            nn.LayerNorm(width),
        )
        dims = task_output_dims(config)["bentham"]
        self.output = OutputLayer(width, {k: v for k, v in dims.items() if k != "weight_logits"})
        # Weighting layers: one small MLP per element (batched as [E, d, h] for speed).
        hidden = cfg.bentham_weight_hidden_size
        self.weight_in = nn.Parameter(torch.empty(n_elements, width, hidden))
        self.weight_in_bias = nn.Parameter(torch.zeros(n_elements, hidden))
        self.weight_out = nn.Parameter(torch.empty(n_elements, hidden))
        self.weight_out_bias = nn.Parameter(torch.zeros(n_elements))

    def forward(self, task_vector: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        summary = self.trunk(task_vector)
        outputs = self.output(summary)
        # One matmul for all element MLPs ([B, d] @ [d, E*h]) rather than einsum: single MatMul nodes in ONNX.
        elements, width, hidden = self.weight_in.shape
        stacked = self.weight_in.transpose(0, 1).reshape(width, elements * hidden)
        inner = (summary @ stacked).view(-1, elements, hidden) + self.weight_in_bias
        inner = nn.functional.gelu(inner)  # [B, E, h]
        outputs["weight_logits"] = (inner * self.weight_out).sum(-1) + self.weight_out_bias
        return outputs, summary


class ResidualMLPHead(nn.Module):
    """A stack of residual MLP blocks and an output layer (regret and SURD heads)."""

    def __init__(self, config, task: str, inner_size: int, num_blocks: int) -> None:
        super().__init__()
        width = config.backbone.hidden_size
        self.blocks = nn.Sequential(
            *(ResidualMLP(width, inner_size, config.heads.dropout) for _ in range(num_blocks))
        )
        self.norm = nn.LayerNorm(width)
        self.output = OutputLayer(width, task_output_dims(config)[task])

    def forward(self, task_vector: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        summary = self.norm(self.blocks(task_vector))
        return self.output(summary), summary


class RedHeartHeads(nn.Module):
    """The four first-pass heads."""

    def __init__(self, config) -> None:
        super().__init__()
        cfg = config.heads
        self.emotion = EmotionMoEHead(config)
        self.bentham = BenthamHead(config)
        self.regret = ResidualMLPHead(config, "regret", cfg.regret_hidden_size, cfg.regret_num_blocks)
        self.surd = ResidualMLPHead(config, "surd", cfg.surd_hidden_size, cfg.surd_num_blocks)

    def forward(self, task_vectors: dict[str, torch.Tensor]):
        """Return raw outputs per task, a summary vector per task, and the emotion router's statistics."""
        emotion, emotion_summary, routing = self.emotion(task_vectors["emotion"])
        outputs, summaries = {"emotion": emotion}, {"emotion": emotion_summary}
        for task in ("bentham", "regret", "surd"):
            outputs[task], summaries[task] = getattr(self, task)(task_vectors[task])
        return outputs, summaries, routing
