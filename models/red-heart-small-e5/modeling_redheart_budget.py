"""The parameter budget of docs/DESIGN.md, measured from the real modules."""

from __future__ import annotations

import torch

from .configuration_redheart_tasks import MODEL_TASKS

#: Where each counted module lives in `RedHeartModel`, grouped as in docs/DESIGN.md's diagram.
GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "backbone": {"fusion": ("fusion.",), "transformer": ("backbone.",)},
    "heads": {part: (f"heads.{part}.",) for part in MODEL_TASKS},
    "analyzers": {part: (f"analyzers.{part}.",) for part in MODEL_TASKS},
    "auxiliary": {"dsp": ("dsp.",), "kalman": ("kalman.",), "utility": ("utility.",)},
}


def count_by_prefix(model: torch.nn.Module) -> dict[str, dict[str, int]]:
    counts = {group: dict.fromkeys(parts, 0) for group, parts in GROUPS.items()}
    for name, param in model.named_parameters():
        for group, parts in GROUPS.items():
            for part, prefixes in parts.items():
                if name.startswith(prefixes):
                    counts[group][part] += param.numel()
    return counts


def parameter_breakdown(config, encoder_parameters: dict[str, int] | None = None) -> dict:
    """Count parameters per part (built on the meta device: no memory, exact counts).

    Returns `{"groups": {group: {"total": n, part: n, ...}}, "own_total": n, "encoders": {...}, "system_total": n}`.
    `encoder_parameters` (name -> count) adds the external encoders to the system total.
    """
    from .modeling_redheart_modeling import RedHeartModel

    with torch.device("meta"):
        model = RedHeartModel(config)
    counts = count_by_prefix(model)
    total = sum(p.numel() for p in model.parameters())
    counted = sum(sum(parts.values()) for parts in counts.values())
    groups = {g: {"total": sum(parts.values()), **parts} for g, parts in counts.items()}
    encoders = dict(encoder_parameters or {})
    return {
        "groups": groups,
        "other": total - counted,
        "own_total": total,
        "encoders": encoders,
        "system_total": total + sum(encoders.values()),
    }


def format_breakdown(breakdown: dict) -> str:
    """A plain-text table (millions of parameters) for the README and the CLI."""
    lines = [f"{'part':<28}{'params (M)':>12}"]
    for group, parts in breakdown["groups"].items():
        lines.append(f"{group:<28}{parts['total'] / 1e6:>12.2f}")
        lines += [f"  {part:<26}{n / 1e6:>12.2f}" for part, n in parts.items() if part != "total"]
    lines.append(f"{'own model total':<28}{breakdown['own_total'] / 1e6:>12.2f}")
    for name, n in breakdown["encoders"].items():
        lines.append(f"  encoder {name:<18}{n / 1e6:>12.2f}")
    if breakdown["encoders"]:
        lines.append(f"{'system total':<28}{breakdown['system_total'] / 1e6:>12.2f}")
    return "\n".join(lines)


def base_encoder_parameters() -> dict[str, int]:
    """Exact parameter counts of the production encoders' architectures (built on the meta device)."""
    from transformers import AutoConfig, AutoModel

    from .configuration_redheart_presets import BASE_ENCODER_SHAPES

    counts = {}
    for name, (model_type, kwargs) in BASE_ENCODER_SHAPES.items():
        with torch.device("meta"):
            model = AutoModel.from_config(AutoConfig.for_model(model_type, **kwargs))
        counts[name] = sum(p.numel() for p in model.parameters())
    return counts
