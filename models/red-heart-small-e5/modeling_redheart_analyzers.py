"""Analyzers: cross-task refinement of the first-pass predictions.

Each analyzer starts from its task vector, cross-attends to the backbone tokens, to the summaries of all four
heads (so the emotion reading can inform the ethics reading and vice versa) and, for emotion, to the DSP tokens
of audio/biosignals; then it predicts its task's raw outputs again. The Kalman fusion of the auxiliary module
combines these second observations with the heads' first ones.
"""

from __future__ import annotations

import torch
from torch import nn

from .configuration_redheart_tasks import MODEL_TASKS
from .modeling_redheart_attention import RedHeartBlock
from .modeling_redheart_outputs_spec import OutputLayer, task_output_dims


class TaskAnalyzer(nn.Module):
    def __init__(
        self, config, task: str, num_layers: int, intermediate_size: int, num_languages: int = 0
    ) -> None:
        super().__init__()
        cfg, width = config.analyzers, config.backbone.hidden_size
        self.query_offsets = nn.Parameter(torch.zeros(cfg.num_queries, width))
        # Multilingual emotion reading: the query knows the text's language (0 en, 1 ko, 2 other).
        self.language_embeddings = nn.Embedding(num_languages, width) if num_languages else None
        self.blocks = nn.ModuleList(
            RedHeartBlock(config, width, cfg.num_attention_heads, intermediate_size, cfg.dropout, cfg.dropout)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(width)
        self.output = OutputLayer(width, task_output_dims(config)[task])

    def forward(
        self,
        task_vector: torch.Tensor,
        context: torch.Tensor,
        context_mask: torch.Tensor,
        language_ids: torch.Tensor | None = None,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        queries = task_vector[:, None, :] + self.query_offsets[None]
        if self.language_embeddings is not None and language_ids is not None:
            queries = queries + self.language_embeddings(language_ids)[:, None, :]
        for block in self.blocks:
            queries = block(queries, context, context_mask)
        summary = self.norm(queries).mean(dim=1)
        return self.output(summary), summary


class RedHeartAnalyzers(nn.Module):
    """The four analyzers (emotion, bentham, regret, surd)."""

    def __init__(self, config) -> None:
        super().__init__()
        cfg = config.analyzers
        self.emotion = TaskAnalyzer(
            config,
            "emotion",
            cfg.emotion_layers,
            cfg.emotion_intermediate_size,
            num_languages=cfg.num_languages,
        )
        self.bentham = TaskAnalyzer(config, "bentham", cfg.bentham_layers, cfg.bentham_intermediate_size)
        self.regret = TaskAnalyzer(config, "regret", cfg.regret_layers, cfg.regret_intermediate_size)
        self.surd = TaskAnalyzer(config, "surd", cfg.surd_layers, cfg.surd_intermediate_size)

    def forward(
        self,
        task_vectors: dict[str, torch.Tensor],
        tokens: torch.Tensor,
        token_mask: torch.Tensor,
        head_summaries: dict[str, torch.Tensor] | None,
        modality_tokens: torch.Tensor | None = None,
        modality_mask: torch.Tensor | None = None,
        language_ids: torch.Tensor | None = None,
    ):
        context, mask = [tokens], [token_mask]
        if head_summaries is not None:
            summaries = torch.stack([head_summaries[t] for t in MODEL_TASKS], dim=1)
            context.append(summaries)
            mask.append(torch.ones(summaries.shape[:2], dtype=torch.bool, device=summaries.device))
        shared_context, shared_mask = torch.cat(context, dim=1), torch.cat(mask, dim=1)
        outputs, summaries_out = {}, {}
        for task in MODEL_TASKS:
            task_context, task_mask = shared_context, shared_mask
            if task == "emotion" and modality_tokens is not None:  # biosignal / audio fusion
                task_context = torch.cat([shared_context, modality_tokens], dim=1)
                task_mask = torch.cat([shared_mask, modality_mask], dim=1)
            outputs[task], summaries_out[task] = getattr(self, task)(
                task_vectors[task], task_context, task_mask, language_ids if task == "emotion" else None
            )
        return outputs, summaries_out
