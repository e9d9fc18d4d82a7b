"""Training entry point: ``accelerate launch training/train.py --config training/configs/small.yaml``.

Also ``python training/train.py ...`` and ``python -m redheart.training.train ...``. Command names of the
original project map onto it:

* train-local  -> ``--samples N --debug``: a mixture of N rows, small validation parts, frequent logging,
  evaluation and checkpoints, autograd anomaly detection;
* full training -> ``--config training/configs/<preset>.yaml`` as written;
* validation    -> ``python training/validate.py --load-checkpoint DIR``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from .config import ConfigError, TrainConfig, apply_overrides, build_model_config, load_config


def _print_main(accelerator):
    def out(*args, **kwargs):
        if accelerator is None or accelerator.is_main_process:
            print(*args, **kwargs, flush=True)

    return out


def build_stores(
    cfg: TrainConfig, model_config, texts_by_language: dict[int, list[str]], accelerator, print_fn
):
    """Feature stores of the enabled encoders, filled with every text routed to them (main process encodes)."""
    from .collate import routes
    from .features import FeatureStore

    stores = {}
    routing = routes(model_config.encoders)
    for name, spec in model_config.encoders.items():
        if not spec["enabled"]:
            continue
        store = FeatureStore(name, spec, cache_root=cfg.features.cache_dir, max_length=cfg.features.max_length,
                             dtype=cfg.features.dtype, batch_size=cfg.features.batch_size,
                             progress=cfg.train.progress)  # fmt: skip
        texts = [t for lang, items in texts_by_language.items() if name in routing[lang] for t in items]
        if accelerator is None or accelerator.is_main_process:
            n = store.ensure(texts)
            print_fn(f"Feature cache {name}: {store.root} -- {n:,} texts encoded now, "
                     f"{store.reused:,} reused ({len(store):,} cached)")  # fmt: skip
        if accelerator is not None:
            accelerator.wait_for_everyone()
            if not accelerator.is_main_process:
                store.reload()
        stores[name] = store
    return stores


def run_training(cfg: TrainConfig, *, data_dir: str | None = None, resume: str | None = None, init_from=None):
    """Prepare data, encode (or set up LoRA), train; return the :class:`~.trainer.TrainResult`."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed

    from ..modeling_redheart import RedHeartModel
    from .checkpoint import resolve_resume
    from .collate import Collator
    from .prepare import prepare_data
    from .trainer import Trainer, resolve_mixed_precision

    started = time.perf_counter()
    accelerator = Accelerator(
        mixed_precision=resolve_mixed_precision(cfg.train.mixed_precision),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    print_fn = _print_main(accelerator)
    if cfg.train.debug:
        torch.autograd.set_detect_anomaly(True)
    resume_dir = resolve_resume(resume, Path(cfg.train.output_dir)) if resume else None
    set_seed(int(cfg.train.seed))
    model_config = build_model_config(cfg)
    data = prepare_data(cfg, data_dir=data_dir, print_fn=print_fn)
    print_fn(f"Tasks trained: {data.tasks}; training examples {len(data.train):,} "
             f"({', '.join(f'{k} {v:,}' for k, v in data.composition.items())}); "
             f"validation parts: {', '.join(f'{k} {len(v):,}' for k, v in data.validation.items())}")  # fmt: skip
    torch.manual_seed(int(cfg.train.seed))
    redheart = RedHeartModel(model_config)
    if init_from is not None:
        from .checkpoint import check_architecture

        check_architecture(Path(init_from), model_config)
        loaded = RedHeartModel.from_pretrained(str(init_from))
        redheart.load_state_dict(loaded.state_dict())
    features_info: dict[str, Any] = {}
    lora_modules, hook = {}, None
    if cfg.lora.enabled:
        from ..pipelines.encoders import load_encoder
        from .lora import LoraRedHeart, TokenCollator, save_hook

        handles = {
            n: load_encoder(n, s, frozen=False) for n, s in model_config.encoders.items() if s["enabled"]
        }
        model = LoraRedHeart(redheart, handles, cfg.lora)
        lora_modules = dict(model.encoders.items())
        hook = save_hook(model)
        max_length = cfg.lora.max_length or cfg.features.max_length

        def make(table):
            return TokenCollator(table, handles, model_config.encoders, data.tasks, max_length)

        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        print_fn(f"LoRA: adapters on {list(handles)}; trainable parameters {trainable:,}")
        features_info = {"mode": "lora", "encoders": {n: h.describe() for n, h in handles.items()}}
    else:
        stores = build_stores(cfg, model_config, data.all_texts_by_language(), accelerator, print_fn)
        model = redheart

        def make(table):
            return Collator(table, stores, model_config.encoders, data.tasks)

        features_info = {"mode": "frozen_cached", "stores": {n: s.stats() for n, s in stores.items()}}
    train_collator = make(data.train)
    val_collators = {name: make(table) for name, table in data.validation.items()}
    extra = {
        "tasks": data.tasks,
        "composition": data.composition,
        "dropped_without_target": data.dropped,
        "validation_sizes": {k: len(v) for k, v in data.validation.items()},
        "features": features_info,
        "encoders": model_config.encoders,
        "preparation_seconds": round(time.perf_counter() - started, 1),
    }
    trainer = Trainer(cfg, model, train_collator, val_collators, data.tasks, accelerator=accelerator,
                      print_fn=print_fn, extra_state=extra, lora_modules=lora_modules, save_hook=hook)  # fmt: skip
    result = trainer.fit(resume_from=resume_dir)
    print_fn(f"Done: {result.steps} steps in {result.wall_seconds:.1f} s (total {time.perf_counter() - started:.1f} s); "
             f"trained tasks {result.trained_tasks}; best model {result.best_dir}")  # fmt: skip
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="training/train.py",
        description="Train Red Heart (multi-data-set, multi-task) from a YAML config.",
        epilog="Examples: accelerate launch training/train.py --config training/configs/small.yaml | "
        "python training/train.py --config tiny --samples 200 --debug",
    )
    p.add_argument("--config", required=True, help="YAML file, or a packaged config name: tiny, small, 330m")
    p.add_argument("--data-dir", default=None, help="data folder (default: data.data_dir, then $RH_DATA_DIR)")
    p.add_argument("--output-dir", default=None, help="overrides train.output_dir")
    p.add_argument("--samples", type=int, default=None, help="train-local: use a mixture of N training rows")
    p.add_argument(
        "--debug", action="store_true", help="train-local: frequent logs/evaluation, anomaly detection"
    )
    p.add_argument("--max-steps", type=int, default=None, help="overrides train.max_steps")
    p.add_argument("--optim", choices=("adamw", "adamw8bit"), default=None, help="overrides train.optim")
    p.add_argument(
        "--lora", action="store_true", help="LoRA adapters on the encoders instead of cached features"
    )
    p.add_argument("--resume", default=None, metavar="DIR|auto", help="continue from a checkpoint folder")
    p.add_argument("--init-from", default=None, metavar="MODEL_DIR", help="start from saved model weights")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override any config value, e.g. --set train.lr=3e-4 (repeatable)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    cfg = load_config(args.config)
    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"train.output_dir={args.output_dir}")
    if args.max_steps is not None:
        overrides.append(f"train.max_steps={args.max_steps}")
    if args.optim:
        overrides.append(f"train.optim={args.optim}")
    if args.lora:
        overrides.append("lora.enabled=true")
    if args.no_progress:
        overrides.append("train.progress=false")
    if args.samples is not None:
        cap = max(16, args.samples // 20)
        current = cfg.train.validation_max_per_set
        overrides += [f"train.samples={args.samples}",
                      f"train.validation_max_per_set={cap if current is None else min(current, cap)}"]  # fmt: skip
    if args.debug:
        overrides += ["train.debug=true", "train.logging_steps=1"]
        steps = cfg.train.eval_steps or 10
        overrides += [
            f"train.eval_steps={min(steps, 10)}",
            f"train.save_steps={min(cfg.train.save_steps or 10, 10)}",
        ]
    return apply_overrides(cfg, overrides) if overrides else cfg


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        cfg = config_from_args(args)
        result = run_training(cfg, data_dir=args.data_dir, resume=args.resume, init_from=args.init_from)
    except (ConfigError, FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if os.environ.get("LOCAL_RANK", "0") == "0":
        print(json.dumps({"best_model": str(result.best_dir), "final_model": str(result.final_dir),
                          "steps": result.steps, "trained_tasks": result.trained_tasks}))  # fmt: skip
    return 0
