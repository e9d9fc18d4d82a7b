"""One route's encoders and the Red Heart model as a single module with flat tensor inputs and outputs.

An exported graph cannot take dicts: its inputs are, per encoder of the route (config order),
``<name>_input_ids`` and ``<name>_attention_mask`` (int64 ``[batch, tokens]``), then ``language_ids``
(int64 ``[batch]``); its outputs are the per-window tensors the pipeline reads
(:func:`redheart.pipelines.result.window_outputs`), the absent ones left out.
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
    return [f"{name}_{part}" for name in route for part in ("input_ids", "attention_mask")] + ["language_ids"]


class InferenceGraph(nn.Module):
    """Token ids of one route's encoders -> the Red Heart model's per-window outputs, in one forward."""

    def __init__(self, model: nn.Module, encoders: Mapping[str, nn.Module], route: Sequence[str]) -> None:
        super().__init__()
        self.route = tuple(route)
        self.encoders = nn.ModuleDict({name: encoders[name] for name in self.route})
        self.model = model
        self.output_names: list[str] | None = None

    def model_output(self, *inputs: torch.Tensor) -> Any:
        """The ``RedHeartOutput`` of the model on the route's encoder states (inputs: see the module doc)."""
        states, masks = {}, {}
        for i, name in enumerate(self.route):
            ids, mask = inputs[2 * i], inputs[2 * i + 1]
            states[name] = self.encoders[name](input_ids=ids, attention_mask=mask).last_hidden_state
            masks[name] = mask
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
