"""Memory report of a training step: weights, gradients, optimiser state, activations.

* weights / gradients / optimiser state: summed tensor sizes (gradients of the trainable parameters; the
  optimiser's state tensors after its first step -- 8-bit AdamW keeps 1-byte moments plus block scales);
* activations: the bytes autograd keeps for the backward pass of one micro-batch, measured with
  ``torch.autograd.graph.saved_tensors_hooks`` (each storage counted once) -- with activation checkpointing
  only the checkpointed segments' inputs are kept, and this number shows it;
* on CUDA also ``torch.cuda.max_memory_allocated`` (the peak of everything on the device); on CPU the process's
  peak resident set size (``ru_maxrss``), which includes the data, the feature cache pages and Python.
"""

from __future__ import annotations

import resource
import sys
from contextlib import contextmanager
from typing import Any

import torch

MiB = 1024**2


def tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def weights_bytes(model: torch.nn.Module) -> int:
    return sum(tensor_bytes(p) for p in model.parameters()) + sum(tensor_bytes(b) for b in model.buffers())


def gradient_bytes(model: torch.nn.Module) -> int:
    return sum(tensor_bytes(p) for p in model.parameters() if p.requires_grad)


def optimizer_bytes(optimizer) -> int:
    total = 0
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps it
    for state in inner.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor):
                total += tensor_bytes(value)
    return total


class ActivationMeter:
    """Counts the bytes of tensors saved for backward inside ``with meter.record():`` (each storage once)."""

    def __init__(self) -> None:
        self.bytes = 0
        self._seen: set[tuple[int, int]] = set()

    @contextmanager
    def record(self):
        def pack(t: torch.Tensor):
            try:
                storage = t.untyped_storage()
                key = (storage.data_ptr(), storage.nbytes())
                if key not in self._seen and storage.data_ptr() != 0:
                    self._seen.add(key)
                    self.bytes += storage.nbytes()
            except (RuntimeError, NotImplementedError):
                self.bytes += tensor_bytes(t)
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            yield self


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def memory_report(model, optimizer, activation_bytes: int | None, device: torch.device, **extra: Any) -> dict:
    report = {
        "device": str(device),
        "weights_mib": weights_bytes(model) / MiB,
        "gradients_mib": gradient_bytes(model) / MiB,
        "optimizer_state_mib": optimizer_bytes(optimizer) / MiB,
        "activations_saved_for_backward_mib": None if activation_bytes is None else activation_bytes / MiB,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    if device.type == "cuda":
        report["cuda_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated(device) / MiB
        report["cuda_max_memory_reserved_mib"] = torch.cuda.max_memory_reserved(device) / MiB
    else:
        report["process_peak_rss_mib"] = peak_rss_bytes() / MiB
    report.update(extra)
    return report


def format_memory_report(report: dict) -> str:
    rows = [
        ("weights", report["weights_mib"]),
        ("gradients", report["gradients_mib"]),
        ("optimizer state", report["optimizer_state_mib"]),
        ("activations (saved for backward, one micro-batch)", report["activations_saved_for_backward_mib"]),
    ]
    if "cuda_max_memory_allocated_mib" in report:
        rows.append(("CUDA max_memory_allocated (peak, all)", report["cuda_max_memory_allocated_mib"]))
    if "process_peak_rss_mib" in report:
        rows.append(("process peak RSS (CPU; includes data and Python)", report["process_peak_rss_mib"]))
    lines = [
        f"== Memory report ({report['device']}, {report['trainable_parameters']:,} trainable of "
        f"{report['parameters']:,} parameters)"
    ]
    for name, value in rows:
        lines.append(f"  {name:<52} {'n/a' if value is None else f'{value:10.1f} MiB'}")
    for key in ("micro_batch_size", "optim", "mixed_precision", "activation_checkpointing", "mean_tokens"):
        if key in report:
            lines.append(f"  {key:<52} {report[key]}")
    return "\n".join(lines)
