"""`RedHeartModel` and its parts: fusion, backbone, heads, analyzers, auxiliary, losses, outputs."""

from .budget import parameter_breakdown
from .modeling import RedHeartModel, RedHeartPreTrainedModel
from .outputs import RedHeartOutput

__all__ = ["RedHeartModel", "RedHeartOutput", "RedHeartPreTrainedModel", "parameter_breakdown"]
