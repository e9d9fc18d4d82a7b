"""Training configuration: YAML files (``training/configs/{tiny,small,330m}.yaml``) onto strict dataclasses.

A YAML file has up to six sections::

    model:     which RedHeartConfig (a preset plus top-level overrides, e.g. ``encoders``)
    data:      redheart.training.data.DataConfig (sets, weights, sample caps, seed, data_dir)
    features:  the frozen-encoder feature cache (cache folder, max_length, dtype, encoding batch size)
    lora:      LoRA adapters on the encoders instead of cached features (``enabled: true`` or ``--lora``)
    train:     optimiser, schedule, batch sizes, precision, checkpointing, evaluation, output folder
    eval:      sample caps and binning of the final evaluation (training/evaluate.py)

Every key is checked: an unknown key raises :class:`ConfigError` naming the file, the dotted key and the keys
that are allowed there, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Folder of the packaged configs (``redheart/training/configs``).
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SECTIONS = ("model", "data", "features", "lora", "train", "eval")


class ConfigError(ValueError):
    """A training config is invalid (the message names the file and the key)."""


@dataclass
class ModelSection:
    """``preset``: tiny/small/330m; ``config``: top-level `RedHeartConfig` fields that replace the preset's."""

    preset: str = "small"
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class FeatureSection:
    """Frozen encoders: their last hidden states are computed once per (encoder, revision, max_length, dtype)
    and stored with ``datasets`` ``save_to_disk`` under ``cache_dir`` (default ``$RH_CACHE_DIR/features`` or
    ``~/.cache/redheart/features``). ``max_length`` None = each encoder entry's own ``max_length``."""

    cache_dir: str | None = None
    max_length: int | None = None
    dtype: str = "float16"
    batch_size: int = 64


@dataclass
class LoraSection:
    """LoRA (peft) adapters on every enabled encoder; the encoders then run in every training step."""

    enabled: bool = False
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["query", "value"])
    #: Token window of the training batches (None: ``features.max_length``, then the encoder's own). Validation
    #: always reads the inference window, so that the best checkpoint is chosen on what the pipeline sees.
    max_length: int | None = None


@dataclass
class TrainSection:
    output_dir: str = "runs/redheart"
    seed: int = 42
    #: Tasks to supervise; None = every task some selected data set labels (see ``SET_TASKS``).
    tasks: list[str] | None = None
    #: Held-out part of each set's train side (by group): periodic evaluation, best checkpoint, thresholds.
    validation_fraction: float = 0.05
    validation_max_per_set: int | None = 500
    optim: str = "adamw"
    lr: float = 1e-4
    #: Learning rate of the task heads and analyzers (``HEAD_MODULES``) as a multiple of ``lr``. The heads start
    #: from scratch on top of the backbone; at the backbone's rate they stay far behind a linear probe on the same
    #: frozen features (GoEmotions EN dev macro-F1 0.175 after 1,500 steps at 1x, 0.310 at 10x; DESIGN.md).
    head_lr_multiplier: float = 1.0
    #: Positive-label weights of the emotion, KOTE and acceptability losses from the training data's label
    #: frequencies: ``none`` or ``sqrt`` (see ``training/class_balance.py``); stored in the model's config.
    class_balance: str = "none"
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_ratio: float = 0.05
    epochs: float = 1.0
    max_steps: int | None = None
    micro_batch_size: int = 32
    grad_accum: int = 1
    #: Batches of examples of similar length (less padding): each epoch's permutation is cut into chunks of 50
    #: global batches, each chunk sorted by length and cut into batches, and the batches shuffled (seeded).
    group_by_length: bool = True
    max_grad_norm: float = 1.0
    #: "auto" = bf16 autocast where the device supports it (CUDA with bf16), else full precision;
    #: "bf16" forces it (also on CPU), "no" switches it off.
    mixed_precision: str = "auto"
    activation_checkpointing: bool = False
    eval_steps: int | None = 200
    save_steps: int | None = 200
    save_total_limit: int = 2
    logging_steps: int = 20
    metric_for_best: str = "val_score"
    progress: bool = True
    #: Total rows of the training mixture (``--samples N``); None = the mixture's own length.
    samples: int | None = None
    debug: bool = False


@dataclass
class EvalSection:
    #: Rows per evaluation set (pairs for ETHICS utilitarianism); None = all.
    max_per_set: int | None = None
    ece_bins: int = 15
    batch_size: int = 128


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: dict[str, Any] = field(default_factory=dict)
    features: FeatureSection = field(default_factory=FeatureSection)
    lora: LoraSection = field(default_factory=LoraSection)
    train: TrainSection = field(default_factory=TrainSection)
    eval: EvalSection = field(default_factory=EvalSection)
    source: str = "<defaults>"

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("source")
        return out


_SECTION_TYPES = {
    "model": ModelSection,
    "features": FeatureSection,
    "lora": LoraSection,
    "train": TrainSection,
    "eval": EvalSection,
}


def _fill(instance: Any, values: Mapping[str, Any], where: str, source: str) -> None:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{source}: section '{where}' must be a mapping, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(instance)}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(
                f"{source}: unknown key '{where}.{key}'; keys allowed in '{where}': {sorted(names)}"
            )
        setattr(instance, key, value)


def _check(cfg: TrainConfig) -> None:
    src, t = cfg.source, cfg.train
    from ..configuration_redheart.presets import PRESET_NAMES

    if cfg.model.preset not in PRESET_NAMES:
        raise ConfigError(
            f"{src}: model.preset must be one of {list(PRESET_NAMES)}, got {cfg.model.preset!r}"
        )
    if t.optim not in ("adamw", "adamw8bit"):
        raise ConfigError(f"{src}: train.optim must be 'adamw' or 'adamw8bit', got {t.optim!r}")
    if t.mixed_precision not in ("auto", "bf16", "no"):
        raise ConfigError(f"{src}: train.mixed_precision must be auto, bf16 or no, got {t.mixed_precision!r}")
    if cfg.features.dtype not in ("float16", "float32"):
        raise ConfigError(f"{src}: features.dtype must be float16 or float32, got {cfg.features.dtype!r}")
    for name in ("micro_batch_size", "grad_accum", "logging_steps", "save_total_limit"):
        value = getattr(t, name)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{src}: train.{name} must be a positive integer, got {value!r}")
    if not 0 < float(t.lr) < 1:
        raise ConfigError(f"{src}: train.lr must be in (0, 1), got {t.lr!r}")
    from .class_balance import CLASS_BALANCE_MODES

    if t.class_balance not in CLASS_BALANCE_MODES:
        raise ConfigError(
            f"{src}: train.class_balance must be one of {CLASS_BALANCE_MODES}, got {t.class_balance!r}"
        )
    if not 0 < float(t.head_lr_multiplier) <= 1000 or float(t.lr) * float(t.head_lr_multiplier) >= 1:
        raise ConfigError(
            f"{src}: train.head_lr_multiplier must be in (0, 1000] with lr * multiplier < 1, "
            f"got {t.head_lr_multiplier!r} (lr {t.lr!r})"
        )
    if not 0 <= float(t.warmup_ratio) < 1:
        raise ConfigError(f"{src}: train.warmup_ratio must be in [0, 1), got {t.warmup_ratio!r}")
    if not 0 < float(t.validation_fraction) < 1:
        raise ConfigError(
            f"{src}: train.validation_fraction must be in (0, 1), got {t.validation_fraction!r}"
        )
    if t.max_steps is not None and (not isinstance(t.max_steps, int) or t.max_steps < 1):
        raise ConfigError(f"{src}: train.max_steps must be a positive integer or null, got {t.max_steps!r}")
    if t.metric_for_best not in ("val_score", "val_loss"):
        raise ConfigError(
            f"{src}: train.metric_for_best must be val_score or val_loss, got {t.metric_for_best!r}"
        )
    if t.tasks is not None:
        from ..configuration_redheart.tasks import TASK_LOSSES

        bad = [x for x in t.tasks if x not in TASK_LOSSES or x == "confidence"]
        if bad:
            raise ConfigError(
                f"{src}: train.tasks has unknown task(s) {bad}; known: {list(TASK_LOSSES[:-1])}"
            )
    try:
        from .data import DataConfig

        DataConfig.from_dict(cfg.data)
    except ValueError as exc:
        raise ConfigError(f"{src}: section 'data': {exc}") from exc
    build_model_config(cfg)


def config_from_dict(raw: Mapping[str, Any] | None, source: str = "<dict>") -> TrainConfig:
    """Build a :class:`TrainConfig` from a mapping (a parsed YAML file); unknown keys raise ConfigError."""
    raw = dict(raw or {})
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {unknown}; allowed sections: {list(SECTIONS)}")
    cfg = TrainConfig(source=source)
    for section, kind in _SECTION_TYPES.items():
        instance = kind()
        _fill(instance, raw.get(section) or {}, section, source)
        setattr(cfg, section, instance)
    data = raw.get("data") or {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: section 'data' must be a mapping, got {type(data).__name__}")
    cfg.data = dict(data)
    _check(cfg)
    return cfg


def resolve_config_path(path: str | os.PathLike) -> Path:
    """A config path as given, or the name of a packaged config (``small`` -> ``configs/small.yaml``)."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    packaged = CONFIG_DIR / (p.name if p.suffix in (".yaml", ".yml") else f"{p.name}.yaml")
    if packaged.is_file() and (len(p.parts) == 1 or p.parent.name == "configs"):
        return packaged
    raise ConfigError(
        f"training config {str(p)!r} does not exist; give a YAML file or one of the packaged configs "
        f"{sorted(x.stem for x in CONFIG_DIR.glob('*.yaml'))}"
    )


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Read and validate a YAML training config (see the module docstring)."""
    import yaml

    p = resolve_config_path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    if raw is not None and not isinstance(raw, Mapping):
        raise ConfigError(f"{p}: the top level must be a mapping of sections {list(SECTIONS)}")
    return config_from_dict(raw, source=str(p))


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Apply ``section.key=value`` overrides (values parsed as YAML), re-validating the result."""
    import yaml

    raw = cfg.to_dict()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value (e.g. train.lr=3e-4)")
        dotted, value = item.split("=", 1)
        parts = dotted.strip().split(".")
        if parts[0] not in SECTIONS or len(parts) < 2:
            raise ConfigError(f"override {item!r}: the key must start with one of {list(SECTIONS)}")
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = yaml.safe_load(value)
    return config_from_dict(raw, source=f"{cfg.source} (with overrides {overrides})")


def build_model_config(cfg: TrainConfig):
    """The `RedHeartConfig` of a training config (preset + overrides)."""
    from ..configuration_redheart import RedHeartConfig

    known = {f.name for f in dataclasses.fields(RedHeartConfig)}
    unknown = sorted(set(cfg.model.config) - known)
    if unknown:
        raise ConfigError(
            f"{cfg.source}: unknown key(s) {['model.config.' + k for k in unknown]}; RedHeartConfig fields: "
            f"{sorted(k for k in known if not k.startswith('_'))}"
        )
    try:
        return RedHeartConfig.from_preset(cfg.model.preset, **dict(cfg.model.config))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cfg.source}: section 'model': {exc}") from exc
