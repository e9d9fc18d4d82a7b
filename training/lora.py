"""LoRA adapters (peft) on the external encoders, trained together with the Red Heart model (``--lora``).

Instead of cached features, every step runs the encoders: each enabled encoder is loaded with the pipeline's
strict loader, frozen, and wrapped by ``peft.get_peft_model`` with a ``LoraConfig`` (rank ``r``, ``alpha``,
dropout, ``target_modules`` -- ``query``/``value`` of BERT-style attention by default); only the adapters and
the Red Heart model train. Texts are tokenised as for the feature cache (no prefix, content cut to
``max_length`` minus the special tokens). A text not routed to an encoder still passes through it as a bare
special-token row (no empty rows, which some attention kernels turn into NaN) and is masked out for the fusion.

Saving: checkpoints keep the adapters (``lora/<encoder>/``); a saved model (best/final) also gets each encoder
with its adapter merged (``encoders/<name>/``, a plain Hugging Face folder), and its config's encoder entry
points there, so the pipeline loads the adapted encoder without knowing about LoRA.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .collate import Collator


class LoraRedHeart(nn.Module):
    """Encoders with LoRA adapters in front of a `RedHeartModel` (``self.redheart``)."""

    def __init__(self, redheart: nn.Module, handles: dict[str, Any], lora_cfg) -> None:
        super().__init__()
        from peft import LoraConfig, get_peft_model

        self.redheart = redheart
        self.handles = handles
        modules = {}
        for name, handle in handles.items():
            handle.model.requires_grad_(False)
            config = LoraConfig(
                r=int(lora_cfg.r),
                lora_alpha=int(lora_cfg.alpha),
                lora_dropout=float(lora_cfg.dropout),
                target_modules=list(lora_cfg.target_modules),
            )
            try:
                modules[name] = get_peft_model(handle.model, config)
            except ValueError as exc:
                raise ValueError(
                    f"LoRA on encoder {name!r} ({handle.spec['model_name_or_path']}): {exc}. Set lora.target_modules "
                    "to module names of this architecture"
                ) from exc
        self.encoders = nn.ModuleDict(modules)

    @property
    def config(self):
        return self.redheart.config

    def forward(self, encoder_tokens: dict[str, dict[str, torch.Tensor]], **kwargs):
        states, masks = {}, {}
        for name, tokens in encoder_tokens.items():
            out = self.encoders[name](input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
            states[name] = out.last_hidden_state
            masks[name] = tokens["attention_mask"] * tokens["routed"][:, None].to(
                tokens["attention_mask"].dtype
            )
        return self.redheart(encoder_hidden_states=states, encoder_attention_mask=masks, **kwargs)

    def save_merged(self, folder: Path) -> dict[str, str]:
        """Write every encoder with its adapter merged into ``folder/encoders/<name>``; return name -> path."""
        out = {}
        for name, module in self.encoders.items():
            merged = copy.deepcopy(module).merge_and_unload()
            target = Path(folder) / "encoders" / name
            merged.save_pretrained(target)
            self.handles[name].tokenizer.save_pretrained(target)
            out[name] = str(target.resolve())
        return out


def save_hook(wrapper: LoraRedHeart):
    """A Trainer save hook: merged encoders next to the model, and the config's encoder entries pointing there."""

    def hook(folder: Path, model) -> None:
        paths = wrapper.save_merged(folder)
        config_path = Path(folder) / "config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        for name, path in paths.items():
            config["encoders"][name]["model_name_or_path"] = path
            config["encoders"][name]["revision"] = None
        config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    return hook


class TokenCollator(Collator):
    """Like :class:`~.collate.Collator`, but gives token ids per encoder (``encoder_tokens``) instead of features."""

    def __init__(
        self, table, handles: dict[str, Any], encoders: dict[str, dict], tasks, max_length: int | None
    ):
        super().__init__(table, handles, encoders, tasks)
        self.handles = handles
        self.max_length = max_length

    def _length(self, name: str, text: str) -> int:
        return len(text) // 4 + 2  # a cheap proxy of the token count (only orders examples by length)

    def encoder_inputs(self, texts, langs):
        tokens = {}
        for name, handle in self.handles.items():
            routed = [name in self.routes[lang] for lang in langs]
            if not any(routed):
                continue
            limit = min(self.max_length or handle.max_tokens, handle.max_tokens)
            budget = max(1, limit - handle.num_special)
            ids = handle.tokenize(list(texts))
            rows = [
                handle.with_specials(t.ids[:budget] if r else []) for t, r in zip(ids, routed, strict=True)
            ]
            input_ids, mask = handle.pad(rows)
            tokens[name] = {"input_ids": input_ids, "attention_mask": mask, "routed": torch.tensor(routed)}
        return {"encoder_tokens": tokens}
