"""`RedHeartConfig` and its sub-configs (backbone, heads, analyzers, auxiliary, external encoders).

Written in the transformers 5 dataclass style: every field is declared with its type and default and is
documented in the class docstring. Validation happens in ``__post_init__`` and raises ``ValueError``
naming the offending field, so a bad config fails when it is built, never halfway through a forward pass.
"""

from __future__ import annotations

import copy
from dataclasses import field
from typing import Any

from transformers import PreTrainedConfig

from .labels import (
    ACCEPTABILITY_FRAMEWORKS,
    BENTHAM_ELEMENTS,
    BENTHAM_SIGNS,
    GOEMOTIONS_LABELS,
    KOTE_LABELS,
    SURD_SHARES,
    check_unique,
)
from .presets import PRODUCTION_ENCODERS, preset_kwargs
from .tasks import MODEL_TASKS, TASK_LOSSES


def _check_dtype_name(value: Any) -> None:
    """A ValueError naming the accepted dtypes for a name torch does not have (``dtype="bf16"``), where
    transformers would raise an AttributeError from ``getattr(torch, name)``."""
    if isinstance(value, str):
        import torch

        if not isinstance(getattr(torch, value, None), torch.dtype):
            from ..pipelines.precision import parse_dtype

            parse_dtype(value)


#: Keys an encoder entry of ``RedHeartConfig.encoders`` may have.
ENCODER_KEYS = (
    "model_name_or_path",
    "hidden_size",
    "revision",
    "enabled",
    "languages",
    "max_length",
    "adapter",
    "sha256",
)
#: Languages the pipeline's router knows; ``"*"`` means "any language".
KNOWN_LANGUAGES = ("en", "ko", "*")


def _positive(obj: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{type(obj).__name__}.{name} must be a positive integer, got {value!r}")


def _probability(obj: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
            raise ValueError(f"{type(obj).__name__}.{name} must be in [0, 1), got {value!r}")


def _divides(obj: object, width: str, heads: str) -> None:
    if getattr(obj, width) % getattr(obj, heads) != 0:
        raise ValueError(
            f"{type(obj).__name__}.{heads}={getattr(obj, heads)} must divide "
            f"{type(obj).__name__}.{width}={getattr(obj, width)}"
        )


class RedHeartBackboneConfig(PreTrainedConfig):
    r"""
    The shared transformer that reads the fused encoder tokens and pools one vector per task.

    hidden_size (`int`, defaults to 768): model width `d`; every encoder is projected to it.
    num_hidden_layers (`int`, defaults to 6): transformer layers.
    num_attention_heads (`int`, defaults to 12): attention heads; must divide `hidden_size`.
    intermediate_size (`int`, defaults to 3072): feed-forward width.
    hidden_act (`str`, defaults to `"gelu"`): feed-forward activation (any key of `transformers.activations.ACT2FN`).
    hidden_dropout_prob (`float`, defaults to 0.1): dropout on residual branches.
    attention_probs_dropout_prob (`float`, defaults to 0.1): dropout on attention weights.
    layer_norm_eps (`float`, defaults to 1e-12): layer-norm epsilon.
    max_fused_tokens (`int`, defaults to 1536): the most fused tokens (all encoders together, counted after
        `token_pool_stride`) one example may bring; longer inputs are rejected with a clear error (the pipeline
        chunks long texts instead).
    token_pool_stride (`int`, defaults to 1): fusion shortens each encoder's sequence before the backbone: the
        first token ([CLS] / <s>) stays as it is and the rest are mean-pooled over non-overlapping windows of
        this many tokens (padding excluded). Encoder states are already contextual, and the backbone, the task
        pooling and the analyzers' cross-attention all cost in proportion to the fused length, so a stride of
        `s` divides most of the model's compute by about `s`. 1 = no pooling. Parameter-free.
    tasks (`list[str]`): the task vectors the attention pooling produces, one per head/analyzer family.
    """

    model_type = "redheart_backbone"

    hidden_size: int = 768
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    layer_norm_eps: float = 1e-12
    max_fused_tokens: int = 1536
    token_pool_stride: int = 1
    tasks: list[str] = field(default_factory=lambda: list(MODEL_TASKS))

    def __post_init__(self, **kwargs: Any) -> None:
        _positive(
            self,
            (
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "intermediate_size",
                "max_fused_tokens",
                "token_pool_stride",
            ),
        )
        _divides(self, "hidden_size", "num_attention_heads")
        _probability(self, ("hidden_dropout_prob", "attention_probs_dropout_prob"))
        if tuple(self.tasks) != MODEL_TASKS:
            raise ValueError(
                f"RedHeartBackboneConfig.tasks must be emotion, bentham, regret, surd; got {self.tasks}"
            )
        super().__post_init__(**kwargs)

    def pooled_length(self, length: int) -> int:
        """Fused tokens an encoder sequence of ``length`` tokens becomes (see `token_pool_stride`)."""
        stride = self.token_pool_stride
        return length if stride == 1 or length <= 1 else 1 + -(-(length - 1) // stride)

    def encoder_tokens_for(self, fused_tokens: int) -> int:
        """The longest encoder sequence that pools to at most ``fused_tokens`` fused tokens."""
        return fused_tokens if fused_tokens <= 1 else 1 + (fused_tokens - 1) * self.token_pool_stride


class RedHeartHeadsConfig(PreTrainedConfig):
    r"""
    First-pass task heads that read one pooled task vector each.

    emotion_num_experts (`int`, defaults to 8): experts in the emotion mixture-of-experts.
    emotion_top_k (`int`, defaults to 2): experts each example is routed to (must be <= `emotion_num_experts`).
    emotion_expert_size (`int`, defaults to 1792): hidden width of one emotion expert MLP.
    router_aux_loss_coef (`float`, defaults to 0.01): weight of the load-balancing loss (Switch Transformer style).
    bentham_hidden_size (`int`, defaults to 5120): width of the Bentham trunk MLP.
    bentham_weight_hidden_size (`int`, defaults to 512): width of each element's weighting layer.
    bentham_weight_range (`list[float]`, defaults to `[0.1, 3.0]`): range the learned element weights are
        pushed into by the weight-range penalty.
    regret_hidden_size (`int`, defaults to 2816): width of the regret head's residual MLP blocks.
    regret_num_blocks (`int`, defaults to 5): residual MLP blocks in the regret head.
    surd_hidden_size (`int`, defaults to 2560): width of the SURD head's residual MLP blocks.
    surd_num_blocks (`int`, defaults to 4): residual MLP blocks in the SURD head.
    dropout (`float`, defaults to 0.1): dropout inside the heads.
    """

    model_type = "redheart_heads"

    emotion_num_experts: int = 8
    emotion_top_k: int = 2
    emotion_expert_size: int = 1792
    router_aux_loss_coef: float = 0.01
    bentham_hidden_size: int = 5120
    bentham_weight_hidden_size: int = 512
    bentham_weight_range: list[float] = field(default_factory=lambda: [0.1, 3.0])
    regret_hidden_size: int = 2816
    regret_num_blocks: int = 5
    surd_hidden_size: int = 2560
    surd_num_blocks: int = 4
    dropout: float = 0.1

    def __post_init__(self, **kwargs: Any) -> None:
        _positive(
            self,
            (
                "emotion_num_experts",
                "emotion_top_k",
                "emotion_expert_size",
                "bentham_hidden_size",
                "bentham_weight_hidden_size",
                "regret_hidden_size",
                "regret_num_blocks",
                "surd_hidden_size",
                "surd_num_blocks",
            ),
        )
        if self.emotion_top_k > self.emotion_num_experts:
            raise ValueError(
                f"RedHeartHeadsConfig.emotion_top_k={self.emotion_top_k} exceeds "
                f"emotion_num_experts={self.emotion_num_experts}"
            )
        low, high = (list(self.bentham_weight_range) + [None, None])[:2]
        if len(self.bentham_weight_range) != 2 or not (0 <= low < high):
            raise ValueError(
                f"RedHeartHeadsConfig.bentham_weight_range must be [low, high] with 0 <= low < high, "
                f"got {self.bentham_weight_range}"
            )
        _probability(self, ("dropout",))
        if self.router_aux_loss_coef < 0:
            raise ValueError(
                f"RedHeartHeadsConfig.router_aux_loss_coef must be >= 0, got {self.router_aux_loss_coef}"
            )
        super().__post_init__(**kwargs)


class RedHeartAnalyzersConfig(PreTrainedConfig):
    r"""
    Cross-task refinement: each analyzer cross-attends from its task query to the backbone tokens and to the
    summaries of all heads (and, for emotion, to the DSP tokens of audio/biosignals), then predicts its task again.

    num_attention_heads (`int`, defaults to 12): attention heads in every analyzer block.
    num_queries (`int`, defaults to 2): query tokens per analyzer (task vector plus learned offsets).
    emotion_layers / bentham_layers / regret_layers / surd_layers (`int`): cross-attention blocks per analyzer.
    emotion_intermediate_size / bentham_intermediate_size / regret_intermediate_size / surd_intermediate_size
        (`int`): feed-forward width of each analyzer's blocks.
    num_languages (`int`, defaults to 3): language embeddings of the emotion analyzer (0 en, 1 ko, 2 other).
    dropout (`float`, defaults to 0.1): dropout in the analyzer blocks.
    """

    model_type = "redheart_analyzers"

    num_attention_heads: int = 12
    num_queries: int = 2
    emotion_layers: int = 7
    emotion_intermediate_size: int = 3072
    bentham_layers: int = 6
    bentham_intermediate_size: int = 3328
    regret_layers: int = 7
    regret_intermediate_size: int = 3072
    surd_layers: int = 3
    surd_intermediate_size: int = 3840
    num_languages: int = 3
    dropout: float = 0.1

    def __post_init__(self, **kwargs: Any) -> None:
        _positive(
            self,
            (
                "num_attention_heads",
                "num_queries",
                "emotion_layers",
                "emotion_intermediate_size",
                "bentham_layers",
                "bentham_intermediate_size",
                "regret_layers",
                "regret_intermediate_size",
                "surd_layers",
                "surd_intermediate_size",
                "num_languages",
            ),
        )
        _probability(self, ("dropout",))
        super().__post_init__(**kwargs)


class RedHeartAuxiliaryConfig(PreTrainedConfig):
    r"""
    Auxiliary modules: the DSP encoder for audio/biosignal features, the learned-noise Kalman fusion of the
    head and analyzer observers, and the utility module (calibration, confidence, multi-task uncertainty).

    audio_num_mel_bins (`int`, defaults to 64): mel bins per audio frame (`redheart.analysis.signals`).
    biosignal_features (`int`, defaults to 16): length of the biosignal feature vector
        (EEG band powers, ECG heart rate/HRV, GSR tonic/phasic; `redheart.analysis.signals`).
    dsp_layers (`int`, defaults to 1): transformer layers over the audio frames.
    dsp_intermediate_size (`int`, defaults to 3072): feed-forward width of the DSP transformer layers.
    max_audio_frames (`int`, defaults to 3000): the most audio frames one example may bring.
    kalman_hidden_size (`int`, defaults to 2816): width of the observation-noise networks.
    utility_hidden_size (`int`, defaults to 3200): width of the confidence network.
    """

    model_type = "redheart_auxiliary"

    audio_num_mel_bins: int = 64
    biosignal_features: int = 16
    dsp_layers: int = 1
    dsp_intermediate_size: int = 3072
    max_audio_frames: int = 3000
    kalman_hidden_size: int = 2816
    utility_hidden_size: int = 3200

    def __post_init__(self, **kwargs: Any) -> None:
        _positive(
            self,
            (
                "audio_num_mel_bins",
                "biosignal_features",
                "dsp_layers",
                "dsp_intermediate_size",
                "max_audio_frames",
                "kalman_hidden_size",
                "utility_hidden_size",
            ),
        )
        super().__post_init__(**kwargs)


def _is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _check_per_label(
    name: str, label_spaces: dict[str, list[str]], given: Any, valid, requirement: str
) -> dict[str, list[float]]:
    """A dict of label space -> one number per label, each passing ``valid`` (``requirement`` says how)."""
    if not isinstance(given, dict):
        raise ValueError(f"RedHeartConfig.{name} must be a dict, got {type(given).__name__}")
    out = {}
    for task, values in given.items():
        if task not in label_spaces:
            raise ValueError(
                f"RedHeartConfig.{name} has unknown label space {task!r}; known: {sorted(label_spaces)}"
            )
        labels = label_spaces[task]
        if not isinstance(values, (list, tuple)) or len(values) != len(labels):
            size = len(values) if isinstance(values, (list, tuple)) else type(values).__name__
            raise ValueError(
                f"RedHeartConfig.{name}[{task!r}] must hold one value per label ({len(labels)}), got {size}"
            )
        bad = [labels[i] for i, v in enumerate(values) if not isinstance(v, (int, float)) or not valid(v)]
        if bad:
            raise ValueError(f"RedHeartConfig.{name}[{task!r}] must {requirement}; bad for labels {bad[:5]}")
        out[task] = [float(v) for v in values]
    return out


def _check_reference(values: Any) -> list[float]:
    """`utility_reference`: a non-decreasing list of at least 2 finite utilities (quantiles)."""
    ok = isinstance(values, (list, tuple)) and len(values) >= 2
    ok = ok and all(isinstance(v, (int, float)) and v == v and abs(v) != float("inf") for v in values)
    if not ok or any(b < a for a, b in zip(values, values[1:], strict=False)):
        raise ValueError(
            "RedHeartConfig.utility_reference must be a non-decreasing list of at least 2 finite numbers "
            "(quantiles of the utility over the reference scenarios)"
        )
    return [float(v) for v in values]


def _check_clause_shares(given: Any) -> dict[str, list[float]]:
    """`surd_clause_shares`: clause count ("2", "3", ...) -> four shares in [0, 1] summing to 1."""
    if not isinstance(given, dict) or not given:
        raise ValueError(
            "RedHeartConfig.surd_clause_shares must be a non-empty dict of clause count -> shares"
        )
    out = {}
    for key, shares in given.items():
        if not str(key).isdigit() or int(key) < 2:
            raise ValueError(
                f"RedHeartConfig.surd_clause_shares has key {key!r}; keys are clause counts of at least 2"
            )
        ok = isinstance(shares, (list, tuple)) and len(shares) == len(SURD_SHARES)
        ok = ok and all(isinstance(v, (int, float)) and 0.0 <= v <= 1.0 for v in shares)
        if not ok or abs(sum(shares) - 1.0) > 1e-3:
            raise ValueError(
                f"RedHeartConfig.surd_clause_shares[{key!r}] must hold {len(SURD_SHARES)} shares in [0, 1] "
                f"summing to 1 ({', '.join(SURD_SHARES)}), got {shares!r}"
            )
        out[str(int(key))] = [float(v) for v in shares]
    return dict(sorted(out.items(), key=lambda item: int(item[0])))


def normalise_encoder(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Validate one `encoders` entry and fill its defaults; raise `ValueError` naming the entry and key."""
    if not isinstance(spec, dict):
        raise ValueError(f"RedHeartConfig.encoders[{name!r}] must be a dict, got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(ENCODER_KEYS))
    if unknown:
        raise ValueError(
            f"RedHeartConfig.encoders[{name!r}] has unknown keys {unknown}; allowed: {list(ENCODER_KEYS)}"
        )
    out = {"revision": None, "enabled": True, "languages": ["*"], "max_length": 512, **spec}
    for key in ("adapter", "sha256"):
        if out.get(key) is not None and (not isinstance(out[key], str) or not out[key]):
            raise ValueError(f"RedHeartConfig.encoders[{name!r}].{key} must be a non-empty string or absent")
    if out.get("sha256") is not None and not _is_sha256(out["sha256"]):
        raise ValueError(
            f"RedHeartConfig.encoders[{name!r}].sha256 must be 64 hex digits, got {out['sha256']!r}"
        )
    if not isinstance(out.get("model_name_or_path"), str) or not out["model_name_or_path"]:
        raise ValueError(f"RedHeartConfig.encoders[{name!r}].model_name_or_path must be a non-empty string")
    hidden = out.get("hidden_size")
    if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden <= 0:
        raise ValueError(
            f"RedHeartConfig.encoders[{name!r}].hidden_size must be a positive integer, got {hidden!r}"
        )
    if not isinstance(out["max_length"], int) or out["max_length"] <= 0:
        raise ValueError(f"RedHeartConfig.encoders[{name!r}].max_length must be a positive integer")
    bad = [lang for lang in out["languages"] if lang not in KNOWN_LANGUAGES]
    if bad or not out["languages"]:
        raise ValueError(
            f"RedHeartConfig.encoders[{name!r}].languages must be a non-empty subset of {KNOWN_LANGUAGES}, got "
            f"{out['languages']}"
        )
    out["languages"] = list(out["languages"])
    out["enabled"] = bool(out["enabled"])
    return out


class RedHeartConfig(PreTrainedConfig):
    r"""
    Configuration of [`RedHeartModel`]. Presets: `RedHeartConfig.from_preset("tiny" | "small" | "330m")`.

    backbone (`RedHeartBackboneConfig` or `dict`): the shared transformer.
    heads (`RedHeartHeadsConfig` or `dict`): first-pass task heads.
    analyzers (`RedHeartAnalyzersConfig` or `dict`): cross-task refinement modules.
    auxiliary (`RedHeartAuxiliaryConfig` or `dict`): DSP encoder, Kalman fusion, utility module.
    encoders (`dict[str, dict]`): external encoders by name. Each entry: `model_name_or_path` (Hub id or local
        folder of any `AutoModel`), `hidden_size`, `revision` (optional), `enabled` (default True), `languages`
        (subset of `en`, `ko`, `*`: which texts the pipeline routes to it), `max_length` (tokens per window),
        `adapter` (optional: a LoRA adapter folder in peft's format, merged into the encoder at load; a relative
        path is taken from the model's folder), `sha256` (optional: the SHA-256 of the base checkpoint's weights,
        checked at load so that an adapter never runs on another base).
    use_heads / use_analyzers / use_auxiliary (`bool`): switch parts off; outputs then come from the parts that
        are on, and the output says which parts produced them. At least one of heads/analyzers must be on.
    emotion_labels (`list[str]`): the 28 GoEmotions labels (order of the emotion logits).
    kote_labels (`list[str]`): the 44 KOTE labels.
    acceptability_frameworks (`list[str]`): the ETHICS frameworks of `bentham.acceptability`.
    bentham_elements (`list[str]`): the 10 Bentham elements; `bentham_signs` gives each one's sign in the utility.
    focal_gamma (`float`, defaults to 2.0): focusing parameter of the focal loss for emotions.
    huber_delta (`float`, defaults to 0.1): transition point of the Huber loss for regret.
    surd_sum_weight (`float`, defaults to 1.0): weight of the sum-to-one penalty of the SURD shares.
    bentham_range_weight (`float`, defaults to 0.1): weight of the Bentham weight-range penalty.
    loss_weights (`dict[str, float]`): fixed per-task loss weights, used when `use_auxiliary` is off (the
        utility module's learned uncertainty weighting replaces them when it is on).
    trained_tasks (`list[str]`): the outputs training has supervised (set by `training/train.py`); every other
        output is reported as untrained in the output metadata and model card.
    initializer_range (`float`, defaults to 0.02): std of the normal initialiser.
    decision_thresholds (`dict[str, list[float]]`, optional): per-label decision thresholds in (0, 1) for the
        `emotion` (one per `emotion_labels`) and `kote` (one per `kote_labels`) label spaces, chosen on held-out
        data by training; the pipeline's predicted label sets use them. Absent: no predicted sets.
    positive_weights (`dict[str, list[float]]`, optional): the weight of a positive label in the training loss of
        the `emotion`, `kote` and `acceptability` label spaces (one per label / framework): rare labels weigh more,
        so they are not learned as "always absent". Set by training from the training data's label frequencies
        (`train.class_balance`). Absent: every label weighs 1.
    utility_reference (`list[float]`, optional): non-decreasing quantiles of the model's utility over reference
        scenarios (ETHICS utilitarianism); the pipeline reports a utility's percentile among them. Absent: no
        percentile.
    surd_clause_shares (`dict[str, list[float]]`, optional): clause count ("2", "3", ...) -> the median exact
        SURD shares (redundant, unique, synergistic, leak; renormalised to sum 1) of the distillation texts with
        that many clauses, fitted by `training/surd_head.py`. The pipeline reports them as `analysis.surd.shares`
        of a text with two or more clauses (a larger count takes the largest key). Absent: the neural head's
        shares.
    """

    model_type = "redheart"
    sub_configs_defaults = {
        "backbone": RedHeartBackboneConfig,
        "heads": RedHeartHeadsConfig,
        "analyzers": RedHeartAnalyzersConfig,
        "auxiliary": RedHeartAuxiliaryConfig,
    }

    backbone: dict | RedHeartBackboneConfig | None = None
    heads: dict | RedHeartHeadsConfig | None = None
    analyzers: dict | RedHeartAnalyzersConfig | None = None
    auxiliary: dict | RedHeartAuxiliaryConfig | None = None
    encoders: dict[str, dict] = field(default_factory=lambda: copy.deepcopy(PRODUCTION_ENCODERS))
    use_heads: bool = True
    use_analyzers: bool = True
    use_auxiliary: bool = True
    emotion_labels: list[str] = field(default_factory=lambda: list(GOEMOTIONS_LABELS))
    kote_labels: list[str] = field(default_factory=lambda: list(KOTE_LABELS))
    acceptability_frameworks: list[str] = field(default_factory=lambda: list(ACCEPTABILITY_FRAMEWORKS))
    bentham_elements: list[str] = field(default_factory=lambda: list(BENTHAM_ELEMENTS))
    bentham_signs: list[float] = field(default_factory=lambda: list(BENTHAM_SIGNS))
    focal_gamma: float = 2.0
    huber_delta: float = 0.1
    surd_sum_weight: float = 1.0
    bentham_range_weight: float = 0.1
    loss_weights: dict[str, float] = field(
        default_factory=lambda: {
            "emotion": 1.0,
            "kote": 1.0,
            "sentiment": 1.0,
            "utility": 1.0,
            "acceptability": 1.0,
            "regret": 1.0,
            "surd": 1.0,
            "confidence": 0.1,
        }
    )
    trained_tasks: list[str] = field(default_factory=list)
    initializer_range: float = 0.02
    decision_thresholds: dict[str, list[float]] | None = None
    positive_weights: dict[str, list[float]] | None = None
    utility_reference: list[float] | None = None
    surd_clause_shares: dict[str, list[float]] | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        _check_dtype_name(self.dtype if self.dtype is not None else kwargs.get("torch_dtype"))
        super().__post_init__(**kwargs)  # builds the sub-configs first so they can be checked below
        if not (self.use_heads or self.use_analyzers):
            raise ValueError("RedHeartConfig: at least one of use_heads / use_analyzers must be True")
        if not isinstance(self.encoders, dict) or not self.encoders:
            raise ValueError("RedHeartConfig.encoders must be a non-empty dict of name -> encoder entry")
        self.encoders = {
            str(name): normalise_encoder(str(name), spec) for name, spec in self.encoders.items()
        }
        if not any(spec["enabled"] for spec in self.encoders.values()):
            raise ValueError("RedHeartConfig.encoders: at least one encoder must be enabled")
        for name in ("emotion_labels", "kote_labels", "acceptability_frameworks", "bentham_elements"):
            check_unique(f"RedHeartConfig.{name}", getattr(self, name))
        if len(self.bentham_signs) != len(self.bentham_elements) or any(
            s not in (1, -1) for s in self.bentham_signs
        ):
            raise ValueError(
                "RedHeartConfig.bentham_signs must hold +1/-1, one per entry of bentham_elements"
            )
        unknown_weights = sorted(set(self.loss_weights) - set(TASK_LOSSES))
        if unknown_weights:
            raise ValueError(
                f"RedHeartConfig.loss_weights has unknown tasks {unknown_weights}; known: {TASK_LOSSES}"
            )
        unknown_tasks = sorted(set(self.trained_tasks) - set(TASK_LOSSES))
        if unknown_tasks:
            raise ValueError(
                f"RedHeartConfig.trained_tasks has unknown tasks {unknown_tasks}; known: {TASK_LOSSES}"
            )
        if self.focal_gamma < 0 or self.huber_delta <= 0:
            raise ValueError("RedHeartConfig.focal_gamma must be >= 0 and huber_delta > 0")
        if self.decision_thresholds is not None:
            spaces = {"emotion": list(self.emotion_labels), "kote": list(self.kote_labels)}
            self.decision_thresholds = _check_per_label(
                "decision_thresholds",
                spaces,
                self.decision_thresholds,
                lambda v: 0.0 < v < 1.0,
                "lie in (0, 1)",
            )
        if self.positive_weights is not None:
            spaces = {
                "emotion": list(self.emotion_labels),
                "kote": list(self.kote_labels),
                "acceptability": list(self.acceptability_frameworks),
            }
            self.positive_weights = _check_per_label(
                "positive_weights", spaces, self.positive_weights, lambda v: 0.0 < v < 1e4, "lie in (0, 1e4)"
            )
        if self.utility_reference is not None:
            self.utility_reference = _check_reference(self.utility_reference)
        if self.surd_clause_shares is not None:
            self.surd_clause_shares = _check_clause_shares(self.surd_clause_shares)

    @property
    def custom_pipelines(self) -> dict:
        """Remote-code pipelines of config.json, minus the tasks registered in this process.

        transformers' `pipeline()` lets a config's `custom_pipelines` override registered tasks and then demands
        `trust_remote_code=True`; with the library installed (which registers `ethics-emotion`), the library's
        own pipeline must win. The stored value is saved unchanged; without the library nothing is hidden.
        """
        from transformers.pipelines import PIPELINE_REGISTRY

        stored = self.__dict__.get("custom_pipelines") or {}
        return {task: info for task, info in stored.items() if task not in PIPELINE_REGISTRY.supported_tasks}

    @custom_pipelines.setter
    def custom_pipelines(self, value: dict) -> None:
        self.__dict__["custom_pipelines"] = value

    @property
    def hidden_size(self) -> int:
        """Model width (the backbone's), exposed for tools that look for `config.hidden_size`."""
        return self.backbone.hidden_size

    @property
    def enabled_encoders(self) -> list[str]:
        """Names of the encoders that are switched on, in config order (the fusion's type-embedding order)."""
        return [name for name, spec in self.encoders.items() if spec["enabled"]]

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> RedHeartConfig:
        """Build a preset (`tiny`, `small`, `330m`); keyword overrides replace top-level fields."""
        kwargs = preset_kwargs(name)
        kwargs.update(overrides)
        return cls(**kwargs)
