"""Configuration of Red Heart: `RedHeartConfig`, its sub-configs, label spaces and presets."""

from .configuration_redheart_config import RedHeartAnalyzersConfig, RedHeartAuxiliaryConfig, RedHeartBackboneConfig, RedHeartConfig, RedHeartHeadsConfig
from .configuration_redheart_presets import PRESET_NAMES, PRODUCTION_ENCODERS
from .configuration_redheart_tasks import IGNORE_INDEX, MODEL_TASKS, TASK_LOSSES

__all__ = [
    "IGNORE_INDEX",
    "MODEL_TASKS",
    "PRESET_NAMES",
    "PRODUCTION_ENCODERS",
    "TASK_LOSSES",
    "RedHeartAnalyzersConfig",
    "RedHeartAuxiliaryConfig",
    "RedHeartBackboneConfig",
    "RedHeartConfig",
    "RedHeartHeadsConfig",
]
