"""The ``ethics-emotion`` pipeline and its async ``ProductionOrchestrator`` (encoders: ``redheart.encoders``)."""

from .ethics_emotion import TASK, EthicsEmotionPipeline
from .orchestrator import ProductionConfig, ProductionOrchestrator
from .text import InputError, InputTypeError, UnservedLanguageError

__all__ = [
    "TASK",
    "EthicsEmotionPipeline",
    "InputError",
    "InputTypeError",
    "ProductionConfig",
    "ProductionOrchestrator",
    "UnservedLanguageError",
]
