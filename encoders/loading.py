"""Load one encoder entry strictly: a checkpoint that cannot serve its entry is an error, never random weights.

:func:`load_encoder` loads an entry of ``config.encoders`` by id, path or alias (and revision) with
``AutoModel`` and its own ``AutoTokenizer``; the encoder is frozen (eval mode, no gradients) by default and
placed with ``device`` or ``device_map`` and computed in ``dtype``: ``"auto"`` (default) is the fastest dtype the
device runs natively whatever the stored one (a bf16 checkpoint runs in float32 on a CPU that would emulate bf16),
an explicit dtype is used as asked and warned about once when emulated (``redheart.pipelines.precision``); a
trainable encoder (``frozen=False``) keeps its stored dtype under ``"auto"``, since training's mixed precision
decides what it computes in. A checkpoint that
cannot be read, that lacks weights of the architecture (other than the unused pooler), or whose hidden size
differs from its config entry is an error naming the encoder and the path. An entry's `sha256` pins the base
checkpoint and its `adapter` (a LoRA adapter folder) is merged into it (:mod:`.adapters`); the resolved revision
then names the adapter too, so features of the adapted encoder are never mistaken for the base's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoModel, AutoTokenizer

from ..pipelines.precision import parse_dtype, resolve_dtype
from .adapters import check_base, merge_adapter, weights_sha256
from .errors import EncoderConfigError, EncoderLoadError
from .handle import EncoderHandle
from .sources import local_fingerprint, resolve_source

#: Model types whose position ids start after the padding index (their usable length is shorter).
_OFFSET_POSITION_MODELS = {
    "roberta",
    "xlm-roberta",
    "xlm-roberta-xl",
    "camembert",
    "data2vec-text",
    "longformer",
}


def _specials(tokenizer: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The special tokens the tokenizer puts before and after a single text."""
    probe = "hello"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(plain) + 1):
        if full[i : i + len(plain)] == plain:
            return tuple(full[:i]), tuple(full[i + len(plain) :])
    raise EncoderConfigError(f"cannot find the special tokens of tokenizer {type(tokenizer).__name__}")


def _position_limit(model_config: Any) -> int | None:
    limit = getattr(model_config, "max_position_embeddings", None)
    if not isinstance(limit, int):
        return None
    if getattr(model_config, "model_type", "") in _OFFSET_POSITION_MODELS:
        limit -= (getattr(model_config, "pad_token_id", None) or 1) + 1
    return limit


def load_encoder(
    name: str,
    spec: dict[str, Any],
    *,
    device: torch.device | str | None = None,
    dtype: Any = "auto",
    device_map: Any = None,
    frozen: bool = True,
    trust_remote_code: bool = False,
    local_files_only: bool = False,
) -> EncoderHandle:
    """Load one encoder entry strictly (see the module doc); raise EncoderLoadError / EncoderConfigError, and
    ValueError for an unknown ``dtype`` (before anything is loaded)."""
    asked = parse_dtype(dtype)
    requested = spec["model_name_or_path"]
    source, alias_revision = resolve_source(requested)
    revision = spec.get("revision")
    where = f"{requested!r}" + (f" (resolved to {source!r})" if source != requested else "")
    where += f" at revision {revision!r}" if revision else ""
    hub = {"revision": revision, "trust_remote_code": trust_remote_code, "local_files_only": local_files_only}
    # Loaded as stored under "auto" (an adapter merges at the stored precision), cast once placed below.
    load_kwargs: dict[str, Any] = {"dtype": asked or "auto", "output_loading_info": True}
    if device_map is not None:
        load_kwargs["device_map"] = device_map
    try:
        model, info = AutoModel.from_pretrained(source, **hub, **load_kwargs)
    except Exception as err:
        raise EncoderLoadError(f"encoder {name!r}: cannot load a model from {where}: {err}") from err
    missing = [key for key in info.get("missing_keys", ()) if not key.startswith("pooler.")]
    mismatched = list(info.get("mismatched_keys", ()))
    if missing or mismatched:
        raise EncoderLoadError(
            f"encoder {name!r}: the checkpoint at {where} does not hold all weights of "
            f"{type(model).__name__} (missing {sorted(missing)[:5]}, mismatched {mismatched[:5]}); refusing to "
            "run an encoder with randomly initialised weights"
        )
    if spec.get("sha256"):
        check_base(name, source, spec["sha256"])
    if spec.get("adapter"):
        merge_adapter(name, model, spec["adapter"])
    hidden = getattr(model.config, "hidden_size", None)
    if hidden != spec["hidden_size"]:
        raise EncoderConfigError(
            f"encoder {name!r}: the checkpoint at {where} has hidden size {hidden}, but its config entry says "
            f"hidden_size={spec['hidden_size']}"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **hub)
    except Exception as err:
        raise EncoderLoadError(f"encoder {name!r}: cannot load a tokenizer from {where}: {err}") from err
    if not getattr(tokenizer, "is_fast", False):
        raise EncoderConfigError(
            f"encoder {name!r}: the tokenizer at {where} is not a fast tokenizer; the pipeline needs character "
            "offsets to cut long texts into windows"
        )
    limits = [spec["max_length"]]
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and model_max < 1_000_000:
        limits.append(model_max)
    position_limit = _position_limit(model.config)
    if position_limit is not None:
        limits.append(position_limit)
    prefix, suffix = _specials(tokenizer)
    if device_map is None:
        model.to(torch.device(device) if device is not None else torch.device("cpu"))
    placed = next(model.parameters()).device
    if frozen or asked is not None:
        target = resolve_dtype(dtype, placed)
        if model.dtype != target:
            model.to(target)
    if frozen:
        model.eval().requires_grad_(False)
    if alias_revision is not None:
        resolved = alias_revision
    elif Path(source).is_dir():
        resolved = revision or local_fingerprint(source)
    else:
        resolved = getattr(model.config, "_commit_hash", None) or revision
    if spec.get("adapter"):
        resolved = f"{resolved}+adapter-{weights_sha256(spec['adapter'])[:12]}"
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return EncoderHandle(
        name=name,
        spec=dict(spec),
        source=source,
        revision=resolved,
        model=model,
        tokenizer=tokenizer,
        max_tokens=min(limits),
        prefix_ids=prefix,
        suffix_ids=suffix,
        pad_id=pad_id,
        frozen=frozen,
        device=placed,
    )
