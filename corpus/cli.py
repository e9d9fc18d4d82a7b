"""``redheart analyze-corpus IN OUT`` / ``python -m redheart.corpus IN OUT``: analyse a corpus into Parquet shards.

Several processes: ``accelerate launch --multi_gpu --num_processes N -m redheart.corpus IN OUT`` (on CPUs too:
that is Accelerate's torchrun launcher, and the processes meet over gloo) or ``torchrun --nproc_per_node N -m
redheart.corpus IN OUT``; ``accelerate launch --num_processes N`` does the same on a machine with N GPUs. Without
GPUs (or with ``--cpu``) plain ``accelerate launch --num_processes N`` starts ONE process (Accelerate's multi-CPU
mode needs MPI); the run then says so.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """\
output: OUT/part-00000.parquet, ... (shard k = input rows [k*S, (k+1)*S)) and OUT/_manifest.json.
Columns: row, id, text, error, language, chunks, truncated, emotion.predicted, ..., one float column per
number of the JSON result (docs: README "Corpus analysis", redheart/corpus/flatten.py).
A rerun of the same command resumes: complete shards are kept, missing, interrupted (.tmp) or damaged ones
are redone; another model or other options in the same OUT are refused (--overwrite starts again).
"""


def build_parser() -> argparse.ArgumentParser:
    from ..pipelines.text import ROUTING_MODES, UNSERVED_MODES
    from .reading import QUOTING_MODES
    from .run import DEFAULT_BATCH_SIZE, DEFAULT_SHARD_SIZE, AnalysisOptions

    defaults = AnalysisOptions()
    parser = argparse.ArgumentParser(
        prog="redheart analyze-corpus",
        usage="redheart analyze-corpus IN OUT [options]\n"
        "       redheart analyze-corpus --dataset ID [--split SPLIT] OUT [options]",
        description="Analyse every row of a corpus (JSON lines, CSV/TSV, Parquet, or a Hub dataset, streamed) "
        "into Parquet shards plus a manifest; sharded over processes with Accelerate; resumable.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "input",
        metavar="IN",
        nargs="?",
        help="a .jsonl/.csv/.tsv (optionally .gz) or .parquet file, a folder or a glob of them (not with --dataset)",
    )
    parser.add_argument("output", metavar="OUT", nargs="?", help="the output folder")
    source = parser.add_argument_group("input")
    source.add_argument("--dataset", help="a datasets Hub id (or builder such as 'json'), streamed")
    source.add_argument("--dataset-config", default=None, help="the dataset's configuration name")
    source.add_argument("--split", default="train", help="the dataset split (default: train)")
    source.add_argument(
        "--data-files",
        action="append",
        default=[],
        help="a data file for --dataset (repeat), e.g. --dataset json --data-files a.jsonl",
    )
    source.add_argument("--text-column", default="text", help="column holding the texts (default: text)")
    source.add_argument("--id-column", default=None, help="column of row ids (default: the row number)")
    source.add_argument("--limit", type=int, default=None, help="only the first N rows")
    source.add_argument(
        "--quoting",
        choices=QUOTING_MODES,
        default=None,
        help="CSV/TSV quoting (default: csv for .csv, none for .tsv)",
    )
    source.add_argument(
        "--no-header", action="store_true", help="CSV/TSV without a header: columns are named 0, 1, ..."
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--model", default=None, help="saved Red Heart folder or Hub id (default: the shipped model)"
    )
    run.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="texts per model call")
    run.add_argument(
        "--shard-size", type=int, default=DEFAULT_SHARD_SIZE, help="rows per output shard (default 10000)"
    )
    run.add_argument("--overwrite", action="store_true", help="remove OUT's shards and manifest first")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--cpu", action="store_true", help="run on the CPU even where an accelerator is present")
    run.add_argument("--threads", type=int, default=None, help="torch (or onnxruntime) threads per process")
    run.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        default="torch",
        help="onnx: the encoders and the model as onnxruntime graphs (exported into the cache on first use)",
    )
    run.add_argument("--onnx-precision", choices=("int8", "fp32"), default="int8")
    options = parser.add_argument_group("pipeline options (recorded; a rerun must repeat them)")
    options.add_argument("--truncation", choices=("chunk", "first", "error"), default=defaults.truncation)
    options.add_argument("--max-chars", type=int, default=defaults.max_chars)
    options.add_argument("--max-chunks", type=int, default=defaults.max_chunks)
    options.add_argument("--routing", choices=ROUTING_MODES, default=defaults.routing)
    options.add_argument("--unserved-language", choices=UNSERVED_MODES, default=defaults.unserved_language)
    return parser


def job_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The :class:`~.run.CorpusJob` the command line asks for (usage errors exit through ``parser``)."""
    from .reading import Columns, CorpusSource
    from .run import AnalysisOptions, CorpusJob

    paths = [p for p in (args.input, args.output) if p is not None]
    if len(paths) != (1 if args.dataset else 2):
        parser.error("with --dataset give only OUT" if args.dataset else "give IN and OUT")
    if args.limit is not None and args.limit < 0:
        parser.error("--limit must be >= 0")
    if args.batch_size < 1 or args.shard_size < 1:
        parser.error("--batch-size and --shard-size must be positive")
    common = {
        "columns": Columns(args.text_column, args.id_column),
        "quoting": args.quoting,
        "header": not args.no_header,
        "limit": args.limit,
    }
    if args.dataset:
        source = CorpusSource(
            dataset=args.dataset,
            dataset_config=args.dataset_config,
            split=args.split,
            data_files=tuple(args.data_files),
            **common,
        )
    else:
        source = CorpusSource.from_path(paths[0], **common)
    try:
        options = AnalysisOptions(
            truncation=args.truncation,
            max_chars=args.max_chars,
            max_chunks=args.max_chunks,
            routing=args.routing,
            unserved_language=args.unserved_language,
        )
    except ValueError as exc:
        parser.error(str(exc))
    return CorpusJob(
        source=source,
        output=Path(paths[-1]),
        model=args.model,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        options=options,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        cpu=args.cpu,
        threads=args.threads,
        backend=args.backend,
        onnx_precision=args.onnx_precision,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the command; a corpus or options problem is one ``error:`` line and exit status 2."""
    from .reading import CorpusInputError
    from .run import CorpusRunError, analyze_corpus
    from .shards import OptionsMismatchError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        analyze_corpus(job_from_args(args, parser))
    except (CorpusInputError, OptionsMismatchError, CorpusRunError) as exc:
        print(f"redheart analyze-corpus: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
