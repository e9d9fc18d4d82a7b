"""Validate a checkpoint or a saved model: ``python training/validate.py --load-checkpoint DIR``.

``DIR`` may be a training checkpoint (``runs/x/checkpoint-0000200``, its ``model/`` is used), a saved model
(``runs/x/best``) or the default model's folder. Runs the full evaluation of :mod:`redheart.training.evaluate`
(held-out parts of every data set the model's encoders can read) and prints the metrics; ``--out`` writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see training/train.py: set before torch is imported

if __package__ in (None, ""):
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    from redheart.training.evaluate import EvaluationError, evaluate_model, format_results
else:
    from .evaluate import EvaluationError, evaluate_model, format_results


def model_folder(path: str | Path) -> Path:
    """The model folder of a checkpoint (``DIR/model``) or of a saved model (``DIR``)."""
    p = Path(path)
    if not p.is_dir():
        raise EvaluationError(
            f"{p}: no such folder; expected a training checkpoint or a saved Red Heart model"
        )
    if (p / "model" / "config.json").is_file():
        return p / "model"
    if (p / "config.json").is_file():
        return p
    raise EvaluationError(f"{p}: neither a checkpoint (model/config.json) nor a saved model (config.json)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="training/validate.py", description=__doc__.split("\n")[0])
    p.add_argument("--load-checkpoint", required=True, metavar="DIR")
    p.add_argument("--data-dir", default=None)
    p.add_argument(
        "--max-per-set",
        type=int,
        default=None,
        help="seeded sample of N rows per evaluation set (0 = all; default: the run's eval section)",
    )
    p.add_argument("--out", default=None, help="write the results JSON here")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        folder = model_folder(args.load_checkpoint)
        cap = "config" if args.max_per_set is None else args.max_per_set
        results = evaluate_model(
            folder, data_dir=args.data_dir, max_per_set=cap, progress=not args.no_progress
        )
    except (EvaluationError, FileNotFoundError, ValueError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(format_results(results))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, ensure_ascii=False, default=float) + "\n")
        print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
