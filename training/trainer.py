"""The training loop (Accelerate): multi-task steps, accumulation, clipping, schedule, evaluation, checkpoints.

One optimiser step = ``grad_accum`` micro-batches of ``micro_batch_size`` examples on each of the
``num_processes`` processes: a global batch of ``micro_batch_size * grad_accum * num_processes`` examples. The
examples of step ``s`` are fixed by the seed: epoch ``e = s // steps_per_epoch`` uses the permutation
``default_rng(seed + e)`` of the training table, step ``s`` takes its ``(s mod steps_per_epoch)``-th slice of one
global batch, and :meth:`Trainer.micro_batches` cuts that slice into the parts of every process, so a resumed
run re-enters the data order exactly where the checkpoint left it, and the global batch is the same examples
however it is split.

The loss of a step is the loss of its global batch as one batch: each task's loss is a mean over the items
labelled for it, so every part's mean is weighed by its share of the global count of those items (counted from
the labels before the forward passes and summed over processes), and gradient accumulation and the processes'
gradient averaging then add up to the global batch's gradient (``loss_scales`` of ``RedHeartModel.forward``).
What stays per part is the MoE load-balancing regulariser, a product of batch means (as in Switch
Transformers, computed per micro-batch), and dropout, drawn by each process from its own generator. Logged
figures are global: the step's loss and task losses summed over processes, samples/s of the global batch.

Processes: Accelerate (``accelerate launch``; DDP, FSDP or DeepSpeed from its config, gloo on CPUs). Every process
evaluates (the same validation rows, so they agree on the best step; FSDP needs every process in a forward);
one process writes models and checkpoints, each process's random state going into the checkpoint.

Loss: the model's own masked multi-task loss (focal for emotions, pairwise logistic for utility, BCE for
acceptability, Huber for regret, MSE for sentiment and SURD, plus the Bentham weight-range and MoE
load-balancing regularisers); with ``use_auxiliary`` the tasks are weighed by its learned uncertainty
weights, otherwise by ``config.loss_weights``. Logged: the total, every raw task loss, lr and gradient norm.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..configuration_redheart.tasks import TASK_LOSSES
from ..modeling_redheart.losses import loss_item_counts
from .checkpoint import (
    ACCELERATE_STATE,
    CheckpointError,
    check_architecture,
    load_rng_state,
    load_state,
    prune_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
    staging_folder,
)
from .config import TrainConfig
from .memory import ActivationMeter, format_memory_report, memory_report
from .predict import predict, task_metrics, to_device

logger = logging.getLogger(__name__)

#: The training run's record saved beside a model (its config, data composition, time, memory).
TRAINING_RECORD = "redheart_training.json"
#: The model's regularisers (``task_losses`` keys beside the tasks), logged as means over the step's parts.
REGULARISERS = ("bentham_range", "load_balancing")
#: Top-level parts of `RedHeartModel` that learn at ``train.head_lr_multiplier`` times the base rate.
HEAD_MODULES = ("heads", "analyzers")
NO_DECAY = ("bias", "norm", "type_embeddings", "task_log_vars", "log_temperature", "queries", "query_offsets")


#: How long a process waits for the others at a collective (default 30 min): first runs encode the feature cache,
#: and the first evaluation of a large validation part can take a while on CPUs.
PROCESS_GROUP_TIMEOUT = timedelta(hours=3)


def resolve_mixed_precision(setting: str) -> str:
    if setting == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    return setting


def cpu_only_launch() -> bool:
    """A multi-process launch on a machine without an accelerator (CUDA, XPU, MPS).

    Accelerate picks gloo (``MULTI_CPU``) only when told ``cpu=True``; otherwise processes started by
    ``accelerate launch --multi_gpu`` (torchrun) on CPUs each come up as a lone single process and train the
    whole global batch side by side, racing on the same output folder.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    xpu = getattr(torch, "xpu", None)
    mps = getattr(torch.backends, "mps", None)
    return not (
        torch.cuda.is_available()
        or (xpu is not None and xpu.is_available())
        or (mps is not None and mps.is_available())
    )


def make_accelerator(cfg: TrainConfig):
    """The run's `Accelerator`: precision, accumulation steps, unused-parameter search, collective timeout."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, InitProcessGroupKwargs

    return Accelerator(
        cpu=cpu_only_launch(),
        mixed_precision=resolve_mixed_precision(cfg.train.mixed_precision),
        gradient_accumulation_steps=int(cfg.train.grad_accum),
        kwargs_handlers=[
            # parts switched off per batch (a head without labels, unused experts) get no gradient
            DistributedDataParallelKwargs(find_unused_parameters=True),
            InitProcessGroupKwargs(timeout=PROCESS_GROUP_TIMEOUT),
        ],
    )


def global_batch_scales(
    counts: list[dict[str, int]], rows: list[int], totals: dict[str, Any], parts: int
) -> list[dict[str, Any]]:
    """``loss_scales`` (``RedHeartModel.forward``) of this process's micro-batches, so that the mean of all
    ``parts`` scaled losses (micro-batches x processes; accumulation and DDP average them) is the global batch's.

    ``counts``/``rows``: each local micro-batch's :func:`~redheart.modeling_redheart.losses.loss_item_counts` and
    row count; ``totals``: ``items`` (per task, labelled items), ``holders`` (per task, parts that have some) and
    ``rows``, summed over the whole global batch. A task's mean over ``n`` of its ``N`` items weighs
    ``parts * n / N``; its uncertainty term ``s_t`` is shared by the ``holders`` (``parts / holders``, once in all);
    the regularisers (means over rows) weigh ``parts * rows / all rows``.
    """
    scales = []
    for part, n_rows in zip(counts, rows, strict=True):
        present = [t for t in TASK_LOSSES if part.get(t, 0) > 0]
        scales.append(
            {
                "tasks": {t: parts * part[t] / float(totals["items"][t]) for t in present},
                "log_vars": {t: parts / float(totals["holders"][t]) for t in present},
                "regularisers": parts * n_rows / float(totals["rows"]),
            }
        )
    return scales


def _distributed_type(accelerator) -> str:
    return str(getattr(accelerator.distributed_type, "value", accelerator.distributed_type))


def sharded_state(accelerator) -> bool:
    """FSDP and DeepSpeed shard what a process holds: weights are gathered and optimiser states saved by
    Accelerate (``save_state``), every process taking part."""
    return _distributed_type(accelerator) in ("FSDP", "DEEPSPEED")


def is_head_parameter(name: str) -> bool:
    """Whether a parameter name (``model.named_parameters()``, possibly wrapped as ``module.``) is in a head."""
    parts = name.split(".")
    return (parts[1] if parts[0] == "module" and len(parts) > 1 else parts[0]) in HEAD_MODULES


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig):
    """AdamW (torch) or 8-bit AdamW (bitsandbytes); no weight decay on biases, norms and scalar parameters; the
    parameters of ``HEAD_MODULES`` learn at ``train.head_lr_multiplier`` times ``train.lr``."""
    t = cfg.train
    faster_heads = float(t.head_lr_multiplier) != 1.0  # else the two groups of earlier checkpoints
    kinds: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = param.ndim < 2 or any(k in name.lower() for k in NO_DECAY)
        kinds.setdefault((no_decay, faster_heads and is_head_parameter(name)), []).append(param)
    groups = [
        {
            "params": params,
            "weight_decay": 0.0 if no_decay else float(t.weight_decay),
            "lr": float(t.lr) * (float(t.head_lr_multiplier) if head else 1.0),
        }
        for (no_decay, head), params in sorted(kinds.items())
    ]
    betas = tuple(float(b) for b in t.betas)
    if t.optim == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError as exc:
            raise RuntimeError("--optim adamw8bit needs bitsandbytes (pip install bitsandbytes)") from exc
        return bnb.optim.AdamW8bit(groups, lr=float(t.lr), betas=betas)
    return torch.optim.AdamW(groups, lr=float(t.lr), betas=betas)


@dataclass
class TrainResult:
    """Where a finished run put its models, and what it did."""

    output_dir: Path
    best_dir: Path
    final_dir: Path
    steps: int
    trained_tasks: list[str]
    history: list[dict[str, Any]]
    memory: dict[str, Any]
    wall_seconds: float


@dataclass
class _Progress:
    """What the loop carries from one optimiser step to the next (and a checkpoint saves)."""

    step: int = 0
    best: float | None = None
    best_step: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    memory: dict[str, Any] = field(default_factory=dict)
    window: dict[str, list[float]] = field(default_factory=dict)


class Trainer:
    """Runs the loop for prepared data (see :mod:`.prepare`) and a collator per table (see :mod:`.collate`)."""

    def __init__(
        self,
        cfg: TrainConfig,
        model: torch.nn.Module,
        train_collator,
        val_collators: dict[str, Any],
        tasks: list[str],
        *,
        accelerator=None,
        print_fn=print,
        extra_state: dict[str, Any] | None = None,
        lora_modules: dict[str, Any] | None = None,
        save_hook=None,
    ) -> None:
        self.cfg = cfg
        self.t = cfg.train
        self.tasks = list(tasks)
        self.print = print_fn
        self.mixed_precision = resolve_mixed_precision(self.t.mixed_precision)
        self.accelerator = accelerator or make_accelerator(cfg)
        self.output_dir = Path(self.t.output_dir)
        self.train_collator = train_collator
        self.val_collators = val_collators
        self.raw_model = model
        self.lora_modules = lora_modules or {}
        self.extra_state = dict(extra_state or {})
        self.save_hook = save_hook
        self.n_train = len(train_collator.table)
        world = self.accelerator.num_processes
        self.global_batch = self.t.micro_batch_size * self.t.grad_accum * world
        if self.n_train < self.global_batch:
            raise ValueError(
                f"{cfg.source}: the training table has {self.n_train} rows, fewer than one global batch "
                f"(micro_batch_size {self.t.micro_batch_size} x grad_accum {self.t.grad_accum} x "
                f"{world} process(es) = {self.global_batch}); use more rows or a smaller batch"
            )
        self.steps_per_epoch = max(1, self.n_train // self.global_batch)
        self.total_steps = self.t.max_steps or max(1, math.ceil(float(self.t.epochs) * self.steps_per_epoch))
        self.warmup_steps = int(math.ceil(float(self.t.warmup_ratio) * self.total_steps))
        self._lengths: np.ndarray | None = None
        self._order: tuple[int, np.ndarray] | None = None

    # ------------------------------------------------------------------------------------------------ data order
    def _epoch_order(self, epoch: int) -> np.ndarray:
        """The example order of an epoch (seeded; length-grouped when ``group_by_length``)."""
        rng = np.random.default_rng(int(self.t.seed) + 1_000_003 * epoch)
        order = rng.permutation(self.n_train)
        if not self.t.group_by_length:
            return order
        if self._lengths is None:
            self._lengths = self.train_collator.lengths()
        g = self.global_batch
        batches = []
        for start in range(0, len(order), 50 * g):
            chunk = order[start : start + 50 * g]
            chunk = chunk[np.argsort(-self._lengths[chunk], kind="stable")]
            batches += [chunk[i : i + g] for i in range(0, len(chunk), g)]
        full = [b for b in batches if len(b) == g]
        rest = [b for b in batches if len(b) < g]
        return np.concatenate([full[i] for i in rng.permutation(len(full))] + rest)

    def micro_batches(self, step: int) -> list[list[int]]:
        """This process's micro-batches (example indices) of optimiser step ``step``."""
        epoch, k = divmod(step, self.steps_per_epoch)
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, self._epoch_order(epoch))
        rows = self._order[1][k * self.global_batch : (k + 1) * self.global_batch]
        world, rank, m = (
            self.accelerator.num_processes,
            self.accelerator.process_index,
            self.t.micro_batch_size,
        )
        out = []
        for j in range(self.t.grad_accum):
            part = rows[(j * world + rank) * m : (j * world + rank + 1) * m]
            if len(part):
                out.append(part.tolist())
        return out

    # ------------------------------------------------------------------------------------------------ saving
    def _state(self, run: _Progress) -> dict[str, Any]:
        """The ``trainer_state.json`` of a checkpoint or of the finished run."""
        return {
            "step": run.step,
            "epoch": run.step / self.steps_per_epoch,
            "total_steps": self.total_steps,
            "steps_per_epoch": self.steps_per_epoch,
            "global_batch": self.global_batch,
            "num_processes": self.accelerator.num_processes,
            "micro_batch_size": self.t.micro_batch_size,
            "grad_accum": self.t.grad_accum,
            "best_metric": run.best,
            "best_step": run.best_step,
            "metric_for_best": self.t.metric_for_best,
            "history": run.history,
            "tasks_seen": sorted(run.seen),
            "train_examples": self.n_train,
            "config": self.cfg.to_dict(),
            **self.extra_state,
        }

    def trained_tasks(self, seen: set[str]) -> list[str]:
        return [t for t in TASK_LOSSES if t in seen]

    def save_model(self, folder: Path, seen: set[str], info: dict[str, Any]) -> Path:
        """Write the model (main process; every process calls this, since FSDP/DeepSpeed gather weights)."""
        state = self._gathered_weights()
        if not self.accelerator.is_main_process:
            return Path(folder)
        model = self.accelerator.unwrap_model(self.model_for_saving())
        model.config.trained_tasks = self.trained_tasks(seen)
        if state is None:
            model.save_pretrained(folder)
        else:
            model.save_pretrained(folder, state_dict=state)
        if self.save_hook is not None:
            self.save_hook(folder, model)
        payload = {
            **info,
            "trained_tasks": model.config.trained_tasks,
            "config": self.cfg.to_dict(),
            **self.extra_state,
        }
        (Path(folder) / TRAINING_RECORD).write_text(
            json.dumps(payload, indent=2, default=float, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        return Path(folder)

    def model_for_saving(self):
        inner = self.accelerator.unwrap_model(self.model)
        return getattr(inner, "redheart", inner)

    def _gathered_weights(self) -> dict[str, torch.Tensor] | None:
        """The Red Heart weights gathered from every process under FSDP/DeepSpeed (None: the module holds them)."""
        if not sharded_state(self.accelerator):
            return None
        state = self.accelerator.get_state_dict(self.model)
        inner = self.accelerator.unwrap_model(self.model)
        if getattr(inner, "redheart", None) is not None:  # LoRA: keep the model's part, without its prefix
            state = {k[len("redheart.") :]: v for k, v in state.items() if k.startswith("redheart.")}
        return state

    def evaluate(self, progress: bool = False) -> tuple[dict[str, float], dict[str, dict]]:
        """Validation metrics per set and overall (``val_loss``: mean raw task loss; ``val_score``)."""
        # FSDP gathers weights inside the wrapper's forward; elsewhere the plain module skips DDP's hooks
        fsdp = _distributed_type(self.accelerator) == "FSDP"
        model = self.model if fsdp else self.accelerator.unwrap_model(self.model)
        per_set, scores, losses = {}, [], []
        autocast = self.accelerator.autocast if self.mixed_precision != "no" else None
        for name, collator in self.val_collators.items():
            pred = predict(
                model,
                collator,
                batch_size=max(self.t.micro_batch_size, 64),
                with_losses=True,
                autocast=autocast,
                progress=progress,
                desc=f"validation {name}",
            )
            metrics, _ = task_metrics(collator.table, pred, self.tasks)
            task_losses = {k: v for k, v in pred["losses"].items() if k in TASK_LOSSES and k != "confidence"}
            metrics["loss"] = float(np.mean(list(task_losses.values()))) if task_losses else float("nan")
            per_set[name] = metrics
            if "val_score" in metrics:
                scores.append(metrics["val_score"])
            if task_losses:
                losses.append(metrics["loss"])
        overall = {
            "val_score": float(np.mean(scores)) if scores else float("nan"),
            "val_loss": float(np.mean(losses)) if losses else float("nan"),
        }
        return overall, per_set

    # ------------------------------------------------------------------------------------------------ loop
    def fit(self, resume_from: str | Path | None = None) -> TrainResult:
        """Train for ``total_steps`` optimiser steps (from ``resume_from``'s step when given), evaluating and
        saving as configured; the loop reads: start or resume, then per step train, log, evaluate, save.
        Every process runs it; the main process writes."""
        from torch.utils.tensorboard import SummaryWriter
        from tqdm.auto import tqdm

        acc, t = self.accelerator, self.t
        start_wall = time.perf_counter()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        run = self._start(Path(resume_from) if resume_from is not None else None)
        writer = SummaryWriter(str(self.output_dir / "tensorboard")) if acc.is_main_process else None
        bar = tqdm(
            total=self.total_steps,
            initial=run.step,
            desc="training",
            disable=not (t.progress and acc.is_local_main_process),
            dynamic_ncols=True,
        )
        self.model.train()
        while run.step < self.total_steps:
            self._train_step(run)
            bar.update(1)
            self._log(run, bar, writer)
            self._maybe_evaluate(run, writer)
            self._maybe_save_checkpoint(run)
        bar.close()
        wall = time.perf_counter() - start_wall
        self._save_final(run, wall)
        if writer is not None:
            writer.close()
        acc.wait_for_everyone()  # the final model is written before any process returns
        return TrainResult(
            output_dir=self.output_dir,
            best_dir=self.output_dir / "best",
            final_dir=self.output_dir / "final",
            steps=run.step,
            trained_tasks=self.trained_tasks(run.seen),
            history=run.history,
            memory=run.memory,
            wall_seconds=wall,
        )

    def _start(self, resume_from: Path | None) -> _Progress:
        """Optimiser and schedule for the model, prepared by Accelerate; restored from ``resume_from`` if given."""
        from transformers import get_cosine_schedule_with_warmup

        self._check_same_data()
        model = self.raw_model
        if self.t.activation_checkpointing:
            getattr(model, "redheart", model).activation_checkpointing_enable()
        state = self._restore_weights(model, resume_from) if resume_from is not None else None
        optimizer = build_optimizer(model, self.cfg)
        scheduler = get_cosine_schedule_with_warmup(optimizer, self.warmup_steps, self.total_steps)
        self._configure_deepspeed()
        self.accelerator.gradient_accumulation_steps = self.t.grad_accum  # this run's, even if another set it
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        if self.accelerator.gradient_accumulation_steps != self.t.grad_accum:
            raise ValueError(
                f"Accelerate accumulates {self.accelerator.gradient_accumulation_steps} micro-batches per step "
                f"(its config or ACCELERATE_GRADIENT_ACCUMULATION_STEPS), the training config "
                f"{self.t.grad_accum} (train.grad_accum): leave it to the training config"
            )
        self.scheduler = scheduler
        if state is None:
            return _Progress()
        return self._resume(resume_from, state)

    def _check_same_data(self) -> None:
        """Every process must hold the same training table in the same order (each takes its part of a global
        batch by position); refuse to train when they differ, instead of training on a mixture nobody chose."""
        if self.accelerator.num_processes == 1:
            return
        import hashlib

        from accelerate.utils import gather_object

        table = self.train_collator.table
        digest = hashlib.sha256("\x1f".join(table.text).encode("utf-8")).hexdigest()[:16]
        digests = gather_object([digest])
        if len(set(digests)) > 1:
            raise RuntimeError(
                f"the processes built different training tables (fingerprints {digests}): data loading is not "
                "reproducible across processes here; set PYTHONHASHSEED=0 in the environment of the launch"
            )

    def _configure_deepspeed(self) -> None:
        """DeepSpeed sizes its batches from a data loader, which this loop does not use: give it ours."""
        plugin = getattr(self.accelerator.state, "deepspeed_plugin", None)
        if plugin is None:
            return
        config = plugin.deepspeed_config
        given = config.get("train_micro_batch_size_per_gpu", "auto")
        if given not in ("auto", None, self.t.micro_batch_size):
            raise ValueError(
                f"the DeepSpeed config sets train_micro_batch_size_per_gpu={given}, the training config "
                f"micro_batch_size={self.t.micro_batch_size}: set it to auto"
            )
        config["train_micro_batch_size_per_gpu"] = self.t.micro_batch_size

    def _restore_weights(self, model: torch.nn.Module, folder: Path) -> dict[str, Any]:
        """Check the checkpoint's architecture, load its weights into ``model``; return its trainer state."""
        check_architecture(folder / "model", getattr(model, "redheart", model).config)
        state = load_state(folder)
        if state.get("total_steps") != self.total_steps:
            self.print(
                f"warning: {folder} was written by a run of {state.get('total_steps')} steps, this "
                f"run has {self.total_steps}: the learning-rate schedule differs from the interrupted run's"
            )
        if state.get("global_batch", self.global_batch) != self.global_batch:
            self.print(
                f"warning: {folder} was written with a global batch of {state.get('global_batch')}, this run "
                f"has {self.global_batch}: the data order differs from the interrupted run's"
            )
        self._load_weights(model, folder)
        return state

    def _resume(self, folder: Path, state: dict[str, Any]) -> _Progress:
        """Optimiser, schedule and random states of the checkpoint, and the progress it had made."""
        acc = self.accelerator
        if (folder / ACCELERATE_STATE).is_dir():
            acc.load_state(str(folder / ACCELERATE_STATE))  # sharded model and optimiser (FSDP, DeepSpeed)
        else:
            self.optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location="cpu"))
        self.scheduler.load_state_dict(torch.load(folder / "scheduler.pt", map_location="cpu"))
        states, note = load_rng_state(folder, acc.process_index)
        set_rng_state(states)
        if note:  # from any process (the main one may have its own state)
            logger.warning(note)
        run = _Progress(
            step=int(state["step"]),
            best=state.get("best_metric"),
            best_step=state.get("best_step"),
            history=list(state.get("history", [])),
            seen=set(state.get("tasks_seen", [])),
        )
        self.print(f"Resumed from {folder} at step {run.step}/{self.total_steps}")
        return run

    # ------------------------------------------------------------------------------------------------ one step
    def _loss_scales(self, counts: list[dict[str, int]], rows: list[int]) -> list[dict[str, Any] | None]:
        """Each micro-batch's ``loss_scales`` (see :func:`global_batch_scales`), the counts summed over the
        processes; one process with one micro-batch per step needs none (the batch is the global batch)."""
        parts = len(counts) * self.accelerator.num_processes
        if parts == 1:
            return [None]
        n = len(TASK_LOSSES)
        local = torch.zeros(2 * n + 1, dtype=torch.float64)
        for i, task in enumerate(TASK_LOSSES):
            local[i] = sum(c.get(task, 0) for c in counts)  # items labelled for the task
            local[n + i] = sum(c.get(task, 0) > 0 for c in counts)  # parts that hold some
        local[-1] = sum(rows)
        total = self._sum_over_processes(local).tolist()
        totals = {
            "items": dict(zip(TASK_LOSSES, total[:n], strict=True)),
            "holders": dict(zip(TASK_LOSSES, total[n : 2 * n], strict=True)),
            "rows": total[-1],
        }
        return global_batch_scales(counts, rows, totals, parts)

    def _sum_over_processes(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over the processes (a no-op for one), returned on the CPU."""
        if self.accelerator.num_processes == 1:
            return values
        return self.accelerator.reduce(values.to(self.accelerator.device), reduction="sum").cpu()

    def _train_step(self, run: _Progress) -> None:
        """One optimiser step over ``grad_accum`` micro-batches; the first step also measures memory."""
        acc, t = self.accelerator, self.t
        autocast = acc.autocast if self.mixed_precision != "no" else nullcontext
        started = time.perf_counter()
        micro = self.micro_batches(run.step)
        batches = [self.train_collator(rows) for rows in micro]
        counts = [loss_item_counts(batch) for batch in batches]
        scales = self._loss_scales(counts, [len(batch["language_ids"]) for batch in batches])
        meter = ActivationMeter() if not run.memory else None
        n = len(TASK_LOSSES)
        # logged sums: the step's loss; per task, count-weighted mean losses and their counts; regularisers
        sums = torch.zeros(1 + 2 * n + len(REGULARISERS), dtype=torch.float64)
        regularisers: set[str] = set()
        for j, (batch, scale) in enumerate(zip(batches, scales, strict=True)):
            batch = to_device(batch, acc.device)
            record = meter.record() if meter is not None and j == 0 else nullcontext()
            extra = {} if scale is None else {"loss_scales": scale}
            with acc.accumulate(self.model):
                with record, autocast():
                    out = self.model(**batch, **extra)
                acc.backward(out.loss)
            sums[0] += float(out.loss.detach())
            for task, value in (out.task_losses or {}).items():
                if task in TASK_LOSSES:
                    i = TASK_LOSSES.index(task)
                    sums[1 + i] += float(value.detach()) * counts[j][task]
                    sums[1 + n + i] += counts[j][task]
                elif task in REGULARISERS:  # the same in every part (the model's architecture decides)
                    sums[1 + 2 * n + REGULARISERS.index(task)] += float(value.detach())
                    regularisers.add(task)
        grad_norm = acc.clip_grad_norm_(self.model.parameters(), float(t.max_grad_norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        run.step += 1
        total = self._sum_over_processes(sums)
        parts = len(batches) * acc.num_processes
        run.window.setdefault("loss", []).append(float(total[0]) / parts)
        for i, task in enumerate(TASK_LOSSES):
            if total[1 + n + i] > 0:
                run.window.setdefault(f"task/{task}", []).append(float(total[1 + i] / total[1 + n + i]))
                run.seen.add(task)
        for i, name in enumerate(REGULARISERS):
            if name in regularisers:
                run.window.setdefault(f"task/{name}", []).append(float(total[1 + 2 * n + i]) / parts)
        if grad_norm is not None:  # DeepSpeed clips inside its engine (gradient_clipping in its config)
            run.window.setdefault("grad_norm", []).append(float(grad_norm))
        run.window.setdefault("step_seconds", []).append(time.perf_counter() - started)
        if not run.memory:
            tokens = batches[0].get("encoder_attention_mask", {})
            mean_tokens = (
                float(sum(m.sum() for m in tokens.values()) / max(1, len(micro[0]))) if tokens else None
            )
            run.memory = memory_report(
                acc.unwrap_model(self.model),
                self.optimizer,
                meter.bytes,
                acc.device,
                micro_batch_size=t.micro_batch_size,
                optim=t.optim,
                mixed_precision=self.mixed_precision,
                activation_checkpointing=t.activation_checkpointing,
                mean_tokens=mean_tokens,
                num_processes=acc.num_processes,
            )

    def _log(self, run: _Progress, bar, writer) -> None:
        """Every ``logging_steps`` (and at the end): the window's mean losses, lr, gradient norm, samples/s."""
        if run.step % self.t.logging_steps != 0 and run.step != self.total_steps:
            return
        logs = {k: float(np.mean(v)) for k, v in run.window.items()}
        logs["samples_per_s"] = self.global_batch / logs["step_seconds"]
        logs["lr"] = self.scheduler.get_last_lr()[0]
        bar.set_postfix(loss=f"{logs['loss']:.4f}", lr=f"{logs['lr']:.2e}")
        if not self.t.progress:  # no bar (a log file): one line per logging window instead
            self.print(
                f"step {run.step}/{self.total_steps}: loss {logs['loss']:.4f}, lr {logs['lr']:.2e}, "
                f"{logs['samples_per_s']:.1f} samples/s"
            )
        if writer is not None:
            for key, value in logs.items():
                writer.add_scalar(f"train/{key}", value, run.step)
        run.history.append({"step": run.step, **{k: round(v, 6) for k, v in logs.items()}})
        run.window.clear()

    def _maybe_evaluate(self, run: _Progress, writer) -> None:
        """Every ``eval_steps`` (and at the end): validation metrics; an improvement is saved as ``best``."""
        t = self.t
        if not (
            self.val_collators
            and t.eval_steps
            and (run.step % t.eval_steps == 0 or run.step == self.total_steps)
        ):
            return
        overall, per_set = self.evaluate()
        value = overall[t.metric_for_best]
        if writer is not None:
            for key, v in overall.items():
                writer.add_scalar(f"val/{key}", v, run.step)
            for name, metrics in per_set.items():
                for key, v in metrics.items():
                    writer.add_scalar(f"val/{name}/{key}", v, run.step)
        run.history.append({"step": run.step, "eval": overall, "eval_per_set": per_set})
        self.print(
            f"step {run.step}: val_score {overall['val_score']:.4f}, val_loss {overall['val_loss']:.4f}"
        )
        greater = t.metric_for_best == "val_score"
        improved = not math.isnan(value) and (
            run.best is None or (value > run.best if greater else value < run.best)
        )
        if improved:  # every process evaluated the same rows, so all agree
            run.best, run.best_step = value, run.step
            info = {"step": run.step, "validation": overall, "validation_per_set": per_set}
            self.save_model(self.output_dir / "best", run.seen, info)
            self.accelerator.wait_for_everyone()

    def _maybe_save_checkpoint(self, run: _Progress) -> None:
        """Every ``save_steps`` before the end: a resumable checkpoint (written by the main process, with every
        process's random state; FSDP/DeepSpeed states through Accelerate); old ones are pruned."""
        t, acc = self.t, self.accelerator
        if not (t.save_steps and run.step % t.save_steps == 0 and run.step < self.total_steps):
            return
        from accelerate.utils import gather_object

        folder = self.output_dir / f"checkpoint-{run.step:07d}"
        rng_states = gather_object([rng_state()]) if acc.num_processes > 1 else [rng_state()]
        weights = None
        if sharded_state(acc):
            staging = staging_folder(folder, fresh=acc.is_main_process)
            acc.wait_for_everyone()
            acc.save_state(str(staging / ACCELERATE_STATE))
            weights = self._gathered_weights()
        if acc.is_main_process:
            inner = self.model_for_saving()
            inner.config.trained_tasks = self.trained_tasks(run.seen)
            save_checkpoint(
                folder,
                inner,
                None if weights is not None else self.optimizer,
                self.scheduler,
                self._state(run),
                self.lora_modules,
                rng_states=rng_states,
                state_dict=weights,
            )
            prune_checkpoints(self.output_dir, t.save_total_limit)
        acc.wait_for_everyone()

    def _save_final(self, run: _Progress, wall: float) -> None:
        """The ``final`` model (also ``best`` when nothing was validated), trainer state and memory report."""
        info = {"step": run.step, "wall_seconds": wall, "memory": run.memory}
        self.save_model(self.output_dir / "final", run.seen, info)
        no_best = not (self.output_dir / "best" / "config.json").is_file()
        if self.accelerator.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            no_best = broadcast_object_list([no_best])[0]  # the main process's file system decides
        if no_best:  # no validation: final is the best we know
            self.save_model(self.output_dir / "best", run.seen, info)
        if not self.accelerator.is_main_process:
            return
        state = self._state(run)
        (self.output_dir / "trainer_state.json").write_text(json.dumps(state, indent=2, default=float) + "\n")
        (self.output_dir / "memory_report.json").write_text(json.dumps(run.memory, indent=2) + "\n")
        self.print(format_memory_report(run.memory))

    def _load_weights(self, model: torch.nn.Module, folder: Path) -> None:
        """The checkpoint's Red Heart weights (and LoRA adapters) into ``model``."""
        from safetensors.torch import load_file

        inner = getattr(model, "redheart", model)
        weights = Path(folder) / "model" / "model.safetensors"
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: missing; the checkpoint is incomplete")
        state = load_file(str(weights))
        missing, unexpected = inner.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("signs")]
        if missing or unexpected:
            raise CheckpointError(
                f"{weights}: weights do not fit this model (missing {missing[:5]}, unexpected {unexpected[:5]})"
            )
        for name, module in self.lora_modules.items():
            adapter = Path(folder) / "lora" / name
            if not adapter.is_dir():
                raise CheckpointError(f"{folder}: no LoRA adapter for encoder {name!r} (expected {adapter})")
            from peft import set_peft_model_state_dict
            from peft.utils import load_peft_weights

            set_peft_model_state_dict(module, load_peft_weights(str(adapter)))
