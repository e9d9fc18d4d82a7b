"""The shipped default model's speed, per backend, against the classifier a user would otherwise pick -- one run.

Systems, all on the same texts:

* ``torch auto``   -- ``pipeline("ethics-emotion")`` as shipped (bf16 weights computed in the dtype the CPU runs
  natively: float32 unless it has AVX-512 BF16 or AMX);
* ``torch bf16``   -- the same forced to bfloat16 (emulated, and slow, on CPUs without native bf16);
* ``torch int8``   -- ``quantize="int8"``: the linear layers of the encoder and the model as torch's dynamic int8
  (FBGEMM, which ``--isa`` holds too), the rest float32 (``redheart.pipelines.quantization``);
* ``onnx fp32`` / ``onnx int8`` -- ``backend="onnx"``: the encoder and the model as onnxruntime graphs (``onnx_backend``),
  exported into the cache on first use;
* ``roberta-base classifier`` -- ``pipeline("text-classification")`` on a RoBERTa-base-shaped 28-label multi-label
  classifier (random weights, a locally trained tokenizer; ``redheart.encoders.testing``): what a GoEmotions user
  would run instead. It gives 28 probabilities; Red Heart gives the whole analysis.

Inputs are real sentences (``RH_DATA_DIR``: GoEmotions EN dev and KOTE, alternating): *short* = one sentence each
(about 18 e5 tokens), *long* = sentences joined to about 120 e5 tokens (one window of the shipped model, within
RoBERTa's 512). Latency: one text per call, systems alternated text by text, each call after ``--pause-ms`` (20)
idle -- torch's OpenMP threads spin for milliseconds after a call and, back to back, take the 2 cores from the next
system's call (measured on the EPYC held to AVX2, 2026-12-08: onnx int8 13.7 ms p50 alone, 17.2 ms alternated back
to back with the RoBERTa classifier) -- p50/p95. Throughput: batches of ``--batch-size`` texts, best of two rounds.
Speed figures are comparable only within one run on one machine.

    RH_DATA_DIR=../shared/data python benchmarks/bench_default.py [--runs 60] [--batch-size 32] [--json out.json]
    RH_DATA_DIR=../shared/data python benchmarks/bench_default.py --isa avx2   # AVX2 kernels on an AVX-512 machine
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
from transformers.utils import logging as hf_logging

import redheart  # noqa: F401  (registers the ethics-emotion task)
from redheart.encoders.testing import build_base_encoder, read_tsv_column
from redheart.pipelines.isa_hold import add_isa_argument, limit_isa, onnx_hold_refusal
from redheart.pipelines.precision import (
    machine_info,
    machine_line,
)
from redheart.pipelines.stage_metrics import quantile

SYSTEMS = ("torch auto", "torch bf16", "torch int8", "onnx fp32", "onnx int8", "roberta-base classifier")


def sentences(data_dir: str | None, count: int) -> list[str]:
    """Real sentences, English and Korean alternating (built-in samples without the data folder)."""
    from redheart.encoders.testing import SAMPLE_SENTENCES

    if data_dir and Path(data_dir).is_dir():
        en = list(read_tsv_column(Path(data_dir) / "goemotions_en" / "dev.tsv", 0, count))
        ko = list(read_tsv_column(Path(data_dir) / "kote" / "val.tsv", 1, count))
        return [t for pair in zip(en, ko, strict=False) for t in pair][:count]
    return (list(SAMPLE_SENTENCES) * (count // len(SAMPLE_SENTENCES) + 1))[:count]


def joined(pool: list[str], tokenize, target: int, count: int) -> list[str]:
    """``count`` texts of about ``target`` tokens, joined from consecutive sentences of ``pool``."""
    out, i = [], 0
    while len(out) < count:
        parts, tokens = [], 0
        while tokens < target:
            parts.append(pool[i % len(pool)])
            tokens += tokenize(pool[i % len(pool)])
            i += 1
        out.append(" ".join(parts))
    return out


def classifier(labels: int = 28):
    """A RoBERTa-base-shaped multi-label classifier pipeline (random weights; its cost is the real one)."""
    folder = build_base_encoder("roberta")
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=labels, problem_type="multi_label_classification"
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return pipeline(
        "text-classification", model=model, tokenizer=tokenizer, top_k=None, function_to_apply="sigmoid"
    )


def timed(fn, *args: Any, **kwargs: Any) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def measure(
    systems: dict[str, Any], texts: list[str], batch_texts: list[str], batch_size: int, pause_s: float
) -> dict:
    """p50/p95 single-text latency (systems alternated per text, ``pause_s`` idle before each call) and batched
    texts/s (best of two rounds)."""
    names = list(systems)
    for name in names:  # warm-up
        systems[name](texts[0])
        systems[name](batch_texts[:batch_size], batch_size=batch_size)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i, text in enumerate(texts):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            time.sleep(pause_s)
            times[name].append(timed(systems[name], text))
    out = {}
    for name in names:
        best = min(timed(systems[name], batch_texts, batch_size=batch_size) for _ in range(2))
        ordered = sorted(times[name])
        out[name] = {
            "p50_ms": 1000 * quantile(ordered, 0.5),
            "p95_ms": 1000 * quantile(ordered, 0.95),
            "texts_per_s": len(batch_texts) / best,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=60, help="texts per latency measurement")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=4, help="batches per throughput round")
    parser.add_argument(
        "--pause-ms",
        type=float,
        default=20.0,
        help="idle time before each single-text call, so that the previous system's OpenMP threads (which spin "
        "for milliseconds after a call) do not take the cores from the next system's call; 0: back to back",
    )
    parser.add_argument(
        "--systems",
        nargs="+",
        choices=SYSTEMS,
        default=None,
        help="default: all (with --isa: all but onnx where onnxruntime cannot be held)",
    )
    parser.add_argument("--json", type=Path, default=None)
    add_isa_argument(parser)
    args = parser.parse_args(argv)
    if args.pause_ms < 0:
        parser.error("--pause-ms must be >= 0")
    refusal = onnx_hold_refusal(args.isa)
    if args.systems is None:
        args.systems = [s for s in SYSTEMS if not (refusal and s.startswith("onnx"))]
    if refusal and any(s.startswith("onnx") for s in args.systems):
        parser.error(refusal)
    limit_isa(args.isa)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    started = time.perf_counter()

    systems: dict[str, Any] = {}
    for name in args.systems:
        if name == "roberta-base classifier":
            systems[name] = classifier()
        elif name == "torch int8":
            systems[name] = pipeline("ethics-emotion", quantize="int8")
        elif name.startswith("torch"):
            systems[name] = pipeline(
                "ethics-emotion", dtype="auto" if name == "torch auto" else torch.bfloat16
            )
        else:
            systems[name] = pipeline("ethics-emotion", backend="onnx", onnx_precision=name.split()[1])
    shipped = next((s for s in systems.values() if hasattr(s, "encoders")), None) or pipeline(
        "ethics-emotion"
    )
    e5 = shipped.encoders[next(iter(shipped.encoders))]
    count_e5 = lambda text: len(e5.tokenize([text])[0].ids)  # noqa: E731
    pool = sentences(os.environ.get("RH_DATA_DIR"), 4000)
    n_batch = args.batch_size * args.batches
    inputs = {
        "short": (pool[: args.runs], pool[1000 : 1000 + n_batch]),
        "long": (
            joined(pool[2000:], count_e5, 120, max(8, args.runs // 2)),
            joined(pool[3000:], count_e5, 120, n_batch // 2),
        ),
    }
    results, tokens = {}, {}
    for label, (texts, batch_texts) in inputs.items():
        results[label] = measure(systems, texts, batch_texts, args.batch_size, args.pause_ms / 1000)
        tokens[label] = sum(count_e5(t) for t in texts) / len(texts)
        if "roberta-base classifier" in systems:
            tok = systems["roberta-base classifier"].tokenizer
            tokens[f"{label}_roberta"] = sum(len(tok(t)["input_ids"]) for t in texts) / len(texts)

    dtype = str(shipped.model.dtype).replace("torch.", "")
    info = machine_info(shipped.model.dtype)
    print("\n" + machine_line(info))
    print(f"shipped model: {shipped.model.config._name_or_path} | torch auto computes in {dtype}")
    header = ("input", "system", "p50 ms", "p95 ms", f"texts/s (batch {args.batch_size})")
    widths = (30, 26, 8, 8, 20)
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for label, by_system in results.items():
        first = True
        tok = f"{tokens[label]:.0f} e5 tok" + (
            f", {tokens[label + '_roberta']:.0f} roberta" if f"{label}_roberta" in tokens else ""
        )
        for name, s in by_system.items():
            cells = (
                f"{label} ({tok})" if first else "",
                name,
                f"{s['p50_ms']:.1f}",
                f"{s['p95_ms']:.1f}",
                f"{s['texts_per_s']:.1f}",
            )
            print(" | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
            first = False
    print(f"\nwall time {time.perf_counter() - started:.0f} s; command: python {' '.join(sys.argv)}")
    if args.json:
        meta = {**info, "torch_auto_dtype": dtype}
        args.json.write_text(json.dumps({"meta": meta, "tokens": tokens, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
