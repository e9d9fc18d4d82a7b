"""The corpus driver: every process analyses its own shards with the pipeline, the main process writes the manifest.

Why Accelerate: ``accelerate launch`` (or ``torchrun``) starts the processes and ``PartialState`` tells each its
index, device and how to meet the others; without a launcher the same code runs as one process and writes the
same shards. Each process reads the input in full but decodes only its own rows (``shards.ShardPlan``), so no
process ever holds more than one shard's texts and results: memory stays flat however large the corpus.

Per shard: the shard's rows are read, its file is checked (complete -> skipped; see ``shards``), texts go through
``pipeline("ethics-emotion")`` with ``errors="return"`` in batches of similar length (less padding; results are
put back in row order), each result is flattened (``flatten``) and the shard is written atomically. Rows that
could not be read, or whose text the pipeline refuses (missing, empty, not a string, too long), keep their place
with the reason in ``error``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..pipelines.ethics_emotion import TRUNCATION_MODES, EthicsEmotionPipeline
from ..pipelines.text import ROUTING_MODES, UNSERVED_MODES
from .flatten import FLAT_VERSION, analysis_columns, error_message, flatten, label_groups, output_schema
from .reading import CorpusSource, Record, RecordStream
from .shards import (
    MANIFEST_NAME,
    ShardPlan,
    check_output,
    check_shard,
    clear_output,
    shard_metadata,
    stale_parts,
    write_manifest,
    write_shard,
)

#: The pipeline's own defaults for the options a corpus run passes on (so the fingerprint of a run that spells a
#: default out equals that of one that does not).
_PIPELINE_DEFAULTS = {
    name: p.default for name, p in inspect.signature(EthicsEmotionPipeline.preprocess).parameters.items()
}
DEFAULT_BATCH_SIZE = 16
DEFAULT_SHARD_SIZE = 10_000


class CorpusRunError(RuntimeError):
    """A run that cannot start (the default model is missing, a launcher without Accelerate)."""


@dataclass(frozen=True)
class AnalysisOptions:
    """Pipeline options that change results: recorded with every shard, and a rerun must repeat them."""

    truncation: str = _PIPELINE_DEFAULTS["truncation"]
    max_chars: int = _PIPELINE_DEFAULTS["max_chars"]
    max_chunks: int = _PIPELINE_DEFAULTS["max_chunks"]
    routing: str = _PIPELINE_DEFAULTS["routing"]
    unserved_language: str = _PIPELINE_DEFAULTS["unserved_language"]

    def __post_init__(self) -> None:
        if self.truncation not in TRUNCATION_MODES:
            raise ValueError(f"truncation must be 'chunk', 'first' or 'error', got {self.truncation!r}")
        object.__setattr__(self, "truncation", TRUNCATION_MODES[self.truncation])
        if self.routing not in ROUTING_MODES or self.unserved_language not in UNSERVED_MODES:
            raise ValueError(f"routing in {ROUTING_MODES}, unserved_language in {UNSERVED_MODES}")
        for name in ("max_chars", "max_chunks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer")


@dataclass(frozen=True)
class CorpusJob:
    """One ``analyze-corpus`` run (the command line builds it; tests and benchmarks may too)."""

    source: CorpusSource
    output: Path
    model: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    shard_size: int = DEFAULT_SHARD_SIZE
    options: AnalysisOptions = field(default_factory=AnalysisOptions)
    overwrite: bool = False
    progress: bool = True
    cpu: bool = False
    threads: int | None = None
    #: ``"torch"`` or ``"onnx"`` (the pipeline's ``backend``); with ``onnx_precision`` ``"int8"`` or ``"fp32"``.
    backend: str = "torch"
    onnx_precision: str = "int8"

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.shard_size < 1:
            raise ValueError("batch size and shard size must be positive")
        if self.backend not in ("torch", "onnx") or self.onnx_precision not in ("int8", "fp32"):
            raise ValueError("backend must be 'torch' or 'onnx', onnx_precision 'int8' or 'fp32'")


# ------------------------------------------------------------------------------------------------------------
# processes
# ------------------------------------------------------------------------------------------------------------
@dataclass
class Processes:
    """This process's place among the launched ones (one, without a launcher)."""

    index: int = 0
    count: int = 1
    local_count: int = 1
    device: Any = "cpu"
    state: Any = None

    @property
    def main(self) -> bool:
        return self.index == 0

    def wait(self) -> None:
        if self.count > 1:
            self.state.wait_for_everyone()

    def close(self) -> None:
        """Leave the process group: a gloo group still alive at interpreter exit can abort the process
        ("terminate called without an active exception") after its work is done."""
        if self.count > 1:
            self.state.destroy_process_group()

    def gather(self, value: Any) -> list[Any]:
        if self.count == 1:
            return [value]
        from accelerate.utils import gather_object

        return gather_object([value])

    def say(self, message: str) -> None:
        """A note for the log, from any process (tqdm-safe; prefixed with the process when there are several)."""
        prefix = f"[process {self.index}] " if self.count > 1 else ""
        from tqdm import tqdm

        tqdm.write(f"{prefix}{message}", file=sys.stderr)


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def _has_accelerator() -> bool:
    import torch

    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and hasattr(accelerator, "is_available"):
        return bool(accelerator.is_available())
    return torch.cuda.is_available()


def start_processes(cpu: bool = False) -> Processes:
    """``PartialState`` under a launcher (gloo on CPUs); one plain process without one or without Accelerate."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if (
        "ACCELERATE_USE_CPU" in os.environ
        and os.environ.get("MASTER_ADDR")
        and "WORLD_SIZE" not in os.environ
    ):
        # Accelerate's simple launcher was asked for several processes and started one (it sets MASTER_ADDR
        # only then): without GPUs, or with --cpu, it needs MPI for more.
        print(
            "note: `accelerate launch --num_processes N` started ONE process here (without GPUs, or with --cpu, "
            "Accelerate needs MPI for more); for N CPU processes use `accelerate launch --multi_gpu "
            "--num_processes N -m redheart.corpus ...` (its torchrun launcher; the processes meet over gloo) or "
            "`torchrun --nproc_per_node N -m redheart.corpus ...`",
            file=sys.stderr,
        )
    use_cpu = cpu or _flag("ACCELERATE_USE_CPU") or not _has_accelerator()
    try:
        from accelerate import PartialState
    except ImportError as exc:
        if world > 1:
            raise CorpusRunError(
                "several processes need Accelerate: pip install 'red-heart[corpus]'"
            ) from exc
        import torch

        return Processes(device=torch.device("cpu" if use_cpu else "cuda"))
    state = PartialState(cpu=use_cpu)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", state.num_processes))
    device = state.device
    if getattr(device, "type", device) == "cpu":
        device = "cpu"
    return Processes(state.process_index, state.num_processes, local, device, state)


def _physical_cores() -> int:
    """Physical cores this process may use (SMT siblings do not speed up matrix products)."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or allowed
    except ImportError:
        physical = allowed
    return max(1, min(physical, allowed))


def _set_threads(threads: int | None, processes: Processes) -> int:
    """Torch threads of this process: ``threads``, or, for several processes on the CPU, the physical cores
    shared out among them -- launchers set ``OMP_NUM_THREADS=1`` by default, which would leave most cores idle."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    elif processes.local_count > 1 and str(processes.device).startswith("cpu"):
        torch.set_num_threads(max(1, _physical_cores() // processes.local_count))
    return torch.get_num_threads()


# ------------------------------------------------------------------------------------------------------------
# model
# ------------------------------------------------------------------------------------------------------------
def load_pipeline(model: str | None, device: Any = "cpu", **options: Any) -> EthicsEmotionPipeline:
    """``pipeline("ethics-emotion")``: ``model`` (a folder or Hub id) or the shipped default model; ``options`` are
    construction options (``backend``, ``onnx_precision``, ``onnx_threads``)."""
    from transformers import pipeline

    from ..pipelines.registration import DEFAULT_MODEL_DIR, register_pipeline

    register_pipeline()
    if model is None and not (DEFAULT_MODEL_DIR / "config.json").is_file():
        raise CorpusRunError(
            f"the shipped default model is missing ({DEFAULT_MODEL_DIR}); reinstall red-heart or pass --model"
        )
    return pipeline("ethics-emotion", model=model or str(DEFAULT_MODEL_DIR), device=device, **options)


def model_identity(pipe: EthicsEmotionPipeline) -> dict[str, Any]:
    """Name (absolute for a local folder), revision and config hash: what a rerun must match."""
    config = pipe.model.config
    values = {
        k: v
        for k, v in config.to_dict().items()
        if not k.startswith("_") and k not in ("transformers_version", "dtype", "torch_dtype")
    }
    digest = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode("utf-8")).hexdigest()
    name = str(getattr(config, "_name_or_path", "") or "")
    if name and Path(name).exists():
        name = str(Path(name).resolve())
    backend = "torch" if pipe.onnx is None else f"onnx-{pipe.onnx.precision}"  # int8 changes the numbers
    return {
        "name_or_path": name,
        "revision": getattr(config, "_commit_hash", None),
        "config_sha256": digest,
        "backend": backend,
    }


def fingerprint(job: CorpusJob, identity: Mapping[str, Any]) -> dict[str, Any]:
    """Everything a shard's content depends on (not the batch size, nor the number of processes)."""
    return {
        "layout": FLAT_VERSION,
        "input": job.source.describe(),
        "model": dict(identity),
        "options": asdict(job.options),
        "shard_size": job.shard_size,
    }


# ------------------------------------------------------------------------------------------------------------
# shards
# ------------------------------------------------------------------------------------------------------------
def _by_shard(stream: RecordStream, plan: ShardPlan) -> Iterator[tuple[int, list[Record]]]:
    """The selected records grouped by shard; a shard is complete when the stream moves past it."""
    current, buffer = -1, []
    for record in stream:
        shard = plan.shard_of(record.row)
        if shard != current and buffer:
            yield current, buffer
            buffer = []
        current = shard
        buffer.append(record)
    if buffer:
        yield current, buffer


def _stored(value: Any) -> Any:
    """A string as Parquet can hold it: lone surrogates (possible in JSON escapes) become U+FFFD."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value


class ShardAnalyser:
    """Turns one shard's records into its table (row order), through the pipeline."""

    def __init__(self, pipe: EthicsEmotionPipeline, job: CorpusJob) -> None:
        self.pipe = pipe
        self.batch_size = job.batch_size
        self.call_options = asdict(job.options)
        config = pipe.model.config
        self.columns = analysis_columns(config)
        self.schema = output_schema(config, id_is_text=job.source.columns.id is not None)
        self.grounding: dict[str, list[str]] = {}

    def __call__(self, records: list[Record], progress: Any = None) -> tuple[pa.Table, int]:
        """The shard's table and its number of error rows."""
        pieces: list[pa.Table] = []
        order: list[int] = []
        failed, todo = [], []
        for i, record in enumerate(records):
            if record.error is None and isinstance(record.text, Mapping):
                # A mapping would read as the pipeline's {"text": ...} input form: refuse it as a wrong type.
                failed.append(
                    self._row(
                        record,
                        f"InputTypeError: got {type(record.text).__name__}; expected a non-empty string",
                    )
                )
                order.append(i)
            elif record.error is not None:
                failed.append(self._row(record, record.error))
                order.append(i)
            else:
                todo.append(i)
        if failed:
            pieces.append(pa.Table.from_pylist(failed, schema=self.schema))
            if progress is not None:
                progress.update(len(failed))
        errors = len(failed)
        # Similar lengths in one batch: less padding. Each text's result does not depend on its batch-mates.
        todo.sort(key=lambda i: len(records[i].text) if isinstance(records[i].text, str) else 0)
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            results = self.pipe(
                [records[i].text for i in chunk],
                batch_size=self.batch_size,
                errors="return",
                **self.call_options,
            )
            rows = []
            for i, result in zip(chunk, results, strict=True):
                if "error" in result:
                    rows.append(self._row(records[i], error_message(result)))
                    errors += 1
                else:
                    rows.append({**self._row(records[i], None), **flatten(result, self.columns)})
                    if not self.grounding:
                        meta = result["metadata"]
                        self.grounding = {
                            "untrained": meta.get("untrained", []),
                            "latent": meta.get("latent", []),
                        }
            pieces.append(pa.Table.from_pylist(rows, schema=self.schema))
            order.extend(chunk)
            if progress is not None:
                progress.update(len(chunk))
        table = pa.concat_tables(pieces) if pieces else self.schema.empty_table()
        inverse = sorted(range(len(order)), key=order.__getitem__)
        return table.take(pa.array(inverse, type=pa.int64())), errors

    @staticmethod
    def _row(record: Record, error: str | None) -> dict[str, Any]:
        text = record.text if isinstance(record.text, str) else None
        return {"row": record.row, "id": _stored(record.id), "text": _stored(text), "error": error}


# ------------------------------------------------------------------------------------------------------------
# the run
# ------------------------------------------------------------------------------------------------------------
def analyze_corpus(job: CorpusJob, pipe: EthicsEmotionPipeline | None = None) -> dict[str, Any] | None:
    """Run ``job`` in this process (one of several under a launcher); the main process returns the manifest."""
    started = time.perf_counter()
    processes = start_processes(job.cpu)
    try:
        return _analyze(job, pipe, processes, started)
    finally:
        processes.close()


def _analyze(
    job: CorpusJob, pipe: EthicsEmotionPipeline | None, processes: Processes, started: float
) -> dict[str, Any] | None:
    """:func:`analyze_corpus` once the processes have met."""
    job.source.check()  # a wrong column or format fails before any model loads
    out = job.output
    out.mkdir(parents=True, exist_ok=True)
    threads = _set_threads(job.threads, processes)
    if pipe is None:
        options = {}
        if job.backend == "onnx":
            options = {"backend": "onnx", "onnx_precision": job.onnx_precision, "onnx_threads": threads}
        exporter = job.backend != "onnx" or processes.main
        if not exporter:
            processes.wait()  # the main process exports the ONNX graphs into the shared cache first
        pipe = load_pipeline(job.model, processes.device, **options)
        if job.backend == "onnx" and processes.main:
            processes.wait()
    identity = model_identity(pipe)
    current = fingerprint(job, identity)
    if job.overwrite:
        if processes.main:
            for path in clear_output(out):
                processes.say(f"--overwrite: removed {path}")
        processes.wait()
    check_output(out, current)
    plan = ShardPlan(job.shard_size, processes.index, processes.count)
    analyse = ShardAnalyser(pipe, job)
    loaded = time.perf_counter()

    progress = None
    if job.progress and processes.main:
        from tqdm import tqdm

        known = job.source.known_rows()
        progress = tqdm(
            total=None if known is None else plan.own_rows(known),
            unit=" texts",
            desc="analyze-corpus" if processes.count == 1 else f"process 0 of {processes.count}",
            file=sys.stderr,
            dynamic_ncols=True,
        )
    analysed = resumed = new_errors = 0
    stream = job.source.records(plan)
    for shard, records in _by_shard(stream, plan):
        complete, note = check_shard(out, shard, records[0].row, len(records), current)
        if note:
            processes.say(note)
        if complete:
            resumed += len(records)
            if progress is not None and progress.total is not None:
                progress.total -= len(records)
                progress.refresh()
            continue
        shard_started = time.perf_counter()
        table, errors = analyse(records, progress)
        write_shard(
            out,
            shard,
            table,
            {
                "fingerprint": current,
                "shard": shard,
                "first_row": records[0].row,
                "rows": len(records),
                "errors": errors,
                "seconds": round(time.perf_counter() - shard_started, 3),
                "process": processes.index,
                "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "device": str(pipe.device),
                "dtype": str(pipe.model.dtype).replace("torch.", ""),
                **analyse.grounding,
            },
        )
        analysed += len(records)
        new_errors += errors
    if progress is not None:
        progress.close()
    finished = time.perf_counter()
    local = {
        "analysed": analysed,
        "resumed": resumed,
        "errors": new_errors,
        "load_seconds": loaded - started,
        "analysis_seconds": finished - loaded,
        "rows_seen": stream.rows,
    }
    processes.wait()
    gathered = processes.gather(local)
    if not processes.main:
        return None
    manifest = _manifest(
        job, pipe, identity, current, plan, stream.rows, gathered, processes, started, threads
    )
    write_manifest(out, manifest)
    run = manifest["last_run"]
    print(
        f"analyze-corpus: {manifest['rows']} rows in {len(manifest['shards'])} shards, {manifest['errors']} with "
        f"errors -> {out / MANIFEST_NAME}; this run analysed {run['analysed_rows']} ({run['resumed_rows']} "
        f"resumed) on {run['processes']} process(es) in {run['analysis_seconds']:.1f} s "
        f"({run['texts_per_s']:.1f} texts/s; {run['seconds']:.1f} s in all)",
        file=sys.stderr,
    )
    return manifest


def _manifest(
    job: CorpusJob,
    pipe: EthicsEmotionPipeline,
    identity: Mapping[str, Any],
    current: Mapping[str, Any],
    plan: ShardPlan,
    total_rows: int,
    gathered: list[dict[str, Any]],
    processes: Processes,
    started: float,
    threads: int,
) -> dict[str, Any]:
    """Written by the main process once every process is done: the output's table of contents."""
    from .. import __version__
    from .shards import part_path

    count = plan.count(total_rows)
    infos = [shard_metadata(part_path(job.output, k)) for k in range(count)]
    for path in stale_parts(job.output, count):
        processes.say(
            f"{path} is beyond this corpus's {count} shards (left by an earlier run over more rows); "
            "it is not in the manifest"
        )
    untrained = sorted({p for info in infos for p in info.get("untrained", [])})
    latent = sorted({p for info in infos for p in info.get("latent", [])})
    analysed = sum(g["analysed"] for g in gathered)
    analysis_seconds = max(g["analysis_seconds"] for g in gathered)
    config = pipe.model.config
    schema = output_schema(config, id_is_text=job.source.columns.id is not None)
    return {
        "format": "redheart.corpus",
        "layout": FLAT_VERSION,
        "redheart_version": __version__,
        "input": current["input"],
        "model": {
            **identity,
            "class": type(pipe.model).__name__,
            "dtype": str(pipe.model.dtype).replace("torch.", ""),
            "encoders": [handle.describe() for _, handle in pipe.encoders.items()],
            "trained_tasks": list(getattr(config, "trained_tasks", []) or []),
            "untrained": untrained,
            "latent": latent,
        },
        "options": current["options"],
        "shard_size": job.shard_size,
        "rows": total_rows,
        "errors": sum(info["errors"] for info in infos),
        "columns": [{"name": f.name, "type": str(f.type)} for f in schema],
        "labels": {prefix: list(labels) for prefix, labels in label_groups(config).items()},
        "shards": [
            {
                "file": part_path(job.output, k).name,
                **{
                    key: info[key] for key in ("first_row", "rows", "errors", "seconds", "process", "written")
                },
            }
            for k, info in enumerate(infos)
        ],
        "fingerprint": dict(current),
        "last_run": {
            "processes": processes.count,
            "analysed_rows": analysed,
            "resumed_rows": sum(g["resumed"] for g in gathered),
            "errors": sum(g["errors"] for g in gathered),
            "batch_size": job.batch_size,
            "threads_per_process": threads,
            "load_seconds": round(max(g["load_seconds"] for g in gathered), 3),
            "analysis_seconds": round(analysis_seconds, 3),
            "seconds": round(time.perf_counter() - started, 3),
            "texts_per_s": round(analysed / analysis_seconds, 3) if analysis_seconds > 0 else 0.0,
            "device": str(pipe.device),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    }
