"""The training loop (Accelerate): multi-task steps, accumulation, clipping, schedule, evaluation, checkpoints.

One optimiser step = ``grad_accum`` micro-batches of ``micro_batch_size`` examples per process. The examples of
step ``s`` are fixed by the seed: epoch ``e = s // steps_per_epoch`` uses the permutation
``default_rng(seed + e)`` of the training table and step ``s`` takes its ``(s mod steps_per_epoch)``-th slice,
so a resumed run re-enters the data order exactly where the checkpoint left it.

Loss: the model's own masked multi-task loss (focal for emotions, pairwise logistic for utility, BCE for
acceptability, Huber for regret, MSE for sentiment and SURD, plus the Bentham weight-range and MoE
load-balancing regularisers); with ``use_auxiliary`` the tasks are weighed by its learned uncertainty
weights, otherwise by ``config.loss_weights``. Logged: the total, every raw task loss, lr and gradient norm.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..configuration_redheart.tasks import TASK_LOSSES
from .checkpoint import (
    CheckpointError,
    check_architecture,
    load_state,
    prune_checkpoints,
    save_checkpoint,
    set_rng_state,
)
from .config import TrainConfig
from .memory import ActivationMeter, format_memory_report, memory_report
from .predict import predict, task_metrics, to_device

NO_DECAY = ("bias", "norm", "type_embeddings", "task_log_vars", "log_temperature", "queries", "query_offsets")


def resolve_mixed_precision(setting: str) -> str:
    if setting == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    return setting


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig):
    """AdamW (torch) or 8-bit AdamW (bitsandbytes); no weight decay on biases, norms and scalar parameters."""
    t = cfg.train
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or any(k in name.lower() for k in NO_DECAY) else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": float(t.weight_decay)},
        {"params": no_decay, "weight_decay": 0.0},
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
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        self.cfg = cfg
        self.t = cfg.train
        self.tasks = list(tasks)
        self.print = print_fn
        self.mixed_precision = resolve_mixed_precision(self.t.mixed_precision)
        self.accelerator = accelerator or Accelerator(
            mixed_precision=self.mixed_precision,
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        )
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
        model = self.accelerator.unwrap_model(self.model_for_saving())
        model.config.trained_tasks = self.trained_tasks(seen)
        model.save_pretrained(folder)
        if self.save_hook is not None:
            self.save_hook(folder, model)
        payload = {
            **info,
            "trained_tasks": model.config.trained_tasks,
            "config": self.cfg.to_dict(),
            **self.extra_state,
        }
        (Path(folder) / "redheart_training.json").write_text(
            json.dumps(payload, indent=2, default=float, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        return Path(folder)

    def model_for_saving(self):
        inner = self.accelerator.unwrap_model(self.model)
        return getattr(inner, "redheart", inner)

    def evaluate(self, progress: bool = False) -> tuple[dict[str, float], dict[str, dict]]:
        """Validation metrics per set and overall (``val_loss``: mean raw task loss; ``val_score``)."""
        model = self.accelerator.unwrap_model(self.model)
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
        saving as configured; the loop reads: start or resume, then per step train, log, evaluate, save."""
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
            self._maybe_evaluate(run, bar, writer)
            self._maybe_save_checkpoint(run)
            acc.wait_for_everyone()
        bar.close()
        wall = time.perf_counter() - start_wall
        if acc.is_main_process:
            self._save_final(run, wall)
        if writer is not None:
            writer.close()
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

        model = self.raw_model
        if self.t.activation_checkpointing:
            getattr(model, "redheart", model).activation_checkpointing_enable()
        state = self._restore_weights(model, resume_from) if resume_from is not None else None
        optimizer = build_optimizer(model, self.cfg)
        scheduler = get_cosine_schedule_with_warmup(optimizer, self.warmup_steps, self.total_steps)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.scheduler = scheduler
        if state is None:
            return _Progress()
        return self._resume(resume_from, state)

    def _restore_weights(self, model: torch.nn.Module, folder: Path) -> dict[str, Any]:
        """Check the checkpoint's architecture, load its weights into ``model``; return its trainer state."""
        check_architecture(folder / "model", getattr(model, "redheart", model).config)
        state = load_state(folder)
        if state.get("total_steps") != self.total_steps:
            self.print(
                f"warning: {folder} was written by a run of {state.get('total_steps')} steps, this "
                f"run has {self.total_steps}: the learning-rate schedule differs from the interrupted run's"
            )
        self._load_weights(model, folder)
        return state

    def _resume(self, folder: Path, state: dict[str, Any]) -> _Progress:
        """Optimiser, schedule and random states of the checkpoint, and the progress it had made."""
        self.optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location="cpu"))
        self.scheduler.load_state_dict(torch.load(folder / "scheduler.pt", map_location="cpu"))
        set_rng_state(torch.load(folder / "rng.pt", map_location="cpu", weights_only=False))
        run = _Progress(
            step=int(state["step"]),
            best=state.get("best_metric"),
            best_step=state.get("best_step"),
            history=list(state.get("history", [])),
            seen=set(state.get("tasks_seen", [])),
        )
        self.print(f"Resumed from {folder} at step {run.step}/{self.total_steps}")
        return run

    def _train_step(self, run: _Progress) -> None:
        """One optimiser step over ``grad_accum`` micro-batches; the first step also measures memory."""
        acc, t = self.accelerator, self.t
        autocast = acc.autocast if self.mixed_precision != "no" else nullcontext
        micro = self.micro_batches(run.step)
        meter = ActivationMeter() if not run.memory else None
        for j, rows in enumerate(micro):
            batch = to_device(self.train_collator(rows), acc.device)
            last = j == len(micro) - 1
            sync = acc.no_sync(self.model) if not last and acc.num_processes > 1 else nullcontext()
            record = meter.record() if meter is not None and j == 0 else nullcontext()
            with sync:
                with record, autocast():
                    out = self.model(**batch)
                acc.backward(out.loss / len(micro))
            run.window.setdefault("loss", []).append(float(out.loss.detach()))
            for task, value in (out.task_losses or {}).items():
                run.window.setdefault(f"task/{task}", []).append(float(value.detach()))
                if task in TASK_LOSSES:
                    run.seen.add(task)
        grad_norm = acc.clip_grad_norm_(self.model.parameters(), float(t.max_grad_norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        run.step += 1
        run.window.setdefault("grad_norm", []).append(float(grad_norm))
        if not run.memory:
            tokens = batch.get("encoder_attention_mask", {})
            mean_tokens = float(sum(m.sum() for m in tokens.values()) / max(1, len(rows))) if tokens else None
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
            )

    def _log(self, run: _Progress, bar, writer) -> None:
        """Every ``logging_steps`` (and at the end): the window's mean losses, lr and gradient norm."""
        if run.step % self.t.logging_steps != 0 and run.step != self.total_steps:
            return
        logs = {k: float(np.mean(v)) for k, v in run.window.items()}
        logs["lr"] = self.scheduler.get_last_lr()[0]
        bar.set_postfix(loss=f"{logs['loss']:.4f}", lr=f"{logs['lr']:.2e}")
        if writer is not None:
            for key, value in logs.items():
                writer.add_scalar(f"train/{key}", value, run.step)
        run.history.append({"step": run.step, **{k: round(v, 6) for k, v in logs.items()}})
        run.window.clear()

    def _maybe_evaluate(self, run: _Progress, bar, writer) -> None:
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
        bar.write(
            f"step {run.step}: val_score {overall['val_score']:.4f}, val_loss {overall['val_loss']:.4f}"
        )
        greater = t.metric_for_best == "val_score"
        improved = not math.isnan(value) and (
            run.best is None or (value > run.best if greater else value < run.best)
        )
        if improved and self.accelerator.is_main_process:
            run.best, run.best_step = value, run.step
            info = {"step": run.step, "validation": overall, "validation_per_set": per_set}
            self.save_model(self.output_dir / "best", run.seen, info)

    def _maybe_save_checkpoint(self, run: _Progress) -> None:
        """Every ``save_steps`` before the end (main process): a resumable checkpoint; old ones are pruned."""
        t = self.t
        if not (t.save_steps and run.step % t.save_steps == 0 and run.step < self.total_steps):
            return
        if not self.accelerator.is_main_process:
            return
        inner = self.model_for_saving()
        inner.config.trained_tasks = self.trained_tasks(run.seen)
        folder = self.output_dir / f"checkpoint-{run.step:07d}"
        save_checkpoint(folder, inner, self.optimizer, self.scheduler, self._state(run), self.lora_modules)
        prune_checkpoints(self.output_dir, t.save_total_limit)

    def _save_final(self, run: _Progress, wall: float) -> None:
        """The ``final`` model (also ``best`` when nothing was validated), trainer state and memory report."""
        info = {"step": run.step, "wall_seconds": wall, "memory": run.memory}
        self.save_model(self.output_dir / "final", run.seen, info)
        if not (
            self.output_dir / "best" / "config.json"
        ).is_file():  # no validation: final is the best we know
            self.save_model(self.output_dir / "best", run.seen, info)
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
