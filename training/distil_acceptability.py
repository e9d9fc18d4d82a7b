"""Write the ``goemotions_ko_ethics`` training set: each GoEmotions KO comment with the acceptability a teacher model
gives its English original (why: :mod:`.data.distilled_acceptability`).

``python -m redheart.training.distil_acceptability --teacher models/red-heart-small-e5 --out DIR
[--max-rows N] [--data-dir DIR]``, then train with ``--set data.sources.goemotions_ko_ethics=DIR
--set data.weights.goemotions_ko_ethics=W``.

The teacher is run through the ``ethics-emotion`` pipeline in float32 (the same targets on every CPU) on the
English comments of GoEmotions train and dev (a seeded sample of ``--max-rows`` positions per split, default all);
each comment gets one framework, rotating with its row (``position % 4``), so the four are balanced and a Korean
comment costs one encoder pass in training. The row alignment of EN and KO is checked (same row count, the same
label row at every position), and the targets must vary (a teacher that says one thing of everything teaches
nothing): both are errors, not warnings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..configuration_redheart.labels import ACCEPTABILITY_FRAMEWORKS
from ..encoders.adapters import weights_sha256
from .data.distilled_acceptability import SPEC
from .evaluation.model_folder import shown_path

#: The record of the teacher beside the distilled files.
TEACHER_RECORD = "teacher.json"
#: Below this standard deviation a framework's targets are taken as constant (nothing to learn).
MIN_TARGET_STD = 1e-3


class DistillationError(ValueError):
    """The data or the teacher cannot give usable targets (the message says why)."""


def _aligned(split: str, data_dir: str | None) -> tuple[list[str], list[str]]:
    """The English and Korean texts of one GoEmotions split, row-aligned (checked by their label rows)."""
    from .data import load_goemotions

    en, ko = (load_goemotions(lang, split, data_dir=data_dir) for lang in ("en", "ko"))
    if len(en) != len(ko) or en["group"] != ko["group"] or en["emotion"] != ko["emotion"]:
        raise DistillationError(
            f"GoEmotions {split}: the English ({len(en)} rows) and Korean ({len(ko)} rows) files are not row-aligned "
            "(a different row count, or other labels at the same row); the Korean row must translate the English"
        )
    return en["text"], ko["text"]


def _positions(n: int, max_rows: int | None, seed: int) -> np.ndarray:
    if max_rows is None or max_rows >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))


def distil_acceptability(
    teacher: str | Path,
    out: str | Path,
    *,
    data_dir: str | None = None,
    max_rows: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    progress: bool = True,
    command: str = "python -m redheart.training.distil_acceptability",
) -> dict[str, Any]:
    """Write ``out/train.jsonl``, ``out/dev.jsonl`` and ``out/teacher.json``; return the record."""
    from tqdm.auto import tqdm
    from transformers import pipeline

    import redheart  # noqa: F401  (registers the task)

    started = time.perf_counter()
    pipe = pipeline("ethics-emotion", model=str(teacher), dtype="float32")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "teacher": shown_path(teacher),
        "teacher_weights_sha256": weights_sha256(teacher),
    }
    for split, file in SPEC.files.items():
        english, korean = _aligned(split, data_dir)
        positions = _positions(len(english), max_rows, seed)
        targets = np.empty(len(positions))
        frameworks = [ACCEPTABILITY_FRAMEWORKS[p % len(ACCEPTABILITY_FRAMEWORKS)] for p in positions]
        chunk = 256
        bar = tqdm(total=len(positions), desc=f"teacher on GoEmotions EN {split}", disable=not progress)
        for start in range(0, len(positions), chunk):
            picked = positions[start : start + chunk]
            said = pipe([english[p] for p in picked], batch_size=batch_size)
            for k, result in enumerate(said):
                targets[start + k] = result["analysis"]["bentham"]["acceptability"][frameworks[start + k]]
            bar.update(len(picked))
        bar.close()
        spread = _spread(frameworks, targets, split)
        lines = [
            json.dumps(
                {"position": int(p), "text": korean[p], "framework": f, "acceptable": round(float(t), 6)},
                ensure_ascii=False,
            )
            for p, f, t in zip(positions, frameworks, targets, strict=True)
        ]
        (out / file).write_text("\n".join(lines) + "\n", encoding="utf-8")
        record[split] = {"rows": len(lines), "of": len(english), "targets": spread}
    record.update(
        command=command,
        framework_rule="position % 4 over " + ", ".join(ACCEPTABILITY_FRAMEWORKS),
        dtype="float32",
        seed=seed,
        max_rows=max_rows,
        seconds=round(time.perf_counter() - started, 1),
        created=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    )
    (out / TEACHER_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def _spread(frameworks: list[str], targets: np.ndarray, split: str) -> dict[str, dict[str, float]]:
    """Mean and standard deviation of each framework's targets; constant targets are an error."""
    spread = {}
    for name in ACCEPTABILITY_FRAMEWORKS:
        values = targets[[f == name for f in frameworks]]
        if len(values) == 0:
            continue
        spread[name] = {"n": len(values), "mean": float(values.mean()), "std": float(values.std())}
        if len(values) > 1 and values.std() < MIN_TARGET_STD:
            raise DistillationError(
                f"{split}: the teacher gives every comment the same {name} acceptability "
                f"({values.mean():.4f}); there is nothing to distil"
            )
    return spread


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m redheart.training.distil_acceptability", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--teacher", required=True, help="a saved Red Heart model (e.g. models/red-heart-small-e5)"
    )
    p.add_argument(
        "--out", required=True, help="folder to write (pass it as data.sources.goemotions_ko_ethics)"
    )
    p.add_argument("--data-dir", default=None, help="data folder (default: $RH_DATA_DIR)")
    p.add_argument(
        "--max-rows", type=int, default=None, help="seeded sample of N comments per split (default: all)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    command = "python -m redheart.training.distil_acceptability " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    try:
        record = distil_acceptability(
            args.teacher,
            args.out,
            data_dir=args.data_dir,
            max_rows=args.max_rows,
            seed=args.seed,
            batch_size=args.batch_size,
            progress=not args.no_progress,
            command=command,
        )
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: record[k] for k in ("teacher", "train", "dev", "seconds")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
