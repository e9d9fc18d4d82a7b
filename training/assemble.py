"""From a training config to a running :class:`~.trainer.Trainer`: data, features or LoRA, model, collators.

:func:`assemble_trainer` does every step before the first optimiser step, in a fixed order (the seeds make the
run reproducible): Accelerate, the data (:mod:`.prepare`), the model (optionally initialised from saved
weights), then how examples reach it -- cached frozen-encoder features (:mod:`.features`) or LoRA adapters on
live encoders (:mod:`.lora`) -- and one collator per table. :func:`run_training` assembles and fits. The
command line is ``training/train.py``; the loop itself is :mod:`.trainer`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import TrainConfig, build_model_config


def _print_main(accelerator) -> Callable[..., None]:
    """``print`` on the main process only (flushed, so that logs of several processes stay in order)."""

    def out(*args, **kwargs):
        if accelerator is None or accelerator.is_main_process:
            print(*args, **kwargs, flush=True)

    return out


@dataclass
class _Feed:
    """How examples reach the model: the module trained, a collator per example table (``make_eval_collator``:
    for the validation tables, when they read otherwise), and what the run records."""

    model: Any
    make_collator: Callable[[Any], Any]
    info: dict[str, Any]
    lora_modules: dict[str, Any] = field(default_factory=dict)
    save_hook: Callable | None = None
    make_eval_collator: Callable[[Any], Any] | None = None


def _cached_feature_feed(cfg: TrainConfig, redheart, model_config, data, accelerator, print_fn) -> _Feed:
    """Frozen encoders: every text is encoded once into the feature cache; batches read the cache."""
    from .collate import Collator
    from .features import build_stores

    stores = build_stores(cfg, model_config, data.all_texts_by_language(), accelerator, print_fn)

    def make(table):
        return Collator(table, stores, model_config.encoders, data.tasks)

    info = {"mode": "frozen_cached", "stores": {n: s.stats() for n, s in stores.items()}}
    return _Feed(redheart, make, info)


def _lora_feed(cfg: TrainConfig, redheart, model_config, data, print_fn, init_from) -> _Feed:
    """LoRA adapters on the enabled encoders, trained with the model; batches carry token ids, cut to
    ``lora.max_length`` for training and to the inference window (``features.max_length`` or the encoder's) for
    validation. A model in ``init_from`` saved with adapters continues from them."""
    from ..encoders import load_encoder
    from .lora import LoraRedHeart, TokenCollator, save_hook, warm_start_adapters

    handles = {n: load_encoder(n, s, frozen=False) for n, s in model_config.encoders.items() if s["enabled"]}
    model = LoraRedHeart(redheart, handles, cfg.lora)
    if init_from is not None:
        started = warm_start_adapters(model, init_from, cfg.lora)
        if started:
            print_fn(f"LoRA: adapters of {started} continue from {init_from}")
    window = cfg.features.max_length

    def make(table):
        return TokenCollator(table, handles, model_config.encoders, data.tasks, cfg.lora.max_length or window)

    def make_eval(table):
        return TokenCollator(table, handles, model_config.encoders, data.tasks, window)

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print_fn(f"LoRA: adapters on {list(handles)}; trainable parameters {trainable:,}")
    info = {"mode": "lora", "encoders": {n: h.describe() for n, h in handles.items()}}
    return _Feed(
        model,
        make,
        info,
        dict(model.encoders.items()),
        save_hook=save_hook(model),
        make_eval_collator=make_eval,
    )


def _model(model_config, init_from: str | Path | None, lora: bool):
    """A new Red Heart model, or one with the weights saved in ``init_from`` (same architecture); a model saved
    with LoRA adapters continues only with LoRA (its adapters are loaded by :func:`_lora_feed`)."""
    from ..modeling_redheart import RedHeartModel

    redheart = RedHeartModel(model_config)
    if init_from is not None:
        from .checkpoint import check_architecture

        check_architecture(Path(init_from), model_config)
        loaded = RedHeartModel.from_pretrained(str(init_from))
        adapted = [n for n, s in loaded.config.encoders.items() if s.get("adapter")]
        if adapted and not lora:
            raise ValueError(
                f"{init_from}: its heads were trained on encoders {adapted} with LoRA adapters; cached features "
                "of the plain encoders would not match them. Continue with lora.enabled: true"
            )
        redheart.load_state_dict(loaded.state_dict())
    return redheart


def assemble_trainer(
    cfg: TrainConfig,
    *,
    data_dir: str | None = None,
    resume: str | None = None,
    init_from=None,
    data: Any = None,
) -> tuple[Any, Path | None]:
    """The :class:`~.trainer.Trainer` of ``cfg`` and the checkpoint folder to resume from (None: a new run).

    ``data``: a :class:`~.prepare.PreparedData` to train on instead of the config's data sets (the GPU suite's
    synthetic table, on a machine without the data folder).
    """
    import torch
    from accelerate.utils import set_seed

    from .checkpoint import resolve_resume
    from .class_balance import positive_weights
    from .prepare import prepare_data
    from .trainer import Trainer, make_accelerator

    started = time.perf_counter()
    accelerator = make_accelerator(cfg)
    print_fn = _print_main(accelerator)
    if cfg.train.debug:
        torch.autograd.set_detect_anomaly(True)
    resume_dir = resolve_resume(resume, Path(cfg.train.output_dir)) if resume else None
    set_seed(int(cfg.train.seed))
    model_config = build_model_config(cfg)
    if data is None:
        data = prepare_data(cfg, data_dir=data_dir, print_fn=print_fn)
    composition = ", ".join(f"{k} {v:,}" for k, v in data.composition.items())
    validation = ", ".join(f"{k} {len(v):,}" for k, v in data.validation.items())
    print_fn(
        f"Tasks trained: {data.tasks}; training examples {len(data.train):,} ({composition}); "
        f"validation parts: {validation}"
    )
    model_config.positive_weights = positive_weights(data.train, cfg.train.class_balance)
    if model_config.positive_weights is not None:
        heaviest = {k: round(max(v), 2) for k, v in model_config.positive_weights.items()}
        print_fn(
            f"Class balance ({cfg.train.class_balance}): largest positive-label weight per space {heaviest}"
        )
    torch.manual_seed(int(cfg.train.seed))
    redheart = _model(model_config, init_from, cfg.lora.enabled)  # the same initial weights in every process
    if cfg.lora.enabled:
        feed = _lora_feed(cfg, redheart, model_config, data, print_fn, init_from)
    else:
        feed = _cached_feature_feed(cfg, redheart, model_config, data, accelerator, print_fn)
    if accelerator.process_index > 0:
        # each further process draws its own dropout masks (process 0 keeps the single-process stream)
        torch.manual_seed(int(cfg.train.seed) + 1_000_003 * accelerator.process_index)
    train_collator = feed.make_collator(data.train)
    make_eval = feed.make_eval_collator or feed.make_collator
    val_collators = {name: make_eval(table) for name, table in data.validation.items()}
    extra = {
        "tasks": data.tasks,
        "composition": data.composition,
        "dropped_without_target": data.dropped,
        "validation_sizes": {k: len(v) for k, v in data.validation.items()},
        "features": feed.info,
        "encoders": model_config.encoders,
        "preparation_seconds": round(time.perf_counter() - started, 1),
    }
    trainer = Trainer(
        cfg,
        feed.model,
        train_collator,
        val_collators,
        data.tasks,
        accelerator=accelerator,
        print_fn=print_fn,
        extra_state=extra,
        lora_modules=feed.lora_modules,
        save_hook=feed.save_hook,
    )
    return trainer, resume_dir


def run_training(cfg: TrainConfig, *, data_dir: str | None = None, resume: str | None = None, init_from=None):
    """Prepare data, encode (or set up LoRA), train; return the :class:`~.trainer.TrainResult`."""
    started = time.perf_counter()
    trainer, resume_dir = assemble_trainer(cfg, data_dir=data_dir, resume=resume, init_from=init_from)
    result = trainer.fit(resume_from=resume_dir)
    total = time.perf_counter() - started
    trainer.print(
        f"Done: {result.steps} steps in {result.wall_seconds:.1f} s (total {total:.1f} s); "
        f"trained tasks {result.trained_tasks}; best model {result.best_dir}"
    )
    return result
