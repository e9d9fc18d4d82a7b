"""Train Red Heart: ``accelerate launch training/train.py --config training/configs/small.yaml``.

Also ``python training/train.py ...`` and ``python -m redheart.training.train ...``. This file is the command
line only (arguments -> :class:`~.config.TrainConfig`); :mod:`redheart.training.assemble` builds the run from the
config and :mod:`redheart.training.trainer` is the loop. Command names of the original project map onto it:

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
from pathlib import Path
from typing import TYPE_CHECKING

# Shared CPUs: OpenMP threads that spin while waiting make torch up to 10x slower when other processes compete
# for the cores (measured on a 2-core machine); passive waiting costs little on an idle machine.
# Set before torch is imported; an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if __name__ == "__main__" and __package__ in (None, ""):
    # Run as a script: this folder would otherwise shadow installed packages (training/evaluate.py is not the
    # `evaluate` library), so drop it from the path and run this module from the installed `redheart` package.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    from redheart.training.train import main

    sys.exit(main())

if TYPE_CHECKING:
    from .config import TrainConfig


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
    p.add_argument(
        "--init-from",
        default=None,
        metavar="MODEL_DIR",
        help="start from saved model weights (and, with LoRA, the adapters saved beside them)",
    )
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
    """The packaged or YAML config of ``--config`` with every command-line override applied."""
    from .config import apply_overrides, load_config

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
        overrides += [
            f"train.samples={args.samples}",
            f"train.validation_max_per_set={cap if current is None else min(current, cap)}",
        ]
    if args.debug:
        overrides += ["train.debug=true", "train.logging_steps=1"]
        steps = cfg.train.eval_steps or 10
        overrides += [
            f"train.eval_steps={min(steps, 10)}",
            f"train.save_steps={min(cfg.train.save_steps or 10, 10)}",
        ]
    return apply_overrides(cfg, overrides) if overrides else cfg


def main(argv: list[str] | None = None) -> int:
    """Parse, train, print the result as one JSON line (rank 0); a config or data error exits with 2."""
    from .assemble import run_training
    from .config import ConfigError

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
    if os.environ.get("RANK", "0") == "0":  # one line for the whole run, also over several machines
        print(
            json.dumps(
                {
                    "best_model": str(result.best_dir),
                    "final_model": str(result.final_dir),
                    "steps": result.steps,
                    "trained_tasks": result.trained_tasks,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
