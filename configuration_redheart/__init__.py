"""Configuration of Red Heart: `RedHeartConfig`, its sub-configs, label spaces and presets."""

from .config import (
    TASK_LOSSES,
    RedHeartAnalyzersConfig,
    RedHeartAuxiliaryConfig,
    RedHeartBackboneConfig,
    RedHeartConfig,
    RedHeartHeadsConfig,
)
from .presets import PRESET_NAMES, PRODUCTION_ENCODERS

__all__ = [
    "PRESET_NAMES",
    "PRODUCTION_ENCODERS",
    "TASK_LOSSES",
    "RedHeartAnalyzersConfig",
    "RedHeartAuxiliaryConfig",
    "RedHeartBackboneConfig",
    "RedHeartConfig",
    "RedHeartHeadsConfig",
]
