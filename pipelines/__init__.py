"""The ``ethics-emotion`` pipeline, external-encoder loading and the async ``ProductionOrchestrator``."""

from .encoders import ENCODER_ALIASES, EncoderBank, EncoderConfigError, EncoderLoadError, FeatureCache
from .ethics_emotion import TASK, EthicsEmotionPipeline
from .orchestrator import ProductionConfig, ProductionOrchestrator
from .text import InputError, InputTypeError, UnservedLanguageError

__all__ = [
    "ENCODER_ALIASES",
    "TASK",
    "EncoderBank",
    "EncoderConfigError",
    "EncoderLoadError",
    "EthicsEmotionPipeline",
    "FeatureCache",
    "InputError",
    "InputTypeError",
    "ProductionConfig",
    "ProductionOrchestrator",
    "UnservedLanguageError",
]
