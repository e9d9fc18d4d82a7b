"""Red Heart: ethics- and emotion-aware text analysis (Korean + English) as a Hugging Face model.

Importing `redheart` registers `RedHeartConfig`/`RedHeartModel` with transformers' Auto classes and the
`ethics-emotion` task with transformers' pipeline registry (`pipeline("ethics-emotion", model=...)`).
"""

from transformers import AutoConfig, AutoModel

from .configuration_redheart import RedHeartConfig
from .modeling_redheart import RedHeartModel, RedHeartOutput, parameter_breakdown
from .pipelines import EthicsEmotionPipeline, ProductionConfig, ProductionOrchestrator

# Register only as the installed library: pytest imports the repository root by path under another name (the
# root is this package's folder), and that copy must not replace the library's classes in the Auto mappings.
if __name__ == "redheart":
    AutoConfig.register(RedHeartConfig.model_type, RedHeartConfig, exist_ok=True)
    AutoModel.register(RedHeartConfig, RedHeartModel, exist_ok=True)
    from .pipelines.registration import register_pipeline

    register_pipeline()

__version__ = "0.1.0"
__all__ = [
    "EthicsEmotionPipeline",
    "ProductionConfig",
    "ProductionOrchestrator",
    "RedHeartConfig",
    "RedHeartModel",
    "RedHeartOutput",
    "parameter_breakdown",
]
