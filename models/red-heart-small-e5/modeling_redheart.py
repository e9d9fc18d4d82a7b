"""`RedHeartModel` and its parts: fusion, backbone, heads, analyzers, auxiliary, losses, outputs."""

from .modeling_redheart_budget import parameter_breakdown
from .modeling_redheart_modeling import RedHeartModel, RedHeartPreTrainedModel
from .modeling_redheart_outputs import RedHeartOutput

__all__ = ["RedHeartModel", "RedHeartOutput", "RedHeartPreTrainedModel", "parameter_breakdown"]
