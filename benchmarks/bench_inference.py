"""Inference benchmark: the full Red Heart system against the naive three-encoder baseline, in one run.

Full system: ``pipeline("ethics-emotion", model=<330m preset>)`` -- three base-size encoders of the production
shapes (KcELECTRA-base, RoBERTa-base, KLUE-BERT-base; random weights, locally trained tokenizers; built by
``redheart.encoders.testing`` and cached) plus ``RedHeartModel`` of the ``330m`` preset (random weights), computed
in ``--dtype`` (``auto``, default: the fastest dtype this machine runs natively -- bfloat16 only with AVX-512 BF16
or AMX on a CPU, or on a GPU with bf16 -- else float32; ``redheart.pipelines.precision``) on the ``--backend``
(``torch``, default, or ``onnx``: the encoders and the model as onnxruntime graphs, ``--onnx-precision int8``
(default) or ``fp32``, exported once into a cache folder keyed by the model; the 330m export takes minutes);
``--quantize int8`` runs the torch backend's linear layers (encoders and model) as dynamic int8
(``redheart.pipelines.quantization``). ``--isa avx2`` holds onnxruntime too where the CPU has CPUID faulting
(``redheart.pipelines.isa_hold``), and is refused with ``--backend onnx`` where it has not.
Naive baseline: what a user would write without Red Heart -- three ``pipeline("feature-extraction")`` on the same
three encoder folders, called one text at a time (``return_tensors=True``, so no Python-list conversion cost is
charged to it). The baseline produces only encoder features; the full system produces the whole analysis.

Inputs are real sentences from the data folder (``RH_DATA_DIR``: GoEmotions EN and KOTE KO, half each), joined
to about 48 tokens (short) and about 400 tokens (long). Latency runs alternate the two systems text by text, so
background load hits both alike; throughput is the better of two rounds of each. The machine line (the one every
benchmark prints: ``redheart.pipelines.precision.machine_line``) names the CPU capability, torch, its threads and
the dtype the full system computes in, and the load average, because on a shared machine other processes change
the numbers.

    python benchmarks/bench_inference.py                  # the full comparison (a few minutes on 2 cores)
    python benchmarks/bench_inference.py --quick          # smoke run on tiny models (seconds)
    python benchmarks/bench_inference.py --dtype float32 --threads 1 --encoder-workers 2
    python benchmarks/bench_inference.py --backend onnx [--onnx-precision fp32]   # the same tables, onnxruntime
    python benchmarks/bench_inference.py --isa avx2        # the AVX2 kernels on an AVX-512 machine
    python benchmarks/bench_inference.py --quantize int8 [--isa avx2]   # torch with int8 linear layers
    python benchmarks/bench_inference.py --image-only      # only the text + image row (add --quick: tiny model)

The text + image row (``--image`` adds it, ``--image-only`` runs only it) sends each short text with a photo
(scikit-image's astronaut, 512x512, one face; needs the ``vision`` extra and ``fer``): per request the image is
read, searched for faces, each face classified (and its mirror image), and fused with the text. It reports the
latency of text-only and text + image requests (alternated), batched throughput of both, and the face step
alone (read + detect + classify, no text model).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import pipeline
from transformers.utils import logging as hf_logging

import redheart  # noqa: F401  (registers the ethics-emotion task)
from redheart.configuration_redheart.config import RedHeartConfig
from redheart.configuration_redheart.presets import preset_kwargs
from redheart.encoders.testing import (
    SAMPLE_SENTENCES,
    base_encoder_entries,
    build_base_encoder,
    build_tiny_system,
    default_cache_dir,
    read_tsv_column,
)
from redheart.modeling_redheart.modeling import RedHeartModel
from redheart.pipelines.isa_hold import add_isa_argument, limit_isa, onnx_hold_refusal
from redheart.pipelines.precision import (  # noqa: F401  (cpu_model, load_average: bench_default imports them here)
    DTYPE_CHOICES,
    cpu_model,
    dtype_name,
    load_average,
    machine_info,
    machine_line,
)
from redheart.pipelines.quantization import QUANTIZATIONS, parameter_count
from redheart.pipelines.stage_metrics import quantile

MODEL_MARKER = "redheart_bench_model.json"


def build_full_system(seed: int = 0, stride: int | None = None) -> tuple[Path, dict[str, Path]]:
    """The 330m preset with its encoder entries pointed at local base-size folders (both cached).

    ``stride`` overrides ``backbone.token_pool_stride`` (parameter-free, so the weights are the same).
    """
    folders = {name: build_base_encoder(name, seed=seed) for name in ("kcelectra", "roberta", "klue_bert")}
    kwargs = preset_kwargs("330m")
    kwargs["encoders"] = base_encoder_entries(folders)
    backbone = kwargs.setdefault("backbone", {})
    if stride is not None:
        backbone["token_pool_stride"] = stride
    marker = {"preset": "330m", "seed": seed, "random_weights": True, "config": kwargs}
    stride_folder = f"stride-{backbone['token_pool_stride']}"
    out = default_cache_dir().parent / f"redheart-330m-random-s{seed}" / stride_folder
    if not (out / MODEL_MARKER).is_file() or json.loads((out / MODEL_MARKER).read_text()) != marker:
        torch.manual_seed(seed)
        model = RedHeartModel(RedHeartConfig(**kwargs)).eval()
        model.save_pretrained(out)
        (out / MODEL_MARKER).write_text(json.dumps(marker))
    return out, folders


def onnx_folder(model_dir: Path) -> Path:
    """The ONNX export of a benchmark model: beside it, keyed by its build marker (the marker fixes the weights), so a
    rebuilt model never meets a stale export."""
    marker = model_dir / MODEL_MARKER
    key = hashlib.sha256(marker.read_bytes()).hexdigest()[:16] if marker.is_file() else "quick"
    return model_dir.parent / f"{model_dir.name}-onnx-{key}"


def load_full_system(model_dir: Path, args: argparse.Namespace, workers: int):
    """``pipeline("ethics-emotion")`` of the full system with the chosen dtype and backend (exporting on first use)."""
    options: dict = {"dtype": args.dtype, "encoder_workers": workers, "quantize": args.quantize}
    if args.backend == "onnx":
        from redheart.onnx_backend.manifest import MANIFEST

        folder = onnx_folder(model_dir)
        if not (folder / MANIFEST).is_file():
            print(
                f"exporting the full system to ONNX into {folder} (once; the 330m system takes minutes) ...",
                flush=True,
            )
        options.update(backend="onnx", onnx_folder=str(folder), onnx_precision=args.onnx_precision)
    return pipeline("ethics-emotion", model=str(model_dir), **options)


def system_dtype(full) -> str:
    """What the full system computes in: the model's dtype (torch), or the onnx graph's precision."""
    described = full.describe_model()
    if described["backend"] == "torch-int8":
        return "torch (int8 linear layers, float32)"
    if described["backend"] == "torch":
        encoders = {dtype_name(next(h.model.parameters()).dtype) for h in full.encoders.values()}
        return described["dtype"] + (
            "" if encoders == {described["dtype"]} else f" (encoders {'/'.join(encoders)})"
        )
    return (
        f"{described['backend']} ({'int8 weights, ' if described['backend'].endswith('int8') else ''}float32)"
    )


def build_quick_system() -> tuple[Path, dict[str, Path]]:
    root = Path(tempfile.mkdtemp(prefix="redheart-bench-quick-"))
    model_dir = build_tiny_system(root, max_length=128)
    return model_dir, {"enc_a": root / "enc_a", "enc_b": root / "enc_b"}


def corpus_lines(language: str) -> list[str]:
    root = os.environ.get("RH_DATA_DIR")
    if root and Path(root).is_dir():
        path, column = (
            (Path(root) / "goemotions_en" / "dev.tsv", 0)
            if language == "en"
            else (Path(root) / "kote" / "val.tsv", 1)
        )
        if path.is_file():
            return list(read_tsv_column(path, column, 4000))
    pick = [s for s in SAMPLE_SENTENCES if (ord(s[0]) >= 0xAC00) == (language == "ko")]
    return pick * 50


def make_texts(pipe, language: str, target_tokens: int, count: int, offset: int) -> list[str]:
    """``count`` texts of about ``target_tokens`` tokens (counted by the language's first routed encoder)."""
    handle = next(
        pipe.encoders[n]
        for n in pipe.encoders
        if language in pipe.encoders[n].languages or "*" in pipe.encoders[n].languages
    )
    lines = corpus_lines(language)
    texts, i = [], offset
    while len(texts) < count:
        parts, tokens = [], 0
        while tokens < target_tokens:
            line = lines[i % len(lines)]
            i += 1
            n = len(handle.tokenize([line])[0].ids)
            if parts and tokens + n > target_tokens * 1.15:
                continue
            parts.append(line)
            tokens += n
        texts.append(" ".join(parts))
    return texts


def mixed_texts(pipe, target: int, count: int, offset: int = 0) -> list[str]:
    en = make_texts(pipe, "en", target, (count + 1) // 2, offset)
    ko = make_texts(pipe, "ko", target, count // 2, offset)
    out = []
    for a, b in zip(en, ko + [None], strict=False):
        out += [a] + ([b] if b is not None else [])
    return out[:count]


def token_counts(pipe, texts: list[str]) -> dict[str, float]:
    return {
        name: statistics.mean(len(h.tokenize([t])[0].ids) for t in texts) for name, h in pipe.encoders.items()
    }


def naive_call(extractors, text: str) -> None:
    for extractor in extractors:
        extractor(text, return_tensors=True, tokenize_kwargs={"truncation": True})


def latency(full, extractors, texts: list[str]) -> tuple[list[float], list[float]]:
    naive_t, full_t = [], []
    for i, text in enumerate(texts):
        order = [("naive", lambda t=text: naive_call(extractors, t)), ("full", lambda t=text: full(t))]
        for name, fn in order if i % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            fn()
            (naive_t if name == "naive" else full_t).append(time.perf_counter() - start)
    return naive_t, full_t


def throughput(full, extractors, texts: list[str], batch_size: int, rounds: int) -> dict[str, float]:
    """Texts per second (best round) and process CPU seconds per text (all threads; best round) of each system."""
    best = {
        "naive_wall": float("inf"),
        "full_wall": float("inf"),
        "naive_cpu": float("inf"),
        "full_cpu": float("inf"),
    }
    for _ in range(rounds):
        for name, fn in (
            ("naive", lambda: [naive_call(extractors, t) for t in texts]),
            ("full", lambda: full(texts, batch_size=batch_size)),
        ):
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            best[f"{name}_wall"] = min(best[f"{name}_wall"], time.perf_counter() - wall)
            best[f"{name}_cpu"] = min(best[f"{name}_cpu"], time.process_time() - cpu)
    n = len(texts)
    return {
        "naive_texts_per_s": n / best["naive_wall"],
        "full_texts_per_s": n / best["full_wall"],
        "naive_cpu_s_per_text": best["naive_cpu"] / n,
        "full_cpu_s_per_text": best["full_cpu"] / n,
    }


def image_numbers(full, picture, texts: list[str], batch_size: int, rounds: int) -> dict[str, float]:
    """Text-only vs text + image per request and batched, and the face step alone (module doc)."""
    full(texts[0], image=picture)  # warm-up: loads (converting once) the face model
    text_t, image_t, face_t = [], [], []
    for i, text in enumerate(texts):
        order = [("text", lambda t=text: full(t)), ("image", lambda t=text: full(t, image=picture))]
        for name, fn in order if i % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            fn()
            (text_t if name == "text" else image_t).append(time.perf_counter() - start)
        start = time.perf_counter()
        full.face_analyzer.read(picture)
        face_t.append(time.perf_counter() - start)
    best_text = best_image = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        full(texts, batch_size=batch_size)
        best_text = min(best_text, time.perf_counter() - start)
        start = time.perf_counter()
        full(texts, image=[picture] * len(texts), batch_size=batch_size)
        best_image = min(best_image, time.perf_counter() - start)
    return {
        "text_p50_ms": 1000 * quantile(sorted(text_t), 0.5),
        "image_p50_ms": 1000 * quantile(sorted(image_t), 0.5),
        "text_p95_ms": 1000 * quantile(sorted(text_t), 0.95),
        "image_p95_ms": 1000 * quantile(sorted(image_t), 0.95),
        "face_step_p50_ms": 1000 * quantile(sorted(face_t), 0.5),
        "text_texts_per_s": len(texts) / best_text,
        "image_texts_per_s": len(texts) / best_image,
    }


def print_image_rows(stats: dict[str, float], batch_size: int) -> None:
    header = ("text + image (512x512, 1 face)", "metric", "text only", "text + image", "added")
    widths = (30, 30, 10, 13, 10)
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    per_text = (1000 / stats["text_texts_per_s"], 1000 / stats["image_texts_per_s"])
    for metric, text, image in (
        ("latency p50 (ms)", stats["text_p50_ms"], stats["image_p50_ms"]),
        ("latency p95 (ms)", stats["text_p95_ms"], stats["image_p95_ms"]),
        (f"batch {batch_size}: ms per request", *per_text),
    ):
        cells = ("", metric, f"{text:.1f}", f"{image:.1f}", f"{image - text:+.1f}")
        print(" | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    print(f"face step alone (read + detect + classify, p50): {stats['face_step_p50_ms']:.1f} ms")


def _picture():
    try:
        from skimage import data
    except ImportError as err:
        raise SystemExit(f"the text + image row needs scikit-image (the vision extra): {err}") from err
    return data.astronaut()


def ablation(
    unpooled: Path, pooled: Path, extractors, texts: list[str], batch_size: int, workers: int, dtype: str
) -> list[tuple]:
    """CPU time and throughput on ``texts`` as the levers are switched on one by one (torch backend).

    ``unpooled`` and ``pooled`` are the same saved full system (same weights) with token-pool stride 1 (the steps
    before pooling) and with the stride under test (the last step); ``dtype`` is the full system's (``auto``: the
    fastest this machine runs natively, so the dtype step is float32 again where bf16 would be emulated).
    """
    fp32 = pipeline("ethics-emotion", model=str(unpooled), dtype=torch.float32, encoder_workers=workers)
    chosen = pipeline("ethics-emotion", model=str(unpooled), dtype=dtype, encoder_workers=workers)
    final = pipeline("ethics-emotion", model=str(pooled), dtype=dtype, encoder_workers=workers)
    stride = final.model.config.backbone.token_pool_stride
    computed = dtype_name(chosen.model.dtype)
    steps = [
        (
            f"naive: {len(extractors)} x feature-extraction, fp32, 1 text/call",
            lambda: [naive_call(extractors, t) for t in texts],
        ),
        (
            "full, fp32, no token pooling, every encoder reads every text, 1 text/call",
            lambda: [fp32(t, routing="all") for t in texts],
        ),
        ("+ language routing", lambda: [fp32(t) for t in texts]),
        (f"+ batching ({batch_size} texts/call)", lambda: fp32(texts, batch_size=batch_size)),
        (f"+ dtype {dtype} = {computed} (model and encoders)", lambda: chosen(texts, batch_size=batch_size)),
        (f"+ token pooling (stride {stride})", lambda: final(texts, batch_size=batch_size)),
    ]
    for _, fn in steps[1:]:
        fn()  # warm-up
    out = []
    for label, fn in steps:
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        out.append(
            (
                label,
                len(texts) / (time.perf_counter() - wall),
                1000 * (time.process_time() - cpu) / len(texts),
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny model and encoders, few texts")
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=DTYPE_CHOICES,
        help="dtype of the full system (default auto: the fastest this machine runs natively; the naive baseline "
        "keeps the checkpoint's float32)",
    )
    parser.add_argument(
        "--backend",
        default="torch",
        choices=["torch", "onnx"],
        help="what runs the full system: torch, or onnxruntime (exported once into a cache folder)",
    )
    parser.add_argument(
        "--onnx-precision",
        default="int8",
        choices=["int8", "fp32"],
        help="graph precision with --backend onnx",
    )
    parser.add_argument(
        "--quantize",
        default=None,
        choices=QUANTIZATIONS,
        help="with --backend torch: the linear layers of encoders and model as torch's dynamic int8 (FBGEMM; "
        "--isa holds it), the rest float32",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads, both systems (default: torch's own, one per core)",
    )
    parser.add_argument(
        "--encoder-workers",
        type=int,
        default=1,
        help="threads running encoders concurrently (default 1, the pipeline's default)",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="texts per batch for the throughput run")
    parser.add_argument("--runs", type=int, default=None, help="texts per latency measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--token-pool-stride",
        type=int,
        default=None,
        help="override the 330m preset's backbone.token_pool_stride (1 = no token pooling)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    parser.add_argument("--image", action="store_true", help="also measure the text + image row")
    parser.add_argument("--image-only", action="store_true", help="measure only the text + image row")
    add_isa_argument(parser)
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="also measure the levers one by one (short and long inputs; not with --quick)",
    )
    args = parser.parse_args(argv)
    refusal = onnx_hold_refusal(args.isa)
    if refusal and args.backend == "onnx":
        parser.error(refusal)
    if args.quantize and args.backend == "onnx":
        parser.error("--quantize quantizes the torch backend; the onnx backend's is --onnx-precision")
    limit_isa(args.isa)

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    workers = args.encoder_workers
    runs = args.runs or (3 if args.quick else 12)
    through_n = 4 if args.quick else 32
    long_n = 2 if args.quick else 16
    started = time.perf_counter()

    model_dir, folders = (
        build_quick_system() if args.quick else build_full_system(args.seed, args.token_pool_stride)
    )
    full = load_full_system(model_dir, args, workers)
    machine = machine_info(system_dtype(full), full.device)
    if args.image_only:
        return image_only(args, full, machine, runs, through_n, started)
    extractors = [pipeline("feature-extraction", model=str(folder)) for folder in folders.values()]
    params = {
        "model": parameter_count(full.model),
        "encoders": sum(parameter_count(h.model) for h in full.encoders.values()),
    }

    rows, numbers = [], {}
    for label, target, n_latency, n_through in (
        ("short", 48, runs, through_n),
        ("long", 400, max(2, runs // 2), long_n),
    ):
        warm = mixed_texts(full, target, 2, offset=997)
        for text in warm:
            naive_call(extractors, text)
            full(text)
        lat_texts = mixed_texts(full, target, n_latency, offset=0)
        naive_l, full_l = latency(full, extractors, lat_texts)
        th_texts = mixed_texts(full, target, n_through, offset=5000)
        tp = throughput(full, extractors, th_texts, args.batch_size, rounds=1 if args.quick else 2)
        naive_tp, full_tp = tp["naive_texts_per_s"], tp["full_texts_per_s"]
        tokens = token_counts(full, lat_texts)
        stats = {
            "tokens": tokens,
            "naive_p50_ms": 1000 * quantile(sorted(naive_l), 0.5),
            "full_p50_ms": 1000 * quantile(sorted(full_l), 0.5),
            "naive_p95_ms": 1000 * quantile(sorted(naive_l), 0.95),
            "full_p95_ms": 1000 * quantile(sorted(full_l), 0.95),
            **tp,
        }
        numbers[label] = stats
        tok = "/".join(f"{v:.0f}" for v in tokens.values())
        rows.append(
            (
                f"{label} ({tok} tok)",
                "latency p50 (ms)",
                stats["naive_p50_ms"],
                stats["full_p50_ms"],
                stats["naive_p50_ms"] / stats["full_p50_ms"],
            )
        )
        rows.append(
            (
                "",
                "latency p95 (ms)",
                stats["naive_p95_ms"],
                stats["full_p95_ms"],
                stats["naive_p95_ms"] / stats["full_p95_ms"],
            )
        )
        rows.append(
            ("", f"throughput (texts/s, batch {args.batch_size})", naive_tp, full_tp, full_tp / naive_tp)
        )
        rows.append(
            (
                "",
                "CPU time per text (ms, batched)",
                1000 * tp["naive_cpu_s_per_text"],
                1000 * tp["full_cpu_s_per_text"],
                tp["naive_cpu_s_per_text"] / tp["full_cpu_s_per_text"],
            )
        )

    print()
    print(machine_line(machine))
    print(
        f"full system: {'tiny preset + 2 tiny encoders (--quick)' if args.quick else '330m preset + 3 base-size encoders'}"
        f" = {params['model'] / 1e6:.1f}M + {params['encoders'] / 1e6:.1f}M parameters, backend {args.backend}, "
        f"dtype {args.dtype} -> computes in {machine['dtype']}, token pool stride "
        f"{full.model.config.backbone.token_pool_stride}, encoder workers {workers} | "
        f"naive: {len(extractors)} x pipeline('feature-extraction'), float32, one text at a time"
    )
    print(
        f"encoders: {', '.join(f'{n}={Path(f).name}' for n, f in folders.items())} | tokens per text: "
        f"{'/'.join(full.encoders)} | inputs: half English, half Korean (routed by language)"
    )
    print()
    header = ("input", "metric", "naive baseline", "full system", "ratio (better = >1)")
    widths = (26, 30, 15, 12, 20)
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for label, metric, naive, fullv, ratio in rows:
        cells = (label, metric, f"{naive:.1f}", f"{fullv:.1f}", f"{ratio:.2f}x")
        print(" | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    if args.ablation and not args.quick:
        unpooled = build_full_system(args.seed, 1)[0]
        numbers["ablation"] = {}
        for label, target in (("short", 48), ("long", 400)):
            n = through_n if label == "short" else long_n
            texts = mixed_texts(full, target, n, offset=5000)
            steps = ablation(unpooled, model_dir, extractors, texts, args.batch_size, workers, args.dtype)
            print(f"\nlevers, one by one ({label} inputs, the throughput texts):")
            print(
                " | ".join(
                    h.ljust(w)
                    for h, w in zip(
                        ("step", "texts/s", "CPU ms/text", "CPU vs naive"), (74, 8, 11, 12), strict=True
                    )
                )
            )
            for step, tps, cpu_ms in steps:
                print(
                    " | ".join(
                        (
                            step.ljust(74),
                            f"{tps:.2f}".ljust(8),
                            f"{cpu_ms:.0f}".ljust(11),
                            f"{steps[0][2] / cpu_ms:.2f}x",
                        )
                    )
                )
            numbers["ablation"][label] = [
                {"step": a, "texts_per_s": b, "cpu_ms_per_text": c} for a, b, c in steps
            ]
    if args.image:
        texts = mixed_texts(full, 48, runs, offset=0)[:runs]
        numbers["image"] = image_numbers(
            full, _picture(), texts, args.batch_size, rounds=1 if args.quick else 2
        )
        print()
        print_image_rows(numbers["image"], args.batch_size)
    print("\nratio: latency and CPU time = naive / full (>1: full system better); throughput = full / naive.")
    print(
        "CPU time = process CPU seconds of all threads, the measure least disturbed by other load on the machine."
    )
    print(f"wall time {time.perf_counter() - started:.0f} s; command: python {' '.join(sys.argv)}")
    if args.json:
        meta = {
            **machine,
            "workers": workers,
            "requested_dtype": args.dtype,
            "backend": full.describe_model()["backend"],
            "params": params,
            "quick": args.quick,
        }
        args.json.write_text(json.dumps({"meta": meta, "results": numbers}, indent=2))
    return 0


def image_only(args, full, machine: dict, runs: int, count: int, started: float) -> int:
    """``--image-only``: the text + image row alone, with the machine line."""
    texts = mixed_texts(full, 48, max(runs, count), offset=0)
    stats = image_numbers(full, _picture(), texts, args.batch_size, rounds=1 if args.quick else 2)
    print()
    print(machine_line(machine))
    system = "tiny preset + 2 tiny encoders (--quick)" if args.quick else "330m preset + 3 base-size encoders"
    print(
        f"full system: {system}, backend {args.backend}, computes in {machine['dtype']}; {len(texts)} short texts, "
        "half English, half Korean"
    )
    print()
    print_image_rows(stats, args.batch_size)
    print(f"wall time {time.perf_counter() - started:.0f} s; command: python {' '.join(sys.argv)}")
    if args.json:
        meta = {**machine, "requested_dtype": args.dtype, "quick": args.quick}
        args.json.write_text(json.dumps({"meta": meta, "results": {"image": stats}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
