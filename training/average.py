"""Weight averaging of trained Red Heart models from one training lineage (a "model soup").

Consecutive stages of one recipe -- each trained on from the previous one's release -- end near one another in
weight space, and their element-wise mean is often better than each of them (Wortsman et al. 2022, "Model soups:
averaging weights of multiple fine-tuned models improves accuracy without increasing inference time"). This
averages the Red Heart weights (``model.safetensors``) and every encoder's LoRA adapter, and writes a model folder
that ``python -m redheart.training.release --model-dir`` ships like any trained one (SURD step, calibration of
the thresholds on the averaged model, evaluation)::

    python -m redheart.training.average --out runs/soup runs/finetune-e5-s5/best runs/finetune-e5-s6/best

Checked before anything is written: every source is a Red Heart model of one architecture
(:func:`.checkpoint.check_architecture`) over the same encoder bases, with the same tensors; LoRA adapters have one
peft configuration. A LoRA layer's update is ``(alpha / r) B A``, and the product of the mean ``A`` and mean ``B``
is not the mean of the products; for adapters of one lineage the difference is small, for adapters trained apart
it is not. It is measured (the relative Frobenius error of the averaged update against the mean update, over all
adapted layers) and the average is refused above ``max_update_error``, naming the encoder.

The folder's other files are the last model's: its config's thresholds, utility reference and SURD table describe
that model, not the average, until ``release`` (or ``calibrate`` and ``surd_head``) computes them again; the last
model's SURD-step record is left out for that reason.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers.utils import SAFE_WEIGHTS_NAME as WEIGHTS  # save_pretrained's weights file

from ..encoders.adapters import ADAPTER_CONFIG, ADAPTER_WEIGHTS, lora_pairs, read_adapter
from ..encoders.errors import EncoderLoadError
from .calibrate import RECORD as CALIBRATION_RECORD
from .checkpoint import CheckpointError, check_architecture
from .surd_head import RECORD as SURD_RECORD

RECORD = "redheart_average.json"
#: Largest relative error of an averaged LoRA update that is accepted (one lineage measured 0.0008-0.005).
MAX_UPDATE_ERROR = 0.02
#: Encoder-entry fields that must agree: the base the adapters were trained on, and whether there is one.
ENCODER_FIELDS = ("model_name_or_path", "revision", "sha256", "adapter", "hidden_size")
#: LoRA settings that must agree: the tensors' shapes, their scale and the layers they adapt.
ADAPTER_FIELDS = ("peft_type", "r", "lora_alpha", "use_rslora", "target_modules", "fan_in_fan_out", "bias")


class AverageError(ValueError):
    """The models cannot be averaged (another architecture, base, tensor set or adapter lineage)."""


def normalised_weights(count: int, weights: Sequence[float] | None) -> list[float]:
    """Each source's share of the mean: ``weights`` (positive, one per source) scaled to sum 1; equal by default."""
    if count < 2:
        raise AverageError(f"averaging needs at least two models, got {count}")
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count or not all(math.isfinite(w) and w > 0 for w in weights):
        raise AverageError(f"weights must be {count} positive numbers, one per model, got {list(weights)}")
    total = sum(weights)
    return [w / total for w in weights]


def adapter_fields(config: dict[str, Any]) -> dict[str, Any]:
    """The peft settings that decide what an adapter's tensors mean (:data:`ADAPTER_FIELDS`)."""
    fields = {key: config.get(key) for key in ADAPTER_FIELDS}
    fields["target_modules"] = sorted(fields["target_modules"] or [])
    return fields


def _config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.is_file() or not (folder / WEIGHTS).is_file():
        raise AverageError(f"{folder}: expected a saved Red Heart model (config.json and {WEIGHTS})")
    return json.loads(path.read_text(encoding="utf-8"))


def check_sources(sources: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """Raise :class:`AverageError` unless every source fits the first; return the first's encoder entries."""
    from ..configuration_redheart import RedHeartConfig

    first = _config(sources[0])
    reference = RedHeartConfig.from_pretrained(str(sources[0]))
    for source in sources[1:]:
        other = _config(source)
        try:
            check_architecture(source, reference)
        except CheckpointError as exc:
            raise AverageError(f"{source} and {sources[0]} differ in architecture: {exc}") from exc
        for name in sorted(set(first["encoders"]) | set(other["encoders"])):
            a, b = first["encoders"].get(name, {}), other["encoders"].get(name, {})
            diff = {f: (a.get(f), b.get(f)) for f in ENCODER_FIELDS if a.get(f) != b.get(f)}
            if diff:
                raise AverageError(
                    f"encoder {name!r}: {sources[0]} and {source} differ in {diff}; only models of one base and "
                    "one adapter layout average"
                )
    return first["encoders"]


def average_tensors(
    tensors: Sequence[dict[str, torch.Tensor]], weights: Sequence[float], where: Sequence[Path]
) -> dict[str, torch.Tensor]:
    """The weighted mean of each floating tensor (in float64, stored in the first model's dtype); other tensors
    must be equal in every model."""
    keys = set(tensors[0])
    for other, path in zip(tensors[1:], where[1:], strict=True):
        if set(other) != keys:
            missing = sorted(keys ^ set(other))[:5]
            raise AverageError(f"{path} and {where[0]} hold different tensors (e.g. {missing})")
    out = {}
    for key in sorted(keys):
        first = tensors[0][key]
        for other, path in zip(tensors[1:], where[1:], strict=True):
            if other[key].shape != first.shape:
                raise AverageError(
                    f"{path}: tensor {key!r} has shape {tuple(other[key].shape)}, {where[0]} {tuple(first.shape)}"
                )
        if first.is_floating_point():
            mean = sum(w * t[key].double() for w, t in zip(weights, tensors, strict=True))
            out[key] = mean.to(first.dtype).contiguous()
        elif all(torch.equal(t[key], first) for t in tensors[1:]):
            out[key] = first
        else:
            raise AverageError(
                f"tensor {key!r} is not floating point and differs between {list(map(str, where))}"
            )
    return out


def lora_update_error(adapters: Sequence[dict[str, torch.Tensor]], weights: Sequence[float]) -> float:
    """Relative Frobenius error of the update of the averaged adapter (mean B @ mean A) against the mean update."""
    pairs = [lora_pairs(a) for a in adapters]
    error = total = 0.0
    for module in pairs[0]:
        shared = list(zip(weights, (p[module] for p in pairs), strict=True))
        mean_update = sum(w * (b.double() @ a.double()) for w, (a, b) in shared)
        mean_a = sum(w * a.double() for w, (a, _) in shared)
        mean_b = sum(w * b.double() for w, (_, b) in shared)
        error += float((mean_b @ mean_a - mean_update).square().sum())
        total += float(mean_update.square().sum())
    return math.sqrt(error / total) if total > 0 else 0.0


def average_models(
    sources: Sequence[str | Path],
    out: str | Path,
    *,
    weights: Sequence[float] | None = None,
    max_update_error: float = MAX_UPDATE_ERROR,
) -> dict[str, Any]:
    """Write the weighted mean of the models in ``sources`` to ``out`` (a new folder); return the record saved
    beside it (``redheart_average.json``). Its other files (remote code, training record) are the last source's."""
    sources = [Path(s) for s in sources]
    out = Path(out)
    shares = normalised_weights(len(sources), weights)
    if out.exists():
        raise AverageError(f"{out} exists; choose a new folder for the averaged model")
    encoders = check_sources(sources)
    averaged = average_tensors([load_file(str(s / WEIGHTS)) for s in sources], shares, sources)
    adapters, errors = {}, {}
    for name, spec in encoders.items():
        if not spec.get("adapter"):
            continue
        read = [read_adapter(name, s / spec["adapter"]) for s in sources]
        fields = adapter_fields(read[0][0])
        for (config, _), source in zip(read[1:], sources[1:], strict=True):
            if adapter_fields(config) != fields:
                raise AverageError(
                    f"{source / spec['adapter'] / ADAPTER_CONFIG}: {adapter_fields(config)} differs from "
                    f"{sources[0]}'s {fields}; adapters of another rank, scale or target modules do not average"
                )
        adapters[spec["adapter"]] = average_tensors([w for _, w in read], shares, sources)
        errors[name] = lora_update_error([w for _, w in read], shares)
        if errors[name] > max_update_error:
            raise AverageError(
                f"encoder {name!r}: the averaged LoRA update is {errors[name]:.3f} (relative) away from the mean "
                f"of the models' updates (limit {max_update_error}); these adapters were not trained in one "
                "lineage, so their mean is not their average model"
            )
    staging = out.parent / f".{out.name}-staging"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(sources[-1], staging)
    for stale in (
        SURD_RECORD,
        CALIBRATION_RECORD,
    ):  # records of the last source's weights, not of the average
        (staging / stale).unlink(missing_ok=True)
    save_file(averaged, str(staging / WEIGHTS), metadata={"format": "pt"})
    for folder, tensors in adapters.items():
        save_file(tensors, str(staging / folder / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    record = {
        "sources": [str(s) for s in sources],
        "weights": shares,
        "lora_update_error": errors,
        "method": "element-wise weighted mean of every floating tensor and of LoRA A and B",
    }
    (staging / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    staging.rename(out)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m redheart.training.average",
        description="Average the weights of trained Red Heart models of one lineage into a new model folder.",
    )
    parser.add_argument("models", nargs="+", help="saved model folders (e.g. runs/<run>/best), two or more")
    parser.add_argument("--out", required=True, help="new folder for the averaged model")
    parser.add_argument(
        "--weights", type=float, nargs="+", help="one positive weight per model (default: equal)"
    )
    parser.add_argument(
        "--max-update-error",
        type=float,
        default=MAX_UPDATE_ERROR,
        help=f"largest accepted relative error of an averaged LoRA update (default {MAX_UPDATE_ERROR})",
    )
    args = parser.parse_args(argv)
    try:
        record = average_models(
            args.models, args.out, weights=args.weights, max_update_error=args.max_update_error
        )
    except (AverageError, EncoderLoadError) as exc:  # EncoderLoadError: a missing or unreadable adapter
        print(f"error: {exc}", file=sys.stderr)
        return 2
    errors = ", ".join(f"{n} {e:.4f}" for n, e in record["lora_update_error"].items()) or "no adapters"
    print(f"Averaged {len(record['sources'])} models into {args.out} (LoRA update error: {errors})")
    print(
        f"Next: python -m redheart.training.release --model-dir {args.out} (SURD step, calibration, evaluation)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
