"""The modules exported to ONNX: one graph per encoder, one per route for the Red Heart model on their states.

Encoders and model are separate graphs so that each goes through the exporter that serves it best: an encoder
through the TorchScript exporter, whose graph onnxruntime's transformer optimizer fuses into ``Attention`` /
``SkipLayerNormalization`` / ``BiasGelu`` kernels (:mod:`.encoder_export`; the ``torch.export`` graph matches none of
its patterns), the model through ``torch.export`` (its data-dependent parts need it). An exported graph cannot
take dicts, so inputs and outputs are flat:

* :class:`EncoderGraph`: ``input_ids``, ``attention_mask`` (int64 ``[batch, tokens]``) -> ``hidden_states``;
* :class:`ModelGraph`: per encoder of the route (config order) ``<name>_hidden_states`` (float32
  ``[batch, tokens, hidden]``) and ``<name>_attention_mask``, then ``language_ids`` (int64 ``[batch]``) -> the
  per-window tensors the pipeline reads (:func:`redheart.pipelines.result.window_outputs`), absent ones left out.

:class:`InferenceGraph` chains them in torch: the reference the exported graphs are checked against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..pipelines.result import window_outputs
from ..pipelines.text import route_encoders

#: Languages whose routes are exported (``"other"`` text is read by every encoder).
ROUTED_LANGUAGES = ("en", "ko", "other")
#: Input and output names of an encoder graph.
ENCODER_INPUTS = ("input_ids", "attention_mask")
ENCODER_OUTPUT = "hidden_states"


def route_key(route: Sequence[str]) -> str:
    """File-name key of a route: its encoder names joined by ``+``."""
    return "+".join(route)


def model_routes(encoder_languages: Mapping[str, list[str]]) -> list[tuple[str, ...]]:
    """Every route the pipeline can take for this model: per language (``routing="language"``) and all encoders."""
    routes = {tuple(encoder_languages)}
    for language in ROUTED_LANGUAGES:
        route, _ = route_encoders(language, dict(encoder_languages), "language", "all")
        routes.add(route)
    return sorted(routes, key=lambda r: (len(r), r))


def input_names(route: Sequence[str]) -> list[str]:
    """The token inputs of a route, as the runner is fed: per encoder ids and mask, then ``language_ids``."""
    return [f"{name}_{part}" for name in route for part in ENCODER_INPUTS] + ["language_ids"]


def model_input_names(route: Sequence[str]) -> list[str]:
    """The inputs of a route's model graph: per encoder its states and mask, then ``language_ids``."""
    return [f"{name}_{part}" for name in route for part in (ENCODER_OUTPUT, "attention_mask")] + [
        "language_ids"
    ]


class EncoderGraph(nn.Module):
    """One encoder: token ids and mask -> its last hidden states."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class ModelGraph(nn.Module):
    """The Red Heart model on one route's encoder states (inputs: see the module doc)."""

    def __init__(self, model: nn.Module, route: Sequence[str]) -> None:
        super().__init__()
        self.route = tuple(route)
        self.model = model
        self.output_names: list[str] | None = None

    def model_output(self, *inputs: torch.Tensor) -> Any:
        """The ``RedHeartOutput`` of the model."""
        states = {name: inputs[2 * i] for i, name in enumerate(self.route)}
        masks = {name: inputs[2 * i + 1] for i, name in enumerate(self.route)}
        return self.model(encoder_hidden_states=states, encoder_attention_mask=masks, language_ids=inputs[-1])

    def named_outputs(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The present outputs by name."""
        output = window_outputs(self.model_output(*inputs))
        return {name: value for name, value in output.items() if value is not None}

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        named = self.named_outputs(*inputs)
        if self.output_names is None:
            self.output_names = list(named)
        return tuple(named[name] for name in self.output_names)


class InferenceGraph(nn.Module):
    """A route's encoders and the model chained in torch: token inputs (:func:`input_names`) -> outputs."""

    def __init__(self, model: nn.Module, encoders: Mapping[str, nn.Module], route: Sequence[str]) -> None:
        super().__init__()
        self.route = tuple(route)
        self.encoders = nn.ModuleDict({name: EncoderGraph(encoders[name]) for name in self.route})
        self.model = ModelGraph(model, route)

    def model_inputs(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        """The model graph's inputs for token inputs: each encoder's states beside its mask, then language ids."""
        out: list[torch.Tensor] = []
        for i, name in enumerate(self.route):
            ids, mask = inputs[2 * i], inputs[2 * i + 1]
            out.extend([self.encoders[name](ids, mask), mask])
        return [*out, inputs[-1]]

    def model_output(self, *inputs: torch.Tensor) -> Any:
        return self.model.model_output(*self.model_inputs(*inputs))

    def named_outputs(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.named_outputs(*self.model_inputs(*inputs))
