"""Input and label checks of `RedHeartModel.forward`: clear errors naming what is wrong, before any computation."""

from __future__ import annotations

import torch

from ..configuration_redheart.tasks import IGNORE_INDEX


def _checks_values() -> bool:
    """Whether checks that read tensor values run: not while ``torch.export`` traces the graph (ONNX export),
    where values are symbolic; the exported graph's inputs are token ids the pipeline has already checked."""
    return not torch.compiler.is_exporting()


def _finite(name: str, tensor: torch.Tensor) -> None:
    if not torch.is_floating_point(tensor):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {tensor.dtype}")
    if _checks_values() and not torch.isfinite(tensor).all():
        bad = (~torch.isfinite(tensor)).nonzero()[0].tolist()
        raise ValueError(f"{name} contains NaN or inf (first at index {bad})")


def check_encoder_inputs(config, hidden_states, attention_mask) -> int:
    """Validate per-encoder states and masks; return the batch size."""
    if not isinstance(hidden_states, dict) or not hidden_states:
        raise ValueError("encoder_hidden_states must be a non-empty dict of encoder name -> [B, L, H] tensor")
    if not isinstance(attention_mask, dict):
        raise ValueError("encoder_attention_mask must be a dict of encoder name -> [B, L] tensor")
    unknown = sorted(set(hidden_states) - set(config.encoders))
    if unknown:
        raise ValueError(f"unknown encoder(s) {unknown}; this config knows {list(config.encoders)}")
    disabled = sorted(n for n in hidden_states if not config.encoders[n]["enabled"])
    if disabled:
        raise ValueError(
            f"encoder(s) {disabled} are disabled in the config (encoders[name]['enabled'] is False)"
        )
    extra_masks = sorted(set(attention_mask) - set(hidden_states))
    if extra_masks:
        raise ValueError(f"encoder_attention_mask has entries {extra_masks} without hidden states")
    batch, total_tokens, any_token = None, 0, None
    for name, states in hidden_states.items():
        expected = config.encoders[name]["hidden_size"]
        if not isinstance(states, torch.Tensor) or states.dim() != 3 or states.shape[-1] != expected:
            shape = tuple(states.shape) if isinstance(states, torch.Tensor) else type(states).__name__
            raise ValueError(
                f"encoder_hidden_states[{name!r}] must be [batch, length, {expected}], got {shape}"
            )
        _finite(f"encoder_hidden_states[{name!r}]", states)
        if name not in attention_mask:
            raise ValueError(f"encoder_attention_mask[{name!r}] is missing")
        mask = attention_mask[name]
        if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != tuple(states.shape[:2]):
            shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(
                f"encoder_attention_mask[{name!r}] must have shape {tuple(states.shape[:2])} (batch, length), got {shape}"
            )
        if mask.dtype != torch.bool and _checks_values() and not ((mask == 0) | (mask == 1)).all():
            raise ValueError(f"encoder_attention_mask[{name!r}] must hold only 0/1 (or booleans)")
        if batch is None:
            batch = states.shape[0]
        elif states.shape[0] != batch:
            raise ValueError(
                f"encoder_hidden_states[{name!r}] has batch {states.shape[0]}, others have {batch}"
            )
        total_tokens += config.backbone.pooled_length(states.shape[1])
        present = mask.to(torch.bool).any(dim=1)
        any_token = present if any_token is None else any_token | present
    if batch == 0:
        raise ValueError("empty batch: encoder_hidden_states have batch size 0")
    if _checks_values() and not any_token.all():
        rows = (~any_token).nonzero().flatten().tolist()
        raise ValueError(f"example(s) {rows} have no unmasked token in any encoder")
    limit = config.backbone.max_fused_tokens
    if total_tokens > limit:
        raise ValueError(
            f"{total_tokens} fused tokens exceed backbone.max_fused_tokens={limit}; chunk long texts (the pipeline does)"
        )
    return batch


def check_modality_inputs(config, features, batch: int) -> None:
    if features is None:
        return
    if not isinstance(features, dict):
        raise ValueError(
            "modality_features must be a dict with keys among 'audio', 'audio_mask', 'biosignals'"
        )
    unknown = sorted(set(features) - {"audio", "audio_mask", "biosignals"})
    if unknown:
        raise ValueError(
            f"modality_features has unknown keys {unknown}; allowed: audio, audio_mask, biosignals"
        )
    aux = config.auxiliary
    if "audio" in features:
        audio = features["audio"]
        if audio.dim() != 3 or audio.shape[0] != batch or audio.shape[2] != aux.audio_num_mel_bins:
            raise ValueError(
                f"modality_features['audio'] must be [batch={batch}, frames, {aux.audio_num_mel_bins} mel bins], "
                f"got {tuple(audio.shape)}"
            )
        if not 1 <= audio.shape[1] <= aux.max_audio_frames:
            raise ValueError(
                f"modality_features['audio'] has {audio.shape[1]} frames; allowed 1..{aux.max_audio_frames}"
            )
        _finite("modality_features['audio']", audio)
        mask = features.get("audio_mask")
        if mask is not None and tuple(mask.shape) != tuple(audio.shape[:2]):
            raise ValueError(f"modality_features['audio_mask'] must have shape {tuple(audio.shape[:2])}")
    elif "audio_mask" in features:
        raise ValueError("modality_features['audio_mask'] given without 'audio'")
    if "biosignals" in features:
        bio = features["biosignals"]
        if bio.dim() != 2 or tuple(bio.shape) != (batch, aux.biosignal_features):
            raise ValueError(
                f"modality_features['biosignals'] must be [batch={batch}, {aux.biosignal_features}], got {tuple(bio.shape)}"
            )
        _finite("modality_features['biosignals']", bio)


def _labels(name: str, labels, shape: tuple, allowed: str, batch_index: bool = True) -> None:
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"{name} must be a tensor, got {type(labels).__name__}")
    if tuple(labels.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(labels.shape)}")
    if torch.is_floating_point(labels) and not torch.isfinite(labels).all():
        raise ValueError(f"{name} contains NaN or inf; mark missing labels with -100")
    values = labels[labels != IGNORE_INDEX].float()
    if values.numel() == 0:
        return
    ok = {
        "binary": ((values == 0) | (values == 1)).all(),
        "unit": ((values >= 0) & (values <= 1)).all(),
        "signed": ((values >= -1) & (values <= 1)).all(),
    }[allowed]
    if not ok:
        rng = {"binary": "{0, 1}", "unit": "[0, 1]", "signed": "[-1, 1]"}[allowed]
        raise ValueError(
            f"{name} has values outside {rng} (min {values.min().item()}, max {values.max().item()}); "
            "use -100 for a missing label"
        )


def check_labels(config, batch: int, labels: dict) -> None:
    """Each label is optional; -100 marks a missing row (or element)."""
    specs = {
        "emotion_labels": ((batch, len(config.emotion_labels)), "binary"),
        "kote_labels": ((batch, len(config.kote_labels)), "binary"),
        "sentiment_labels": ((batch,), "signed"),
        # a probability in [0, 1]: 0/1 from the data sets, a teacher's soft target from a distilled set
        "acceptability_labels": ((batch, len(config.acceptability_frameworks)), "unit"),
        "regret_labels": ((batch,), "unit"),
        "surd_labels": ((batch, 4), "unit"),
    }
    for name, (shape, allowed) in specs.items():
        if labels.get(name) is not None:
            _labels(name, labels[name], shape, allowed)
    for name in ("emotion_labels", "kote_labels", "surd_labels"):
        value = labels.get(name)
        if value is not None:
            partial = (
                ((value == IGNORE_INDEX).any(-1) & (value != IGNORE_INDEX).any(-1))
                .nonzero()
                .flatten()
                .tolist()
            )
            if partial:
                raise ValueError(
                    f"{name} rows {partial} are partly -100: a row is either labelled or all -100"
                )
    surd = labels.get("surd_labels")
    if surd is not None:
        rows = (surd != IGNORE_INDEX).all(-1)
        if rows.any() and not torch.allclose(
            surd[rows].float().sum(-1), torch.ones(int(rows.sum())), atol=1e-3
        ):
            raise ValueError("surd_labels rows must sum to 1 (redundant + unique + synergistic + leak)")
    pairs = labels.get("utility_pairs")
    if pairs is not None:
        if (
            not isinstance(pairs, torch.Tensor)
            or pairs.dim() != 2
            or pairs.shape[1] != 2
            or pairs.is_floating_point()
        ):
            raise ValueError(
                "utility_pairs must be an integer tensor [P, 2] of (more pleasant, less pleasant) indices"
            )
        if pairs.numel() and (pairs.min() < 0 or pairs.max() >= batch):
            raise ValueError(
                f"utility_pairs indices must be in [0, {batch}), got {pairs.min().item()}..{pairs.max().item()}"
            )
        if pairs.numel() and (pairs[:, 0] == pairs[:, 1]).any():
            raise ValueError("utility_pairs must compare two different examples")


def check_language_ids(config, language_ids, batch: int) -> None:
    if language_ids is None:
        return
    if tuple(language_ids.shape) != (batch,) or language_ids.is_floating_point():
        raise ValueError(f"language_ids must be an integer tensor of shape ({batch},)")
    n = config.analyzers.num_languages
    if _checks_values() and (language_ids.min() < 0 or language_ids.max() >= n):
        raise ValueError(f"language_ids must be in [0, {n}) (0 en, 1 ko, 2 other)")
