"""Compare the reported one-pass SURD shares (and the neural head's) with exact SURD over clause subsets, text by text.

Run:  python benchmarks/eval_surd_head.py --model PATH [--data-dir $RH_DATA_DIR]
          [--sources goemotions_en,goemotions_ko,ethics_cm] [--per-source 100] [--seed 0]
          [--judgement ethical_score] [--bins 3] [--binning fixed] [--min-spread X] [--max-clauses 6]
          [--batch-size 32] [--device cpu] [--json results.json] [--texts-file FILE]

For every text with at least two clauses (``redheart.pipelines.explain.split_clauses``) the exact shares
``[redundant, unique, synergistic, leak]`` come from running the saved model on all non-empty clause subsets
(``redheart.training.data.surd_targets.surd_labels``); the reported shares are the pipeline's
``analysis.surd.shares`` for the full text (the clause-count table where the model has one, else the neural
head), the head's are its own output (``return_tensors``). Texts whose judgement is constant over their subsets have no
exact target and are counted, not scored. Prints the mean absolute error per share and overall (the mean
over the four shares), per source and in total, next to the error of always predicting the mean exact
shares of the same texts (an in-sample reference a useful head must beat), with the number of texts and the
command line.

Sources (files of the data folder; texts sampled with ``--seed`` among those with >= 2 clauses):
goemotions_en / goemotions_ko (``dev.tsv``), kote (``val.tsv``), ethics_cm (``commonsense/cm_test.csv``,
the short scenarios), ethics_util (``utilitarianism/util_test.csv``, both scenarios of each pair).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from redheart.configuration_redheart.labels import SURD_SHARES
from redheart.pipelines.explain import DEFAULT_MAX_CLAUSES, split_clauses
from redheart.pipelines.precision import DTYPE_CHOICES, machine_info, machine_line
from redheart.training.data.clause_texts import EVAL_SOURCES, read_source, sample_texts
from redheart.training.data.surd_targets import surd_labels

SOURCES = EVAL_SOURCES
DEFAULT_SOURCES = "goemotions_en,goemotions_ko,ethics_cm"


def load_pipeline(model_path: str, device: str, dtype: str = "auto"):
    """The pipeline on the model, computed in ``dtype`` (``"auto"``: the fastest the device runs natively)."""
    from redheart.modeling_redheart import RedHeartModel
    from redheart.pipelines.ethics_emotion import EthicsEmotionPipeline

    model = RedHeartModel.from_pretrained(model_path)
    return EthicsEmotionPipeline(model=model, device=device, dtype=dtype)


def mae_table(exact: np.ndarray, neural: np.ndarray) -> dict[str, float]:
    err = np.abs(exact - neural)
    out = {k: float(err[:, j].mean()) for j, k in enumerate(SURD_SHARES)}
    out["overall"] = float(err.mean())
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", required=True, help="saved Red Heart model folder (save_pretrained output)"
    )
    parser.add_argument("--data-dir", default=os.environ.get("RH_DATA_DIR"), help="data folder (RH_DATA_DIR)")
    parser.add_argument("--sources", default=DEFAULT_SOURCES, help=f"comma-separated, of {sorted(SOURCES)}")
    parser.add_argument("--texts-file", help="UTF-8 file with one text per line (replaces --sources)")
    parser.add_argument("--per-source", type=int, default=100, help="texts per source (>= 2 clauses each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--judgement", default="ethical_score", choices=["ethical_score", "valence", "regret"]
    )
    parser.add_argument("--bins", type=int, default=3)
    parser.add_argument("--binning", default="fixed", choices=["fixed", "range"])
    parser.add_argument("--min-spread", type=float, help="binning=range: smaller spreads count as constant")
    parser.add_argument("--max-clauses", type=int, default=DEFAULT_MAX_CLAUSES)
    parser.add_argument("--batch-size", type=int, default=32, help="windows per model call")
    parser.add_argument(
        "--chunk", type=int, default=256, help="subset texts per pipeline call (progress unit)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=DTYPE_CHOICES,
        help="default auto: the fastest the device runs natively",
    )
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    command = "python benchmarks/eval_surd_head.py " + shlex.join(sys.argv[1:] if argv is None else argv)

    corpus: dict[str, list[str]] = {}
    if args.texts_file:
        lines = Path(args.texts_file).read_text(encoding="utf-8").splitlines()
        corpus["texts_file"] = [
            t for t in dict.fromkeys(x.strip() for x in lines) if len(split_clauses(t)) >= 2
        ]
    else:
        if not args.data_dir:
            raise SystemExit("no data folder: pass --data-dir or set RH_DATA_DIR (or give --texts-file)")
        for name in (s.strip() for s in args.sources.split(",") if s.strip()):
            if name not in SOURCES:
                raise SystemExit(f"unknown source {name!r}; choose from {sorted(SOURCES)}")
            try:
                texts = read_source(Path(args.data_dir), name)
            except FileNotFoundError as exc:
                raise SystemExit(str(exc)) from exc
            corpus[name] = sample_texts(texts, args.per_source, args.seed)
    texts = [t for ts in corpus.values() for t in ts]
    source_of = [name for name, ts in corpus.items() for _ in ts]
    if not texts:
        raise SystemExit("no texts with at least two clauses")

    start = time.perf_counter()
    pipe = load_pipeline(args.model, args.device, args.dtype)
    machine = machine_info(pipe.model.dtype, pipe.device)
    trained = list(getattr(pipe.model.config, "trained_tasks", []) or [])
    calls = {"texts": 0}

    def analyze(batch: list[str]) -> list[dict]:
        out = pipe(batch, batch_size=args.batch_size)
        calls["texts"] += len(batch)
        print(
            f"  {calls['texts']} subset texts analysed ({time.perf_counter() - start:.0f} s)", file=sys.stderr
        )
        return out

    exact, status = surd_labels(
        texts,
        analyze,
        judgement=args.judgement,
        bins=args.bins,
        binning=args.binning,
        max_clauses=args.max_clauses,
        batch_size=args.chunk,
        min_spread=args.min_spread,
    )
    results = pipe(texts, batch_size=args.batch_size, return_tensors=True)
    reported = np.array([[r["analysis"]["surd"]["shares"][k] for k in SURD_SHARES] for r in results])
    head = np.array([r["tensors"]["surd_shares"].reshape(-1).tolist() for r in results])
    reported_by = [r["analysis"]["surd"]["source"] for r in results]
    elapsed = time.perf_counter() - start

    ok = np.array([s == "ok" for s in status])
    sources = np.array(source_of)
    report: dict = {
        "command": command,
        "machine": machine,
        "model": args.model,
        "trained_tasks": trained,
        "judgement": {
            "name": args.judgement,
            "bins": args.bins,
            "binning": args.binning,
            "min_spread": args.min_spread,
        },
        "max_clauses": args.max_clauses,
        "seconds": elapsed,
        "subset_texts_analysed": calls["texts"],
        "groups": {},
    }
    print(f"command: {command}")
    print(machine_line(machine))
    print(
        f"model: {args.model}   trained tasks: {trained or 'none'}   {elapsed:.1f} s, "
        f"{calls['texts']} subset texts"
    )
    if "surd" not in trained:
        print("warning: 'surd' is not among the model's trained tasks: the neural head is untrained")
    print(
        f"judgement: {args.judgement}, {args.bins} bins ({args.binning}); clauses capped at {args.max_clauses}"
    )
    header = f"{'group':<16}{'texts':>6}{'scored':>7}{'const':>6}" + "".join(f"{k:>13}" for k in SURD_SHARES)
    print(header + f"{'overall':>10}{'head':>8}{'mean-pred':>11}")
    for name in [*corpus, "all"]:
        sel = np.ones(len(texts), bool) if name == "all" else sources == name
        scored = sel & ok
        counts = {
            "texts": int(sel.sum()),
            "scored": int(scored.sum()),
            "constant": int(sum(1 for s, m in zip(status, sel, strict=True) if m and s == "constant")),
        }
        entry: dict = {**counts}
        line = f"{name:<16}{counts['texts']:>6}{counts['scored']:>7}{counts['constant']:>6}"
        if counts["scored"]:
            mae = mae_table(exact[scored].astype(np.float64), reported[scored])
            head_mae = mae_table(exact[scored].astype(np.float64), head[scored])
            baseline = mae_table(
                exact[scored].astype(np.float64),
                np.broadcast_to(exact[scored].mean(axis=0), exact[scored].shape),
            )
            entry.update(
                mae=mae,
                head_mae=head_mae,
                reported_by={
                    src: int(sum(1 for x, m in zip(reported_by, scored, strict=True) if m and x == src))
                    for src in sorted(set(reported_by))
                },
                mean_predictor_mae=baseline,
                exact_mean=dict(zip(SURD_SHARES, map(float, exact[scored].mean(axis=0)), strict=True)),
                reported_mean=dict(zip(SURD_SHARES, map(float, reported[scored].mean(axis=0)), strict=True)),
            )
            line += "".join(f"{mae[k]:>13.4f}" for k in SURD_SHARES) + f"{mae['overall']:>10.4f}"
            line += f"{head_mae['overall']:>8.4f}"
            line += f"{baseline['overall']:>11.4f}"
        else:
            line += "   (no text with a non-constant judgement)"
        report["groups"][name] = entry
        print(line)
    print(
        "MAE = mean |exact - reported| per share (analysis.surd.shares: the clause-count table where the model "
        "has one, else the neural head); overall = mean over the 4 shares; head = overall MAE of the neural "
        "head's own shares; mean-pred = overall MAE of always predicting the mean exact shares of the scored texts"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
