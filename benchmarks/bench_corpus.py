"""Corpus throughput: ``redheart analyze-corpus`` on NSMC reviews with 1 and 2 processes, and the projected time
for the whole NSMC corpus.

``python benchmarks/bench_corpus.py [--rows 400] [--processes 1 2] [--model DIR] [--batch-size 16] [--json OUT]``

Each configuration is the real command in a fresh process tree, as a user runs it: ``python -m redheart.corpus``
for one process, ``accelerate launch --multi_gpu --num_processes N -m redheart.corpus`` for N (Accelerate's
torchrun launcher; on CPUs the processes meet over gloo and share the physical cores). The input is the data
set's own ``nsmc_raw_derived/nsmc_raw_reviews.tsv.gz`` (``--limit ROWS``), the model the shipped default
(``--model`` for another). Texts/s is the manifest's ``last_run.texts_per_s``: analysed rows over the analysis
time of the slowest process, model loading excluded; loading is reported apart. The projection for the whole
corpus counts its real rows through the corpus reader (the rows the command would analyse) and adds one model
load. The shard size defaults to ``rows / 8`` so that every process gets several shards. Run it on an idle
machine: with another job on the cores, a process using several threads waits at every parallel region for a
thread that is not running, and the one-process figure drops several-fold (``--threads 1`` shows it).

The header is the machine line every benchmark prints (``redheart.pipelines.precision.machine_line``: CPU
capability, torch, threads), with the dtype the runs computed in as their manifests record it (the command loads
with ``dtype="auto"``: the fastest dtype this machine runs natively).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from redheart.pipelines.precision import machine_info, machine_line

NSMC = Path("nsmc_raw_derived") / "nsmc_raw_reviews.tsv.gz"


class NoRows:
    """A row selection that decodes nothing: the reader only counts."""

    def __contains__(self, row: int) -> bool:
        return False

    def overlaps(self, start: int, stop: int) -> bool:
        return False


def count_rows(path: Path, text_column: str = "review") -> int:
    """Rows of a corpus file as ``analyze-corpus`` reads them (the same reader, nothing decoded)."""
    from redheart.corpus.reading import Columns, CorpusSource

    stream = CorpusSource.from_path(path, columns=Columns(text_column)).records(NoRows())
    for _ in stream:
        pass
    return stream.rows


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def command(processes: int, source: Path, out: Path, args: argparse.Namespace) -> list[str]:
    corpus = [str(source), str(out), "--text-column", "review", "--id-column", "review_id"]
    corpus += [
        "--limit",
        str(args.rows),
        "--shard-size",
        str(args.shard_size),
        "--batch-size",
        str(args.batch_size),
    ]
    corpus += ["--no-progress"] + (["--model", args.model] if args.model else [])
    corpus += ["--threads", str(args.threads)] if getattr(args, "threads", None) else []
    corpus += ["--backend", getattr(args, "backend", "torch")]
    corpus += ["--onnx-precision", getattr(args, "onnx_precision", "int8")]
    if processes == 1:
        return [sys.executable, "-m", "redheart.corpus", *corpus]
    launch = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(processes),
    ]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launch += ["--main_process_port", str(free_port()), "-m", "redheart.corpus"]
    return launch + corpus


def run_once(processes: int, source: Path, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    out = scratch / f"out-{processes}"
    started = time.perf_counter()
    done = subprocess.run(
        command(processes, source, out, args), capture_output=True, text=True, timeout=args.timeout
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{processes} process(es) failed:\n{done.stderr[-4000:]}")
    manifest = json.loads((out / "_manifest.json").read_text(encoding="utf-8"))
    run = manifest["last_run"]
    return {
        "processes": processes,
        "rows": manifest["rows"],
        "errors": manifest["errors"],
        "texts_per_s": run["texts_per_s"],
        "analysis_s": run["analysis_seconds"],
        "load_s": run["load_seconds"],
        "threads_per_process": run.get("threads_per_process"),
        "wall_s": round(wall, 2),
        "dtype": manifest["model"]["dtype"],
        "model": manifest["model"]["name_or_path"],
        "backend": manifest["model"].get("backend", "torch"),
    }


def hours(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=400, help="NSMC reviews per configuration (default 400)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--shard-size", type=int, default=None, help="rows per shard (default: rows / 8)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads per process (default: cores shared out)"
    )
    parser.add_argument(
        "--backend", choices=("torch", "onnx"), default="torch", help="the pipeline's backend"
    )
    parser.add_argument("--onnx-precision", choices=("int8", "fp32"), default="int8")
    parser.add_argument("--data-dir", default=os.environ.get("RH_DATA_DIR"), help="default: $RH_DATA_DIR")
    parser.add_argument("--no-count", action="store_true", help="skip counting the corpus (use 712,383)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per configuration")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error("set RH_DATA_DIR or pass --data-dir (the folder holding nsmc_raw_derived/)")
    source = Path(args.data_dir) / NSMC
    if not source.is_file():
        parser.error(f"no NSMC file at {source}")
    args.shard_size = args.shard_size or max(1, args.rows // 8)

    started = time.perf_counter()
    total = 712_383 if args.no_count else count_rows(source)
    counted = time.perf_counter() - started
    print(
        f"Red Heart corpus benchmark: NSMC reviews ({source.name}), {args.rows} rows per run, batch "
        f"{args.batch_size}, shard {args.shard_size}\n"
        f"whole corpus: {total:,} rows" + ("" if args.no_count else f" (counted in {counted:.1f} s)")
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-corpus-") as scratch:
        for processes in args.processes:
            result = run_once(processes, source, args, Path(scratch))
            result["projected_s"] = round(total / result["texts_per_s"] + result["load_s"], 1)
            results.append(result)
    machine = machine_info(results[0]["dtype"])  # the runs' own torch threads are in the table
    print(machine_line(machine))
    print(
        f"model {results[0]['model']} (computed in {results[0]['dtype']}, backend {results[0]['backend']})\n"
    )
    print(
        "processes  threads/proc  texts/s  analysis s  load s  wall s  errors  projected for the whole corpus"
    )
    for r in results:
        print(
            f"{r['processes']:>9}  {r['threads_per_process'] or '-':>12}  {r['texts_per_s']:>7.1f}  "
            f"{r['analysis_s']:>10.1f}  {r['load_s']:>6.1f}  {r['wall_s']:>6.1f}  {r['errors']:>6}  "
            f"{hours(r['projected_s'])} ({r['projected_s']:,.0f} s)"
        )
    if len(results) > 1:
        base = results[0]["texts_per_s"]
        print(
            "speed-up: "
            + ", ".join(f"{r['processes']} -> {r['texts_per_s'] / base:.2f}x" for r in results[1:])
        )
    if args.json:
        meta = {
            "rows": args.rows,
            "batch_size": args.batch_size,
            "shard_size": args.shard_size,
            "corpus_rows": total,
            **machine,
        }
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
