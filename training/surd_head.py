"""Distil the exact SURD decomposition into the one-pass estimate of ``analysis.surd``: head and clause-count table.

``python -m redheart.training.surd_head --model DIR [--out DIR] [--per-source 300] [--data-dir D]``

The exact decomposition of a text (``pipelines/explain``) runs the model on every non-empty subset of the text's
clauses (up to 63 calls) and decomposes the model's ethical judgement over them; the neural head predicts the
four shares ``[redundant, unique, synergistic, leak]`` in the one pass that computes everything else. This stage

1. draws training-side texts with at least two clauses (``data/clause_texts.TRAIN_SOURCES``; the benchmark
   ``benchmarks/eval_surd_head.py`` scores on held-out files);
2. computes their exact shares with the model itself (``data/surd_targets.surd_labels``: texts whose judgement is
   constant over their subsets have no target and are counted);
3. fits only the two SURD output layers (``heads.surd.output``, ``analyzers.surd.output``) to them with the
   model's SURD loss, keeping the epoch with the lowest error on a held-out fifth. Every other output stays
   bit-identical -- the summaries those layers read come before them -- so the targets, which depend on the
   model's judgement, stay exact for the model that ships;
4. takes, per clause count, the median exact shares of the training texts with that many clauses
   (:func:`clause_count_shares`) into ``config.surd_clause_shares``: the shares the pipeline reports for a text
   of two or more clauses. The exact shares are mostly a matter of how many clauses there are (two clauses:
   mostly unique; five: mostly synergy), which the head's one pass over the whole text does not see; on held-out
   texts the table is the better estimate (``redheart_surd_head.json`` has both errors);
5. saves the model (its stored dtype) with ``surd`` among its trained tasks and ``redheart_surd_head.json``: the
   sizes, the mean absolute share error on the held-out fifth before, of the fitted head, of the clause-count
   table (``heldout_mae_after``: what the pipeline reports) and of always predicting the mean training shares
   (the baseline a useful estimate must beat).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..configuration_redheart.labels import ACCEPTABILITY_FRAMEWORKS, SURD_SHARES
from ..configuration_redheart.tasks import IGNORE_INDEX, LANGUAGE_IDS
from ..pipelines.explain.clauses import clause_count
from ..pipelines.result import clause_count_row
from .data.clause_texts import TRAIN_SOURCES, read_source, sample_texts

RECORD = "redheart_surd_head.json"
#: Fewest texts behind one clause count's shares (rarer counts are pooled with the counts below them).
MIN_TEXTS_PER_COUNT = 10
#: The parameters this stage trains (everything else is frozen).
TRAINED_PREFIXES = ("heads.surd.output.", "analyzers.surd.output.")


def exact_targets(
    model, texts: list[str], batch_size: int = 32, progress: bool = True
) -> tuple[np.ndarray, list[str]]:
    """Exact SURD shares of ``texts`` under ``model``'s own judgement (rows of -100 where undefined)."""
    from ..pipelines.ethics_emotion import EthicsEmotionPipeline
    from .data.surd_targets import surd_labels

    pipe = EthicsEmotionPipeline(model=model, dtype="auto")
    done = {"n": 0}
    started = time.perf_counter()

    def analyze(batch: list[str]) -> list[dict]:
        out = pipe(batch, batch_size=batch_size)
        done["n"] += len(batch)
        if progress:
            print(
                f"  exact SURD: {done['n']:,} subset texts analysed ({time.perf_counter() - started:.0f} s)"
            )
        return out

    return surd_labels(texts, analyze, batch_size=256)


def _table(texts: list[str], languages: list[str], targets: np.ndarray):
    """An ExampleTable that carries only SURD targets."""
    from .collate import ExampleTable
    from .data.schema import NUM_EMOTIONS, NUM_KOTE

    n = len(texts)

    def missing(*shape: int) -> np.ndarray:
        return np.full((n, *shape), IGNORE_INDEX, dtype=np.float32)

    return ExampleTable(
        text=list(texts),
        worse=[None] * n,
        language=np.array([LANGUAGE_IDS[x] for x in languages], dtype=np.int64),
        source=np.array(["surd"] * n, dtype=object),
        emotion=missing(NUM_EMOTIONS),
        kote=missing(NUM_KOTE),
        sentiment=missing(),
        acceptability=missing(len(ACCEPTABILITY_FRAMEWORKS)),
        regret=missing(),
        surd=targets.astype(np.float32),
    )


def _shares(model, collator, rows: np.ndarray, batch_size: int) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate(
            [
                model(**collator(rows[i : i + batch_size])).surd_shares.float().numpy()
                for i in range(0, len(rows), batch_size)
            ]
        )


def mae(exact: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute error over the four shares."""
    return float(np.abs(exact - predicted).mean())


def clause_count_shares(
    targets: np.ndarray, counts: np.ndarray, min_texts: int = MIN_TEXTS_PER_COUNT
) -> dict[str, list[float]]:
    """Clause count (2 .. the largest in ``counts``) -> the median of ``targets`` over the texts with that many
    clauses, renormalised to sum 1 (the median minimises the absolute error the head is scored by). A count with
    fewer than ``min_texts`` texts is pooled with the next smaller counts until it has them (or reaches 2)."""
    if len(targets) != len(counts) or not len(targets):
        raise ValueError(
            f"need one clause count per target row, got {len(counts)} counts, {len(targets)} rows"
        )
    if counts.min() < 2:
        raise ValueError("a text with an exact SURD target has at least two clauses")
    table = {}
    for n in range(2, int(counts.max()) + 1):
        low, chosen = n, counts == n
        while chosen.sum() < min_texts and low > 2:
            low -= 1
            chosen |= counts == low
        if not chosen.any():
            continue
        median = np.median(targets[chosen], axis=0)
        shares = median / median.sum() if median.sum() > 0 else targets[chosen].mean(axis=0)
        table[str(n)] = [float(v) for v in shares]
    return table


def table_shares(table: dict[str, list[float]], counts: np.ndarray) -> np.ndarray:
    """The table's shares for each clause count, read as the pipeline reads them."""
    return np.array([clause_count_row(table, int(n)) for n in counts])


def fit_output_layers(
    model,
    collator,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    val_targets: np.ndarray,
    *,
    epochs: int = 60,
    lr: float = 3e-3,
    batch_size: int = 64,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Train the SURD output layers (model in eval mode: no dropout); restore the epoch with the lowest held-out
    error. Returns the per-epoch history."""
    model.eval()
    trained = []
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(TRAINED_PREFIXES))
        if param.requires_grad:
            trained.append(param)
    if not trained:
        raise ValueError(f"the model has no parameters under {TRAINED_PREFIXES} (heads and analyzers on?)")
    optimizer = torch.optim.AdamW(trained, lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    best = (
        mae(val_targets, _shares(model, collator, val_rows, batch_size)),
        [p.detach().clone() for p in trained],
    )
    history = [{"epoch": 0, "val_mae": best[0]}]
    for epoch in range(1, epochs + 1):
        order = rng.permutation(train_rows)
        losses = []
        for i in range(0, len(order), batch_size):
            out = model(**collator(order[i : i + batch_size]))
            loss = out.task_losses["surd"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        val = mae(val_targets, _shares(model, collator, val_rows, batch_size))
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_mae": val})
        if val < best[0]:
            best = (val, [p.detach().clone() for p in trained])
    with torch.no_grad():
        for param, kept in zip(trained, best[1], strict=True):
            param.copy_(kept)
    for param in model.parameters():
        param.requires_grad_(True)
    return history


def distil(
    model_dir: str | Path,
    out: str | Path | None = None,
    *,
    data_dir: str | None = None,
    per_source: int = 300,
    seed: int = 0,
    epochs: int = 60,
    progress: bool = True,
    command: str = "redheart.training.surd_head.distil",
) -> dict[str, Any]:
    """Steps 1-4 of the module docstring; returns the record written beside the model (``command``: what ran it)."""
    from ..modeling_redheart import RedHeartModel
    from .config import TrainConfig
    from .data.common import DATA_DIR_ENV, resolve_data_dir
    from .features import build_stores

    started = time.perf_counter()
    model_dir, out = Path(model_dir), Path(out or model_dir)
    root = resolve_data_dir(data_dir)
    if root is None:
        raise FileNotFoundError(f"no data folder: pass data_dir (--data-dir) or set {DATA_DIR_ENV}")
    texts, languages = [], []
    for name, (_, _, _, language) in TRAIN_SOURCES.items():
        drawn = sample_texts(read_source(root, name, TRAIN_SOURCES), per_source, seed)
        texts += drawn
        languages += [language] * len(drawn)
    stored = RedHeartModel.from_pretrained(str(model_dir))
    stored_dtype = stored.dtype
    model = stored.to(torch.float32)
    targets, status = exact_targets(model, texts, progress=progress)
    model = model.to(torch.float32)  # the pipeline may have cast it to the machine's compute dtype
    labelled = np.flatnonzero(targets[:, 0] != IGNORE_INDEX)
    if len(labelled) < 20:
        raise ValueError(
            f"only {len(labelled)} of {len(texts)} texts have an exact SURD target (the rest: constant judgement); "
            "too few to fit the head -- draw more with per_source"
        )
    order = np.random.default_rng(seed).permutation(labelled)
    n_val = max(10, len(order) // 5)
    val_rows, train_rows = np.sort(order[:n_val]), np.sort(order[n_val:])
    table = _table(texts, languages, targets)
    cfg = TrainConfig()
    cfg.train.progress = progress
    stores = build_stores(cfg, model.config, table.texts_by_language(), None, print)
    from .collate import Collator

    collator = Collator(table, stores, model.config.encoders, ["surd"])
    before = mae(targets[val_rows], _shares(model, collator, val_rows, 64))
    mean_shares = targets[train_rows].mean(axis=0)
    baseline = mae(targets[val_rows], np.broadcast_to(mean_shares, targets[val_rows].shape))
    history = fit_output_layers(
        model, collator, train_rows, val_rows, targets[val_rows], epochs=epochs, seed=seed
    )
    head = min(h["val_mae"] for h in history)
    counts = np.array([clause_count(t) for t in texts])
    table = clause_count_shares(targets[train_rows], counts[train_rows])
    after = mae(targets[val_rows], table_shares(table, counts[val_rows]))
    model.config.surd_clause_shares = table
    model.config.trained_tasks = sorted(set(model.config.trained_tasks) | {"surd"})
    model.to(stored_dtype).save_pretrained(str(out))
    record = {
        "command": command,
        "per_source": per_source,
        "seed": seed,
        "from": str(model_dir),
        "texts": len(texts),
        "status": {s: status.count(s) for s in sorted(set(status))},
        "train_targets": int(len(train_rows)),
        "heldout_targets": int(len(val_rows)),
        "heldout_mae_before": before,
        "heldout_mae_head": head,
        "heldout_mae_after": after,
        "heldout_mae_mean_shares": baseline,
        "clause_count_shares": table,
        "texts_per_clause_count": {
            str(n): int((counts[train_rows] == n).sum()) for n in sorted(set(counts[train_rows].tolist()))
        },
        "mean_training_shares": dict(zip(SURD_SHARES, mean_shares.round(4).tolist(), strict=True)),
        "trained_parameters": list(TRAINED_PREFIXES),
        "epochs": epochs,
        "history": history,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def summary(record: dict[str, Any]) -> str:
    """One line of a distillation record: sizes and the held-out errors."""
    return (
        f"SURD: {record['train_targets']} training / {record['heldout_targets']} held-out targets; held-out share "
        f"MAE: head {record['heldout_mae_before']:.3f} -> {record['heldout_mae_head']:.3f}, clause-count table "
        f"{record['heldout_mae_after']:.3f} (reported), mean shares {record['heldout_mae_mean_shares']:.3f}; "
        f"{record['seconds']:.0f} s"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m redheart.training.surd_head", description=__doc__.split("\n")[0]
    )
    p.add_argument("--model", required=True, help="saved Red Heart model folder")
    p.add_argument("--out", default=None, help="where to save (default: over --model)")
    p.add_argument("--data-dir", default=None, help="data folder (default: $RH_DATA_DIR)")
    p.add_argument("--per-source", type=int, default=300, help="texts drawn per training source")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    command = "python -m redheart.training.surd_head " + " ".join(sys.argv[1:] if argv is None else argv)
    record = distil(
        args.model,
        args.out,
        data_dir=args.data_dir,
        per_source=args.per_source,
        seed=args.seed,
        epochs=args.epochs,
        command=command.strip(),
    )
    print(summary(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
