"""Auxiliary modules: the DSP encoder, the learned-noise Kalman fusion and the utility module."""

from __future__ import annotations

import torch
from torch import nn

from ..configuration_redheart.tasks import MODEL_TASKS
from .attention import RedHeartBlock
from .outputs_spec import task_output_dims


class DSPEncoder(nn.Module):
    """Spectral encoder: audio log-mel frames and the biosignal feature vector become tokens.

    The features come from real signal processing (`redheart.analysis.signals`: log-mel spectra, EEG band
    powers, ECG heart rate/HRV, GSR tonic/phasic); this module learns how they bear on emotion.
    """

    def __init__(self, config) -> None:
        super().__init__()
        cfg, width = config.auxiliary, config.backbone.hidden_size
        self.audio_in = nn.Sequential(
            nn.Conv1d(cfg.audio_num_mel_bins, width, kernel_size=3, padding=1),
            nn.GELU(),
            nn.Conv1d(width, width, kernel_size=3, stride=2, padding=1),
            nn.GELU(),
        )
        self.audio_layers = nn.ModuleList(
            RedHeartBlock(
                config,
                width,
                config.backbone.num_attention_heads,
                cfg.dsp_intermediate_size,
                config.backbone.hidden_dropout_prob,
                config.backbone.attention_probs_dropout_prob,
            )
            for _ in range(cfg.dsp_layers)
        )
        self.bio_in = nn.Sequential(
            nn.Linear(cfg.biosignal_features, width), nn.GELU(), nn.Linear(width, width)
        )
        self.type_embeddings = nn.Embedding(2, width)  # 0 audio, 1 biosignals
        self.norm = nn.LayerNorm(width)

    def forward(
        self, features: dict[str, torch.Tensor], batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return modality tokens [B, M, d] and their mask [B, M]."""
        tokens, masks = [], []
        if "audio" in features:
            audio = self.audio_in(features["audio"].transpose(1, 2)).transpose(1, 2)
            audio_mask = features.get("audio_mask")
            audio_mask = (
                torch.ones(features["audio"].shape[:2], dtype=torch.bool, device=audio.device)
                if audio_mask is None
                else audio_mask.to(torch.bool)
            )
            audio_mask = audio_mask[:, ::2][:, : audio.shape[1]]  # follows the stride-2 convolution
            for layer in self.audio_layers:
                audio = layer(audio, None, audio_mask)
            tokens.append(audio + self.type_embeddings.weight[0])
            masks.append(audio_mask)
        if "biosignals" in features:
            bio = self.bio_in(features["biosignals"])[:, None, :]
            tokens.append(bio + self.type_embeddings.weight[1])
            masks.append(torch.ones(batch_size, 1, dtype=torch.bool, device=bio.device))
        return self.norm(torch.cat(tokens, dim=1)), torch.cat(masks, dim=1)


class KalmanFusion(nn.Module):
    """One Kalman measurement update per output: the head's prediction is the prior, the analyzer's the observation.

    Learned noise networks give the prior variance P (from the head summary) and the observation variance R
    (from the analyzer summary); fused = x_h + K (x_a - x_h) with gain K = P / (P + R), variance P R / (P + R).
    The fused variance is the per-item observation noise that `analyze_stream` feeds its Kalman smoother.
    """

    def __init__(self, config) -> None:
        super().__init__()
        width, hidden = config.backbone.hidden_size, config.auxiliary.kalman_hidden_size
        self.dims = {task: sum(d.values()) for task, d in task_output_dims(config).items()}
        total = sum(self.dims.values())
        self.prior_noise = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, total))
        self.observation_noise = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, total))
        self.task_index = {task: i for i, task in enumerate(MODEL_TASKS)}

    def _variance(self, net: nn.Module, summary: torch.Tensor, task: str) -> torch.Tensor:
        start = sum(self.dims[t] for t in MODEL_TASKS[: self.task_index[task]])
        return nn.functional.softplus(net(summary)[:, start : start + self.dims[task]]) + 1e-4

    def forward(
        self,
        task: str,
        head: torch.Tensor,
        analyzer: torch.Tensor,
        head_summary: torch.Tensor,
        analyzer_summary: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        prior = self._variance(self.prior_noise, head_summary, task)
        observation = self._variance(self.observation_noise, analyzer_summary, task)
        gain = prior / (prior + observation)
        return head + gain * (analyzer - head), prior * observation / (prior + observation)


class UtilityModule(nn.Module):
    """Calibration temperatures, a confidence estimate and multi-task uncertainty weights (Kendall et al. 2018)."""

    def __init__(self, config, task_losses: tuple[str, ...]) -> None:
        super().__init__()
        width, hidden = config.backbone.hidden_size, config.auxiliary.utility_hidden_size
        self.confidence = nn.Sequential(
            nn.Linear(4 * width, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden // 2),
            nn.GELU(),
            nn.Linear(hidden // 2, 1),
        )
        # log-temperatures for the probability outputs (emotion, kote, acceptability); exp(0) = 1 at start.
        self.log_temperature = nn.Parameter(torch.zeros(3))
        # s_t = log sigma_t^2 per task loss; total = sum_t exp(-s_t) L_t + s_t.
        self.task_log_vars = nn.Parameter(torch.zeros(len(task_losses)))
        self.task_losses = task_losses

    def temperatures(self) -> dict[str, torch.Tensor]:
        t = self.log_temperature.exp()
        return {"emotion_logits": t[0], "kote_logits": t[1], "acceptability_logits": t[2]}

    def confidence_logit(self, summaries: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.confidence(torch.cat([summaries[t] for t in MODEL_TASKS], dim=-1)).squeeze(-1)

    def weigh(
        self, losses: dict[str, torch.Tensor], log_var_scales: dict[str, float] | None = None
    ) -> torch.Tensor:
        """``sum_t exp(-s_t) L_t + c_t s_t`` over the given tasks; ``c_t`` (default 1) is this batch's share of
        the ``s_t`` term when one global batch is split into parts (see ``RedHeartModel.forward``)."""
        total = 0.0
        for index, task in enumerate(self.task_losses):
            if task in losses:
                s = self.task_log_vars[index]
                term = s if log_var_scales is None else log_var_scales.get(task, 1.0) * s
                total = total + torch.exp(-s) * losses[task] + term
        return total
