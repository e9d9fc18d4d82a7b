"""Training checkpoints: save, find, check and restore (weights, optimiser, schedule, RNG, data position).

A checkpoint folder ``checkpoint-<step>/`` holds

* ``model/`` -- ``save_pretrained`` of the Red Heart model (config + safetensors + remote code);
* ``optimizer.pt``, ``scheduler.pt`` -- their ``state_dict`` (under FSDP or DeepSpeed, where each process holds
  a shard, ``accelerate/`` holds Accelerate's ``save_state`` of model and optimiser instead of ``optimizer.pt``);
* ``rng.pt`` -- the Python, numpy and torch (CPU and CUDA) generator states at the moment of saving, of process 0;
  ``rng-process<N>.pt`` those of process N of a multi-process run (dropout differs between processes);
* ``lora/<encoder>/`` -- LoRA adapters when the encoders are adapted;
* ``trainer_state.json`` -- step, epoch, best metric, history, the tasks that received a loss, and the
  fingerprint of the training configuration.

Restoring all of it and re-entering the (seeded, per-epoch) data order at ``step`` continues the run exactly.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_FILE = "trainer_state.json"
#: Accelerate's ``save_state`` folder inside a checkpoint (FSDP, DeepSpeed: sharded model and optimiser).
ACCELERATE_STATE = "accelerate"
CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
#: Config fields that decide the architecture (a checkpoint must agree on all of them to be resumed).
ARCHITECTURE_FIELDS = (
    "backbone",
    "heads",
    "analyzers",
    "auxiliary",
    "use_heads",
    "use_analyzers",
    "use_auxiliary",
    "emotion_labels",
    "kote_labels",
    "acceptability_frameworks",
    "bentham_elements",
    "bentham_signs",
)


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete or does not fit the model being trained."""


def _sub(value: Any) -> Any:
    """A sub-config's own fields (those its class declares), or a plain value."""
    if hasattr(value, "to_dict"):
        own = getattr(type(value), "__annotations__", {})
        return {k: getattr(value, k) for k in own if not k.startswith("_") and k != "model_type"}
    return list(value) if isinstance(value, tuple) else value


def architecture_signature(config) -> dict[str, Any]:
    """The architecture-deciding part of a `RedHeartConfig`."""
    sig = {name: _sub(getattr(config, name)) for name in ARCHITECTURE_FIELDS}
    sig["encoders"] = {name: int(spec["hidden_size"]) for name, spec in config.encoders.items()}
    return sig


def check_architecture(model_dir: Path, config) -> None:
    """Raise :class:`CheckpointError` when the saved model in ``model_dir`` has another architecture."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise CheckpointError(
            f"{model_dir}: no config.json; expected a Red Heart model folder (save_pretrained)"
        )
    saved = json.loads(path.read_text(encoding="utf-8"))
    if saved.get("model_type") != "redheart":
        raise CheckpointError(
            f"{path}: model_type {saved.get('model_type')!r} is not 'redheart'; this checkpoint belongs to another "
            "architecture"
        )
    from ..configuration_redheart import RedHeartConfig

    try:
        saved_config = RedHeartConfig.from_pretrained(str(model_dir))
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: not a valid Red Heart config: {exc}") from exc
    mine, theirs = architecture_signature(config), architecture_signature(saved_config)
    diffs = []
    for key in mine:
        a, b = mine[key], theirs.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            for sub in sorted(set(a) | set(b)):
                if a.get(sub) != b.get(sub):
                    diffs.append(f"{key}.{sub}: checkpoint {b.get(sub)!r}, this run {a.get(sub)!r}")
        elif a != b:
            diffs.append(f"{key}: checkpoint {b!r}, this run {a!r}")
    if diffs:
        shown = "; ".join(diffs[:8]) + (f"; ... ({len(diffs)} differences)" if len(diffs) > 8 else "")
        raise CheckpointError(
            f"{model_dir}: checkpoint of another architecture than this run's config: {shown}"
        )


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def rng_file(process_index: int) -> str:
    """The random-state file of one process in a checkpoint (``rng.pt`` for process 0, as for one process)."""
    return "rng.pt" if process_index == 0 else f"rng-process{process_index}.pt"


def staging_folder(folder: Path, fresh: bool = True) -> Path:
    """The temporary folder a checkpoint is written into before it is renamed (emptied when ``fresh``)."""
    tmp = Path(folder).with_name(Path(folder).name + ".tmp")
    if fresh:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    return tmp


def save_checkpoint(
    folder: Path,
    model,
    optimizer,
    scheduler,
    state: dict[str, Any],
    lora_modules=None,
    *,
    rng_states: list[dict[str, Any]] | None = None,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write a checkpoint atomically (into a temporary folder, then renamed).

    ``rng_states``: one per process (default: this process's); ``optimizer`` None with ``state_dict`` given: the
    FSDP/DeepSpeed case, whose optimiser Accelerate has already saved into the staging folder's ``accelerate/``.
    """
    folder = Path(folder)
    tmp = staging_folder(folder, fresh=optimizer is not None)
    if state_dict is None:
        model.save_pretrained(tmp / "model")
    else:
        model.save_pretrained(tmp / "model", state_dict=state_dict)
    if optimizer is not None:
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    for index, states in enumerate(rng_states or [rng_state()]):
        torch.save(states, tmp / rng_file(index))
    for name, module in (lora_modules or {}).items():
        module.save_pretrained(tmp / "lora" / name)
    (tmp / STATE_FILE).write_text(json.dumps(state, indent=2, default=float) + "\n", encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def list_checkpoints(output_dir: Path) -> list[Path]:
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in output_dir.iterdir()
        if (m := CHECKPOINT_RE.match(p.name)) and p.is_dir()
    ]
    return [p for _, p in sorted(found) if (p / STATE_FILE).is_file()]


def prune_checkpoints(output_dir: Path, keep: int) -> None:
    for path in list_checkpoints(output_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(path, ignore_errors=True)


def resolve_resume(path: str | Path, output_dir: Path) -> Path:
    """``auto`` -> the latest checkpoint in ``output_dir``; otherwise the given checkpoint folder."""
    if str(path) == "auto":
        found = list_checkpoints(output_dir)
        if not found:
            raise CheckpointError(f"--resume auto: no checkpoint-<step>/ with {STATE_FILE} in {output_dir}")
        return found[-1]
    p = Path(path)
    if not p.is_dir():
        raise CheckpointError(f"checkpoint {str(p)!r} does not exist or is not a folder")
    missing = [n for n in (STATE_FILE, "scheduler.pt", "rng.pt", "model/config.json") if not (p / n).exists()]
    if not (p / "optimizer.pt").exists() and not (p / ACCELERATE_STATE).is_dir():
        missing.append("optimizer.pt")
    if missing:
        raise CheckpointError(
            f"{p} is not a complete training checkpoint: missing {missing} (expected a checkpoint-<step>/ folder "
            "written by training/train.py)"
        )
    return p


def load_rng_state(folder: Path, process_index: int = 0) -> tuple[dict[str, Any], str | None]:
    """This process's random states from a checkpoint, and a note when it has none of its own (a checkpoint of
    a run with fewer processes: process 0's are used, so dropout no longer continues the interrupted run's)."""
    own = Path(folder) / rng_file(process_index)
    if own.is_file():
        return torch.load(own, map_location="cpu", weights_only=False), None
    note = (
        f"{folder} has no random state for process {process_index} (written by fewer processes); using process "
        "0's: dropout will not continue exactly"
    )
    return torch.load(Path(folder) / rng_file(0), map_location="cpu", weights_only=False), note


def load_state(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / STATE_FILE).read_text(encoding="utf-8"))
