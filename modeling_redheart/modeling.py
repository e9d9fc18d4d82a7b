"""`RedHeartModel`: fusion -> backbone -> heads -> analyzers -> auxiliary, with masked multi-task losses."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init

from ..configuration_redheart.config import RedHeartConfig
from ..configuration_redheart.tasks import IGNORE_INDEX, MODEL_TASKS, TASK_LOSSES
from .analyzers import RedHeartAnalyzers, TaskAnalyzer
from .auxiliary import DSPEncoder, KalmanFusion, UtilityModule
from .backbone import RedHeartBackbone, TaskAttentionPooling
from .derived import DerivedOutputs
from .fusion import EncoderFusion
from .heads import BenthamHead, RedHeartHeads
from .losses import (
    focal_loss,
    masked_bce,
    masked_huber,
    masked_mse,
    pairwise_utility_loss,
    range_penalty,
    surd_loss,
)
from .outputs import RedHeartOutput
from .outputs_spec import task_output_dims
from .remote_code import AUTO_MAP, CUSTOM_PIPELINES, export_remote_code
from .validation import check_encoder_inputs, check_labels, check_language_ids, check_modality_inputs

LABEL_NAMES = (
    "emotion_labels",
    "kote_labels",
    "sentiment_labels",
    "acceptability_labels",
    "utility_pairs",
    "regret_labels",
    "surd_labels",
)


class RedHeartPreTrainedModel(PreTrainedModel):
    config_class = RedHeartConfig
    config: RedHeartConfig
    base_model_prefix = "redheart"
    main_input_name = "encoder_hidden_states"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_attention_backend = True
    _no_split_modules = [
        "RedHeartBlock",
        "ResidualMLP",
        "EmotionMoEHead",
        "BenthamHead",
        "TaskAttentionPooling",
    ]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """`PreTrainedModel.from_pretrained`, with a corrupt or truncated weights file named in the error."""
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except Exception as err:
            if type(err).__name__ != "SafetensorError":
                raise
            raise OSError(
                f"{pretrained_model_name_or_path}: a safetensors weights file (model.safetensors) is corrupt or "
                f"truncated ({err}); re-download or re-save the model"
            ) from err

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """Save weights and config as usual, plus Red Heart's own code for the `trust_remote_code` route.

        The code (model and `ethics-emotion` pipeline) is written first, so that a push to the Hub includes it;
        `config.custom_pipelines` names the pipeline when its code was shipped.
        """
        shipped = export_remote_code(save_directory)
        self.config.auto_map = dict(AUTO_MAP)
        if f"{CUSTOM_PIPELINES['ethics-emotion']['impl'].split('.')[0]}.py" in shipped:
            self.config.custom_pipelines = copy.deepcopy(CUSTOM_PIPELINES)
        super().save_pretrained(save_directory, *args, **kwargs)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Linear/Embedding/LayerNorm/Conv as transformers does; then the parameters this model adds itself."""
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, TaskAttentionPooling):
            init.normal_(module.queries, mean=0.0, std=std)
        elif isinstance(module, TaskAnalyzer):
            init.normal_(module.query_offsets, mean=0.0, std=std)
        elif isinstance(module, BenthamHead):
            init.normal_(module.weight_in, mean=0.0, std=std)
            init.zeros_(module.weight_in_bias)
            init.normal_(module.weight_out, mean=0.0, std=std)
            init.zeros_(module.weight_out_bias)
        elif isinstance(
            module, DerivedOutputs
        ):  # non-persistent buffer: rebuilt here after meta-device loading
            init.copy_(module.signs, torch.tensor(self.config.bentham_signs, dtype=module.signs.dtype))
        elif isinstance(module, UtilityModule):
            init.zeros_(module.log_temperature)
            init.zeros_(module.task_log_vars)


class RedHeartModel(RedHeartPreTrainedModel):
    """Ethics- and emotion-aware analysis from the hidden states of one or more external text encoders.

    Inputs are per-encoder hidden states and attention masks (any subset of the configured, enabled encoders),
    optional audio/biosignal features, and optional labels (missing ones marked -100; see `forward`).
    """

    def __init__(self, config: RedHeartConfig) -> None:
        super().__init__(config)
        self.fusion = EncoderFusion(config)
        self.backbone = RedHeartBackbone(config)
        self.heads = RedHeartHeads(config) if config.use_heads else None
        self.analyzers = RedHeartAnalyzers(config) if config.use_analyzers else None
        aux = config.use_auxiliary
        self.dsp = DSPEncoder(config) if aux and config.use_analyzers else None
        self.kalman = KalmanFusion(config) if aux and config.use_heads and config.use_analyzers else None
        self.utility = UtilityModule(config, TASK_LOSSES) if aux else None
        self.derived = DerivedOutputs(config)
        self._output_dims = task_output_dims(config)
        self.post_init()

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts this model has (switched on in the config)."""
        names = ("fusion", "backbone", "heads", "analyzers", "dsp", "kalman", "utility")
        return tuple(n for n in names if getattr(self, n) is not None)

    def forward(
        self,
        encoder_hidden_states: dict[str, torch.Tensor],
        encoder_attention_mask: dict[str, torch.Tensor],
        modality_features: dict[str, torch.Tensor] | None = None,
        language_ids: torch.Tensor | None = None,
        emotion_labels: torch.Tensor | None = None,
        kote_labels: torch.Tensor | None = None,
        sentiment_labels: torch.Tensor | None = None,
        acceptability_labels: torch.Tensor | None = None,
        utility_pairs: torch.Tensor | None = None,
        regret_labels: torch.Tensor | None = None,
        surd_labels: torch.Tensor | None = None,
        return_dict: bool = True,
        loss_scales: dict[str, Any] | None = None,
    ) -> RedHeartOutput:
        r"""
        encoder_hidden_states (`dict[str, Tensor[B, L_e, H_e]]`): last hidden states of each present encoder.
        encoder_attention_mask (`dict[str, Tensor[B, L_e]]`): 1/True for real tokens.
        modality_features (`dict`, *optional*): `audio` [B, T, mel bins] log-mel frames (+ `audio_mask` [B, T]) and/or
            `biosignals` [B, F] from `redheart.analysis.signals`; read by the DSP encoder into the emotion analyzer.
        language_ids (`Tensor[B]`, *optional*): 0 English, 1 Korean, 2 other.
        emotion_labels / kote_labels (`[B, 28]` / `[B, 44]`): multi-hot, a row of -100 when unlabelled.
        sentiment_labels (`[B]`): valence in [-1, 1] or -100. regret_labels (`[B]`): in [0, 1] or -100.
        acceptability_labels (`[B, 4]`): per framework 0/1, or a soft target in [0, 1]; -100 where unlabelled.
        utility_pairs (`[P, 2]`): (more pleasant, less pleasant) example indices of this batch.
        surd_labels (`[B, 4]`): exact SURD shares summing to 1, or a row of -100.
        loss_scales (`dict`, *optional*): training over parts of one global batch (micro-batches, processes):
            `{"tasks": {task: a}, "log_vars": {task: c}, "regularisers": r}` multiplies each task's mean loss by
            `a`, its uncertainty term `s_t` by `c` and the regularisers by `r`, so that the parts' losses add up
            to the global batch's (see `losses.loss_item_counts` and `training/trainer.py`). `output.loss` is
            then this part's scaled share; `output.task_losses` stay this batch's plain means.
        """
        batch = check_encoder_inputs(self.config, encoder_hidden_states, encoder_attention_mask)
        check_modality_inputs(self.config, modality_features, batch)
        check_language_ids(self.config, language_ids, batch)
        labels = dict(
            zip(
                LABEL_NAMES,
                (
                    emotion_labels,
                    kote_labels,
                    sentiment_labels,
                    acceptability_labels,
                    utility_pairs,
                    regret_labels,
                    surd_labels,
                ),
                strict=True,
            )
        )
        check_labels(self.config, batch, labels)
        if modality_features and self.dsp is None:
            raise ValueError(
                "modality_features are read by the DSP encoder, which needs use_auxiliary and use_analyzers"
            )

        tokens, token_mask = self.fusion(encoder_hidden_states, encoder_attention_mask)
        tokens, task_vectors = self.backbone(tokens, token_mask)
        parts = ["fusion", "backbone"]

        head_out = head_summaries = routing = None
        if self.heads is not None:
            head_out, head_summaries, routing = self.heads(task_vectors)
            parts.append("heads")
        analyzer_out = analyzer_summaries = None
        if self.analyzers is not None:
            modality_tokens = modality_mask = None
            if modality_features:
                modality_tokens, modality_mask = self.dsp(modality_features, batch)
                parts.append("dsp")
            analyzer_out, analyzer_summaries = self.analyzers(
                task_vectors, tokens, token_mask, head_summaries, modality_tokens, modality_mask, language_ids
            )
            parts.append("analyzers")
        if self.kalman is not None:
            parts.append("kalman")
        raw, summaries, uncertainty = self._combine(
            head_out, head_summaries, analyzer_out, analyzer_summaries
        )
        output, logits = self._derive(raw, summaries, uncertainty, routing, task_vectors, parts)

        if any(v is not None for v in labels.values()):
            output.loss, output.task_losses = self._losses(output, logits, routing, labels, loss_scales)
        return output if return_dict else output.to_tuple()

    def _combine(self, head_out, head_summaries, analyzer_out, analyzer_summaries):
        """Fuse head and analyzer observations per task (Kalman update, or equal weights without it)."""
        if analyzer_out is None:
            return head_out, head_summaries, None
        if head_out is None:
            return analyzer_out, analyzer_summaries, None
        raw, summaries, uncertainty = {}, {}, {} if self.kalman is not None else None
        for task in MODEL_TASKS:
            names = list(self._output_dims[task])
            head = torch.cat([head_out[task][n] for n in names], dim=-1)
            analyzer = torch.cat([analyzer_out[task][n] for n in names], dim=-1)
            if self.kalman is not None:
                fused, variance = self.kalman(
                    task, head, analyzer, head_summaries[task], analyzer_summaries[task]
                )
                uncertainty[task] = variance
            else:
                fused = 0.5 * (head + analyzer)
            raw[task] = dict(
                zip(names, fused.split(list(self._output_dims[task].values()), dim=-1), strict=True)
            )
            summaries[task] = 0.5 * (head_summaries[task] + analyzer_summaries[task])
        return raw, summaries, uncertainty

    def _derive(self, raw, summaries, uncertainty, routing, task_vectors, parts):
        """Apply the documented formulas; return the output and the (calibrated) logits the losses need."""
        emotion, bentham, regret, surd = (raw[t] for t in MODEL_TASKS)
        temperature = self.utility.temperatures() if self.utility is not None else {}
        logits = {
            name: source[name] / temperature.get(name, 1.0)
            for name, source in (
                ("emotion_logits", emotion),
                ("kote_logits", emotion),
                ("acceptability_logits", bentham),
            )
        }
        logits["raw_shares"] = surd["surd_logits"].sigmoid()
        emotion_probs = logits["emotion_logits"].sigmoid()
        kote_probs = logits["kote_logits"].sigmoid()
        elements = bentham["element_logits"].sigmoid()
        weights = nn.functional.softplus(bentham["weight_logits"])
        confidence = None
        if self.utility is not None:
            logits["confidence"] = self.utility.confidence_logit(summaries)
            confidence = logits["confidence"].sigmoid()
            parts.append("utility")
        output = RedHeartOutput(
            emotion_logits=logits["emotion_logits"],
            emotion_probs=emotion_probs,
            kote_probs=kote_probs,
            emotion_core=self.derived.core(emotion_probs),
            emotion_cultural=self.derived.cultural(kote_probs),
            sentiment=torch.tanh(emotion["sentiment"].squeeze(-1)),
            bentham_elements=elements,
            bentham_weights=weights,
            utility=self.derived.utility(elements, weights),
            utility_std=regret["utility_log_std"].squeeze(-1).clamp(-6, 6).exp(),
            acceptability_probs=logits["acceptability_logits"].sigmoid(),
            regret_potential=regret["regret_logit"].squeeze(-1).sigmoid(),
            surd_shares=logits["raw_shares"] / logits["raw_shares"].sum(dim=-1, keepdim=True),
            confidence=confidence,
            uncertainty=uncertainty,
            expert_load=None if routing is None else routing["expert_load"],
            task_vectors=task_vectors,
            parts=tuple(parts),
        )
        return output, logits

    def _losses(
        self, out: RedHeartOutput, logits: dict, routing, labels: dict, scales: dict[str, Any] | None = None
    ) -> tuple[torch.Tensor, dict]:
        cfg = self.config
        given = {name: value for name, value in labels.items() if value is not None}
        compute = {
            "emotion_labels": (
                "emotion",
                lambda y: focal_loss(
                    logits["emotion_logits"], y, cfg.focal_gamma, self._pos_weight("emotion")
                ),
            ),
            "kote_labels": (
                "kote",
                lambda y: focal_loss(logits["kote_logits"], y, cfg.focal_gamma, self._pos_weight("kote")),
            ),
            "sentiment_labels": ("sentiment", lambda y: masked_mse(out.sentiment, y)),
            "utility_pairs": ("utility", lambda y: pairwise_utility_loss(out.utility, out.utility_std, y)),
            "acceptability_labels": (
                "acceptability",
                lambda y: masked_bce(logits["acceptability_logits"], y, self._pos_weight("acceptability")),
            ),
            "regret_labels": ("regret", lambda y: masked_huber(out.regret_potential, y, cfg.huber_delta)),
            "surd_labels": ("surd", lambda y: surd_loss(logits["raw_shares"], y, cfg.surd_sum_weight)),
        }
        task = {compute[name][0]: compute[name][1](value) for name, value in given.items()}
        if "confidence" in logits and "emotion_labels" in given:
            task["confidence"] = self._confidence_loss(out, logits["confidence"], given["emotion_labels"])
        task = {k: v for k, v in task.items() if v is not None}
        weighed = task if scales is None else {k: v * scales["tasks"].get(k, 1.0) for k, v in task.items()}
        if self.utility is not None:
            total = self.utility.weigh(weighed, None if scales is None else scales.get("log_vars"))
        else:
            total = sum(cfg.loss_weights.get(k, 1.0) * v for k, v in weighed.items())
        low, high = cfg.heads.bentham_weight_range
        regularisers = {
            "bentham_range": cfg.bentham_range_weight * range_penalty(out.bentham_weights, low, high)
        }
        if routing is not None:
            regularisers["load_balancing"] = cfg.heads.router_aux_loss_coef * routing["load_balancing_loss"]
        if scales is None:
            total = total + sum(regularisers.values())
        else:
            total = total + float(scales.get("regularisers", 1.0)) * sum(regularisers.values())
        return total, {**task, **regularisers}

    def _pos_weight(self, space: str) -> torch.Tensor | None:
        """The config's positive-label weights of a label space (`RedHeartConfig.positive_weights`), or None."""
        weights = (self.config.positive_weights or {}).get(space)
        return None if weights is None else torch.tensor(weights, device=self.device)

    @staticmethod
    def _confidence_loss(
        out: RedHeartOutput, logit: torch.Tensor, emotion_labels: torch.Tensor
    ) -> torch.Tensor | None:
        """Confidence is trained to predict whether the top emotion is a gold label (a derived, detached target)."""
        rows = (emotion_labels != IGNORE_INDEX).all(dim=-1)
        if not rows.any():
            return None
        top = out.emotion_probs.detach().argmax(dim=-1)
        correct = emotion_labels.gather(1, top[:, None]).squeeze(1).clamp(min=0).float()
        return nn.functional.binary_cross_entropy_with_logits(logit[rows], correct[rows])
