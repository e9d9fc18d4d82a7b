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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..configuration_redheart.config import TASK_LOSSES
from .checkpoint import (
    check_architecture,
    list_checkpoints,
    load_state,
    prune_checkpoints,
    save_checkpoint,
    set_rng_state,
)
from .collate import TASK_LABELS
from .config import TrainConfig
from .memory import ActivationMeter, format_memory_report, memory_report
from .predict import predict, task_metrics

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
    output_dir: Path
    best_dir: Path
    final_dir: Path
    steps: int
    trained_tasks: list[str]
    history: list[dict[str, Any]]
    memory: dict[str, Any]
    wall_seconds: float
    thresholds: dict[str, float]


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

    # ------------------------------------------------------------------------------------------------ pieces
    def _state(self, step: int, best: float | None, best_step: int | None, history, seen) -> dict[str, Any]:
        return {
            "step": step,
            "epoch": step / self.steps_per_epoch,
            "total_steps": self.total_steps,
            "steps_per_epoch": self.steps_per_epoch,
            "global_batch": self.global_batch,
            "best_metric": best,
            "best_step": best_step,
            "metric_for_best": self.t.metric_for_best,
            "history": history,
            "tasks_seen": sorted(seen),
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
        payload = {**info, "trained_tasks": model.config.trained_tasks, "config": self.cfg.to_dict(),
                   **self.extra_state}  # fmt: skip
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
            pred = predict(model, collator, batch_size=max(self.t.micro_batch_size, 64), with_losses=True,
                           autocast=autocast, progress=progress, desc=f"validation {name}")  # fmt: skip
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
        from torch.utils.tensorboard import SummaryWriter
        from tqdm.auto import tqdm
        from transformers import get_cosine_schedule_with_warmup

        acc, t = self.accelerator, self.t
        start_wall = time.perf_counter()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        model = self.raw_model
        if t.activation_checkpointing:
            target = getattr(model, "redheart", model)
            target.activation_checkpointing_enable()
        start_step, best, best_step, history, seen = 0, None, None, [], set()
        resume_state = None
        if resume_from is not None:
            resume_from = Path(resume_from)
            check_architecture(resume_from / "model", getattr(model, "redheart", model).config)
            resume_state = load_state(resume_from)
            if resume_state.get("total_steps") != self.total_steps:
                self.print(
                    f"warning: {resume_from} was written by a run of {resume_state.get('total_steps')} steps, this "
                    f"run has {self.total_steps}: the learning-rate schedule differs from the interrupted run's"
                )
            self._load_weights(model, resume_from)
        optimizer = build_optimizer(model, self.cfg)
        scheduler = get_cosine_schedule_with_warmup(optimizer, self.warmup_steps, self.total_steps)
        self.model, self.optimizer = acc.prepare(model, optimizer)
        self.scheduler = scheduler
        if resume_state is not None:
            self.optimizer.load_state_dict(torch.load(resume_from / "optimizer.pt", map_location="cpu"))
            self.scheduler.load_state_dict(torch.load(resume_from / "scheduler.pt", map_location="cpu"))
            set_rng_state(torch.load(resume_from / "rng.pt", map_location="cpu", weights_only=False))
            start_step = int(resume_state["step"])
            best, best_step = resume_state.get("best_metric"), resume_state.get("best_step")
            history = list(resume_state.get("history", []))
            seen = set(resume_state.get("tasks_seen", []))
            self.print(f"Resumed from {resume_from} at step {start_step}/{self.total_steps}")
        writer = SummaryWriter(str(self.output_dir / "tensorboard")) if acc.is_main_process else None
        greater = t.metric_for_best == "val_score"
        best_dir, final_dir = self.output_dir / "best", self.output_dir / "final"
        mem: dict[str, Any] = {}
        window: dict[str, list[float]] = {}
        bar = tqdm(total=self.total_steps, initial=start_step, desc="training", disable=not (t.progress and
                   acc.is_local_main_process), dynamic_ncols=True)  # fmt: skip
        device = acc.device
        autocast = acc.autocast if self.mixed_precision != "no" else nullcontext
        self.model.train()
        step = start_step
        while step < self.total_steps:
            micro = self.micro_batches(step)
            meter = ActivationMeter() if not mem else None
            for j, rows in enumerate(micro):
                batch = self._to_device(self.train_collator(rows), device)
                sync = (
                    acc.no_sync(self.model) if j < len(micro) - 1 and acc.num_processes > 1 else nullcontext()
                )
                record = meter.record() if meter is not None and j == 0 else nullcontext()
                with sync:
                    with record, autocast():
                        out = self.model(**batch)
                    loss = out.loss / len(micro)
                    acc.backward(loss)
                window.setdefault("loss", []).append(float(out.loss.detach()))
                for task, value in (out.task_losses or {}).items():
                    window.setdefault(f"task/{task}", []).append(float(value.detach()))
                    if task in TASK_LOSSES:
                        seen.add(task)
            grad_norm = acc.clip_grad_norm_(self.model.parameters(), float(t.max_grad_norm))
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            step += 1
            window.setdefault("grad_norm", []).append(float(grad_norm))
            if not mem:
                tokens = batch.get("encoder_attention_mask", {})
                mean_tokens = (
                    float(sum(m.sum() for m in tokens.values()) / max(1, len(rows))) if tokens else None
                )
                mem = memory_report(
                    acc.unwrap_model(self.model), self.optimizer, meter.bytes, device,
                    micro_batch_size=t.micro_batch_size, optim=t.optim, mixed_precision=self.mixed_precision,
                    activation_checkpointing=t.activation_checkpointing, mean_tokens=mean_tokens,
                )  # fmt: skip
            bar.update(1)
            if step % t.logging_steps == 0 or step == self.total_steps:
                logs = {k: float(np.mean(v)) for k, v in window.items()}
                logs["lr"] = self.scheduler.get_last_lr()[0]
                bar.set_postfix(loss=f"{logs['loss']:.4f}", lr=f"{logs['lr']:.2e}")
                if writer is not None:
                    for key, value in logs.items():
                        writer.add_scalar(f"train/{key}", value, step)
                history.append({"step": step, **{k: round(v, 6) for k, v in logs.items()}})
                window.clear()
            do_eval = (
                bool(self.val_collators)
                and t.eval_steps
                and (step % t.eval_steps == 0 or step == self.total_steps)
            )
            if do_eval:
                overall, per_set = self.evaluate()
                value = overall[t.metric_for_best]
                if writer is not None:
                    for key, v in overall.items():
                        writer.add_scalar(f"val/{key}", v, step)
                    for name, metrics in per_set.items():
                        for key, v in metrics.items():
                            writer.add_scalar(f"val/{name}/{key}", v, step)
                history.append({"step": step, "eval": overall, "eval_per_set": per_set})
                bar.write(
                    f"step {step}: val_score {overall['val_score']:.4f}, val_loss {overall['val_loss']:.4f}"
                )
                improved = not math.isnan(value) and (
                    best is None or (value > best if greater else value < best)
                )
                if improved and acc.is_main_process:
                    best, best_step = value, step
                    self.save_model(
                        best_dir, seen, {"step": step, "validation": overall, "validation_per_set": per_set}
                    )
            if (
                t.save_steps
                and (step % t.save_steps == 0)
                and step < self.total_steps
                and acc.is_main_process
            ):
                state = self._state(step, best, best_step, history, seen)
                inner = self.model_for_saving()
                inner.config.trained_tasks = self.trained_tasks(seen)
                save_checkpoint(self.output_dir / f"checkpoint-{step:07d}", inner, self.optimizer, self.scheduler,
                                state, self.lora_modules)  # fmt: skip
                prune_checkpoints(self.output_dir, t.save_total_limit)
            acc.wait_for_everyone()
        bar.close()
        wall = time.perf_counter() - start_wall
        thresholds: dict[str, float] = {}
        if acc.is_main_process:
            info = {"step": step, "wall_seconds": wall, "memory": mem}
            self.save_model(final_dir, seen, info)
            if not (best_dir / "config.json").is_file():  # no validation: the final model is the best we know
                self.save_model(best_dir, seen, info)
            state = self._state(step, best, best_step, history, seen)
            (self.output_dir / "trainer_state.json").write_text(
                json.dumps(state, indent=2, default=float) + "\n"
            )
            (self.output_dir / "memory_report.json").write_text(json.dumps(mem, indent=2) + "\n")
            self.print(format_memory_report(mem))
        if writer is not None:
            writer.close()
        return TrainResult(
            output_dir=self.output_dir, best_dir=best_dir, final_dir=final_dir, steps=step,
            trained_tasks=self.trained_tasks(seen), history=history, memory=mem, wall_seconds=wall,
            thresholds=thresholds,
        )  # fmt: skip

    @staticmethod
    def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
        from .predict import _to_device

        return _to_device(batch, device)

    def _load_weights(self, model: torch.nn.Module, folder: Path) -> None:
        from safetensors.torch import load_file

        inner = getattr(model, "redheart", model)
        weights = Path(folder) / "model" / "model.safetensors"
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: missing; the checkpoint is incomplete")
        state = load_file(str(weights))
        missing, unexpected = inner.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("signs")]
        if missing or unexpected:
            from .checkpoint import CheckpointError

            raise CheckpointError(
                f"{weights}: weights do not fit this model (missing {missing[:5]}, unexpected {unexpected[:5]})"
            )
        for name, module in self.lora_modules.items():
            adapter = Path(folder) / "lora" / name
            if not adapter.is_dir():
                from .checkpoint import CheckpointError

                raise CheckpointError(f"{folder}: no LoRA adapter for encoder {name!r} (expected {adapter})")
            from peft import set_peft_model_state_dict
            from peft.utils import load_peft_weights

            set_peft_model_state_dict(module, load_peft_weights(str(adapter)))


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def label_keys() -> set[str]:
    return set(TASK_LABELS.values())
