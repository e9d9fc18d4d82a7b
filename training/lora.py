"""LoRA adapters (peft) on the external encoders, trained together with the Red Heart model (``--lora``).

Instead of cached features, every step runs the encoders: each enabled encoder is loaded with the pipeline's
strict loader, frozen, and wrapped by ``peft.get_peft_model`` with a ``LoraConfig`` (rank ``r``, ``alpha``,
dropout, ``target_modules`` -- ``query``/``value`` of BERT-style attention by default); only the adapters and
the Red Heart model train. Texts are tokenised as for the feature cache (no prefix, content cut to
``max_length`` minus the special tokens). A text not routed to an encoder still passes through it as a bare
special-token row (no empty rows, which some attention kernels turn into NaN) and is masked out for the fusion.

Saving: checkpoints keep the adapters (``lora/<encoder>/``); a saved model (best/final) also gets each encoder's
adapter in peft's format (``encoders/<name>/``, a few MB), and its config's encoder entry names it
(``adapter: "encoders/<name>"``, relative to the model folder) with the SHA-256 of the base weights
(``sha256``). The base stays where it is (an alias such as ``redheart:e5-small``); at load the encoder bank
checks the base against the checksum and merges the adapter (``redheart.encoders.adapters``).
"""

from __future__ import annotations

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

    def save_adapters(self, folder: Path) -> dict[str, dict[str, str]]:
        """Write every encoder's adapter to ``folder/encoders/<name>``; return name -> its config-entry keys."""
        from ..encoders.adapters import weights_sha256

        out = {}
        for name, module in self.encoders.items():
            relative = f"encoders/{name}"
            target = Path(folder) / relative
            module.save_pretrained(target)
            # peft names the base by the local folder it was loaded from and writes an empty card template; the
            # base is the encoder entry's name (pinned by the SHA-256 below) and the model's card describes both.
            (target / "README.md").unlink(missing_ok=True)
            adapter_config = json.loads((target / "adapter_config.json").read_text(encoding="utf-8"))
            adapter_config["base_model_name_or_path"] = self.handles[name].spec["model_name_or_path"]
            (target / "adapter_config.json").write_text(
                json.dumps(adapter_config, indent=2) + "\n", encoding="utf-8"
            )
            out[name] = {"adapter": relative, "sha256": weights_sha256(self.handles[name].source)}
        return out


def warm_start_adapters(wrapper: LoraRedHeart, init_from: str | Path, lora_cfg) -> list[str]:
    """Load the adapters the model in ``init_from`` was saved with into ``wrapper``'s fresh ones; return their encoders.

    Its heads were trained on the adapted encoder, so continuing with zero adapters would feed them features
    they never saw. The adapter must have the recipe's rank, alpha and target modules, and its base the checksum
    it was trained on; anything else is an error naming the file. Encoders saved without an adapter start fresh.
    """
    from peft import set_peft_model_state_dict

    from ..encoders.adapters import check_base, read_adapter, resolve_adapters

    config_path = Path(init_from) / "config.json"
    saved = json.loads(config_path.read_text(encoding="utf-8")).get("encoders", {})
    specs = resolve_adapters({n: s for n, s in saved.items() if n in wrapper.encoders}, str(init_from))
    wanted = {
        "r": int(lora_cfg.r),
        "lora_alpha": int(lora_cfg.alpha),
        "target_modules": sorted(lora_cfg.target_modules),
    }
    started = []
    for name, spec in specs.items():
        if not spec.get("adapter"):
            continue
        folder = Path(spec["adapter"])
        adapter_config, weights = read_adapter(name, folder)
        found = {key: adapter_config.get(key) for key in wanted}
        found["target_modules"] = sorted(found["target_modules"] or [])
        if found != wanted:
            raise ValueError(
                f"{folder / 'adapter_config.json'}: adapter {found} does not match the recipe's lora section "
                f"{wanted}; continue with the same LoRA settings or start fresh adapters from a frozen model"
            )
        if spec.get("sha256"):
            check_base(name, wrapper.handles[name].source, spec["sha256"])
        result = set_peft_model_state_dict(wrapper.encoders[name], weights)
        if result.unexpected_keys:
            raise ValueError(f"{folder}: adapter weights not in the encoder: {result.unexpected_keys[:5]}")
        started.append(name)
    return started


def save_hook(wrapper: LoraRedHeart):
    """A Trainer save hook: adapters next to the model, and the config's encoder entries naming them."""

    def hook(folder: Path, model) -> None:
        entries = wrapper.save_adapters(folder)
        config_path = Path(folder) / "config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        for name, keys in entries.items():
            config["encoders"][name].update(keys)
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
            budget = handle.content_budget(self.max_length)
            ids = handle.tokenize(list(texts))
            rows = [
                handle.with_specials(t.ids[:budget] if r else []) for t, r in zip(ids, routed, strict=True)
            ]
            input_ids, mask = handle.pad(rows)
            tokens[name] = {"input_ids": input_ids, "attention_mask": mask, "routed": torch.tensor(routed)}
        return {"encoder_tokens": tokens}
